"""A generic, thread-safe instance pool (runtime.md §8.3), without the original's races (§11).

The pool knows nothing about wasmtime: it takes a ``factory`` that builds an instance and a ``close``
that disposes of one. Its rules:

* ``max_live`` bounds every live instance, idle *and* checked out *and* being built or closed
  (defect 4 counted only checked-out ones).
* Every state change happens under one lock over a deque, so sweep, put and close cannot lose an
  instance (defects 1, 2, 7). The factory and the closer run outside the lock.
* An instance expires after ``idle_ttl`` idle (stamped at put), after ``max_age`` since creation
  (defect 3: a busy plugin's instances are recycled too), or after ``max_uses`` hand-outs. Expired
  instances are closed lazily by ``get``/``put`` and eagerly by ``sweep``; none is handed out.
* ``discard`` closes an instance that trapped or timed out instead of recycling it (defect 6);
  ``lease`` does so automatically when its body raises.
* A put that does not match a checked-out instance raises instead of being silently absorbed
  (defect 7), so one instance never has two holders.

Expiry reads the injected :class:`Clock`; the get timeout is a real wait and reads ``host_monotonic``
(never frozen by freezegun, so it fires under ``wasm_clock`` too).
"""

from __future__ import annotations

import logging
import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, Self, TypeVar

from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock, host_monotonic
from pytest_wasmhost.errors import PoolClosed, PoolTimeout, hide_harness_frames
from pytest_wasmhost.gocompat.time import format_duration

# Errors of ours show the user's frames, not these (see errors.hide_harness_frames).
__tracebackhide__ = hide_harness_frames

__all__ = ["InstancePool", "PoolMode", "PoolSettings", "PoolStats"]

log = logging.getLogger("pytest_wasmhost.runtime.pool")

T = TypeVar("T")
PoolMode = Literal["pooled", "fresh"]


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """Pool limits. The first four are the original's; the rest fix its defects (runtime.md §11)."""

    idle_size: int = 8
    max_live: int = 10
    get_timeout: float = 5.0
    idle_ttl: float = 60.0
    #: Seconds since creation after which an instance is never handed out again (defect 3).
    max_age: float | None = 600.0
    #: Hand-outs after which an instance is closed on put (``None``: unlimited).
    max_uses: int | None = None
    #: ``"fresh"``: a new instance per get, closed on put (the later Navidrome host's model).
    mode: PoolMode = "pooled"

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ValueError(f"invalid PoolSettings: {'; '.join(problems)}")

    def _problems(self) -> list[str]:
        checks = [
            (self.idle_size >= 0, f"idle_size must be >= 0, got {self.idle_size}"),
            (self.max_live >= 1, f"max_live must be >= 1, got {self.max_live}"),
            (self.get_timeout >= 0, f"get_timeout must be >= 0, got {self.get_timeout}"),
            (self.idle_ttl >= 0, f"idle_ttl must be >= 0, got {self.idle_ttl}"),
            (self.max_age is None or self.max_age >= 0, f"max_age must be None or >= 0, got {self.max_age}"),
            (
                self.max_uses is None or self.max_uses >= 1,
                f"max_uses must be None or >= 1, got {self.max_uses}",
            ),
            (self.mode in ("pooled", "fresh"), f"mode must be 'pooled' or 'fresh', got {self.mode!r}"),
        ]
        return [problem for ok, problem in checks if not ok]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A consistent snapshot. ``live`` also counts instances being built or closed right now."""

    live: int
    idle: int
    busy: int
    created: int
    closed: int
    waiting: int


@dataclass(slots=True, eq=False)
class _Entry(Generic[T]):
    """An instance plus its bookkeeping; holding it keeps ``id(instance)`` from being reused."""

    instance: T
    created: float
    #: When it becomes too old to hand out (``created + max_age``; infinite without a max_age).
    retire_at: float
    uses: int = 0
    #: When it stops being usable while idle: ``min(returned + idle_ttl, retire_at)``, set by ``put``.
    #: The deadlines are worked out once so the hot paths only compare a number.
    expires: float = 0.0


@dataclass(slots=True)
class _Step(Generic[T]):
    """What one pass of ``get`` under the lock decided; exactly one field is set."""

    expired: list[_Entry[T]] = field(default_factory=list)
    entry: _Entry[T] | None = None
    reserved: bool = False


class InstancePool(Generic[T]):
    """Instances of one plugin, reused (``mode="pooled"``) or one per call (``mode="fresh"``)."""

    def __init__(
        self,
        *,
        plugin_id: str,
        factory: Callable[[], T],
        close: Callable[[T], None],
        settings: PoolSettings = PoolSettings(),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.plugin_id = plugin_id
        self.settings = settings
        self._factory = factory
        self._closer = close
        self._now = clock.now  # bound once: read on every get and put
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # the same lock: fast paths take it directly
        self._idle: deque[_Entry[T]] = deque()  # oldest-returned first (FIFO reuse)
        self._busy: dict[int, _Entry[T]] = {}  # checked out, by id(instance)
        self._reserved = 0  # slots held by factory calls in flight
        self._closing = 0  # instances handed to the closer that has not returned yet
        self._created = 0
        self._closed_count = 0
        self._waiting = 0
        self._closed = False

    # -- public API ------------------------------------------------------------------------------

    def get(self, timeout: float | None = None) -> T:
        """An instance for the caller's exclusive use; give it back with ``put`` or ``discard``.

        Waits up to ``timeout`` seconds (default ``settings.get_timeout``) for a slot, then raises
        :class:`PoolTimeout`; raises :class:`PoolClosed` if the pool is or gets closed meanwhile.
        A factory failure propagates unchanged and frees its slot.
        """
        if timeout is not None and not timeout >= 0:  # also refuses NaN
            raise ValueError(f"timeout must be >= 0, got {timeout}")
        # The common case, a usable idle instance first in line, in one hold of the bare lock taken
        # with acquire/release: a ``with`` costs twice as much, and Condition's __enter__ is a frame.
        lock = self._lock
        lock.acquire()
        try:
            idle = self._idle
            if idle and not self._closed:
                entry = idle[0]
                if self._now() <= entry.expires:  # not _expired(): no frame on every call
                    idle.popleft()
                    entry.uses += 1
                    self._busy[id(entry.instance)] = entry
                    return entry.instance
        finally:
            lock.release()
        wait = self.settings.get_timeout if timeout is None else timeout
        if not wait >= 0:  # also refuses NaN
            raise ValueError(f"timeout must be >= 0, got {wait}")
        deadline = host_monotonic() + wait
        while True:
            step = self._next_step(deadline, wait)
            if step.entry is not None:
                return step.entry.instance
            if step.reserved:
                return self._create()
            self._close_all(step.expired)  # then look again: they freed slots

    def put(self, instance: T) -> None:
        """Return a checked-out instance: kept idle for reuse, or closed if it must not be reused."""
        lock = self._lock  # acquire/release rather than ``with``, as in get: every call comes here
        lock.acquire()
        try:
            entry = self._busy.pop(id(instance), None)
            if entry is None or entry.instance is not instance:
                if entry is not None:
                    self._busy[id(instance)] = entry
                raise self._not_checked_out("put")
            now = self._now()
            reason = self._retire_reason(entry, now)
            if reason is None:
                idle_until = now + self.settings.idle_ttl
                entry.expires = idle_until if idle_until < entry.retire_at else entry.retire_at
                self._idle.append(entry)
                if self._waiting:
                    self._cond.notify()
                return
            self._closing += 1
        finally:
            lock.release()
        log.debug("plugin %r: closing a returned instance (%s)", self.plugin_id, reason)
        self._close_all([entry])

    def discard(self, instance: T) -> None:
        """Close a checked-out instance instead of reusing it (it trapped or timed out: defect 6)."""
        with self._cond:
            entry = self._take_busy(instance, "discard")
            self._closing += 1
        self._close_all([entry])

    def sweep(self) -> int:
        """Close idle instances past ``idle_ttl`` idle or ``max_age`` old; returns how many."""
        with self._cond:
            if not self._idle:
                return 0
            now = self._now()
            expired = [entry for entry in self._idle if self._expired(entry, now)]
            if expired:
                keep = [entry for entry in self._idle if not self._expired(entry, now)]
                self._idle.clear()
                self._idle.extend(keep)
                self._closing += len(expired)
        self._close_all(expired)
        return len(expired)

    def close(self) -> None:
        """Refuse further gets, close idle instances now and checked-out ones when they come back."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            doomed = list(self._idle)
            self._idle.clear()
            self._closing += len(doomed)
            self._cond.notify_all()  # blocked gets wake up and raise PoolClosed
        self._close_all(doomed)

    def close_checked_out(self) -> int:
        """Close the instances still checked out of a closed pool: their holder is gone (a test that
        never returned one). One whose closer refuses, because a call on it is still running, stays
        checked out and is closed when it comes back. Returns how many were closed."""
        with self._cond:
            if not self._closed:
                raise RuntimeError("close_checked_out() is for a closed pool: close() first")
            entries = list(self._busy.values())
        closed = 0
        for entry in entries:
            try:
                self._closer(entry.instance)
            except Exception:  # in use right now: it closes on its way back (put / discard)
                continue
            with self._cond:
                if self._busy.pop(id(entry.instance), None) is not None:
                    self._closed_count += 1
                    closed += 1
                    self._cond.notify()
        return closed

    @property
    def closed(self) -> bool:
        with self._cond:
            return self._closed

    def stats(self) -> PoolStats:
        with self._cond:
            return PoolStats(
                live=self._live(),
                idle=len(self._idle),
                busy=len(self._busy),
                created=self._created,
                closed=self._closed_count,
                waiting=self._waiting,
            )

    def lease(self, timeout: float | None = None) -> _Lease[T]:
        """``get`` an instance; ``put`` it back on normal exit, ``discard`` it if the body raised.

        Any exception means the guest may be left mid-call, so the instance is never reused (defect 6).
        A small class rather than ``@contextmanager``: this is on every call's path.
        """
        return _Lease(self, timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"InstancePool(plugin_id={self.plugin_id!r}, mode={self.settings.mode!r}, "
            f"live={s.live}/{self.settings.max_live}, idle={s.idle}, busy={s.busy}, closed={self.closed})"
        )

    # -- get, under the lock ---------------------------------------------------------------------

    def _next_step(self, deadline: float, wait: float) -> _Step[T]:
        """Take an idle instance, reserve a slot, or collect expired ones to close; else wait."""
        with self._cond:
            while True:
                if self._closed:
                    raise self._closed_error()
                expired = self._pop_expired_front()
                if expired:
                    self._closing += len(expired)
                    return _Step(expired=expired)
                if self._idle:
                    return _Step(entry=self._hand_out(self._idle.popleft()))
                if self._live() < self.settings.max_live:
                    self._reserved += 1
                    return _Step(reserved=True)
                # Checked after the state so a wake-up that raced the timeout still gets its slot.
                remaining = deadline - host_monotonic()
                if remaining <= 0:
                    raise self._timeout_error(wait)
                self._wait(remaining)

    def _pop_expired_front(self) -> list[_Entry[T]]:
        """Pop expired instances off the front until a usable one (or none) is first."""
        if not self._idle:
            return []
        now = self._now()
        expired = []
        while self._idle and self._expired(self._idle[0], now):
            expired.append(self._idle.popleft())
        return expired

    def _hand_out(self, entry: _Entry[T]) -> _Entry[T]:
        entry.uses += 1
        self._busy[id(entry.instance)] = entry
        return entry

    def _wait(self, remaining: float) -> None:
        self._waiting += 1
        try:
            self._cond.wait(min(remaining, threading.TIMEOUT_MAX))  # timeout=math.inf waits for good
        finally:
            self._waiting -= 1

    # -- creating and closing, outside the lock ---------------------------------------------------

    def _create(self) -> T:
        """Build an instance in the slot this thread reserved."""
        try:
            created = self._now()
            instance = self._factory()
        except BaseException:
            self._release_reservation()
            raise
        max_age = self.settings.max_age
        entry = _Entry(instance, created, math.inf if max_age is None else created + max_age)
        with self._cond:
            self._reserved -= 1
            if self._is_live(instance):
                self._cond.notify()
                raise ValueError(
                    f"plugin {self.plugin_id!r}: the pool's factory returned an instance that is already "
                    "live in this pool; the factory must build a new object on every call"
                )
            self._created += 1
            if not self._closed:
                return self._hand_out(entry).instance
            self._closing += 1  # closed while the factory ran: never hand out on a closed pool (defect 7)
        self._close_all([entry])
        raise self._closed_error()

    def _release_reservation(self) -> None:
        with self._cond:
            self._reserved -= 1
            self._cond.notify()

    def _close_all(self, entries: list[_Entry[T]]) -> None:
        for index, entry in enumerate(entries):
            try:
                self._close_one(entry)
            except BaseException:  # KeyboardInterrupt and the like: still close the rest
                self._close_all(entries[index + 1 :])
                raise

    def _close_one(self, entry: _Entry[T]) -> None:
        """Call the closer exactly once; a failing closer is logged and the instance counts as closed."""
        try:
            self._closer(entry.instance)
        except Exception:
            log.exception("plugin %r: closing an instance failed; it counts as closed", self.plugin_id)
        finally:
            with self._cond:
                self._closing -= 1
                self._closed_count += 1
                self._cond.notify()  # its slot is free now

    # -- rules, under the lock ------------------------------------------------------------------

    def _live(self) -> int:
        return len(self._idle) + len(self._busy) + self._reserved + self._closing

    def _is_live(self, instance: T) -> bool:
        return id(instance) in self._busy or any(entry.instance is instance for entry in self._idle)

    def _take_busy(self, instance: T, action: str) -> _Entry[T]:
        entry = self._busy.get(id(instance))
        if entry is None or entry.instance is not instance:
            raise self._not_checked_out(action)
        del self._busy[id(instance)]
        return entry

    def _not_checked_out(self, action: str) -> ValueError:
        return ValueError(
            f"plugin {self.plugin_id!r}: {action} of an instance that is not checked out from this "
            f"pool (already returned, or not from this pool); give back each instance from get() "
            f"exactly once, with put() or discard()"
        )

    def _expired(self, entry: _Entry[T], now: float) -> bool:
        """Idle past ``idle_ttl`` or older than ``max_age``: never handed out again."""
        return now > entry.expires

    def _retire_reason(self, entry: _Entry[T], now: float) -> str | None:
        """Why a returned instance must be closed rather than kept idle (``None``: keep it)."""
        s = self.settings
        if self._closed:
            return "pool closed"
        if s.mode == "fresh":
            return "fresh mode"
        if now > entry.retire_at:
            return f"older than max_age={s.max_age}s"
        if s.max_uses is not None and entry.uses >= s.max_uses:
            return f"used max_uses={s.max_uses} times"
        if len(self._idle) >= s.idle_size:
            return f"idle_size={s.idle_size} instances already idle"
        return None

    def _timeout_error(self, waited: float) -> PoolTimeout:
        limit = self.settings.max_live
        return PoolTimeout(
            f"timeout waiting for available instance after {format_duration(round(waited * 1e9))} "
            f"(all {limit} instance slots are in use, max_live={limit}).",
            plugin_id=self.plugin_id,
            fix=(
                f"raise max_live (PoolSettings(max_live=...), now {limit}) if the plugin really runs that "
                "many calls at once, or release instances: something holds them (every get() needs a "
                "put() or discard(); prefer pool.lease())."
            ),
        )

    def _closed_error(self) -> PoolClosed:
        return PoolClosed(
            "pool is closing.",
            plugin_id=self.plugin_id,
            fix="the plugin's runtime was closed; make calls before closing it, or load the plugin again.",
        )


class _Lease(Generic[T]):
    """The context manager behind :meth:`InstancePool.lease`."""

    __slots__ = ("_instance", "_pool", "_timeout")

    def __init__(self, pool: InstancePool[T], timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout

    def __enter__(self) -> T:
        self._instance = self._pool.get(self._timeout)
        return self._instance

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            self._pool.put(self._instance)
        else:
            self._pool.discard(self._instance)
