"""discovery.py: DiscoverPlugins step for step (manifest.md §5), with the original's error texts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_wasmhost.discovery import DiscoveredPlugin, DiscoveryProblem, discover_plugins
from tests.support.permissions import IGNORES_PERMISSION_BITS, SKIP_REASON

WASM = b"\x00asm\x01\x00\x00\x00"


def manifest(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "lastfm",
        "author": "a",
        "version": "1",
        "description": "d",
        "website": "https://example.com",
        "capabilities": ["MetadataAgent"],
        "permissions": {},
    }
    doc.update(changes)
    return doc


def plugin(parent: Path, name: str, doc: Any = None, *, wasm: bool = True) -> Path:
    path = parent / name
    path.mkdir(parents=True)
    (path / "manifest.json").write_text(json.dumps(manifest() if doc is None else doc))
    if wasm:
        (path / "plugin.wasm").write_bytes(WASM)
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "plugins"
    path.mkdir()
    return path


def by_id(
    results: list[DiscoveredPlugin | DiscoveryProblem],
) -> dict[str, DiscoveredPlugin | DiscoveryProblem]:
    return {r.plugin_id: r for r in results}


def problem(results: list[DiscoveredPlugin | DiscoveryProblem], plugin_id: str) -> DiscoveryProblem:
    found = by_id(results)[plugin_id]
    assert isinstance(found, DiscoveryProblem)
    return found


def test_sorted_hidden_and_files_skipped(root: Path) -> None:
    for name in ("zeta", "alpha", "Beta", ".hidden"):
        plugin(root, name)
    (root / "notes.txt").write_text("not a plugin")
    results = discover_plugins(root)
    assert [r.plugin_id for r in results] == ["Beta", "alpha", "zeta"]  # bytewise order
    first = results[1]
    assert isinstance(first, DiscoveredPlugin)
    assert (first.path, first.wasm_path, first.is_symlink) == (
        root / "alpha",
        root / "alpha/plugin.wasm",
        False,
    )
    assert first.manifest.name == "lastfm"


def test_ids_are_folder_names_even_with_the_same_manifest_name(root: Path) -> None:
    plugin(root, "lastfm-official")
    plugin(root, "lastfm-custom")
    assert [r.plugin_id for r in discover_plugins(root)] == ["lastfm-custom", "lastfm-official"]


def test_symlink_to_a_folder_outside(root: Path, tmp_path: Path) -> None:
    target = plugin(tmp_path / "src", "checkout")
    (root / "dev").symlink_to(target)
    found = by_id(discover_plugins(root))["dev"]
    assert isinstance(found, DiscoveredPlugin)
    assert (found.path, found.wasm_path, found.is_symlink) == (target, target / "plugin.wasm", True)


def test_relative_symlink_is_resolved_against_the_plugins_folder(root: Path, tmp_path: Path) -> None:
    plugin(tmp_path, "src")
    (root / "rel").symlink_to("../src")
    found = by_id(discover_plugins(root))["rel"]
    assert isinstance(found, DiscoveredPlugin)
    assert found.path == Path(f"{tmp_path}/src")


def test_two_links_to_one_target_are_two_plugins(root: Path, tmp_path: Path) -> None:
    target = plugin(tmp_path, "src")
    (root / "a").symlink_to(target)
    (root / "b").symlink_to(target)
    results = discover_plugins(root)
    assert [(r.plugin_id, isinstance(r, DiscoveredPlugin)) for r in results] == [("a", True), ("b", True)]


def test_symlink_is_read_one_level(root: Path, tmp_path: Path) -> None:
    target = plugin(tmp_path, "src")
    (tmp_path / "hop").symlink_to(target)
    (root / "chain").symlink_to(tmp_path / "hop")
    found = by_id(discover_plugins(root))["chain"]
    assert isinstance(found, DiscoveredPlugin)
    assert found.path == tmp_path / "hop"  # the first target, as read by readlink


def test_broken_symlink(root: Path, tmp_path: Path) -> None:
    (root / "gone").symlink_to(tmp_path / "missing")
    found = problem(discover_plugins(root), "gone")
    target = tmp_path / "missing"
    assert (
        found.original == f"failed to stat symlink target {target}: stat {target}: no such file or directory"
    )
    assert found.is_symlink
    assert found.error.rule == "symlink"


def test_symlink_to_a_file(root: Path, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (root / "f").symlink_to(tmp_path / "file")
    assert (
        problem(discover_plugins(root), "f").original == f"symlink target is not a directory: {tmp_path}/file"
    )


def test_hidden_symlink_is_skipped(root: Path, tmp_path: Path) -> None:
    (root / ".dev").symlink_to(plugin(tmp_path, "src"))
    assert discover_plugins(root) == []


def test_missing_wasm(root: Path) -> None:
    plugin(root, "nowasm", wasm=False)
    found = problem(discover_plugins(root), "nowasm")
    assert (
        found.original == f"no plugin.wasm found: stat {root}/nowasm/plugin.wasm: no such file or directory"
    )
    assert (found.path, found.is_symlink) == (root / "nowasm", False)


def test_invalid_manifest(root: Path) -> None:
    plugin(root, "bad", manifest(capabilities=["Lyrics"]))
    found = problem(discover_plugins(root), "bad")
    assert found.original.startswith(
        "failed to load manifest: invalid manifest: invalid value (expected one of "
    )
    assert found.original.endswith(': "Lyrics"')
    assert (found.error.rule, found.error.json_path) == ("enum", "$.capabilities[0]")


def test_missing_manifest(root: Path) -> None:
    path = plugin(root, "nomanifest")
    (path / "manifest.json").unlink()
    found = problem(discover_plugins(root), "nomanifest")
    assert found.original == (
        "failed to load manifest: failed to read manifest file: "
        f"open {path}/manifest.json: no such file or directory"
    )


@pytest.mark.parametrize(
    "doc", [None, manifest(capabilities=None)], ids=["null-document", "null-capabilities"]
)
def test_no_capabilities(root: Path, doc: Any) -> None:
    path = root / "empty"
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps(doc))
    (path / "plugin.wasm").write_bytes(WASM)
    assert problem(discover_plugins(root), "empty").original == "no capabilities found in manifest"


def test_errors_do_not_stop_the_scan(root: Path) -> None:
    plugin(root, "a", wasm=False)
    plugin(root, "b")
    results = discover_plugins(root)
    assert [type(r).__name__ for r in results] == ["DiscoveryProblem", "DiscoveredPlugin"]


def test_root_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    results = discover_plugins(missing)
    assert len(results) == 1
    found = results[0]
    assert isinstance(found, DiscoveryProblem)
    assert found.plugin_id == ""
    assert (
        found.original
        == f"failed to read plugins directory {missing}: open {missing}: no such file or directory"
    )


def test_root_is_a_file(tmp_path: Path) -> None:
    file = tmp_path / "plugins"
    file.write_text("x")
    found = discover_plugins(file)[0]
    assert isinstance(found, DiscoveryProblem)
    assert found.original == f"failed to read plugins directory {file}: readdirent {file}: not a directory"


@pytest.mark.skipif(IGNORES_PERMISSION_BITS, reason=SKIP_REASON)
def test_root_unreadable(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir(mode=0)
    found = discover_plugins(folder)[0]
    assert isinstance(found, DiscoveryProblem)
    assert found.original.endswith(f"open {folder}: permission denied")
