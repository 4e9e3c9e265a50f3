"""The janitor: production runtimes expire idle instances on their own; test scopes follow their clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_wasmhost import open_plugin
from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.runtime.manager import PluginManager
from pytest_wasmhost.runtime.pool import PoolSettings
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings, ScopedRuntime
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module

IDLE_TTL = 60.0


def janitor_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "wasmhost-janitor" and t.is_alive())


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    return write_plugin(tmp_path / "plugins", metadata_module(), plugin_id="idle")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def runtime(tmp_path: Path, clock: ManualClock) -> Iterator[Runtime]:
    settings = RuntimeSettings(
        cache_dir=tmp_path / "cache", pool=PoolSettings(idle_ttl=IDLE_TTL), janitor_interval=0.01
    )
    with Runtime(settings, clock=clock) as rt:
        yield rt


def swept_once(scope: ScopedRuntime) -> threading.Event:
    """An event set the next time ``scope`` is swept (by whoever sweeps it)."""
    event = threading.Event()
    sweep = scope.sweep

    def watched() -> int:
        swept = sweep()
        event.set()
        return swept

    scope.sweep = watched  # type: ignore[method-assign]
    return event


def test_plugin_load_runs_a_janitor_that_ends_with_the_plugin(plugin_dir: Path, tmp_path: Path) -> None:
    before = janitor_threads()
    plugin = open_plugin(plugin_dir, cache_dir=tmp_path / "cache")
    assert janitor_threads() == before + 1
    plugin.close()
    assert janitor_threads() == before, "the janitor outlived its runtime"


def test_the_manager_scope_is_swept_by_the_janitor_on_real_time(
    runtime: Runtime, clock: ManualClock, plugin_dir: Path
) -> None:
    manager = PluginManager(runtime, plugin_dir.parent)
    manager.scan()
    assert manager.wait_idle(60)
    plugin = manager.load("idle", "MetadataAgent")
    assert plugin is not None
    plugin.metadata_agent.get_artist_mbid(name="x")
    assert plugin.stats().idle == 1
    swept = swept_once(manager.scope)
    clock.advance(IDLE_TTL + 1)
    assert swept.wait(10), "the janitor never swept the manager's scope"
    assert plugin.stats().idle == 0, "the expired idle instance is still open"
    manager.close()


def test_the_janitor_leaves_clock_driven_scopes_to_their_clock(
    runtime: Runtime, clock: ManualClock, plugin_dir: Path
) -> None:
    production = runtime.scope()
    test_scope = runtime.scope(clock_driven=True)
    in_test = test_scope.plugin(plugin_dir)
    in_production = production.plugin(plugin_dir)
    for plugin in (in_test, in_production):
        plugin.metadata_agent.get_artist_mbid(name="x")
    clock.advance(IDLE_TTL + 1)
    swept = swept_once(production)
    assert swept.wait(10), "the janitor never swept the production scope"
    assert in_production.stats().idle == 0
    assert in_test.stats().idle == 1, "the janitor swept a scope that belongs to a test's clock"
    runtime.sweep()  # what wasm_clock.advance does
    assert in_test.stats().idle == 0


def test_a_janitor_sweep_never_runs_beside_a_clock_driven_one(runtime: Runtime) -> None:
    inside_janitor = threading.Event()
    release_janitor = threading.Event()
    clock_entered = threading.Event()
    sweep = runtime.modules.sweep

    def blocking_sweep() -> int:
        if threading.current_thread().name == "wasmhost-janitor":
            inside_janitor.set()
            release_janitor.wait(10)
        else:
            clock_entered.set()
        return sweep()

    runtime.modules.sweep = blocking_sweep  # type: ignore[method-assign]
    assert inside_janitor.wait(10), "the janitor never swept"
    clock_driven = threading.Thread(target=runtime.sweep)
    clock_driven.start()
    try:
        # The correct outcome is that this wait runs out: the clock-driven sweep waits for the janitor's.
        assert not clock_entered.wait(0.3), "a clock-driven sweep ran while the janitor was sweeping"
    finally:
        release_janitor.set()
    clock_driven.join(10)
    assert not clock_driven.is_alive()
    assert clock_entered.is_set()


def test_janitor_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="janitor_interval must be > 0"):
        RuntimeSettings(janitor_interval=0).resolved_janitor_interval()


def test_the_session_runtime_runs_a_janitor_and_test_scopes_follow_the_clock(
    wasm_host: Runtime, wasm_runtime: object
) -> None:
    assert wasm_host.janitor is not None
    assert wasm_host.janitor.running
    assert wasm_runtime.scope.clock_driven  # type: ignore[attr-defined]
