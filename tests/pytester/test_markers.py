"""The wasm_config and wasm_permissions markers reach every way a test loads a plugin (issue 14.3, 14.4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pytester.test_pytest_plugin import run

LOADS = {
    "wasm_plugin": "    plugin = wasm_plugin",
    "wasm_load": "    plugin = wasm_load(PLUGIN)",
    "wasm_runtime_load": "    plugin = wasm_runtime.load(PLUGIN)",
    "fresh_scope": "    scope = stack.enter_context(wasm_runtime.fresh())\n    plugin = scope.plugin(PLUGIN)",
}


def _test(marker: str, name: str, load: str, check: str) -> str:
    fixture = "wasm_plugin" if name == "wasm_plugin" else "wasm_load, wasm_runtime"
    return (
        f"@pytest.mark.{marker}\n"
        f"def test_{marker.split('(')[0]}_via_{name}({fixture}):\n"
        "  with contextlib.ExitStack() as stack:\n"
        + "\n".join("  " + line for line in load.splitlines())
        + "\n"
        + "\n".join("      " + line for line in check.splitlines())
        + "\n"
    )


CONFIG_CHECK = 'assert plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hi, Ann"'
PERMISSION_CHECK = """with pytest.raises(PluginLoadError, match="does not grant the 'config' permission"):
    plugin.metadata_agent.get_artist_biography(name="Ann")"""


def test_every_marker_applies_to_every_loading_path(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    plugin = samples_dir / "c" / "config_agent"  # biography = "<greeting>, <name>"; needs config
    tests = [
        _test(marker, name, load, check)
        for name, load in LOADS.items()
        for marker, check in (
            ('wasm_config({"greeting": "Hi"})', CONFIG_CHECK),
            ("wasm_permissions(config=None)", PERMISSION_CHECK),
        )
    ]
    pytester.makepyfile(
        f"""
import contextlib
import pytest
from pytest_wasmhost import PluginLoadError

PLUGIN = {str(plugin)!r}
pytestmark = pytest.mark.wasm_plugin(PLUGIN)

"""
        + "\n".join(tests)
    )
    result = run(pytester, "-v", *cache_args)
    result.assert_outcomes(passed=2 * len(LOADS))


def test_explicit_arguments_win_over_the_markers(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    plugin = samples_dir / "c" / "config_agent"
    pytester.makepyfile(
        f"""
import pytest
from pytest_wasmhost import PluginLoadError

PLUGIN = {str(plugin)!r}

@pytest.mark.wasm_config({{"greeting": "Hi"}})
def test_config_argument_replaces_the_marker(wasm_load):
    plugin = wasm_load(PLUGIN, config={{"greeting": "Yo"}})
    assert plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Yo, Ann"

@pytest.mark.wasm_config({{"greeting": "Hi"}}, plugin_id="other")
def test_a_marker_for_another_plugin_does_not_apply(wasm_load):
    plugin = wasm_load(PLUGIN)
    assert plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hello, Ann"

@pytest.mark.wasm_config({{"greeting": "Hey"}}, plugin_id="config_agent")
def test_a_marker_for_this_plugin_applies(wasm_load):
    plugin = wasm_load(PLUGIN)
    assert plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hey, Ann"

@pytest.mark.wasm_permissions(config=None)
def test_permissions_argument_wins_service_by_service(wasm_load):
    plugin = wasm_load(PLUGIN, permissions={{"config": True}})
    assert plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hello, Ann"
"""
    )
    result = run(pytester, "-v", *cache_args)
    result.assert_outcomes(passed=4)


def test_a_config_key_in_another_case_warns_once_naming_what_the_plugin_sees(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    plugin = samples_dir / "c" / "config_agent"
    pytester.makepyfile(
        f"""
def test_camel_case_key(wasm_load):
    plugin = wasm_load({str(plugin)!r}, config={{"Greeting": "Hi", "apiKey": "k"}})
    for _ in range(3):
        assert plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hi, Ann"
"""
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(passed=1, warnings=2)
    out = result.stdout.str()
    assert out.count("sees the configuration key 'apikey', not 'apiKey'") == 1
    assert out.count("sees the configuration key 'greeting', not 'Greeting'") == 1
    assert "Navidrome lower-cases configuration keys" in out
