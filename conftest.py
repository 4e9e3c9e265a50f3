"""Repo-level pytest configuration for pytest-wasmhost's own test suite.

The installed package registers itself through the ``pytest11`` entry point; here we only add
pytester (for testing options, fixtures and markers in isolated runs) and the repo paths tests use.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent
SAMPLES = REPO / "sample_plugins"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The bundled sample plugins (sources, manifests and committed plugin.wasm files)."""
    return SAMPLES
