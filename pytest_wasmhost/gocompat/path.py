"""path and path/filepath (Unix): ``Clean``, ``Join``, ``Base``."""

from __future__ import annotations

import posixpath

__all__ = ["base", "clean", "join"]


def clean(path: str) -> str:
    """``path.Clean`` / ``filepath.Clean`` (``posixpath.normpath`` keeps a leading ``//``, Go does not)."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def join(*parts: str) -> str:
    """``path.Join`` / ``filepath.Join``: join the non-empty parts and clean; ``""`` when all are empty."""
    kept = [p for p in parts if p]
    return clean("/".join(kept)) if kept else ""


def base(path: str) -> str:
    """``path.Base``: the last element; ``.`` for an empty path, ``/`` for a path of slashes."""
    if not path:
        return "."
    stripped = path.rstrip("/")
    if not stripped:
        return "/"
    return stripped.rpartition("/")[2]
