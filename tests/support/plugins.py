"""Build plugin folders on disk for tests: a manifest the original accepts plus the given wasm."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def manifest(
    *,
    name: str = "test_plugin",
    capabilities: Sequence[str] = ("MetadataAgent",),
    permissions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "author": "pytest-wasmhost tests",
        "version": "1.0.0",
        "description": "a plugin built by a test",
        "website": "https://example.com",
        "capabilities": list(capabilities),
        "permissions": dict(permissions or {}),
    }


def write_plugin(root: Path, wasm: bytes, *, plugin_id: str = "test_plugin", **manifest_fields: Any) -> Path:
    folder = root / plugin_id
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(manifest(**manifest_fields)))
    (folder / "plugin.wasm").write_bytes(wasm)
    return folder
