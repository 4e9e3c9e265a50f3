"""Repo-level pytest configuration for pytest-wasmhost's own test suite.

The installed package registers itself through the ``pytest11`` entry point; pytester is enabled in
pyproject's addopts (not with ``pytest_plugins`` here: this conftest is also seen when the conformance
suite inside the package is collected from another rootdir). Here: only the repo paths tests use.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
SAMPLES = REPO / "sample_plugins"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The bundled sample plugins (sources, manifests and committed plugin.wasm files)."""
    return SAMPLES
