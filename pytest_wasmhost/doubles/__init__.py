"""Test doubles for the host services, each behind the interface its production service depends on.

* :mod:`.http`: :class:`HttpMock` (``wasm_http``), a strict respx router behind ``HttpOptions.transport``;
* :mod:`.websocket`: :class:`MemoryTransport` / :class:`MemoryPeer` (``wasm_websocket``), scripted peers
  behind ``WebSocketOptions.transport``;
* :mod:`.subsonic`: :class:`FakeSubsonic` (``wasm_subsonic``), an in-memory router and user store behind
  ``SubsonicOptions.backend``.

The services never import these; the fixtures, the conformance suite and the CLI wire them in.
"""

from __future__ import annotations

from pytest_wasmhost.doubles.http import HttpMock, canned_http
from pytest_wasmhost.doubles.subsonic import FakeSubsonic, SubsonicReply
from pytest_wasmhost.doubles.websocket import (
    MemoryPeer,
    MemoryTransport,
    MemoryTransportFactory,
    MemoryWebSockets,
)

__all__ = [
    "FakeSubsonic",
    "HttpMock",
    "MemoryPeer",
    "MemoryTransport",
    "MemoryTransportFactory",
    "MemoryWebSockets",
    "SubsonicReply",
    "canned_http",
]
