"""Plugin sources: a plugin folder, an ``.ndp`` package, or a bare ``.wasm`` with ``manifest.json`` beside it.

Every failure a user can cause is a :class:`ManifestError` carrying the original host's text in
``original`` (``no plugin.wasm found: ...``, ``plugin package missing required manifest.json``, ...).

``.ndp`` packages are read into memory, never extracted, under caps the original lacked (entry count,
10 MiB per file, total size, compression ratio, manifest size). Archives are read as Go's
``archive/zip`` read them (see the comment above :func:`_read_directory`).
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

from pytest_wasmhost.errors import ManifestError
from pytest_wasmhost.gocompat import path as gopath
from pytest_wasmhost.gocompat.oserr import path_error
from pytest_wasmhost.gocompat.strings import to_lower
from pytest_wasmhost.gocompat.utf8 import replace_invalid
from pytest_wasmhost.manifest import (
    MAX_MANIFEST_BYTES,
    LintWarning,
    Manifest,
    lint_manifest,
    parse_manifest,
    read_manifest_bytes,
)

__all__ = [
    "MAX_ENTRIES",
    "MAX_FILE_SIZE",
    "MAX_RATIO",
    "MAX_TOTAL_SIZE",
    "PluginSource",
    "extract_package",
    "load_plugin",
    "load_plugin_dir",
    "resolve_plugin_entry",
]

#: Per-file cap of the original's ``ExtractPackage`` (10 MiB); we also apply it when loading.
MAX_FILE_SIZE = 10 * 1024 * 1024
#: Our caps (the original had none): entries per archive, total uncompressed bytes, deflate ratio.
MAX_ENTRIES = 1000
MAX_TOTAL_SIZE = 64 * 1024 * 1024
MAX_RATIO = 200
_RATIO_FLOOR = 1024 * 1024  # small entries may compress as well as they like

_MANIFEST = "manifest.json"
_WASM = "plugin.wasm"
_CHUNK = 64 * 1024
_GO_ERR_FORMAT = "zip: not a valid zip file"
_GO_ERR_ALGORITHM = "zip: unsupported compression algorithm"
_GO_ERR_CHECKSUM = "zip: checksum error"

Origin = Literal["folder", "ndp", "wasm"]


@dataclass(frozen=True)
class PluginSource:
    """A plugin ready to compile: its ID, manifest and wasm bytes, plus where they came from."""

    plugin_id: str
    manifest: Manifest
    wasm_bytes: bytes = field(repr=False)
    wasm_path: Path | None
    origin: Origin
    docs: tuple[str, ...] = ()
    lint: tuple[LintWarning, ...] = ()


# --------------------------------------------------------------------------------------------------
# load_plugin
# --------------------------------------------------------------------------------------------------


def load_plugin(path: str | os.PathLike[str], *, plugin_id: str | None = None) -> PluginSource:
    """Load a plugin folder (ID = folder or link name), an ``.ndp`` (ID = manifest name, as
    ``plugin install``) or a ``.wasm`` with ``manifest.json`` beside it (ID = parent folder name for
    ``plugin.wasm``, else the file stem). ``plugin_id`` overrides the ID."""
    where = os.fspath(path)
    if plugin_id is not None:
        _check_id(plugin_id, where, explicit=True)
    if not os.path.lexists(where):
        raise _not_found(where, plugin_id)
    if where.endswith(".ndp") and not os.path.isdir(where):
        return _load_ndp(where, plugin_id)
    if where.endswith(".wasm") and not os.path.isdir(where):
        return _load_wasm(where, plugin_id)
    if os.path.isdir(where) or os.path.islink(where):
        return _load_folder(where, plugin_id)
    raise ManifestError(
        "not a plugin: expected a plugin folder, an .ndp package or a .wasm file",
        path=where,
        rule="unsupported",
        original=f"not a valid plugin package: {where} (expected .ndp extension)",
        plugin_id=plugin_id,
        fix="Point at the plugin's folder (manifest.json + plugin.wasm), its .ndp, or its .wasm file.",
    )


def _not_found(where: str, plugin_id: str | None) -> ManifestError:
    return ManifestError(
        "no such file or directory",
        path=where,
        rule="not-found",
        original=f"plugin package not found: {where}" if where.endswith(".ndp") else None,
        plugin_id=plugin_id,
        fix="Check the path (relative paths are resolved from the current directory).",
    )


def _load_folder(where: str, plugin_id: str | None) -> PluginSource:
    entry = gopath.clean(where)
    pid = plugin_id if plugin_id is not None else _folder_id(entry)
    _check_id(pid, entry, explicit=False)
    plugin_dir, _ = resolve_plugin_entry(entry, plugin_id=pid)
    wasm_path, manifest, manifest_bytes = load_plugin_dir(plugin_dir, plugin_id=pid)
    return PluginSource(
        plugin_id=pid,
        manifest=manifest,
        wasm_bytes=_read_wasm(wasm_path, pid),
        wasm_path=Path(wasm_path),
        origin="folder",
        docs=_folder_docs(plugin_dir),
        lint=(*lint_manifest(manifest_bytes), *_id_lint(pid)),
    )


def _folder_id(entry: str) -> str:
    name = os.path.basename(entry)
    if name in ("", ".", ".."):
        name = os.path.basename(os.path.abspath(entry))
    return name


def _folder_docs(plugin_dir: str) -> tuple[str, ...]:
    try:
        names = sorted(os.listdir(plugin_dir), key=os.fsencode)
    except OSError:
        return ()
    return tuple(
        name
        for name in names
        if name not in (_MANIFEST, _WASM) and os.path.isfile(os.path.join(plugin_dir, name))
    )


def _load_wasm(where: str, plugin_id: str | None) -> PluginSource:
    parent = gopath.clean(os.path.dirname(where) or ".")
    if plugin_id is not None:
        pid = plugin_id
    elif os.path.basename(where) == _WASM:
        pid = os.path.basename(os.path.abspath(parent))
    else:
        pid = os.path.basename(where)[: -len(".wasm")]
    _check_id(pid, where, explicit=False)
    manifest, manifest_bytes = _load_dir_manifest(parent, pid)
    return PluginSource(
        plugin_id=pid,
        manifest=manifest,
        wasm_bytes=_read_wasm(where, pid),
        wasm_path=Path(where),
        origin="wasm",
        lint=(*lint_manifest(manifest_bytes), *_id_lint(pid)),
    )


def _read_wasm(wasm_path: str, plugin_id: str) -> bytes:
    try:
        with open(wasm_path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise ManifestError(
            f"cannot read the wasm module: {path_error('open', wasm_path, exc)}",
            path=wasm_path,
            rule="io",
            plugin_id=plugin_id,
            fix="Make plugin.wasm a readable regular file.",
        ) from None


def _check_id(pid: str, where: str, *, explicit: bool) -> None:
    """IDs the original could never discover: empty, hidden, or not a single path segment."""
    problem = None
    if not pid:
        problem = "the plugin ID is empty"
    elif pid.startswith("."):
        problem = f"the plugin ID {pid!r} starts with '.', and the host skips hidden entries"
    elif "/" in pid or "\x00" in pid:
        problem = f"the plugin ID {pid!r} is not a single folder name"
    if problem is None:
        return
    source = "the plugin_id argument" if explicit else "the folder/file name or the manifest's name"
    raise ManifestError(
        problem,
        path=where,
        rule="plugin-id",
        plugin_id=pid or None,
        fix=f"Change {source}: the ID is a folder name under the plugins folder.",
    )


def _id_lint(pid: str) -> tuple[LintWarning, ...]:
    if ":" not in pid:
        return ()
    return (
        LintWarning(
            "$",
            f"the plugin ID {pid!r} contains ':'; the original host keys WebSocket connections as "
            "'<id>:<connectionId>' and splits at the first ':', so its WebSocket callbacks never arrive",
        ),
    )


# --------------------------------------------------------------------------------------------------
# Folder steps shared with discovery (spec manifest.md §5, steps 2-7)
# --------------------------------------------------------------------------------------------------


def resolve_plugin_entry(entry: str, *, plugin_id: str | None = None) -> tuple[str, bool]:
    """Discovery steps 2-4 for one entry: ``(plugin directory, is_symlink)``.

    A symlink is read one level; a relative target is resolved against the entry's folder.
    """
    try:
        info = os.lstat(entry)
    except OSError as exc:
        raise _entry_error(
            f"failed to stat entry {entry}: {path_error('lstat', entry, exc)}", entry, plugin_id, "io"
        ) from None
    if not stat.S_ISLNK(info.st_mode):
        if not stat.S_ISDIR(info.st_mode):
            raise _entry_error(f"not a directory: {entry}", entry, plugin_id, "not-a-directory")
        return entry, False
    try:
        target = os.readlink(entry)
    except OSError as exc:
        raise _entry_error(
            f"failed to resolve symlink {entry}: {path_error('readlink', entry, exc)}", entry, plugin_id
        ) from None
    if not os.path.isabs(target):
        target = gopath.join(os.path.dirname(entry), target)
    try:
        target_info = os.stat(target)
    except OSError as exc:
        raise _entry_error(
            f"failed to stat symlink target {target}: {path_error('stat', target, exc)}", entry, plugin_id
        ) from None
    if not stat.S_ISDIR(target_info.st_mode):
        raise _entry_error(f"symlink target is not a directory: {target}", entry, plugin_id)
    return target, True


def _entry_error(original: str, entry: str, plugin_id: str | None, rule: str = "symlink") -> ManifestError:
    fixes = {
        "symlink": "Point the symlink at an existing plugin folder (or replace it with the folder).",
        "io": "Check that the plugins folder entry exists and is readable.",
        "not-a-directory": "A plugin is a folder holding manifest.json and plugin.wasm.",
    }
    return ManifestError(
        original, path=entry, rule=rule, original=original, plugin_id=plugin_id, fix=fixes[rule]
    )


def load_plugin_dir(plugin_dir: str, *, plugin_id: str | None = None) -> tuple[str, Manifest, bytes]:
    """Discovery steps 5-7: ``(wasm path, manifest, manifest bytes)``."""
    wasm_path = gopath.join(plugin_dir, _WASM)
    try:
        os.stat(wasm_path)
    except OSError as exc:
        original = f"no plugin.wasm found: {path_error('stat', wasm_path, exc)}"
        raise ManifestError(
            "the plugin folder has no plugin.wasm",
            path=wasm_path,
            rule="missing-wasm",
            original=original,
            plugin_id=plugin_id,
            fix="Build the plugin into plugin.wasm (exactly that name) inside the plugin folder.",
        ) from None
    manifest, data = _load_dir_manifest(plugin_dir, plugin_id)
    return wasm_path, manifest, data


def _load_dir_manifest(plugin_dir: str, plugin_id: str | None) -> tuple[Manifest, bytes]:
    """``LoadManifest`` + the capability check, with discovery's ``failed to load manifest:`` prefix."""
    file = gopath.join(plugin_dir, _MANIFEST)
    try:
        data = read_manifest_bytes(file, plugin_id=plugin_id)
        manifest = parse_manifest(data, path=file, plugin_id=plugin_id)
    except ManifestError as exc:
        raise _prefixed(exc, "failed to load manifest: ") from None
    if not manifest.capabilities:
        raise _no_capabilities(file, plugin_id)
    return manifest, data


def _prefixed(exc: ManifestError, prefix: str) -> ManifestError:
    return ManifestError(
        exc.problem,
        path=exc.path,
        json_path=exc.json_path,
        rule=exc.rule,
        original=prefix + exc.original if exc.original is not None else None,
        plugin_id=exc.plugin_id,
        fix=exc.fix,
    )


def _no_capabilities(where: str, plugin_id: str | None) -> ManifestError:
    return ManifestError(
        "the manifest declares no capabilities",
        path=where,
        json_path="$.capabilities",
        rule="no-capabilities",
        original="no capabilities found in manifest",
        plugin_id=plugin_id,
        fix='List what the plugin implements in "capabilities", e.g. ["MetadataAgent"].',
    )


# --------------------------------------------------------------------------------------------------
# .ndp packages
# --------------------------------------------------------------------------------------------------


@dataclass
class _Budget:
    """Uncompressed bytes read so far from one archive."""

    total: int = 0


def _load_ndp(where: str, plugin_id: str | None) -> PluginSource:
    files: dict[str, bytes] = {}
    manifest_bytes: bytes | None = None
    wasm_bytes: bytes | None = None
    with _open_package(where, plugin_id) as (fp, entries):
        budget = _Budget()
        for entry in entries:
            if entry.is_dir:
                continue
            content = _read_entry(fp, entry, budget, where, plugin_id)
            lowered = to_lower(entry.name)
            if lowered == _MANIFEST:
                manifest_bytes = content
            elif lowered == _WASM:
                wasm_bytes = content
            else:
                files[entry.name] = content
        if manifest_bytes is None:
            raise _missing(where, _MANIFEST, plugin_id)
        if wasm_bytes is None:
            raise _missing(where, _WASM, plugin_id)
        manifest = parse_manifest(manifest_bytes, path=f"{where}!{_MANIFEST}", plugin_id=plugin_id)
        for entry in entries:
            if not entry.is_dir:
                _check_entry_name(entry.name, None, where, plugin_id)
    pid = plugin_id if plugin_id is not None else manifest.name
    _check_id(pid, where, explicit=plugin_id is not None)
    if not manifest.capabilities:
        raise _no_capabilities(f"{where}!{_MANIFEST}", pid)
    return PluginSource(
        plugin_id=pid,
        manifest=manifest,
        wasm_bytes=wasm_bytes,
        wasm_path=None,
        origin="ndp",
        docs=tuple(files),
        lint=(*lint_manifest(manifest_bytes), *_id_lint(pid)),
    )


def _missing(where: str, name: str, plugin_id: str | None) -> ManifestError:
    return ManifestError(
        f"the package has no {name} at its root",
        path=where,
        rule="missing-manifest" if name == _MANIFEST else "missing-wasm",
        original=f"plugin package missing required {name}",
        plugin_id=plugin_id,
        fix=f"Zip {name} at the archive's root (no enclosing folder).",
    )


def extract_package(ndp: str | os.PathLike[str], target_dir: str | os.PathLike[str]) -> None:
    """``ExtractPackage``: unpack an ``.ndp`` (dirs 0700, files 0600), rejecting what it rejected.

    Unlike the original, an entry over 10 MiB is rejected instead of silently truncated, the other
    caps of :func:`load_plugin` apply, and a symbolic link already in the target folder (where an
    entry's file or folder goes) is refused instead of written through.
    """
    where, target = os.fspath(ndp), os.fspath(target_dir)
    with _open_package(where, None) as (fp, entries):
        _make_dirs(target, "error creating plugin directory", where)
        budget = _Budget()
        for entry in entries:
            if entry.is_dir:
                continue
            dest = _check_entry_name(entry.name, target, where, None)
            # the original's copy errors read "error writing extracted file" (and it mislabelled a
            # truncated entry as "size exceeds limit"; we keep the real cause)
            content = _read_entry(fp, entry, budget, where, None, read_prefix="error writing extracted file")
            _write_entry(target, dest, content, where)


def _check_entry_name(name: str, target: str | None, where: str, plugin_id: str | None) -> str:
    """ExtractPackage's path rules: no ``..`` anywhere, not absolute, and inside the target."""
    base = os.path.abspath(target if target is not None else "/nonexistent-target")
    dest = gopath.join(base, name)
    inside = dest == base or dest.startswith(base.rstrip("/") + "/")
    if ".." in name or name.startswith("/") or not inside:
        raise ManifestError(
            f"the archive entry {name!r} would be written outside the plugin folder",
            path=where,
            rule="zip-path",
            original=f"illegal file path in plugin package: {name}",
            plugin_id=plugin_id,
            fix="Rebuild the package with relative entry names (no '..', no leading '/').",
        )
    return dest


def _make_dirs(path: str, prefix: str, where: str) -> None:
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise _io_error(f"{prefix}: {path_error('mkdir', path, exc)}", where) from None


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
# Opening each folder relative to its parent leaves no window between the link check and the write.
_AT_CALLS = all(call in os.supports_dir_fd for call in (os.open, os.mkdir, os.stat, os.unlink))


def _write_entry(target: str, dest: str, content: bytes, where: str) -> None:
    """Write one extracted file at ``dest`` (inside ``target``) without following any link in the way.

    The original followed a symlink already in the extraction folder (``plugin.wasm -> ~/.bashrc``, or
    a folder linked elsewhere) and wrote through it. Here every folder below ``target`` is opened
    with ``O_NOFOLLOW`` and the file is created with ``O_EXCL | O_NOFOLLOW``: a link is refused. A
    regular file of the same name is removed first (not truncated: a hard link's other name keeps
    its content).
    """
    base = os.path.abspath(target)
    parts = os.path.relpath(dest, base).split(os.sep)
    if not _AT_CALLS:
        _write_entry_by_path(base, parts, content, where)
        return
    try:
        fd = os.open(base, os.O_RDONLY | _DIRECTORY)
    except OSError as exc:
        raise _io_error(f"error creating extracted file: {path_error('open', base, exc)}", where) from None
    try:
        path = base
        for name in parts[:-1]:
            path = os.path.join(path, name)
            child = _enter_dir(fd, name, path, where)
            os.close(fd)
            fd = child
        _create_file(fd, parts[-1], os.path.join(path, parts[-1]), content, where)
    finally:
        os.close(fd)


def _enter_dir(parent: int, name: str, path: str, where: str) -> int:
    """The folder ``name`` in ``parent``, created 0700 when missing, opened; never through a link."""
    problem = "error creating directory structure"
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent)
        if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            raise _link_error(path, where)
        fd = os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        raise _io_error(f"{problem}: {path_error('mkdir', path, exc)}", where) from None
    try:
        os.fchmod(fd, 0o700)
    except OSError as exc:
        os.close(fd)
        raise _io_error(f"{problem}: {path_error('chmod', path, exc)}", where) from None
    return fd


def _create_file(parent: int, name: str, path: str, content: bytes, where: str) -> None:
    try:
        with contextlib.suppress(FileNotFoundError):
            mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode
            if stat.S_ISLNK(mode):
                raise _link_error(path, where)
            if stat.S_ISREG(mode):
                os.unlink(name, dir_fd=parent)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=parent)
    except OSError as exc:
        raise _io_error(f"error creating extracted file: {path_error('open', path, exc)}", where) from None
    _fill(fd, path, content, where)


def _write_entry_by_path(base: str, parts: list[str], content: bytes, where: str) -> None:
    """:func:`_write_entry` where the platform has no ``*at`` calls: the same checks, by path."""
    path = base
    for name in parts[:-1]:
        path = os.path.join(path, name)
        if os.path.islink(path):
            raise _link_error(path, where)
        _make_dirs(path, "error creating directory structure", where)
    path = os.path.join(path, parts[-1])
    try:
        if os.path.islink(path):
            raise _link_error(path, where)
        if os.path.isfile(path):
            os.unlink(path)
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | getattr(os, "O_BINARY", 0), 0o600
        )
    except OSError as exc:
        raise _io_error(f"error creating extracted file: {path_error('open', path, exc)}", where) from None
    _fill(fd, path, content, where)


def _fill(fd: int, path: str, content: bytes, where: str) -> None:
    """Write ``content`` to the new file ``fd`` (closed here) and make it 0600."""
    with os.fdopen(fd, "wb") as fh:
        try:
            fh.write(content)
            fh.flush()
        except OSError as exc:
            raise _io_error(
                f"error writing extracted file: {path_error('write', path, exc)}", where
            ) from None
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), 0o600)
            else:
                os.chmod(path, 0o600)
        except OSError as exc:
            original = f"error setting permissions on extracted file: {path_error('chmod', path, exc)}"
            raise _io_error(original, where) from None


def _link_error(path: str, where: str) -> ManifestError:
    return ManifestError(
        f"the extraction folder already holds a symbolic link at {path}; extracting would write "
        "through it, outside the plugin folder",
        path=where,
        rule="zip-link",
        fix=f"Remove {path} (or extract into a new, empty folder).",
    )


def _io_error(original: str, where: str) -> ManifestError:
    return ManifestError(
        original,
        path=where,
        rule="io",
        original=original,
        fix="Check that the target folder is writable and the disk has room.",
    )


# The archive is read by hand, following Go's archive/zip, rather than with zipfile: zipfile accepts
# archives Go rejected (a central directory whose record count is wrong), rejects some Go accepted
# (names flagged UTF-8 that are not), finds the directory by other rules, silently stops reading an
# entry at its declared size and checks CRCs Go skipped. Go's texts are kept for every failure.

_EOCD_SIG = b"PK\x05\x06"
_EOCD64_LOC_SIG = b"PK\x06\x07"
_EOCD64_SIG = b"PK\x06\x06"
_CENTRAL_SIG = b"PK\x01\x02"
_LOCAL_SIG = b"PK\x03\x04"
_DESCRIPTOR_SIG = b"PK\x07\x08"
_STORED, _DEFLATED = 0, 8


class _ZipFailure(Exception):
    """A Go archive/zip error text (``zip: not a valid zip file``, ``EOF``, ...)."""


class _Truncated(_ZipFailure):
    """io.ReadFull read nothing (Go's io.EOF)."""


class _Partial(_ZipFailure):
    """io.ReadFull read part of what it needed (Go's io.ErrUnexpectedEOF)."""


@dataclass(frozen=True)
class _Entry:
    name: str  # as Go saw it: the raw bytes, invalid UTF-8 shown as U+FFFD
    raw_name: bytes
    creator_version: int
    flags: int
    method: int
    crc: int
    compressed_size: int
    size: int
    external_attrs: int
    header_offset: int

    @property
    def is_dir(self) -> bool:
        """Go's ``FileHeader.Mode().IsDir()``: a trailing slash or the creator's directory bit."""
        if self.raw_name.endswith(b"/"):
            return True
        creator = self.creator_version >> 8
        if creator in (3, 19):  # Unix, macOS: st_mode in the high 16 bits
            return (self.external_attrs >> 16) & 0xF000 == 0x4000
        if creator in (0, 11, 14):  # FAT, NTFS, VFAT: the MS-DOS directory attribute
            return bool(self.external_attrs & 0x10)
        return False


def _read_at(fp: BinaryIO, where: str, offset: int, size: int) -> bytes:
    """``os.File.ReadAt``: a short read is Go's io.EOF, a negative offset its own error."""
    if offset < 0:
        raise _ZipFailure(f"readat {where}: negative offset")
    fp.seek(offset)
    data = fp.read(size)
    if len(data) < size:
        raise _ZipFailure("EOF")
    return data


class _Section:
    """A bounded reader with ``io.ReadFull`` semantics."""

    def __init__(self, fp: BinaryIO, start: int, end: int) -> None:
        self.fp, self.pos, self.end = fp, start, end

    def read_full(self, size: int) -> bytes:
        if size == 0:
            return b""
        available = max(0, min(size, self.end - self.pos))
        data = b""
        if available:
            self.fp.seek(self.pos)
            data = self.fp.read(available)
        self.pos += len(data)
        if not data:
            raise _Truncated("EOF")
        if len(data) < size:
            raise _Partial("unexpected EOF")
        return data


def _find_eocd(block: bytes) -> int:
    for i in range(len(block) - 22, -1, -1):
        if block[i : i + 4] == _EOCD_SIG:
            comment_len = int.from_bytes(block[i + 20 : i + 22], "little")
            return i if comment_len + 22 + i <= len(block) else -1
    return -1


def _directory_end(fp: BinaryIO, where: str, size: int) -> tuple[int, int, int]:
    """Go's ``readDirectoryEnd``: (record count, directory offset, base offset)."""
    block, end_offset = b"", 0
    for attempt, length in enumerate((1024, 65 * 1024)):
        length = min(length, size)
        fp.seek(size - length)
        block = fp.read(length)
        found = _find_eocd(block)
        if found >= 0:
            block, end_offset = block[found:], size - length + found
            break
        if attempt == 1 or length == size:
            raise _ZipFailure(_GO_ERR_FORMAT)
    records, dir_size, dir_offset = struct.unpack_from("<2xHII", block, 8)
    if records == 0xFFFF or dir_size == 0xFFFF or dir_offset == 0xFFFFFFFF:
        located = _find_eocd64(fp, where, end_offset)
        if located >= 0:
            end_offset = located
            records, dir_size, dir_offset = _read_eocd64(fp, where, located)
    if dir_size >= 1 << 63 or dir_offset >= 1 << 63:
        raise _ZipFailure(_GO_ERR_FORMAT)
    base = end_offset - dir_size - dir_offset
    if not 0 <= base + dir_offset < size:
        raise _ZipFailure(_GO_ERR_FORMAT)
    if base > 0:
        # Go trusts a zero base offset when a directory header sits at the stated offset.
        try:
            _directory_header(_Section(fp, dir_offset, size), 0)
            base = 0
        except _ZipFailure:
            pass
    return records, dir_offset, base


def _find_eocd64(fp: BinaryIO, where: str, end_offset: int) -> int:
    offset = end_offset - 20
    if offset < 0:
        return -1
    locator = _read_at(fp, where, offset, 20)
    if locator[:4] != _EOCD64_LOC_SIG:
        return -1
    disk, position, disks = struct.unpack_from("<IQI", locator, 4)
    if disk != 0 or disks != 1:
        return -1
    return position - (1 << 64) if position >= 1 << 63 else int(position)


def _read_eocd64(fp: BinaryIO, where: str, offset: int) -> tuple[int, int, int]:
    record = _read_at(fp, where, offset, 56)
    if record[:4] != _EOCD64_SIG:
        raise _ZipFailure(_GO_ERR_FORMAT)
    records, dir_size, dir_offset = struct.unpack_from("<QQQ", record, 32)
    return int(records), int(dir_size), int(dir_offset)


def _directory_header(section: _Section, base: int) -> _Entry:
    """Go's ``readDirectoryHeader`` (zip64 extra included)."""
    header = section.read_full(46)
    if header[:4] != _CENTRAL_SIG:
        raise _ZipFailure(_GO_ERR_FORMAT)
    (creator, flags, method, crc, csize, usize, name_len, extra_len, comment_len, attrs, offset) = (
        struct.unpack_from("<H2xHH4xIIIHHH4xII", header, 4)
    )
    tail = section.read_full(name_len + extra_len + comment_len)
    raw_name, extra = tail[:name_len], tail[name_len : name_len + extra_len]
    need = {"usize": usize == 0xFFFFFFFF, "csize": csize == 0xFFFFFFFF, "offset": offset == 0xFFFFFFFF}
    values = {"usize": usize, "csize": csize, "offset": offset}
    while len(extra) >= 4:
        tag, field_size = struct.unpack_from("<HH", extra)
        extra = extra[4:]
        if len(extra) < field_size:
            break
        field_data, extra = extra[:field_size], extra[field_size:]
        if tag == 0x0001:
            for key in ("usize", "csize", "offset"):
                if need[key]:
                    need[key] = False
                    if len(field_data) < 8:
                        raise _ZipFailure(_GO_ERR_FORMAT)
                    values[key], field_data = int.from_bytes(field_data[:8], "little"), field_data[8:]
    if need["csize"] or need["offset"]:
        raise _ZipFailure(_GO_ERR_FORMAT)
    header_offset = values["offset"]
    if header_offset >= 1 << 63:
        header_offset -= 1 << 64  # Go converts to int64
    return _Entry(
        name=replace_invalid(raw_name),
        raw_name=raw_name,
        creator_version=creator,
        flags=flags,
        method=method,
        crc=crc,
        compressed_size=values["csize"],
        size=values["usize"],
        external_attrs=attrs,
        header_offset=header_offset + base,
    )


def _read_directory(fp: BinaryIO, where: str) -> list[_Entry]:
    """Go's ``zip.Reader.init``: read headers until a bad one; the count must match (mod 65536)."""
    size = fp.seek(0, os.SEEK_END)
    records, dir_offset, base = _directory_end(fp, where, size)
    section = _Section(fp, base + dir_offset, size)
    entries: list[_Entry] = []
    stop: _ZipFailure
    while True:
        try:
            entries.append(_directory_header(section, base))
        except (_Partial, _Truncated) as exc:
            if isinstance(exc, _Truncated):
                raise  # io.EOF is not one of the two errors Go tolerates here
            stop = exc
            break
        except _ZipFailure as exc:
            if str(exc) != _GO_ERR_FORMAT:
                raise
            stop = exc
            break
        if len(entries) > MAX_ENTRIES:
            raise _TooManyEntries(len(entries))
    if len(entries) % 0x10000 != records % 0x10000:
        raise stop
    return entries


class _TooManyEntries(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.count = count


@contextlib.contextmanager
def _open_package(where: str, plugin_id: str | None) -> Iterator[tuple[BinaryIO, list[_Entry]]]:
    """Open an archive: yields the open file and its entries."""
    try:
        fp = open(where, "rb")  # noqa: SIM115 - closed by the with below
    except OSError as exc:
        raise _zip_open_error(where, path_error("open", where, exc), plugin_id) from None
    with fp:
        try:
            entries = _read_directory(fp, where)
        except _ZipFailure as exc:
            raise _zip_open_error(where, str(exc), plugin_id) from None
        except OSError as exc:
            raise _zip_open_error(where, path_error("read", where, exc), plugin_id) from None
        except _TooManyEntries as exc:
            raise ManifestError(
                f"the package has more than {MAX_ENTRIES} entries ({exc.count} read so far)",
                path=where,
                rule="max-entries",
                plugin_id=plugin_id,
                fix="A plugin package holds manifest.json, plugin.wasm and a few docs.",
            ) from None
        yield fp, entries


def _zip_open_error(where: str, detail: str, plugin_id: str | None) -> ManifestError:
    return ManifestError(
        f"cannot open the package as a zip archive ({detail})",
        path=where,
        rule="zip",
        original=f"error opening .ndp file: {detail}",
        plugin_id=plugin_id,
        fix="Build the .ndp with a zip tool (it is a plain zip of manifest.json and plugin.wasm).",
    )


# --------------------------------------------------------------------------------------------------
# Entry data
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reading:
    """Context for the errors of one entry read."""

    entry: _Entry
    where: str
    plugin_id: str | None
    read_prefix: str  # LoadPackage and ExtractPackage word a failed read differently

    def fail(self, detail: str, *, opening: bool = False, rule: str = "zip") -> ManifestError:
        prefix = "error opening file in plugin package" if opening else self.read_prefix
        return ManifestError(
            f"cannot read {self.entry.name!r} from the package ({detail})",
            path=self.where,
            rule=rule,
            original=f"{prefix}: {detail}",
            plugin_id=self.plugin_id,
            fix="Rebuild the package with a standard zip tool (stored or deflate entries).",
        )

    def too_big(self) -> ManifestError:
        name = self.entry.name
        return ManifestError(
            f"{name!r} is larger than {MAX_FILE_SIZE} bytes",
            path=self.where,
            rule="max-size",
            original=f"error extracting file: size exceeds limit ({MAX_FILE_SIZE} bytes) for {name}",
            plugin_id=self.plugin_id,
            fix="Keep every file in the package under 10 MiB (strip debug info from plugin.wasm).",
        )

    def cap(self, problem: str, rule: str, fix: str) -> ManifestError:
        return ManifestError(problem, path=self.where, rule=rule, plugin_id=self.plugin_id, fix=fix)


def _read_entry(
    fp: BinaryIO,
    entry: _Entry,
    budget: _Budget,
    where: str,
    plugin_id: str | None,
    *,
    read_prefix: str = "error reading file in plugin package",
) -> bytes:
    """Read one entry as Go's ``f.Open()`` + ``io.ReadAll`` did, under our caps."""
    ctx = _Reading(entry, where, plugin_id, read_prefix)
    try:
        header = _read_at(fp, where, entry.header_offset, 30)
    except _ZipFailure as exc:
        raise ctx.fail(str(exc), opening=True) from None
    if header[:4] != _LOCAL_SIG:
        raise ctx.fail(_GO_ERR_FORMAT, opening=True)
    if entry.method not in (_STORED, _DEFLATED):
        raise ctx.fail(_GO_ERR_ALGORITHM, opening=True)
    if entry.size > MAX_FILE_SIZE:
        raise ctx.too_big()
    _check_manifest_size(ctx, entry.size)
    _check_total(ctx, budget.total + entry.size)
    name_len, extra_len = struct.unpack_from("<HH", header, 26)
    body = entry.header_offset + 30 + name_len + extra_len
    data = _inflate(fp, body, ctx)
    if len(data) < entry.size:
        raise ctx.fail("unexpected EOF")
    _check_crc(fp, body, data, ctx)
    budget.total += len(data)
    return bytes(data)


def _check_manifest_size(ctx: _Reading, size: int) -> None:
    if to_lower(ctx.entry.name) == _MANIFEST and size > MAX_MANIFEST_BYTES:
        raise ctx.cap(
            f"manifest.json is larger than {MAX_MANIFEST_BYTES} bytes",
            "max-size",
            "Keep manifest.json small: it only declares metadata, capabilities and permissions.",
        )


def _check_total(ctx: _Reading, total: int) -> None:
    if total > MAX_TOTAL_SIZE:
        raise ctx.cap(
            f"the package unpacks to more than {MAX_TOTAL_SIZE} bytes",
            "max-total-size",
            "Ship only manifest.json, plugin.wasm and small docs in the package.",
        )


def _compressed_chunks(fp: BinaryIO, body: int, size: int) -> Iterator[bytes]:
    if body < 0:
        return
    fp.seek(body)
    remaining = size
    while remaining > 0:
        chunk = fp.read(min(_CHUNK, remaining))
        if not chunk:
            return
        remaining -= len(chunk)
        yield chunk


def _inflate(fp: BinaryIO, body: int, ctx: _Reading) -> bytearray:
    """Decompress with bounded output, checking the size while it grows (never trusting the header):
    like Go, more output than declared is an error as soon as it appears."""
    out = bytearray()
    chunks = _compressed_chunks(fp, body, ctx.entry.compressed_size)
    if ctx.entry.method == _STORED:
        for chunk in chunks:
            out += chunk
            _check_growth(out, ctx)
        return out
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    seen = bytearray()  # the compressed bytes fed so far, to place a corruption as Go did
    for chunk in chunks:
        seen += chunk
        data = chunk
        while not inflater.eof:
            try:
                piece = inflater.decompress(data, MAX_FILE_SIZE + 1 - len(out))
            except zlib.error:
                raise ctx.fail(f"flate: corrupt input before offset {_corrupt_offset(seen)}") from None
            out += piece
            _check_growth(out, ctx)
            data = inflater.unconsumed_tail
            if not data and not piece:
                break  # this chunk is used up and no output is pending
        if inflater.eof:
            break
    if not inflater.eof:
        raise ctx.fail("unexpected EOF")
    return out


def _corrupt_offset(data: bytearray) -> int:
    """Go reports how many compressed bytes its decoder had read: the shortest failing prefix."""
    low, high = 1, len(data)
    while low < high:
        middle = (low + high) // 2
        if _inflate_fails(bytes(data[:middle])):
            high = middle
        else:
            low = middle + 1
    return low


def _inflate_fails(prefix: bytes) -> bool:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    data = prefix
    try:
        while data and not inflater.eof:
            inflater.decompress(data, _CHUNK)  # bounded output; only errors matter here
            data = inflater.unconsumed_tail
    except zlib.error:
        return True
    return False


def _check_growth(out: bytearray, ctx: _Reading) -> None:
    if len(out) > ctx.entry.size:
        raise ctx.fail(_GO_ERR_FORMAT)  # Go: more data than the header declared
    if len(out) > MAX_FILE_SIZE:
        raise ctx.too_big()  # unreachable while the declared size is capped; kept as a guard
    if len(out) > _RATIO_FLOOR and len(out) > MAX_RATIO * max(ctx.entry.compressed_size, 1):
        raise ctx.cap(
            f"{ctx.entry.name!r} expands more than {MAX_RATIO}:1 (a zip bomb?)",
            "zip-bomb",
            "Rebuild the package from the real files.",
        )


def _check_crc(fp: BinaryIO, body: int, data: bytearray, ctx: _Reading) -> None:
    """Go compares the CRC-32 with the data descriptor if there is one, else only when non-zero."""
    entry = ctx.entry
    crc = zlib.crc32(data)
    if entry.flags & 0x08:
        section = _Section(fp, body + entry.compressed_size, body + entry.compressed_size + 16)
        try:
            first = section.read_full(4)
            rest = section.read_full(12 if first == _DESCRIPTOR_SIG else 8)
        except _ZipFailure:
            raise ctx.fail("unexpected EOF") from None
        stored = int.from_bytes(rest[:4] if first == _DESCRIPTOR_SIG else first, "little")
        if stored != entry.crc or crc != entry.crc:
            raise ctx.fail(_GO_ERR_CHECKSUM)
    elif entry.crc != 0 and crc != entry.crc:
        raise ctx.fail(_GO_ERR_CHECKSUM)
