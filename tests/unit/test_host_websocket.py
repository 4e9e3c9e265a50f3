"""The websocket host service: spec/services/websocket.md, with the recommended event semantics.

Real-transport tests talk to a ``websockets`` server on 127.0.0.1 (port 0) and wait only on events with
timeouts; name resolution always goes through an injected resolver, so nothing but 127.0.0.1 is reached.
In-memory tests drive a scripted peer and the scope's clock: no threads, no waiting.
"""

from __future__ import annotations

import contextlib
import json
import queue
import re
import socket
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from google.protobuf.message import Message
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.abi.proto import api_pb2, websocket_pb2
from pytest_wasmhost.clock import Clock, ManualClock
from pytest_wasmhost.doubles.websocket import (
    MemoryPeer,
    MemoryTransport,
    MemoryTransportFactory,
    MemoryWebSockets,
)
from pytest_wasmhost.errors import HostLimitWarning
from pytest_wasmhost.host.base import Denied, HostEnvironment, HostHardError, ServiceContext
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.host.websocket import (
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PLUGIN_MAX_CONNECTIONS,
    NANOID_ALPHABET,
    CloseFrame,
    ConnectionCapExceeded,
    DialError,
    DialRequest,
    RealTransport,
    WebSocketHub,
    WebSocketOptions,
    WebSocketService,
    close_payload,
    plan_handshake,
    websocket_hub,
)
from pytest_wasmhost.manifest import parse_manifest
from tests.support.plugins import manifest as manifest_dict

WAIT = 5.0  # upper bound of every wait on an event; nothing waits for time to pass

# -- helpers -------------------------------------------------------------------------------------------


class EchoServer:
    """A ``websockets`` server on 127.0.0.1:0 that records what it receives and echoes it back.

    It refuses the handshake (401) unless ``require`` header is present, as the original's test server did.
    ``connections`` yields each accepted server-side connection (a test makes it send or close);
    ``closed`` yields, per ended connection, the close frame the client sent as ``(code, reason)`` or None.
    """

    def __init__(
        self, *, require: tuple[str, str] | None = ("X-Test-Header", "test-value"), echo: bool = True
    ):
        self.require = require
        self.echo = echo
        self.received: queue.Queue[str | bytes] = queue.Queue()
        self.connections: queue.Queue[ServerConnection] = queue.Queue()
        self.closed: queue.Queue[tuple[int, str] | None] = queue.Queue()
        self.requests: list[Request] = []
        self._server = serve(self._handle, "127.0.0.1", 0, process_request=self._check, ping_interval=None)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="echo-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        if self.require is not None and request.headers.get(self.require[0]) != self.require[1]:
            return connection.respond(401, f"missing {self.require[0]}\n")
        return None

    def _handle(self, connection: ServerConnection) -> None:
        self.connections.put(connection)
        try:
            for message in connection:
                self.received.put(message)
                if self.echo:
                    connection.send(message)
        except ConnectionClosed:
            pass
        finally:
            rcvd = connection.protocol.close_rcvd
            self.closed.put((rcvd.code, rcvd.reason) if rcvd is not None else None)

    def next_connection(self) -> ServerConnection:
        return self.connections.get(timeout=WAIT)

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(WAIT)


@dataclass(frozen=True)
class Delivery:
    plugin_id: str
    function: str
    request: Any


class Recorder:
    """A fake ``env.call_plugin``: records every callback delivery; tests wait on the count."""

    def __init__(self, reaction: Callable[[Delivery], None] | None = None) -> None:
        self.calls: list[Delivery] = []
        self.reaction = reaction
        self._cond = threading.Condition()

    def __call__(self, plugin_id: str, export: str, request: Message) -> Reply:
        delivery = Delivery(plugin_id, export.removeprefix("web_socket_callback_"), request)
        with self._cond:
            self.calls.append(delivery)
            self._cond.notify_all()
        if self.reaction is not None:
            self.reaction(delivery)
        return Reply(response=None, error_text=None)

    def wait_for(self, count: int) -> list[Delivery]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.calls) >= count, WAIT), f"deliveries: {self.calls}"
            return list(self.calls)

    @property
    def functions(self) -> list[str]:
        with self._cond:
            return [d.function for d in self.calls]


def no_such_host(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def fixed_resolver(table: Mapping[str, Sequence[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[host])

    return resolve


def make_env(
    recorder: Recorder | None = None,
    clock: ManualClock | None = None,
    *,
    transport: str = "real",
    autodeliver: bool = True,
    **ws: Any,
) -> HostEnvironment:
    factory = MemoryTransportFactory(autodeliver=autodeliver) if transport == "memory" else None
    options = HostOptions(websocket=WebSocketOptions(transport=factory, **ws))
    return HostEnvironment(clock=clock or ManualClock(), call_plugin=recorder, options=options)


MEMORY = HostOptions(websocket=WebSocketOptions(transport=MemoryTransportFactory()))


def make_service(
    env: HostEnvironment,
    allowed: Sequence[str] = ("*",),
    *,
    allow_local: bool = True,
    plugin_id: str = "test-plugin",
) -> WebSocketService:
    """The service exactly as a scope builds it: from a manifest, through ``create``."""
    permission: dict[str, Any] = {"reason": "tests", "allowedUrls": list(allowed)}
    if allow_local:
        permission["allowLocalNetwork"] = True
    doc = manifest_dict(capabilities=("WebSocketCallback",), permissions={"websocket": permission})
    manifest = parse_manifest(json.dumps(doc), plugin_id=plugin_id)
    return WebSocketService.create(
        ServiceContext(plugin_id=plugin_id, manifest=manifest, config=dict, env=env)
    )


def connect(service: WebSocketService, url: str, connection_id: str = "", **headers: str) -> str:
    response = service.connect(
        websocket_pb2.ConnectRequest(url=url, headers=headers, connection_id=connection_id)
    )
    assert response.error == ""
    return str(response.connection_id)


def send_text(service: WebSocketService, connection_id: str, message: str) -> str:
    return str(
        service.send_text(websocket_pb2.SendTextRequest(connection_id=connection_id, message=message)).error
    )


def send_binary(service: WebSocketService, connection_id: str, data: bytes) -> str:
    return str(
        service.send_binary(websocket_pb2.SendBinaryRequest(connection_id=connection_id, data=data)).error
    )


def close(service: WebSocketService, connection_id: str, code: int = 1000, reason: str = "") -> str:
    request = websocket_pb2.CloseRequest(connection_id=connection_id, code=code, reason=reason)
    return str(service.close_connection(request).error)


def real_transport(env: HostEnvironment) -> RealTransport:
    transport = websocket_hub(env).transport
    assert isinstance(transport, RealTransport)
    return transport


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[EchoServer]:
    srv = EchoServer()
    yield srv
    srv.close()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def real_env(recorder: Recorder) -> Iterator[HostEnvironment]:
    env = make_env(recorder, transport="real")
    yield env
    env.close()


@pytest.fixture
def memory_env(recorder: Recorder) -> Iterator[HostEnvironment]:
    env = make_env(recorder, transport="memory")
    yield env
    env.close()


def peer_of(env: HostEnvironment, connection_id: str) -> MemoryPeer:
    return MemoryWebSockets(websocket_hub(env)).peer(connection_id)


# -- acceptance table (spec: "Service behaviour"), real sockets -------------------------------------------


def test_acceptance_against_an_echo_server(server: EchoServer, real_env: HostEnvironment) -> None:
    service = make_service(real_env)
    hub = websocket_hub(real_env)

    cid = connect(service, server.url, "test-connection-id", **{"X-Test-Header": "test-value"})
    assert cid == "test-connection-id"
    assert "test-plugin:test-connection-id" in hub
    count = len(hub)

    assert send_text(service, cid, "hello websocket") == ""
    assert server.received.get(timeout=WAIT) == "hello websocket"

    assert close(service, cid, 1000, "test complete") == ""
    assert len(hub) == count - 1
    assert "test-plugin:test-connection-id" not in hub
    assert server.closed.get(timeout=WAIT) == (1000, "test complete")


@pytest.mark.parametrize("mode", ["strict", "legacy"])
def test_connect_to_an_unresolvable_host_is_a_hard_error(mode: str, recorder: Recorder) -> None:
    env = make_env(recorder, transport="real", mode=mode, resolver=no_such_host)
    try:
        with pytest.raises(HostHardError) as err:
            make_service(env).connect(
                websocket_pb2.ConnectRequest(url="ws://invalid-url-that-does-not-exist")
            )
    finally:
        env.close()
    assert err.value.function == "connect"
    assert err.value.message == (
        "failed to connect to WebSocket server: "
        "dial tcp: lookup invalid-url-that-does-not-exist: no such host"
    )


def test_connect_to_an_unreachable_port_is_a_hard_error(real_env: HostEnvironment) -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(HostHardError) as err:
            make_service(real_env).connect(websocket_pb2.ConnectRequest(url=f"ws://127.0.0.1:{port}"))
    assert err.value.message == (
        f"failed to connect to WebSocket server: dial tcp 127.0.0.1:{port}: connect: connection refused"
    )
    assert len(websocket_hub(real_env)) == 0


def test_a_refused_handshake_is_a_hard_bad_handshake(server: EchoServer, real_env: HostEnvironment) -> None:
    with pytest.raises(HostHardError) as err:
        make_service(real_env).connect(websocket_pb2.ConnectRequest(url=server.url))  # header missing
    assert err.value.message == "failed to connect to WebSocket server: websocket: bad handshake"
    assert len(websocket_hub(real_env)) == 0


@pytest.mark.parametrize("transport", ["real", "memory"])
def test_unknown_ids_answer_connection_not_found(transport: str, recorder: Recorder) -> None:
    env = make_env(recorder, transport=transport)
    service = make_service(env)
    assert send_text(service, "non-existent-connection", "x") == "connection not found"
    assert send_binary(service, "non-existent-connection", b"x") == "connection not found"
    assert close(service, "non-existent-connection") == "connection not found"
    env.close()


def test_headers_are_sent_as_given_with_gorilla_host_rule(recorder: Recorder) -> None:
    srv = EchoServer(require=None)
    env = make_env(recorder, transport="real", resolver=fixed_resolver({"echo.test": ["127.0.0.1"]}))
    try:
        service = make_service(env)
        connect(
            service,
            f"ws://echo.test:{srv.port}/feed?v=10",
            "h",
            **{"x-lower-case": "1", "Host": "virtual.test"},
        )
        srv.next_connection()
        request = srv.requests[-1]
        names = [name for name, _ in request.headers.raw_items()]
        assert "x-lower-case" in names  # not canonicalised
        assert request.headers["Host"] == "virtual.test"  # a "Host" entry sets the request host
        assert request.headers.get_all("Host") == ["virtual.test"]
        assert request.headers["User-Agent"] == "Go-http-client/1.1"
        assert request.path == "/feed?v=10"
        assert "Sec-WebSocket-Extensions" not in request.headers  # gorilla offered no compression
    finally:
        env.close()
        srv.close()


def test_a_dialer_owned_header_fails_before_dialling(server: EchoServer, real_env: HostEnvironment) -> None:
    request = websocket_pb2.ConnectRequest(url=server.url, headers={"Upgrade": "h2c"})
    with pytest.raises(HostHardError) as err:
        make_service(real_env).connect(request)
    assert err.value.message == (
        "failed to connect to WebSocket server: websocket: duplicate header not allowed: Upgrade"
    )
    assert server.requests == []


# -- permissions ------------------------------------------------------------------------------------------


PERMISSIONS = ("wss://api.example.com/*", "ws://localhost:8080")


@pytest.mark.parametrize("url", ["wss://api.example.com/v1/stream", "ws://localhost:8080"])
def test_allowed_urls_connect(url: str, memory_env: HostEnvironment) -> None:
    service = make_service(memory_env, PERMISSIONS, allow_local=True)
    cid = connect(service, url, "c")
    assert peer_of(memory_env, cid).url == url


@pytest.mark.parametrize("transport", ["real", "memory"])
def test_a_url_outside_the_allow_list_is_denied(transport: str, recorder: Recorder) -> None:
    env = make_env(recorder, transport=transport)
    service = make_service(env, PERMISSIONS, allow_local=True)
    with pytest.raises(Denied) as denial:
        service.connect(websocket_pb2.ConnectRequest(url="wss://malicious.com/stream", connection_id="c"))
    assert denial.value.response.error == (
        "Connection blocked by plugin permissions: "
        "URL wss://malicious.com/stream does not match any allowed URL patterns"
    )
    assert denial.value.response.connection_id == ""
    assert denial.value.rule == "not-in-allowlist: allowedUrls"
    assert denial.value.reason == denial.value.response.error
    assert len(websocket_hub(env)) == 0
    env.close()


def test_a_refused_websocket_url_says_why_in_the_transcript_only(memory_env: HostEnvironment) -> None:
    service = make_service(memory_env, ["https://api.example.com/*"], allow_local=False)
    with pytest.raises(Denied) as denial:
        service.connect(websocket_pb2.ConnectRequest(url="wss://api.example.com/stream", connection_id="c"))
    assert denial.value.response.error == (
        "Connection blocked by plugin permissions: "
        "URL wss://api.example.com/stream does not match any allowed URL patterns"
    )
    assert denial.value.reason == (
        f"{denial.value.response.error} "
        '(why: "https://api.example.com/*" matches only https: URLs, not wss:; '
        '"wss://api.example.com/*" would match)'
    )


@pytest.mark.parametrize("mode", ["strict", "legacy"])
def test_a_local_address_is_refused_without_allow_local_network(
    mode: str, server: EchoServer, recorder: Recorder
) -> None:
    env = make_env(recorder, transport="real", mode=mode)
    service = make_service(env, ["*"], allow_local=False)
    with pytest.raises(Denied) as denial:
        service.connect(websocket_pb2.ConnectRequest(url=server.url, headers={"X-Test-Header": "test-value"}))
    assert denial.value.response.error == (
        "Connection blocked by plugin permissions: requests to localhost are not allowed"
    )
    assert denial.value.rule == "loopback: allowLocalNetwork=false"
    assert server.requests == []
    env.close()


def test_strict_mode_refuses_a_name_that_resolves_to_a_local_address(
    server: EchoServer, recorder: Recorder
) -> None:
    # The original allowed this (names were never resolved); strict mode checks what is connected to.
    env = make_env(recorder, transport="real", resolver=fixed_resolver({"echo.test": ["127.0.0.1"]}))
    service = make_service(env, ["*"], allow_local=False)
    with pytest.raises(Denied) as denial:
        service.connect(websocket_pb2.ConnectRequest(url=f"ws://echo.test:{server.port}"))
    assert denial.value.rule == "loopback: allowLocalNetwork=false"
    assert "echo.test -> 127.0.0.1" in denial.value.response.error
    assert server.requests == []
    env.close()


def test_legacy_mode_keeps_the_original_hole_for_names(server: EchoServer, recorder: Recorder) -> None:
    env = make_env(
        recorder, transport="real", mode="legacy", resolver=fixed_resolver({"echo.test": ["127.0.0.1"]})
    )
    service = make_service(env, ["*"], allow_local=False)
    connect(service, f"ws://echo.test:{server.port}", "c", **{"X-Test-Header": "test-value"})
    assert server.requests[-1].headers["Host"] == f"echo.test:{server.port}"  # pinned address, URL's host
    env.close()


# -- connection ids --------------------------------------------------------------------------------------


def test_an_empty_id_gets_a_nanoid(memory_env: HostEnvironment) -> None:
    service = make_service(memory_env)
    ids = {connect(service, "ws://localhost:8080") for _ in range(20)}
    assert len(ids) == 20
    for cid in ids:
        assert re.fullmatch(f"[{re.escape(NANOID_ALPHABET)}]{{10}}", cid)
        assert f"test-plugin:{cid}" in websocket_hub(memory_env)


def test_ids_are_per_plugin(memory_env: HostEnvironment) -> None:
    # "x"+"y:z" and "x:y"+"z" print the same key; they are still two plugins' connections.
    first = make_service(memory_env, plugin_id="x")
    second = make_service(memory_env, plugin_id="x:y")
    connect(first, "ws://localhost:8080/a", "y:z")
    connect(second, "ws://localhost:8080/b", "z")
    assert send_text(first, "y:z", "to a") == ""
    assert send_text(first, "z", "nope") == "connection not found"
    assert peer_of(memory_env, "y:z").expect_sent() == "to a"
    assert peer_of(memory_env, "z").sent == []


def test_reusing_an_id_closes_the_old_socket_real(server: EchoServer, real_env: HostEnvironment) -> None:
    service = make_service(real_env)
    headers = {"X-Test-Header": "test-value"}
    connect(service, server.url, "dup", **headers)
    old = server.next_connection()
    connect(service, server.url, "dup", **headers)
    assert server.closed.get(timeout=WAIT) == (1000, "")  # the old socket got a close frame and went
    assert old.protocol.close_rcvd is not None
    assert websocket_hub(real_env).keys() == ["test-plugin:dup"]
    assert send_text(service, "dup", "to the new one") == ""
    assert server.received.get(timeout=WAIT) == "to the new one"


def test_reusing_an_id_closes_the_old_socket_memory(memory_env: HostEnvironment, recorder: Recorder) -> None:
    service = make_service(memory_env)
    connect(service, "ws://localhost:8080/one", "dup")
    old = peer_of(memory_env, "dup")
    connect(service, "ws://localhost:8080/two", "dup")
    new = peer_of(memory_env, "dup")
    assert (old.open, old.host_close) == (False, CloseFrame(1000, ""))
    assert new.open
    assert new.url.endswith("/two")
    with pytest.raises(RuntimeError, match="closed"):
        old.push_text("late")  # the old server can no longer reach the plugin
    new.push_text("fresh")
    assert recorder.functions == ["on_text_message"]
    assert websocket_hub(memory_env).keys() == ["test-plugin:dup"]


def test_ids_with_colons_still_deliver_events(memory_env: HostEnvironment, recorder: Recorder) -> None:
    service = make_service(memory_env, plugin_id="my:plugin")
    connect(service, "ws://localhost:8080", "a:b:c")
    peer_of(memory_env, "a:b:c").push_text("hi")
    assert recorder.calls == [
        Delivery(
            "my:plugin", "on_text_message", api_pb2.OnTextMessageRequest(connection_id="a:b:c", message="hi")
        )
    ]


# -- caps on open connections -----------------------------------------------------------------------------


def refused_connect(service: WebSocketService, connection_id: str) -> str:
    request = websocket_pb2.ConnectRequest(url="ws://localhost:8080", connection_id=connection_id)
    response = service.connect(request)
    assert response.connection_id == ""
    return str(response.error)


def test_connections_past_the_plugins_cap_are_refused_before_dialling(recorder: Recorder) -> None:
    env = make_env(recorder, transport="memory", plugin_max_connections=2)
    hub = websocket_hub(env)
    service, other = make_service(env), make_service(env, plugin_id="other")
    connect(service, "ws://localhost:8080", "a")
    connect(service, "ws://localhost:8080", "b")
    with pytest.warns(HostLimitWarning) as caught:
        error = refused_connect(service, "c")
    assert error == (
        "failed to connect to WebSocket server: the host's cap plugin_max_connections=2 "
        "(open connections per plugin, HostOptions.websocket.plugin_max_connections) is reached"
    )
    (warning,) = caught
    assert "plugin 'test-plugin'" in str(warning.message)
    assert "plugin_max_connections=2" in str(warning.message)
    assert isinstance(hub.transport, MemoryTransport)
    assert len(hub.transport.peers) == 2, "nothing was dialled"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per plugin and cap
        assert refused_connect(service, "d").endswith("is reached")
    connect(service, "ws://localhost:8080/again", "a")  # reusing an open id does not count twice
    connect(other, "ws://localhost:8080", "c")  # the cap is each plugin's own
    assert close(service, "b") == ""
    connect(service, "ws://localhost:8080", "c")  # a close frees a place
    assert sorted(hub.keys()) == ["other:c", "test-plugin:a", "test-plugin:c"]
    peer_of_a = hub.transport.peer("a", plugin_id="test-plugin")
    peer_of_a.close(1000, "bye")  # the peer going away frees one too
    connect(service, "ws://localhost:8080", "d")
    env.close()


def test_the_scope_cap_counts_every_plugin(recorder: Recorder) -> None:
    env = make_env(recorder, transport="memory", max_connections=3)
    first, second = make_service(env, plugin_id="one"), make_service(env, plugin_id="two")
    for cid in ("a", "b", "c"):
        connect(first, "ws://localhost:8080", cid)
    with pytest.warns(HostLimitWarning, match=r"plugin 'two'.* max_connections=3 \(open connections for all"):
        assert refused_connect(second, "a").startswith("failed to connect to WebSocket server: ")
    assert websocket_hub(env).connection_ids("one") == ["a", "b", "c"]
    env.close()


def test_connects_being_dialled_hold_their_place(recorder: Recorder) -> None:
    # Two connects at once must not both pass a cap of one: the place is taken before the dial.
    env = make_env(recorder, transport="memory", plugin_max_connections=1)
    hub = websocket_hub(env)
    inside, release = threading.Event(), threading.Event()
    dial = hub.transport.dial

    def slow_dial(request: DialRequest) -> Any:
        inside.set()
        release.wait(WAIT)
        return dial(request)

    hub.transport.dial = slow_dial  # type: ignore[method-assign]
    request = DialRequest(plugin_id="p", connection_id="a", url="ws://h/")
    worker = threading.Thread(target=hub.connect, args=(request,))
    worker.start()
    assert inside.wait(WAIT)
    with pytest.raises(ConnectionCapExceeded):
        hub.connect(DialRequest(plugin_id="p", connection_id="b", url="ws://h/"))
    release.set()
    worker.join(WAIT)
    assert hub.connection_ids("p") == ["a"]
    env.close()


def test_connection_caps_are_settings() -> None:
    defaults = WebSocketOptions()
    assert (defaults.max_connections, defaults.plugin_max_connections) == (256, 64)
    assert (DEFAULT_MAX_CONNECTIONS, DEFAULT_PLUGIN_MAX_CONNECTIONS) == (256, 64)
    custom = WebSocketHub.for_env(make_env(max_connections=5, plugin_max_connections=2)).options
    assert (custom.max_connections, custom.plugin_max_connections) == (5, 2)
    for bad in (0, -3, "2", 2.0, True):
        with pytest.raises(ValueError, match=r"WebSocketOptions\.plugin_max_connections must be a positive"):
            WebSocketOptions(plugin_max_connections=bad)  # type: ignore[arg-type]


# -- events: real sockets -------------------------------------------------------------------------------


def test_messages_reach_the_plugin_in_order(
    server: EchoServer, real_env: HostEnvironment, recorder: Recorder
) -> None:
    service = make_service(real_env)
    cid = connect(service, server.url, "c", **{"X-Test-Header": "test-value"})
    assert send_text(service, cid, "one") == ""
    assert send_binary(service, cid, b"\x00two") == ""
    calls = recorder.wait_for(2)
    assert calls == [
        Delivery(
            "test-plugin", "on_text_message", api_pb2.OnTextMessageRequest(connection_id="c", message="one")
        ),
        Delivery(
            "test-plugin",
            "on_binary_message",
            api_pb2.OnBinaryMessageRequest(connection_id="c", data=b"\x00two"),
        ),
    ]
    recorded = real_env.transcript.calls("websocket")
    assert [(c.function, c.verdict, c.plugin_id) for c in recorded] == [
        ("on_text_message", "ok", "test-plugin"),
        ("on_binary_message", "ok", "test-plugin"),
    ]


def test_a_peer_close_frame_is_on_close(
    server: EchoServer, real_env: HostEnvironment, recorder: Recorder
) -> None:
    service = make_service(real_env)
    connect(service, server.url, "c", **{"X-Test-Header": "test-value"})
    server.next_connection().close(4000, "bye")
    calls = recorder.wait_for(1)
    assert calls == [
        Delivery(
            "test-plugin", "on_close", api_pb2.OnCloseRequest(connection_id="c", code=4000, reason="bye")
        )
    ]
    assert websocket_hub(real_env).keys() == []
    assert send_text(service, "c", "x") == "connection not found"


def test_a_close_frame_without_payload_is_1005(
    server: EchoServer, real_env: HostEnvironment, recorder: Recorder
) -> None:
    service = make_service(real_env)
    connect(service, server.url, "c", **{"X-Test-Header": "test-value"})
    peer = server.next_connection()
    with peer.send_context():  # websockets sends an empty close frame when no code is given
        peer.protocol.send_close()
    assert recorder.wait_for(1)[0].request == api_pb2.OnCloseRequest(connection_id="c", code=1005, reason="")


def test_a_read_error_is_on_error_then_gone_and_closed(
    server: EchoServer, real_env: HostEnvironment, recorder: Recorder
) -> None:
    service = make_service(real_env)
    connect(service, server.url, "c", **{"X-Test-Header": "test-value"})
    threads = real_transport(real_env).threads()
    server.next_connection().socket.shutdown(socket.SHUT_RDWR)  # TCP gone, no close frame
    calls = recorder.wait_for(1)
    assert calls == [
        Delivery(
            "test-plugin",
            "on_error",
            api_pb2.OnErrorRequest(
                connection_id="c", error="websocket: close 1006 (abnormal closure): unexpected EOF"
            ),
        )
    ]
    assert websocket_hub(real_env).keys() == []
    assert send_text(service, "c", "x") == "connection not found"
    for thread in threads:  # the reader ended and the client socket was closed (defect 2 fixed)
        thread.join(WAIT)
        assert not thread.is_alive()
    assert real_transport(real_env).sockets_open() == 0


def test_the_idle_read_timeout_fails_and_closes(server: EchoServer, recorder: Recorder) -> None:
    env = make_env(recorder, transport="real", idle_timeout=0.2)  # the spec's 60 s, made tiny
    service = make_service(env)
    connect(service, server.url, "quiet", **{"X-Test-Header": "test-value"})
    calls = recorder.wait_for(1)
    assert calls[0].function == "on_error"
    assert calls[0].request.connection_id == "quiet"
    assert re.fullmatch(r"read tcp 127\.0\.0\.1:\d+->127\.0\.0\.1:\d+: i/o timeout", calls[0].request.error)
    assert server.closed.get(timeout=WAIT) is None  # the server saw the socket go (no close frame)
    assert websocket_hub(env).keys() == []
    env.close()


def test_no_events_after_a_plugin_close(
    server: EchoServer, real_env: HostEnvironment, recorder: Recorder
) -> None:
    service = make_service(real_env)
    connect(service, server.url, "c", **{"X-Test-Header": "test-value"})
    threads = real_transport(real_env).threads()
    assert close(service, "c", 1000, "bye") == ""
    assert server.closed.get(timeout=WAIT) == (1000, "bye")
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert recorder.calls == []  # the original delivered a spurious on_error here (defect 3)


def test_deliveries_on_one_connection_are_serialised(server: EchoServer, recorder: Recorder) -> None:
    env = make_env(recorder, transport="real")
    started, release = threading.Event(), threading.Event()

    def react(delivery: Delivery) -> None:
        if delivery.request.message == "1":
            started.set()
            assert release.wait(WAIT)

    recorder.reaction = react
    connect(make_service(env), server.url, "c", **{"X-Test-Header": "test-value"})
    peer = server.next_connection()
    peer.send("1")
    assert started.wait(WAIT)
    peer.send("2")
    peer.send("3")
    assert recorder.functions == ["on_text_message"]  # "2" waits until the callback for "1" returns
    release.set()
    assert [d.request.message for d in recorder.wait_for(3)] == ["1", "2", "3"]
    env.close()


def test_a_close_inside_a_callback_ends_deliveries(server: EchoServer, recorder: Recorder) -> None:
    env = make_env(recorder, transport="real")
    service = make_service(env)

    def react(delivery: Delivery) -> None:  # on the reader thread, while the server keeps sending
        assert close(service, "c", 1000, "enough") == ""

    recorder.reaction = react
    connect(service, server.url, "c", **{"X-Test-Header": "test-value"})
    threads = real_transport(env).threads()
    peer = server.next_connection()
    with contextlib.suppress(ConnectionClosed):
        for i in range(50):
            peer.send(str(i))
    # The server sees the end; whether it read the close frame first depends on whether our socket closed
    # with unread data (RST), exactly as with the original's close-frame-then-Close().
    assert server.closed.get(timeout=WAIT) in ((1000, "enough"), None)
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()
    assert [d.request.message for d in recorder.calls] == ["0"]
    env.close()


def test_closing_the_scope_stops_every_thread_and_socket(server: EchoServer, recorder: Recorder) -> None:
    env = make_env(recorder, transport="real")
    service = make_service(env)
    for cid in ("a", "b"):
        connect(service, server.url, cid, **{"X-Test-Header": "test-value"})
    transport = real_transport(env)
    threads = transport.threads()
    assert len(threads) == 4  # per connection: our reader + websockets' receiver
    assert transport.sockets_open() == 2

    env.close()  # the scope's end: HostEnvironment.close closes the hub

    alive = [t for t in threading.enumerate() if t in threads or t.name.startswith("wasmhost-websocket")]
    assert alive == []
    assert transport.sockets_open() == 0
    assert {server.closed.get(timeout=WAIT), server.closed.get(timeout=WAIT)} == {(1001, "")}
    with pytest.raises(HostHardError, match="shutting down"):
        connect(service, server.url, "late", **{"X-Test-Header": "test-value"})


def test_a_callback_may_use_the_service_on_its_own_connection(server: EchoServer, recorder: Recorder) -> None:
    env = make_env(recorder, transport="real")
    service = make_service(env)
    replies: queue.Queue[str] = queue.Queue()

    def react(delivery: Delivery) -> None:  # runs on the reader: the hub lock must not be held
        if delivery.function == "on_text_message" and delivery.request.message == "ping":
            replies.put(send_text(service, "c", "pong"))

    recorder.reaction = react
    connect(service, server.url, "c", **{"X-Test-Header": "test-value"})
    send_text(service, "c", "ping")  # echoed back as a "ping" message
    assert replies.get(timeout=WAIT) == ""
    assert server.received.get(timeout=WAIT) == "ping"
    assert server.received.get(timeout=WAIT) == "pong"
    env.close()


# -- events: in memory ----------------------------------------------------------------------------------


def test_memory_acceptance(memory_env: HostEnvironment) -> None:
    service = make_service(memory_env)
    hub = websocket_hub(memory_env)
    cid = connect(service, "ws://localhost:8080", "test-connection-id", **{"X-Test-Header": "test-value"})
    peer = peer_of(memory_env, cid)
    assert peer.headers == {"X-Test-Header": "test-value"}
    assert "test-plugin:test-connection-id" in hub
    assert send_text(service, cid, "hello websocket") == ""
    assert send_binary(service, cid, b"\x01\x02") == ""
    assert peer.expect_sent() == "hello websocket"
    assert peer.expect_sent() == b"\x01\x02"
    with pytest.raises(AssertionError, match="sent nothing more"):
        peer.expect_sent()
    assert close(service, cid, 1000, "test complete") == ""
    assert (peer.open, peer.host_close) == (False, CloseFrame(1000, "test complete"))
    assert hub.keys() == []


def test_memory_refused_dial_is_a_hard_error(memory_env: HostEnvironment) -> None:
    transport = websocket_hub(memory_env).transport
    assert isinstance(transport, MemoryTransport)
    transport.refuse(url="ws://localhost:8080/down", times=1)
    with pytest.raises(HostHardError) as err:
        make_service(memory_env).connect(websocket_pb2.ConnectRequest(url="ws://localhost:8080/down"))
    assert err.value.message == "failed to connect to WebSocket server: websocket: bad handshake"
    connect(make_service(memory_env), "ws://localhost:8080/down", "c")  # only once


def test_memory_events_and_transcript(memory_env: HostEnvironment, recorder: Recorder) -> None:
    service = make_service(memory_env)
    connect(service, "ws://localhost:8080", "c")
    peer = peer_of(memory_env, "c")
    peer.push_text("t")
    peer.push_binary(b"b")
    peer.close(4001, "going")
    assert recorder.calls == [
        Delivery(
            "test-plugin", "on_text_message", api_pb2.OnTextMessageRequest(connection_id="c", message="t")
        ),
        Delivery(
            "test-plugin", "on_binary_message", api_pb2.OnBinaryMessageRequest(connection_id="c", data=b"b")
        ),
        Delivery(
            "test-plugin", "on_close", api_pb2.OnCloseRequest(connection_id="c", code=4001, reason="going")
        ),
    ]
    assert [(c.service, c.function, c.verdict) for c in memory_env.transcript.calls("websocket")] == [
        ("websocket", "on_text_message", "ok"),
        ("websocket", "on_binary_message", "ok"),
        ("websocket", "on_close", "ok"),
    ]
    assert not peer.open
    assert websocket_hub(memory_env).keys() == []


def test_memory_empty_close_frame_is_1005(memory_env: HostEnvironment, recorder: Recorder) -> None:
    connect(make_service(memory_env), "ws://localhost:8080", "c")
    peer_of(memory_env, "c").close(None)
    assert recorder.calls[-1].request == api_pb2.OnCloseRequest(connection_id="c", code=1005, reason="")


def test_memory_read_error_is_on_error_then_gone(memory_env: HostEnvironment, recorder: Recorder) -> None:
    service = make_service(memory_env)
    connect(service, "ws://localhost:8080", "c")
    peer = peer_of(memory_env, "c")
    peer.fail("read tcp: connection reset by peer")
    assert recorder.calls == [
        Delivery(
            "test-plugin",
            "on_error",
            api_pb2.OnErrorRequest(connection_id="c", error="read tcp: connection reset by peer"),
        )
    ]
    assert not peer.open
    assert send_text(service, "c", "x") == "connection not found"


def test_memory_idle_timeout_follows_the_clock(recorder: Recorder) -> None:
    clock = ManualClock()
    env = make_env(recorder, clock=clock, transport="memory")
    connect(make_service(env), "ws://localhost:8080", "c")
    peer = peer_of(env, "c")
    clock.advance(59.9)
    assert env.sweep() == 0
    peer.push_text("keepalive")  # a frame re-arms the 60 s read deadline
    clock.advance(59.9)
    assert env.sweep() == 0
    clock.advance(0.1)
    assert env.sweep() == 1
    assert recorder.functions == ["on_text_message", "on_error"]
    assert recorder.calls[-1].request.error == "read tcp memory->localhost:8080: i/o timeout"
    assert not peer.open
    assert websocket_hub(env).keys() == []
    env.close()


@pytest.mark.parametrize(("idle_timeout", "fires"), [(5.0, True), (None, False)])
def test_memory_idle_timeout_is_configurable(
    idle_timeout: float | None, fires: bool, recorder: Recorder
) -> None:
    clock = ManualClock()
    env = make_env(recorder, clock=clock, transport="memory", idle_timeout=idle_timeout)
    connect(make_service(env), "ws://localhost:8080", "c")
    clock.advance(5.0)
    assert websocket_hub(env).deliver_pending() == int(fires)
    assert recorder.functions == (["on_error"] if fires else [])
    env.close()


def test_memory_no_events_after_a_plugin_close(recorder: Recorder) -> None:
    env = make_env(recorder, transport="memory", autodeliver=False)
    service = make_service(env)
    connect(service, "ws://localhost:8080", "c")
    peer = peer_of(env, "c")
    peer.push_text("queued before the close")
    peer.close(1000, "")
    assert close(service, "c") == ""
    assert websocket_hub(env).deliver_pending() == 0
    assert recorder.calls == []
    env.close()


def test_memory_close_from_inside_a_callback_stops_the_rest(recorder: Recorder) -> None:
    env = make_env(recorder, transport="memory", autodeliver=False)
    service = make_service(env)

    def react(delivery: Delivery) -> None:
        assert close(service, "c") == ""

    recorder.reaction = react
    connect(service, "ws://localhost:8080", "c")
    peer = peer_of(env, "c")
    peer.push_text("first")
    peer.push_text("second")
    assert websocket_hub(env).deliver_pending() == 1
    assert [d.request.message for d in recorder.calls] == ["first"]
    env.close()


def test_memory_deliveries_are_serialised_per_connection(
    memory_env: HostEnvironment, recorder: Recorder
) -> None:
    service = make_service(memory_env)
    depth = {"now": 0, "max": 0}

    def react(delivery: Delivery) -> None:
        depth["now"] += 1
        depth["max"] = max(depth["max"], depth["now"])
        if delivery.request.message == "first":
            peer_of(memory_env, "c").push_text("second")  # arrives while the first callback runs
            assert send_text(service, "c", "reply") == ""
        depth["now"] -= 1

    recorder.reaction = react
    connect(service, "ws://localhost:8080", "c")
    peer_of(memory_env, "c").push_text("first")
    assert [d.request.message for d in recorder.calls] == ["first", "second"]
    assert depth["max"] == 1
    assert peer_of(memory_env, "c").sent == ["reply"]


def test_memory_reconnect_from_on_close(memory_env: HostEnvironment, recorder: Recorder) -> None:
    service = make_service(memory_env)

    def react(delivery: Delivery) -> None:  # crypto-ticker style: the id is free again inside on_close
        if delivery.function == "on_close":
            connect(service, "ws://localhost:8080/again", "c")

    recorder.reaction = react
    connect(service, "ws://localhost:8080", "c")
    peer_of(memory_env, "c").close(1001, "restart")
    assert peer_of(memory_env, "c").url.endswith("/again")
    assert websocket_hub(memory_env).keys() == ["test-plugin:c"]
    assert send_text(service, "c", "hello again") == ""


def test_a_failing_callback_is_logged_and_dropped(recorder: Recorder) -> None:
    def broken(plugin_id: str, export: str, request: Message) -> Reply:
        if isinstance(request, api_pb2.OnTextMessageRequest) and request.message == "boom":
            raise RuntimeError("plugin adapter not registered")
        return Reply(response=None, error_text="guest said no" if export.endswith("binary_message") else None)

    env = HostEnvironment(clock=ManualClock(), call_plugin=broken, options=MEMORY)
    connect(make_service(env), "ws://localhost:8080", "c")
    peer = peer_of(env, "c")
    peer.push_text("boom")
    peer.push_binary(b"x")
    peer.push_text("fine")
    assert [(c.function, c.verdict, c.detail) for c in env.transcript.calls("websocket")] == [
        ("on_text_message", "error", "plugin adapter not registered"),
        ("on_binary_message", "error", "guest said no"),
        ("on_text_message", "ok", ""),
    ]
    assert peer.open
    # Only the callback that raised is kept for the test to report; the error answer is the plugin's own.
    (failure,) = env.callback_failures
    assert (failure.plugin_id, failure.export, failure.service, failure.subject) == (
        "test-plugin",
        "web_socket_callback_on_text_message",
        "websocket",
        "connection 'c'",
    )
    assert isinstance(failure.cause, RuntimeError)
    assert "failed (RuntimeError): plugin adapter not registered." in str(failure)
    env.close()


def test_a_scope_without_a_plugin_caller_records_the_drop() -> None:
    env = HostEnvironment(clock=ManualClock(), options=MEMORY)
    connect(make_service(env), "ws://localhost:8080", "c")
    peer_of(env, "c").push_text("x")
    [call] = env.transcript.calls("websocket", "on_text_message")
    assert (call.verdict, call.detail) == ("error", "this scope has no plugin caller")
    env.close()


@pytest.mark.parametrize(
    ("code", "reason", "frame"),
    [
        (1000, "bye", CloseFrame(1000, "bye")),
        (1005, "dropped", CloseFrame(None, "dropped")),
        (0, "", CloseFrame(0, "")),
        (1000, "x" * 124, None),  # too long for a control frame: not sent, still a success
    ],
)
def test_memory_close_frames(
    code: int, reason: str, frame: CloseFrame | None, memory_env: HostEnvironment
) -> None:
    service = make_service(memory_env)
    connect(service, "ws://localhost:8080", "c")
    assert close(service, "c", code, reason) == ""
    peer = peer_of(memory_env, "c")
    assert (peer.open, peer.host_close) == (False, frame)


def test_memory_send_and_close_failures(memory_env: HostEnvironment) -> None:
    service = make_service(memory_env)
    connect(service, "ws://localhost:8080", "c")
    peer = peer_of(memory_env, "c")
    peer.fail_sends("write: broken pipe")
    assert send_text(service, "c", "x") == "failed to send message: write: broken pipe"
    assert send_binary(service, "c", b"x") == "failed to send message: write: broken pipe"
    peer.fail_close("close: bad file descriptor")
    with pytest.raises(HostHardError) as err:
        close(service, "c")
    assert (err.value.function, err.value.message) == (
        "close",
        "error closing connection: close: bad file descriptor",
    )
    assert websocket_hub(memory_env).keys() == []  # removed before the socket close failed, as the original


def test_memory_scope_close_closes_every_peer(recorder: Recorder) -> None:
    env = make_env(recorder, transport="memory")
    service = make_service(env)
    for cid in ("a", "b"):
        connect(service, "ws://localhost:8080", cid)
    peers = websocket_hub(env).transport.peers  # type: ignore[attr-defined]
    env.close()
    assert [(p.open, p.host_close) for p in peers] == [(False, CloseFrame(1001, ""))] * 2
    assert recorder.calls == []


# -- wiring, settings and the handshake rules --------------------------------------------------------


def test_the_hub_is_one_per_scope_and_only_memory_has_peers(real_env: HostEnvironment) -> None:
    first = make_service(real_env, plugin_id="a")
    second = make_service(real_env, plugin_id="b")
    assert first.hub is second.hub is websocket_hub(real_env)
    with pytest.raises(TypeError, match=r"in-memory transport has scripted peers; .* is RealTransport"):
        MemoryWebSockets(first.hub)


def test_a_service_without_a_policy_is_a_wiring_failure(memory_env: HostEnvironment) -> None:
    service = WebSocketService("p", websocket_hub(memory_env), None)
    with pytest.raises(HostHardError, match="websocket service not properly initialized"):
        service.connect(websocket_pb2.ConnectRequest(url="ws://localhost:8080"))


def test_functions_link_the_four_imports(memory_env: HostEnvironment) -> None:
    service = make_service(memory_env)
    assert [fn.name for fn in service.functions()] == list(WebSocketService.function_names)
    assert WebSocketService.function_names == ("connect", "send_text", "send_binary", "close")


@pytest.mark.parametrize(
    ("options", "error", "problem"),
    [
        ({"transport": "carrier-pigeon"}, TypeError, "WebSocketOptions.transport must be None"),
        ({"mode": "lenient"}, ValueError, r"WebSocketOptions.mode must be one of \['strict', 'legacy'\]"),
        ({"idle_timeout": 0}, ValueError, "WebSocketOptions.idle_timeout must be a positive number"),
        ({"handshake_timeout": None}, ValueError, "WebSocketOptions.handshake_timeout must be a positive"),
        ({"idle_timeout_s": 5}, TypeError, "idle_timeout_s"),
        ({"resolver": "8.8.8.8"}, TypeError, "WebSocketOptions.resolver must be callable"),
        ({"ssl_context": True}, TypeError, "WebSocketOptions.ssl_context must be an ssl.SSLContext"),
    ],
)
def test_options_are_validated(options: dict[str, Any], error: type[Exception], problem: str) -> None:
    with pytest.raises(error, match=problem):
        WebSocketOptions(**options)


def test_options_defaults_and_a_transport_factory() -> None:
    defaults = WebSocketOptions()
    assert (defaults.transport, defaults.mode, defaults.idle_timeout, defaults.handshake_timeout) == (
        None,
        "strict",
        60.0,
        45.0,
    )
    assert isinstance(WebSocketHub.for_env(HostEnvironment(clock=ManualClock())).transport, RealTransport)
    transport = MemoryTransport(autodeliver=False)
    seen: list[tuple[Clock, WebSocketOptions]] = []

    def factory(clock: Clock, options: WebSocketOptions) -> MemoryTransport:
        seen.append((clock, options))
        return transport

    env = HostEnvironment(clock=ManualClock(), options=HostOptions(websocket=WebSocketOptions(factory)))
    assert websocket_hub(env).transport is transport
    assert seen == [(env.clock, env.options.of(WebSocketOptions))]


def test_the_memory_factory_builds_one_transport_per_scope_on_its_clock() -> None:
    options = HostOptions(
        websocket=WebSocketOptions(transport=MemoryTransportFactory(autodeliver=False), idle_timeout=7)
    )
    first, second = (HostEnvironment(clock=ManualClock(), options=options) for _ in range(2))
    one, two = websocket_hub(first).transport, websocket_hub(second).transport
    assert isinstance(one, MemoryTransport)
    assert isinstance(two, MemoryTransport)
    assert one is not two
    assert (one.clock, one.idle_timeout, one.autodeliver) == (first.clock, 7, False)
    assert MemoryTransportFactory() == MemoryTransportFactory(autodeliver=True)  # options compare by value


@pytest.mark.parametrize(
    ("url", "headers", "cause"),
    [
        ("http://example.com", {}, "malformed ws or wss URL"),
        ("ws://user:pw@example.com", {}, "malformed ws or wss URL"),
        ("ws://example.com:port", {}, 'parse "ws://example.com:port"'),
        ("ws://example.com", {"Connection": "x"}, "websocket: duplicate header not allowed: Connection"),
        (
            "ws://example.com",
            {"Sec-Websocket-Key": "x"},
            "websocket: duplicate header not allowed: Sec-Websocket-Key",
        ),
        (
            "ws://example.com",
            {"Sec-Websocket-Version": "13"},
            "duplicate header not allowed: Sec-Websocket-Version",
        ),
        (
            "ws://example.com",
            {"Sec-Websocket-Extensions": "x"},
            "duplicate header not allowed: Sec-Websocket-Extensions",
        ),
        ("ws://example.com", {"Bad Name": "x"}, 'invalid header field name "Bad Name"'),
        ("ws://example.com", {"X": "a\r\nInjected: 1"}, 'invalid header field value for "X"'),
    ],
)
def test_handshake_rules_refuse_like_gorilla(url: str, headers: dict[str, str], cause: str) -> None:
    with pytest.raises(DialError) as err:
        plan_handshake(url, headers)
    assert cause in err.value.cause


def test_handshake_plan_keeps_names_and_rewrites_host() -> None:
    plan = plan_handshake(
        "wss://gateway.discord.gg/?v=10&encoding=json",
        {
            "Authorization": "Bot x",
            "upgrade": "lower case is just a header",
            "Host": "h.test",
            "Sec-Websocket-Protocol": "a, b",
        },
    )
    assert (plan.secure, plan.host, plan.port, plan.resource) == (
        True,
        "gateway.discord.gg",
        443,
        "/?v=10&encoding=json",
    )
    assert plan.headers == (("Authorization", "Bot x"), ("upgrade", "lower case is just a header"))
    assert plan.uri == "wss://h.test/?v=10&encoding=json"
    assert plan.subprotocols == ("a", "b")
    assert plan_handshake("ws://[::1]:9000", {}).address == "[::1]:9000"


def test_close_payload_is_gorillas() -> None:
    assert close_payload(1000, "bye") == b"\x03\xe8bye"
    assert close_payload(1005, "ignored") == b""
    assert close_payload(0, "") == b"\x00\x00"
    assert close_payload(-1, "") == b"\xff\xff"  # Go's uint16(code)
    assert close_payload(1000, "x" * 123) is not None
    assert close_payload(1000, "x" * 124) is None
