"""The ticker sample, tested the way a plugin author would: public fixtures and markers only.

Most tests run on the in-memory WebSocket transport (``wasm_websocket.peer(...)`` is the server side);
the last one talks to a real ``websockets`` server on 127.0.0.1.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from websockets.sync.server import Server, ServerConnection, serve

from pytest_wasmhost import WasmHostError, WebSocketOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_wasmhost import Plugin
    from pytest_wasmhost.doubles import MemoryWebSockets
    from pytest_wasmhost.fixtures import WasmCalls, WasmClock, WasmRuntime
    from pytest_wasmhost.host.base import HostCall
    from pytest_wasmhost.host.cache import CacheStore
    from pytest_wasmhost.host.scheduler import SchedulerEngine

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "ticker"
URL = "wss://feed.example.com/v1/prices"
CONFIG = {"url": URL, "symbols": "BTC, ETH ,"}
SUBSCRIBE = {"type": "subscribe", "symbols": ["BTC", "ETH"]}
WAIT = 5.0  # seconds: the bound of every wait on the real server


def request_of(call: HostCall) -> Any:
    """The decoded request of a transcript entry (it is None only when the bytes were unreadable)."""
    assert call.request is not None
    return call.request


def response_of(call: HostCall) -> Any:
    assert call.response is not None
    return call.response


@pytest.fixture
def ticker(wasm_load: Callable[..., Plugin]) -> Plugin:
    return wasm_load(PLUGIN, config=CONFIG)


def test_init_connects_and_subscribes(
    ticker: Plugin, wasm_websocket: MemoryWebSockets, wasm_calls: WasmCalls
) -> None:
    peer = wasm_websocket.peer("ticker")

    assert peer.url == URL
    assert peer.open
    assert json.loads(peer.expect_sent()) == SUBSCRIBE
    assert peer.sent == [json.dumps(SUBSCRIBE, separators=(",", ":"))]
    (connect,) = wasm_calls.assert_called("websocket", "connect", times=1, verdict="ok")
    assert request_of(connect).connection_id == "ticker"
    assert "ticker:ticker" in wasm_websocket


def test_a_price_is_cached_and_acknowledged(
    ticker: Plugin, wasm_websocket: MemoryWebSockets, wasm_cache: CacheStore, wasm_calls: WasmCalls
) -> None:
    peer = wasm_websocket.peer("ticker")
    peer.expect_sent()  # the subscription

    peer.push_text(json.dumps({"type": "price", "symbol": "BTC", "price": 42000.5}))
    peer.push_text(json.dumps({"type": "price", "symbol": "ETH", "price": "3100.25"}))

    assert json.loads(peer.expect_sent()) == {"type": "ack", "symbol": "BTC"}
    assert json.loads(peer.expect_sent()) == {"type": "ack", "symbol": "ETH"}
    assert wasm_cache.get("ticker", "price:BTC") == "42000.5"
    assert wasm_cache.get("ticker", "price:ETH") == "3100.25"
    wasm_calls.assert_called("cache", "set_string", times=2, verdict="ok")


def test_other_text_messages_are_ignored(
    ticker: Plugin, wasm_websocket: MemoryWebSockets, wasm_calls: WasmCalls
) -> None:
    peer = wasm_websocket.peer("ticker")

    peer.push_text(json.dumps({"type": "heartbeat"}))
    peer.push_text("not json")

    assert len(peer.sent) == 1  # only the subscription
    wasm_calls.assert_not_called("cache")
    wasm_calls.assert_called("websocket", "on_text_message", times=2, verdict="ok")


def test_binary_is_echoed_reversed(ticker: Plugin, wasm_websocket: MemoryWebSockets) -> None:
    peer = wasm_websocket.peer("ticker")
    peer.expect_sent()

    peer.push_binary(b"\x00\x01\x02\xff")

    assert peer.expect_sent() == b"\xff\x02\x01\x00"


def test_a_peer_close_schedules_a_reconnect(
    wasm_clock: WasmClock,
    ticker: Plugin,
    wasm_websocket: MemoryWebSockets,
    wasm_scheduler: SchedulerEngine,
    wasm_calls: WasmCalls,
) -> None:
    first = wasm_websocket.peer("ticker")
    first.expect_sent()

    first.close(1001, "going away")

    (job,) = wasm_scheduler.jobs()
    assert job.schedule_id == "reconnect"
    assert "ticker:ticker" not in wasm_websocket
    assert wasm_clock.advance(4) == []

    fired = wasm_clock.advance(2)

    assert [firing.schedule_id for firing in fired] == ["reconnect"]
    second = wasm_websocket.peer("ticker")
    assert second is not first
    assert second.open
    assert second.url == URL
    assert json.loads(second.expect_sent()) == SUBSCRIBE
    wasm_calls.assert_called("websocket", "connect", times=2, verdict="ok")
    wasm_calls.assert_called("scheduler", "schedule_one_time", times=1, verdict="ok")
    wasm_calls.assert_called("config", "get_plugin_config", times=1)  # re-read by the reconnect
    assert wasm_scheduler.jobs() == []


def test_an_error_is_only_logged(
    ticker: Plugin, wasm_websocket: MemoryWebSockets, wasm_scheduler: SchedulerEngine, wasm_calls: WasmCalls
) -> None:
    wasm_websocket.peer("ticker").fail()

    wasm_calls.assert_called("websocket", "on_error", times=1, verdict="ok")
    assert wasm_scheduler.jobs() == []
    wasm_calls.assert_called("websocket", "connect", times=1)


def test_missing_url_fails_init(wasm_load: Callable[..., Plugin], wasm_calls: WasmCalls) -> None:
    with pytest.raises(WasmHostError, match="Missing 'url' configuration"):
        wasm_load(PLUGIN, config={"symbols": "BTC"})
    wasm_calls.assert_not_called("websocket")


def test_a_url_outside_the_allow_list_is_refused(
    wasm_load: Callable[..., Plugin], wasm_calls: WasmCalls
) -> None:
    with pytest.raises(WasmHostError, match="Connection blocked by plugin permissions"):
        wasm_load(PLUGIN, config={"url": "wss://evil.example.net/feed", "symbols": "BTC"})

    (call,) = wasm_calls.assert_called("websocket", "connect", times=1, verdict="denied")
    assert response_of(call).error == (
        "Connection blocked by plugin permissions: "
        "URL wss://evil.example.net/feed does not match any allowed URL patterns"
    )
    assert response_of(call).connection_id == ""
    wasm_calls.assert_not_called("websocket", "send_text")


def test_a_local_server_needs_allow_local_network(
    wasm_load: Callable[..., Plugin], wasm_calls: WasmCalls
) -> None:
    with pytest.raises(WasmHostError, match="requests to localhost are not allowed"):
        wasm_load(PLUGIN, config={"url": "ws://127.0.0.1:9/feed", "symbols": "BTC"})
    wasm_calls.assert_called("websocket", "connect", times=1, verdict="denied")


# -- against a real server ------------------------------------------------------------------------------


class FeedServer:
    """A websockets server on 127.0.0.1:<ephemeral> that plays one scripted exchange per connection."""

    def __init__(self) -> None:
        self.received: queue.Queue[str | bytes] = queue.Queue()
        self.disconnected = threading.Event()
        self.close_answered: bool | None = None
        self.failure: BaseException | None = None
        self._server: Server = serve(self._handle, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-feed-server")

    def _handle(self, ws: ServerConnection) -> None:
        try:
            self.received.put(ws.recv(timeout=WAIT))  # subscribe
            ws.send(json.dumps({"type": "price", "symbol": "BTC", "price": 42000.5}))
            self.received.put(ws.recv(timeout=WAIT))  # ack
            ws.send(b"\x01\x02\x03")
            self.received.put(ws.recv(timeout=WAIT))  # the echo
            ws.close(1000, "bye")  # waits for the client's close frame (bounded by close_timeout)
            self.close_answered = ws.protocol.close_rcvd is not None
        except BaseException as exc:  # reported by the test
            self.failure = exc
        finally:
            self.disconnected.set()

    def next(self) -> str | bytes:
        return self.received.get(timeout=WAIT)

    def __enter__(self) -> FeedServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._thread.join(WAIT)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def test_against_a_real_server(wasm_runtime: WasmRuntime, feed_server: FeedServer) -> None:
    before = set(threading.enumerate())
    url = f"ws://127.0.0.1:{feed_server.port}/feed"
    permissions = {
        "websocket": {
            "reason": "a local test server",
            "allowedUrls": ["wss://feed.example.com/*", "ws://127.0.0.1:*"],
            "allowLocalNetwork": True,
        }
    }
    real_sockets = wasm_runtime.host_options.replace(websocket=WebSocketOptions())
    with wasm_runtime.fresh(host_options=real_sockets) as scope:
        scope.plugin(PLUGIN, config={"url": url, "symbols": "BTC"}, permissions=permissions)

        assert json.loads(feed_server.next()) == {"type": "subscribe", "symbols": ["BTC"]}
        assert json.loads(feed_server.next()) == {"type": "ack", "symbol": "BTC"}
        assert feed_server.next() == b"\x03\x02\x01"
        assert feed_server.disconnected.wait(WAIT)
        assert feed_server.failure is None
        assert feed_server.close_answered  # the host answered the server's close frame

        # The reader delivers on_close, then ends: wait for it (bounded), then look at what it did.
        readers = [t for t in threading.enumerate() if t.name == "wasmhost-websocket-ticker:ticker"]
        for reader in readers:
            reader.join(WAIT)
            assert not reader.is_alive()
        transcript = scope.transcript
        assert [c.verdict for c in transcript.calls("websocket", "connect")] == ["ok"]
        (cached,) = transcript.calls("cache", "set_string")
        assert (request_of(cached).key, request_of(cached).value) == ("price:BTC", "42000.5")
        (on_close,) = transcript.calls("websocket", "on_close")
        assert (request_of(on_close).code, request_of(on_close).reason) == (1000, "bye")
        (schedule,) = transcript.calls("scheduler", "schedule_one_time")
        assert request_of(schedule).schedule_id == "reconnect"

    # Threads the harness started (named wasmhost-*); the epoch ticker is the process-wide deadline clock
    # (started with the first engine), not a leak; the test server's own handler threads are not ours.
    leftover = [
        t
        for t in threading.enumerate()
        if t not in before
        and t.is_alive()
        and t.name.startswith("wasmhost-")
        and t.name != "wasmhost-epoch-ticker"
    ]
    assert leftover == [], f"threads left running after the scope closed: {leftover}"
    assert not [t for t in threading.enumerate() if t.name.startswith("wasmhost-websocket-")]
