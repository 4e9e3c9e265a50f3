"""The instance pool's rules (runtime.md §8.3), including the fixes for the defects of §11."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from freezegun import freeze_time

from pytest_wasmhost.clock import Clock, ManualClock, SystemClock
from pytest_wasmhost.errors import PoolClosed, PoolTimeout
from pytest_wasmhost.runtime import pool as pool_module
from pytest_wasmhost.runtime.pool import InstancePool, PoolSettings, PoolStats

SYNC_LIMIT = 5.0  # real seconds a helper thread may take to reach a state; never reached when green
# A waiter's get timeout far past SYNC_LIMIT: joined within SYNC_LIMIT, it returned only because something
# woke it (a lost notify() would still hand it the slot once its own timeout re-checks the state).
WAKE_TIMEOUT = 60.0


class Inst:
    def __init__(self, serial: int) -> None:
        self.serial = serial
        self.close_calls = 0

    def __repr__(self) -> str:
        return f"Inst({self.serial})"


class Harness:
    """A pool over ``Inst`` objects that records what the factory built and what the closer closed."""

    def __init__(self, clock: Clock | None = None, **settings: Any) -> None:
        self.clock = clock if clock is not None else ManualClock(start=1_000.0)
        self.made: list[Inst] = []
        self.closed: list[Inst] = []
        self.fail_next: BaseException | None = None
        self.pool: InstancePool[Inst] = InstancePool(
            plugin_id="demo",
            factory=self.factory,
            close=self.close,
            settings=PoolSettings(**settings),
            clock=self.clock,
        )

    def factory(self) -> Inst:
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        inst = Inst(len(self.made))
        self.made.append(inst)
        return inst

    def close(self, inst: Inst) -> None:
        inst.close_calls += 1
        self.closed.append(inst)

    def advance(self, seconds: float) -> None:
        assert isinstance(self.clock, ManualClock)
        self.clock.advance(seconds)


def wait_until(condition: Callable[[], bool]) -> None:
    """Synchronise with a helper thread (a state, not a time, is awaited)."""
    deadline = time.monotonic() + SYNC_LIMIT
    while not condition():
        assert time.monotonic() < deadline, "helper thread never reached the expected state"
        time.sleep(0.001)


def in_thread(fn: Callable[[], object]) -> tuple[threading.Thread, dict[str, object]]:
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def join(thread: threading.Thread) -> None:
    thread.join(SYNC_LIMIT)
    assert not thread.is_alive(), "helper thread hung"


# -- settings -------------------------------------------------------------------------------------


def test_defaults_are_the_originals_plus_the_fixes() -> None:
    s = PoolSettings()
    assert (s.idle_size, s.max_live, s.get_timeout, s.idle_ttl) == (8, 10, 5.0, 60.0)
    assert (s.max_age, s.max_uses, s.mode) == (600.0, None, "pooled")


@pytest.mark.parametrize(
    "bad",
    [
        {"max_live": 0},
        {"idle_size": -1},
        {"get_timeout": -1.0},
        {"idle_ttl": -1.0},
        {"max_age": -1.0},
        {"max_uses": 0},
        {"mode": "eager"},
    ],
)
def test_invalid_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        PoolSettings(**bad)  # type: ignore[arg-type]


# -- reuse and expiry -----------------------------------------------------------------------------


def test_reuse_is_fifo_by_return_order() -> None:
    h = Harness()
    a, b, c = h.pool.get(), h.pool.get(), h.pool.get()
    for inst in (b, c, a):
        h.pool.put(inst)
    assert [h.pool.get(), h.pool.get(), h.pool.get()] == [b, c, a]
    assert len(h.made) == 3


def test_idle_59s_is_reused_and_61s_is_not() -> None:
    h = Harness()
    a = h.pool.get()
    h.pool.put(a)
    h.advance(59)
    assert h.pool.get() is a
    h.pool.put(a)
    h.advance(61)
    b = h.pool.get()
    assert b is not a
    assert h.closed == [a]  # closed lazily when found expired, never handed out


def test_idle_ttl_with_freezegun_and_the_system_clock() -> None:
    with freeze_time("2024-05-01 12:00:00") as frozen:
        h = Harness(clock=SystemClock())
        a = h.pool.get()
        h.pool.put(a)
        frozen.tick(59)
        assert h.pool.get() is a
        h.pool.put(a)
        frozen.tick(61)
        assert h.pool.get() is not a
        assert h.closed == [a]


def test_idle_stamp_is_taken_at_put_not_at_get() -> None:
    h = Harness()
    a = h.pool.get()
    h.advance(100)  # busy for 100 s: that is not idle time
    h.pool.put(a)
    h.advance(30)
    assert h.pool.get() is a


def test_sweep_closes_only_expired_idle_instances() -> None:
    h = Harness()
    a, b, c = h.pool.get(), h.pool.get(), h.pool.get()
    h.pool.put(a)
    h.advance(30)
    h.pool.put(b)
    h.advance(31)  # a idle 61 s, b idle 31 s, c busy
    assert h.pool.sweep() == 1
    assert h.closed == [a]
    assert h.pool.stats().idle == 1
    assert h.pool.get() is b
    h.pool.put(c)
    assert h.pool.sweep() == 0


def test_sweep_frees_exactly_the_slots_it_closed() -> None:
    h = Harness(max_live=2)
    a, b = h.pool.get(), h.pool.get()
    h.pool.put(a)
    h.pool.put(b)
    h.advance(61)
    assert h.pool.sweep() == 2
    assert h.pool.stats() == PoolStats(live=0, idle=0, busy=0, created=2, closed=2, waiting=0)
    h.pool.get(timeout=0)
    h.pool.get(timeout=0)
    with pytest.raises(PoolTimeout):  # max_live still bounds what a sweep left
        h.pool.get(timeout=0)
    assert len(h.made) == 4


def test_busy_instances_are_recycled_at_max_age() -> None:
    """Defect 3: a plugin called every 30 s never idles 60 s, yet its instance must not live forever."""
    h = Harness(max_age=600.0)
    first = h.pool.get()
    for _ in range(20):  # 20 * 30 s = 600 s: exactly max_age, not older
        h.advance(30)
        h.pool.put(first)
        assert h.pool.get() is first
    h.advance(1)
    h.pool.put(first)  # 631 s old: closed on put
    assert h.closed == [first]
    assert h.pool.get() is not first


def test_idle_instance_past_max_age_is_not_handed_out() -> None:
    h = Harness(max_age=100.0, idle_ttl=60.0)
    old = h.pool.get()
    h.advance(90)
    young = h.pool.get()
    h.pool.put(old)  # FIFO: old first, young second
    h.pool.put(young)
    h.advance(20)  # old is 110 s old, idle 20 s
    assert h.pool.get() is young
    assert h.closed == [old]


def test_sweep_closes_idle_instances_past_max_age() -> None:
    h = Harness(max_age=100.0)
    a = h.pool.get()
    h.advance(95)
    h.pool.put(a)
    h.advance(10)
    assert h.pool.sweep() == 1
    assert h.closed == [a]


def test_no_max_age_keeps_a_busy_instance() -> None:
    h = Harness(max_age=None)
    a = h.pool.get()
    for _ in range(100):
        h.advance(30)
        h.pool.put(a)
        assert h.pool.get() is a


def test_max_uses_closes_on_the_last_put() -> None:
    h = Harness(max_uses=3)
    a = h.pool.get()
    h.pool.put(a)
    assert h.pool.get() is a
    h.pool.put(a)
    assert h.pool.get() is a
    h.pool.put(a)
    assert h.closed == [a]
    assert h.pool.get() is not a


def test_put_beyond_idle_size_closes_the_returned_instance() -> None:
    h = Harness(idle_size=2)
    a, b, c = h.pool.get(), h.pool.get(), h.pool.get()
    for inst in (a, b, c):
        h.pool.put(inst)
    assert h.closed == [c]
    assert h.pool.stats() == PoolStats(live=2, idle=2, busy=0, created=3, closed=1, waiting=0)


# -- max_live ---------------------------------------------------------------------------------------


def test_max_live_bounds_idle_plus_busy() -> None:
    """Defect 4: idle instances hold a slot, so live never exceeds max_live."""
    h = Harness(max_live=2, idle_size=8)
    a, b = h.pool.get(), h.pool.get()
    h.pool.put(a)
    assert h.pool.get() is a  # reused instead of building a third
    h.pool.put(a)
    h.pool.put(b)
    h.pool.get()
    h.pool.get()
    with pytest.raises(PoolTimeout):
        h.pool.get(timeout=0)
    assert len(h.made) == 2
    assert h.pool.stats().live == 2


def test_expired_idle_instances_make_room_at_max_live() -> None:
    h = Harness(max_live=1)
    a = h.pool.get()
    h.pool.put(a)
    h.advance(61)
    b = h.pool.get(timeout=0)
    assert b is not a
    assert h.closed == [a]


def test_pool_timeout_message_and_fields() -> None:
    h = Harness(max_live=2, get_timeout=0.05)
    h.pool.get()
    h.pool.get()
    started = time.monotonic()
    with pytest.raises(PoolTimeout) as info:
        h.pool.get()  # the settings' timeout
    assert time.monotonic() - started >= 0.04
    err = info.value
    text = str(err)
    assert "timeout waiting for available instance after 50ms" in text
    assert "'demo'" in text
    assert "max_live=2" in text
    assert err.plugin_id == "demo"
    assert err.fix is not None
    assert "raise max_live" in err.fix
    assert "something holds them" in err.fix
    assert h.pool.stats().waiting == 0


def test_pool_timeout_uses_the_explicit_timeout() -> None:
    h = Harness(max_live=1)
    h.pool.get()
    with pytest.raises(PoolTimeout, match="after 0s"):
        h.pool.get(timeout=0)
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            h.pool.get(timeout=bad)


def test_a_deadline_reached_exactly_is_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """No time left is a timeout: with the host clock standing still at the deadline, a get raises
    instead of waiting zero seconds and looking again (for as long as the clock stands still)."""
    start = time.monotonic()
    moved = threading.Event()
    monkeypatch.setattr(pool_module, "host_monotonic", lambda: start + (1.0 if moved.is_set() else 0.0))
    h = Harness(max_live=1)
    h.pool.get()
    thread, out = in_thread(lambda: h.pool.get(timeout=0))
    thread.join(SYNC_LIMIT)
    returned_at_the_deadline = not thread.is_alive()
    moved.set()  # a get still looking sees its deadline pass and ends: the thread never outlives the test
    join(thread)
    assert returned_at_the_deadline
    assert isinstance(out["error"], PoolTimeout)
    assert h.pool.stats().waiting == 0


def test_default_timeout_message_is_the_originals() -> None:
    pool: InstancePool[Inst] = InstancePool(plugin_id="demo", factory=lambda: Inst(0), close=lambda _: None)
    # Waiting the real 5 s is not worth it; the message is built from the effective timeout.
    assert "timeout waiting for available instance after 5s " in str(pool._timeout_error(5.0))


def test_an_infinite_timeout_waits_until_a_put() -> None:
    h = Harness(max_live=1)
    a = h.pool.get()
    thread, out = in_thread(lambda: h.pool.get(timeout=float("inf")))
    wait_until(lambda: h.pool.stats().waiting == 1)
    h.pool.put(a)
    join(thread)
    assert out == {"value": a}


def test_put_wakes_a_waiter_with_the_same_instance() -> None:
    h = Harness(max_live=1)
    a = h.pool.get()
    thread, out = in_thread(lambda: h.pool.get(timeout=WAKE_TIMEOUT))
    wait_until(lambda: h.pool.stats().waiting == 1)
    h.pool.put(a)
    join(thread)
    assert out == {"value": a}


def test_discard_frees_a_slot_so_a_waiter_proceeds() -> None:
    """The closer's return wakes the waiter at once (not when its own timeout would re-check)."""
    h = Harness(max_live=1)
    a = h.pool.get()
    thread, out = in_thread(lambda: h.pool.get(timeout=WAKE_TIMEOUT))
    wait_until(lambda: h.pool.stats().waiting == 1)
    h.pool.discard(a)
    join(thread)
    assert h.closed == [a]
    assert isinstance(out["value"], Inst)
    assert out["value"] is not a


# -- factory failures ---------------------------------------------------------------------------------


def test_factory_failure_is_reraised_unchanged_and_frees_the_slot() -> None:
    h = Harness(max_live=1)
    boom = RuntimeError("instantiate failed")
    h.fail_next = boom
    with pytest.raises(RuntimeError) as info:
        h.pool.get()
    assert info.value is boom
    assert h.pool.stats().live == 0
    assert isinstance(h.pool.get(timeout=0), Inst)  # the slot came back (defect 5)


def test_factory_failure_wakes_a_waiter() -> None:
    h = Harness(max_live=1)
    release = threading.Event()
    entered = threading.Event()

    def slow_failing_factory() -> Inst:
        entered.set()
        release.wait(SYNC_LIMIT)
        raise RuntimeError("boom")

    pool: InstancePool[Inst] = InstancePool(
        plugin_id="demo", factory=slow_failing_factory, close=h.close, settings=PoolSettings(max_live=1)
    )
    first, first_out = in_thread(lambda: pool.get(timeout=SYNC_LIMIT))
    assert entered.wait(SYNC_LIMIT)
    second, second_out = in_thread(lambda: pool.get(timeout=WAKE_TIMEOUT))
    wait_until(lambda: pool.stats().waiting == 1)
    release.set()
    join(first)
    join(second)
    assert isinstance(first_out["error"], RuntimeError)
    assert isinstance(second_out["error"], RuntimeError)  # it got the slot and ran the factory itself
    assert pool.stats().live == 0


def test_factory_returning_a_live_instance_is_refused() -> None:
    shared = Inst(0)
    pool: InstancePool[Inst] = InstancePool(plugin_id="demo", factory=lambda: shared, close=lambda _: None)
    assert pool.get() is shared
    with pytest.raises(ValueError, match="already live"):
        pool.get()
    assert pool.stats().live == 1


def test_factory_returning_a_live_instance_wakes_a_waiter() -> None:
    """The refused factory call frees its slot and wakes a waiter at once."""
    shared = Inst(0)
    entered, release = threading.Event(), threading.Event()
    results: list[Inst] = [shared, shared, Inst(1)]

    def factory() -> Inst:
        if len(results) == 2:  # the second call: hold its slot until the waiter waits, then repeat itself
            entered.set()
            release.wait(SYNC_LIMIT)
        return results.pop(0)

    pool: InstancePool[Inst] = InstancePool(
        plugin_id="demo", factory=factory, close=lambda _: None, settings=PoolSettings(max_live=2)
    )
    assert pool.get() is shared
    refused, refused_out = in_thread(lambda: pool.get(timeout=0))
    assert entered.wait(SYNC_LIMIT)
    waiter, waiter_out = in_thread(lambda: pool.get(timeout=WAKE_TIMEOUT))
    wait_until(lambda: pool.stats().waiting == 1)
    release.set()
    join(refused)
    join(waiter)
    assert isinstance(refused_out["error"], ValueError)
    assert "already live" in str(refused_out["error"])
    got = waiter_out["value"]
    assert isinstance(got, Inst)
    assert got.serial == 1


def test_factory_returning_an_idle_instance_is_refused() -> None:
    """An instance put back while the factory ran is live too: handing it out would give it two holders."""
    entered, release = threading.Event(), threading.Event()
    made: list[Inst] = []

    def factory() -> Inst:
        if made:  # the second call returns the first instance, once it has gone back idle
            entered.set()
            release.wait(SYNC_LIMIT)
            return made[0]
        made.append(Inst(0))
        return made[0]

    pool: InstancePool[Inst] = InstancePool(plugin_id="demo", factory=factory, close=lambda _: None)
    a = pool.get()
    thread, out = in_thread(lambda: pool.get(timeout=0))
    assert entered.wait(SYNC_LIMIT)
    pool.put(a)
    release.set()
    join(thread)
    assert isinstance(out["error"], ValueError)
    assert "already live" in str(out["error"])
    assert pool.stats() == PoolStats(live=1, idle=1, busy=0, created=1, closed=0, waiting=0)


# -- close --------------------------------------------------------------------------------------------


class Interrupt(BaseException):
    """Stands for KeyboardInterrupt: not an Exception, so the closer's failure is not just logged."""


def test_a_closer_interrupted_mid_close_still_closes_the_rest() -> None:
    h = Harness()
    a, b, c = h.pool.get(), h.pool.get(), h.pool.get()
    for inst in (a, b, c):
        h.pool.put(inst)
    calls: list[Inst] = []

    def close(inst: Inst) -> None:
        calls.append(inst)
        if inst is a and calls.count(a) == 1:  # once: a retry of the same instance shows, not recurses
            raise Interrupt
        h.close(inst)

    h.pool._closer = close
    with pytest.raises(Interrupt):
        h.pool.close()
    assert calls == [a, b, c]  # each exactly once, in order, and none left behind
    assert h.pool.stats() == PoolStats(live=0, idle=0, busy=0, created=3, closed=3, waiting=0)


def test_an_instance_being_closed_still_holds_its_slot() -> None:
    """``live`` counts an instance until its closer returns, so max_live bounds what is really open."""
    h = Harness(max_live=1)
    entered, release = threading.Event(), threading.Event()

    def slow_close(inst: Inst) -> None:
        entered.set()
        release.wait(SYNC_LIMIT)
        h.close(inst)

    h.pool._closer = slow_close
    a = h.pool.get()
    thread, out = in_thread(lambda: h.pool.discard(a))
    assert entered.wait(SYNC_LIMIT)
    assert h.pool.stats() == PoolStats(live=1, idle=0, busy=0, created=1, closed=0, waiting=0)
    with pytest.raises(PoolTimeout):
        h.pool.get(timeout=0)
    release.set()
    join(thread)
    assert out == {"value": None}
    assert h.pool.stats().live == 0
    assert h.pool.get(timeout=0) is not a


def test_get_on_a_closed_pool_raises_pool_closed() -> None:
    h = Harness()
    h.pool.close()
    with pytest.raises(PoolClosed) as info:
        h.pool.get()
    assert "pool is closing" in str(info.value)
    assert info.value.plugin_id == "demo"
    assert info.value.fix


def test_close_closes_idle_now_and_busy_when_they_come_back() -> None:
    h = Harness()
    a, b, c = h.pool.get(), h.pool.get(), h.pool.get()
    h.pool.put(a)
    h.pool.close()
    assert h.closed == [a]
    h.pool.put(b)  # put after close closes (defect 2)
    h.pool.discard(c)
    assert h.closed == [a, b, c]
    assert all(inst.close_calls == 1 for inst in h.made)
    h.pool.close()  # idempotent
    assert h.pool.stats() == PoolStats(live=0, idle=0, busy=0, created=3, closed=3, waiting=0)


def test_close_wakes_a_blocked_waiter_with_pool_closed() -> None:
    h = Harness(max_live=1)
    a = h.pool.get()
    thread, out = in_thread(lambda: h.pool.get(timeout=WAKE_TIMEOUT))
    wait_until(lambda: h.pool.stats().waiting == 1)
    started = time.monotonic()
    h.pool.close()
    join(thread)
    assert time.monotonic() - started < SYNC_LIMIT / 2
    assert isinstance(out["error"], PoolClosed)
    h.pool.put(a)
    assert h.closed == [a]


def test_pool_closed_while_the_factory_runs_closes_the_new_instance() -> None:
    """Defect 7: no instance is handed out by (or left alive in) a closed pool."""
    h = Harness()

    def closing_factory() -> Inst:
        inst = h.factory()
        pool.close()
        return inst

    pool: InstancePool[Inst] = InstancePool(plugin_id="demo", factory=closing_factory, close=h.close)
    with pytest.raises(PoolClosed):
        pool.get()
    assert h.closed == h.made
    assert pool.stats().live == 0


def test_context_manager_closes_the_pool() -> None:
    h = Harness()
    with h.pool as pool:
        pool.put(pool.get())
    assert h.pool.closed
    assert h.closed == h.made


# -- misuse ---------------------------------------------------------------------------------------------


def test_double_put_is_refused_so_no_instance_gets_two_holders() -> None:
    h = Harness()
    a = h.pool.get()
    h.pool.put(a)
    with pytest.raises(ValueError, match="not checked out"):
        h.pool.put(a)
    assert h.pool.get() is a
    assert h.pool.get() is not a  # the refused put left a single idle copy, now taken
    assert a.close_calls == 0


def test_foreign_objects_and_closed_instances_are_refused() -> None:
    h = Harness()
    with pytest.raises(ValueError, match="'demo'"):
        h.pool.put(Inst(99))
    a = h.pool.get()
    h.pool.discard(a)
    with pytest.raises(ValueError, match="put of an instance that is not checked out"):
        h.pool.put(a)
    with pytest.raises(ValueError, match="discard of an instance that is not checked out"):
        h.pool.discard(a)
    assert a.close_calls == 1


# -- lease, fresh mode, closer failures -------------------------------------------------------------------


def test_lease_puts_back_on_success() -> None:
    h = Harness()
    with h.pool.lease() as a:
        assert h.pool.stats().busy == 1
    assert h.pool.stats().idle == 1
    assert h.pool.get() is a


def test_lease_discards_when_the_body_raises() -> None:
    """Defect 6: a trapped instance is never reused."""
    h = Harness()
    with pytest.raises(ZeroDivisionError), h.pool.lease() as a:
        1 / 0  # noqa: B018
    assert h.closed == [a]
    assert h.pool.get() is not a


def test_fresh_mode_builds_one_instance_per_get_and_closes_it_on_put() -> None:
    h = Harness(mode="fresh", max_live=2)
    a = h.pool.get()
    h.pool.put(a)
    b = h.pool.get()
    c = h.pool.get()
    assert len({id(a), id(b), id(c)}) == 3
    assert h.closed == [a]
    assert h.pool.stats().idle == 0
    with pytest.raises(PoolTimeout):  # max_live still bounds concurrent instances
        h.pool.get(timeout=0)
    h.pool.put(b)
    h.pool.put(c)
    assert h.closed == [a, b, c]
    assert h.pool.stats().live == 0


def test_fresh_mode_lease() -> None:
    h = Harness(mode="fresh")
    with h.pool.lease() as a:
        pass
    with h.pool.lease() as b:
        pass
    assert a is not b
    assert h.closed == [a, b]


def test_a_raising_closer_is_logged_and_counts_as_closed(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[Inst] = []

    def bad_close(inst: Inst) -> None:
        calls.append(inst)
        raise OSError("close failed")

    h = Harness(idle_size=0)
    pool: InstancePool[Inst] = InstancePool(plugin_id="demo", factory=h.factory, close=bad_close)
    a = pool.get()
    with caplog.at_level(logging.ERROR, logger="pytest_wasmhost.runtime.pool"):
        pool.discard(a)
    assert calls == [a]
    assert "closing an instance failed" in caplog.text
    assert "'demo'" in caplog.text
    stats = pool.stats()
    assert (stats.live, stats.created, stats.closed) == (0, 1, 1)
    pool.close()
    assert calls == [a]  # exactly once


@pytest.mark.parametrize("how", ["close", "sweep"])
def test_a_raising_closer_in_a_multi_close_still_closes_the_rest(
    how: str, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness()
    a, b, c = h.pool.get(), h.pool.get(), h.pool.get()
    for inst in (a, b, c):
        h.pool.put(inst)

    def close(inst: Inst) -> None:
        h.close(inst)
        if inst is a:
            raise OSError("close failed")

    h.pool._closer = close
    with caplog.at_level(logging.ERROR, logger="pytest_wasmhost.runtime.pool"):
        if how == "close":
            h.pool.close()
        else:
            h.advance(61)
            assert h.pool.sweep() == 3
    assert h.closed == [a, b, c]
    assert all(inst.close_calls == 1 for inst in (a, b, c))
    assert caplog.text.count("closing an instance failed") == 1
    assert h.pool.stats() == PoolStats(live=0, idle=0, busy=0, created=3, closed=3, waiting=0)


def test_stats_count_a_waiter() -> None:
    h = Harness(max_live=1)
    a = h.pool.get()
    thread, out = in_thread(lambda: h.pool.get(timeout=WAKE_TIMEOUT))
    wait_until(lambda: h.pool.stats().waiting == 1)
    assert h.pool.stats() == PoolStats(live=1, idle=0, busy=1, created=1, closed=0, waiting=1)
    h.pool.put(a)
    join(thread)
    assert out == {"value": a}
    assert h.pool.stats().waiting == 0
    assert "live=1/1" in repr(h.pool)


def test_close_checked_out_closes_what_was_never_returned_and_leaves_what_is_in_use() -> None:
    h = Harness()
    abandoned, in_use = h.pool.get(), h.pool.get()
    refuse = {id(in_use)}

    def close(inst: Inst) -> None:
        if id(inst) in refuse:
            raise RuntimeError("a call is running on this instance")
        h.close(inst)

    h.pool._closer = close
    with pytest.raises(RuntimeError, match="close\\(\\) first"):
        h.pool.close_checked_out()
    h.pool.close()
    assert h.pool.close_checked_out() == 1
    assert h.closed == [abandoned]
    assert h.pool.stats().busy == 1
    refuse.clear()
    h.pool.put(in_use)  # back from its call: closed now, as before
    assert h.closed == [abandoned, in_use]
    assert h.pool.stats() == PoolStats(live=0, idle=0, busy=0, created=2, closed=2, waiting=0)
