"""The websocket host functions called from real wasm guests, and callbacks into a real plugin's exports.

Host calls go through the linker, dispatch and the guest's malloc exactly as a plugin's would; callbacks
go through a runtime scope into a WAT plugin whose WebSocketCallback exports answer with the request they
were given (so the response proves what the guest received). Only 127.0.0.1 is ever reached.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from google.protobuf.message import Message

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.abi.proto import api_pb2, websocket_pb2
from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.doubles.websocket import MemoryTransport, MemoryTransportFactory, MemoryWebSockets
from pytest_wasmhost.errors import PluginTrap
from pytest_wasmhost.host.base import HostCall, HostEnvironment, ServiceContext
from pytest_wasmhost.host.options import HostOptions, WebSocketOptions
from pytest_wasmhost.host.registry import IMPLEMENTED, bind
from pytest_wasmhost.host.websocket import (
    NANOID_ALPHABET,
    CloseFrame,
    WebSocketService,
    websocket_hub,
)
from pytest_wasmhost.manifest import parse_manifest
from pytest_wasmhost.runtime.engine import shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, compile_module
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings, ScopedRuntime
from tests.support.hostcall import HostHarness, host_caller_wat
from tests.support.plugins import manifest as manifest_dict
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module
from tests.unit.test_host_websocket import WAIT, EchoServer

FUNCTIONS = WebSocketService.function_names
HEADERS = {"X-Test-Header": "test-value"}


def permissions(*urls: str, local: bool = True) -> dict[str, Any]:
    return {"websocket": {"reason": "tests", "allowedUrls": list(urls or ("*",)), "allowLocalNetwork": local}}


class WebSocketHarness(HostHarness):
    """HostHarness for ``env.connect`` & co. The registry does not list the websocket service yet, so the
    binding is built here: same linker, same dispatch, same transcript."""

    def __init__(
        self, env: HostEnvironment, *, permissions: Mapping[str, Any], plugin_id: str = "test_plugin"
    ) -> None:
        self.plugin_id = plugin_id
        self.env = env
        doc = manifest_dict(capabilities=("MetadataAgent",), permissions=permissions)
        manifest = parse_manifest(json.dumps(doc), plugin_id=plugin_id)
        engine = shared_engine()
        module = compile_module(engine, wasmtime.wat2wasm(host_caller_wat(FUNCTIONS)), plugin_id=plugin_id)
        self.linked = LinkedPlugin(
            plugin_id=plugin_id,
            engine=engine,
            module=module,
            granted=manifest.permissions.granted(),
            implemented={**IMPLEMENTED, "websocket": FUNCTIONS},
        )
        context = ServiceContext(plugin_id=plugin_id, manifest=manifest, config=dict, env=env)
        self.services = [WebSocketService.create(context)]
        self.instance = self.linked.instantiate(bind(plugin_id, self.services, env.transcript))

    def connect(self, url: str, connection_id: str = "", headers: Mapping[str, str] | None = None) -> Any:
        request = websocket_pb2.ConnectRequest(
            url=url, connection_id=connection_id, headers=dict(headers or {})
        )
        return self.call("connect", request, websocket_pb2.ConnectResponse)

    def send_text(self, connection_id: str, message: str) -> Any:
        request = websocket_pb2.SendTextRequest(connection_id=connection_id, message=message)
        return self.call("send_text", request, websocket_pb2.SendTextResponse)

    def send_binary(self, connection_id: str, data: bytes) -> Any:
        request = websocket_pb2.SendBinaryRequest(connection_id=connection_id, data=data)
        return self.call("send_binary", request, websocket_pb2.SendBinaryResponse)

    def close_connection(self, connection_id: str, code: int = 1000, reason: str = "") -> Any:
        request = websocket_pb2.CloseRequest(connection_id=connection_id, code=code, reason=reason)
        return self.call("close", request, websocket_pb2.CloseResponse)


def verdicts(calls: list[HostCall]) -> list[tuple[str, str, str]]:
    return [(c.function, c.verdict, c.detail) for c in calls]


MEMORY = HostOptions(websocket=WebSocketOptions(transport=MemoryTransportFactory()))


def peers(env: HostEnvironment) -> MemoryWebSockets:
    return MemoryWebSockets(websocket_hub(env))


@pytest.fixture
def memory_env() -> Iterator[HostEnvironment]:
    env = HostEnvironment(clock=ManualClock(), options=MEMORY)
    yield env
    env.close()


@pytest.fixture
def harness(memory_env: HostEnvironment) -> Iterator[WebSocketHarness]:
    built = WebSocketHarness(memory_env, permissions=permissions("ws://localhost:8080/*"))
    yield built
    built.close()


# -- the four host functions from a guest -----------------------------------------------------------------


def test_connect_send_close_from_the_guest(harness: WebSocketHarness, memory_env: HostEnvironment) -> None:
    response = harness.connect("ws://localhost:8080/feed", "feed", HEADERS)
    assert (response.connection_id, response.error) == ("feed", "")
    peer = peers(memory_env).peer("feed")
    assert peer.headers == HEADERS

    assert harness.send_text("feed", "hello websocket").error == ""
    assert harness.send_binary("feed", b"\x00\xff").error == ""
    assert peer.expect_sent() == "hello websocket"
    assert peer.expect_sent() == b"\x00\xff"

    assert harness.close_connection("feed", 1000, "test complete").error == ""
    assert peer.host_close == CloseFrame(1000, "test complete")
    assert harness.send_text("feed", "too late").error == "connection not found"
    assert harness.close_connection("feed").error == "connection not found"

    assert verdicts(harness.transcript.calls("websocket")) == [
        ("connect", "ok", ""),
        ("send_text", "ok", ""),
        ("send_binary", "ok", ""),
        ("close", "ok", ""),
        ("send_text", "error", "connection not found"),
        ("close", "error", "connection not found"),
    ]


def test_an_empty_id_comes_back_generated(harness: WebSocketHarness, memory_env: HostEnvironment) -> None:
    connection_id = harness.connect("ws://localhost:8080/feed").connection_id
    assert len(connection_id) == 10
    assert set(connection_id) <= set(NANOID_ALPHABET)
    assert f"test_plugin:{connection_id}" in websocket_hub(memory_env)


def test_a_denied_url_is_refused_softly(harness: WebSocketHarness, memory_env: HostEnvironment) -> None:
    response = harness.connect("wss://malicious.com/stream", "c")
    assert response.error == (
        "Connection blocked by plugin permissions: "
        "URL wss://malicious.com/stream does not match any allowed URL patterns"
    )
    assert response.connection_id == ""
    [call] = harness.transcript.calls("websocket", "connect")
    assert (call.verdict, call.rule, call.detail) == (
        "denied",
        "not-in-allowlist: allowedUrls",
        response.error,
    )
    assert len(websocket_hub(memory_env)) == 0


def test_a_local_address_is_refused_without_allow_local_network(memory_env: HostEnvironment) -> None:
    harness = WebSocketHarness(memory_env, permissions=permissions("*", local=False))
    response = harness.connect("ws://127.0.0.1:8080", "c")
    assert response.error == "Connection blocked by plugin permissions: requests to localhost are not allowed"
    assert harness.transcript.calls("websocket", "connect")[-1].rule == "loopback: allowLocalNetwork=false"
    harness.close()


def test_a_handshake_failure_traps_the_export(harness: WebSocketHarness, memory_env: HostEnvironment) -> None:
    transport = websocket_hub(memory_env).transport
    assert isinstance(transport, MemoryTransport)
    transport.refuse()
    with pytest.raises(PluginTrap, match="failed to connect to WebSocket server: websocket: bad handshake"):
        harness.connect("ws://localhost:8080/feed", "c")
    [call] = harness.transcript.calls("websocket", "connect")
    assert (call.verdict, call.detail) == (
        "hard-error",
        "failed to connect to WebSocket server: websocket: bad handshake",
    )


def test_the_guest_against_a_real_server() -> None:
    server = EchoServer(echo=False)
    env = HostEnvironment(clock=ManualClock())
    harness = WebSocketHarness(env, permissions=permissions())
    try:
        assert (
            harness.connect(server.url, "test-connection-id", HEADERS).connection_id == "test-connection-id"
        )
        assert harness.send_text("test-connection-id", "hello websocket").error == ""
        assert server.received.get(timeout=WAIT) == "hello websocket"
        assert harness.close_connection("test-connection-id", 1000, "test complete").error == ""
        assert server.closed.get(timeout=WAIT) == (1000, "test complete")

        with pytest.raises(
            PluginTrap, match="failed to connect to WebSocket server: websocket: bad handshake"
        ):
            harness.connect(server.url, "no-header")
        assert [c.verdict for c in harness.transcript.calls("websocket")] == ["ok", "ok", "ok", "hard-error"]
    finally:
        harness.close()
        env.close()
        server.close()


# -- callbacks into a plugin's WebSocketCallback exports ------------------------------------------------

# Each callback answers with the very bytes it was given: the decoded response (unknown fields kept)
# must then equal the request, which proves what reached the guest.
ECHO = "(i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32)) (i64.extend_i32_u (local.get 1)))"


def load_plugin(scope: ScopedRuntime, root: Path, plugin_id: str, capabilities: tuple[str, ...]) -> None:
    wasm = metadata_module(capabilities=capabilities, result=ECHO)
    folder = write_plugin(
        root, wasm, plugin_id=plugin_id, capabilities=capabilities, permissions=permissions()
    )
    scope.plugin(folder)


@pytest.fixture
def runtime() -> Iterator[Runtime]:
    built = Runtime(RuntimeSettings(disk_cache=False))
    yield built
    built.close()


def callbacks(scope: ScopedRuntime) -> list[HostCall]:
    return [c for c in scope.transcript.calls("websocket") if c.function.startswith("on_")]


def test_events_reach_the_plugins_callback_exports(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.scope(host_options=MEMORY) as scope:
        load_plugin(scope, tmp_path, "ws_echo", ("WebSocketCallback",))
        harness = WebSocketHarness(scope.env, permissions=permissions(), plugin_id="ws_echo")
        harness.connect("ws://localhost:8080/feed", "feed:1")  # a ':' in the id still delivers
        peer = peers(scope.env).peer("feed:1")

        peer.push_text("hello")
        peer.push_binary(b"\x01\x02")
        peer.close(4000, "bye")

        calls = callbacks(scope)
        assert [(c.plugin_id, c.function, c.verdict) for c in calls] == [
            ("ws_echo", "on_text_message", "ok"),
            ("ws_echo", "on_binary_message", "ok"),
            ("ws_echo", "on_close", "ok"),
        ]
        assert calls[0].request == api_pb2.OnTextMessageRequest(connection_id="feed:1", message="hello")
        assert calls[1].request == api_pb2.OnBinaryMessageRequest(connection_id="feed:1", data=b"\x01\x02")
        assert calls[2].request == api_pb2.OnCloseRequest(connection_id="feed:1", code=4000, reason="bye")
        for call in calls:
            assert call.response is not None
            assert call.response.SerializeToString() == call.request.SerializeToString()
        harness.close()


def test_a_read_error_reaches_on_error(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.scope(host_options=MEMORY) as scope:
        load_plugin(scope, tmp_path, "ws_echo", ("WebSocketCallback",))
        harness = WebSocketHarness(scope.env, permissions=permissions(), plugin_id="ws_echo")
        harness.connect("ws://localhost:8080/feed", "feed")
        peers(scope.env).peer("feed").fail()
        [call] = callbacks(scope)
        assert call.function == "on_error"
        assert call.request == api_pb2.OnErrorRequest(
            connection_id="feed", error="websocket: close 1006 (abnormal closure): unexpected EOF"
        )
        assert harness.send_text("feed", "x").error == "connection not found"
        harness.close()


def test_a_plugin_without_the_capability_drops_events(runtime: Runtime, tmp_path: Path) -> None:
    with runtime.scope(host_options=MEMORY) as scope:
        load_plugin(scope, tmp_path, "agent_only", ("MetadataAgent",))
        harness = WebSocketHarness(scope.env, permissions=permissions(), plugin_id="agent_only")
        harness.connect("ws://localhost:8080/feed", "feed")
        peer = peers(scope.env).peer("feed")
        peer.push_text("nobody listens")
        [call] = callbacks(scope)
        assert call.verdict == "error"
        assert "does not declare the WebSocketCallback capability" in call.detail
        assert peer.open  # the original logged and dropped the event; the connection lives on
        harness.close()


def test_a_real_server_reaches_the_plugin_from_the_reader_thread(runtime: Runtime, tmp_path: Path) -> None:
    server = EchoServer()
    delivered = threading.Event()
    try:
        with runtime.scope(host_options=HostOptions()) as scope:
            load_plugin(scope, tmp_path, "ws_echo", ("WebSocketCallback",))
            deliver = scope.env.call_plugin
            assert deliver is not None

            def signalling(plugin_id: str, export: str, request: Message) -> Reply:
                try:
                    reply: Reply = deliver(plugin_id, export, request)
                    return reply
                finally:
                    delivered.set()

            scope.env.call_plugin = signalling
            harness = WebSocketHarness(scope.env, permissions=permissions(), plugin_id="ws_echo")
            harness.connect(server.url, "live", HEADERS)
            assert harness.send_text("live", "ping").error == ""  # the server echoes it back
            assert delivered.wait(WAIT)
            [call] = callbacks(scope)
            assert (call.function, call.verdict) == ("on_text_message", "ok")
            assert call.request == api_pb2.OnTextMessageRequest(connection_id="live", message="ping")
            assert call.response is not None
            assert call.response.SerializeToString() == call.request.SerializeToString()
            harness.close()
        assert server.closed.get(timeout=WAIT) == (1001, "")  # the scope's end closed the socket
    finally:
        server.close()
