"""Compiled-module caches: in memory (the original's 5-minute idle TTL) and on disk (wasmtime artifacts).

Disk layout under ``root`` (the caller passes ``<cache dir>/plugins``)::

    <key>/<sha256 of the artifact>.cwasm        key = sha256(layout, wasm digest, wasmtime version,
    <key>/<sha256 of the artifact>.cwasm.seal         engine settings, machine)
    <key>/.tmp-*.part                           (a write in progress)

The artifact file is exactly what ``Module.serialize()`` produced, so ``Module.deserialize_file`` can
map it (0.2 ms instead of 4-6 ms for ``deserialize(bytes)`` on the Go sample, see perf-floor.md); its
integrity check is its own name. A reader hashes the open file (about 5 ms for the Go sample's 11 MB)
and only hands that very file (through ``/proc/self/fd``) to wasmtime when the hash equals the name;
where there is no such path it verifies bytes in memory and uses ``Module.deserialize``. Deserializing
corrupted native code is undefined behaviour; a foreign but intact artifact (other wasmtime build or
engine flags) is safe to offer: wasmtime checks its header and refuses it. Files are never modified in
place (writers rename new files in, the purge unlinks), so a verified, mapped file stays what was
verified. The hash guards against corruption, not against an attacker who can write the cache folder.

A successful verification leaves a seal (:mod:`.seal`): the artifact's identity as ``fstat`` saw it
and the module's imports and exports. While the identity holds, later loads map the file without
hashing or describing it, which is most of a warm start. Artifacts are written with ``fsync`` before
their rename, so a crash cannot leave a sealed name over blocks that never reached the disk.

Writers go through a temp file in the same folder and ``os.replace``. Compilation is deterministic
(same bytes for the same wasm, wasmtime and settings), so racing processes write the same name and the
last rename wins harmlessly, leaving one artifact.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import logging
import math
import os
import platform
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import wasmtime

from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock
from pytest_wasmhost.runtime.engine import wasmtime_version
from pytest_wasmhost.runtime.instance import (
    Description,
    compile_module,
    describe_module,
    remember_description,
    wasmtime_error_text,
)
from pytest_wasmhost.runtime.seal import encode_seal, read_seal, seal_path

__all__ = [
    "CompiledModuleCache",
    "DiskCache",
    "parse_size",
    "purge_cache",
    "wasm_digest",
]

log = logging.getLogger("pytest_wasmhost.runtime.compile_cache")

# -- size parsing ---------------------------------------------------------------------------------

# Hand-written on purpose: ``humanize`` only formats, and humanfriendly.parse_size (the usual parser) is
# not ParseBytes: it reads "Ki" as 1000 and any word starting with k/m/g/... as a unit ("5 kittens").
# This is a line-by-line port of go-humanize v1.0.1, the version Navidrome uses.
_UNITS: Final[dict[str, int]] = {
    "": 1,
    "b": 1,
    **{p: 1000**i for i, p in enumerate("kmgtpe", 1)},
    **{f"{p}b": 1000**i for i, p in enumerate("kmgtpe", 1)},
    **{f"{p}i": 1024**i for i, p in enumerate("kmgtpe", 1)},
    **{f"{p}ib": 1024**i for i, p in enumerate("kmgtpe", 1)},
}
# Go's unicode.IsSpace set (strings.TrimSpace); str.strip() would also drop \x1c-\x1f.
_GO_SPACE: Final = (
    "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
)
_MAX_UINT64_FLOAT: Final = float(2**64)


def parse_size(text: str) -> int | None:
    """Bytes in ``text`` by go-humanize ``ParseBytes`` rules ("10MB", "1.5 GiB", "1,000k", "3"), else None."""
    end = 0
    for ch in text:
        if not (ch.isdecimal() or ch in ".,"):  # isdecimal() is Go's unicode.IsDigit (category Nd)
            break
        end += 1
    number = text[:end].replace(",", "")
    if not number.isascii():  # Go's ParseFloat accepts only 0-9; Python's float() takes any Nd digit
        return None
    try:
        value = float(number)
    except ValueError:
        return None
    # Go lowercases rune by rune (simple mapping): U+0130 becomes "i", where Python's lower() gives two.
    unit = text[end:].strip(_GO_SPACE).replace("\u0130", "i").lower()
    multiplier = _UNITS.get(unit)
    if multiplier is None or math.isinf(value):  # inf: ParseFloat's range error
        return None
    value *= multiplier
    if value >= _MAX_UINT64_FLOAT:
        return None
    return int(value)  # uint64(f) truncates


# -- purge ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _CacheFile:
    path: Path
    size: int
    mtime_ms: int


def purge_cache(root: Path, limit: str) -> list[Path]:
    """Delete the oldest files under ``root`` until its total size is at most ``limit`` (runtime.md §5).

    An unparseable or zero limit, or a missing folder, purges nothing. Returns the deleted paths.
    """
    size_limit = parse_size(limit)
    if not size_limit:
        return []
    files = _scan_files(root)
    total = sum(f.size for f in files)
    log.debug("plugin cache %s holds %d bytes (limit %d)", root, total, size_limit)
    if total <= size_limit:
        return []
    files.sort(key=lambda f: (f.mtime_ms, str(f.path)))  # path breaks ties so runs are reproducible
    removed: list[Path] = []
    for item in files:
        if total <= size_limit:
            break
        try:
            item.path.unlink()
        except FileNotFoundError:
            total -= item.size  # someone else (another process's purge) removed it: it no longer counts
            continue
        except OSError as exc:
            log.warning("cannot remove plugin cache file %s: %s", item.path, exc)
            continue
        total -= item.size
        removed.append(item.path)
        log.debug("removed plugin cache file %s (%d bytes), %d bytes left", item.path, item.size, total)
        _remove_empty_parents(item.path.parent, root)
    return removed


def _scan_files(root: Path) -> list[_CacheFile]:
    files: list[_CacheFile] = []
    for dirpath, _dirs, names in os.walk(root, onerror=_log_walk_error):
        for name in names:
            path = Path(dirpath, name)
            try:
                st = path.lstat()
            except OSError as exc:
                log.debug("skipping unreadable plugin cache entry %s: %s", path, exc)
                continue
            if stat.S_ISREG(st.st_mode):
                files.append(_CacheFile(path, st.st_size, st.st_mtime_ns // 1_000_000))
    return files


def _log_walk_error(exc: OSError) -> None:
    if exc.errno != errno.ENOENT:
        log.debug("skipping unreadable plugin cache entry %s: %s", exc.filename, exc)


def _remove_empty_parents(directory: Path, root: Path) -> None:
    while directory != root and root in directory.parents:
        try:
            directory.rmdir()  # fails on a non-empty folder: that is where we stop
        except OSError:
            return
        directory = directory.parent


# -- disk cache -----------------------------------------------------------------------------------

_LAYOUT: Final = "pytest-wasmhost-cwasm-1"
_SUFFIX: Final = ".cwasm"
_TMP_PREFIX: Final = ".tmp-"
_PROC_FD: Final = "/proc/self/fd"
_MTIME_REFRESH: Final = 3600.0  # seconds: a hit older than this touches the artifact for the purge


def wasm_digest(wasm: bytes) -> str:
    """The cache key of a module's bytes: sha256, lowercase hex."""
    return hashlib.sha256(wasm).hexdigest()


@cache
def _fd_paths_work() -> bool:
    """Whether wasmtime can open the very file we verified by its descriptor (Linux)."""
    return os.path.isdir(_PROC_FD)


def _reopenable_path(fd: int) -> str | None:
    """A path that opens the very file behind ``fd`` (the inode we hash, even if the name is replaced)."""
    if not _fd_paths_work():
        return None
    path = f"{_PROC_FD}/{fd}"
    try:  # wasmtime opens it with open(2) too: if we cannot, neither can it (e.g. a restricted /proc)
        os.close(os.open(path, os.O_RDONLY))
    except OSError:
        return None
    return path


def _write_then_rename(directory: Path, target: Path, data: bytes | bytearray, *, sync: bool = True) -> None:
    # Artifacts are synced before the rename: a sealed artifact is trusted without its hash, so a crash
    # must not leave a renamed file whose blocks never reached the disk (a few ms, against a compile's
    # seconds). A seal need not be: a torn one fails its own checksum and only costs a re-hash.
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=_TMP_PREFIX, suffix=".part")
    try:
        with open(fd, "wb") as out:
            out.write(data)
            if sync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def _is_sha256_hex(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdef" for c in text)


class _Discard(Exception):
    """An artifact that must not be used; the message is the reason logged."""


class DiskCache:
    """wasmtime-serialized modules under ``root``, verified before wasmtime sees them.

    Never raises for disk trouble: an unreadable folder disables the cache, an unwritable one disables
    storing, each with one warning; a bad artifact is deleted with a warning and the caller recompiles.
    """

    def __init__(self, root: Path, engine: wasmtime.Engine, settings_key: str) -> None:
        self.root = Path(root)
        self.engine = engine
        self.settings_key = settings_key
        self._lock = threading.Lock()
        self._read_ok = True
        self._write_ok = True

    # -- keys ------------------------------------------------------------------------------------

    def artifact_dir(self, digest: str) -> Path:
        """The folder holding the artifact for wasm ``digest`` under this wasmtime and engine settings."""
        # The machine is part of the key so a folder shared across architectures does not thrash.
        material = "\0".join((_LAYOUT, digest, wasmtime_version(), self.settings_key, platform.machine()))
        return self.root / hashlib.sha256(material.encode()).hexdigest()

    # -- public API ------------------------------------------------------------------------------

    def load(self, digest: str) -> wasmtime.Module | None:
        """The cached module for ``digest``, or None (missing, unusable, or the cache is disabled)."""
        if not self._read_ok:
            return None
        try:
            candidates = self._artifacts(self.artifact_dir(digest))
        except OSError as exc:
            self._disable_reads(exc)
            return None
        for path in candidates:
            module = self._load_file(path)
            if module is not None:
                return module
        return None

    def store(self, digest: str, module: wasmtime.Module) -> Path | None:
        """Write ``module`` for ``digest`` atomically; returns the artifact path, None if not written."""
        if not self._write_ok:
            return None
        try:
            data = module.serialize()
        except wasmtime.WasmtimeError as exc:
            log.warning("cannot serialize the compiled module %s for the disk cache: %s", digest, exc)
            return None
        directory = self.artifact_dir(digest)
        target = directory / (hashlib.sha256(data).hexdigest() + _SUFFIX)
        try:
            written_at = time.time_ns()
            self._write_atomic(directory, target, data)
            self._seal(target, target.stat(), written_at, describe_module(module))
        except OSError as exc:
            self._disable_writes(exc)
            return None
        return target

    def get_or_compile(self, wasm: bytes, digest: str, *, plugin_id: str) -> wasmtime.Module:
        """Load ``digest`` from disk, or compile ``wasm`` (PluginLoadError if broken) and store it."""
        module = self.load(digest)
        if module is None:
            module = compile_module(self.engine, wasm, plugin_id=plugin_id)
            self.store(digest, module)
        return module

    # -- reading ---------------------------------------------------------------------------------

    @staticmethod
    def _artifacts(directory: Path) -> list[Path]:
        try:
            with os.scandir(directory) as entries:
                names = sorted(e.name for e in entries if e.name.endswith(_SUFFIX))
        except FileNotFoundError:
            return []
        return [directory / name for name in names]

    def _load_file(self, path: Path) -> wasmtime.Module | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except FileNotFoundError:
            return None  # deleted since listed (a purge or a discard elsewhere): a plain miss
        except OSError as exc:
            self._disable_reads(exc)
            return None
        with open(fd, "rb") as file:
            try:
                opened = os.fstat(fd)
                seal = read_seal(path)
                trusted = seal is not None and seal.vouches_for(opened)
                same_file = _reopenable_path(fd) if trusted else None
                if same_file is not None:  # verified before and unchanged since: map it unhashed
                    module = self._deserialize(
                        lambda: wasmtime.Module.deserialize_file(self.engine, same_file)
                    )
                else:
                    trusted = False
                    verified_at = time.time_ns()
                    module = self._verified_module(file, path.name.removesuffix(_SUFFIX))
            except _Discard as bad:
                self._discard(path, os.fstat(fd), str(bad))
                return None
            except OSError as exc:
                self._disable_reads(exc)
                return None
            # The content is known good here, so the seal's description (a function of the wasm, which
            # this folder is keyed by) holds for this module.
            description = seal.description if seal is not None else None
            if description is not None:
                remember_description(module, description)
            # A hit counts as use, so the oldest-first purge acts as LRU. Touching moves the change
            # time, which voids the seal, so only an artifact unused for an hour is touched.
            stale = time.time() - opened.st_mtime > _MTIME_REFRESH
            if stale:
                with contextlib.suppress(OSError):
                    os.utime(path)
            if not trusted or stale or description is None:
                since = verified_at if not trusted else time.time_ns()
                with contextlib.suppress(OSError):  # fstat of an open file: never expected to fail
                    self._seal(path, os.fstat(fd), since, description or describe_module(module))
        return module

    def _verified_module(self, file: io.BufferedReader, expected: str) -> wasmtime.Module:
        if not _is_sha256_hex(expected):
            raise _Discard("its name is not the sha256 of an artifact")
        same_file = _reopenable_path(file.fileno())
        if same_file is not None:
            self._check_digest(expected, hashlib.file_digest(file, "sha256").hexdigest())
            return self._deserialize(lambda: wasmtime.Module.deserialize_file(self.engine, same_file))
        data = file.read()
        self._check_digest(expected, hashlib.sha256(data).hexdigest())
        return self._deserialize(lambda: wasmtime.Module.deserialize(self.engine, data))

    @staticmethod
    def _check_digest(expected: str, actual: str) -> None:
        if actual != expected:
            raise _Discard(f"checksum mismatch (content sha256 {actual[:16]}…): truncated or corrupted")

    @staticmethod
    def _deserialize(load: Callable[[], wasmtime.Module]) -> wasmtime.Module:
        try:
            return load()
        except wasmtime.WasmtimeError as exc:
            cause = wasmtime_error_text(exc, drop_prefixes=("failed deserialization for",))
            raise _Discard(f"wasmtime refused it: {cause}") from exc

    def _discard(self, path: Path, opened: os.stat_result, reason: str) -> None:
        log.warning("discarding compiled-module cache file %s: %s; recompiling", path, reason)
        with contextlib.suppress(OSError):
            seal_path(path).unlink()
        try:
            current = path.stat()
            # Only delete the file we judged: a concurrent writer may have renamed a good one in since.
            if (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino):
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot delete the bad compiled-module cache file %s: %s", path, exc)

    # -- writing ---------------------------------------------------------------------------------

    @staticmethod
    def _seal(artifact: Path, st: os.stat_result, verified_at_ns: int, description: Description) -> None:
        """Write ``artifact``'s seal (runtime/seal.py); a failure only costs a re-hash next time."""
        try:
            data = encode_seal(st, verified_at_ns, description)
            _write_then_rename(artifact.parent, seal_path(artifact), data, sync=False)
        except OSError as exc:
            log.debug("cannot seal %s: %s", artifact, exc)

    @staticmethod
    def _write_atomic(directory: Path, target: Path, data: bytes | bytearray) -> None:
        for attempt in range(3):
            directory.mkdir(parents=True, exist_ok=True)
            try:
                _write_then_rename(directory, target, data)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise
                # A concurrent purge removed the folder (or our temp file) meanwhile: start again.

    # -- degrading -------------------------------------------------------------------------------

    def _disable_reads(self, exc: OSError) -> None:
        with self._lock:
            if not self._read_ok:
                return
            self._read_ok = self._write_ok = False
        log.warning("compiled-module disk cache %s is unreadable (%s); compiling without it", self.root, exc)

    def _disable_writes(self, exc: OSError) -> None:
        with self._lock:
            if not self._write_ok:
                return
            self._write_ok = False
        log.warning(
            "cannot write the compiled-module disk cache %s (%s); compiled modules will not be saved",
            self.root,
            exc,
        )


# -- memory cache ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    module: wasmtime.Module
    last_access: float


class CompiledModuleCache:
    """Compiled modules by wasm digest, dropped after ``ttl`` seconds without access (runtime.md §8.2).

    Expiry is lazy (checked on ``get``) plus explicit ``sweep()``. Dropping an entry only drops this
    cache's reference: a pool still holding the Module keeps using it (the original closed it, defect 10).
    Concurrent ``get`` calls for one digest compile once; ``compile_slots`` bounds compilations across
    digests (the original allowed 2 at once).
    """

    def __init__(
        self,
        engine: wasmtime.Engine,
        *,
        settings_key: str,
        clock: Clock = SYSTEM_CLOCK,
        ttl: float = 300.0,
        disk: DiskCache | None = None,
        compile_slots: threading.Semaphore | None = None,
    ) -> None:
        if disk is not None and (disk.engine is not engine or disk.settings_key != settings_key):
            raise ValueError("the disk cache must use the same engine and settings key as the memory cache")
        self.engine = engine
        self.settings_key = settings_key
        self.ttl = ttl
        self.disk = disk
        self._clock = clock
        self._slots = compile_slots
        self._entries: dict[str, _Entry] = {}
        self._in_flight: set[str] = set()
        self._cond = threading.Condition()

    def get(self, wasm: bytes, *, plugin_id: str, digest: str | None = None) -> wasmtime.Module:
        """The compiled module for ``wasm``: cached, loaded from disk, or compiled (PluginLoadError).

        ``digest`` (``wasm_digest(wasm)``) may be passed when the caller already knows it, e.g. cached
        by (path, mtime, size), to skip hashing the bytes on every call (defect 12).
        """
        key = digest if digest is not None else wasm_digest(wasm)
        with self._cond:
            while True:
                module = self._hit(key)
                if module is not None:
                    return module
                if key not in self._in_flight:
                    self._in_flight.add(key)
                    break
                self._cond.wait()  # another thread is producing this digest: take its result
        try:
            module = self._produce(wasm, key, plugin_id)
            with self._cond:
                self._entries[key] = _Entry(module, self._clock.now())
        finally:
            with self._cond:
                self._in_flight.discard(key)
                self._cond.notify_all()
        return module

    def sweep(self) -> int:
        """Drop every entry idle for more than ``ttl``; returns how many were dropped."""
        with self._cond:
            now = self._clock.now()
            expired = [k for k, e in self._entries.items() if now - e.last_access > self.ttl]
            for key in expired:
                del self._entries[key]
        return len(expired)

    def holds(self, digest: str) -> bool:
        """Whether the module of ``digest`` is cached in memory (expired or not yet swept counts)."""
        with self._cond:
            return digest in self._entries

    def clear(self) -> None:
        with self._cond:
            self._entries.clear()

    def __len__(self) -> int:
        """Entries held, including expired ones no ``get`` or ``sweep`` has dropped yet."""
        with self._cond:
            return len(self._entries)

    def _hit(self, key: str) -> wasmtime.Module | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self._clock.now()
        if now - entry.last_access > self.ttl:
            del self._entries[key]
            return None
        entry.last_access = now  # each hit restarts the idle timer
        return entry.module

    def _produce(self, wasm: bytes, key: str, plugin_id: str) -> wasmtime.Module:
        if self.disk is not None:
            module = self.disk.load(key)
            if module is not None:
                return module
        with self._compile_slot():
            module = compile_module(self.engine, wasm, plugin_id=plugin_id)
        if self.disk is not None:
            self.disk.store(key, module)
        return module

    @contextlib.contextmanager
    def _compile_slot(self) -> Iterator[None]:
        if self._slots is None:
            yield
            return
        with self._slots:
            yield
