"""The doubles package: every test double in one place, behind the interfaces the services depend on."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

import pytest_wasmhost
from pytest_wasmhost import doubles
from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.host.subsonicapi import SubsonicBackend
from pytest_wasmhost.host.websocket import Transport, WebSocketOptions

PACKAGE = Path(pytest_wasmhost.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((PACKAGE / "host").glob("*.py")), ids=lambda p: p.name)
def test_no_service_imports_a_double(path: Path) -> None:
    # Not even lazily or for typing: the services are production code only.
    assert not {name for name in imported_modules(path) if name.startswith("pytest_wasmhost.doubles")}
    assert "pytest_wasmhost.mocks" not in imported_modules(path)


def test_a_production_runtime_loads_no_double() -> None:
    code = (
        "import sys; import pytest_wasmhost, pytest_wasmhost.runtime.manager; "
        "print(sorted(m for m in sys.modules if m.startswith(('pytest_wasmhost.doubles', 'respx'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_doubles_implement_the_service_interfaces() -> None:
    assert isinstance(doubles.FakeSubsonic(), SubsonicBackend)
    assert isinstance(doubles.HttpMock().transport, httpx.BaseTransport)
    transport: Transport = doubles.MemoryTransportFactory()(ManualClock(), WebSocketOptions(idle_timeout=5))
    assert isinstance(transport, doubles.MemoryTransport)
    assert transport.idle_timeout == 5


def test_the_old_mocks_module_re_exports_with_a_warning() -> None:
    from pytest_wasmhost import mocks

    with pytest.warns(DeprecationWarning, match=r"pytest_wasmhost\.mocks\.HttpMock moved to ") as caught:
        moved = mocks.HttpMock
    assert moved is doubles.HttpMock
    assert caught[0].filename == __file__
    with pytest.warns(DeprecationWarning, match="canned_http"):
        assert mocks.canned_http is doubles.canned_http
    with pytest.raises(AttributeError, match="has no attribute 'FakeSubsonic'"):
        mocks.FakeSubsonic  # noqa: B018
