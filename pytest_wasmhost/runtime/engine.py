"""One shared wasmtime Engine per configuration.

Compiled modules, linkers and host function types belong to one engine (wasmtime-py aborts the whole
process when a FuncType crosses engines), so everything built for a plugin takes its engine from here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import wasmtime


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The engine options that change compiled code (and so are part of the disk-cache key)."""

    epoch_interruption: bool = False
    consume_fuel: bool = False
    cranelift_opt_level: str = "speed"

    def cache_key(self) -> str:
        return (
            f"epoch={int(self.epoch_interruption)};fuel={int(self.consume_fuel)};"
            f"opt={self.cranelift_opt_level}"
        )


_engines: dict[EngineSettings, wasmtime.Engine] = {}
_engines_lock = threading.Lock()


def shared_engine(settings: EngineSettings = EngineSettings()) -> wasmtime.Engine:
    """The process-wide engine for ``settings``, created on first use."""
    with _engines_lock:
        engine = _engines.get(settings)
        if engine is None:
            config = wasmtime.Config()
            config.epoch_interruption = settings.epoch_interruption
            config.consume_fuel = settings.consume_fuel
            config.cranelift_opt_level = settings.cranelift_opt_level
            engine = wasmtime.Engine(config)
            _engines[settings] = engine
        return engine
