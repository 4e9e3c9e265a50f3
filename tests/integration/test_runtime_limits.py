"""Deadlines, memory caps and traps: the harness contains a broken plugin and stays usable (issue 4)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_wasmhost import Plugin, PluginMemoryError, PluginTimeout, PluginTrap, open_plugin
from pytest_wasmhost.runtime.instance import InstanceLimits
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module

LOOP = "metadata_agent_get_artist_url"
HOG = "metadata_agent_get_artist_biography"
TRAP = "metadata_agent_get_album_info"

WASM = metadata_module(
    results={
        LOOP: "(loop $spin (br $spin)) (i64.const 0)",
        # Grow one page at a time until memory.grow fails (-1), then give up like an allocator would.
        HOG: "(block $full (loop $grow (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))"
        " (br $grow))) unreachable",
        TRAP: "unreachable",
    }
)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    settings = RuntimeSettings(
        disk_cache=False, limits=InstanceLimits(call_timeout=0.2, memory_limit=4 * 1024 * 1024)
    )
    with Runtime(settings) as rt:
        yield rt


@pytest.fixture
def plugin(runtime: Runtime, tmp_path: Path) -> Plugin:
    return runtime.plugin(write_plugin(tmp_path, WASM))


def assert_usable_afterwards(plugin: Plugin) -> None:
    before = plugin.stats()
    assert before.busy == 0
    assert plugin.metadata_agent.get_artist_mbid(name="x").mbid == ""
    after = plugin.stats()
    assert after.busy == 0
    assert after.live == after.idle == 1


def test_infinite_loop_is_stopped_at_the_deadline(plugin: Plugin) -> None:
    with pytest.raises(PluginTimeout) as info:
        plugin.metadata_agent.get_artist_url(name="x")
    assert info.value.export == LOOP
    assert "deadline of 0.2s" in str(info.value)
    assert "call_timeout" in str(info.value)
    assert plugin.stats().closed == 1, "the interrupted instance was discarded"
    assert_usable_afterwards(plugin)


def test_per_call_timeout_overrides_the_runtime_default(plugin: Plugin) -> None:
    with pytest.raises(PluginTimeout, match=r"deadline of 0\.05s"):
        plugin.call(LOOP, timeout=0.05)


def test_memory_hog_hits_the_cap(plugin: Plugin) -> None:
    with pytest.raises(PluginMemoryError) as info:
        plugin.metadata_agent.get_artist_biography(name="x")
    assert info.value.export == HOG
    assert "4 MiB" in str(info.value)
    assert plugin.stats().closed == 1
    assert_usable_afterwards(plugin)


def test_trap_is_a_plugin_trap_with_a_backtrace(plugin: Plugin) -> None:
    with pytest.raises(PluginTrap) as info:
        plugin.metadata_agent.get_album_info(name="x", artist="y")
    assert "unreachable" in str(info.value)
    assert info.value.backtrace
    assert plugin.stats().closed == 1
    assert_usable_afterwards(plugin)


def test_module_needing_more_initial_memory_than_the_cap_is_a_memory_error(tmp_path: Path) -> None:
    big = metadata_module(pages=128)  # 8 MiB of initial memory
    settings = RuntimeSettings(disk_cache=False, limits=InstanceLimits(memory_limit=1024 * 1024))
    with Runtime(settings) as rt, pytest.raises(PluginMemoryError, match="1 MiB"):
        rt.plugin(write_plugin(tmp_path, big))


def test_standalone_plugin_load_takes_runtime_settings(tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, WASM)
    with (
        open_plugin(folder, disk_cache=False, limits=InstanceLimits(call_timeout=0.05)) as plugin,
        pytest.raises(PluginTimeout),
    ):
        plugin.metadata_agent.get_artist_url(name="x")


def test_a_deadline_inside_the_malloc_the_host_calls_is_a_timeout(runtime: Runtime, tmp_path: Path) -> None:
    # The export arms a malloc that never returns, then asks the host for its config: the host's
    # malloc for the response is where the deadline fires (it read "PluginTrap ... interrupt").
    wasm = metadata_module(
        imports='(import "env" "get_plugin_config" (func $cfg (param i32 i32) (result i64)))',
        extra="(global $armed (mut i32) (i32.const 0))",
        malloc_body="(if (global.get $armed) (then (loop $spin (br $spin)))) "
        "(local.set $p (global.get $next)) (global.set $next (i32.add (global.get $next) (local.get 0))) "
        "(local.get $p)",
        results={LOOP: "(global.set $armed (i32.const 1)) (call $cfg (i32.const 0) (i32.const 0))"},
    )
    folder = write_plugin(tmp_path, wasm, permissions={"config": {"reason": "r"}})
    plugin = runtime.plugin(folder, config={"key": "value"})
    with pytest.raises(PluginTimeout) as info:
        plugin.metadata_agent.get_artist_url(name="x")
    assert info.value.export == LOOP
    assert "deadline of 0.2s" in str(info.value)
