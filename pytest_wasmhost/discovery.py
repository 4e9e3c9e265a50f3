"""Plugin discovery under a plugins folder, step for step as the original's ``DiscoverPlugins``.

Entries are visited in name order (bytewise); hidden entries and plain files are skipped silently; a
symlink is read one level (a relative target is resolved against the plugins folder) and the plugin
keeps the link's name as its ID. Each failing entry becomes a :class:`DiscoveryProblem` carrying the
original's text; the scan goes on. An unreadable root yields a single problem with an empty ID.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from pytest_wasmhost.errors import ManifestError
from pytest_wasmhost.gocompat import path as gopath
from pytest_wasmhost.gocompat.oserr import path_error
from pytest_wasmhost.manifest import Manifest
from pytest_wasmhost.package import load_plugin_dir, resolve_plugin_entry

__all__ = ["DiscoveredPlugin", "DiscoveryProblem", "discover_plugins"]


@dataclass(frozen=True)
class DiscoveredPlugin:
    """A plugin the original would have registered (``Path`` is the resolved directory)."""

    plugin_id: str
    path: Path
    wasm_path: Path
    manifest: Manifest
    is_symlink: bool = False


@dataclass(frozen=True)
class DiscoveryProblem:
    """An entry the original logged and skipped (or, with an empty ID, an unreadable root)."""

    plugin_id: str
    path: Path
    error: ManifestError
    is_symlink: bool = False

    @property
    def original(self) -> str:
        """The original host's error text for this entry."""
        return self.error.original or self.error.problem


def discover_plugins(root: str | os.PathLike[str]) -> list[DiscoveredPlugin | DiscoveryProblem]:
    """Scan ``root`` like ``DiscoverPlugins(root)`` (``spec/manifest.md`` §5)."""
    folder = os.fspath(root)
    try:
        names = _read_dir(folder)
    except OSError as exc:
        return [_root_problem(folder, exc)]
    found: list[DiscoveredPlugin | DiscoveryProblem] = []
    for name in names:
        if name.startswith("."):
            continue
        result = _discover_entry(folder, name)
        if result is not None:
            found.append(result)
    return found


def _read_dir(folder: str) -> list[str]:
    return sorted(os.listdir(folder), key=os.fsencode)


def _root_problem(folder: str, exc: OSError) -> DiscoveryProblem:
    # Go opens the folder first (opening a regular file succeeds) and then lists it.
    op = "readdirent" if os.path.isfile(folder) else "open"
    original = f"failed to read plugins directory {folder}: {path_error(op, folder, exc)}"
    error = ManifestError(
        "cannot read the plugins folder",
        path=folder,
        rule="io",
        original=original,
        fix="Point at an existing, readable folder (no plugin is registered otherwise).",
    )
    return DiscoveryProblem(plugin_id="", path=Path(folder), error=error)


def _discover_entry(folder: str, name: str) -> DiscoveredPlugin | DiscoveryProblem | None:
    entry = gopath.join(folder, name)
    try:
        mode = os.lstat(entry).st_mode
    except OSError:
        mode = None  # resolve_plugin_entry reports it with the original's text
    if mode is not None and not stat.S_ISDIR(mode) and not stat.S_ISLNK(mode):
        return None  # regular files, sockets, ... are skipped silently
    is_link = mode is not None and stat.S_ISLNK(mode)
    try:
        plugin_dir, is_symlink = resolve_plugin_entry(entry, plugin_id=name)
    except ManifestError as exc:
        return DiscoveryProblem(plugin_id=name, path=Path(entry), error=exc, is_symlink=is_link)
    try:
        wasm_path, manifest, _ = load_plugin_dir(plugin_dir, plugin_id=name)
    except ManifestError as exc:
        return DiscoveryProblem(plugin_id=name, path=Path(plugin_dir), error=exc)
    return DiscoveredPlugin(
        plugin_id=name,
        path=Path(plugin_dir),
        wasm_path=Path(wasm_path),
        manifest=manifest,
        is_symlink=is_symlink,
    )
