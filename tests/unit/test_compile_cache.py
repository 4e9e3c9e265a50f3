"""Compile caches: size parsing and purge (runtime.md §5), memory TTL (§8.2), verified disk artifacts."""

from __future__ import annotations

import datetime
import errno
import hashlib
import hmac
import json
import logging
import os
import platform
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from freezegun import freeze_time

from pytest_wasmhost.clock import SYSTEM_CLOCK, ManualClock
from pytest_wasmhost.errors import PluginLoadError
from pytest_wasmhost.runtime import compile_cache
from pytest_wasmhost.runtime.compile_cache import (
    CompileCacheWarning,
    CompiledModuleCache,
    DiskCache,
    parse_size,
    purge_cache,
    wasm_digest,
)
from pytest_wasmhost.runtime.engine import EngineSettings, shared_engine, wasmtime_version
from pytest_wasmhost.runtime.instance import compile_module as real_compile
from pytest_wasmhost.runtime.instance import describe_module
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings
from tests.support.permissions import IGNORES_PERMISSION_BITS, SKIP_REASON

LOGGER = "pytest_wasmhost.runtime.compile_cache"
COMPILE = "pytest_wasmhost.runtime.compile_cache.compile_module"  # the seam every compilation goes through
SETTINGS = EngineSettings()
KEY = SETTINGS.cache_key()


def wat(value: int) -> bytes:
    """A tiny module whose export ``f`` returns ``value`` (each value is a different digest)."""
    return bytes(wasmtime.wat2wasm(f'(module (func (export "f") (result i32) (i32.const {value})))'))


def run_f(module: wasmtime.Module) -> Any:
    store = wasmtime.Store(shared_engine(SETTINGS))
    store.set_epoch_deadline(1 << 20)  # the shared engine interrupts on epochs; give the call time
    instance = wasmtime.Instance(store, module, [])
    f = instance.exports(store)["f"]
    assert isinstance(f, wasmtime.Func)
    return f(store)


@pytest.fixture
def engine() -> wasmtime.Engine:
    return shared_engine(SETTINGS)


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Plugin ids of every real compilation, in order."""
    calls: list[str] = []

    def counting(engine: wasmtime.Engine, wasm: bytes, *, plugin_id: str) -> wasmtime.Module:
        calls.append(plugin_id)
        return real_compile(engine, wasm, plugin_id=plugin_id)

    monkeypatch.setattr(COMPILE, counting)
    return calls


@pytest.fixture(params=["fd-path", "in-memory"])
def load_strategy(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways a verified artifact reaches wasmtime: the open fd's path (Linux) or verified bytes."""
    if request.param == "in-memory":
        monkeypatch.setattr(compile_cache, "_fd_paths_work", lambda: False)
    return str(request.param)


def memory_cache(engine: wasmtime.Engine, root: Path | None = None, **kwargs: Any) -> CompiledModuleCache:
    disk = DiskCache(root, engine, KEY) if root is not None else None
    return CompiledModuleCache(engine, settings_key=KEY, disk=disk, **kwargs)


def mac_name(root: Path, digest: str, data: bytes, settings_key: str = KEY) -> str:
    """The name this host gives an artifact: HMAC-SHA256 under the root's key of what ties it to its
    module and build, then its bytes (written out here so the test pins what the MAC covers)."""
    key = (root / "key").read_bytes()
    context = json.dumps(
        ["pytest-wasmhost-cwasm-2", digest, wasmtime_version(), settings_key, platform.machine()]
    )
    return hmac.new(key, context.encode() + b"\n" + data, "sha256").hexdigest() + ".cwasm"


def cache_warning_texts(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, CompileCacheWarning)]


def artifacts(disk_root: Path, engine: wasmtime.Engine, wasm: bytes) -> list[Path]:
    """The artifacts for ``wasm`` (their seals aside)."""
    folder = DiskCache(disk_root, engine, KEY).artifact_dir(wasm_digest(wasm))
    return sorted(p for p in folder.iterdir() if p.suffix == ".cwasm") if folder.is_dir() else []


# -- parse_size -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100MB", 100_000_000),
        ("10MB", 10_000_000),
        ("3", 3),
        ("0", 0),
        ("1 KiB", 1024),
        ("1.5 GB", 1_500_000_000),
        ("garbage", None),
        ("", None),
        ("10mb", 10_000_000),
        ("2MiB", 2 * 1024**2),
        ("2.5MiB", int(2.5 * 1024**2)),
        ("1.5MB", 1_500_000),
        ("42 mib", 44_040_192),
        ("200K", 200_000),
        ("1k", 1000),
        ("1ki", 1024),
        ("1 Gi", 1024**3),
        ("1 TB", 10**12),
        ("1 PiB", 1024**5),
        ("2 EB", 2 * 10**18),
        ("7b", 7),
        ("1,000", 1000),
        ("1,000 KB", 1_000_000),
        ("12 KB ", 12_000),
        (".5k", 500),
        ("1.", 1),
        ("1.9", 1),  # truncated like Go's uint64(f)
        (" 5", None),  # Go trims only after the number
        ("-1", None),
        ("1e3", None),
        ("1 kB B", None),
        ("5 kittens", None),
        ("20 EiB", None),  # does not fit in uint64
        ("16 EiB", None),  # exactly 2**64: Go refuses f >= MaxUint64, the first value that does not fit
        ("15.5 EiB", 17_870_283_321_406_128_128),
        ("\u0661", None),  # an Arabic-Indic digit: Go's IsDigit yes, ParseFloat no
    ],
)
def test_parse_size_follows_go_humanize(text: str, expected: int | None) -> None:
    assert parse_size(text) == expected


# -- purge_cache ----------------------------------------------------------------------------------


def make_file(path: Path, size: int, age_seconds: float = 0.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    mtime = time.time() - age_seconds
    os.utime(path, (mtime, mtime))
    return path


def test_purge_acceptance_removes_the_old_file_and_its_empty_folder(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    old = make_file(root / "d1" / "old", 2, age_seconds=2 * 3600)
    new = make_file(root / "d2" / "new", 2)

    assert purge_cache(root, "3") == [old]

    assert not old.exists()
    assert not (root / "d1").exists()
    assert new.exists()
    assert root.is_dir()


def test_purge_acceptance_under_the_limit_removes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    files = [make_file(root / "a", 1), make_file(root / "b", 1)]

    assert purge_cache(root, "10MB") == []
    assert all(f.exists() for f in files)


def test_purge_deletes_oldest_first_until_under_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    files = [make_file(root / "dir" / f"file{i}", 10, age_seconds=(5 - i) * 3600) for i in range(5)]

    assert purge_cache(root, "25") == files[:3]
    assert [f.exists() for f in files] == [False, False, False, True, True]
    assert (root / "dir").is_dir()  # still holds two files


def test_purge_breaks_mtime_ties_by_path(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    b = make_file(root / "b", 2, age_seconds=60)
    a = make_file(root / "a", 2)
    os.utime(a, ns=(b.stat().st_mtime_ns,) * 2)

    assert purge_cache(root, "3") == [a]
    assert b.exists()


def test_purge_never_removes_the_root(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    deep = make_file(root / "x" / "y" / "z" / "f", 5, age_seconds=10)
    top = make_file(root / "g", 5)

    assert purge_cache(root, "1") == [deep, top]
    assert root.is_dir()
    assert list(root.iterdir()) == []


def test_purge_of_a_missing_folder_does_nothing(tmp_path: Path) -> None:
    assert purge_cache(tmp_path / "nonexistent", "100MB") == []
    assert not (tmp_path / "nonexistent").exists()


@pytest.mark.parametrize("limit", ["0", "garbage", "", "-5MB"])
def test_zero_or_unparseable_limit_purges_nothing(tmp_path: Path, limit: str) -> None:
    root = tmp_path / "cache"
    files = [make_file(root / "a", 1000, age_seconds=3600), make_file(root / "b", 1000)]

    assert purge_cache(root, limit) == []
    assert all(f.exists() for f in files)


def test_undeletable_file_is_skipped_and_still_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "cache"
    stuck = make_file(root / "stuck", 3, age_seconds=300)
    middle = make_file(root / "middle", 3, age_seconds=200)
    newest = make_file(root / "newest", 3, age_seconds=100)
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == stuck:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)

    # 9 bytes, limit 4: "stuck" stays and its 3 bytes stay counted, so both others must go.
    assert purge_cache(root, "4") == [middle, newest]
    assert stuck.exists()


def test_purge_counts_regular_files_only(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    target = make_file(tmp_path / "elsewhere", 100)
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "link").symlink_to(target)
    small = make_file(root / "small", 2)

    assert purge_cache(root, "10") == []
    assert small.exists()
    assert target.exists()


def test_a_file_vanishing_mid_purge_no_longer_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "cache"
    oldest = make_file(root / "oldest", 3, age_seconds=300)
    middle = make_file(root / "middle", 3, age_seconds=200)
    newest = make_file(root / "newest", 3, age_seconds=100)
    real_unlink = Path.unlink

    def raced(self: Path, missing_ok: bool = False) -> None:
        if self == oldest:
            real_unlink(self)  # another process's purge got there first
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(self))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", raced)

    # 9 bytes, limit 4: "oldest" is gone either way, so removing "middle" is enough; "newest" stays.
    assert purge_cache(root, "4") == [middle]
    assert newest.exists()


def test_purge_removes_temp_files_of_killed_writers_whatever_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    stale = make_file(root / "d" / ".tmp-killed.part", 10, age_seconds=16 * 60)
    live = make_file(root / "d" / ".tmp-writing.part", 10, age_seconds=60)
    artifact = make_file(root / "d" / "a.cwasm", 10, age_seconds=3 * 3600)

    assert purge_cache(root, None) == [stale]
    assert purge_cache(root, "0") == []
    assert live.exists()
    assert artifact.exists()


def test_purge_keeps_the_key_and_takes_a_seal_with_its_artifact(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    key = make_file(root / "key", 32, age_seconds=10 * 3600)
    old = make_file(root / "d" / "a.cwasm", 10, age_seconds=2 * 3600)
    old_seal = make_file(root / "d" / "a.cwasm.seal", 2, age_seconds=1)  # younger than the newest
    new = make_file(root / "e" / "b.cwasm", 10, age_seconds=60)

    assert purge_cache(root, "15") == [old, old_seal]
    assert key.exists()
    assert new.exists()
    assert not (root / "d").exists()


def test_purge_stops_as_soon_as_the_total_is_at_the_limit(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    files = [make_file(root / f"file{i}", 3, age_seconds=(3 - i) * 3600) for i in range(3)]

    assert purge_cache(root, "6") == files[:1]  # 9 bytes, limit 6: one file is enough, not two
    assert purge_cache(root, "6") == []  # exactly at the limit: nothing to do
    assert [f.exists() for f in files] == [False, True, True]


def test_purge_takes_an_artifact_without_a_seal_alone(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    lone = make_file(root / "d" / "a.cwasm", 10, age_seconds=2 * 3600)
    other = make_file(root / "d" / "other", 10, age_seconds=3600)
    other_seal = make_file(root / "d" / "other.seal", 1, age_seconds=60)  # a seal only follows a .cwasm

    assert purge_cache(root, "11") == [lone]
    assert other.exists()
    assert other_seal.exists()


def test_a_seal_removed_with_its_artifact_is_not_counted_twice(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    artifact = make_file(root / "d" / "a.cwasm", 10, age_seconds=4 * 3600)
    seal = make_file(root / "d" / "a.cwasm.seal", 2, age_seconds=3 * 3600)
    older = make_file(root / "e" / "b.cwasm", 10, age_seconds=2 * 3600)
    newest = make_file(root / "f" / "c.cwasm", 10, age_seconds=3600)

    # 32 bytes, limit 19: the artifact and its seal leave 20, so one more must go; the seal's own turn
    # in the oldest-first order comes after it is gone and must not subtract its 2 bytes again.
    assert purge_cache(root, "19") == [artifact, seal, older]
    assert newest.exists()


def test_a_stale_temp_file_is_removed_at_the_cutoff_not_before(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    temp = make_file(root / "d" / ".tmp-killed.part", 10)
    written = 1_700_000_000
    os.utime(temp, (written, written))

    assert purge_cache(root, None, now=written + 15 * 60) == []  # exactly 15 minutes: a live writer's
    assert temp.exists()
    assert purge_cache(root, None, now=written + 15 * 60 + 0.01) == [temp]
    assert not (root / "d").exists()  # its folder, emptied, goes too
    assert root.is_dir()


def test_a_stale_temp_file_that_vanished_or_stays_is_not_reported_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "cache"
    vanished = make_file(root / "d" / ".tmp-raced.part", 10, age_seconds=3600)
    stuck = make_file(root / "d" / ".tmp-stuck.part", 10, age_seconds=3600)
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == vanished:
            real_unlink(self)  # another process's purge got there first
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(self))
        if self == stuck:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        real_unlink(self, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert purge_cache(root, None) == []

    assert stuck.exists()
    (warning,) = cache_warnings(caplog)
    assert f"cannot remove plugin cache file {stuck}: " in warning


def test_purge_skips_a_folder_it_cannot_list_and_says_so_at_debug(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    root = tmp_path / "cache"
    locked = root / "locked"
    hidden = make_file(locked / "f", 5, age_seconds=3600)
    fail_for(monkeypatch, "scandir", locked, PermissionError(errno.EACCES, "Permission denied", str(locked)))

    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        assert purge_cache(root, "1") == []  # what it cannot list it neither counts nor deletes
        assert purge_cache(tmp_path / "missing", "1") == []  # a missing root is no news: not logged
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipping unreadable")]
    assert skipped == [
        f"skipping unreadable plugin cache entry {locked}: [Errno 13] Permission denied: '{locked}'"
    ]
    assert hidden.exists()


# -- CompiledModuleCache: memory TTL --------------------------------------------------------------


def test_entry_stays_at_4_59_and_is_gone_at_5_01(engine: wasmtime.Engine, compiles: list[str]) -> None:
    wasm = wat(1)
    with freeze_time("2024-05-01 12:00:00") as frozen:
        cache = memory_cache(engine, clock=SYSTEM_CLOCK)
        first = cache.get(wasm, plugin_id="p")
        frozen.tick(4 * 60 + 59)
        assert cache.get(wasm, plugin_id="p") is first
        assert compiles == ["p"]

        frozen.tick(5 * 60 + 1)  # 5:01 after the last access
        again = cache.get(wasm, plugin_id="p")
    assert compiles == ["p", "p"]
    assert again is not first


def test_each_hit_restarts_the_idle_timer(engine: wasmtime.Engine, compiles: list[str]) -> None:
    wasm = wat(2)
    with freeze_time("2024-05-01 12:00:00") as frozen:
        cache = memory_cache(engine, clock=SYSTEM_CLOCK)
        module = cache.get(wasm, plugin_id="p")
        for _ in range(4):  # 16 minutes in total, never 5 idle
            frozen.tick(240)
            assert cache.get(wasm, plugin_id="p") is module
    assert compiles == ["p"]


def test_exactly_ttl_idle_is_not_expired(engine: wasmtime.Engine, compiles: list[str]) -> None:
    clock = ManualClock()
    cache = memory_cache(engine, clock=clock, ttl=300)
    module = cache.get(wat(3), plugin_id="p")
    clock.advance(300)
    assert cache.get(wat(3), plugin_id="p") is module
    assert compiles == ["p"]


def test_sweep_drops_idle_entries_and_counts_them(engine: wasmtime.Engine, compiles: list[str]) -> None:
    clock = ManualClock()
    cache = memory_cache(engine, clock=clock)
    cache.get(wat(4), plugin_id="a")
    clock.advance(200)
    cache.get(wat(5), plugin_id="b")

    clock.advance(101)  # a: 301 s idle, b: 101 s
    assert len(cache) == 2  # expiry is lazy: nothing dropped until asked
    assert cache.sweep() == 1
    assert len(cache) == 1
    assert cache.sweep() == 0

    clock.advance(200)
    assert cache.sweep() == 1
    assert len(cache) == 0
    assert compiles == ["a", "b"]


def test_sweep_keeps_an_entry_idle_for_exactly_the_ttl(engine: wasmtime.Engine, compiles: list[str]) -> None:
    clock = ManualClock()
    cache = memory_cache(engine, clock=clock, ttl=300)
    cache.get(wat(10), plugin_id="p")
    clock.advance(300)
    assert cache.sweep() == 0
    assert len(cache) == 1


def test_holds_tells_what_is_cached_in_memory(engine: wasmtime.Engine) -> None:
    clock = ManualClock()
    cache = memory_cache(engine, clock=clock)
    wasm = wat(10)
    assert not cache.holds(wasm_digest(wasm))
    cache.get(wasm, plugin_id="p")
    assert cache.holds(wasm_digest(wasm))
    assert not cache.holds(wasm_digest(wat(11)))
    clock.advance(301)
    assert cache.holds(wasm_digest(wasm))  # expired but not yet swept still counts
    cache.sweep()
    assert not cache.holds(wasm_digest(wasm))


def test_discard_forgets_a_module_so_the_next_get_compiles_again(
    engine: wasmtime.Engine, compiles: list[str]
) -> None:
    cache = memory_cache(engine, clock=ManualClock())
    wasm, other = wat(57), wat(58)
    cache.get(wasm, plugin_id="p")
    cache.get(other, plugin_id="o")

    cache.discard(wasm_digest(wasm))
    cache.discard(wasm_digest(wat(59)))  # a digest it never held: nothing to do

    assert not cache.holds(wasm_digest(wasm))
    assert cache.holds(wasm_digest(other))
    assert len(cache) == 1
    cache.get(wasm, plugin_id="p")
    assert compiles == ["p", "o", "p"]


def test_a_dropped_module_stays_usable_by_its_holder(engine: wasmtime.Engine) -> None:
    clock = ManualClock()
    cache = memory_cache(engine, clock=clock)
    held = cache.get(wat(6), plugin_id="p")
    clock.advance(301)
    cache.sweep()
    cache.clear()
    assert run_f(held) == 6  # the cache only let go of its reference (defect 10)


def test_clear_forgets_everything(engine: wasmtime.Engine, compiles: list[str]) -> None:
    cache = memory_cache(engine)
    cache.get(wat(7), plugin_id="p")
    cache.clear()
    assert len(cache) == 0
    cache.get(wat(7), plugin_id="p")
    assert compiles == ["p", "p"]


def test_a_known_digest_skips_hashing(engine: wasmtime.Engine, compiles: list[str]) -> None:
    wasm = wat(8)
    cache = memory_cache(engine)
    module = cache.get(wasm, plugin_id="p", digest=wasm_digest(wasm))
    assert cache.get(wasm, plugin_id="p") is module
    assert compiles == ["p"]


def test_broken_wasm_is_a_load_error_and_is_not_cached(engine: wasmtime.Engine, tmp_path: Path) -> None:
    broken = b"\0asm\x01\0\0\0garbage"
    cache = memory_cache(engine, tmp_path)
    with pytest.raises(PluginLoadError, match="not a valid WebAssembly module") as info:
        cache.get(broken, plugin_id="bad")
    assert info.value.plugin_id == "bad"
    assert len(cache) == 0
    assert not tmp_path.exists() or [p.name for p in tmp_path.iterdir()] == ["key"]  # the MAC key only


def test_disk_cache_must_match_engine_and_settings(engine: wasmtime.Engine, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="same engine and settings key"):
        CompiledModuleCache(engine, settings_key=KEY, disk=DiskCache(tmp_path, engine, "other"))


# -- CompiledModuleCache: concurrency -------------------------------------------------------------


class CountingCondition(threading.Condition):
    """Signals once ``target`` waits have begun (counted under the lock, before it is released)."""

    def __init__(self, target: int) -> None:
        super().__init__()
        self.waits = 0
        self.target = target
        self.reached = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waits += 1
        if self.waits >= self.target:
            self.reached.set()
        return super().wait(timeout)


def run_threads(count: int, target: Callable[[int], None]) -> None:
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors


def test_concurrent_gets_of_one_digest_compile_once(
    engine: wasmtime.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = 5
    cache = memory_cache(engine)
    cond = CountingCondition(target=threads - 1)
    cache._cond = cond  # observe the waiters so the compile provably overlaps them
    calls: list[str] = []

    def slow_compile(engine: wasmtime.Engine, wasm: bytes, *, plugin_id: str) -> wasmtime.Module:
        calls.append(plugin_id)
        assert cond.reached.wait(10), "the other callers never waited"
        return real_compile(engine, wasm, plugin_id=plugin_id)

    monkeypatch.setattr(COMPILE, slow_compile)
    wasm = wat(9)
    results: list[wasmtime.Module] = []
    run_threads(threads, lambda i: results.append(cache.get(wasm, plugin_id="p")))

    assert calls == ["p"]
    assert len(results) == threads
    assert all(m is results[0] for m in results)


class CountingSemaphore(threading.Semaphore):
    def __init__(self, value: int, expected_attempts: int) -> None:
        super().__init__(value)
        self._count_lock = threading.Lock()
        self.attempts = 0
        self.expected = expected_attempts
        self.all_tried = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        with self._count_lock:
            self.attempts += 1
            if self.attempts == self.expected:
                self.all_tried.set()
        return super().acquire(blocking, timeout)

    def __enter__(self, blocking: bool = True, timeout: float | None = None) -> bool:
        return self.acquire(blocking, timeout)


def test_compile_slots_bound_compilations_across_digests(
    engine: wasmtime.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    slots = CountingSemaphore(2, expected_attempts=4)
    cache = memory_cache(engine, compile_slots=slots)
    lock = threading.Lock()
    active = [0, 0]  # current, maximum
    two_in, release = threading.Event(), threading.Event()

    def gated_compile(engine: wasmtime.Engine, wasm: bytes, *, plugin_id: str) -> wasmtime.Module:
        with lock:
            active[0] += 1
            active[1] = max(active)
            if active[0] == 2:
                two_in.set()
        assert release.wait(10)
        with lock:
            active[0] -= 1
        return real_compile(engine, wasm, plugin_id=plugin_id)

    monkeypatch.setattr(COMPILE, gated_compile)
    modules = [wat(100 + i) for i in range(4)]

    def get(i: int) -> None:
        cache.get(modules[i], plugin_id=f"p{i}")

    runner = threading.Thread(target=run_threads, args=(4, get))
    runner.start()
    assert slots.all_tried.wait(10)
    assert two_in.wait(10)
    with lock:
        assert active[0] == 2  # the other two are blocked on the semaphore
    release.set()
    runner.join(timeout=30)
    assert active == [0, 2]
    assert len(cache) == 4


# -- DiskCache -------------------------------------------------------------------------------------


def test_a_fresh_cache_loads_from_disk_without_compiling(
    engine: wasmtime.Engine, tmp_path: Path, compiles: list[str], load_strategy: str
) -> None:
    wasm = wat(11)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    assert compiles == ["p"]

    module = memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    assert compiles == ["p"]
    assert run_f(module) == 11


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd to restrict it")
def test_where_the_descriptors_path_cannot_be_opened_the_verified_bytes_are_loaded(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiles: list[str]
) -> None:
    # A /proc that lists descriptors but refuses to open them (some sandboxes): wasmtime could not map
    # the file by that path either, so the bytes that were verified are what it gets.
    wasm = wat(56)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    real_open = os.open

    def restricted(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path).startswith("/proc/self/fd/"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", restricted)
    monkeypatch.setattr(
        wasmtime.Module, "deserialize_file", staticmethod(lambda *_a: pytest.fail("handed wasmtime a path"))
    )
    assert run_f(memory_cache(engine, tmp_path).get(wasm, plugin_id="p")) == 56
    assert compiles == ["p"]


def test_artifact_is_one_file_named_by_its_mac(engine: wasmtime.Engine, tmp_path: Path) -> None:
    wasm = wat(12)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")

    (artifact,) = artifacts(tmp_path, engine, wasm)
    assert artifact.name == mac_name(tmp_path, wasm_digest(wasm), artifact.read_bytes())
    # The MAC ties the bytes to their module: the same bytes under another digest get another name.
    assert artifact.name != mac_name(tmp_path, wasm_digest(wat(13)), artifact.read_bytes())
    assert artifact.name != hashlib.sha256(artifact.read_bytes()).hexdigest() + ".cwasm"


def test_cache_folders_and_key_are_private(engine: wasmtime.Engine, tmp_path: Path) -> None:
    root = tmp_path / "cache" / "plugins"
    wasm = wat(26)
    memory_cache(engine, root).get(wasm, plugin_id="p")
    (artifact,) = artifacts(root, engine, wasm)
    assert (root.stat().st_mode & 0o777, artifact.parent.stat().st_mode & 0o777) == (0o700, 0o700)
    assert (root / "key").stat().st_mode & 0o777 == 0o600
    assert len((root / "key").read_bytes()) == 32
    assert artifact.stat().st_mode & 0o777 == 0o600


def test_disk_get_or_compile(engine: wasmtime.Engine, tmp_path: Path, compiles: list[str]) -> None:
    wasm = wat(13)
    first = DiskCache(tmp_path, engine, KEY).get_or_compile(wasm, wasm_digest(wasm), plugin_id="p")
    second = DiskCache(tmp_path, engine, KEY).get_or_compile(wasm, wasm_digest(wasm), plugin_id="p")
    assert compiles == ["p"]
    assert run_f(first) == run_f(second) == 13


def test_key_depends_on_settings_and_wasmtime_version(engine: wasmtime.Engine, tmp_path: Path) -> None:
    digest = wasm_digest(wat(14))
    base = DiskCache(tmp_path, engine, KEY).artifact_dir(digest)
    assert DiskCache(tmp_path, engine, "fuel=1").artifact_dir(digest) != base
    wasmtime_version.cache_clear()
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr("importlib.metadata.version", lambda _name: "0.0.0")
            assert DiskCache(tmp_path, engine, KEY).artifact_dir(digest) != base
    finally:
        wasmtime_version.cache_clear()


def test_a_hit_refreshes_the_mtime_for_the_purge(engine: wasmtime.Engine, tmp_path: Path) -> None:
    wasm = wat(15)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    (artifact,) = artifacts(tmp_path, engine, wasm)
    os.utime(artifact, (0, 0))
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    assert artifact.stat().st_mtime > 0


def test_a_hit_touches_an_artifact_unused_for_more_than_an_hour_only(
    engine: wasmtime.Engine, tmp_path: Path
) -> None:
    wasm = wat(15)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    (artifact,) = artifacts(tmp_path, engine, wasm)
    last_use = int(time.time()) - 2 * 3600
    os.utime(artifact, (last_use, last_use))

    with freeze_time(datetime.datetime.fromtimestamp(last_use + 3600, tz=datetime.UTC)):
        memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    assert artifact.stat().st_mtime == last_use  # used exactly an hour ago: left alone

    with freeze_time(datetime.datetime.fromtimestamp(last_use + 3601, tz=datetime.UTC)):
        memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    assert artifact.stat().st_mtime > last_use + 3601


def truncate(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def flip_body_byte(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # the ELF header stays valid
    path.write_bytes(bytes(data))
    return path


def random_bytes(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    path.write_bytes(os.urandom(path.stat().st_size))
    return path


def renamed(path: Path, data: bytes, name: str) -> Path:
    path.unlink()
    target = path.with_name(name)
    target.write_bytes(data)
    return target


def with_valid_mac(path: Path, data: bytes, wasm: bytes) -> Path:
    """``data`` under the name this host would give it: only a holder of the key can do this."""
    return renamed(path, data, mac_name(path.parent.parent, wasm_digest(wasm), data))


def other_settings_artifact(path: Path, _engine: wasmtime.Engine, wasm: bytes) -> Path:
    fuel_engine = shared_engine(EngineSettings(consume_fuel=True))
    return with_valid_mac(path, bytes(wasmtime.Module(fuel_engine, wasm).serialize()), wasm)


def random_bytes_with_matching_name(path: Path, _engine: wasmtime.Engine, wasm: bytes) -> Path:
    return with_valid_mac(path, os.urandom(4096), wasm)


def sha256_named(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    """The name layout 1 gave an artifact, which anyone can compute: no longer enough."""
    data = path.read_bytes()
    return renamed(path, data, hashlib.sha256(data).hexdigest() + ".cwasm")


def another_modules_artifact(path: Path, engine: wasmtime.Engine, _wasm: bytes) -> Path:
    """Our own, valid artifact of another module, under the name it has in that module's folder."""
    other = wat(99)
    data = bytes(wasmtime.Module(engine, other).serialize())
    return renamed(path, data, mac_name(path.parent.parent, wasm_digest(other), data))


def misnamed(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    return renamed(path, path.read_bytes(), "not-a-digest.cwasm")


def short_hex_named(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    """Hex, but not the 64 digits of a MAC."""
    return renamed(path, path.read_bytes(), path.name[:32] + ".cwasm")


def long_non_hex_named(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    """64 characters, but not all lowercase hex."""
    return renamed(path, path.read_bytes(), path.name[:63] + "g.cwasm")


def linked_to_a_copy(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    """A symbolic link under the artifact's name, to a copy of the genuine bytes elsewhere."""
    copy = path.parent.parent / "copy-of-the-artifact"
    copy.write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(copy)
    return path


def given_to_another_user(path: Path, _engine: wasmtime.Engine, _wasm: bytes) -> Path:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(path, 65534, 65534)
    return path


@pytest.mark.parametrize(
    ("corrupt", "reason"),
    [
        (truncate, "does not authenticate"),
        (flip_body_byte, "does not authenticate"),
        (random_bytes, "does not authenticate"),
        (sha256_named, "does not authenticate"),
        (another_modules_artifact, "does not authenticate"),
        (other_settings_artifact, "wasmtime refused it: Module was compiled with fuel support"),
        (random_bytes_with_matching_name, "wasmtime refused it"),
        (misnamed, "its name is not a MAC"),
        (short_hex_named, "its name is not a MAC"),
        (long_non_hex_named, "its name is not a MAC"),
        (linked_to_a_copy, "it is a symbolic link"),
        (given_to_another_user, "it belongs to another user (uid 65534)"),
    ],
)
def test_a_bad_artifact_is_deleted_logged_and_recompiled(
    engine: wasmtime.Engine,
    tmp_path: Path,
    compiles: list[str],
    load_strategy: str,
    corrupt: Callable[[Path, wasmtime.Engine, bytes], Path],
    reason: str,
) -> None:
    wasm = wat(16)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    (artifact,) = artifacts(tmp_path, engine, wasm)
    bad = corrupt(artifact, engine, wasm)

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        module = memory_cache(engine, tmp_path).get(wasm, plugin_id="p")

    assert run_f(module) == 16
    assert compiles == ["p", "p"]
    (warning,) = cache_warning_texts(record)
    assert str(bad) in warning
    assert reason in warning
    assert "recompiling" in warning
    (fresh,) = artifacts(tmp_path, engine, wasm)  # the bad file is gone, a good one took its place
    assert fresh.name == mac_name(tmp_path, wasm_digest(wasm), fresh.read_bytes())
    assert not fresh.is_symlink()
    assert memory_cache(engine, tmp_path).get(wasm, plugin_id="p") is not None
    assert compiles == ["p", "p"]
    if corrupt is linked_to_a_copy:  # the link went, never what it pointed to
        assert (tmp_path / "copy-of-the-artifact").is_file()


# -- DiskCache: seals -------------------------------------------------------------------------------


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every artifact whose content a load hashed."""
    seen: list[str] = []
    real = hashlib.file_digest

    def counting(file: Any, digest: str) -> Any:
        seen.append(os.readlink(f"/proc/self/fd/{file.fileno()}"))
        return real(file, digest)

    monkeypatch.setattr(hashlib, "file_digest", counting)
    return seen


def sealed(engine: wasmtime.Engine, root: Path, wasm: bytes) -> Path:
    """Compile and store ``wasm``, then load it once as if a few seconds later: the load verifies the
    artifact and leaves a seal old enough to vouch for it (a seal made in the same moment as the file
    cannot: see runtime/seal.py)."""
    memory_cache(engine, root).get(wasm, plugin_id="p")
    with freeze_time(datetime.datetime.fromtimestamp(time.time() + 10, tz=datetime.UTC)):
        memory_cache(engine, root).get(wasm, plugin_id="p")
    (artifact,) = artifacts(root, engine, wasm)
    return artifact


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="seals are trusted only with /proc/self/fd")
def test_a_sealed_artifact_is_mapped_without_hashing_or_describing(
    engine: wasmtime.Engine,
    tmp_path: Path,
    hashed: list[str],
    compiles: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wasm = wat(21)
    artifact = sealed(engine, tmp_path, wasm)
    assert [Path(p).name for p in hashed] == [artifact.name]  # the fresh seal could not vouch yet
    assert artifact.with_name(artifact.name + ".seal").is_file()

    module = memory_cache(engine, tmp_path).get(wasm, plugin_id="p")

    assert len(hashed) == 1
    assert compiles == ["p"]
    assert run_f(module) == 21
    # The seal's description answers for the module: wasmtime's type objects are not asked again.
    monkeypatch.setattr(wasmtime.Module, "exports", property(lambda _self: pytest.fail("described again")))
    _, exports = describe_module(module)
    assert [e.name for e in exports] == ["f"]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="seals are trusted only with /proc/self/fd")
def test_a_sealed_artifact_unused_for_an_hour_is_mapped_touched_and_sealed_again(
    engine: wasmtime.Engine, tmp_path: Path, hashed: list[str], compiles: list[str]
) -> None:
    # The warm start after a long pause: the seal still vouches (trusted), but the artifact's mtime is
    # over an hour old (stale), so the hit touches it for the purge, which voids the seal; a new one is
    # written from the seal's description, and the next start is mapped without hashing again.
    wasm = wat(28)
    artifact = sealed(engine, tmp_path, wasm)
    seal = artifact.with_name(artifact.name + ".seal")
    before, old_seal = artifact.stat(), seal.read_bytes()
    assert len(hashed) == 1

    later = datetime.datetime.fromtimestamp(before.st_mtime + 3601, tz=datetime.UTC)
    with freeze_time(later):
        texts = recorded(lambda: run_f(memory_cache(engine, tmp_path).get(wasm, plugin_id="p")))

    assert texts == []
    assert len(hashed) == 1  # trusted: not hashed again
    assert compiles == ["p"]
    after = artifact.stat()
    assert after.st_mtime_ns > before.st_mtime_ns  # touched, so the purge sees it used
    assert after.st_ctime_ns != before.st_ctime_ns
    assert seal.read_bytes() != old_seal  # sealed again for the touched file

    module = memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    assert len(hashed) == 1  # the new seal vouches for the touched file
    assert run_f(module) == 28
    assert artifact.stat().st_mtime_ns == after.st_mtime_ns  # a fresh hit touches nothing


@pytest.mark.parametrize(
    "corrupt",
    [truncate, random_bytes_with_matching_name],  # a changed size; another inode under the same name
)
def test_a_sealed_artifact_that_changed_is_hashed_and_replaced(
    engine: wasmtime.Engine,
    tmp_path: Path,
    hashed: list[str],
    compiles: list[str],
    corrupt: Callable[[Path, wasmtime.Engine, bytes], Path],
) -> None:
    wasm = wat(22)
    artifact = sealed(engine, tmp_path, wasm)
    if corrupt is random_bytes_with_matching_name:
        data = os.urandom(4096)
        artifact.unlink()
        artifact.write_bytes(data)  # a new inode carrying the old name (and so the old seal)
    else:
        corrupt(artifact, engine, wasm)

    with pytest.warns(CompileCacheWarning, match="does not authenticate"):
        module = memory_cache(engine, tmp_path).get(wasm, plugin_id="p")

    assert run_f(module) == 22
    assert len(hashed) == 2  # the seal did not vouch for the changed file
    assert compiles == ["p", "p"]


@pytest.mark.parametrize(
    "seal_text",
    [b"", b"{not json", b'{"format": 1}', b"wasmhost-seal 2 00\n{}", b"wasmhost-seal 2 " + b"0" * 64 + b"\n"],
)
def test_an_unreadable_seal_means_verify_and_reseal(
    engine: wasmtime.Engine, tmp_path: Path, hashed: list[str], compiles: list[str], seal_text: bytes
) -> None:
    wasm = wat(23)
    artifact = sealed(engine, tmp_path, wasm)
    seal = artifact.with_name(artifact.name + ".seal")
    seal.write_bytes(seal_text)

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert run_f(memory_cache(engine, tmp_path).get(wasm, plugin_id="p")) == 23

    (warning,) = cache_warning_texts(record)
    assert f"replaced the seal {seal}: it does not authenticate" in warning
    assert len(hashed) == 2
    assert compiles == ["p"]
    assert seal.read_bytes() != seal_text


def test_a_seal_whose_body_was_altered_is_no_seal(
    engine: wasmtime.Engine, tmp_path: Path, hashed: list[str], compiles: list[str]
) -> None:
    # The description decides how exports are called unchecked: a damaged one must not be believed.
    wasm = wat(25)
    artifact = sealed(engine, tmp_path, wasm)
    seal = artifact.with_name(artifact.name + ".seal")
    header, body = seal.read_bytes().split(b"\n", 1)
    assert b'"i32"' in body
    seal.write_bytes(header + b"\n" + body.replace(b'"i32"', b'"i64"'))

    with pytest.warns(CompileCacheWarning, match="does not authenticate"):
        module = memory_cache(engine, tmp_path).get(wasm, plugin_id="p")

    assert len(hashed) == 2
    assert compiles == ["p"]
    _, exports = describe_module(module)
    assert [(e.name, e.results) for e in exports] == [("f", ("i32",))]
    assert b'"i64"' not in seal.read_bytes()  # and sealed afresh


def test_a_seal_made_for_another_artifact_does_not_describe_this_one(
    engine: wasmtime.Engine, tmp_path: Path, hashed: list[str], compiles: list[str]
) -> None:
    # Both seals authenticate (one key), but the one copied over was made for another module's
    # artifact: its description (f takes an i64 there) must not be believed, nor re-saved.
    wasm = wat(27)
    other = bytes(wasmtime.wat2wasm('(module (func (export "f") (param i64) (result i64) (local.get 0)))'))
    artifact = sealed(engine, tmp_path, wasm)
    other_artifact = sealed(engine, tmp_path, other)
    seal = artifact.with_name(artifact.name + ".seal")
    seal.write_bytes(other_artifact.with_name(other_artifact.name + ".seal").read_bytes())

    with pytest.warns(CompileCacheWarning, match="was made for another artifact"):
        module = memory_cache(engine, tmp_path).get(wasm, plugin_id="p")

    _, exports = describe_module(module)
    assert [(e.name, e.params, e.results) for e in exports] == [("f", (), ("i32",))]
    assert run_f(module) == 27
    assert b'"i64"' not in seal.read_bytes()  # sealed afresh from the module itself
    assert compiles == ["p", "p"]  # one compile per module, none for the load


@pytest.mark.parametrize("moved", [False, True])
def test_a_bad_artifacts_seal_goes_with_it(engine: wasmtime.Engine, tmp_path: Path, moved: bool) -> None:
    wasm = wat(24)
    artifact = sealed(engine, tmp_path, wasm)
    truncate(artifact, engine, wasm)
    if moved:  # under a name no fresh artifact will overwrite, with its seal beside it
        bad = artifact.with_name(hashlib.sha256(b"elsewhere").hexdigest() + ".cwasm")
        artifact.rename(bad)
        artifact.with_name(artifact.name + ".seal").rename(bad.with_name(bad.name + ".seal"))
    with pytest.warns(CompileCacheWarning, match="discarding"):
        memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    (fresh,) = artifacts(tmp_path, engine, wasm)
    files = sorted(p.name for p in fresh.parent.iterdir())
    assert files == [fresh.name, fresh.name + ".seal"]


def test_a_stray_temp_file_is_ignored(engine: wasmtime.Engine, tmp_path: Path, compiles: list[str]) -> None:
    wasm = wat(17)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    (artifact,) = artifacts(tmp_path, engine, wasm)
    (artifact.parent / ".tmp-crashed.part").write_bytes(b"half a write")
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    assert compiles == ["p"]


# -- DiskCache: a folder, key or entry it must not trust ------------------------------------------


def recorded(body: Callable[[], object]) -> list[str]:
    """The cache warnings ``body`` gave."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        body()
    return cache_warning_texts(record)


def make_world_writable(root: Path) -> None:
    root.mkdir(parents=True)
    root.chmod(0o777)


def make_group_writable(root: Path) -> None:
    root.mkdir(parents=True)
    root.chmod(0o770)


def make_symlink(root: Path) -> None:
    target = root.parent / "elsewhere"
    target.mkdir(parents=True)
    root.symlink_to(target, target_is_directory=True)


def make_foreign(root: Path) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    root.mkdir(parents=True)
    os.chown(root, 65534, 65534)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (make_world_writable, "can be written by other users (mode 0777); run `chmod 700 {root}`"),
        (make_group_writable, "can be written by other users (mode 0770); run `chmod 700 {root}`"),
        (make_symlink, "is a symbolic link"),
        (make_foreign, "belongs to another user (uid 65534)"),
    ],
)
def test_a_root_we_must_not_trust_keeps_the_cache_in_memory_with_one_warning(
    engine: wasmtime.Engine, tmp_path: Path, compiles: list[str], make: Callable[[Path], None], says: str
) -> None:
    root = tmp_path / "cache" / "plugins"
    make(root)
    cache = memory_cache(engine, root)

    texts = recorded(lambda: (cache.get(wat(30), plugin_id="a"), cache.get(wat(31), plugin_id="b")))

    (warning,) = texts
    assert says.format(root=root) in warning
    assert "--wasm-cache-dir" in warning
    assert "in memory" in warning
    assert list(root.iterdir()) == []  # no key, no artifact: nothing written where others can write
    assert len(recorded(lambda: memory_cache(engine, root).get(wat(30), plugin_id="a"))) == 1
    assert compiles == ["a", "b", "a"]  # and nothing read from it either


def test_a_subfolder_we_must_not_trust_costs_only_its_own_module(
    engine: wasmtime.Engine, tmp_path: Path, compiles: list[str]
) -> None:
    good, bad = wat(32), wat(33)
    memory_cache(engine, tmp_path).get(good, plugin_id="good")
    memory_cache(engine, tmp_path).get(bad, plugin_id="bad")
    (bad_artifact,) = artifacts(tmp_path, engine, bad)
    bad_artifact.parent.chmod(0o777)

    cache = memory_cache(engine, tmp_path)
    texts = recorded(lambda: (cache.get(good, plugin_id="good"), cache.get(bad, plugin_id="bad")))

    (warning,) = texts
    assert f"chmod 700 {bad_artifact.parent}" in warning
    assert compiles == ["good", "bad", "bad"]  # the good module still came from disk


def key_mode_0644(key: Path) -> None:
    key.chmod(0o644)


def key_symlink(key: Path) -> None:
    real = key.with_name("real-key")
    key.rename(real)
    key.symlink_to(real)


def key_short(key: Path) -> None:
    key.write_bytes(b"short")


def key_folder(key: Path) -> None:
    key.unlink()
    key.mkdir()


def key_foreign(key: Path) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    os.chown(key, 65534, 65534)


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (key_mode_0644, "has mode 0644, not 0600"),
        (key_symlink, "is a symbolic link"),
        (key_short, "holds 5 bytes"),
        (key_folder, "is a folder"),
        (key_foreign, "belongs to another user (uid 65534)"),
    ],
)
def test_a_key_we_must_not_trust_keeps_the_cache_in_memory_with_one_warning(
    engine: wasmtime.Engine, tmp_path: Path, compiles: list[str], spoil: Callable[[Path], None], says: str
) -> None:
    memory_cache(engine, tmp_path).get(wat(34), plugin_id="a")
    spoil(tmp_path / "key")
    cache = memory_cache(engine, tmp_path)

    texts = recorded(lambda: (cache.get(wat(34), plugin_id="a"), cache.get(wat(35), plugin_id="b")))

    (warning,) = texts
    assert f"the cache key {tmp_path / 'key'} {says}" in warning
    assert "delete it" in warning
    assert compiles == ["a", "a", "b"]  # the artifact made under the old key is not believed
    assert artifacts(tmp_path, engine, wat(35)) == []


def test_racing_first_uses_agree_on_one_key(engine: wasmtime.Engine, tmp_path: Path) -> None:
    root = tmp_path / "plugins"
    compile_cache._known_keys.clear()  # each thread reads the file, as separate processes would
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def first_use(_i: int) -> None:
        start.wait(10)
        keys.append(compile_cache._read_key(root))

    root.mkdir(mode=0o700)
    run_threads(8, first_use)

    assert len(set(keys)) == 1
    assert keys[0] == (root / "key").read_bytes()
    assert sorted(p.name for p in root.iterdir()) == ["key"]  # no temp key left behind


def key_opens(monkeypatch: pytest.MonkeyPatch, key: Path) -> list[int]:
    """Counts every os.open of ``key`` (one element per open)."""
    opens: list[int] = []
    real_open = os.open

    def counting(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == key:
            opens.append(flags)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting)
    return opens


def test_a_key_read_once_is_trusted_by_identity_until_its_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "plugins"
    root.mkdir(mode=0o700)
    key_file = root / "key"
    first = compile_cache._read_key(root)
    opens = key_opens(monkeypatch, key_file)

    assert compile_cache._read_key(root) == first
    assert opens == []  # the very file read before: one lstat, no open

    replacement = os.urandom(32)
    key_file.write_bytes(replacement)
    os.utime(key_file, (1_600_000_000, 1_600_000_000))
    assert compile_cache._read_key(root) == replacement  # another file now: read afresh
    assert len(opens) == 1

    compile_cache._known_keys.clear()  # a key on disk this process never read (a later process)
    assert compile_cache._read_key(root) == replacement
    assert len(opens) == 2


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_reading_the_key_leaks_no_descriptor(tmp_path: Path) -> None:
    root = tmp_path / "plugins"
    root.mkdir(mode=0o700)
    compile_cache._read_key(root)
    compile_cache._known_keys.clear()
    before = open_fds()
    compile_cache._read_key(root)
    assert open_fds() == before


def test_a_key_that_keeps_vanishing_turns_the_cache_off_after_three_tries(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    made: list[Path] = []
    monkeypatch.setattr(compile_cache, "_create_key", made.append)  # as if deleted right after each make
    cache = memory_cache(engine, tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert run_f(cache.get(wat(43), plugin_id="p")) == 43
    (warning,) = cache_warnings(caplog)
    assert "the cache key keeps vanishing" in warning
    assert made == [tmp_path / "key"] * 3
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize(("mode", "refused"), [(0o600, False), (0o644, True)])
def test_a_key_that_cannot_be_opened_says_why(
    engine: wasmtime.Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: int,
    refused: bool,
) -> None:
    # EACCES, faked: this process may ignore permission bits. A key of ours is then a disk problem (a log
    # warning); one whose mode says others may read it is refused with the fix (a CompileCacheWarning).
    root = tmp_path / "plugins"
    root.mkdir(mode=0o700)
    compile_cache._read_key(root)
    compile_cache._known_keys.clear()
    (root / "key").chmod(mode)
    real_open = os.open

    def denied(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if Path(path) == root / "key":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        texts = recorded(lambda: memory_cache(engine, root).get(wat(44), plugin_id="p"))

    if refused:
        (warning,) = texts
        assert f"the cache key {root / 'key'} has mode 0644, not 0600" in warning
        assert cache_warnings(caplog) == []
    else:
        assert texts == []
        (warning,) = cache_warnings(caplog)
        assert "is unusable" in warning
        assert "Permission denied" in warning


def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    """Each fsync, link and replace in order: ("fsync", file name, its size then) or (call, target, 0)."""
    events: list[tuple[str, str, int]] = []
    real_fsync, real_link, real_replace = os.fsync, os.link, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", Path(os.readlink(f"/proc/self/fd/{fd}")).name, os.fstat(fd).st_size))
        real_fsync(fd)

    def link(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        events.append(("link", Path(dst).name, 0))
        real_link(src, dst, *args, **kwargs)

    def replace(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        events.append(("replace", Path(dst).name, 0))
        real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "link", link)
    monkeypatch.setattr(os, "replace", replace)
    return events


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names synced files through /proc")
def test_the_key_and_artifacts_reach_the_disk_whole_before_their_name(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "plugins"
    events = fsyncs(monkeypatch)
    wasm = wat(45)
    memory_cache(engine, root).get(wasm, plugin_id="p")
    (artifact,) = artifacts(root, engine, wasm)

    synced_key, linked = events[:2]
    assert (synced_key[0], synced_key[1][: len(".tmp-key-")], synced_key[2]) == ("fsync", ".tmp-key-", 32)
    assert linked == ("link", "key", 0)
    synced_artifact, renamed_in = events[2:4]
    assert (synced_artifact[0], synced_artifact[1][:5]) == ("fsync", ".tmp-")
    assert synced_artifact[2] == artifact.stat().st_size
    assert renamed_in == ("replace", artifact.name, 0)
    assert [e for e in events[4:] if e[0] == "fsync"] == []  # a seal is not synced: a torn one fails its MAC


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names synced files through /proc")
def test_a_synced_write_has_its_bytes_in_the_file_when_fsync_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An artifact is larger than the write buffer and reaches write(2) at once; data that fits the
    # buffer must be flushed first, or fsync would sync an empty file.
    events = fsyncs(monkeypatch)
    compile_cache._write_then_rename(tmp_path, tmp_path / "small", b"12345")

    synced, renamed = events
    assert (synced[0], synced[1][:5], synced[2]) == ("fsync", ".tmp-", 5)
    assert renamed == ("replace", "small", 0)
    assert (tmp_path / "small").read_bytes() == b"12345"


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names synced files through /proc")
def test_without_hard_links_the_key_is_still_made_whole_and_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "plugins"
    root.mkdir(mode=0o700)
    events = fsyncs(monkeypatch)

    def no_links(src: Any, dst: Any, *args: Any, **kwargs: Any) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted", str(src))

    monkeypatch.setattr(os, "link", no_links)  # some network or FAT filesystems
    key = compile_cache._read_key(root)

    assert len(key) == 32
    assert (root / "key").read_bytes() == key
    assert (root / "key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in root.iterdir()) == ["key"]
    assert events[-1] == ("fsync", "key", 32)


def test_folders_and_files_are_private_whatever_the_umask(engine: wasmtime.Engine, tmp_path: Path) -> None:
    root = tmp_path / "plugins"
    previous = os.umask(0o277)  # even one that takes the owner's write bit
    try:
        memory_cache(engine, root).get(wat(36), plugin_id="p")
    finally:
        os.umask(previous)
    (artifact,) = artifacts(root, engine, wat(36))
    assert (root.stat().st_mode & 0o777, artifact.parent.stat().st_mode & 0o777) == (0o700, 0o700)
    assert (root / "key").stat().st_mode & 0o777 == 0o600
    assert recorded(lambda: memory_cache(engine, root).get(wat(36), plugin_id="p")) == []


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
@pytest.mark.parametrize("with_content", [False, True])
def test_a_folder_under_an_artifacts_name_is_a_miss_and_leaks_nothing(
    engine: wasmtime.Engine, tmp_path: Path, compiles: list[str], with_content: bool
) -> None:
    wasm = wat(37)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    (artifact,) = artifacts(tmp_path, engine, wasm)
    artifact.unlink()
    artifact.mkdir()
    if with_content:
        (artifact / "x").write_bytes(b"x")
    before = open_fds()

    texts = recorded(lambda: run_f(memory_cache(engine, tmp_path).get(wasm, plugin_id="p")))

    (warning,) = texts
    assert f"{artifact}: it is a folder, not a regular file; recompiling" in warning
    assert open_fds() == before
    assert compiles == ["p", "p"]
    assert artifact.is_dir() == with_content  # an empty one is removed and the artifact written again


def test_a_subfolder_we_must_not_trust_is_neither_read_nor_written(
    engine: wasmtime.Engine, tmp_path: Path
) -> None:
    wasm = wat(46)
    digest = wasm_digest(wasm)
    module = real_compile(engine, wasm, plugin_id="p")
    DiskCache(tmp_path, engine, KEY).store(digest, module)
    folder = DiskCache(tmp_path, engine, KEY).artifact_dir(digest)
    before = sorted(p.name for p in folder.iterdir())
    folder.chmod(0o777)

    reader = DiskCache(tmp_path, engine, KEY)
    texts = recorded(lambda: reader.load(digest))
    (warning,) = texts
    assert f"not using the compiled-module cache folder {folder} can be written by other users" in warning
    writer = DiskCache(tmp_path, engine, KEY)
    texts = recorded(lambda: writer.store(digest, module))
    (warning,) = texts
    assert f"not using the compiled-module cache folder {folder} can be written by other users" in warning
    assert sorted(p.name for p in folder.iterdir()) == before


def test_a_subfolder_others_can_only_enter_is_trusted(
    engine: wasmtime.Engine, tmp_path: Path, compiles: list[str]
) -> None:
    wasm = wat(47)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    (artifact,) = artifacts(tmp_path, engine, wasm)
    artifact.parent.chmod(0o711)  # search bits: nobody else can write it
    assert recorded(lambda: memory_cache(engine, tmp_path).get(wasm, plugin_id="p")) == []
    assert compiles == ["p"]


def test_without_owners_a_folder_is_not_judged_by_its_mode_bits(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compile_cache, "_POSIX", False)  # as on Windows: no owner or mode bits to check
    root = tmp_path / "plugins"
    make_world_writable(root)
    wasm = wat(60)
    digest = wasm_digest(wasm)

    texts = recorded(
        lambda: DiskCache(root, engine, KEY).store(digest, real_compile(engine, wasm, plugin_id="p"))
    )

    assert texts == []  # the MAC still guards every artifact
    assert DiskCache(root, engine, KEY).load(digest) is not None


def test_without_owners_a_key_file_longer_than_a_key_is_still_refused(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compile_cache, "_POSIX", False)  # no size check by fstat: the read must catch it
    root = tmp_path / "plugins"
    root.mkdir(mode=0o700)
    key = root / "key"
    key.write_bytes(b"k" * 33)
    key.chmod(0o600)
    wasm = wat(61)
    cache = DiskCache(root, engine, KEY)

    texts = recorded(lambda: cache.store(wasm_digest(wasm), real_compile(engine, wasm, plugin_id="p")))

    (warning,) = texts
    assert f"not using the compiled-module disk cache: the cache key {key} " in warning
    assert key.read_bytes() == b"k" * 33
    assert artifacts(root, engine, wasm) == []


@pytest.mark.parametrize("refused", ["root", "subfolder"])
def test_cache_warnings_are_attributed_to_the_cache_module(
    engine: wasmtime.Engine, tmp_path: Path, refused: str
) -> None:
    # Not to whoever called the cache: a warnings filter by module (pytest_wasmhost.runtime.compile_cache)
    # must select every CompileCacheWarning, wherever the call came from.
    root = tmp_path / "plugins"
    digest = wasm_digest(wat(62))
    if refused == "root":
        root.write_bytes(b"a file where the cache folder should be")
    else:
        root.mkdir(mode=0o700)
        DiskCache(root, engine, KEY).artifact_dir(digest).write_bytes(b"a file where a folder should be")

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert DiskCache(root, engine, KEY).load(digest) is None

    (warning,) = [w for w in record if issubclass(w.category, CompileCacheWarning)]
    assert "is a file, not a folder" in str(warning.message)
    assert Path(warning.filename) == Path(compile_cache.__file__)


def fail_for(monkeypatch: pytest.MonkeyPatch, name: str, target: Path, exc: OSError) -> None:
    """Make ``os.<name>`` raise ``exc`` for ``target`` only."""
    real = getattr(os, name)

    def failing(path: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(path, (str, Path)) and Path(path) == target:
            raise exc
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, name, failing)


@pytest.mark.parametrize(("call", "says"), [("lstat", "cannot examine"), ("scandir", "cannot list")])
def test_a_subfolder_that_cannot_be_read_is_a_miss_with_one_warning(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, call: str, says: str
) -> None:
    wasm = wat(48)
    digest = wasm_digest(wasm)
    DiskCache(tmp_path, engine, KEY).store(digest, real_compile(engine, wasm, plugin_id="p"))
    folder = DiskCache(tmp_path, engine, KEY).artifact_dir(digest)
    fail_for(monkeypatch, call, folder, PermissionError(errno.EACCES, "Permission denied", str(folder)))
    cache = DiskCache(tmp_path, engine, KEY)

    texts = recorded(lambda: (cache.load(digest), cache.load(digest)))

    (warning,) = texts
    assert f"{says} the compiled-module cache folder {folder}: " in warning
    assert "Permission denied" in warning
    assert cache.load(wasm_digest(wat(49))) is None


def test_a_store_returns_the_artifact_and_a_blocked_name_costs_only_itself(
    engine: wasmtime.Engine, tmp_path: Path
) -> None:
    wasm, other = wat(50), wat(51)
    digest = wasm_digest(wasm)
    module = real_compile(engine, wasm, plugin_id="p")
    stored = DiskCache(tmp_path, engine, KEY).store(digest, module)
    assert stored is not None
    assert artifacts(tmp_path, engine, wasm) == [stored]
    stored.unlink()
    stored.mkdir()
    (stored / "x").write_bytes(b"not ours to remove")

    cache = DiskCache(tmp_path, engine, KEY)
    texts = recorded(lambda: cache.store(digest, module))
    (warning,) = texts
    assert f"cannot write the compiled-module cache file {stored}: " in warning
    assert cache.store(wasm_digest(other), real_compile(engine, other, plugin_id="o")) is not None


def test_an_artifact_that_cannot_be_read_is_recompiled_and_kept(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiles: list[str]
) -> None:
    wasm = wat(52)
    memory_cache(engine, tmp_path).get(wasm, plugin_id="p")
    (artifact,) = artifacts(tmp_path, engine, wasm)
    real_fstat = os.fstat

    def failing_io(fd: int) -> os.stat_result:
        if os.readlink(f"/proc/self/fd/{fd}") == str(artifact):
            raise OSError(errno.EIO, "Input/output error")
        return real_fstat(fd)

    monkeypatch.setattr(os, "fstat", failing_io)
    texts = recorded(lambda: run_f(memory_cache(engine, tmp_path).get(wasm, plugin_id="p")))

    (warning,) = texts
    assert f"cannot read the compiled-module cache file {artifact} (" in warning
    assert "Input/output error" in warning
    assert compiles == ["p", "p"]
    assert artifacts(tmp_path, engine, wasm) == [artifact]  # an I/O error proves nothing against the file


def test_a_write_whose_folder_a_purge_removed_starts_again(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wasm = wat(53)
    digest = wasm_digest(wasm)
    module = real_compile(engine, wasm, plugin_id="p")
    folder = DiskCache(tmp_path, engine, KEY).artifact_dir(digest)
    real_mkstemp = tempfile.mkstemp
    calls: list[str] = []

    def raced(*args: Any, **kwargs: Any) -> tuple[int, str]:
        calls.append(str(kwargs.get("dir")))
        if len(calls) == 1:  # another process's purge removed the empty folder right after we made it
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(folder))
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", raced)
    stored = DiskCache(tmp_path, engine, KEY).store(digest, module)

    assert stored is not None
    assert artifacts(tmp_path, engine, wasm) == [stored]


def test_a_folder_that_keeps_vanishing_turns_storing_off_after_three_tries(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wasm = wat(54)
    digest = wasm_digest(wasm)
    folder = DiskCache(tmp_path, engine, KEY).artifact_dir(digest)
    tries: list[int] = []

    def vanished(*_args: Any, **_kwargs: Any) -> tuple[int, str]:
        tries.append(1)
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(folder))

    monkeypatch.setattr(tempfile, "mkstemp", vanished)
    cache = DiskCache(tmp_path, engine, KEY)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert cache.store(digest, real_compile(engine, wasm, plugin_id="p")) is None
    assert len(tries) == 3
    (warning,) = cache_warnings(caplog)
    assert f"No such file or directory: '{folder}'" in warning


def test_a_root_several_missing_folders_deep_is_made(engine: wasmtime.Engine, tmp_path: Path) -> None:
    root = tmp_path / "home" / ".cache" / "wasmhost" / "plugins"
    wasm = wat(55)
    assert recorded(lambda: memory_cache(engine, root).get(wasm, plugin_id="p")) == []
    assert len(artifacts(root, engine, wasm)) == 1


def test_concurrent_first_uses_of_one_cache_share_its_key(engine: wasmtime.Engine, tmp_path: Path) -> None:
    cache = DiskCache(tmp_path, engine, KEY)
    waiting = threading.Event()

    class SignallingLock:
        """The cache's lock, which tells when a second caller is waiting for it."""

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.entered = 0

        def __enter__(self) -> None:
            self.entered += 1
            if self.entered == 2:
                waiting.set()
            self.lock.acquire()

        def __exit__(self, *_exc: object) -> None:
            self.lock.release()

    cache._lock = SignallingLock()  # type: ignore[assignment]
    real_read_key = compile_cache._read_key

    def slow_read_key(root: Path) -> bytes:
        assert waiting.wait(10), "the second caller never waited for the first"
        return real_read_key(root)

    keys: list[bytes | None] = [None, None]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(compile_cache, "_read_key", slow_read_key)
        run_threads(2, lambda i: keys.__setitem__(i, cache._open()))

    assert keys[0] is not None
    assert keys == [keys[0], keys[0]]
    assert keys[0] == (tmp_path / "key").read_bytes()


def test_a_bad_entry_disables_nothing_but_itself(
    engine: wasmtime.Engine, tmp_path: Path, compiles: list[str]
) -> None:
    stuck, fine, later = wat(38), wat(39), wat(40)
    memory_cache(engine, tmp_path).get(stuck, plugin_id="stuck")
    memory_cache(engine, tmp_path).get(fine, plugin_id="fine")
    (artifact,) = artifacts(tmp_path, engine, stuck)
    artifact.unlink()
    artifact.mkdir()
    (artifact / "x").write_bytes(b"cannot be removed by the cache")  # so writing its name fails too

    cache = memory_cache(engine, tmp_path)
    texts = recorded(
        lambda: [cache.get(w, plugin_id=p) for w, p in ((stuck, "stuck"), (fine, "fine"), (later, "later"))]
    )

    assert len(texts) == 1  # the bad entry, once, though both its read and its write failed
    assert compiles == ["stuck", "fine", "stuck", "later"]  # "fine" still came from disk
    assert len(artifacts(tmp_path, engine, later)) == 1  # and writing still works for the others


def test_the_cache_purges_after_a_write_that_passes_its_limit(
    engine: wasmtime.Engine, tmp_path: Path, compiles: list[str]
) -> None:
    first, second = wat(41), wat(42)
    one = DiskCache(tmp_path, engine, KEY)
    one.get_or_compile(first, wasm_digest(first), plugin_id="first")
    (old,) = artifacts(tmp_path, engine, first)
    os.utime(old, (time.time() - 3600,) * 2)
    size = sum(f.stat().st_size for f in old.parent.iterdir())
    limited = DiskCache(tmp_path, engine, KEY, size_limit=str(size + size // 2))  # room for one

    limited.get_or_compile(second, wasm_digest(second), plugin_id="second")

    assert artifacts(tmp_path, engine, first) == []  # the older one went, with its seal and folder
    assert not old.parent.exists()
    assert len(artifacts(tmp_path, engine, second)) == 1
    assert (tmp_path / "key").exists()


def test_the_start_of_a_runtime_never_purges_a_folder_it_refuses(tmp_path: Path) -> None:
    elsewhere = tmp_path / "someone-elses"
    precious = make_file(elsewhere / "d" / "precious", 1000, age_seconds=3600)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "plugins").symlink_to(elsewhere, target_is_directory=True)

    with pytest.warns(CompileCacheWarning, match="symbolic link"):
        Runtime(RuntimeSettings(cache_dir=tmp_path / "cache", cache_size="1")).close()
    assert precious.exists()


# -- DiskCache: disk errors degrade ---------------------------------------------------------------


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]


def test_read_only_cache_folder_degrades_with_one_warning(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def read_only(*_args: Any, **_kwargs: Any) -> tuple[int, str]:
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    cache = memory_cache(engine, tmp_path)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert run_f(cache.get(wat(18), plugin_id="a")) == 18
        assert run_f(cache.get(wat(19), plugin_id="b")) == 19

    (warning,) = cache_warnings(caplog)
    assert "cannot write" in warning
    assert "Read-only file system" in warning
    assert artifacts(tmp_path, engine, wat(18)) == []


@pytest.mark.skipif(IGNORES_PERMISSION_BITS, reason=SKIP_REASON)
def test_read_only_permissions_degrade_with_one_warning(
    engine: wasmtime.Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tmp_path.chmod(0o555)
    try:
        cache = memory_cache(engine, tmp_path / "plugins")
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            cache.get(wat(20), plugin_id="a")
            cache.get(wat(21), plugin_id="b")
    finally:
        tmp_path.chmod(0o755)
    assert len(cache_warnings(caplog)) == 1


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_disk_full_degrades_and_leaves_no_temp_file(
    engine: wasmtime.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_mkstemp = tempfile.mkstemp

    def full_disk(*args: Any, **kwargs: Any) -> tuple[int, str]:
        fd, name = real_mkstemp(*args, **kwargs)
        os.close(fd)
        return os.open("/dev/full", os.O_WRONLY), name  # every write fails with ENOSPC

    monkeypatch.setattr(tempfile, "mkstemp", full_disk)
    wasm = wat(22)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert run_f(memory_cache(engine, tmp_path).get(wasm, plugin_id="p")) == 22

    (warning,) = cache_warnings(caplog)
    assert "No space left on device" in warning
    folder = DiskCache(tmp_path, engine, KEY).artifact_dir(wasm_digest(wasm))
    assert list(folder.iterdir()) == []  # the temp file was removed


def test_unusable_cache_folder_degrades_with_one_warning(engine: wasmtime.Engine, tmp_path: Path) -> None:
    not_a_folder = tmp_path / "plugins"
    not_a_folder.write_bytes(b"a file where the cache folder should be")
    cache = memory_cache(engine, not_a_folder)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert run_f(cache.get(wat(23), plugin_id="a")) == 23
        assert run_f(cache.get(wat(24), plugin_id="b")) == 24

    (warning,) = cache_warning_texts(record)
    assert f"{not_a_folder} is a file, not a folder" in warning
    assert "--wasm-cache-dir" in warning


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    # The epoch ticker is the process-wide deadline clock, started with the first engine: not a leak.
    leaked = [
        t
        for t in threading.enumerate()
        if t not in before and t.is_alive() and t.name != "wasmhost-epoch-ticker"
    ]
    assert not leaked, leaked
