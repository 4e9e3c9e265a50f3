"""The guest's WASI world, as the original gave it (abi.md §7).

wasmtime's own WASI preview 1 provides everything; we configure it like the original (no args, env,
preopens or stdin) and shadow the two functions whose defaults differ:

* ``clock_time_get``: the original ran wazero's *fake* clocks. The wall clock's first reading is
  2022-01-01T00:00:00Z and every reading advances it by 1 ms; the monotonic clock starts at 0 and
  also advances 1 ms per reading. The state is per instance (wazero built it per instantiation).
  Other clock ids return EINVAL, as wazero did.
* ``random_get``: deterministic bytes per instance. wazero's exact byte sequence came from Go's
  math/rand, which we do not replicate; plugins only ever see "deterministic" either way.

``real_clocks=True`` / ``real_random=True`` give a guest the host's time and OS randomness instead.
stdout and stderr go to a bounded per-instance buffer (:class:`OutputCapture`) shown in reports:
``fd_write`` is shadowed too, so output is captured on the calling thread.
"""

from __future__ import annotations

import os
import random
import time
from collections import deque
from dataclasses import dataclass

WASI_MODULE = "wasi_snapshot_preview1"

FAKE_EPOCH_NS = 1_640_995_200_000_000_000  # 2022-01-01T00:00:00Z, wazero's FakeEpochNanos
_MS = 1_000_000
ERRNO_SUCCESS = 0
ERRNO_BADF = 8
ERRNO_FAULT = 21
ERRNO_INVAL = 28
_CLOCK_REALTIME = 0
_CLOCK_MONOTONIC = 1
_RANDOM_SEED = 42


@dataclass(frozen=True, slots=True)
class WasiOptions:
    """How much of the real world a guest sees. Defaults are the original's."""

    real_clocks: bool = False
    real_random: bool = False
    capture_limit: int = 64 * 1024  # bytes of stdout/stderr kept per instance (the newest win)


class OutputCapture:
    """A bounded byte buffer for a guest's stdout or stderr: a flooding plugin cannot eat our memory."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self.dropped = 0
        self.written = 0  # bytes written since the last clear, kept or dropped

    def write(self, data: bytes) -> None:
        self._chunks.append(bytes(data))
        self._size += len(data)
        self.written += len(data)
        while self._size > self._limit and self._chunks:
            head = self._chunks[0]
            excess = self._size - self._limit
            if len(head) <= excess:
                self._chunks.popleft()
                self._size -= len(head)
                self.dropped += len(head)
            else:
                self._chunks[0] = head[excess:]
                self._size -= excess
                self.dropped += excess

    def getvalue(self) -> bytes:
        return b"".join(self._chunks)

    def text(self) -> str:
        prefix = f"[... {self.dropped} earlier bytes dropped ...]\n" if self.dropped else ""
        return prefix + self.getvalue().decode("utf-8", errors="replace")

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0
        self.dropped = 0
        self.written = 0


class GuestWorld:
    """Per-instance WASI state: the fake clocks' counters, the random stream, captured output."""

    def __init__(self, options: WasiOptions) -> None:
        self.options = options
        self._wall_readings = 0
        self._mono_readings = 0
        self._random = random.Random(_RANDOM_SEED)
        self.stdout = OutputCapture(options.capture_limit)
        self.stderr = OutputCapture(options.capture_limit)

    def clock_ns(self, clock_id: int) -> int | None:
        """The clock's next reading in nanoseconds, or None for an unsupported clock."""
        if clock_id == _CLOCK_REALTIME:
            if self.options.real_clocks:
                return time.time_ns()
            value = FAKE_EPOCH_NS + self._wall_readings * _MS
            self._wall_readings += 1
            return value
        if clock_id == _CLOCK_MONOTONIC:
            if self.options.real_clocks:
                return time.monotonic_ns()
            value = self._mono_readings * _MS
            self._mono_readings += 1
            return value
        return None

    def random_bytes(self, n: int) -> bytes:
        if self.options.real_random:
            return os.urandom(n)
        return self._random.randbytes(n)
