"""The pool against a model, one random operation at a time (DESIGN.md §4: the pool's invariants).

The model predicts exactly which instance each get returns (FIFO among usable idle ones), which
instances each operation closes and in what order; invariants compare it with the pool after every
step: live <= max_live, no instance held twice, every instance idle, held or closed exactly once,
nothing expired handed out, and after close everything not held is closed and get raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.errors import PoolClosed, PoolTimeout
from pytest_wasmhost.runtime.pool import InstancePool, PoolSettings

Outcome = Literal["closed", "timeout", "reuse", "create"]


class FactoryError(Exception):
    pass


class BodyError(Exception):
    pass


class Inst:
    def __init__(self, serial: int, created: float) -> None:
        self.serial = serial
        self.created = created
        self.returned = created
        self.uses = 0
        self.close_calls = 0

    def __repr__(self) -> str:
        return f"Inst({self.serial})"


@dataclass
class Expected:
    outcome: Outcome
    instance: Inst | None
    expired: list[Inst]


class PoolMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.ready = False

    # Settings that close every returned instance (idle_size 0, fresh, max_uses 1, max_age 0) are
    # drawn rarely so that most runs reach several idle instances, FIFO order and expiry on get.
    @initialize(
        max_live=st.integers(1, 4),
        idle_size=st.sampled_from([0, 1, 2, 3, 4, 4, 4]),
        idle_ttl=st.sampled_from([0.0, 1.0, 5.0, 10.0, 10.0, 30.0]),
        max_age=st.sampled_from([None, 0.0, 2.0, 3.0, 8.0, 20.0]),
        max_uses=st.sampled_from([None, None, None, 1, 2, 3]),
        mode=st.sampled_from(["pooled"] * 5 + ["fresh"]),
    )
    def setup(
        self,
        max_live: int,
        idle_size: int,
        idle_ttl: float,
        max_age: float | None,
        max_uses: int | None,
        mode: Literal["pooled", "fresh"],
    ) -> None:
        self.settings = PoolSettings(
            max_live=max_live,
            idle_size=idle_size,
            idle_ttl=idle_ttl,
            max_age=max_age,
            max_uses=max_uses,
            mode=mode,
            get_timeout=0.0,
        )
        self.clock = ManualClock(start=0.0)
        self.pool: InstancePool[Inst] = InstancePool(
            plugin_id="machine",
            factory=self.factory,
            close=self.closer,
            settings=self.settings,
            clock=self.clock,
        )
        self.fail_next = False
        self.made: list[Inst] = []
        self.close_log: list[Inst] = []  # what the pool's closer saw, in order
        # The model.
        self.idle: list[Inst] = []  # oldest-returned first
        self.held: list[Inst] = []
        self.expected_closed: list[Inst] = []
        self.is_closed = False
        self.operations = 0  # gets and gives-back so far; close waits for some (it ends all reuse)
        self.ready = True

    def factory(self) -> Inst:
        if self.fail_next:
            raise FactoryError("instantiate failed")
        inst = Inst(len(self.made), self.clock.now())
        self.made.append(inst)
        return inst

    def closer(self, inst: Inst) -> None:
        inst.close_calls += 1
        self.close_log.append(inst)

    # -- the model's rules ---------------------------------------------------------------------------

    def expired(self, inst: Inst, now: float) -> bool:
        s = self.settings
        too_old = s.max_age is not None and now - inst.created > s.max_age
        return now - inst.returned > s.idle_ttl or too_old

    def predict_get(self) -> Expected:
        if self.is_closed:
            return Expected("closed", None, [])
        now = self.clock.now()
        idle = list(self.idle)
        expired = []
        while idle and self.expired(idle[0], now):
            expired.append(idle.pop(0))
        if idle:
            return Expected("reuse", idle[0], expired)
        if len(self.held) < self.settings.max_live:  # the expired ones no longer count
            return Expected("create", None, expired)
        return Expected("timeout", None, expired)

    def model_close(self, insts: list[Inst]) -> None:
        for inst in insts:
            if inst in self.idle:
                self.idle.remove(inst)
            self.expected_closed.append(inst)

    def check_handed_out(self, expected: Expected, got: Inst) -> None:
        now = self.clock.now()
        if expected.outcome == "reuse":
            assert got is expected.instance
            assert not self.expired(got, now), "an expired instance was handed out"
            self.idle.remove(got)
        else:
            assert expected.outcome == "create", f"expected {expected.outcome}, got an instance"
            assert got is self.made[-1]
            assert got.created == now
        assert all(got is not other for other in self.held), "one instance, two holders"
        got.uses += 1
        self.held.append(got)

    def check_refused(self, expected: Expected, error: BaseException) -> None:
        wanted = {"closed": PoolClosed, "timeout": PoolTimeout, "create": FactoryError}[expected.outcome]
        assert isinstance(error, wanted), f"expected {expected.outcome}, got {error!r}"
        if expected.outcome == "create":
            assert self.fail_next

    def model_put(self, inst: Inst) -> None:
        s = self.settings
        now = self.clock.now()
        self.held.remove(inst)
        retire = (
            self.is_closed
            or s.mode == "fresh"
            or (s.max_age is not None and now - inst.created > s.max_age)
            or (s.max_uses is not None and inst.uses >= s.max_uses)
            or len(self.idle) >= s.idle_size
        )
        if retire:
            self.expected_closed.append(inst)
        else:
            inst.returned = now
            self.idle.append(inst)

    def model_discard(self, inst: Inst) -> None:
        self.held.remove(inst)
        self.expected_closed.append(inst)

    # -- operations ---------------------------------------------------------------------------------

    @rule(fail=st.integers(0, 5).map(lambda n: n == 0))
    def get(self, fail: bool) -> None:
        self.operations += 1
        expected = self.predict_get()
        self.model_close(expected.expired)
        self.fail_next = fail
        try:
            got = self.pool.get(timeout=0)
        except (PoolClosed, PoolTimeout, FactoryError) as error:
            self.check_refused(expected, error)
        else:
            assert not (expected.outcome == "create" and fail)
            self.check_handed_out(expected, got)
        finally:
            self.fail_next = False

    @rule(body_raises=st.booleans())
    def lease(self, body_raises: bool) -> None:
        self.operations += 1
        expected = self.predict_get()
        self.model_close(expected.expired)
        try:
            with self.pool.lease(timeout=0) as got:
                self.check_handed_out(expected, got)
                if body_raises:
                    raise BodyError
                self.model_put(got)
        except BodyError:
            self.model_discard(got)
        except (PoolClosed, PoolTimeout) as error:
            self.check_refused(expected, error)

    @rule(count=st.integers(2, 4))
    def get_several(self, count: int) -> None:
        """A burst of gets (reaches several idle instances and max_live in few steps)."""
        for _ in range(count):
            self.get(fail=False)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def put(self, data: st.DataObject) -> None:
        self.put_one(data.draw(st.sampled_from(self.held)))

    @precondition(lambda self: len(self.held) > 1)
    @rule(data=st.data())
    def put_all(self, data: st.DataObject) -> None:
        """Give back everything held, in a random order (fills the idle deque in that order)."""
        for inst in data.draw(st.permutations(self.held)):
            self.put_one(inst)

    def put_one(self, inst: Inst) -> None:
        self.operations += 1
        self.model_put(inst)
        self.pool.put(inst)

    @precondition(lambda self: self.held)
    @rule(data=st.data())
    def discard(self, data: st.DataObject) -> None:
        inst = data.draw(st.sampled_from(self.held))
        self.model_discard(inst)
        self.pool.discard(inst)

    @rule(data=st.data(), use_discard=st.booleans())
    def give_back_what_is_not_held(self, data: st.DataObject, use_discard: bool) -> None:
        """Double put / discard, or a foreign object: refused, nothing changes."""
        candidates = [*self.idle, *self.expected_closed, Inst(-1, 0.0)]
        inst = data.draw(st.sampled_from(candidates))
        before = self.pool.stats()
        with pytest.raises(ValueError, match="not checked out"):
            (self.pool.discard if use_discard else self.pool.put)(inst)
        assert self.pool.stats() == before

    @rule(
        step=st.sampled_from(["small", "ttl-", "ttl", "ttl+", "age", "age+"]),
        small=st.integers(0, 4).map(lambda n: n / 2),
        data=st.data(),
    )
    def advance(self, step: str, small: float, data: st.DataObject) -> None:
        """Move time a little, or to just under / exactly on / just over a TTL or an instance's max age."""
        target = self.clock.now()
        if step.startswith("ttl"):
            target += self.settings.idle_ttl
        elif self.settings.max_age is not None and (self.idle or self.held):
            oldest = data.draw(st.sampled_from([*self.idle, *self.held]))
            target = oldest.created + self.settings.max_age
        shift = {"small": small, "ttl-": -0.5, "ttl+": 0.5, "age+": 0.5}.get(step, 0.0)
        self.clock.advance(max(target + shift - self.clock.now(), 0.0))

    @rule()
    def sweep(self) -> None:
        now = self.clock.now()
        doomed = [inst for inst in self.idle if self.expired(inst, now)]
        self.model_close(doomed)
        assert self.pool.sweep() == len(doomed)

    @precondition(lambda self: self.operations >= 4)
    @rule()
    def close(self) -> None:
        if not self.is_closed:
            self.model_close(list(self.idle))
            self.is_closed = True
        self.pool.close()

    # -- invariants ---------------------------------------------------------------------------------

    @invariant()
    def counts_match_the_model(self) -> None:
        if not self.ready:
            return
        stats = self.pool.stats()
        assert stats.live <= self.settings.max_live
        assert stats.live == len(self.idle) + len(self.held)
        assert (stats.idle, stats.busy) == (len(self.idle), len(self.held))
        assert (stats.created, stats.closed, stats.waiting) == (len(self.made), len(self.expected_closed), 0)

    @invariant()
    def closes_match_the_model(self) -> None:
        if not self.ready:
            return
        assert self.close_log == self.expected_closed

    @invariant()
    def every_instance_is_in_exactly_one_place(self) -> None:
        if not self.ready:
            return
        assert len({id(inst) for inst in self.held}) == len(self.held)
        for inst in self.made:
            places = [
                any(inst is x for x in self.idle),
                any(inst is x for x in self.held),
                any(inst is x for x in self.expected_closed),
            ]
            assert places.count(True) == 1, f"{inst} is in {places}"
            assert inst.close_calls == (1 if places[2] else 0)

    @invariant()
    def closed_pool_holds_nothing_idle_and_refuses_gets(self) -> None:
        if not (self.ready and self.is_closed):
            return
        assert not self.idle
        assert all(inst.close_calls == 1 for inst in self.made if all(inst is not h for h in self.held))
        with pytest.raises(PoolClosed):
            self.pool.get(timeout=0)


TestPoolMachine = PoolMachine.TestCase
TestPoolMachine.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
