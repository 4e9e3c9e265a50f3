"""What the pytest plugin, the fixtures and the conformance suite share: the session's settings and
the stash keys that carry a test's plugin and scope to the report hooks.

Its own module, below all three, so none of them reaches up (or sideways, lazily) into another for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_wasmhost.runtime.instance import InstanceLimits
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.runtime import RuntimeSettings, ScopedRuntime

__all__ = ["PLUGIN_KEY", "SCOPE_KEY", "SETTINGS_KEY", "SOURCES_KEY", "WasmSettings", "settings_of"]


@dataclass(frozen=True, slots=True)
class WasmSettings:
    """The session's configuration, from command-line options and ini keys (options win)."""

    plugins: tuple[Path, ...] = ()
    cache_dir: Path | None = None
    disk_cache: bool = True
    call_timeout: float | None = None
    memory_limit: int | None = None
    #: Plugin configuration from --wasm-config / wasm_config_values (plugin id -> key -> value); the
    #: conformance suite's OnInit and calls see it.
    config: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: --wasm-strict-callbacks / wasm_strict_callbacks: a failed host-triggered callback fails the test.
    strict_callbacks: bool = False

    def runtime_settings(self) -> RuntimeSettings:
        defaults = InstanceLimits()
        limits = InstanceLimits(
            call_timeout=self.call_timeout if self.call_timeout is not None else defaults.call_timeout,
            memory_limit=self.memory_limit if self.memory_limit is not None else defaults.memory_limit,
        )
        return RuntimeSettings(cache_dir=self.cache_dir, disk_cache=self.disk_cache, limits=limits)


SETTINGS_KEY = pytest.StashKey[WasmSettings]()  # on the config: set once at pytest_configure
SOURCES_KEY = pytest.StashKey[
    dict[str, str]
]()  # on the config: plugin path -> plugin id, for ids and the header
SCOPE_KEY = pytest.StashKey[ScopedRuntime]()  # on a test: its runtime scope (transcript, failed callbacks)
PLUGIN_KEY = pytest.StashKey[Plugin]()  # on a test: the plugin under test, named in its failure report


def settings_of(config: pytest.Config) -> WasmSettings:
    return config.stash.get(SETTINGS_KEY, WasmSettings())
