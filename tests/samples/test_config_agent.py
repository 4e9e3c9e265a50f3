"""The C config_agent sample, tested the way a plugin author would: public fixtures and markers only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_wasmhost import NotFoundByPlugin, NotImplementedByPlugin, PluginError, PluginLoadError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_wasmhost import Plugin
    from pytest_wasmhost.fixtures import WasmCalls

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "c" / "config_agent"

pytestmark = pytest.mark.wasm_plugin(str(PLUGIN))


def test_without_a_greeting_it_says_hello(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    assert wasm_plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hello, Ann"
    (call,) = wasm_calls.assert_called("config", "get_plugin_config", times=1, verdict="ok")
    assert call.response is not None


@pytest.mark.wasm_config({"greeting": "Hi"})
def test_the_greeting_comes_from_the_config(wasm_plugin: Plugin) -> None:
    assert wasm_plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hi, Ann"


def test_the_config_is_read_on_every_call(wasm_plugin: Plugin, wasm_config: dict[str, str]) -> None:
    wasm_config["greeting"] = "Hey"
    assert wasm_plugin.metadata_agent.get_artist_biography(name="Bo").biography == "Hey, Bo"
    wasm_config["greeting"] = ""  # empty means the default
    assert wasm_plugin.metadata_agent.get_artist_biography(name="Bo").biography == "Hello, Bo"


def test_an_empty_name_is_not_found(wasm_plugin: Plugin) -> None:
    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_artist_biography(name="")


def test_the_url_is_a_plugin_error_naming_the_artist(wasm_plugin: Plugin) -> None:
    with pytest.raises(PluginError, match="config_agent: no url for Ann"):
        wasm_plugin.metadata_agent.get_artist_url(name="Ann")


def test_other_methods_are_not_implemented(wasm_plugin: Plugin) -> None:
    with pytest.raises(NotImplementedByPlugin):
        wasm_plugin.metadata_agent.get_artist_mbid(name="Ann")
    with pytest.raises(NotImplementedByPlugin):
        wasm_plugin.metadata_agent.get_album_images(name="A", artist="B")


def test_without_the_config_permission_it_loads_but_every_call_fails(
    wasm_load: Callable[..., Plugin],
) -> None:
    # As in the original: the module compiles and loads; instantiating it for a call cannot link.
    plugin = wasm_load(PLUGIN, permissions={"config": None})
    with pytest.raises(PluginLoadError, match="grant the 'config' permission") as failure:
        plugin.metadata_agent.get_artist_biography(name="Ann")
    assert failure.value.import_name == "env.get_plugin_config"
    assert failure.value.permission == "config"
    assert failure.value.original == (
        "baseCapability: failed to load instance for config_agent_MetadataAgent: "
        "import func[env.get_plugin_config]: function not exported in module env"
    )
