"""Runtime and ScopedRuntime: shared builds, per-scope state, reload on change, pool modes (issue 4)."""

from __future__ import annotations

import gc
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time

from pytest_wasmhost.errors import ConfigKeyWarning
from pytest_wasmhost.runtime import compile_cache
from pytest_wasmhost.runtime.pool import PoolSettings
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module, packed

# get_artist_mbid returns ArtistMBIDResponse{mbid: "<n>"} where n counts calls on this instance (1..9).
COUNTER = metadata_module(
    data=b"\x0a\x010",
    extra="""
  (global $calls (mut i32) (i32.const 0))
  (func $count (result i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store8 (i32.const 258) (i32.add (i32.const 48) (global.get $calls)))
    (i64.const 0x0000010000000003))""",
    results={"metadata_agent_get_artist_mbid": "(call $count)"},
)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with Runtime(RuntimeSettings(cache_dir=tmp_path / "cache")) as rt:
        yield rt


def mbid(plugin: object) -> str:
    return plugin.metadata_agent.get_artist_mbid(name="x").mbid  # type: ignore[attr-defined,no-any-return]


def test_instances_are_pooled_and_keep_guest_state(runtime: Runtime, tmp_path: Path) -> None:
    plugin = runtime.plugin(write_plugin(tmp_path, COUNTER))
    assert [mbid(plugin) for _ in range(3)] == ["1", "2", "3"]


def test_fresh_mode_gives_every_call_a_new_instance(tmp_path: Path) -> None:
    settings = RuntimeSettings(disk_cache=False, pool=PoolSettings(mode="fresh"))
    with Runtime(settings) as rt:
        plugin = rt.plugin(write_plugin(tmp_path, COUNTER))
        assert [mbid(plugin) for _ in range(3)] == ["1", "1", "1"]
        assert plugin.stats().live == 0


def test_scopes_share_the_build_but_not_instances(runtime: Runtime, tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, COUNTER)
    with runtime.scope() as first, runtime.scope() as second:
        a, b = first.plugin(folder), second.plugin(folder)
        assert a.linked is b.linked
        assert [mbid(a), mbid(a), mbid(b)] == ["1", "2", "1"]
        first.close()
        assert a.stats().closed == a.stats().created
        assert b.stats().idle == 1, "closing one scope leaves the other's instances alone"
        assert mbid(b) == "2"


def test_concurrent_first_use_builds_once(runtime: Runtime, tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, COUNTER)
    builds: list[object] = []
    barrier = threading.Barrier(8)

    def build() -> None:
        barrier.wait()
        builds.append(runtime.build(folder))

    threads = [threading.Thread(target=build) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(builds) == 8
    assert all(b is builds[0] for b in builds)


def test_a_rebuilt_plugin_is_picked_up_on_next_load(runtime: Runtime, tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, metadata_module(result=packed(256, 3), data=b"\x0a\x01A"))
    assert mbid(runtime.plugin(folder)) == "A"
    (folder / "plugin.wasm").write_bytes(metadata_module(result=packed(256, 3), data=b"\x0a\x01B"))
    assert mbid(runtime.plugin(folder)) == "B"


def test_unchanged_plugin_reuses_its_build(runtime: Runtime, tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, COUNTER)
    assert runtime.build(folder) is runtime.build(folder)


def test_warm_start_loads_from_the_disk_cache_without_compiling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_plugin(tmp_path, COUNTER)
    settings = RuntimeSettings(cache_dir=tmp_path / "cache")
    with Runtime(settings) as rt:
        rt.plugin(folder)
    compiles: list[str] = []
    original = compile_cache.compile_module

    def counting(*args: object, **kwargs: object) -> object:
        compiles.append("compiled")
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(compile_cache, "compile_module", counting)
    with Runtime(settings) as rt:
        assert mbid(rt.plugin(folder)) == "1"
    assert compiles == []


def test_idle_instance_expires_after_a_minute_with_frozen_time(runtime: Runtime, tmp_path: Path) -> None:
    with freeze_time("2026-01-01 12:00:00") as frozen:
        plugin = runtime.plugin(write_plugin(tmp_path, COUNTER))
        assert mbid(plugin) == "1"
        frozen.tick(59)
        runtime.sweep()
        assert mbid(plugin) == "2", "idle 59 s: reused"
        frozen.tick(61)
        runtime.sweep()
        assert plugin.stats().idle == 0
        assert mbid(plugin) == "1", "idle 61 s: a fresh instance"


def test_config_is_read_live_and_keys_are_lower_cased(runtime: Runtime, samples_dir: Path) -> None:
    folder = samples_dir / "c" / "config_agent"
    section = {"Greeting": "Hi"}
    with runtime.scope(config={"Config_Agent": section}) as scope:
        plugin = scope.plugin(folder)
        # The id and the key match case-insensitively: the plugin asks for "greeting".
        with pytest.warns(ConfigKeyWarning, match="sees the configuration key 'greeting', not 'Greeting'"):
            assert plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hi, Ann"
        scope.config["Config_Agent"] = {"GREETING": "Yo"}  # read live on every call
        with pytest.warns(ConfigKeyWarning, match="not 'GREETING'") as warned:
            answers = [plugin.metadata_agent.get_artist_biography(name="Ann").biography for _ in range(2)]
        assert answers == ["Yo, Ann", "Yo, Ann"]
        assert len(warned) == 1, "warned once per key, not per read"


def test_on_init_is_tracked_per_plugin_id_and_version_not_per_joined_string(
    runtime: Runtime, tmp_path: Path
) -> None:
    # "a\u200b1" version "2" and "a" version "1\u200b2" joined the way the original keyed them are one key:
    # the second plugin never got its OnInit (issue 15: per-plugin state keyed by a structure).
    wasm = metadata_module(capabilities=("MetadataAgent", "LifecycleManagement"))
    folders = []
    for plugin_id, version in (("a\u200b1", "2"), ("a", "1\u200b2")):
        folder = write_plugin(
            tmp_path, wasm, plugin_id=plugin_id, capabilities=["MetadataAgent", "LifecycleManagement"]
        )
        document = json.loads((folder / "manifest.json").read_text())
        (folder / "manifest.json").write_text(json.dumps({**document, "version": version}))
        folders.append(folder)
    with runtime.scope() as scope:
        for folder in folders:
            scope.plugin(folder)
        assert [c.plugin_id for c in scope.transcript.calls("lifecycle", "on_init")] == ["a\u200b1", "a"]


def test_closing_a_scope_closes_instances_its_test_never_returned(runtime: Runtime, tmp_path: Path) -> None:
    scope = runtime.scope()
    plugin = scope.plugin(write_plugin(tmp_path, metadata_module()))
    taken = plugin.pool.get()  # never put back
    scope.close()
    assert taken.closed
    stats = plugin.stats()
    assert stats.busy == 0
    assert stats.closed == stats.created


def test_an_expired_compiled_module_is_released_once_no_plugin_uses_it(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = write_plugin(tmp_path, metadata_module())
    with freeze_time("2026-01-01") as frozen:
        with runtime.scope() as scope:
            first = scope.plugin(folder)
            frozen.tick(runtime.settings.compiled_ttl + 1)
            runtime.sweep()
            assert runtime.build(folder).linked is first.linked, "in use: kept"
        frozen.tick(runtime.settings.compiled_ttl + 1)
        runtime.sweep()
        assert not runtime._builds, "the expired module is still held by the build map"
        with runtime.scope() as scope:
            assert mbid(scope.plugin(folder)) == ""  # loads and answers again (from the disk cache)


def _memory_images() -> int:
    """Open wasmtime memory images: one per compiled module with data (a file each, as lsof shows)."""
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        pytest.skip("needs /proc/self/fd")
    gc.collect()  # a closed scope's instances may sit in reference cycles until the next collection
    found = 0
    for fd in fds.iterdir():
        try:
            found += os.readlink(fd).startswith("/memfd:wasm-memory-image")
        except OSError:  # closed since the listing
            continue
    return found


def test_rebuilding_in_place_keeps_one_module_not_one_per_build(runtime: Runtime, tmp_path: Path) -> None:
    folder = write_plugin(tmp_path, metadata_module(result=packed(256, 3), data=b"\x0a\x01A"))
    with runtime.scope() as scope:
        assert mbid(scope.plugin(folder)) == "A"
    images = _memory_images()
    for letter in b"BCDE":  # a watch-and-rebuild loop: each build's bytes differ
        wasm = metadata_module(result=packed(256, 3), data=b"\x0a\x01" + bytes([letter]))
        (folder / "plugin.wasm").write_bytes(wasm)
        with runtime.scope() as scope:
            assert mbid(scope.plugin(folder)) == chr(letter)
    assert len(runtime.modules) == 1, "the replaced builds' modules are still cached"
    assert _memory_images() == images


def test_rebuilding_in_place_keeps_the_old_module_while_a_plugin_uses_it(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = write_plugin(tmp_path, metadata_module(result=packed(256, 3), data=b"\x0a\x01A"))
    with runtime.scope() as scope:
        old = scope.plugin(folder)
        (folder / "plugin.wasm").write_bytes(metadata_module(result=packed(256, 3), data=b"\x0a\x01B"))
        assert mbid(runtime.plugin(folder)) == "B"
        assert len(runtime.modules) == 2, "the open plugin's module was dropped from the cache"
        assert mbid(old) == "A"
