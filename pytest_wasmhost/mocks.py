"""Deprecated: the test doubles moved to :mod:`pytest_wasmhost.doubles` (``HttpMock`` to
:mod:`pytest_wasmhost.doubles.http`). This module re-exports them for one release."""

from __future__ import annotations

import warnings
from typing import Any

from pytest_wasmhost.doubles import http as _http

_MOVED = {"HttpMock": _http.HttpMock, "canned_http": _http.canned_http}


def __getattr__(name: str) -> Any:
    # Warns at the importing line (``from pytest_wasmhost.mocks import HttpMock``).
    if name in _MOVED:
        warnings.warn(
            f"pytest_wasmhost.mocks.{name} moved to pytest_wasmhost.doubles.http.{name} (or "
            f"pytest_wasmhost.doubles.{name}); pytest_wasmhost.mocks goes in the next release",
            DeprecationWarning,
            stacklevel=2,
        )
        return _MOVED[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
