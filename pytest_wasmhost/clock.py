"""The one clock every expiry reads, at the moment it needs it.

``SystemClock`` reads ``time.time()`` through the module on every call, so freezegun (which patches
``time.time``) decides what "now" is in tests; nothing caches a time at import. ``ManualClock`` is a
plain settable clock for unit tests that do not want freezegun.

Expiry is always evaluated lazily on access *and* by explicit ``sweep()`` calls. The production
runtime starts a :class:`Janitor` thread that only calls ``sweep()`` on a real-time interval; test
scopes are never swept by it: they advance the clock and sweep themselves.

The host's *own* waits and deadlines (a pool's get timeout, compile waits, call durations) read
:func:`host_monotonic`, which freezegun does not freeze: a frozen test clock must not stop a timeout
from firing.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Final, Protocol

log = logging.getLogger("pytest_wasmhost.clock")


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch, read now."""
        ...


class SystemClock:
    """Wall-clock time via ``time.time()`` (freezegun-aware: looked up on every call)."""

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def set(self, value: float) -> None:
        with self._lock:
            self._now = value


SYSTEM_CLOCK = SystemClock()


# Seconds on a monotonic clock that freezegun leaves alone, for the host's own waits and durations.
# freezegun replaces ``time.monotonic`` and ``time.perf_counter`` (and every module attribute bound to
# them) with frozen versions, so a deadline computed from them never passes under ``wasm_clock``; it
# does not touch ``clock_gettime``. A partial, not a function: it runs twice per host call, and the
# Python frame of a wrapper cost as much as the clock read itself.
host_monotonic: Final[Callable[[], float]] = functools.partial(time.clock_gettime, time.CLOCK_MONOTONIC)


class Janitor:
    """A daemon thread calling ``sweep`` every ``interval`` real seconds until stopped.

    It is the production runtime's only timer (the original swept pools every TTL/3); it does no work
    of its own, so tests that sweep explicitly see exactly the same behaviour without it. The wait is
    an ``Event.wait``: real time, whatever freezegun has frozen.
    """

    def __init__(self, sweep: Callable[[], object], interval: float, *, name: str) -> None:
        self._sweep = sweep
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Janitor:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sweep()
            except Exception:  # a failing sweep must not kill the janitor: log it and go on
                log.exception("janitor sweep failed")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop and wait for the thread (a sweep in progress finishes first)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
