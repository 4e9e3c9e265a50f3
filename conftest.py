"""Repo-level pytest configuration for pytest-wasmhost's own test suite.

The installed package registers itself through the ``pytest11`` entry point; pytester is enabled in
pyproject's addopts (not with ``pytest_plugins`` here: this conftest is also seen when the conformance
suite inside the package is collected from another rootdir). Here: only the repo paths tests use.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent
SAMPLES = REPO / "sample_plugins"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The bundled sample plugins (sources, manifests and committed plugin.wasm files)."""
    return SAMPLES


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test of ours may connect beyond this machine: anything but loopback fails the test."""
    real_connect = socket.socket.connect

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0]).split("%")[0]
            try:
                local = ipaddress.ip_address(host).is_loopback
            except ValueError:
                local = host == "localhost"
            if not local:
                raise AssertionError(f"a test tried to connect to {address!r}")
        real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
