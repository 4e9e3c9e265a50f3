"""Runtime benchmark: our pooled call vs the raw wasmtime floor, warm vs cold start, pooled vs fresh.

Run: ``python bench/runtime.py`` (about a minute). Every ratio is measured side by side in this run,
on this machine: the floor is a hand-written minimal ABI call (malloc, write, call, read, free, free)
through the same wasmtime-py API our runtime uses today, on the same module with the same payload.
Targets (issue 4): pooled round trip within 1.5x of the floor; warm start >= 100x faster than cold.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import wasmtime

from pytest_wasmhost.abi.proto import api_pb2
from pytest_wasmhost.runtime.compile_cache import CompiledModuleCache, DiskCache, wasm_digest
from pytest_wasmhost.runtime.engine import EngineSettings, shared_engine
from pytest_wasmhost.runtime.instance import InstanceLimits
from pytest_wasmhost.runtime.pool import PoolSettings
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings

REPO = Path(__file__).resolve().parent.parent
GO_SAMPLE = REPO / "sample_plugins" / "go" / "fake_artist_agent"
EXPORT = "metadata_agent_get_artist_mbid"


def median_us(fn: Callable[[], object], *, n: int, warmup: int = 50) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples) / 1000


class RawFloor:
    """The minimal host: one store, exports resolved once, the ABI written out by hand, no pool."""

    def __init__(self, wasm: bytes) -> None:
        engine = shared_engine(EngineSettings())
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        self.store = wasmtime.Store(engine)
        self.store.set_wasi(wasmtime.WasiConfig())
        self.store.set_epoch_deadline(1 << 40)
        instance = linker.instantiate(self.store, wasmtime.Module(engine, wasm))
        exports = instance.exports(self.store)
        self.memory = exports["memory"]
        self.malloc = exports["malloc"]
        self.free = exports["free"]
        self.method = exports[EXPORT]
        exports["_initialize"](self.store)

    def call(self, request: bytes) -> bytes:
        ptr = self.malloc(self.store, len(request))
        self.memory.write(self.store, request, ptr)
        packed = self.method(self.store, ptr, len(request)) & 0xFFFF_FFFF_FFFF_FFFF
        res_ptr, res_len = packed >> 32, packed & 0x7FFF_FFFF
        data = bytes(self.memory.read(self.store, res_ptr, res_ptr + res_len))
        self.free(self.store, res_ptr)
        self.free(self.store, ptr)
        return data


def bench_calls(n: int, payload: int) -> list[tuple[str, float]]:
    name = "x" * payload
    request = api_pb2.ArtistMBIDRequest(name=name).SerializeToString()
    wasm = (GO_SAMPLE / "plugin.wasm").read_bytes()
    floor = RawFloor(wasm)
    assert floor.call(request) == api_pb2.ArtistMBIDResponse(mbid="1234567890").SerializeToString()
    rows = [("raw wasmtime floor (hand-written ABI, no pool)", median_us(lambda: floor.call(request), n=n))]
    with tempfile.TemporaryDirectory() as cache:
        for mode in ("pooled", "fresh"):
            settings = RuntimeSettings(cache_dir=Path(cache), pool=PoolSettings(mode=mode))  # type: ignore[arg-type]
            with Runtime(settings) as runtime:
                plugin = runtime.plugin(GO_SAMPLE)
                agent = plugin.metadata_agent
                assert agent.get_artist_mbid(name=name).mbid == "1234567890"
                label = f"runtime call, {mode} instances (typed client, full ABI + checks)"
                rows.append(
                    (
                        label,
                        median_us(
                            lambda a=agent: a.get_artist_mbid(name=name), n=n if mode == "pooled" else n // 10
                        ),
                    )
                )  # type: ignore[misc]
    return rows


def bench_start(runs: int) -> tuple[float, float]:
    wasm = (GO_SAMPLE / "plugin.wasm").read_bytes()
    engine = shared_engine(EngineSettings())
    key = EngineSettings().cache_key()
    digest = wasm_digest(wasm)
    cold, warm = [], []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(runs):
            start = time.perf_counter()
            wasmtime.Module(engine, wasm)
            cold.append(time.perf_counter() - start)
        CompiledModuleCache(engine, settings_key=key, disk=DiskCache(Path(cache), engine, key)).get(
            wasm, plugin_id="bench", digest=digest
        )
        for _ in range(runs * 5):
            fresh = CompiledModuleCache(engine, settings_key=key, disk=DiskCache(Path(cache), engine, key))
            start = time.perf_counter()
            fresh.get(wasm, plugin_id="bench", digest=digest)
            warm.append(time.perf_counter() - start)
    return statistics.median(cold), statistics.median(warm)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=2000, help="calls per measurement (default 2000)")
    parser.add_argument("--payload", type=int, default=1024, help="request name length in bytes (1024)")
    parser.add_argument("--compile-runs", type=int, default=3, help="cold compiles to time (3)")
    args = parser.parse_args(argv)

    print(f"pytest-wasmhost runtime benchmark: Go sample ({GO_SAMPLE.name}), {args.payload} B request")
    limits = InstanceLimits()
    print(f"call timeout {limits.call_timeout:g}s (epoch interruption on), wasmtime {version('wasmtime')}")
    rows = bench_calls(args.n, args.payload)
    floor = rows[0][1]
    print("\ncall round trip (median)")
    for label, us in rows:
        print(f"  {label:<66} {us:9.1f} us   {us / floor:5.2f}x floor")
    pooled, fresh = rows[1][1], rows[2][1]
    print(f"  fresh / pooled: {fresh / pooled:.1f}x (what a pooled, initialised instance saves)")

    cold, warm = bench_start(args.compile_runs)
    print("\nstart (Go sample, median)")
    print(f"  cold compile                       {cold * 1000:9.1f} ms")
    print(f"  warm start from the disk cache     {warm * 1000:9.2f} ms   {cold / warm:7.0f}x faster")

    ok = pooled / floor <= 1.5 and cold / warm >= 100
    print(
        f"\ntargets: pooled <= 1.5x floor: {pooled / floor:.2f}x; warm >= 100x: {cold / warm:.0f}x -> "
        f"{'met' if ok else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
