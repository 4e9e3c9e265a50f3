"""pytest-wasmhost: run Navidrome's legacy WebAssembly plugins under test, exactly as production did."""

from __future__ import annotations

__version__ = "0.1.0"  # the one place the version is written (pyproject reads it through hatch)

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.errors import (
    AbiError,
    CallbackFailed,
    CallbackFailureWarning,
    ConfigKeyWarning,
    HostLimitWarning,
    ManifestError,
    NoResult,
    NotFoundByPlugin,
    NotImplementedByPlugin,
    PermissionDenied,
    PluginError,
    PluginLoadError,
    PluginMemoryError,
    PluginTimeout,
    PluginTrap,
    PoolTimeout,
    WasmHostError,
)
from pytest_wasmhost.host.options import (
    ArtworkOptions,
    CacheOptions,
    HostOptions,
    HttpOptions,
    SchedulerOptions,
    SubsonicOptions,
    TranscriptOptions,
    WebSocketOptions,
)
from pytest_wasmhost.runtime.instance import InstanceLimits
from pytest_wasmhost.runtime.manager import PluginManager
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.pool import PoolSettings
from pytest_wasmhost.runtime.runtime import LoadDefaults, Runtime, RuntimeSettings, ScopedRuntime, open_plugin
from pytest_wasmhost.runtime.wasi import WasiOptions

__all__ = [
    "AbiError",
    "ArtworkOptions",
    "CacheOptions",
    "CallbackFailed",
    "CallbackFailureWarning",
    "ConfigKeyWarning",
    "HostLimitWarning",
    "HostOptions",
    "HttpOptions",
    "InstanceLimits",
    "LoadDefaults",
    "ManifestError",
    "NoResult",
    "NotFoundByPlugin",
    "NotImplementedByPlugin",
    "PermissionDenied",
    "Plugin",
    "PluginError",
    "PluginLoadError",
    "PluginManager",
    "PluginMemoryError",
    "PluginTimeout",
    "PluginTrap",
    "PoolSettings",
    "PoolTimeout",
    "Reply",
    "Runtime",
    "RuntimeSettings",
    "SchedulerOptions",
    "ScopedRuntime",
    "SubsonicOptions",
    "TranscriptOptions",
    "WasiOptions",
    "WasmHostError",
    "WebSocketOptions",
    "__version__",
    "open_plugin",
]
