"""The plugin manager over a plugins folder: the original's manager-level acceptance (examples.md)."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_wasmhost import PluginLoadError
from pytest_wasmhost.abi.proto import api_pb2
from pytest_wasmhost.runtime.manager import PluginManager
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module, packed

INIT_ERROR = api_pb2.InitResponse(error="initialization failed with response error").SerializeToString()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    # One runtime for the module: builds are keyed by plugin id and re-checked on every load.
    with Runtime(RuntimeSettings(cache_dir=tmp_path_factory.mktemp("cache"))) as rt:
        yield rt


@pytest.fixture
def folder(tmp_path: Path, samples_dir: Path) -> Path:
    root = tmp_path / "plugins"
    root.mkdir()
    shutil.copytree(samples_dir / "go" / "fake_artist_agent", root / "fake_artist_agent")
    shutil.copytree(samples_dir / "c" / "config_agent", root / "config_agent")
    lifecycle = ("LifecycleManagement",)
    write_plugin(root, metadata_module(capabilities=lifecycle), plugin_id="init_ok", capabilities=lifecycle)
    write_plugin(
        root,
        metadata_module(capabilities=lifecycle, result=packed(256, len(INIT_ERROR)), data=INIT_ERROR),
        plugin_id="init_fails",
        capabilities=lifecycle,
    )
    write_plugin(root, b"\x00asm\x01\x00\x00\x00garbage", plugin_id="broken")
    (root / ".hidden").mkdir()
    (root / "README.txt").write_text("not a plugin")
    return root


def scanned(runtime: Runtime, folder: Path, **kwargs: object) -> PluginManager:
    manager = PluginManager(runtime, folder, **kwargs)  # type: ignore[arg-type]
    manager.scan()
    assert manager.wait_idle(60)
    return manager


def test_plugins_are_listed_by_capability(runtime: Runtime, folder: Path) -> None:
    manager = scanned(runtime, folder)
    assert manager.plugin_ids("MetadataAgent") == ["broken", "config_agent", "fake_artist_agent"]
    assert manager.plugin_ids("LifecycleManagement") == ["init_ok"], "init_fails was unregistered by OnInit"
    assert ".hidden" not in manager.plugin_ids()


def test_ensure_compiled(runtime: Runtime, folder: Path) -> None:
    manager = scanned(runtime, folder)
    manager.ensure_compiled("fake_artist_agent")
    with pytest.raises(PluginLoadError) as info:
        manager.ensure_compiled("non-existent-plugin")
    assert info.value.original == "plugin not found: non-existent-plugin"
    with pytest.raises(PluginLoadError) as info:
        manager.ensure_compiled("broken")
    assert info.value.original is not None
    assert info.value.original.startswith("failed to compile WASM for plugin broken: ")


def test_failed_compilation_stays_listed_but_loads_nothing(runtime: Runtime, folder: Path) -> None:
    manager = scanned(runtime, folder)
    assert "broken" in manager.plugin_ids("MetadataAgent")
    assert manager.load("broken", "MetadataAgent") is None


def test_load_returns_a_working_plugin_and_none_where_the_original_did(
    runtime: Runtime, folder: Path
) -> None:
    manager = scanned(runtime, folder, config={"config_agent": {"Greeting": "Hey"}})
    agent = manager.load("fake_artist_agent", "MetadataAgent")
    assert agent is not None
    assert agent.metadata_agent.get_artist_mbid(id="artist-id", name="Test Artist").mbid == "1234567890"
    assert manager.load("fake_artist_agent", "MetadataAgent") is agent, "one pool per plugin"
    assert manager.load("fake_artist_agent", "Scrobbler") is None
    assert manager.load("nope", "MetadataAgent") is None
    configured = manager.load("config_agent", "MetadataAgent")
    assert configured is not None
    # Keys are lower-cased as the original's config loader did.
    assert configured.metadata_agent.get_artist_biography(name="Ann").biography == "Hey, Ann"


def test_the_config_is_the_one_given_when_the_manager_was_made(runtime: Runtime, folder: Path) -> None:
    # The original snapshotted PluginConfig when the manager was created: later edits reach no plugin.
    config = {"config_agent": {"Greeting": "Hey"}}
    manager = PluginManager(runtime, folder, config=config)
    config["config_agent"]["Greeting"] = "Bye"
    config["fake_artist_agent"] = {"x": "y"}
    manager.scan()
    assert manager.wait_idle(60)
    configured = manager.load("config_agent", "MetadataAgent")
    assert configured is not None
    assert configured.metadata_agent.get_artist_biography(name="Ann").biography == "Hey, Ann"
    assert "fake_artist_agent" not in manager.scope.config


def test_on_init_runs_once_per_id_and_version(runtime: Runtime, folder: Path) -> None:
    manager = scanned(runtime, folder)
    manager.scan()
    assert manager.wait_idle(60)
    on_init = [(m.plugin_id, m.ok) for m in manager.metrics if m.method == "OnInit"]
    assert sorted(on_init) == [("init_fails", False), ("init_fails", False), ("init_ok", True)]


def test_two_folders_with_the_same_plugin_are_two_plugins(
    runtime: Runtime, tmp_path: Path, samples_dir: Path
) -> None:
    root = tmp_path / "two"
    for name in ("lastfm-official", "lastfm-custom"):
        shutil.copytree(samples_dir / "go" / "fake_artist_agent", root / name)
    manager = scanned(runtime, root)
    assert manager.plugin_ids("MetadataAgent") == ["lastfm-custom", "lastfm-official"]
    for name in ("lastfm-official", "lastfm-custom"):
        plugin = manager.load(name, "MetadataAgent")
        assert plugin is not None
        assert plugin.plugin_id == name


def test_symlinked_plugin_uses_the_link_name(runtime: Runtime, tmp_path: Path, samples_dir: Path) -> None:
    root = tmp_path / "linked"
    root.mkdir()
    (root / "dev-agent").symlink_to(samples_dir / "go" / "fake_artist_agent")
    manager = scanned(runtime, root)
    assert manager.plugin_ids() == ["dev-agent"]
    assert manager.registrations()[0].is_symlink


def test_load_while_precompiling_waits_and_works(runtime: Runtime, folder: Path) -> None:
    manager = PluginManager(runtime, folder)
    manager.scan()
    results: list[object] = []

    def load() -> None:
        plugin = manager.load("fake_artist_agent", "MetadataAgent")
        results.append(plugin and plugin.metadata_agent.get_artist_mbid(name="x").mbid)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == ["1234567890"] * 4
    assert manager.wait_idle(60)


def test_unreadable_root_registers_nothing(runtime: Runtime, tmp_path: Path) -> None:
    manager = PluginManager(runtime, tmp_path / "missing")
    problems = manager.scan()
    assert manager.plugin_ids() == []
    assert problems
    assert problems[0].original.startswith(f"failed to read plugins directory {tmp_path / 'missing'}")


def test_an_ungranted_import_is_listed_and_loaded_and_every_call_fails(
    runtime: Runtime, tmp_path: Path, samples_dir: Path
) -> None:
    # abi.md §8: compilation succeeds (linking happens per instance), LoadPlugin succeeds, every call fails.
    root = tmp_path / "plugins"
    root.mkdir()
    shutil.copytree(samples_dir / "hostile" / "ungranted_import", root / "ungranted_import")
    lifecycle = ("LifecycleManagement",)
    wasm = (samples_dir / "c" / "config_agent" / "plugin.wasm").read_bytes()
    write_plugin(root, wasm, plugin_id="no_config_init", capabilities=("MetadataAgent", *lifecycle))
    manager = scanned(runtime, root)
    assert manager.plugin_ids("MetadataAgent") == ["ungranted_import"], "OnInit failed and unregistered it"
    manager.ensure_compiled("ungranted_import")  # precompile only compiles
    plugin = manager.load("ungranted_import", "MetadataAgent")
    assert plugin is not None
    for _ in range(2):
        with pytest.raises(PluginLoadError, match=r"env\.get.*'http' permission") as info:
            plugin.metadata_agent.get_artist_mbid(name="x")
        assert info.value.original == (
            "baseCapability: failed to load instance for ungranted_import_MetadataAgent: "
            "import func[env.get]: function not exported in module env"
        )
    assert [(m.plugin_id, m.method, m.ok) for m in manager.metrics] == [("no_config_init", "OnInit", False)]
