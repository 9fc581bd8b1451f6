"""A small blocking websocket client (RFC 6455, text frames) for the live feed, with a reader
thread that keeps every message; enough to watch a real daphne without another dependency."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

ROW_RE = re.compile(r'<details id="ev-(\d+)" class="ev [^"]*" data-ts="([0-9.]+)"')
ORIGIN_RE = re.compile(r'<a class="origin"[^>]*>([^<]+)</a>')
MATCHED_RE = re.compile(r"<b>(\d+)</b> received")


class Closed(Exception):
    """The server closed the connection."""


@dataclass
class Row:
    """One row of the feed as the client saw it."""

    event_id: int
    ts: float  # the event's wall-clock time (seconds)
    origin: str  # "host:pid"
    seen_at: float  # when the client received it (seconds)


@dataclass
class FeedClient:
    """Connects to the live feed and records rows, status counters and connection notices."""

    url: str
    session: str
    origin: str
    rows: dict[int, Row] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    matched: int = 0
    closed: bool = False
    _sock: socket.socket | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def connect(self, timeout: float = 10.0) -> FeedClient:
        """Open the websocket (HTTP upgrade with the session cookie) and start reading."""
        parts = urlsplit(self.url)
        sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {self.origin}\r\nCookie: sessionid={self.session}\r\n\r\n"
        )
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(1)
            if not chunk:
                raise Closed("closed during the handshake")
            head += chunk
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise Closed(f"upgrade refused: {head[:200]!r}")
        sock.settimeout(None)
        self._sock = sock
        self.closed = False
        threading.Thread(target=self._read_loop, daemon=True, name="feed-client").start()
        return self

    def send_json(self, data: dict[str, Any]) -> None:
        """Send one masked text frame."""
        self._send_frame(0x1, json.dumps(data).encode())

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._send_frame(0x8, struct.pack("!H", 1000))
            self._sock.close()
        self.closed = True

    def origins(self, since: float = 0.0) -> dict[str, int]:
        """Return how many rows each origin ("host:pid") had, for events sent at or after since."""
        counts: dict[str, int] = {}
        with self._lock:
            for row in self.rows.values():
                if row.ts >= since:
                    counts[row.origin] = counts.get(row.origin, 0) + 1
        return counts

    def ids(self, since: float = 0.0) -> set[int]:
        """Return the event ids seen, for events sent at or after ``since``."""
        with self._lock:
            return {row.event_id for row in self.rows.values() if row.ts >= since}

    def kinds(self) -> list[str]:
        """Return the type of every message received, in order."""
        with self._lock:
            return [str(m.get("type")) for m in self.messages]

    def conn_states(self) -> list[str]:
        """Return the connection banner states the server sent ("offline", "live")."""
        with self._lock:
            return [str(m.get("state")) for m in self.messages if m.get("type") == "conn"]

    def wait_for(self, predicate: Any, timeout: float = 20.0, interval: float = 0.05) -> bool:
        """Wait until ``predicate()`` is true; return whether it became true in time."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(interval)
        return bool(predicate())

    # ---- frames -------------------------------------------------------------------------------

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        """Send one final, masked frame."""
        assert self._sock is not None
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
        elif size < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self._lock:
            self._sock.sendall(header + mask + masked)

    def _recv_exact(self, n: int) -> bytes:
        """Read exactly ``n`` bytes."""
        assert self._sock is not None
        data = b""
        while len(data) < n:
            chunk = self._sock.recv(n - len(data))
            if not chunk:
                raise Closed("connection closed")
            data += chunk
        return data

    def _read_frame(self) -> tuple[int, bool, bytes]:
        """Return (opcode, final, payload) of the next frame (server frames are not masked)."""
        first, second = self._recv_exact(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", self._recv_exact(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", self._recv_exact(8))
        return first & 0x0F, bool(first & 0x80), self._recv_exact(size)

    def _read_loop(self) -> None:
        """Read frames until the connection ends; answer pings; keep text messages."""
        buffer = b""
        try:
            while True:
                opcode, final, payload = self._read_frame()
                if opcode == 0x9:
                    self._send_frame(0xA, payload)
                elif opcode == 0x8:
                    break
                elif opcode in (0x1, 0x0):
                    buffer += payload
                    if final:
                        self._keep(json.loads(buffer.decode()))
                        buffer = b""
        except (OSError, Closed, ValueError):
            pass
        finally:
            self.closed = True

    def _keep(self, message: dict[str, Any]) -> None:
        """Record one message: rows of feed frames, the received counter, the banner state."""
        now = time.time()
        content = str(message.get("content", ""))
        with self._lock:
            self.messages.append(message)
            for match in MATCHED_RE.finditer(content):
                self.matched = int(match.group(1))
            if message.get("type") != "feed":
                return
            # Each row's origin link follows its <details> tag; pair them in order.
            starts = [(m.start(), m) for m in ROW_RE.finditer(content)]
            for index, (position, match) in enumerate(starts):
                end = starts[index + 1][0] if index + 1 < len(starts) else len(content)
                origin = ORIGIN_RE.search(content, position, end)
                event_id = int(match.group(1))
                self.rows.setdefault(
                    event_id,
                    Row(
                        event_id,
                        float(match.group(2)) / 1000,
                        origin.group(1) if origin else "",
                        now,
                    ),
                )
