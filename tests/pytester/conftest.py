"""Shared fixtures of the pytester tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def cache_args(shared_cache_dir: Path) -> list[str]:
    """The inner run's options: the outer run's compile cache (warm after the first compile of each
    sample), and no pytest cache folder in the test's directory."""
    return [f"--wasm-cache-dir={shared_cache_dir}", "-p", "no:cacheprovider"]
