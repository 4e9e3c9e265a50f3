"""Repo-level pytest configuration for pytest-wasmhost's own test suite.

The installed package registers itself through the ``pytest11`` entry point; pytester is enabled in
pyproject's addopts (not with ``pytest_plugins`` here: this conftest is also seen when the conformance
suite inside the package is collected from another rootdir). Here: the repo paths tests use, one
compile cache for the whole run, and the sample coverage gate.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent
SAMPLES = REPO / "sample_plugins"


CACHE_ENV = "WASMHOST_CACHE_DIR"
NO_BYTECODE_ENV, PYCACHE_ENV = "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX"
_RUN_CACHE = pytest.StashKey[Path]()
_NO_BYTECODE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    if config.rootpath != REPO:
        return  # a run of the packaged conformance suite (wasmhost check), or a pytester run
    # One compile cache for the run, shared by the xdist workers (they inherit the environment and the
    # disk cache is safe across processes): each sample compiles cold once per run, not once per test
    # or worker, and not at all in the next run when pytest's cache folder keeps it (artifacts are
    # authenticated, so a kept one is safe to reuse). Tests of the cache itself use folders of their
    # own. A folder the caller set is kept as it is.
    if not hasattr(config, "workerinput") and CACHE_ENV not in os.environ:
        folder = Path(tempfile.mkdtemp(prefix="wasmhost-test-run-"))
        config.stash[_RUN_CACHE] = folder
        kept = config.cache.mkdir("wasmhost-compile-cache") if getattr(config, "cache", None) else None
        os.environ[CACHE_ENV] = str(kept if kept is not None else folder / "compile-cache")
        if os.environ.get(NO_BYTECODE_ENV):
            # Without bytecode every worker and child pytest (a third of the suite starts one) compiles
            # every module it imports again. Keep the caller's tree free of bytecode as they asked, but
            # let this run's processes share it in the run's own folder, removed with it.
            config.stash[_NO_BYTECODE] = os.environ.pop(NO_BYTECODE_ENV)
            os.environ[PYCACHE_ENV] = sys.pycache_prefix = str(folder / "pycache")
            sys.dont_write_bytecode = False
    from tests.support.sample_coverage import SampleCoverageGate

    config.pluginmanager.register(SampleCoverageGate(config), "sample-coverage-gate")


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = config.stash.get(_RUN_CACHE, None)
    if folder is not None:
        os.environ.pop(CACHE_ENV, None)
        if _NO_BYTECODE in config.stash:
            os.environ[NO_BYTECODE_ENV] = config.stash[_NO_BYTECODE]
            os.environ.pop(PYCACHE_ENV, None)
            sys.pycache_prefix, sys.dont_write_bytecode = None, True
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_cache_dir() -> Path:
    """The run's compile cache folder, for tests (and their child processes) that only need warm compiles."""
    return Path(os.environ[CACHE_ENV])


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
