"""Host service ``websocket`` (spec/services/websocket.md): outgoing WebSocket connections for plugins.

One :class:`WebSocketHub` per scope (``ctx.env.shared("websocket", ...)``) plays the original's process-wide
registry: it owns every connection of every plugin of the scope, keyed ``(pluginID, connection id)`` (shown as
``<pluginID>:<id>``), and closes them all when the scope closes. Each plugin's :class:`WebSocketService`
checks URLs against its own allow-list (``netpolicy``) and drives the hub.

Behaviour is the original's, with the spec's *recommended* event semantics and none of its defects:

* a peer close frame is delivered as ``on_close(code, reason)`` (1005 for an empty payload), ``on_error`` is
  only for genuine failures (read errors, the idle read timeout), and nothing is delivered once the plugin
  called ``close`` (no delivery *starts* after that);
* reusing a connection id closes the old socket first; a read error closes the socket; ids containing
  ``:`` deliver events (the hub keeps plugin id and connection id apart, nothing is split);
* the 60 s idle read deadline is kept (``WebSocketOptions.idle_timeout``).

The hub talks to a small interface (:class:`Transport` / :class:`Link`), built per scope by
``WebSocketOptions.transport``:

* :class:`RealTransport` (``None``, the default): the ``websockets`` threading client over a socket we
  connect ourselves to an address the policy resolved and approved (no resolve-then-connect race; an
  unknown host stays the original's hard dial error), one reader thread per connection that reads the next
  frame only after the previous callback returned, as the original did.
  Chosen over one asyncio loop because host functions are synchronous calls from guest threads: a blocking
  client needs no cross-thread hand-off per call, and a slow plugin callback stalls only its own connection.
* any :class:`TransportFactory`: the test double :class:`pytest_wasmhost.doubles.websocket.MemoryTransport`
  (scripted peers, no sockets, no sleeps) is what the fixtures wire in; this module never imports it.

Options, :class:`WebSocketOptions` (``HostOptions.websocket``): ``transport``, ``mode`` (``"strict"``
default | ``"legacy"``: the netpolicy mode), ``idle_timeout`` (seconds, ``None`` = never; default 60),
``handshake_timeout`` (default 45), ``resolver`` (``(host, port) -> [ip, ...]``: the policy's name
resolution), ``ssl_context``, and the caps on open connections (the original had none):
``plugin_max_connections`` (default 64 per plugin) and ``max_connections`` (256 for all plugins of the
scope). A ``connect`` past a cap dials nothing and answers ``ConnectResponse.error`` (``failed to connect
to WebSocket server: the host's cap ... is reached``); the test is warned once per plugin and cap. Reusing
an open connection's id does not count twice.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
from google.protobuf.message import Message
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidMessage
from websockets.frames import Frame, Opcode
from websockets.protocol import State
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from pytest_wasmhost.abi.proto import api_pb2, websocket_pb2
from pytest_wasmhost.clock import Clock, host_monotonic
from pytest_wasmhost.gocompat.neturl import join_host_port
from pytest_wasmhost.gocompat.oserr import errno_text
from pytest_wasmhost.host.base import (
    Cap,
    CapWarnings,
    Denied,
    HostEnvironment,
    HostFunction,
    HostHardError,
    HostService,
    ServiceContext,
    Verdict,
    check_choice,
    check_positive,
    note_rule,
)
from pytest_wasmhost.host.netpolicy import (
    WEBSOCKET_DENIAL_PREFIX,
    Decision,
    NetPolicy,
    Resolver,
    with_explanation,
)
from pytest_wasmhost.manifest import WebSocketPermission

__all__ = [
    "BinaryMessage",
    "CloseError",
    "CloseFrame",
    "ConnectionCapExceeded",
    "ConnectionNotFound",
    "DialDenied",
    "DialError",
    "DialRequest",
    "Handshake",
    "Link",
    "PeerClosed",
    "ReadFailed",
    "RealTransport",
    "SendError",
    "TextMessage",
    "Transport",
    "TransportFactory",
    "WebSocketHub",
    "WebSocketOptions",
    "WebSocketService",
    "close_payload",
    "new_connection_id",
    "plan_handshake",
    "websocket_hub",
]

log = logging.getLogger("pytest_wasmhost.host.websocket")

NANOID_ALPHABET = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
NANOID_LENGTH = 10
DEFAULT_IDLE_TIMEOUT = 60.0  # the original's read deadline, re-armed before every read
DEFAULT_HANDSHAKE_TIMEOUT = 45.0  # gorilla's default dialer
CLOSE_WRITE_TIMEOUT = 1.0  # the original's write deadline for the close frame
GO_USER_AGENT = "Go-http-client/1.1"  # what the original's handshake request carried
NORMAL_CLOSURE = 1000
GOING_AWAY = 1001
NO_STATUS_RECEIVED = 1005
_MAX_CONTROL_PAYLOAD = 125
_JOIN_TIMEOUT = 5.0
# gorilla's Dial refuses these request headers (exact, case-sensitive names) before dialling.
_DIALER_OWNED_HEADERS = frozenset(
    {"Upgrade", "Connection", "Sec-Websocket-Key", "Sec-Websocket-Version", "Sec-Websocket-Extensions"}
)
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
DEFAULT_MAX_CONNECTIONS = 256  # every plugin of the scope together
DEFAULT_PLUGIN_MAX_CONNECTIONS = 64


# -- the policy ---------------------------------------------------------------------------------------

AddressCheck = Callable[[str], Decision]
NameCheck = Callable[[str, int], Decision]


def build_policy(permission: WebSocketPermission, options: WebSocketOptions) -> NetPolicy:
    """The plugin's policy over its ``allowedUrls`` (plain patterns: websockets have no methods)."""
    return NetPolicy(
        list(permission.allowed_urls),
        allow_local_network=permission.allow_local_network,
        mode=options.mode,
        resolver=options.resolver,
    )


# -- events, errors, requests ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextMessage:
    message: str


@dataclass(frozen=True, slots=True)
class BinaryMessage:
    data: bytes


@dataclass(frozen=True, slots=True)
class PeerClosed:
    """The peer sent a close frame (1005 and ``""`` when it had no payload)."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ReadFailed:
    """A genuine read failure: reset, EOF without a close frame, protocol error, idle timeout."""

    error: str


Event = TextMessage | BinaryMessage | PeerClosed | ReadFailed
# Receives each event in order; answers whether the reader should go on reading.
Sink = Callable[[Event], bool]


def is_terminal(event: Event) -> bool:
    return isinstance(event, PeerClosed | ReadFailed)


class TransportError(Exception):
    """A transport failure; ``cause`` is the text that follows the original's error prefix."""

    def __init__(self, cause: str) -> None:
        self.cause = cause
        super().__init__(cause)


class DialError(TransportError):
    """Dial or handshake failed: the hard error ``failed to connect to WebSocket server: <cause>``."""


class SendError(TransportError):
    """A write failed: ``failed to send message: <cause>``."""


class CloseError(TransportError):
    """Closing the socket failed: the hard error ``error closing connection: <cause>``."""


class DialDenied(Exception):
    """The address actually about to be connected to was refused by the policy (connect-time check)."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.reason)


class ConnectionCapExceeded(Exception):
    """A connect was refused before dialling: one more open connection would pass ``cap``."""

    def __init__(self, cap: Cap) -> None:
        self.cap = cap
        super().__init__(cap.reached())


class ConnectionNotFound(LookupError):
    def __init__(self) -> None:
        super().__init__("connection not found")


@dataclass(frozen=True)
class DialRequest:
    """One connect, as the service hands it to the hub and the transport."""

    plugin_id: str
    connection_id: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    # The policy's name resolution (it vets every address) and its check of the address connected to;
    # None: plain getaddrinfo, no check (a transport used on its own).
    resolve: NameCheck | None = None
    guard: AddressCheck | None = None


@dataclass(frozen=True, slots=True)
class CloseFrame:
    """A close frame the host sent; ``code`` is None when the frame had no payload (code 1005)."""

    code: int | None
    reason: str = ""


def close_payload(code: int, reason: str) -> bytes | None:
    """gorilla's FormatCloseMessage; None when the frame is invalid (longer than a control frame allows)."""
    if code == NO_STATUS_RECEIVED:
        return b""
    payload = struct.pack("!H", code & 0xFFFF) + reason.encode()  # Go's uint16(code): wraps, any value
    return payload if len(payload) <= _MAX_CONTROL_PAYLOAD else None


def new_connection_id() -> str:
    """A 10-character NanoID, the original's generated connection id."""
    return "".join(secrets.choice(NANOID_ALPHABET) for _ in range(NANOID_LENGTH))


# -- the handshake request, built by gorilla's rules (shared by both transports) ---------------------------


@dataclass(frozen=True, slots=True)
class Handshake:
    """What the client handshake sends: target, request path, headers (names exactly as given)."""

    secure: bool
    host: str  # host name or address, no brackets
    port: int
    netloc: str  # host[:port] as the URL wrote it
    resource: str  # path?query
    headers: tuple[tuple[str, str], ...]
    host_header: str | None  # a "Host" entry replaces the request host, as in gorilla
    subprotocols: tuple[str, ...] | None

    @property
    def uri(self) -> str:
        """The URI handed to ``websockets``: its authority becomes the Host header."""
        return f"{'wss' if self.secure else 'ws'}://{self.host_header or self.netloc}{self.resource}"

    @property
    def address(self) -> str:
        return join_host_port(self.host, self.port)


def plan_handshake(url: str, headers: Mapping[str, str]) -> Handshake:
    """Parse the URL and apply gorilla's header rules; raise :class:`DialError` where its Dial failed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DialError(f'parse "{url}": {exc}') from exc
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss") or "@" in parts.netloc or not parts.hostname:
        raise DialError("malformed ws or wss URL")
    secure = scheme == "wss"
    host = parts.hostname
    with contextlib.suppress(httpx.InvalidURL, UnicodeDecodeError):
        # Connect to the host the policy vetted (httpx's reading: punycode, no brackets).
        host = httpx.URL(url).raw_host.decode("ascii") or host
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    sent: list[tuple[str, str]] = []
    host_header: str | None = None
    subprotocols: tuple[str, ...] | None = None
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise DialError(f'net/http: invalid header field name "{name}"')
        if _HEADER_VALUE_FORBIDDEN.search(value):
            raise DialError(f'net/http: invalid header field value for "{name}"')
        if name == "Host":
            host_header = value
        elif name in _DIALER_OWNED_HEADERS:
            raise DialError(f"websocket: duplicate header not allowed: {name}")
        elif name == "Sec-Websocket-Protocol":
            # gorilla forwards it as Sec-WebSocket-Protocol; offering the values as subprotocols sends the
            # same header and lets the server pick one of them.
            subprotocols = tuple(p.strip() for p in value.split(",") if p.strip())
        else:
            sent.append((name, value))
    return Handshake(
        secure=secure,
        host=host,
        port=port or (443 if secure else 80),
        netloc=parts.netloc,
        resource=resource,
        headers=tuple(sent),
        host_header=host_header,
        subprotocols=subprotocols,
    )


def _sockaddr(addr: Any) -> str:
    return join_host_port(str(addr[0]), int(addr[1]))


# -- the transport interface ------------------------------------------------------------------------


class Link(Protocol):
    """The host's end of one open connection."""

    def start(self, sink: Sink) -> None:
        """Begin reading; every event goes to ``sink``, strictly one after the other."""

    def send_text(self, message: str) -> None:
        """Write one text frame; raise :class:`SendError`."""

    def send_binary(self, data: bytes) -> None:
        """Write one binary frame; raise :class:`SendError`."""

    def close(self, code: int, reason: str) -> None:
        """Send a close frame (best effort, failure only logged) and close the socket; raise CloseError."""

    def abort(self) -> None:
        """Close the socket without a close frame; never raises."""


class Transport(Protocol):
    def dial(self, request: DialRequest) -> Link:
        """Open a connection; raise :class:`DialError` or :class:`DialDenied`."""

    def deliver_pending(self) -> int:
        """Deliver what is queued (scripted transports); answer how many events went."""

    def sweep(self) -> int:
        """Fire idle read timeouts that are due by the clock (scripted transports)."""

    def close(self) -> None:
        """Stop every thread the transport started and close every socket it still holds."""


# -- the real transport: websockets' threading client ------------------------------------------------


class RealTransport:
    """Real sockets through ``websockets.sync``: one reader thread per connection (plus websockets' own).

    The TCP connection is made here, to an address the policy approved and the guard re-checked, and handed
    to websockets with ``sock=``; TLS keeps the URL's host name for SNI and certificate checks. Like gorilla's
    dialer: no compression, no keepalive pings (pings are answered), no message size limit, no redirects;
    unlike it, no proxy from the environment (a proxy would connect to an address nobody checked).
    """

    def __init__(
        self,
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.handshake_timeout = handshake_timeout
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._links: list[_SocketLink] = []
        self._closed = False

    def dial(self, request: DialRequest) -> _SocketLink:
        plan = plan_handshake(request.url, request.headers)
        deadline = host_monotonic() + self.handshake_timeout
        sock = self._open_socket(plan, request, deadline)
        local, remote = _sockaddr(sock.getsockname()), _sockaddr(sock.getpeername())
        tls = (self._ssl_context or ssl.create_default_context()) if plan.secure else None
        try:
            ws = ws_connect(
                plan.uri,
                sock=sock,
                ssl=tls,
                server_hostname=plan.host if plan.secure else None,
                additional_headers=list(plan.headers),
                user_agent_header=GO_USER_AGENT,
                subprotocols=[Subprotocol(p) for p in plan.subprotocols] if plan.subprotocols else None,
                compression=None,
                open_timeout=max(deadline - host_monotonic(), 0.001),
                ping_interval=None,
                close_timeout=CLOSE_WRITE_TIMEOUT,
                max_size=None,
                proxy=None,
                legacy=True,
            )
        except Exception as exc:
            sock.close()
            raise DialError(_handshake_cause(exc, local, remote)) from exc
        link = _SocketLink(
            ws,
            name=f"wasmhost-websocket-{request.plugin_id}:{request.connection_id}",
            idle_timeout=self.idle_timeout,
            local=local,
            remote=remote,
        )
        with self._lock:
            closed = self._closed
            if not closed:
                # Forget links whose threads are gone; the rest are joined by close().
                self._links = [existing for existing in self._links if existing.alive()]
                self._links.append(link)
        if closed:
            link.abort()
            raise DialError("the host is shutting down")
        return link

    def _open_socket(self, plan: Handshake, request: DialRequest, deadline: float) -> socket.socket:
        refusal: Decision | None = None
        failure: str | None = None
        for ip in self._addresses(plan, request):
            if request.guard is not None:
                verdict = request.guard(ip)
                if not verdict.allowed:
                    refusal = refusal or verdict
                    continue
            target = join_host_port(ip, plan.port)
            remaining = deadline - host_monotonic()
            if remaining <= 0:
                failure = f"dial tcp {target}: i/o timeout"
                break
            try:
                sock = socket.create_connection((ip, plan.port), timeout=remaining)
            except TimeoutError:
                failure = f"dial tcp {target}: i/o timeout"
                continue
            except OSError as exc:
                failure = f"dial tcp {target}: connect: {errno_text(exc)}"
                continue
            sock.settimeout(None)
            return sock
        if failure is None and refusal is not None:
            raise DialDenied(refusal)
        raise DialError(failure or f"dial tcp: lookup {plan.host}: no such host")

    @staticmethod
    def _addresses(plan: Handshake, request: DialRequest) -> list[str]:
        """Where to connect: the policy resolves and vets (so its answer is what we connect to)."""
        if request.resolve is None:
            try:
                infos = socket.getaddrinfo(plan.host, plan.port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise DialError(f"dial tcp: lookup {plan.host}: {_lookup_text(exc)}") from exc
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        decision = request.resolve(plan.host, plan.port)
        if decision.allowed:
            return list(decision.addresses)
        if decision.code == "resolution-failed":
            # A name that does not resolve is a dial failure in the original (a hard error), not a refusal.
            raise DialError(f"dial tcp: {decision.reason}")
        raise DialDenied(decision)

    def threads(self) -> list[threading.Thread]:
        """The threads of the connections still tracked: our readers and websockets' receivers."""
        with self._lock:
            links = list(self._links)
        return [thread for link in links for thread in link.threads()]

    def sockets_open(self) -> int:
        """How many tracked connections still hold an open socket."""
        with self._lock:
            links = list(self._links)
        return sum(link.socket_open() for link in links)

    def deliver_pending(self) -> int:
        return 0  # reader threads deliver as frames arrive

    def sweep(self) -> int:
        return 0  # idle timeouts are real socket deadlines

    def close(self) -> None:
        with self._lock:
            self._closed = True
            links = list(self._links)  # kept: threads() / sockets_open() stay truthful after close
        for link in links:
            link.abort()
        for link in links:
            link.join(_JOIN_TIMEOUT)
            if link.alive():
                log.warning("websocket reader %s did not stop within %.0f s", link.name, _JOIN_TIMEOUT)


def _lookup_text(exc: OSError) -> str:
    no_such_host = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}
    if isinstance(exc, socket.gaierror) and exc.errno in no_such_host:
        return "no such host"
    return errno_text(exc)


def _handshake_cause(exc: Exception, local: str, remote: str) -> str:
    """The cause as gorilla/Go would word it (tests only rely on the prefix)."""
    cause = exc.__cause__
    if isinstance(exc, TimeoutError):
        return f"read tcp {local}->{remote}: i/o timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"tls: {exc.reason or exc}"
    if isinstance(exc, InvalidMessage) and isinstance(cause, EOFError):
        return "unexpected EOF"
    if isinstance(exc, InvalidHandshake) or isinstance(cause, InvalidHandshake):
        return "websocket: bad handshake"  # non-101 status (redirects included), bad Upgrade/Accept
    if isinstance(exc, OSError):
        return f"read tcp {local}->{remote}: {errno_text(exc)}"
    return str(exc) or type(exc).__name__


class _SocketLink:
    """One websockets client connection and the reader thread that feeds its events to the hub."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        name: str,
        idle_timeout: float | None,
        local: str,
        remote: str,
    ) -> None:
        self.name = name
        self.local = local
        self.remote = remote
        self._ws = ws
        self._idle_timeout = idle_timeout
        self._thread: threading.Thread | None = None

    def start(self, sink: Sink) -> None:
        # Daemon: an unclosed scope must not keep the interpreter alive; close() joins it.
        self._thread = threading.Thread(target=self._run, args=(sink,), name=self.name, daemon=True)
        self._thread.start()

    def _run(self, sink: Sink) -> None:
        try:
            while True:
                event = self._read()
                if event is None:
                    continue
                if not sink(event) or is_terminal(event):
                    return
        except Exception:  # a bug here must end this reader only, loudly
            log.exception("websocket reader %s failed", self.name)
            self.abort()

    def _read(self) -> Event | None:
        try:
            data = self._ws.recv(timeout=self._idle_timeout)
        except TimeoutError:
            return ReadFailed(f"read tcp {self.local}->{self.remote}: i/o timeout")
        except ConnectionClosed as exc:
            return _closed_event(exc, self.local, self.remote)
        except UnicodeDecodeError:
            # The original could not encode such a text for the callback: it logged and dropped it.
            log.warning("websocket %s: text frame is not valid UTF-8; dropped", self.name)
            return None
        except OSError as exc:
            return ReadFailed(f"read tcp {self.local}->{self.remote}: {errno_text(exc)}")
        if isinstance(data, str):
            return TextMessage(data)
        return BinaryMessage(bytes(data))

    def send_text(self, message: str) -> None:
        self._send(message)

    def send_binary(self, data: bytes) -> None:
        self._send(data)

    def _send(self, data: str | bytes) -> None:
        try:
            self._ws.send(data)  # websockets serialises writes on one connection
        except ConnectionClosed as exc:
            raise SendError("websocket: close sent") from exc
        except OSError as exc:
            raise SendError(f"write tcp {self.local}->{self.remote}: {errno_text(exc)}") from exc

    def close(self, code: int, reason: str) -> None:
        payload = close_payload(code, reason)
        if payload is None:
            log.info("websocket %s: close frame not sent: invalid control frame (reason too long)", self.name)
        else:
            self._write_close_frame(payload)
        try:
            self._close_socket()
        except OSError as exc:
            raise CloseError(errno_text(exc)) from exc

    def _write_close_frame(self, payload: bytes) -> None:
        # Written raw, as gorilla did: any code (0 included) and no waiting for the peer's reply, which
        # websockets' close() would do and would refuse codes it considers invalid.
        ws = self._ws
        try:
            with ws.protocol_mutex:
                if ws.protocol.state is not State.OPEN:
                    return
                ws.protocol.send_frame(Frame(Opcode.CLOSE, payload))
                ws.socket.settimeout(CLOSE_WRITE_TIMEOUT)
                ws.send_data()
        except Exception as exc:  # the original only logged a failed close frame
            log.info("websocket %s: close frame not sent: %s", self.name, exc)

    def _close_socket(self) -> None:
        self._ws.close_socket()  # wakes recv() and websockets' own thread
        self._ws.wait_closed(_JOIN_TIMEOUT)

    def abort(self) -> None:
        try:
            self._close_socket()
        except Exception as exc:
            log.debug("websocket %s: closing the socket failed: %s", self.name, exc)

    def threads(self) -> list[threading.Thread]:
        reader = [self._thread] if self._thread is not None else []
        return [*reader, self._ws.recv_events_thread]

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads())

    def socket_open(self) -> bool:
        return self._ws.socket.fileno() != -1

    def join(self, timeout: float) -> None:
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._ws.wait_closed(timeout)


def _closed_event(exc: ConnectionClosed, local: str, remote: str) -> Event:
    if exc.rcvd is not None:
        return PeerClosed(exc.rcvd.code, exc.rcvd.reason)  # websockets reads an empty payload as 1005
    cause = exc.__cause__
    if isinstance(cause, OSError):
        return ReadFailed(f"read tcp {local}->{remote}: {errno_text(cause)}")
    if exc.sent is not None and exc.sent.code != NORMAL_CLOSURE:
        # We failed the connection (the peer broke the protocol): gorilla reported the protocol error.
        return ReadFailed(f"websocket: {exc.sent.reason or f'close {exc.sent.code}'}")
    return ReadFailed("websocket: close 1006 (abnormal closure): unexpected EOF")


# -- options --------------------------------------------------------------------------------------------


class TransportFactory(Protocol):
    """Builds a scope's :class:`Transport` (one per scope: the hub closes it with the scope)."""

    def __call__(self, clock: Clock, options: WebSocketOptions) -> Transport: ...


@dataclass(frozen=True)
class WebSocketOptions:
    """The websocket service's settings of a scope (``HostOptions.websocket``; see the module docstring)."""

    #: None: real sockets (:class:`RealTransport`); else what builds the scope's transport.
    transport: TransportFactory | None = None
    mode: Literal["strict", "legacy"] = "strict"
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    handshake_timeout: float = DEFAULT_HANDSHAKE_TIMEOUT
    resolver: Resolver | None = None
    ssl_context: ssl.SSLContext | None = None
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    plugin_max_connections: int = DEFAULT_PLUGIN_MAX_CONNECTIONS

    def __post_init__(self) -> None:
        if self.transport is not None and not callable(self.transport):
            raise TypeError(
                "WebSocketOptions.transport must be None (real sockets) or a factory (clock, options) -> "
                f"Transport, got {self.transport!r}"
            )
        check_choice("WebSocketOptions", "mode", self.mode, ("strict", "legacy"))
        if self.resolver is not None and not callable(self.resolver):
            raise TypeError(f"WebSocketOptions.resolver must be callable(host, port), got {self.resolver!r}")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise TypeError(
                f"WebSocketOptions.ssl_context must be an ssl.SSLContext, got {self.ssl_context!r}"
            )
        _check_seconds("idle_timeout", self.idle_timeout, optional=True)
        _check_seconds("handshake_timeout", self.handshake_timeout, optional=False)
        check_positive("WebSocketOptions", "max_connections", self.max_connections)
        check_positive("WebSocketOptions", "plugin_max_connections", self.plugin_max_connections)

    def cap(self, setting: str) -> Cap:
        return Cap(
            "websocket", setting, getattr(self, setting), "open connections", setting.startswith("plugin_")
        )

    def build_transport(self, clock: Clock) -> Transport:
        if self.transport is None:
            return RealTransport(
                idle_timeout=self.idle_timeout,
                handshake_timeout=self.handshake_timeout,
                ssl_context=self.ssl_context,
            )
        return self.transport(clock, self)


def _check_seconds(name: str, value: object, *, optional: bool) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        allowed = "a positive number of seconds" + (" or None" if optional else "")
        raise ValueError(f"WebSocketOptions.{name} must be {allowed}, got {value!r}")


# -- the hub: the scope's connection registry -------------------------------------------------------------


class _Connection:
    """A registered connection; ``stopped`` once the plugin closed it or its reader ended."""

    def __init__(self, plugin_id: str, connection_id: str, url: str, link: Link) -> None:
        self.plugin_id = plugin_id
        self.connection_id = connection_id
        self.url = url
        self.link = link
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def key(self) -> tuple[str, str]:
        return (self.plugin_id, self.connection_id)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True

    def admit(self, event: Event) -> bool:
        """Whether ``event`` may still be delivered; a terminal event is the last one admitted."""
        with self._lock:
            if self._stopped:
                return False
            self._stopped = is_terminal(event)
            return True


class WebSocketHub:
    """Every WebSocket connection of one scope; closed (sockets and threads) when the scope closes."""

    def __init__(
        self, env: HostEnvironment, transport: Transport, *, options: WebSocketOptions | None = None
    ) -> None:
        self.env = env
        self.transport = transport
        self.options = options or WebSocketOptions()
        self._lock = threading.Lock()
        self._connections: dict[tuple[str, str], _Connection] = {}
        self._dialing: dict[str, int] = {}  # plugin id -> connects between the cap check and registration
        self.warnings = CapWarnings()
        self._closed = False

    @classmethod
    def for_env(cls, env: HostEnvironment) -> WebSocketHub:
        options = env.options.of(WebSocketOptions)
        return cls(env, options.build_transport(env.clock), options=options)

    # -- the registry, as tests see it ----------------------------------------------------------------

    def keys(self) -> list[str]:
        """Registered connections as the original keyed them: ``<pluginID>:<connection id>``."""
        with self._lock:
            return [f"{plugin}:{cid}" for plugin, cid in self._connections]

    def connection_ids(self, plugin_id: str) -> list[str]:
        with self._lock:
            return [cid for plugin, cid in self._connections if plugin == plugin_id]

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def __len__(self) -> int:
        with self._lock:
            return len(self._connections)

    def deliver_pending(self) -> int:
        return self.transport.deliver_pending()

    def sweep(self) -> int:
        """Fire the idle read timeouts due by the clock (in-memory transport); answer how many fired."""
        return self.transport.sweep()

    def new_connection_id(self, plugin_id: str) -> str:
        while True:
            candidate = new_connection_id()
            with self._lock:
                if (plugin_id, candidate) not in self._connections:
                    return candidate

    # -- the service's operations ---------------------------------------------------------------------

    def connect(self, request: DialRequest) -> None:
        """Dial and register; raise DialError / DialDenied / ConnectionCapExceeded (nothing dialled)."""
        plugin_id = request.plugin_id
        key = (plugin_id, request.connection_id)
        with self._lock:
            if self._closed:
                raise DialError("the host is shutting down")
            over = self._over_locked(plugin_id, key)
            if over is not None:
                raise ConnectionCapExceeded(self.options.cap(over))
            old = self._connections.pop(key, None)
            self._dialing[plugin_id] = self._dialing.get(plugin_id, 0) + 1  # holds its place while dialling
        try:
            if old is not None:
                self._retire(old)  # the original orphaned the old socket (defect 1)
            link = self.transport.dial(request)
            conn = _Connection(plugin_id, request.connection_id, request.url, link)
            with self._lock:
                closed = self._closed
                replaced = None if closed else self._connections.get(key)
                if not closed:
                    self._connections[key] = conn
        finally:
            with self._lock:
                left = self._dialing[plugin_id] - 1
                if left:
                    self._dialing[plugin_id] = left
                else:
                    del self._dialing[plugin_id]
        if closed:
            link.abort()
            raise DialError("the host is shutting down")
        if replaced is not None:
            self._retire(replaced)  # a concurrent connect with the same id got there first
        link.start(lambda event: self._on_event(conn, event))

    def _over_locked(self, plugin_id: str, key: tuple[str, str]) -> str | None:
        """The cap one more connection would pass; a connection this one replaces does not count."""
        reused = 1 if key in self._connections else 0
        mine = sum(1 for owner, _ in self._connections if owner == plugin_id) - reused
        if mine + self._dialing.get(plugin_id, 0) >= self.options.plugin_max_connections:
            return "plugin_max_connections"
        everyone = len(self._connections) - reused + sum(self._dialing.values())
        if everyone >= self.options.max_connections:
            return "max_connections"
        return None

    def send_text(self, plugin_id: str, connection_id: str, message: str) -> None:
        self._find(plugin_id, connection_id).link.send_text(message)

    def send_binary(self, plugin_id: str, connection_id: str, data: bytes) -> None:
        self._find(plugin_id, connection_id).link.send_binary(data)

    def close_connection(self, plugin_id: str, connection_id: str, code: int, reason: str) -> None:
        """The plugin's close: unregister, stop deliveries, close frame + socket; raise CloseError."""
        with self._lock:
            conn = self._connections.pop((plugin_id, connection_id), None)
        if conn is None:
            raise ConnectionNotFound()
        conn.stop()
        conn.link.close(code, reason)

    def _find(self, plugin_id: str, connection_id: str) -> _Connection:
        with self._lock:
            conn = self._connections.get((plugin_id, connection_id))
        if conn is None:
            raise ConnectionNotFound()
        return conn

    def _retire(self, conn: _Connection) -> None:
        conn.stop()
        try:
            conn.link.close(NORMAL_CLOSURE, "")
        except CloseError as exc:
            log.info("websocket %s:%s: closing the replaced connection failed: %s", *conn.key, exc.cause)

    def _unregister(self, conn: _Connection) -> None:
        with self._lock:
            if self._connections.get(conn.key) is conn:  # never drop a newer connection (defect 1)
                del self._connections[conn.key]

    # -- events -> the plugin's WebSocketCallback exports ----------------------------------------------

    def _on_event(self, conn: _Connection, event: Event) -> bool:
        """The reader's sink: runs on the connection's reader, never under the hub's lock."""
        if not conn.admit(event):
            return False  # the plugin closed it: nothing more is delivered
        if is_terminal(event):
            # Gone before the callback runs: inside it, the id is free for a reconnect and sends answer
            # "connection not found"; the socket is closed (the original leaked it, defect 2).
            self._unregister(conn)
            conn.link.abort()
        self._deliver(conn, event)
        return not is_terminal(event)

    def _deliver(self, conn: _Connection, event: Event) -> None:
        function, request = _callback(conn.connection_id, event)
        export = f"web_socket_callback_{function}"
        started = host_monotonic()
        response: Message | None = None
        verdict: Verdict = "ok"
        detail = ""
        call_plugin = self.env.call_plugin
        try:
            if call_plugin is None:
                raise LookupError("this scope has no plugin caller")
            reply = call_plugin(conn.plugin_id, export, request)
            response = getattr(reply, "response", None)
            error_text = getattr(reply, "error_text", None)
            if error_text:
                verdict, detail = "error", str(error_text)
        except Exception as exc:  # the original logged and dropped every callback failure
            verdict, detail = "error", str(exc) or type(exc).__name__
            if call_plugin is not None:  # the scope keeps it for the test to report
                self.env.callback_failed(
                    plugin_id=conn.plugin_id,
                    service="websocket",
                    export=export,
                    subject=f"connection {conn.connection_id!r}",
                    error=exc,
                )
        if verdict != "ok":
            log.warning("websocket %s:%s: %s dropped: %s", conn.plugin_id, conn.connection_id, export, detail)
        self.env.transcript.record(
            plugin_id=conn.plugin_id,
            service="websocket",
            function=function,
            request=request,
            response=response,
            verdict=verdict,
            detail=detail,
            duration=host_monotonic() - started,
        )

    # -- shutdown ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every connection (close frame 1001) and stop every thread; idempotent."""
        with self._lock:
            self._closed = True
            conns = list(self._connections.values())
            self._connections.clear()
        for conn in conns:
            conn.stop()
            try:
                conn.link.close(GOING_AWAY, "")
            except CloseError as exc:
                log.info("websocket %s:%s: close at shutdown failed: %s", *conn.key, exc.cause)
        self.transport.close()


def _callback(connection_id: str, event: Event) -> tuple[str, Message]:
    match event:
        case TextMessage(message=message):
            return "on_text_message", api_pb2.OnTextMessageRequest(
                connection_id=connection_id, message=message
            )
        case BinaryMessage(data=data):
            return "on_binary_message", api_pb2.OnBinaryMessageRequest(connection_id=connection_id, data=data)
        case PeerClosed(code=code, reason=reason):
            return "on_close", api_pb2.OnCloseRequest(connection_id=connection_id, code=code, reason=reason)
        case ReadFailed(error=error):
            return "on_error", api_pb2.OnErrorRequest(connection_id=connection_id, error=error)
    raise TypeError(f"not a websocket event: {event!r}")


def websocket_hub(env: HostEnvironment) -> WebSocketHub:
    """The scope's hub, created on first use from its :class:`WebSocketOptions`."""
    return env.shared("websocket", lambda: WebSocketHub.for_env(env))


# -- the service -----------------------------------------------------------------------------------------


class WebSocketService(HostService):
    """One plugin's ``env.connect`` / ``send_text`` / ``send_binary`` / ``close``.

    Its connections belong to the scope's hub: as in the original they outlive the plugin (closing the
    plugin closes nothing); the hub closes them with the scope.
    """

    name = "websocket"
    function_names = ("connect", "send_text", "send_binary", "close")

    @classmethod
    def create(cls, ctx: ServiceContext) -> WebSocketService:
        hub = websocket_hub(ctx.env)
        permission = ctx.manifest.permissions.websocket
        policy = (
            build_policy(permission, hub.options)
            if permission is not None and permission.allowed_urls
            else None
        )
        return cls(ctx.plugin_id, hub, policy)

    def __init__(self, plugin_id: str, hub: WebSocketHub, policy: NetPolicy | None) -> None:
        self.plugin_id = plugin_id
        self.hub = hub
        self._policy = policy  # None only when wired without a permission (a wiring failure)

    def connect(self, request: websocket_pb2.ConnectRequest) -> websocket_pb2.ConnectResponse:
        policy = self._policy
        if policy is None:
            raise HostHardError(self.name, "connect", "websocket service not properly initialized")
        # Names are resolved at dial time by the same policy, so an unknown host fails the dial (a hard
        # error, as in the original) instead of being refused.
        decision = policy.check_websocket(request.url, resolve=False)
        if not decision.allowed:
            raise _denied(decision, policy.explain(request.url, None, decision))
        note_rule(decision.label)
        connection_id = request.connection_id or self.hub.new_connection_id(self.plugin_id)
        dial = DialRequest(
            plugin_id=self.plugin_id,
            connection_id=connection_id,
            url=request.url,
            headers=dict(request.headers),
            resolve=policy.resolve,
            guard=policy.guard_address,
        )
        try:
            self.hub.connect(dial)
        except ConnectionCapExceeded as exc:
            self.hub.warnings.warn(
                self.plugin_id,
                exc.cap,
                "its connect calls answer an error (nothing dialled) until it closes some connections",
            )
            return websocket_pb2.ConnectResponse(error=f"failed to connect to WebSocket server: {exc}")
        except DialDenied as refusal:
            raise _denied(refusal.decision) from refusal
        except DialError as exc:
            raise HostHardError(
                self.name, "connect", f"failed to connect to WebSocket server: {exc.cause}"
            ) from exc
        return websocket_pb2.ConnectResponse(connection_id=connection_id)

    def send_text(self, request: websocket_pb2.SendTextRequest) -> websocket_pb2.SendTextResponse:
        return websocket_pb2.SendTextResponse(
            error=self._send(
                lambda: self.hub.send_text(self.plugin_id, request.connection_id, request.message)
            )
        )

    def send_binary(self, request: websocket_pb2.SendBinaryRequest) -> websocket_pb2.SendBinaryResponse:
        return websocket_pb2.SendBinaryResponse(
            error=self._send(
                lambda: self.hub.send_binary(self.plugin_id, request.connection_id, request.data)
            )
        )

    @staticmethod
    def _send(write: Callable[[], None]) -> str:
        try:
            write()
        except ConnectionNotFound as exc:
            return str(exc)
        except SendError as exc:
            return f"failed to send message: {exc.cause}"
        return ""

    def close_connection(self, request: websocket_pb2.CloseRequest) -> websocket_pb2.CloseResponse:
        """``env.close`` (``close()`` itself is the service's scope hook: connections outlive plugins)."""
        try:
            self.hub.close_connection(self.plugin_id, request.connection_id, request.code, request.reason)
        except ConnectionNotFound as exc:
            return websocket_pb2.CloseResponse(error=str(exc))
        except CloseError as exc:
            raise HostHardError(self.name, "close", f"error closing connection: {exc.cause}") from exc
        return websocket_pb2.CloseResponse()

    def functions(self) -> Sequence[HostFunction]:
        return (
            HostFunction(
                self.name,
                "connect",
                websocket_pb2.ConnectRequest,
                websocket_pb2.ConnectResponse,
                self.connect,
            ),
            HostFunction(
                self.name,
                "send_text",
                websocket_pb2.SendTextRequest,
                websocket_pb2.SendTextResponse,
                self.send_text,
            ),
            HostFunction(
                self.name,
                "send_binary",
                websocket_pb2.SendBinaryRequest,
                websocket_pb2.SendBinaryResponse,
                self.send_binary,
            ),
            HostFunction(
                self.name,
                "close",
                websocket_pb2.CloseRequest,
                websocket_pb2.CloseResponse,
                self.close_connection,
            ),
        )


def _denied(decision: Decision, explanation: str = "") -> Denied:
    # As the http service records it: the text the plugin got (with why, for the transcript only), and
    # "<reason code>: <deciding rule>".
    text = decision.error_text(WEBSOCKET_DENIAL_PREFIX)
    reason = with_explanation(text, explanation)
    return Denied(websocket_pb2.ConnectResponse(error=text), reason=reason, rule=decision.label)
