"""Fast-path benchmark (issue 9): our calls against the raw C-API floor, measured side by side in one run.

Run: ``python bench/fastpath.py`` (about a minute; ``--quick`` for a smoke run). Every row is measured
in this process, on this machine, on the same modules with the same payloads; ratios come first, then
the absolute numbers. See bench/README.md for how to read them.

Rows:
  * host->guest round trip (malloc, write, call, read, free, free), 1 KiB request, on the Go sample
    and on a tiny WAT echo module: the raw C-API floor (hand-written ctypes, no checks), the public-API
    path (hand-written wasmtime-py convenience API), our pooled call and our fresh-instance call
    (``Plugin.call_raw``: the same bytes in and out, through the pool, under the deadline, with every
    ABI check), our pooled call on the public path, and ``Plugin.call`` (the same plus protobuf both
    ways, which the floor does not do);
  * guest->host: a WAT guest calling ``env.get_plugin_config`` (1 KiB of config); the floor is an
    unchecked ctypes host function doing the same protobuf work, ours is the config service
    through our linker and ``dispatch`` (transcript included);
  * cold compile of the Go sample vs warm start (disk cache -> linked -> initialised instance), beside
    the floor's warm start (deserialize_file + instantiate + _initialize) and a new process's first;
  * pool acquire + release;
  * the conformance suite on the Go sample in a subprocess, with a cold then a warm compile cache.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern

from pytest_wasmhost.abi.capabilities import CAPABILITIES
from pytest_wasmhost.abi.memory import call_method
from pytest_wasmhost.abi.proto import api_pb2, config_pb2
from pytest_wasmhost.host.base import Transcript
from pytest_wasmhost.host.config import ConfigService
from pytest_wasmhost.host.registry import IMPLEMENTED, bind
from pytest_wasmhost.runtime import capi
from pytest_wasmhost.runtime.compile_cache import CompiledModuleCache, DiskCache, wasm_digest
from pytest_wasmhost.runtime.engine import EngineSettings, shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, PluginInstance
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.pool import PoolSettings
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings

REPO = Path(__file__).resolve().parent.parent
GO_SAMPLE = REPO / "sample_plugins" / "go" / "fake_artist_agent"
EXPORT = "metadata_agent_get_artist_mbid"
CONFIG = {f"key{i:02d}": "v" * 56 for i in range(16)}  # ~1 KiB encoded

# The floor rows call the very functions the fast path declared (plain void* prototypes): the floor is
# "the same C calls with nothing around them", not a slower binding.
CALL = capi._call_unchecked
MEMORY_DATA = capi._memory_data

BUMP_MALLOC = """
  (global $next (mut i32) (i32.const 1024))
  (func $malloc (export "malloc") (param i32) (result i32) (local $p i32)
    (if (i32.gt_u (i32.add (global.get $next) (local.get 0)) (i32.shl (memory.size) (i32.const 16)))
      (then (global.set $next (i32.const 1024))))
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get 0))) (local.get $p))
  (func (export "free") (param i32))
"""
ECHO = "(i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32)) (i64.extend_i32_u (local.get 1)))"
ECHO_EXPORTS = "\n".join(
    f'  (func (export "{m.export}") (param i32 i32) (result i64) {ECHO})'
    for m in CAPABILITIES["MetadataAgent"].methods
)
ECHO_WAT = f"""
(module
  (memory (export "memory") 2)
  {BUMP_MALLOC}
  (func (export "metadata_agent_api_version") (result i64) (i64.const 1))
{ECHO_EXPORTS}
)"""
HOST_WAT = f"""
(module
  (import "env" "get_plugin_config" (func $cfg (param i32 i32) (result i64)))
  (memory (export "memory") 2)
  {BUMP_MALLOC}
  (func (export "call_cfg") (param i32 i32) (result i64) (call $cfg (local.get 0) (local.get 1)))
)"""
MANIFEST = {
    "name": "echo",
    "author": "bench",
    "version": "1.0.0",
    "description": "echoes the request",
    "website": "https://example.invalid",
    "capabilities": ["MetadataAgent"],
    "permissions": {},
}


# -- timing ----------------------------------------------------------------------------------------


def batch_us(fn: Callable[[], object], n: int) -> float:
    """Mean microseconds per call over a batch of ``n`` (no per-call timer; guest GC is included).

    Python's cyclic collector is run first, so one row's garbage is not collected on another's time.
    """
    gc.collect()
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - start) / n / 1000


def interleaved(variants: dict[str, Callable[[], object]], *, n: int, rounds: int) -> dict[str, float]:
    """Median over ``rounds`` of each variant's batch mean; variants alternate so noise hits all alike."""
    for fn in variants.values():
        batch_us(fn, max(n // 10, 20))  # warm-up
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            samples[name].append(batch_us(fn, n))
    return {name: statistics.median(values) for name, values in samples.items()}


# -- hand-written hosts (the floors) ---------------------------------------------------------------

VP = ctypes.c_void_p
ONE, TWO = ctypes.c_size_t(1), ctypes.c_size_t(2)
CALLBACK = ctypes.CFUNCTYPE(ctypes.c_size_t, VP, VP, VP, ctypes.c_size_t)
NO_FINALIZER = ctypes.cast(0, ctypes.CFUNCTYPE(None, VP))
FAKE_EPOCH_NS = 1_640_995_200_000_000_000


def define_unchecked(
    linker: wasmtime.Linker, module: str, name: str, functype: wasmtime.FuncType, fn: Any
) -> Any:
    """A raw unchecked host function ``fn(env, caller, slots, nslots) -> 0``; returns what must stay alive."""
    callback = CALLBACK(fn)
    raw_module, raw_name = module.encode(), name.encode()
    error = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(),
        raw_module,
        len(raw_module),
        raw_name,
        len(raw_name),
        functype.ptr(),
        ctypes.cast(callback, ffi.wasmtime_func_unchecked_callback_t),
        None,
        NO_FINALIZER,
    )
    assert not error
    return callback


def clock_type() -> wasmtime.FuncType:
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    return wasmtime.FuncType([i32, i64, i32], [i32])


class RawInstance:
    """One store + instance driven through raw ctypes: exports resolved once, no checks, no pool.

    Its guest sees the original's fake wall clock through a minimal unchecked ``clock_time_get``, as
    ours does (the Go guest reads the clock in ``free``): the floor does the same guest work as we do.
    """

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module, linker: wasmtime.Linker) -> None:
        linker.define_wasi()
        linker.allow_shadowing = True
        self.readings = 0
        self._clock = define_unchecked(
            linker, "wasi_snapshot_preview1", "clock_time_get", clock_type(), self._now
        )
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.store.set_epoch_deadline(1 << 40)
        self.instance = linker.instantiate(self.store, module)
        self.ctx = VP(ctypes.cast(self.store._context(), VP).value)
        self.externs: dict[str, ffi.wasmtime_extern_t] = {}
        self.buf = (ffi.wasmtime_val_raw_t * 2)()
        self.words = (ctypes.c_int64 * 4).from_buffer(self.buf)
        self.buf_ref = VP(ctypes.addressof(self.buf))
        self.trap = VP()
        self.trap_ref = VP(ctypes.addressof(self.trap))
        self.memory = self.address("memory", memory=True)
        if self.lookup("_initialize") is not None:
            self.call(self.address("_initialize"), ONE)

    def _now(self, _env: int | None, _caller: int | None, slots: int, _n: int) -> int:
        words = (ctypes.c_int64 * 6).from_address(slots)
        value = FAKE_EPOCH_NS + self.readings * 1_000_000
        self.readings += 1
        ctypes.memmove(
            MEMORY_DATA(self.ctx, self.memory) + (words[4] & 0xFFFF_FFFF), value.to_bytes(8, "little"), 8
        )
        words[0] = 0
        return 0

    def lookup(self, name: str) -> ffi.wasmtime_extern_t | None:
        item = ffi.wasmtime_extern_t()
        raw = name.encode()
        ctx = self.store._context()
        if not ffi.wasmtime_instance_export_get(
            ctx, ctypes.byref(self.instance._instance), raw, len(raw), item
        ):
            return None
        self.externs[name] = item
        return item

    def address(self, name: str, *, memory: bool = False) -> ctypes.c_void_p:
        item = self.externs.get(name) or self.lookup(name)
        assert item is not None, name
        return VP(ctypes.addressof(item.of.memory if memory else item.of.func))

    def call(self, func: ctypes.c_void_p, nslots: ctypes.c_size_t) -> None:
        if CALL(self.ctx, func, self.buf_ref, nslots, self.trap_ref) or self.trap.value:
            raise RuntimeError("the floor's guest call failed")


class FloorRoundTrip(RawInstance):
    """The raw C-API floor of one host->guest round trip."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module) -> None:
        super().__init__(engine, module, wasmtime.Linker(engine))
        self.malloc, self.free, self.method = (self.address(n) for n in ("malloc", "free", EXPORT))

    def __call__(self, request: bytes) -> bytes:
        words, ctx, mem, n = self.words, self.ctx, self.memory, len(request)
        words[0] = n
        self.call(self.malloc, ONE)
        ptr = words[0] & 0xFFFF_FFFF
        ctypes.memmove(MEMORY_DATA(ctx, mem) + ptr, request, n)
        words[0], words[2] = ptr, n
        self.call(self.method, TWO)
        packed = words[0] & 0xFFFF_FFFF_FFFF_FFFF
        res_ptr, res_len = packed >> 32, packed & 0x7FFF_FFFF
        data = ctypes.string_at(MEMORY_DATA(ctx, mem) + res_ptr, res_len)
        words[0] = res_ptr
        self.call(self.free, ONE)
        words[0] = ptr
        self.call(self.free, ONE)
        return data


class PublicRoundTrip:
    """The same round trip (and the same fake clock) written by hand against wasmtime-py's convenience API."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module) -> None:
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        linker.allow_shadowing = True
        linker.define_func("wasi_snapshot_preview1", "clock_time_get", clock_type(), self._now)
        self.readings = 0
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.store.set_epoch_deadline(1 << 40)
        exports = linker.instantiate(self.store, module).exports(self.store)
        self.memory, self.malloc, self.free, self.method = (
            exports[n] for n in ("memory", "malloc", "free", EXPORT)
        )
        if "_initialize" in exports:
            exports["_initialize"](self.store)

    def _now(self, _clock: int, _precision: int, ptr: int) -> int:
        value = FAKE_EPOCH_NS + self.readings * 1_000_000
        self.readings += 1
        self.memory.write(self.store, value.to_bytes(8, "little"), ptr)
        return 0

    def __call__(self, request: bytes) -> bytes:
        ptr = self.malloc(self.store, len(request))
        self.memory.write(self.store, request, ptr)
        packed = self.method(self.store, ptr, len(request)) & 0xFFFF_FFFF_FFFF_FFFF
        res_ptr, res_len = packed >> 32, packed & 0x7FFF_FFFF
        data = bytes(self.memory.read(self.store, res_ptr, res_ptr + res_len))
        self.free(self.store, res_ptr)
        self.free(self.store, ptr)
        return data


class FloorHostCall(RawInstance):
    """The guest->host floor: an unchecked ctypes host function doing the config service's work."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module) -> None:
        linker = wasmtime.Linker(engine)
        i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
        functype = wasmtime.FuncType([i32, i32], [i64])
        self._host_fn = define_unchecked(linker, "env", "get_plugin_config", functype, self._host)
        super().__init__(engine, module, linker)
        self.malloc, self.free, self.entry = (self.address(n) for n in ("malloc", "free", "call_cfg"))
        self.inner = (ffi.wasmtime_val_raw_t * 1)()
        self.inner_words = (ctypes.c_int64 * 2).from_buffer(self.inner)
        self.inner_ref = VP(ctypes.addressof(self.inner))

    def _host(self, _env: int | None, _caller: int | None, slots: int, _n: int) -> int:
        words = (ctypes.c_int64 * 4).from_address(slots)  # two 16-byte slots
        offset, size = words[0] & 0xFFFF_FFFF, words[2] & 0xFFFF_FFFF
        raw = ctypes.string_at(MEMORY_DATA(self.ctx, self.memory) + offset, size) if size else b""
        config_pb2.GetPluginConfigRequest.FromString(raw)
        data = config_pb2.GetPluginConfigResponse(config=CONFIG).SerializeToString()
        self.inner_words[0] = len(data)
        CALL(self.ctx, self.malloc, self.inner_ref, ONE, self.trap_ref)
        ptr = self.inner_words[0] & 0xFFFF_FFFF
        ctypes.memmove(MEMORY_DATA(self.ctx, self.memory) + ptr, data, len(data))
        words[0] = (ptr << 32) | len(data)
        return 0

    def __call__(self) -> bytes:
        words = self.words
        words[0], words[2] = 0, 0
        self.call(self.entry, TWO)
        packed = words[0] & 0xFFFF_FFFF_FFFF_FFFF
        res_ptr, res_len = packed >> 32, packed & 0x7FFF_FFFF
        data = ctypes.string_at(MEMORY_DATA(self.ctx, self.memory) + res_ptr, res_len)
        words[0] = res_ptr
        self.call(self.free, ONE)
        return data


# -- the benchmarks --------------------------------------------------------------------------------


@dataclass
class Report:
    ratios: list[tuple[str, str]]
    absolute: list[tuple[str, str]]
    targets: list[tuple[str, bool]]

    def ratio(self, label: str, value: float, unit: str = "x") -> None:
        self.ratios.append((label, f"{value:8.2f}{unit}"))

    def value(self, label: str, text: str) -> None:
        self.absolute.append((label, text))


def echo_plugin(root: Path) -> Path:
    folder = root / "echo"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(MANIFEST))
    (folder / "plugin.wasm").write_bytes(wasmtime.wat2wasm(ECHO_WAT))
    return folder


def round_trips(report: Report, cache: Path, *, n: int, rounds: int) -> None:
    engine = shared_engine(EngineSettings())
    request_message = api_pb2.ArtistMBIDRequest(name="x" * 1021)  # 1024 bytes encoded
    assert len(request_message.SerializeToString()) == 1024
    modules = {"Go sample": GO_SAMPLE, "WAT echo": echo_plugin(cache.parent)}
    for label, folder in modules.items():
        round_trip(report, label, folder, cache, engine, request_message, n=n, rounds=rounds)


def round_trip(
    report: Report,
    label: str,
    folder: Path,
    cache: Path,
    engine: wasmtime.Engine,
    request_message: api_pb2.ArtistMBIDRequest,
    *,
    n: int,
    rounds: int,
) -> None:
    request = request_message.SerializeToString()
    wasm = (folder / "plugin.wasm").read_bytes()
    module = wasmtime.Module(engine, wasm)
    floor, public = FloorRoundTrip(engine, module), PublicRoundTrip(engine, module)
    assert floor(request) == public(request)
    runtimes = {
        name: Runtime(RuntimeSettings(cache_dir=cache, fastpath=fast, pool=PoolSettings(mode=mode)))
        for name, fast, mode in (
            ("pooled", True, "pooled"),
            ("fresh", True, "fresh"),
            ("pooled, public path", False, "pooled"),
        )
    }
    try:
        plugins = {name: rt.plugin(folder) for name, rt in runtimes.items()}
        expected = plugins["pooled"].call(EXPORT, request_message)
        assert all(p.call(EXPORT, request_message) == expected for p in plugins.values())
        pooled = plugins["pooled"]
        held = pooled.pool.get()  # for the layer-by-layer rows; calls through the pool use another
        variants: dict[str, Callable[[], object]] = {
            FLOOR: lambda: floor(request),
            PUBLIC: lambda: public(request),
            POOLED: lambda: pooled.call_raw(EXPORT, request),
            POOLED_PROTO: lambda: pooled.call(EXPORT, request_message),
            POOLED_PUBLIC: lambda: plugins["pooled, public path"].call_raw(EXPORT, request),
            LAYER_BACKEND: lambda: backend_round_trip(held, request),
            LAYER_ABI: lambda: abi_round_trip(held, request),
            LAYER_POOL: lambda: leased_round_trip(pooled, request),
        }
        got = interleaved(variants, n=n, rounds=rounds)
        pooled.pool.put(held)
        got[FRESH] = interleaved(
            {FRESH: lambda: plugins["fresh"].call_raw(EXPORT, request)}, n=max(n // 20, 10), rounds=rounds
        )[FRESH]
        leased = interleaved({"lease": lambda: lease_only(pooled)}, n=n, rounds=rounds)["lease"]
    finally:
        for rt in runtimes.values():
            rt.close()
    base, ours = got[FLOOR], got[POOLED]
    report.ratio(f"{label}: ours pooled / raw C-API floor", ours / base)
    report.ratio(f"{label}: public-API path / ours pooled (speed-up)", got[PUBLIC] / ours)
    report.ratio(f"{label}: ours on the public path / ours pooled", got[POOLED_PUBLIC] / ours)
    report.ratio(f"{label}: ours pooled + protobuf both ways (Plugin.call) / floor", got[POOLED_PROTO] / base)
    report.ratio(f"{label}: ours fresh instance / ours pooled", got[FRESH] / ours)
    for name in (FLOOR, PUBLIC, POOLED, POOLED_PROTO, POOLED_PUBLIC, FRESH):
        report.value(f"{label} 1 KiB round trip: {name}", f"{got[name]:10.1f} us")
    previous = base
    for name in (LAYER_ABI, LAYER_POOL, POOLED, POOLED_PROTO):
        step = got[name] - previous
        report.value(
            f"  where the time goes: {name}",
            f"{got[name]:10.1f} us  ({step:+5.1f} us, {got[name] / base:4.2f}x floor)",
        )
        previous = got[name]
    report.value(
        f"  beside it: {LAYER_BACKEND}",
        f"{got[LAYER_BACKEND]:10.1f} us  (what the one-frame round trip saves: "
        f"{got[LAYER_BACKEND] - got[LAYER_ABI]:+.1f} us)",
    )
    report.value(f"{label}: pool acquire + release alone (get + put)", f"{leased:10.1f} us")
    if label == "Go sample":
        report.targets.append(
            (f"Go pooled 1 KiB round trip <= 1.5x raw C-API floor ({ours / base:.2f}x)", ours / base <= 1.5)
        )
        speedup = got[PUBLIC] / ours
        report.targets.append(
            (f"Go pooled >= 8x faster than the public-API path ({speedup:.1f}x)", speedup >= 8)
        )


FLOOR = "raw C-API floor"
PUBLIC = "public-API path (hand-written)"
POOLED = "ours, pooled (Plugin.call_raw)"
POOLED_PROTO = "+ protobuf both ways (Plugin.call)"
POOLED_PUBLIC = "ours, pooled, public path forced"
FRESH = "ours, fresh instance per call"
LAYER_BACKEND = "the floor's steps one call at a time through our backend (no ABI checks)"
LAYER_ABI = "+ our method round trip + deadline (every ABI check)"
LAYER_POOL = "+ pool get/put"


def backend_round_trip(inst: PluginInstance, request: bytes) -> bytes:
    """The floor's sequence through our instance: the backend's own cost, without the ABI layer's checks."""
    with inst.activate(EXPORT):
        n = len(request)
        ptr = (inst.call_export("malloc", (n,)) or 0) & 0xFFFF_FFFF
        inst.write_memory(ptr, request)
        packed = (inst.call_export(EXPORT, (ptr, n)) or 0) & 0xFFFF_FFFF_FFFF_FFFF
        res_ptr, res_len = packed >> 32, packed & 0x7FFF_FFFF
        data = inst.read_memory(res_ptr, res_len)
        inst.call_export("free", (res_ptr,))
        inst.call_export("free", (ptr,))
        return data


def abi_round_trip(inst: PluginInstance, request: bytes) -> bytes:
    with inst.activate(EXPORT):  # as MethodRunner.run runs it: the backend's fused round trip, if any
        return (inst.method_call(EXPORT, request) or call_method(inst, EXPORT, request)).data


def leased_round_trip(plugin: Plugin, request: bytes) -> bytes:
    pool = plugin.pool  # get/put as Plugin.call_raw takes them (lease() adds a context manager)
    inst = pool.get()
    data = abi_round_trip(inst, request)
    pool.put(inst)
    return data


def lease_only(plugin: Plugin) -> None:
    pool = plugin.pool
    pool.put(pool.get())


def host_calls(report: Report, *, n: int, rounds: int) -> None:
    engine = shared_engine(EngineSettings())
    wasm = wasmtime.wat2wasm(HOST_WAT)
    module = wasmtime.Module(engine, wasm)
    floor = FloorHostCall(engine, module)
    linked = LinkedPlugin(
        plugin_id="bench",
        engine=engine,
        module=module,
        granted=("config",),
        implemented=IMPLEMENTED,
        fastpath=True,
    )
    inst: PluginInstance = linked.instantiate(bind("bench", [ConfigService(lambda: CONFIG)], Transcript()))
    transcript_less = linked.instantiate(bind("bench", [ConfigService(lambda: CONFIG)], None))

    def ours(instance: PluginInstance) -> bytes:
        with instance.activate("call_cfg"):  # the round trip as MethodRunner.run runs it
            return (instance.method_call("call_cfg", b"") or call_method(instance, "call_cfg", b"")).data

    assert floor() == ours(inst) == ours(transcript_less)
    got = interleaved(
        {
            "unchecked floor": floor,
            "ours (config service, transcript on)": lambda: ours(inst),
            "ours (transcript off)": lambda: ours(transcript_less),
        },
        n=n,
        rounds=rounds,
    )
    inst.close()
    transcript_less.close()
    base, mine = got["unchecked floor"], got["ours (config service, transcript on)"]
    report.ratio("guest->host service call: ours / unchecked floor", mine / base)
    report.ratio("guest->host, transcript off: ours / unchecked floor", got["ours (transcript off)"] / base)
    for name, us in got.items():
        report.value(f"guest->host get_plugin_config (1 KiB): {name}", f"{us:10.1f} us")
    report.targets.append(
        (f"guest->host service call <= 1.5x unchecked floor ({mine / base:.2f}x)", mine / base <= 1.5)
    )


def warm_start(
    engine: wasmtime.Engine, root: Path, wasm: bytes, digest: str
) -> tuple[tuple[float, float, float], PluginInstance]:
    """One warm start: seconds for the disk cache hit, the link, and instantiate + ``_initialize`` +
    exports; and the instance, which the caller closes (see starts)."""
    key = EngineSettings().cache_key()
    t0 = time.perf_counter()
    memory = CompiledModuleCache(engine, settings_key=key, disk=DiskCache(root, engine, key))
    module = memory.get(wasm, plugin_id="go", digest=digest)
    t1 = time.perf_counter()
    linked = LinkedPlugin(plugin_id="go", engine=engine, module=module, granted=(), implemented={})
    t2 = time.perf_counter()
    inst = linked.instantiate()
    t3 = time.perf_counter()
    return (t1 - t0, t2 - t1, t3 - t2), inst


class FloorWarmStart:
    """The warm start floor: ``deserialize_file``, an ``InstancePre`` from a linker made once,
    instantiate, then only ``_initialize`` looked up (``wasmtime_instance_export_get``) and called."""

    def __init__(self, engine: wasmtime.Engine, artifact: Path) -> None:
        self.engine, self.artifact = engine, str(artifact)
        self.linker = wasmtime.Linker(engine)
        self.linker.define_wasi()

    def __call__(self) -> wasmtime.Store:
        module = wasmtime.Module.deserialize_file(self.engine, self.artifact)
        store = wasmtime.Store(self.engine)
        store.set_wasi(wasmtime.WasiConfig())
        store.set_epoch_deadline(1 << 40)
        instance = self.linker.instantiate_pre(module).instantiate(store)
        item, name = ffi.wasmtime_extern_t(), b"_initialize"
        found = ffi.wasmtime_instance_export_get(
            store._context(), ctypes.byref(instance._instance), name, len(name), ctypes.byref(item)
        )
        assert found, "the Go sample is a reactor: it exports _initialize"
        wrap_extern(item)(store)  # type: ignore[operator]
        return store


def starts(report: Report, cache: Path, *, compile_runs: int, warm_runs: int) -> None:
    engine = shared_engine(EngineSettings())
    wasm = (GO_SAMPLE / "plugin.wasm").read_bytes()
    digest = wasm_digest(wasm)
    cold = []
    for _ in range(compile_runs):
        start = time.perf_counter()
        wasmtime.Module(engine, wasm)
        cold.append(time.perf_counter() - start)
    root = cache / "starts"
    _, inst = warm_start(engine, root, wasm, digest)  # a miss: compiles and writes the artifact
    inst.close()
    # A seal vouches only for an artifact last changed at least 2 s before it was made (coarse file
    # timestamps, runtime/seal.py): as in a later pytest run, the first load after that hashes the
    # artifact and seals it, and the loads after it map the sealed file.
    time.sleep(2.5)
    parts, inst = warm_start(engine, root, wasm, digest)
    inst.close()
    first = sum(parts)
    floor = FloorWarmStart(engine, next(root.rglob("*.cwasm")))
    # Every start gets memory no instance touched before, as a new process's first start does: the
    # instances stay open until the end, so none reuses a closed slot's resident pages
    # (runtime/engine.py), which would flatter the later starts.
    load, link, init, total, floor_total, alive, stores = [], [], [], [], [], [], []
    for _ in range(warm_runs):
        start = time.perf_counter()
        stores.append(floor())
        floor_total.append(time.perf_counter() - start)
        parts, inst = warm_start(engine, root, wasm, digest)
        alive.append(inst)
        load.append(parts[0])
        link.append(parts[1])
        init.append(parts[2])
        total.append(sum(parts))
    for inst in alive:
        inst.close()
    stores.clear()
    new_process = [first_warm_start_in_a_new_process(root, cache) for _ in range(3)]
    cold_s, warm_s = statistics.median(cold), statistics.median(total)
    floor_s = statistics.median(floor_total)
    report.ratio("Go sample: cold compile / warm start (speed-up)", cold_s / warm_s)
    report.ratio(
        "Go sample: warm start, ours / floor (deserialize_file + instantiate + _initialize)", warm_s / floor_s
    )
    report.ratio(
        "Go sample: cold compile / the floor's warm start (what this machine allows)", cold_s / floor_s
    )
    report.value("Go sample: cold compile (median)", f"{cold_s * 1000:10.1f} ms")
    report.value("Go sample: warm start, disk cache -> initialised instance", f"{warm_s * 1000:10.2f} ms")
    report.value("Go sample: the floor's warm start", f"{floor_s * 1000:10.2f} ms")
    report.value(
        "  of which: disk cache hit (seal check + deserialize_file)",
        f"{statistics.median(load) * 1000:10.2f} ms",
    )
    report.value("  of which: link (WASI, shims, InstancePre)", f"{statistics.median(link) * 1000:10.2f} ms")
    report.value(
        "  of which: instantiate + _initialize + exports", f"{statistics.median(init) * 1000:10.2f} ms"
    )
    report.value(
        "  the first warm start after a build (hashes and seals the artifact)", f"{first * 1000:10.2f} ms"
    )
    parts = [statistics.median(column) * 1000 for column in zip(*new_process, strict=True)]
    report.value(
        "  the first warm start in a new process (imports done; load + link + init)",
        f"{sum(parts):10.2f} ms  ({parts[0]:.2f} + {parts[1]:.2f} + {parts[2]:.2f})",
    )
    report.targets.append(
        (f"warm start >= 1000x faster than cold compile ({cold_s / warm_s:.0f}x)", cold_s / warm_s >= 1000)
    )


def first_warm_start_in_a_new_process(root: Path, cache: Path) -> tuple[float, float, float]:
    """A warm start as a new pytest process makes it: our modules imported, nothing else run yet."""
    done = subprocess.run(
        [sys.executable, __file__, "--child-first-warm-start", str(root)],
        env=bytecode_cached_env(cache),
        capture_output=True,
        text=True,
        check=True,
    )
    load, link, init = json.loads(done.stdout)
    return load, link, init


def bytecode_cached_env(cache: Path) -> dict[str, str]:
    """The environment of a developer's machine: Python caches bytecode (some sandboxes set
    PYTHONDONTWRITEBYTECODE, which makes every run recompile, and pytest re-rewrite, ~170 modules:
    about 1 s). The bytecode goes to a folder of its own under ``cache``, which starts empty."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(cache / "pycache")
    return env


def conformance(report: Report, cache: Path) -> None:
    workdir = cache / "suite-cwd"  # outside the repo: only the plugin's suite is collected
    workdir.mkdir()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "--wasm-plugin",
        str(GO_SAMPLE),
        "-q",
        "-p",
        "no:cacheprovider",
        "--wasm-cache-dir",
        str(cache / "suite-cache"),
    ]
    # The cold run starts with neither compiled wasm nor bytecode (see bytecode_cached_env).
    env = bytecode_cached_env(cache / "suite")
    times = []
    for label in ("cold cache", "warm cache"):
        start = time.perf_counter()
        done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else "(no output)"
        if done.returncode != 0:
            raise SystemExit(f"conformance suite failed ({label}):\n{done.stdout}\n{done.stderr}")
        report.value(
            f"conformance suite on the Go sample, {label} (wall)", f"{times[-1]:10.2f} s   [{summary}]"
        )
    report.ratio("conformance suite: cold cache / warm cache", times[0] / times[1])
    report.targets.append((f"conformance suite, warm cache < 3 s ({times[1]:.2f} s)", times[1] < 3.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="calls per batch (default 2000)")
    parser.add_argument("--rounds", type=int, default=11, help="batches per row; the median is shown (11)")
    parser.add_argument("--compile-runs", type=int, default=3, help="cold compiles of the Go sample (3)")
    parser.add_argument("--warm-runs", type=int, default=20, help="warm starts (20)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: few calls, one compile")
    parser.add_argument("--no-suite", action="store_true", help="skip the conformance-suite subprocess runs")
    parser.add_argument("--child-first-warm-start", metavar="ROOT", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_first_warm_start is not None:  # the child process of first_warm_start_in_a_new_process
        wasm = (GO_SAMPLE / "plugin.wasm").read_bytes()
        parts, inst = warm_start(
            shared_engine(EngineSettings()), args.child_first_warm_start, wasm, wasm_digest(wasm)
        )
        inst.close()
        print(json.dumps(parts))
        return 0
    if args.quick:
        args.n, args.rounds, args.compile_runs, args.warm_runs = 200, 3, 1, 5

    print(
        f"pytest-wasmhost fast-path benchmark: {os.cpu_count()} cores ({platform.machine()}), "
        f"Python {platform.python_version()}, wasmtime {version('wasmtime')}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"batches of {args.n} calls, median of {args.rounds} interleaved batches; 1 KiB = 1024-byte request"
    )
    report = Report([], [], [])
    with tempfile.TemporaryDirectory(prefix="wasmhost-bench-") as tmp:
        cache = Path(tmp) / "cache"
        cache.mkdir()
        round_trips(report, cache, n=args.n, rounds=args.rounds)
        host_calls(report, n=args.n, rounds=args.rounds)
        starts(report, cache, compile_runs=args.compile_runs, warm_runs=args.warm_runs)
        if not args.no_suite:
            conformance(report, Path(tmp))
    width = max(len(label) for label, _ in report.ratios + report.absolute)
    print("\nratios")
    for label, text in report.ratios:
        print(f"  {label:<{width}} {text}")
    print("\nabsolute")
    for label, text in report.absolute:
        print(f"  {label:<{width}} {text}")
    print("\ntargets")
    for label, met in report.targets:
        print(f"  [{'met' if met else 'MISSED'}] {label}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
