"""The test double behind ``websocket``: scripted in-memory peers, no sockets, no sleeps.

:class:`MemoryTransport` implements the service's :class:`~pytest_wasmhost.host.websocket.Transport`: each
connection reaches a :class:`MemoryPeer` a test scripts as the server. Events are delivered synchronously on
``push_*`` (or on ``deliver_pending()`` with ``autodeliver`` off) and the idle read timeout is measured on the
scope's clock and fired by ``sweep()``, so tests never sleep. It never resolves names (a scripted peer has no
address): the URL check is the service's, the connect-time address check does not apply.

``HostOptions(websocket=WebSocketOptions(transport=MemoryTransportFactory()))`` gives every scope its own
transport (what the fixtures and the conformance suite do); ``wasm_websocket`` is a
:class:`MemoryWebSockets` over the test scope's hub and transport.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock
from pytest_wasmhost.host.websocket import (
    DEFAULT_IDLE_TIMEOUT,
    NO_STATUS_RECEIVED,
    NORMAL_CLOSURE,
    BinaryMessage,
    CloseError,
    CloseFrame,
    DialError,
    DialRequest,
    Event,
    Handshake,
    PeerClosed,
    ReadFailed,
    SendError,
    Sink,
    TextMessage,
    WebSocketHub,
    WebSocketOptions,
    close_payload,
    is_terminal,
    plan_handshake,
)

__all__ = ["MemoryPeer", "MemoryTransport", "MemoryTransportFactory", "MemoryWebSockets"]


class MemoryPeer:
    """The server end of one in-memory connection, scripted by a test.

    ``sent`` lists what the plugin sent (``str`` for text, ``bytes`` for binary); ``expect_sent()`` pops the
    oldest not yet expected. ``push_text`` / ``push_binary`` / ``close`` / ``fail`` act as the server; with
    ``autodeliver`` (the default) the plugin's callback runs before the call returns, else on
    ``deliver()`` / ``hub.deliver_pending()``. ``host_close`` is the close frame the host sent (plugin
    ``close``, id reuse, scope shutdown), ``open`` whether the host's socket is still open.
    """

    def __init__(self, transport: MemoryTransport, request: DialRequest, plan: Handshake) -> None:
        self.plugin_id = request.plugin_id
        self.connection_id = request.connection_id
        self.url = request.url
        self.headers: dict[str, str] = dict(request.headers)
        self.sent: list[str | bytes] = []
        self.host_close: CloseFrame | None = None
        self._plan = plan
        self._transport = transport
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._queue: deque[Event] = deque()
        self._sink: Sink | None = None
        self._open = True
        self._finished = False  # the host stopped reading
        self._peer_closed = False
        self._read_since = transport.clock.now()
        self._expected = 0
        self._send_failure: str | None = None
        self._close_failure: str | None = None

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"  # no lock: repr is used while holding it
        return f"<MemoryPeer {self.plugin_id}:{self.connection_id} {self.url} {state}>"

    @property
    def open(self) -> bool:
        with self._lock:
            return self._open

    @property
    def remote(self) -> str:
        return self._plan.address

    # -- scripting the server --------------------------------------------------------------------------

    def expect_sent(self) -> str | bytes:
        """The oldest message the plugin sent that no earlier ``expect_sent()`` returned."""
        with self._lock:
            if self._expected >= len(self.sent):
                raise AssertionError(
                    f"the plugin sent nothing more on {self.connection_id!r} (sent so far: {self.sent!r})"
                )
            message = self.sent[self._expected]
            self._expected += 1
            return message

    def push_text(self, message: str) -> None:
        self._push(TextMessage(message))

    def push_binary(self, data: bytes) -> None:
        self._push(BinaryMessage(bytes(data)))

    def close(self, code: int | None = NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close frame; ``code=None`` sends one without payload (the plugin sees 1005)."""
        self._push(PeerClosed(NO_STATUS_RECEIVED, "") if code is None else PeerClosed(code, reason))

    def fail(self, error: str = "websocket: close 1006 (abnormal closure): unexpected EOF") -> None:
        """Break the connection: the host's read fails with ``error``."""
        self._push(ReadFailed(error))

    def fail_sends(self, cause: str | None = "write: broken pipe") -> None:
        """Make the plugin's sends fail with ``failed to send message: <cause>`` (None: succeed again)."""
        with self._lock:
            self._send_failure = cause

    def fail_close(self, cause: str | None = "close: bad file descriptor") -> None:
        """Make the plugin's close fail hard with ``error closing connection: <cause>``."""
        with self._lock:
            self._close_failure = cause

    def deliver(self) -> int:
        """Hand every queued event to the host, in order; answer how many were processed."""
        processed = 0
        while True:
            if not self._drain_lock.acquire(blocking=False):
                # Another drain is running (possibly ours, re-entered from a callback): it takes them.
                return processed
            try:
                processed += self._drain()
            finally:
                self._drain_lock.release()
            with self._lock:
                if self._sink is None or self._finished or not self._queue:
                    return processed

    def _drain(self) -> int:
        processed = 0
        while True:
            with self._lock:
                if self._sink is None or self._finished or not self._queue:
                    return processed
                event, sink = self._queue.popleft(), self._sink
            processed += 1
            keep = sink(event)  # no lock held: the callback may send, close or push
            with self._lock:
                self._read_since = self._transport.clock.now()  # the deadline is re-armed per read
                if not keep or is_terminal(event):
                    self._finished = True

    def _push(self, event: Event) -> None:
        with self._lock:
            if not self._open or self._peer_closed:
                raise RuntimeError(f"{self!r} is closed; the server cannot send on it any more")
            self._peer_closed = is_terminal(event)
            self._queue.append(event)
        if self._transport.autodeliver:
            self.deliver()

    # -- the host's end (through _MemoryLink) -------------------------------------------------------------

    def _start(self, sink: Sink) -> None:
        with self._lock:
            self._sink = sink
            self._read_since = self._transport.clock.now()
        if self._transport.autodeliver:
            self.deliver()

    def _send(self, data: str | bytes) -> None:
        with self._lock:
            if self._send_failure is not None:
                raise SendError(self._send_failure)
            if not self._open:
                raise SendError("use of closed network connection")
            self.sent.append(data)

    def _close(self, code: int, reason: str) -> None:
        with self._lock:
            was_open, self._open, self._finished = self._open, False, True
            self._queue.clear()
            failure = self._close_failure
            if was_open:
                payload = close_payload(code, reason)
                if payload is not None:
                    self.host_close = CloseFrame(None if payload == b"" else code, reason)
        if failure is not None:
            raise CloseError(failure)

    def _abort(self) -> None:
        with self._lock:
            self._open = False
            self._finished = True
            self._queue.clear()

    def _expire(self, now: float) -> int:
        timeout = self._transport.idle_timeout
        with self._lock:
            idle = self._sink is not None and not self._finished and not self._queue
            if timeout is None or not idle or now - self._read_since < timeout:
                return 0
            if self._drain_lock.locked():
                return 0  # a callback is running: the read deadline is not armed
            self._queue.append(ReadFailed(f"read tcp memory->{self.remote}: i/o timeout"))
        self.deliver()
        return 1


class _MemoryLink:
    """The host's end of a :class:`MemoryPeer`."""

    def __init__(self, peer: MemoryPeer) -> None:
        self.peer = peer

    def start(self, sink: Sink) -> None:
        self.peer._start(sink)

    def send_text(self, message: str) -> None:
        self.peer._send(message)

    def send_binary(self, data: bytes) -> None:
        self.peer._send(bytes(data))

    def close(self, code: int, reason: str) -> None:
        self.peer._close(code, reason)

    def abort(self) -> None:
        self.peer._abort()


@dataclass(frozen=True, slots=True)
class _Refusal:
    cause: str
    url: str | None
    times: int | None


class MemoryTransport:
    """Connections to scripted :class:`MemoryPeer` servers; nothing leaves the process, nothing sleeps.

    The URL and headers go through the same handshake rules as the real transport (malformed URL, forbidden
    headers); ``refuse()`` makes dials fail like an unreachable server or a bad handshake. The idle read
    timeout is measured on ``clock`` and fired by ``sweep()`` / ``deliver_pending()``.
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        autodeliver: bool = True,
    ) -> None:
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.autodeliver = autodeliver
        self._lock = threading.Lock()
        self._peers: list[MemoryPeer] = []
        self._refusals: list[_Refusal] = []

    @property
    def peers(self) -> list[MemoryPeer]:
        """Every peer ever connected in this scope, oldest first (closed ones included)."""
        with self._lock:
            return list(self._peers)

    def refuse(
        self, cause: str = "websocket: bad handshake", *, url: str | None = None, times: int | None = None
    ) -> None:
        """Make dials to URLs starting with ``url`` (None: all) fail with ``cause``.

        ``times`` limits how many dials fail; None: until :meth:`accept`.
        """
        with self._lock:
            self._refusals.append(_Refusal(cause, url, times))

    def accept(self) -> None:
        """Forget every refusal."""
        with self._lock:
            self._refusals.clear()

    def dial(self, request: DialRequest) -> _MemoryLink:
        plan = plan_handshake(request.url, request.headers)
        with self._lock:
            for i, refusal in enumerate(self._refusals):
                if refusal.url is None or request.url.startswith(refusal.url):
                    if refusal.times is not None:
                        left = refusal.times - 1
                        if left > 0:
                            self._refusals[i] = _Refusal(refusal.cause, refusal.url, left)
                        else:
                            del self._refusals[i]
                    raise DialError(refusal.cause)
            peer = MemoryPeer(self, request, plan)
            self._peers.append(peer)
        return _MemoryLink(peer)

    def peer(self, connection_id: str, *, plugin_id: str | None = None) -> MemoryPeer:
        """The newest peer connected as ``connection_id`` (pass ``plugin_id`` if several plugins used it)."""
        with self._lock:
            found = [
                p
                for p in reversed(self._peers)
                if p.connection_id == connection_id and (plugin_id is None or p.plugin_id == plugin_id)
            ]
            known = sorted({f"{p.plugin_id}:{p.connection_id}" for p in self._peers})
        if not found:
            raise LookupError(f"no connection {connection_id!r} was opened; opened: {known}")
        if plugin_id is None and len({p.plugin_id for p in found}) > 1:
            raise LookupError(f"several plugins opened {connection_id!r}; pass plugin_id (opened: {known})")
        return found[0]

    def deliver_pending(self) -> int:
        processed = sum(peer.deliver() for peer in self.peers)
        return processed + self.sweep()

    def sweep(self) -> int:
        now = self.clock.now()
        return sum(peer._expire(now) for peer in self.peers)

    def close(self) -> None:
        for peer in self.peers:
            peer._abort()


@dataclass(frozen=True, slots=True)
class MemoryTransportFactory:
    """``WebSocketOptions.transport`` for in-memory peers: a fresh :class:`MemoryTransport` per scope, on the
    scope's clock and ``idle_timeout``; ``autodeliver=False`` queues events until ``deliver_pending()``."""

    autodeliver: bool = True

    def __call__(self, clock: Clock, options: WebSocketOptions) -> MemoryTransport:
        return MemoryTransport(clock=clock, idle_timeout=options.idle_timeout, autodeliver=self.autodeliver)


class MemoryWebSockets:
    """``wasm_websocket``: the server side of every WebSocket a test's plugins open, and the hub's registry.

    ``peer(connection_id)`` is the scripted server of a connection; ``"<plugin>:<id>" in wasm_websocket``,
    ``len()``, ``keys()`` and ``connection_ids()`` read the hub's open connections.
    """

    def __init__(self, hub: WebSocketHub) -> None:
        if not isinstance(hub.transport, MemoryTransport):
            raise TypeError(
                "only the in-memory transport has scripted peers; this scope's websocket transport is "
                f"{type(hub.transport).__name__} (use WebSocketOptions(transport=MemoryTransportFactory()))"
            )
        self.hub = hub
        self.transport: MemoryTransport = hub.transport

    def peer(self, connection_id: str, *, plugin_id: str | None = None) -> MemoryPeer:
        """The scripted server of a connection (pass ``plugin_id`` if several plugins used the id)."""
        return self.transport.peer(connection_id, plugin_id=plugin_id)

    @property
    def peers(self) -> list[MemoryPeer]:
        return self.transport.peers

    def refuse(
        self, cause: str = "websocket: bad handshake", *, url: str | None = None, times: int | None = None
    ) -> None:
        self.transport.refuse(cause, url=url, times=times)

    def accept(self) -> None:
        self.transport.accept()

    def deliver_pending(self) -> int:
        return self.hub.deliver_pending()

    def sweep(self) -> int:
        return self.hub.sweep()

    def keys(self) -> list[str]:
        return self.hub.keys()

    def connection_ids(self, plugin_id: str) -> list[str]:
        return self.hub.connection_ids(plugin_id)

    def __contains__(self, key: object) -> bool:
        return key in self.hub

    def __len__(self) -> int:
        return len(self.hub)

    def __repr__(self) -> str:
        return f"<MemoryWebSockets {self.hub.keys()}>"
