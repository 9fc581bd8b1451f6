"""Stored events, receiver calls and per-minute timing rollups."""

from __future__ import annotations

from django.db import models


class Outcome(models.TextChoices):
    """How one receiver call ended."""

    OK = "ok", "ok"
    ERROR = "error", "error"


class Event(models.Model):
    """One dispatch of a signal: who sent it, how, when, how long it took."""

    # Assigned by the collector: (process token << 32) | sequence, unique across processes.
    id = models.BigIntegerField(primary_key=True)
    signal = models.CharField(max_length=200)
    sender = models.CharField(max_length=300)
    method = models.CharField(max_length=16)
    timestamp = models.DateTimeField(db_index=True)
    duration_ns = models.BigIntegerField()
    receiver_count = models.PositiveIntegerField()
    failure_count = models.PositiveIntegerField(default=0)
    parent_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    parent_call = models.IntegerField(null=True, blank=True)
    kwargs = models.JSONField(default=dict)
    host = models.CharField(max_length=100, default="")
    pid = models.IntegerField(default=0)
    request_path = models.CharField(max_length=300, default="", blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["signal", "-timestamp"], name="sigmon_event_sig_ts"),
            models.Index(fields=["sender", "-timestamp"], name="sigmon_event_snd_ts"),
            models.Index(fields=["host", "pid", "-timestamp"], name="sigmon_event_proc_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.signal} from {self.sender}"


class ReceiverCall(models.Model):
    """One receiver run inside an event, with its timing and, on failure, the traceback."""

    event = models.ForeignKey(
        Event, on_delete=models.DO_NOTHING, db_constraint=False, related_name="calls"
    )
    index = models.PositiveIntegerField()
    receiver = models.CharField(max_length=300)
    is_async = models.BooleanField(default=False)
    duration_ns = models.BigIntegerField()
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.OK)
    exc_type = models.CharField(max_length=200, blank=True, default="")
    exc_message = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    # "file:line in function" of the innermost frame; groups repeated failures.
    location = models.CharField(max_length=300, blank=True, default="")
    # Denormalised from the event so failure and timing filters need no join.
    signal = models.CharField(max_length=200)
    sender = models.CharField(max_length=300)
    timestamp = models.DateTimeField()

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["outcome", "-timestamp"], name="sigmon_call_out_ts"),
            models.Index(
                fields=["receiver", "exc_type", "location"],
                condition=models.Q(outcome="error"),
                name="sigmon_call_fail_group",
            ),
            models.Index(fields=["receiver", "-timestamp"], name="sigmon_call_rcv_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.receiver} ({self.outcome})"


class ReceiverStat(models.Model):
    """Per-minute timing rollup of one receiver for one signal and sender, one latency bucket.

    Rows are only ever added to (``calls = calls + n``), so several writer processes can
    update them at once; percentiles come from summing the bucket counts.
    """

    minute = models.DateTimeField()
    signal = models.CharField(max_length=200)
    sender = models.CharField(max_length=300)
    receiver = models.CharField(max_length=300)
    bucket = models.SmallIntegerField()
    calls = models.BigIntegerField(default=0)
    failures = models.BigIntegerField(default=0)
    total_ns = models.BigIntegerField(default=0)
    max_ns = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["minute", "signal", "sender", "receiver", "bucket"],
                name="sigmon_stat_key",
            )
        ]
        indexes = [
            models.Index(fields=["receiver", "minute"], name="sigmon_stat_rcv_min"),
            models.Index(fields=["signal", "minute"], name="sigmon_stat_sig_min"),
            models.Index(fields=["minute"], name="sigmon_stat_min"),
        ]

    def __str__(self) -> str:
        return f"{self.receiver} @ {self.minute:%H:%M} bucket {self.bucket}"


class SignalCount(models.Model):
    """Per-minute count of events per signal, including sends nobody heard (rates, sparklines)."""

    minute = models.DateTimeField()
    signal = models.CharField(max_length=200)
    events = models.BigIntegerField(default=0)
    unheard = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["minute", "signal"], name="sigmon_count_key")
        ]
        indexes = [models.Index(fields=["signal", "minute"], name="sigmon_count_sig_min")]

    def __str__(self) -> str:
        return f"{self.signal} @ {self.minute:%H:%M}: {self.events}"


class CollectorHealth(models.Model):
    """Per-process counters the writer reports: drops by reason, writer restarts, errors."""

    host = models.CharField(max_length=100)
    pid = models.IntegerField()
    started = models.DateTimeField()
    updated = models.DateTimeField()
    events_written = models.BigIntegerField(default=0)
    dropped = models.JSONField(default=dict)
    writer_restarts = models.IntegerField(default=0)
    processor_errors = models.BigIntegerField(default=0)
    sink_errors = models.BigIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "pid", "started"], name="sigmon_health_key")]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}"
