"""The presence sample (discord-rich-presence style), tested the way a plugin author would.

Public fixtures and markers only: ``wasm_http`` answers the Discord REST API, ``wasm_websocket.peer(user)``
is the gateway's side of a user's connection, and ``wasm_clock`` fires the heartbeats and the end of the
activity. Nothing sleeps and nothing leaves the process.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from pytest_wasmhost import PluginError

if TYPE_CHECKING:
    from pytest_wasmhost import Plugin
    from pytest_wasmhost.doubles import HttpMock, MemoryPeer, MemoryWebSockets
    from pytest_wasmhost.fixtures import WasmCalls, WasmClock
    from pytest_wasmhost.host.artwork import LiveArtworkOptions
    from pytest_wasmhost.host.base import HostCall
    from pytest_wasmhost.host.cache import CacheStore
    from pytest_wasmhost.host.scheduler import SchedulerEngine

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "presence"
CLIENT_ID = "1234567890"
CONFIG = {"clientid": CLIENT_ID, "users": "alice:token-a,bob:token-b"}
GATEWAY_API = "https://discord.com/api/gateway"
GATEWAY = "wss://gateway.discord.gg"
ASSETS_API = f"https://discord.com/api/v9/applications/{CLIENT_ID}/external-assets"
SHARE_URL = "https://music.example.com"
SEP = "\u200b"  # the named-callback separator of the schedule ids
HEARTBEAT_ID = f"heartbeat{SEP}alice"
CLOSE_ID = f"close-activity{SEP}alice"
TRACK: dict[str, Any] = {
    "id": "mf-1",
    "name": "Song One",
    "album": "First Album",
    "artists": [{"name": "Artist A"}, {"name": "Artist B"}],
    "length": 300,
    "position": 20,
}
IDENTIFY = {
    "op": 2,
    "d": {
        "token": "token-a",
        "intents": 0,
        "properties": {"os": "Windows 10", "browser": "Discord Client", "device": "Discord Client"},
    },
}
EMPTY_PRESENCE = {"op": 3, "d": {"activities": None, "status": "", "afk": False}}

pytestmark = [pytest.mark.wasm_plugin(str(PLUGIN)), pytest.mark.wasm_config(CONFIG)]


def request_of(call: HostCall) -> Any:
    """The decoded request of a transcript entry (None only when the bytes were unreadable)."""
    assert call.request is not None
    return call.request


def response_of(call: HostCall) -> Any:
    assert call.response is not None
    return call.response


def image_key(url: str) -> str:
    return "discord.image." + url.encode().hex()


@pytest.fixture
def presence(wasm_clock: WasmClock, wasm_plugin: Plugin, wasm_artwork: LiveArtworkOptions) -> Plugin:
    """The plugin, under the frozen test clock, with a public share URL for cover art."""
    wasm_artwork["share_url"] = SHARE_URL
    return wasm_plugin


@pytest.fixture
def gateway(wasm_http: HttpMock) -> Any:
    return wasm_http.get(GATEWAY_API).respond(200, json={"url": GATEWAY})


@pytest.fixture
def assets(wasm_http: HttpMock) -> Any:
    return wasm_http.post(ASSETS_API).respond(200, json=[{"external_asset_path": "external/cover-1"}])


def play(plugin: Plugin, track: dict[str, Any] | None = None, username: str = "alice") -> None:
    plugin.scrobbler.now_playing(user_id="u1", username=username, track=track or TRACK, timestamp=1)


def connected(
    plugin: Plugin, wasm_websocket: MemoryWebSockets, track: dict[str, Any] | None = None
) -> MemoryPeer:
    """Play a track and consume the identify and the presence the gateway received."""
    play(plugin, track)
    peer = wasm_websocket.peer("alice")
    assert json.loads(peer.expect_sent())["op"] == 2
    assert json.loads(peer.expect_sent())["op"] == 3
    return peer


# -- IsAuthorized --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "authorized"),
    [("alice", True), ("bob", True), ("carol", False), ("", False), ("Alice", False)],
)
def test_only_configured_users_are_authorized(wasm_plugin: Plugin, username: str, authorized: bool) -> None:
    assert wasm_plugin.scrobbler.is_authorized(user_id="u1", username=username) is authorized


@pytest.mark.wasm_config({"users": "alice:token-a"})
def test_nobody_is_authorized_without_a_client_id(wasm_plugin: Plugin) -> None:
    assert wasm_plugin.scrobbler.is_authorized(username="alice") is False


@pytest.mark.wasm_config({"clientid": CLIENT_ID, "users": "alice:token-a,bob"})
def test_a_malformed_users_entry_is_a_config_error(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    # alice's own entry is fine: she is refused only because the config as a whole is rejected.
    assert wasm_plugin.scrobbler.is_authorized(username="alice") is False
    with pytest.raises(PluginError, match=r"failed to get config: invalid user config: \"bob\""):
        play(wasm_plugin)
    wasm_calls.assert_not_called("websocket")
    wasm_calls.assert_not_called("http")


# -- NowPlaying ----------------------------------------------------------------------------------------


def test_now_playing_connects_identifies_and_shows_the_track(
    presence: Plugin,
    gateway: Any,
    assets: Any,
    wasm_clock: WasmClock,
    wasm_websocket: MemoryWebSockets,
    wasm_scheduler: SchedulerEngine,
    wasm_cache: CacheStore,
    wasm_calls: WasmCalls,
) -> None:
    now = int(wasm_clock.now().timestamp())

    result = presence.scrobbler.now_playing(username="alice", track=TRACK, timestamp=1)

    assert result.error == ""
    # No connection yet: the heartbeat probe fails, so the plugin asks for the gateway and connects.
    (probe, *_) = wasm_calls("websocket", "send_text")
    assert response_of(probe).error == "connection not found"
    assert gateway.call_count == 1
    peer = wasm_websocket.peer("alice")
    assert peer.url == GATEWAY
    assert peer.open
    assert json.loads(peer.expect_sent()) == IDENTIFY

    (artwork,) = wasm_calls.assert_called("artwork", "get_track_url", times=1)
    assert (request_of(artwork).id, request_of(artwork).size) == ("mf-1", 300)
    cover = response_of(artwork).url
    assert cover.startswith(f"{SHARE_URL}/share/img/")
    assert assets.call_count == 1
    posted = assets.calls.last.request
    assert json.loads(posted.content) == {"urls": [cover]}
    assert posted.headers["Authorization"] == "token-a"
    assert posted.headers["Content-Type"] == "application/json"

    start = (now - 20) * 1000
    assert json.loads(peer.expect_sent()) == {
        "op": 3,
        "d": {
            "activities": [
                {
                    "name": "Navidrome",
                    "type": 2,
                    "details": "Song One",
                    "state": "Artist A • Artist B",
                    "application_id": CLIENT_ID,
                    "timestamps": {"start": start, "end": start + 300_000},
                    "assets": {"large_image": "mp:external/cover-1", "large_text": "First Album"},
                }
            ],
            "status": "dnd",
            "afk": False,
        },
    }
    assert wasm_cache.items(presence.plugin_id) == {image_key(cover): "mp:external/cover-1"}
    (cached,) = wasm_calls.assert_called("cache", "set_string", times=1, verdict="ok")
    assert request_of(cached).ttl_seconds == 4 * 3600

    heartbeat, close = wasm_scheduler.jobs(presence.plugin_id)
    assert (heartbeat.schedule_id, heartbeat.type, heartbeat.expression) == (
        HEARTBEAT_ID,
        "recurring",
        "@every 41s",
    )
    assert (close.schedule_id, close.type) == (CLOSE_ID, "one-time")
    assert close.due == pytest.approx(wasm_clock.now().timestamp() + 300 - 20 + 5)
    (cancelled,) = wasm_calls.assert_called("scheduler", "cancel_schedule", times=1)
    assert request_of(cancelled).schedule_id == CLOSE_ID


def test_a_second_track_reuses_the_connection_and_the_cached_image(
    presence: Plugin,
    gateway: Any,
    assets: Any,
    wasm_clock: WasmClock,
    wasm_websocket: MemoryWebSockets,
    wasm_scheduler: SchedulerEngine,
    wasm_calls: WasmCalls,
) -> None:
    peer = connected(presence, wasm_websocket)
    wasm_clock.advance(10)

    play(presence, {**TRACK, "name": "Song Two", "position": 0})

    assert gateway.call_count == 1
    assert assets.call_count == 1  # the image came from the cache
    wasm_calls.assert_called("websocket", "connect", times=1)
    miss, hit = wasm_calls("cache", "get_string")
    assert (response_of(miss).exists, response_of(hit).exists) == (False, True)
    assert json.loads(peer.expect_sent()) == {"op": 1, "d": None}  # the reuse probe is a heartbeat
    update = json.loads(peer.expect_sent())
    assert update["d"]["activities"][0]["details"] == "Song Two"
    assert update["d"]["activities"][0]["assets"]["large_image"] == "mp:external/cover-1"
    assert wasm_websocket.peer("alice") is peer
    # The pending end of the first track was replaced by the second's.
    (close,) = [job for job in wasm_scheduler.jobs() if job.type == "one-time"]
    assert close.due == pytest.approx(wasm_clock.now().timestamp() + 300 + 5)


def test_an_unusable_cover_is_replaced_by_the_default_image(
    wasm_clock: WasmClock,
    wasm_plugin: Plugin,
    gateway: Any,
    wasm_http: HttpMock,
    wasm_websocket: MemoryWebSockets,
    wasm_calls: WasmCalls,
    wasm_cache: CacheStore,
) -> None:
    # No share URL: the artwork service answers http://localhost/..., which Discord cannot fetch.
    assets = wasm_http.post(ASSETS_API).respond(200, json=[{"external_asset_path": "external/default"}])

    play(wasm_plugin)

    (artwork,) = wasm_calls("artwork", "get_track_url")
    assert response_of(artwork).url.startswith("http://localhost")
    (default_image,) = json.loads(assets.calls.last.request.content)["urls"]
    assert not default_image.startswith("http://localhost")
    assert wasm_cache.items(wasm_plugin.plugin_id) == {image_key(default_image): "mp:external/default"}
    (cached,) = wasm_calls("cache", "set_string")
    assert request_of(cached).ttl_seconds == 48 * 3600
    peer = wasm_websocket.peer("alice")
    peer.expect_sent()
    assert (
        json.loads(peer.expect_sent())["d"]["activities"][0]["assets"]["large_image"] == "mp:external/default"
    )


def test_a_failed_conversion_falls_back_to_the_default_image(
    presence: Plugin, gateway: Any, wasm_http: HttpMock, wasm_websocket: MemoryWebSockets
) -> None:
    assets = wasm_http.post(ASSETS_API).mock(
        side_effect=[httpx.Response(500), httpx.Response(200, json=[{"external_asset_path": "external/d"}])]
    )

    play(presence)

    first, second = (json.loads(call.request.content)["urls"][0] for call in assets.calls)
    assert first.startswith(SHARE_URL)
    assert not second.startswith(SHARE_URL)
    peer = wasm_websocket.peer("alice")
    peer.expect_sent()
    assert json.loads(peer.expect_sent())["d"]["activities"][0]["assets"]["large_image"] == "mp:external/d"


def test_now_playing_of_an_unknown_user_is_an_error(presence: Plugin, wasm_calls: WasmCalls) -> None:
    with pytest.raises(PluginError, match='user "carol" not authorized'):
        play(presence, username="carol")
    wasm_calls.assert_not_called("http")
    wasm_calls.assert_not_called("websocket", "connect")


def test_a_gateway_lookup_failure_is_an_error(
    presence: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls
) -> None:
    wasm_http.get(GATEWAY_API).respond(503)

    with pytest.raises(
        PluginError, match="failed to connect to Discord: failed to get the Discord gateway: HTTP 503"
    ):
        play(presence)
    wasm_calls.assert_not_called("websocket", "connect")
    wasm_calls.assert_not_called("scheduler", "schedule_recurring")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        (GATEWAY, True),
        (f"{GATEWAY}/", True),
        (f"{GATEWAY}/?v=10&encoding=json", True),  # an exact pattern ignores the query
        (f"{GATEWAY}/ws", False),  # ... but not a path
        ("wss://gateway.example.net", False),
    ],
)
def test_the_manifest_admits_only_the_gateway(
    presence: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, url: str, allowed: bool
) -> None:
    wasm_http.get(GATEWAY_API).respond(200, json={"url": url})
    if allowed:
        wasm_http.post(ASSETS_API).respond(200, json=[{"external_asset_path": "x"}])
        play(presence)
        wasm_calls.assert_called("websocket", "connect", times=1, verdict="ok")
    else:
        with pytest.raises(PluginError, match="Connection blocked by plugin permissions"):
            play(presence)
        wasm_calls.assert_called("websocket", "connect", times=1, verdict="denied")


@pytest.mark.wasm_permissions(
    http={"reason": "gateway lookups only", "allowedUrls": {"https://discord.com/api/*": ["GET"]}}
)
def test_a_denied_image_conversion_leaves_the_activity_without_image(
    presence: Plugin, gateway: Any, wasm_websocket: MemoryWebSockets, wasm_calls: WasmCalls
) -> None:
    play(presence)

    posts = wasm_calls.assert_called("http", "post", times=2, verdict="denied")  # the cover, then the default
    assert "Request blocked by plugin permissions" in response_of(posts[0]).error
    peer = wasm_websocket.peer("alice")
    peer.expect_sent()
    activity = json.loads(peer.expect_sent())["d"]["activities"][0]
    assert activity["assets"] == {"large_image": "", "large_text": "First Album"}
    wasm_calls.assert_not_called("cache", "set_string")


# -- heartbeats ------------------------------------------------------------------------------------------


def test_heartbeats_send_null_until_the_gateway_sends_a_sequence(
    presence: Plugin,
    gateway: Any,
    assets: Any,
    wasm_clock: WasmClock,
    wasm_websocket: MemoryWebSockets,
    wasm_cache: CacheStore,
    wasm_calls: WasmCalls,
) -> None:
    peer = connected(presence, wasm_websocket)
    assert wasm_clock.advance(40) == []

    (fired,) = wasm_clock.advance(1)

    assert (fired.schedule_id, fired.is_recurring, fired.outcome) == (HEARTBEAT_ID, True, "ok")
    assert json.loads(peer.expect_sent()) == {"op": 1, "d": None}

    peer.push_text(json.dumps({"op": 0, "t": "READY", "s": 7, "d": {}}))
    peer.push_text(json.dumps({"op": 11}))  # a heartbeat ACK carries no sequence: nothing to store

    assert wasm_cache.get(presence.plugin_id, "discord.seq.alice") == 7
    (stored,) = wasm_calls.assert_called("cache", "set_int", times=1, verdict="ok")
    assert (request_of(stored).key, request_of(stored).ttl_seconds) == ("discord.seq.alice", 82)
    wasm_calls.assert_called("websocket", "on_text_message", times=2, verdict="ok")

    wasm_clock.advance(41)

    assert json.loads(peer.expect_sent()) == {"op": 1, "d": 7}
    assert peer.open


def test_a_failed_heartbeat_closes_the_connection_and_forgets_the_sequence(
    presence: Plugin,
    gateway: Any,
    assets: Any,
    wasm_clock: WasmClock,
    wasm_websocket: MemoryWebSockets,
    wasm_scheduler: SchedulerEngine,
    wasm_cache: CacheStore,
    wasm_calls: WasmCalls,
) -> None:
    peer = connected(presence, wasm_websocket)
    peer.push_text(json.dumps({"op": 0, "s": 3}))
    peer.fail_sends()

    (fired,) = wasm_clock.advance(41)

    assert fired.outcome == "error"
    assert (
        "heartbeat failed, connection cleaned up: failed to send message: write: broken pipe" in fired.error
    )
    assert not peer.open
    assert peer.host_close is not None
    assert (peer.host_close.code, peer.host_close.reason) == (1000, "Connection lost")
    assert "presence:alice" not in wasm_websocket
    assert wasm_cache.get(presence.plugin_id, "discord.seq.alice") is None
    wasm_calls.assert_called("cache", "remove", times=1)
    assert [job.schedule_id for job in wasm_scheduler.jobs()] == [CLOSE_ID]  # the heartbeat is cancelled
    (callback,) = wasm_calls("scheduler", "on_scheduler_callback")
    assert callback.verdict == "error"


def test_a_heartbeat_after_the_gateway_hung_up_cleans_up(
    presence: Plugin,
    gateway: Any,
    assets: Any,
    wasm_clock: WasmClock,
    wasm_websocket: MemoryWebSockets,
    wasm_scheduler: SchedulerEngine,
    wasm_calls: WasmCalls,
) -> None:
    peer = connected(presence, wasm_websocket)
    peer.close(4000, "unknown error")
    wasm_calls.assert_called("websocket", "on_close", times=1, verdict="ok")  # only logged

    (fired,) = wasm_clock.advance(41)

    assert fired.outcome == "error"
    assert "connection not found" in fired.error
    (close,) = wasm_calls.assert_called("websocket", "close", times=1)
    assert (request_of(close).code, request_of(close).reason) == (1000, "Connection lost")
    assert response_of(close).error == "connection not found"  # already gone
    assert [job.schedule_id for job in wasm_scheduler.jobs()] == [CLOSE_ID]


def test_a_gateway_message_that_is_not_json_is_an_error(
    presence: Plugin, gateway: Any, assets: Any, wasm_websocket: MemoryWebSockets, wasm_calls: WasmCalls
) -> None:
    peer = connected(presence, wasm_websocket)

    peer.push_text("not json")

    (call,) = wasm_calls.assert_called("websocket", "on_text_message", times=1, verdict="error")
    assert "failed to parse the gateway message" in call.detail
    assert peer.open  # the host logs the error and keeps reading
    with pytest.raises(PluginError, match="failed to parse the gateway message"):
        presence.web_socket_callback.on_text_message(connection_id="alice", message="[1]")
    wasm_calls.assert_not_called("cache", "set_int")


# -- end of the track -------------------------------------------------------------------------------------


def test_the_activity_is_cleared_after_the_track_ends(
    presence: Plugin,
    gateway: Any,
    assets: Any,
    wasm_clock: WasmClock,
    wasm_websocket: MemoryWebSockets,
    wasm_scheduler: SchedulerEngine,
    wasm_calls: WasmCalls,
) -> None:
    peer = connected(presence, wasm_websocket, {**TRACK, "length": 30, "position": 20})
    assert wasm_clock.advance(14) == []

    (fired,) = wasm_clock.advance(1)  # 30 - 20 + 5 s after NowPlaying

    assert (fired.schedule_id, fired.is_recurring, fired.outcome) == (CLOSE_ID, False, "ok")
    assert json.loads(peer.expect_sent()) == EMPTY_PRESENCE
    assert not peer.open
    assert peer.host_close is not None
    assert (peer.host_close.code, peer.host_close.reason) == (1000, "Navidrome disconnect")
    assert "presence:alice" not in wasm_websocket
    assert wasm_scheduler.jobs() == []
    cancels = [request_of(c).schedule_id for c in wasm_calls("scheduler", "cancel_schedule")]
    assert cancels == [CLOSE_ID, HEARTBEAT_ID]  # NowPlaying's, then the heartbeat
    assert wasm_clock.advance(120) == []  # no heartbeat any more


def test_a_new_track_postpones_the_end_of_the_activity(
    presence: Plugin,
    gateway: Any,
    assets: Any,
    wasm_clock: WasmClock,
    wasm_websocket: MemoryWebSockets,
) -> None:
    peer = connected(presence, wasm_websocket, {**TRACK, "length": 30, "position": 20})
    wasm_clock.advance(10)

    play(presence, {**TRACK, "length": 30, "position": 0})

    fired = wasm_clock.advance(34)  # past the first track's end: only the heartbeat fires

    assert [firing.schedule_id for firing in fired] == [HEARTBEAT_ID]
    assert peer.open
    (fired,) = wasm_clock.advance(1)
    assert fired.schedule_id == CLOSE_ID
    assert not peer.open


def test_scrobble_does_nothing(presence: Plugin, wasm_calls: WasmCalls) -> None:
    result = presence.scrobbler.scrobble(username="alice", track=TRACK, timestamp=1)

    assert result.error == ""
    assert len(wasm_calls) == 0


def test_an_unknown_schedule_is_an_error(presence: Plugin) -> None:
    with pytest.raises(PluginError, match="unknown schedule"):
        presence.scheduler_callback.on_scheduler_callback(schedule_id="alice")
