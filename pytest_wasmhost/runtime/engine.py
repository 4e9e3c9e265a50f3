"""One shared wasmtime Engine per configuration, and the epoch ticker that enforces call deadlines.

Compiled modules, linkers and host function types belong to one engine (wasmtime-py aborts the whole
process when a FuncType crosses engines), so everything built for a plugin takes its engine from here.

Deadlines use epoch interruption: a daemon thread bumps each engine's epoch every ``TICK_SECONDS``
and a store's deadline is set in ticks before every top-level guest call. It costs nothing measurable
per call (perf-floor.md) and stops a guest busy loop within about one tick of its deadline.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass

import wasmtime

TICK_SECONDS = 0.01


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """The engine options that change compiled code (and so are part of the disk-cache key)."""

    epoch_interruption: bool = True
    consume_fuel: bool = False
    cranelift_opt_level: str = "speed"
    #: False: a linear memory keeps its base address for life (it grows in place inside wasmtime's
    #: 4 GiB reservation, the default on 64-bit hosts), so the fast path maps it once and re-reads
    #: its size only when a range falls beyond the size it knows (see runtime/capi.py).
    memory_may_move: bool = False

    def cache_key(self) -> str:
        return (
            f"epoch={int(self.epoch_interruption)};fuel={int(self.consume_fuel)};"
            f"opt={self.cranelift_opt_level};move={int(self.memory_may_move)}"
        )


def deadline_ticks(seconds: float) -> int:
    """Epoch ticks for a deadline: at least one, rounded up so a deadline is never shorter than asked."""
    return max(1, -int(-seconds // TICK_SECONDS))


_engines: dict[EngineSettings, wasmtime.Engine] = {}
_engines_lock = threading.Lock()
_fixed_memory_engines: weakref.WeakSet[wasmtime.Engine] = weakref.WeakSet()


def memory_is_fixed(engine: wasmtime.Engine) -> bool:
    """Whether ``engine`` was configured so that no linear memory ever moves (``memory_may_move=False``)."""
    return engine in _fixed_memory_engines


def shared_engine(settings: EngineSettings = EngineSettings()) -> wasmtime.Engine:
    """The process-wide engine for ``settings``, created on first use (its epoch ticker with it)."""
    with _engines_lock:
        engine = _engines.get(settings)
        if engine is None:
            config = wasmtime.Config()
            config.epoch_interruption = settings.epoch_interruption
            config.consume_fuel = settings.consume_fuel
            config.cranelift_opt_level = settings.cranelift_opt_level
            config.memory_may_move = settings.memory_may_move
            engine = wasmtime.Engine(config)
            _engines[settings] = engine
            if not settings.memory_may_move:
                _fixed_memory_engines.add(engine)
            if settings.epoch_interruption:
                _TICKER.watch(engine)
        return engine


class _EpochTicker:
    """One daemon thread for the whole process that advances every watched engine's epoch."""

    def __init__(self) -> None:
        self._engines: weakref.WeakSet[wasmtime.Engine] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, engine: wasmtime.Engine) -> None:
        with self._lock:
            self._engines.add(engine)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="wasmhost-epoch-ticker", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stop = threading.Event()  # never set: the thread is a daemon and lives as long as the process
        while not stop.wait(TICK_SECONDS):
            with self._lock:
                engines = list(self._engines)
            for engine in engines:
                engine.increment_epoch()


_TICKER = _EpochTicker()
