"""Stored events, receiver calls, and the rollups the dashboard reads: per minute and per slot
(10 minutes to a day) of timings, signal counts, failure groups and events per process."""

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
    # Indexed where set only (sigmon_event_parent): most events are not nested.
    parent_id = models.BigIntegerField(null=True, blank=True)
    parent_call = models.IntegerField(null=True, blank=True)
    kwargs = models.JSONField(default=dict)
    host = models.CharField(max_length=100, default="")
    pid = models.IntegerField(default=0)
    request_path = models.CharField(max_length=300, default="", blank=True)
    # Every receiver call of the event as compact JSON (collector.calls); failed calls also have
    # a ReceiverCall row with the traceback. Text, not JSONField: nothing queries inside it, and
    # SQLite would check every row's JSON on insert.
    calls_json = models.TextField(default="[]", blank=True)

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            models.Index(fields=["signal", "-timestamp"], name="sigmon_event_sig_ts"),
            models.Index(fields=["sender", "-timestamp"], name="sigmon_event_snd_ts"),
            models.Index(fields=["host", "pid", "-timestamp"], name="sigmon_event_proc_ts"),
            models.Index(
                fields=["parent_id"],
                name="sigmon_event_parent",
                condition=models.Q(parent_id__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.signal} from {self.sender}"


class ReceiverCall(models.Model):
    """A receiver call that raised: its timing, exception, traceback and location.

    Calls that returned live only in their event's ``calls_json``; rows with outcome "ok" exist
    only in databases written before migration 0004 moved them there.
    """

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
            # Failures only (a few percent of the rows, so the writer barely pays for them);
            # a query uses them only when it filters outcome='error' itself.
            models.Index(
                fields=["-timestamp"], condition=models.Q(outcome="error"), name="sigmon_fail_ts"
            ),
            models.Index(
                fields=["receiver", "exc_type", "location", "-timestamp"],
                condition=models.Q(outcome="error"),
                name="sigmon_fail_group_ts",
            ),
            models.Index(
                fields=["receiver", "-timestamp"],
                condition=models.Q(outcome="error"),
                name="sigmon_fail_rcv_ts",
            ),
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


class Grain(models.IntegerChoices):
    """The length of a rollup slot, in seconds; slots start at multiples of it (UTC)."""

    TEN_MINUTES = 600, "10 minutes"
    HOUR = 3600, "hour"
    SIX_HOURS = 21600, "6 hours"
    DAY = 86400, "day"


BUCKETS_PER_ROW = 16


class ReceiverRollup(models.Model):
    """Timing of one receiver for one signal and sender over one slot (10 minutes to a day).

    The per-minute ReceiverStat rows summed, with 16 adjacent latency buckets (four doublings)
    per row in ``b0``..``b15`` (bucket = 16 * ``octave`` + i), so a receiver's histogram for a
    slot is two or three rows instead of fifteen to twenty-five. Only ever added to.
    """

    grain = models.IntegerField(choices=Grain.choices)
    start = models.DateTimeField()
    signal = models.CharField(max_length=200)
    sender = models.CharField(max_length=300)
    receiver = models.CharField(max_length=300)
    octave = models.SmallIntegerField()
    calls = models.BigIntegerField(default=0)
    failures = models.BigIntegerField(default=0)
    total_ns = models.BigIntegerField(default=0)
    max_ns = models.BigIntegerField(default=0)
    # The last minute with a failure in this slot (None: no failure).
    last_failure = models.DateTimeField(null=True, blank=True)
    b0 = models.BigIntegerField(default=0)
    b1 = models.BigIntegerField(default=0)
    b2 = models.BigIntegerField(default=0)
    b3 = models.BigIntegerField(default=0)
    b4 = models.BigIntegerField(default=0)
    b5 = models.BigIntegerField(default=0)
    b6 = models.BigIntegerField(default=0)
    b7 = models.BigIntegerField(default=0)
    b8 = models.BigIntegerField(default=0)
    b9 = models.BigIntegerField(default=0)
    b10 = models.BigIntegerField(default=0)
    b11 = models.BigIntegerField(default=0)
    b12 = models.BigIntegerField(default=0)
    b13 = models.BigIntegerField(default=0)
    b14 = models.BigIntegerField(default=0)
    b15 = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "start", "signal", "sender", "receiver", "octave"],
                name="sigmon_rollup_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.receiver} @ {self.start:%Y-%m-%d %H:%M} /{self.grain}s"


class SignalRollup(models.Model):
    """Events per signal (and sends nobody heard) over one slot: SignalCount rows summed."""

    grain = models.IntegerField(choices=Grain.choices)
    start = models.DateTimeField()
    signal = models.CharField(max_length=200)
    events = models.BigIntegerField(default=0)
    unheard = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "start", "signal"], name="sigmon_sigroll_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.signal} @ {self.start:%Y-%m-%d %H:%M} /{self.grain}s: {self.events}"


class FailureRollup(models.Model):
    """Failed calls of one group (signal, sender, receiver, exception type, location) in a slot.

    ``group_key`` is a digest of the group (the five texts can be too long for one index entry);
    the newest failure's event id, call index and message are kept with ``last_seen``.
    """

    grain = models.IntegerField(choices=Grain.choices)
    start = models.DateTimeField()
    group_key = models.CharField(max_length=40)
    signal = models.CharField(max_length=200)
    sender = models.CharField(max_length=300)
    receiver = models.CharField(max_length=300)
    exc_type = models.CharField(max_length=200, blank=True, default="")
    location = models.CharField(max_length=300, blank=True, default="")
    failures = models.BigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    latest_event = models.BigIntegerField()
    latest_index = models.IntegerField()
    latest_message = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "start", "group_key"], name="sigmon_failroll_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.receiver} {self.exc_type} @ {self.start:%Y-%m-%d %H:%M}: {self.failures}"


class ProcessRollup(models.Model):
    """Events one process (host, pid) stored in one slot: count, with a failure, first, last."""

    grain = models.IntegerField(choices=Grain.choices)
    start = models.DateTimeField()
    host = models.CharField(max_length=100)
    pid = models.IntegerField()
    events = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "start", "host", "pid"], name="sigmon_procroll_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid} @ {self.start:%Y-%m-%d %H:%M}: {self.events}"


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
