"""Index Event.parent_id only where it is set: most events are not nested; each index costs a write."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("signals_collector", "0004_event_calls_json"),
    ]

    operations = [
        migrations.AlterField(
            model_name="event",
            name="parent_id",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="event",
            index=models.Index(
                condition=models.Q(("parent_id__isnull", False)),
                fields=["parent_id"],
                name="sigmon_event_parent",
            ),
        ),
    ]
