"""One shared wasmtime Engine per configuration, and the epoch ticker that enforces call deadlines.

Compiled modules, linkers and host function types belong to one engine (wasmtime-py aborts the whole
process when a FuncType crosses engines), so everything built for a plugin takes its engine from here.

Deadlines use epoch interruption: a daemon thread bumps each engine's epoch every ``TICK_SECONDS``
and a store's deadline is set in ticks before every top-level guest call. It costs nothing measurable
per call (perf-floor.md) and stops a guest busy loop within about one tick of its deadline.

Instances are allocated by wasmtime's pooling allocator (``EngineSettings.instance_slots``): a closed
instance's slot, its memory mapping and the first pages its guest touched stay ready for the next
one, which halves instantiating a Go plugin and running its ``_initialize`` (bench/fastpath.py). Where
the address space for the slots cannot be reserved, the engine allocates on demand instead.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import logging
import sys
import threading
import weakref
from dataclasses import dataclass

import wasmtime
from wasmtime import _ffi as ffi

log = logging.getLogger("pytest_wasmhost.runtime.engine")

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
    #: Instances alive at once in the engine's pooling allocator (one slot each, idle pooled ones
    #: included); ``None`` allocates every instance on demand. Each slot reserves about 4 GiB of
    #: address space (not memory). It only changes allocation, so it is not part of ``cache_key``.
    instance_slots: int | None = 1000

    def __post_init__(self) -> None:
        if self.instance_slots is not None and not self.instance_slots >= 1:
            raise ValueError(
                f"invalid EngineSettings: instance_slots must be None (allocate on demand) or >= 1, "
                f"got {self.instance_slots}"
            )

    def cache_key(self) -> str:
        return (
            f"epoch={int(self.epoch_interruption)};fuel={int(self.consume_fuel)};"
            f"opt={self.cranelift_opt_level};move={int(self.memory_may_move)}"
        )


@functools.cache
def wasmtime_version() -> str:
    """The installed wasmtime-py's version, read once (importlib.metadata takes milliseconds a call)."""
    return importlib.metadata.version("wasmtime")


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
            engine = _pooled_engine(config, settings.instance_slots) or wasmtime.Engine(config)
            _engines[settings] = engine
            if not settings.memory_may_move:
                _fixed_memory_engines.add(engine)
            if settings.epoch_interruption:
                _TICKER.watch(engine)
        return engine


#: Limits of one pooled slot, set well above what plugins need, because a module over any of them
#: fails to load only here and not in the original host. They cost address space, not memory.
_SLOT_TABLE_ELEMENTS = 1 << 18  # Go's function table holds one entry per address-taken function
_SLOT_TABLES = 4
_SLOT_INSTANCE_BYTES = 16 << 20  # the VMContext grows with functions, globals and imports
#: Bytes at the start of a closed instance's memory (and table) kept mapped and zeroed in place
#: rather than handed back to the kernel: Go's runtime touches its first 4 MiB in ``_initialize``.
_KEEP_RESIDENT = 4 << 20
#: Closed slots kept for the module that last used them before a new module may take one: plugins
#: used in turn (fresh instances, several plugins in one session) keep their own warm slots.
#: Closed slots keep up to _KEEP_RESIDENT each resident: at most about max(peak live instances,
#: _WARM_SLOTS) times 4 MiB, beside what the live instances use anyway.
_WARM_SLOTS = 16
#: Address space one slot reserves, rounded up: a 4 GiB memory reservation plus guard pages, its
#: tables and its instance. wasmtime aborts the process (it does not raise) when it cannot reserve
#: the pool, so that amount and a quarter more is reserved and released first, where a refusal can
#: be handled.
_SLOT_ADDRESS_SPACE = (4 << 30) + (64 << 20) + _SLOT_TABLES * _SLOT_TABLE_ELEMENTS * 16 + _SLOT_INSTANCE_BYTES


def _pooled_engine(config: wasmtime.Config, slots: int | None) -> wasmtime.Engine | None:
    """An engine on the pooling allocator with ``slots`` slots, or None (on demand, or no room)."""
    if slots is None:
        return None
    if not _address_space_available(slots * _SLOT_ADDRESS_SPACE * 5 // 4):
        log.warning(
            "no room to reserve address space for %d wasmtime instance slots (ulimit -v, or a small "
            "address space); instances are allocated on demand instead (slower to create, otherwise "
            "the same)",
            slots,
        )
        return None
    pooling = ffi.wasmtime_pooling_allocation_config_new()
    try:
        for setter, value in (
            (ffi.wasmtime_pooling_allocation_config_total_core_instances_set, slots),
            (ffi.wasmtime_pooling_allocation_config_total_memories_set, slots),
            (ffi.wasmtime_pooling_allocation_config_total_tables_set, slots * _SLOT_TABLES),
            (ffi.wasmtime_pooling_allocation_config_total_stacks_set, slots),
            (ffi.wasmtime_pooling_allocation_config_max_tables_per_module_set, _SLOT_TABLES),
            (ffi.wasmtime_pooling_allocation_config_table_elements_set, _SLOT_TABLE_ELEMENTS),
            (ffi.wasmtime_pooling_allocation_config_max_core_instance_size_set, _SLOT_INSTANCE_BYTES),
            (ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set, _KEEP_RESIDENT),
            (ffi.wasmtime_pooling_allocation_config_table_keep_resident_set, _KEEP_RESIDENT),
            (ffi.wasmtime_pooling_allocation_config_max_unused_warm_slots_set, _WARM_SLOTS),
        ):
            setter(pooling, value)
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), pooling)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(pooling)
    return wasmtime.Engine(config)


_PROT_NONE, _MAP_PRIVATE, _MAP_ANONYMOUS, _MAP_NORESERVE = 0, 0x02, 0x20, 0x4000  # Linux values


def _address_space_available(size: int) -> bool:
    """Whether ``size`` bytes of address space can be reserved now (reserved and released at once)."""
    if sys.platform != "linux":  # the probe uses Linux's mmap flags; elsewhere allocate on demand
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_long,
    ]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    flags = _MAP_PRIVATE | _MAP_ANONYMOUS | _MAP_NORESERVE
    address = libc.mmap(None, size, _PROT_NONE, flags, -1, 0)
    if address is None or address == ctypes.c_void_p(-1).value:
        return False
    libc.munmap(address, size)
    return True


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
