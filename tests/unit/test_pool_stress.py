"""Many threads on one pool: no instance shared, leaked, double closed, or beyond max_live.

The fake instance checks exclusive use itself; the factory and closer count live instances from the
moment a build starts to the moment a close ends, which is what ``max_live`` must bound (defect 4).
A sweeping, clock-advancing mix exercises sweep vs put (defect 1); closing mid-run exercises put vs
close (defect 2).
"""

from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.errors import PoolClosed
from pytest_wasmhost.runtime.pool import InstancePool, PoolSettings

THREADS = 16
ITERATIONS = 300
MAX_LIVE = 10
JOIN_LIMIT = 30.0  # real seconds; a green run takes well under one


class FactoryFailed(Exception):
    pass


class BodyFailed(Exception):
    pass


class Tracker:
    """Counts live instances and collects violations seen by any thread."""

    def __init__(self, fail_every: int = 0) -> None:
        self.lock = threading.Lock()
        self.live = 0
        self.max_live = 0
        self.made: list[FakeInstance] = []
        self.errors: list[str] = []
        self.fail_every = fail_every
        self.builds = 0

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)

    def factory(self) -> FakeInstance:
        with self.lock:
            self.live += 1
            self.max_live = max(self.max_live, self.live)
            self.builds += 1
            fail = self.fail_every > 0 and self.builds % self.fail_every == 0
            if fail:
                self.live -= 1
            else:
                inst = FakeInstance(self, len(self.made))
                self.made.append(inst)
        if fail:
            raise FactoryFailed
        time.sleep(0)  # let other threads run while "instantiating"
        return inst

    def close(self, inst: FakeInstance) -> None:
        with self.lock:
            inst.close_calls += 1
            if inst.close_calls > 1:
                self.errors.append(f"{inst} closed {inst.close_calls} times")
        time.sleep(0)
        with self.lock:
            self.live -= 1
        if inst.serial % 7 == 0:
            raise OSError("closer failed")  # the pool must log it and still count the close


class FakeInstance:
    """Stands in for a wasm instance: one holder at a time, never used after close."""

    def __init__(self, tracker: Tracker, serial: int) -> None:
        self.tracker = tracker
        self.serial = serial
        self.close_calls = 0
        self._in_use = threading.Lock()

    def use(self) -> None:
        if not self._in_use.acquire(blocking=False):
            self.tracker.error(f"{self} used by two threads at once")
            return
        try:
            if self.close_calls:
                self.tracker.error(f"{self} used after close")
            time.sleep(0)
        finally:
            self._in_use.release()

    def __repr__(self) -> str:
        return f"FakeInstance({self.serial})"


@pytest.fixture(autouse=True)
def _frequent_thread_switches(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Switch threads often so interleavings actually happen; silence the expected closer errors."""
    caplog.set_level(logging.CRITICAL, logger="pytest_wasmhost.runtime.pool")
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


def make_pool(tracker: Tracker, clock: ManualClock) -> InstancePool[FakeInstance]:
    settings = PoolSettings(max_live=MAX_LIVE, idle_size=8, get_timeout=5.0, max_uses=40)
    return InstancePool(
        plugin_id="stress", factory=tracker.factory, close=tracker.close, settings=settings, clock=clock
    )


def one_operation(pool: InstancePool[FakeInstance], clock: ManualClock, rng: random.Random) -> None:
    roll = rng.random()
    if roll < 0.40:
        inst = pool.get()
        inst.use()
        pool.put(inst)
    elif roll < 0.55:
        inst = pool.get()
        inst.use()
        pool.discard(inst)
    elif roll < 0.75:
        with pool.lease() as inst:
            inst.use()
    elif roll < 0.88:
        try:
            with pool.lease() as inst:
                inst.use()
                raise BodyFailed
        except BodyFailed:
            pass
    elif roll < 0.95:
        pool.sweep()
    else:
        clock.advance(rng.choice([1.0, 30.0, 61.0, 601.0]))


def run_threads(worker: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + JOIN_LIMIT
    for thread in threads:
        thread.join(max(deadline - time.monotonic(), 0.0))
    assert not any(thread.is_alive() for thread in threads), "a worker hung"


def assert_all_closed_once(pool: InstancePool[FakeInstance], tracker: Tracker) -> None:
    stats = pool.stats()
    assert tracker.errors == []
    assert stats.created == len(tracker.made) == stats.closed
    assert (stats.live, stats.idle, stats.busy, stats.waiting) == (0, 0, 0, 0)
    assert [inst for inst in tracker.made if inst.close_calls != 1] == []
    assert tracker.live == 0
    assert tracker.max_live <= MAX_LIVE


def test_many_threads_get_put_discard_and_lease() -> None:
    tracker = Tracker(fail_every=25)
    clock = ManualClock()
    pool = make_pool(tracker, clock)
    start = threading.Barrier(THREADS)

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(ITERATIONS):
            try:
                one_operation(pool, clock, rng)
            except FactoryFailed:
                pass
            except Exception as exc:
                tracker.error(f"worker {seed}: {exc!r}")

    run_threads(worker)
    assert pool.stats().busy == 0
    pool.close()
    assert_all_closed_once(pool, tracker)
    assert len(tracker.made) > MAX_LIVE  # recycling (discard, max_uses, expiry) really happened
    assert tracker.max_live == MAX_LIVE  # the limit was reached, not just respected by an idle pool


def test_close_while_threads_are_busy_loses_nothing() -> None:
    tracker = Tracker()
    clock = ManualClock()
    pool = make_pool(tracker, clock)
    start = threading.Barrier(THREADS + 1)
    stopped = [False] * THREADS

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        for _ in range(ITERATIONS * 10):
            try:
                one_operation(pool, clock, rng)
            except PoolClosed:
                stopped[seed] = True
                return
            except Exception as exc:
                tracker.error(f"worker {seed}: {exc!r}")

    def close_after_progress() -> None:
        start.wait()
        deadline = time.monotonic() + JOIN_LIMIT
        while pool.stats().created < 3 * MAX_LIVE and time.monotonic() < deadline:
            time.sleep(0.001)
        pool.close()

    closer = threading.Thread(target=close_after_progress, daemon=True)
    closer.start()
    run_threads(worker)
    closer.join(JOIN_LIMIT)
    assert not closer.is_alive()
    assert all(stopped), "every worker must end on PoolClosed"
    assert_all_closed_once(pool, tracker)
