"""Compiled-module caches: in memory (the original's 5-minute idle TTL) and on disk (wasmtime artifacts).

Disk layout under ``root`` (the caller passes ``<cache dir>/plugins``; every folder is created 0700)::

    key                                         32 random bytes, 0600: this user's MAC key
    <folder>/<MAC of the artifact>.cwasm        folder = sha256(layout, wasm digest, wasmtime version,
    <folder>/<MAC of the artifact>.cwasm.seal              engine settings, machine)
    <folder>/.tmp-*.part                        (a write in progress)

The artifact file is exactly what ``Module.serialize()`` produced, so ``Module.deserialize_file`` can
map it (0.2 ms instead of 4-6 ms for ``deserialize(bytes)`` on the Go sample, see perf-floor.md). Its
name is an HMAC-SHA256 under the key of the artifact's bytes, the wasm digest it was compiled from,
the wasmtime version and the engine settings: deserializing native code runs it, so only an artifact
this host wrote for this very module is ever handed to wasmtime. A reader computes the MAC over the
open file (about 5 ms for the Go sample's 11 MB) and only hands that very file (through
``/proc/self/fd``) to wasmtime when it equals the name; where there is no such path it verifies bytes
in memory and uses ``Module.deserialize``. Anyone who can write the folder but cannot read the key (a
shared CI cache, a planted artifact of another module, a copy of our own artifact of another plugin)
gets a recompile and one :class:`CompileCacheWarning`, never their code run.

The folder is trusted only when it is ours: a root or subfolder that is a symbolic link, belongs to
another user or can be written by group or others is refused (one warning naming it and the fix) and
the cache stays in memory. Entries are opened with ``O_NOFOLLOW | O_NONBLOCK`` and must be regular
files of ours: a FIFO, a device, a link or a folder under an artifact's name is a miss that recompiles
(one warning), never a hang. A bad entry costs only itself; only a root that cannot be used at all, or
a disk that refuses writes (read-only, full), turns the cache (or storing) off, with one log warning.

A successful verification leaves a seal (:mod:`.seal`, authenticated with the same key): the
artifact's identity as ``fstat`` saw it and the module's imports and exports. While the identity
holds, later loads map the file without re-authenticating or describing it, which is most of a warm
start. Artifacts are written with ``fsync`` before their rename, so a crash cannot leave a sealed name
over blocks that never reached the disk. Files are never modified in place (writers rename new files
in, the purge unlinks), so a verified, mapped file stays what was verified.

Writers go through a temp file in the same folder and ``os.replace``. Compilation is deterministic
(same bytes for the same wasm, wasmtime and settings), so racing processes write the same name and the
last rename wins harmlessly, leaving one artifact. After every write the cache is purged back under
its size limit (and at the first use in a process); the purge also removes temp files that a killed
writer left behind.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import logging
import math
import os
import platform
import secrets
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Final

import wasmtime
from humanize import naturalsize

from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock
from pytest_wasmhost.gocompat.strings import to_lower, trim_space
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
    "CompileCacheWarning",
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
    unit = to_lower(trim_space(text[end:]))  # go-humanize: strings.ToLower(strings.TrimSpace(...))
    multiplier = _UNITS.get(unit)
    if multiplier is None or math.isinf(value):  # inf: ParseFloat's range error
        return None
    value *= multiplier
    if value >= _MAX_UINT64_FLOAT:
        return None
    return int(value)  # uint64(f) truncates


# -- purge ----------------------------------------------------------------------------------------

_KEY_NAME: Final = "key"  # the MAC key's file, directly under the root (never purged)
_SUFFIX: Final = ".cwasm"
_SEAL_SUFFIX: Final = ".seal"
_TMP_PREFIX: Final = ".tmp-"
# A writer's temp file lives from the end of a compile to its rename (well under a second); one this
# old belongs to a writer that was killed, and nothing else will ever remove it.
_STALE_TMP_SECONDS: Final = 15 * 60


@dataclass(frozen=True, slots=True)
class _CacheFile:
    path: Path
    size: int
    mtime_ms: int


def purge_cache(root: Path, limit: str | None, *, now: float | None = None) -> list[Path]:
    """Delete the oldest files under ``root`` until its total size is at most ``limit`` (runtime.md §5).

    Temp files of writers killed mid-write (older than 15 minutes) go first, whatever the limit; a
    younger one belongs to a live writer and is counted but kept. An artifact's seal goes with it; the
    key file is never touched. An unparseable or zero limit (or None) purges nothing else, and a
    missing folder nothing at all. A file that vanished meanwhile (another process's purge) no longer
    counts. Returns the deleted paths.
    """
    files = _scan_files(root)
    cutoff_ms = ((time.time() if now is None else now) - _STALE_TMP_SECONDS) * 1000
    removed: list[Path] = []
    kept: list[_CacheFile] = []
    for item in files:
        if item.path.name.startswith(_TMP_PREFIX) and item.mtime_ms < cutoff_ms:
            if _unlink_counted(item.path, root):
                removed.append(item.path)
                log.debug("removed a killed writer's temp file %s", item.path)
        else:
            kept.append(item)
    size_limit = parse_size(limit) if limit is not None else None
    if not size_limit:
        return removed
    total = sum(f.size for f in kept)
    # Decimal units, as the original logs them through go-humanize's Bytes.
    log.debug("plugin cache %s holds %s (limit %s)", root, naturalsize(total), naturalsize(size_limit))
    if total <= size_limit:
        return removed
    by_path = {f.path: f for f in kept}
    gone: set[Path] = set()
    kept.sort(key=lambda f: (f.mtime_ms, str(f.path)))  # path breaks ties so runs are reproducible
    for item in kept:
        if total <= size_limit:
            break
        if item.path in gone:
            continue
        batch = [item]
        seal = by_path.get(item.path.with_name(item.path.name + _SEAL_SUFFIX))
        if item.path.name.endswith(_SUFFIX) and seal is not None:
            batch.append(seal)  # a seal without its artifact is clutter: it goes along
        for entry in batch:
            gone.add(entry.path)
            try:
                entry.path.unlink()
            except FileNotFoundError:
                total -= entry.size  # someone else (another process's purge) removed it: it no longer counts
                continue
            except OSError as exc:
                log.warning("cannot remove plugin cache file %s: %s", entry.path, exc)
                continue
            total -= entry.size
            removed.append(entry.path)
            size, left = naturalsize(entry.size), naturalsize(total)
            log.debug("removed plugin cache file %s (%s), %s left", entry.path, size, left)
        _remove_empty_parents(item.path.parent, root)
    return removed


def _unlink_counted(path: Path, root: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot remove plugin cache file %s: %s", path, exc)
        return False
    _remove_empty_parents(path.parent, root)
    return True


def _scan_files(root: Path) -> list[_CacheFile]:
    files: list[_CacheFile] = []
    for dirpath, _dirs, names in os.walk(root, onerror=_log_walk_error):
        for name in names:
            path = Path(dirpath, name)
            if name == _KEY_NAME and path.parent == root:
                continue
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


# -- trusting the folder --------------------------------------------------------------------------


class CompileCacheWarning(UserWarning):
    """The disk compile cache refused a folder, its key or one entry; it compiled without it."""


_POSIX: Final = os.name == "posix"
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
# Entries are never followed through a link and never block (a FIFO under an artifact's name).
_OPEN_FLAGS: Final = (
    os.O_RDONLY
    | _NOFOLLOW
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)
_KEY_BYTES: Final = 32
_FOLDER_FIX: Final = (
    "or choose another folder (pytest --wasm-cache-dir, wasmhost --cache-dir, $WASMHOST_CACHE_DIR)"
)
# Write failures of one entry (something else sits under its name); any other errno is the disk's.
_ENTRY_ERRNOS: Final = frozenset({errno.EISDIR, errno.ENOTDIR, errno.ELOOP, errno.ENOTEMPTY, errno.EEXIST})


class _Refused(Exception):
    """A folder or key file the cache must not trust; the message names it and the fix."""


def _euid() -> int | None:
    return os.geteuid() if _POSIX and hasattr(os, "geteuid") else None


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "a file"),
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _folder_problem(path: Path, st: os.stat_result) -> str | None:
    """Why the folder ``path`` (``st`` from lstat) cannot hold artifacts we trust, with the fix."""
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link; point the cache at the real folder {_FOLDER_FIX}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is {_kind(st.st_mode)}, not a folder; remove it {_FOLDER_FIX}"
    euid = _euid()
    if euid is None:
        return None  # no owners or mode bits to check (Windows): the MAC still guards every artifact
    if st.st_uid != euid:
        return f"{path} belongs to another user (uid {st.st_uid}); use a folder of your own {_FOLDER_FIX}"
    if st.st_mode & 0o022:
        return (
            f"{path} can be written by other users (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"run `chmod 700 {path}` {_FOLDER_FIX}"
        )
    return None


def _private_folder(path: Path) -> None:
    """Create ``path`` 0700 if missing, then refuse it unless it is a folder only we can write."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    else:
        os.chmod(path, 0o700)  # the umask may have taken bits away (a swap to a link is caught below)
    problem = _folder_problem(path, os.lstat(path))
    if problem is not None:
        raise _Refused(problem)


def _key_problem(path: Path, st: os.stat_result) -> str | None:
    fix = "delete it (a new key is made; every cached plugin then compiles once more)"
    if not stat.S_ISREG(st.st_mode):
        return f"the cache key {path} is {_kind(st.st_mode)}; {fix}"
    euid = _euid()
    if euid is None:
        return None
    if st.st_uid != euid:
        return f"the cache key {path} belongs to another user (uid {st.st_uid}); {fix}"
    if stat.S_IMODE(st.st_mode) != 0o600:
        mode = stat.S_IMODE(st.st_mode)
        return f"the cache key {path} has mode {mode:04o}, not 0600 (others may know it); {fix}"
    if st.st_size != _KEY_BYTES:
        return f"the cache key {path} holds {st.st_size} bytes, not a key of ours; {fix}"
    return None


# Keys read in this process, by path, with the identity they were read under: a later cache on the
# same root (every Runtime makes one) checks the file with one lstat instead of opening it.
_known_keys: dict[Path, tuple[tuple[int, ...], bytes]] = {}


def _key_identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode, st.st_uid)


def _read_key(root: Path) -> bytes:
    """This user's MAC key under ``root``, made on first use (_Refused for a key we cannot trust)."""
    path = root / _KEY_NAME
    known = _known_keys.get(path)
    if known is not None:
        with contextlib.suppress(OSError):
            if _key_identity(os.lstat(path)) == known[0]:  # the very file we checked and read
                return known[1]
    for _attempt in range(3):
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            _create_key(path)
            continue
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Refused(
                    f"the cache key {path} is a symbolic link; delete it (a new key is made)"
                ) from exc
            with contextlib.suppress(OSError):  # unreadable: say why when it is not ours (EACCES)
                problem = _key_problem(path, os.lstat(path))
                if problem is not None:
                    raise _Refused(problem) from exc
            raise
        try:
            st = os.fstat(fd)
            problem = _key_problem(path, st)
            if problem is not None:
                raise _Refused(problem)
            key = os.read(fd, _KEY_BYTES + 1)
        finally:
            os.close(fd)
        if len(key) != _KEY_BYTES:
            raise _Refused(f"the cache key {path} is truncated; delete it (a new key is made)")
        _known_keys[path] = (_key_identity(st), key)
        return key
    raise OSError(errno.ENOENT, "the cache key keeps vanishing", str(path))


def _create_key(path: Path) -> None:
    # Written whole under a temp name, then linked into place: link() never replaces, so racing
    # processes agree on the first key and no reader ever sees a half-written one.
    tmp = path.with_name(f"{_TMP_PREFIX}key-{secrets.token_hex(8)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with open(fd, "wb") as out:
            if hasattr(os, "fchmod"):
                os.fchmod(out.fileno(), 0o600)  # whatever the umask left
            out.write(secrets.token_bytes(_KEY_BYTES))
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process made the key first: use theirs
        except OSError:
            # No hard links here (some network or FAT filesystems): exclusive create instead; a
            # racing reader may then see it short for a moment, which it reports as truncated.
            data = Path(tmp).read_bytes()
            with contextlib.suppress(FileExistsError):
                out_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
                with open(out_fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


# -- disk cache -----------------------------------------------------------------------------------

_LAYOUT: Final = "pytest-wasmhost-cwasm-2"  # 2: artifacts named by their MAC (1 was a bare sha256)
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
    # Artifacts are synced before the rename: a sealed artifact is trusted without its MAC, so a crash
    # must not leave a renamed file whose blocks never reached the disk (a few ms, against a compile's
    # seconds). A seal need not be: a torn one fails its own MAC and only costs a re-check.
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=_TMP_PREFIX, suffix=".part")  # 0600
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
    """An artifact that must not be used; the message is the reason reported."""


class DiskCache:
    """wasmtime-serialized modules under ``root``, authenticated before wasmtime sees them.

    Never raises for disk trouble. A folder or key that cannot be trusted keeps the cache in memory
    (one :class:`CompileCacheWarning`); a root that cannot be used, or a disk that refuses writes,
    turns reading or storing off (one log warning); a bad artifact or seal is reported once (warning),
    deleted where possible, and the caller recompiles. With ``size_limit`` (go-humanize text, as
    ``Plugins.CacheSize``) every write is followed by a purge back under it.
    """

    def __init__(
        self, root: Path, engine: wasmtime.Engine, settings_key: str, *, size_limit: str | None = None
    ) -> None:
        self.root = Path(root)
        self.engine = engine
        self.settings_key = settings_key
        self.size_limit = size_limit
        self._lock = threading.Lock()
        self._key: bytes | None = None
        self._opened = False
        self._write_ok = True
        self._warned: set[str] = set()

    # -- keys ------------------------------------------------------------------------------------

    def artifact_dir(self, digest: str) -> Path:
        """The folder holding the artifact for wasm ``digest`` under this wasmtime and engine settings."""
        # The machine is part of the key so a folder shared across architectures does not thrash.
        material = "\0".join((_LAYOUT, digest, wasmtime_version(), self.settings_key, platform.machine()))
        return self.root / hashlib.sha256(material.encode()).hexdigest()

    def _mac(self, key: bytes, digest: str) -> hmac.HMAC:
        """A MAC over what ties an artifact to this module and build; the caller adds the artifact."""
        context = json.dumps([_LAYOUT, digest, wasmtime_version(), self.settings_key, platform.machine()])
        return hmac.new(key, context.encode() + b"\n", "sha256")

    # -- public API ------------------------------------------------------------------------------

    def load(self, digest: str) -> wasmtime.Module | None:
        """The cached module for ``digest``, or None (missing, unusable, or the cache is disabled)."""
        key = self._open()
        if key is None:
            return None
        directory = self.artifact_dir(digest)
        try:
            problem = _folder_problem(directory, os.lstat(directory))
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_once(directory, f"cannot examine the compiled-module cache folder {directory}: {exc}")
            return None
        if problem is not None:
            self._warn_once(directory, f"not using the compiled-module cache folder {problem}")
            return None
        try:
            with os.scandir(directory) as entries:
                names = sorted(e.name for e in entries if e.name.endswith(_SUFFIX))
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._warn_once(directory, f"cannot list the compiled-module cache folder {directory}: {exc}")
            return None
        for name in names:
            module = self._load_file(directory / name, digest, key)
            if module is not None:
                return module
        return None

    def store(self, digest: str, module: wasmtime.Module) -> Path | None:
        """Write ``module`` for ``digest`` atomically; returns the artifact path, None if not written."""
        key = self._open()
        if key is None or not self._write_ok:
            return None
        try:
            data = module.serialize()
        except wasmtime.WasmtimeError as exc:
            log.warning("cannot serialize the compiled module %s for the disk cache: %s", digest, exc)
            return None
        directory = self.artifact_dir(digest)
        mac = self._mac(key, digest)
        mac.update(data)
        target = directory / (mac.hexdigest() + _SUFFIX)
        try:
            written_at = time.time_ns()
            self._write_atomic(directory, target, data)
            self._seal(key, target, digest, os.lstat(target), written_at, describe_module(module))
        except _Refused as refused:
            self._warn_once(directory, f"not using the compiled-module cache folder {refused}")
            return None
        except OSError as exc:
            if exc.errno in _ENTRY_ERRNOS:  # something else sits under this entry's name: it alone is lost
                self._warn_once(target, f"cannot write the compiled-module cache file {target}: {exc}")
            else:
                self._disable_writes(exc)
            return None
        self.purge()
        return target

    def get_or_compile(self, wasm: bytes, digest: str, *, plugin_id: str) -> wasmtime.Module:
        """Load ``digest`` from disk, or compile ``wasm`` (PluginLoadError if broken) and store it."""
        module = self.load(digest)
        if module is None:
            module = compile_module(self.engine, wasm, plugin_id=plugin_id)
            self.store(digest, module)
        return module

    def purge(self) -> list[Path]:
        """Purge back under ``size_limit`` and drop killed writers' temp files (:func:`purge_cache`)."""
        if self._open() is None:
            return []  # never walk (or delete in) a folder we refused
        return purge_cache(self.root, self.size_limit)

    # -- opening ---------------------------------------------------------------------------------

    def _open(self) -> bytes | None:
        """The MAC key, after accepting (or creating) the root folder and key file; None = disabled."""
        key = self._key
        if key is not None or self._opened:
            return key
        with self._lock:
            if self._opened:
                return self._key
            try:
                try:
                    st = os.lstat(self.root)
                except FileNotFoundError:
                    self.root.parent.mkdir(parents=True, exist_ok=True)
                    _private_folder(self.root)
                else:  # the usual case: one lstat, no mkdir
                    problem = _folder_problem(self.root, st)
                    if problem is not None:
                        raise _Refused(problem) from None
                self._key = _read_key(self.root)
            except _Refused as refused:
                warnings.warn(
                    f"pytest-wasmhost: not using the compiled-module disk cache: {refused}; "
                    "compiled modules are kept in memory only for this run",
                    CompileCacheWarning,
                    stacklevel=2,
                )
            except OSError as exc:
                log.warning(
                    "compiled-module disk cache %s is unusable (%s); compiling without it", self.root, exc
                )
            self._opened = True
        return self._key

    # -- reading ---------------------------------------------------------------------------------

    def _load_file(self, path: Path, digest: str, key: bytes) -> wasmtime.Module | None:
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None  # deleted since listed (a purge or a discard elsewhere): a plain miss
        except OSError as exc:
            reason = "it is a symbolic link" if exc.errno == errno.ELOOP else f"it cannot be opened ({exc})"
            self._discard(path, None, reason)
            return None
        opened: os.stat_result | None = None
        try:
            opened = os.fstat(fd)
            return self._load_open(fd, opened, path, digest, key)
        except _Discard as bad:
            self._discard(path, opened, str(bad))
            return None
        except OSError as exc:
            self._warn_once(path, f"cannot read the compiled-module cache file {path} ({exc}); recompiling")
            return None
        finally:
            os.close(fd)

    def _load_open(
        self, fd: int, opened: os.stat_result, path: Path, digest: str, key: bytes
    ) -> wasmtime.Module:
        if not stat.S_ISREG(opened.st_mode):
            raise _Discard(f"it is {_kind(opened.st_mode)}, not a regular file")
        euid = _euid()
        if euid is not None and opened.st_uid != euid:
            raise _Discard(f"it belongs to another user (uid {opened.st_uid})")
        name = path.name.removesuffix(_SUFFIX)
        if not _is_sha256_hex(name):
            raise _Discard("its name is not a MAC this host gives")
        read = read_seal(path, key)
        seal, seal_problem = read.seal, read.problem
        if seal is not None and not seal.belongs_to(path, digest):
            seal, seal_problem = None, "was made for another artifact"
        trusted = seal is not None and seal.vouches_for(opened)
        same_file = _reopenable_path(fd) if trusted else None
        if seal is not None and same_file is not None:  # verified before and unchanged since: map it
            module = self._deserialize(lambda: wasmtime.Module.deserialize_file(self.engine, same_file))
        else:
            trusted = False
            verified_at = time.time_ns()
            module = self._verified_module(fd, name, digest, key)
        # A seal that authenticates under our key and names this artifact was written by us from the
        # module wasmtime made of these very bytes (the name is their MAC, checked above or by the
        # identity): its description holds even when its identity no longer vouches (a touch, a copy).
        description = seal.description if seal is not None else None
        if description is not None:
            remember_description(module, description)
        # A hit counts as use, so the oldest-first purge acts as LRU. Touching moves the change
        # time, which voids the seal, so only an artifact unused for an hour is touched.
        stale = time.time() - opened.st_mtime > _MTIME_REFRESH
        if stale:
            with contextlib.suppress(OSError):
                os.utime(fd)  # through the descriptor: never a name someone may have swapped
        if not trusted or stale:
            since = verified_at if not trusted else time.time_ns()
            # Never a description from a seal that is not this artifact's: then wasmtime is asked.
            self._seal(key, path, digest, os.fstat(fd), since, description or describe_module(module))
        if seal_problem is not None:  # reported only for a good artifact: a bad one's warning covers both
            self._warn_once(
                seal_path(path),
                f"replaced the seal {seal_path(path)}: it {seal_problem}; the artifact was re-verified",
            )
        return module

    def _verified_module(self, fd: int, expected: str, digest: str, key: bytes) -> wasmtime.Module:
        mac = self._mac(key, digest)
        same_file = _reopenable_path(fd)
        with open(fd, "rb", closefd=False) as file:
            if same_file is not None:
                self._check_mac(expected, hashlib.file_digest(file, lambda: mac).hexdigest())
                return self._deserialize(lambda: wasmtime.Module.deserialize_file(self.engine, same_file))
            data = file.read()
        mac.update(data)
        self._check_mac(expected, mac.hexdigest())
        return self._deserialize(lambda: wasmtime.Module.deserialize(self.engine, data))

    @staticmethod
    def _check_mac(expected: str, actual: str) -> None:
        if not hmac.compare_digest(actual, expected):
            raise _Discard(
                "it does not authenticate (truncated or corrupted, compiled from another module, "
                "or not written by this host)"
            )

    @staticmethod
    def _deserialize(load: Callable[[], wasmtime.Module]) -> wasmtime.Module:
        try:
            return load()
        except wasmtime.WasmtimeError as exc:
            cause = wasmtime_error_text(exc, drop_prefixes=("failed deserialization for",))
            raise _Discard(f"wasmtime refused it: {cause}") from exc

    def _discard(self, path: Path, opened: os.stat_result | None, reason: str) -> None:
        self._warn_once(path, f"discarding the compiled-module cache file {path}: {reason}; recompiling")
        with contextlib.suppress(OSError):
            seal_path(path).unlink()
        try:
            current = os.lstat(path)
            # Only delete the file we judged: a concurrent writer may have renamed a good one in since.
            if opened is not None and (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
                return
            if stat.S_ISDIR(current.st_mode):
                path.rmdir()  # an empty folder only: what else it holds is not ours to judge
            else:
                path.unlink()  # a link goes, never what it points to
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot delete the bad compiled-module cache entry %s: %s", path, exc)

    # -- writing ---------------------------------------------------------------------------------

    @staticmethod
    def _seal(
        key: bytes,
        artifact: Path,
        digest: str,
        st: os.stat_result,
        verified_at_ns: int,
        description: Description,
    ) -> None:
        """Write ``artifact``'s seal (runtime/seal.py); a failure only costs a re-check next time."""
        try:
            data = encode_seal(key, artifact, digest, st, verified_at_ns, description)
            _write_then_rename(artifact.parent, seal_path(artifact), data, sync=False)
        except OSError as exc:
            log.debug("cannot seal %s: %s", artifact, exc)

    @staticmethod
    def _write_atomic(directory: Path, target: Path, data: bytes | bytearray) -> None:
        for attempt in range(3):
            _private_folder(directory)
            try:
                _write_then_rename(directory, target, data)
                return
            except FileNotFoundError:
                if attempt == 2:
                    raise
                # A concurrent purge removed the folder (or our temp file) meanwhile: start again.

    # -- degrading -------------------------------------------------------------------------------

    def _warn_once(self, subject: Path, message: str) -> None:
        with self._lock:
            if str(subject) in self._warned:
                return
            self._warned.add(str(subject))
        warnings.warn(f"pytest-wasmhost: {message}", CompileCacheWarning, stacklevel=2)

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

    def discard(self, digest: str) -> None:
        """Forget the module of ``digest`` now (a plugin rebuilt in place no longer needs its old one)."""
        with self._cond:
            self._entries.pop(digest, None)

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
