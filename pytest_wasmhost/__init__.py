"""pytest-wasmhost: run Navidrome's legacy WebAssembly plugins under test, exactly as production did."""

from __future__ import annotations

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.errors import (
    AbiError,
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
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.wasi import WasiOptions

__all__ = [
    "AbiError",
    "ManifestError",
    "NoResult",
    "NotFoundByPlugin",
    "NotImplementedByPlugin",
    "PermissionDenied",
    "Plugin",
    "PluginError",
    "PluginLoadError",
    "PluginMemoryError",
    "PluginTimeout",
    "PluginTrap",
    "PoolTimeout",
    "Reply",
    "WasiOptions",
    "WasmHostError",
]
