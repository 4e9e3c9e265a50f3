"""Several processes compiling one plugin into one disk cache at the same moment (pytest-xdist, parallel CI).

Each worker is a fresh interpreter (the 'spawn' context). A barrier inside ``os.replace`` holds every
worker until all of them have compiled and written their temp file, so the renames really race.
"""

from __future__ import annotations

import hmac
import json
import multiprocessing
import os
import platform
import queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest
import wasmtime

from pytest_wasmhost.runtime import compile_cache
from pytest_wasmhost.runtime.compile_cache import DiskCache, wasm_digest
from pytest_wasmhost.runtime.engine import EngineSettings, shared_engine, wasmtime_version
from pytest_wasmhost.runtime.instance import compile_module as real_compile

WORKERS = 3
TIMEOUT = 60.0


def _worker(root: str, wasm_path: str, barrier: Barrier, results: multiprocessing.Queue[object]) -> None:
    """Compile into ``root`` and report (compiles, artifact path); every rename waits for all workers."""
    try:
        compiles: list[str] = []
        real_replace = os.replace

        def counting_compile(engine: wasmtime.Engine, wasm: bytes, *, plugin_id: str) -> wasmtime.Module:
            compiles.append(plugin_id)
            return real_compile(engine, wasm, plugin_id=plugin_id)

        def replace_together(src: str, dst: object) -> None:
            barrier.wait(TIMEOUT)  # every worker has missed the cache, compiled and written a temp file
            real_replace(src, dst)  # type: ignore[arg-type]

        # This process only: a spawned worker patches its own module globals.
        setattr(compile_cache, "compile_module", counting_compile)  # noqa: B010
        setattr(os, "replace", replace_together)  # noqa: B010

        wasm = Path(wasm_path).read_bytes()
        settings = EngineSettings()
        disk = DiskCache(Path(root), shared_engine(settings), settings.cache_key())
        module = disk.get_or_compile(wasm, wasm_digest(wasm), plugin_id="config_agent")
        setattr(os, "replace", real_replace)  # noqa: B010
        assert module.exports, "the module should have exports"
        results.put(("ok", len(compiles)))
    except BaseException as exc:
        results.put(("error", repr(exc)))


def test_parallel_processes_share_one_valid_artifact(
    tmp_path: Path, samples_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wasm_path = samples_dir / "c" / "config_agent" / "plugin.wasm"
    root = tmp_path / "plugins"
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results: multiprocessing.Queue[object] = ctx.Queue()
    procs = [
        ctx.Process(target=_worker, args=(str(root), str(wasm_path), barrier, results))
        for _ in range(WORKERS)
    ]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=TIMEOUT) for _ in procs]
    except queue.Empty:
        pytest.fail("a worker did not report back")
    finally:
        for p in procs:
            p.join(timeout=TIMEOUT)
            if p.is_alive():
                p.kill()

    assert outcomes == [("ok", 1)] * WORKERS  # all compiled (all missed) and all succeeded
    assert all(p.exitcode == 0 for p in procs)

    settings = EngineSettings()
    engine = shared_engine(settings)
    wasm = wasm_path.read_bytes()
    disk = DiskCache(root, engine, settings.cache_key())
    folder = disk.artifact_dir(wasm_digest(wasm))
    # One artifact and its seal, no temp file left behind.
    artifact, seal = sorted(folder.iterdir())
    # Named by its MAC under the one key all workers share (the first to create it won).
    context = json.dumps(
        [
            "pytest-wasmhost-cwasm-2",
            wasm_digest(wasm),
            wasmtime_version(),
            settings.cache_key(),
            platform.machine(),
        ]
    )
    key = (root / "key").read_bytes()
    mac = hmac.new(key, context.encode() + b"\n" + artifact.read_bytes(), "sha256").hexdigest()
    assert artifact.name == mac + ".cwasm"
    assert seal.name == artifact.name + ".seal"

    def no_compile(*_args: object, **_kwargs: object) -> wasmtime.Module:
        raise AssertionError("expected a disk hit")

    monkeypatch.setattr("pytest_wasmhost.runtime.compile_cache.compile_module", no_compile)
    module = DiskCache(root, engine, settings.cache_key()).get_or_compile(
        wasm, wasm_digest(wasm), plugin_id="config_agent"
    )
    assert {e.name for e in module.exports} >= {"malloc", "free"}
