"""The DatabaseSink's backlog: events held while the database is away, compressed and bounded.

Events are held in chunks: the newest events stay plain dicts until a chunk is full, then the
chunk is serialised (``marshal``, about three times faster than ``pickle``; ``pickle`` when an
event holds something marshal cannot write, such as a captured model instance's Snapshot) and
zlib-compressed: event dicts repeat the same keys, names and labels, so a chunk shrinks ten to
thirty times (measured: 1,571 bytes per plain event, 30-80 compressed). The backlog is bounded in
bytes; what does not fit is refused, and the caller counts it as dropped. Oldest events leave
first.
"""

from __future__ import annotations

import marshal
import pickle
import sys
import zlib
from collections import deque
from typing import Any

from collector.events import EventDict

__all__ = ["Backlog"]

CHUNK_EVENTS = 1_000
# Bytes a plain (not yet compressed) event is assumed to hold, for the byte bound.
PLAIN_EVENT_BYTES = 1_600


class _Chunk:
    """A run of consecutive events: plain dicts, or one compressed pickle of them."""

    __slots__ = ("count", "data", "events", "pickled")

    def __init__(self, events: list[EventDict]) -> None:
        """Hold ``events`` plainly."""
        self.events: list[EventDict] | None = events
        self.data: bytes | None = None
        self.pickled = False
        self.count = len(events)

    def nbytes(self) -> int:
        """Return the bytes this chunk is accounted for."""
        if self.data is not None:
            return sys.getsizeof(self.data)
        return self.count * PLAIN_EVENT_BYTES

    def compress(self) -> None:
        """Replace the plain events by their compressed pickle (kept plain if pickling fails)."""
        if self.events is None:
            return
        try:
            raw = marshal.dumps(self.events)
        except ValueError:  # a dict subclass or another type marshal does not write
            try:
                raw = pickle.dumps(self.events, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception:  # noqa: BLE001 - a chunk that cannot be serialised stays plain
                return
            self.pickled = True
        self.data = zlib.compress(raw, 1)
        self.events = None

    def load(self) -> list[EventDict]:
        """Return the chunk's events."""
        if self.events is None:
            assert self.data is not None
            raw = zlib.decompress(self.data)
            return list(pickle.loads(raw) if self.pickled else marshal.loads(raw))
        return self.events


class Backlog:
    """An ordered, bounded, compressed holding area for events the database has not taken yet."""

    def __init__(self, max_bytes: int) -> None:
        """Set the bound, in bytes."""
        self.max_bytes = max_bytes
        self._chunks: deque[_Chunk] = deque()
        self._count = 0
        self._bytes = 0
        self._head: list[EventDict] | None = None  # the decompressed first chunk, cached

    def __len__(self) -> int:
        """Return the number of events held."""
        return self._count

    def __bool__(self) -> bool:
        """Return True when any event is held."""
        return self._count > 0

    @property
    def nbytes(self) -> int:
        """Return the bytes the held events are accounted for."""
        return self._bytes

    def extend(self, events: list[EventDict]) -> int:
        """Hold as many of ``events`` as the bounds allow, in order; return how many were held."""
        taken = 0
        for event in events:
            if self._bytes + PLAIN_EVENT_BYTES > self.max_bytes:
                break
            last = self._chunks[-1] if self._chunks else None
            if last is None or last.events is None or last.count >= CHUNK_EVENTS or (
                last is self._chunks[0] and self._head is not None
            ):
                last = _Chunk([])
                self._chunks.append(last)
            assert last.events is not None
            last.events.append(event)
            last.count += 1
            self._count += 1
            self._bytes += PLAIN_EVENT_BYTES
            taken += 1
            if last.count >= CHUNK_EVENTS:
                self._seal(last)
        return taken

    def _seal(self, chunk: _Chunk) -> None:
        """Compress a full chunk and account for its new size."""
        before = chunk.nbytes()
        chunk.compress()
        self._bytes += chunk.nbytes() - before

    def head(self, n: int) -> list[EventDict]:
        """Return up to ``n`` of the oldest events (first chunk only), leaving them held."""
        if not self._chunks:
            return []
        if self._head is None:
            self._head = self._chunks[0].load()
        return self._head[:n]

    def drop_head(self, n: int) -> None:
        """Remove the ``n`` oldest events (``n`` at most what ``head`` returned)."""
        if n <= 0:
            return
        first = self._chunks[0]
        events = self._head if self._head is not None else first.load()
        before = first.nbytes()
        rest = events[n:]
        self._count -= n
        if rest:
            first.events, first.data, first.count, first.pickled = rest, None, len(rest), False
            self._head = rest
        else:
            self._chunks.popleft()
            self._head = None
        self._bytes += (first.nbytes() if rest else 0) - before

    def clear(self) -> None:
        """Forget every held event."""
        self._chunks.clear()
        self._count = self._bytes = 0
        self._head = None

    def events(self) -> list[Any]:
        """Return every held event, oldest first (decompressing; for tests and hand-over)."""
        return [event for chunk in self._chunks for event in chunk.load()]
