"""The scrobbler sample, tested the way a plugin author would: public fixtures and markers only.

The plugin talks to a REST-style service: now-playing is PUT, PATCHed (when OPTIONS allows it) and
DELETEd under ``/users/<u>/now-playing``; a scrobble is a HEAD of ``/users/<u>/scrobbles/<timestamp>``
then, unless already recorded, a POST to ``/users/<u>/scrobbles``. Failed scrobbles wait in a queue kept
with set_bytes; a 429 with Retry-After is a backoff kept with set_float.
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
    from pytest_wasmhost.doubles import HttpMock
    from pytest_wasmhost.fixtures import WasmCalls, WasmClock
    from pytest_wasmhost.host.base import HostCall
    from pytest_wasmhost.host.cache import CacheStore

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "scrobbler"
SERVICE = "https://scrobble.example.com"
NOW_PLAYING = f"{SERVICE}/users/alice/now-playing"
SCROBBLES = f"{SERVICE}/users/alice/scrobbles"
TRACK: dict[str, Any] = {
    "id": "mf-1",
    "name": "Song One",
    "album": "First Album",
    "artists": [{"name": "Artist A"}, {"name": "Artist B"}],
    "length": 180,
}
TRACK_TWO: dict[str, Any] = {**TRACK, "id": "mf-2", "name": "Song Two"}

pytestmark = [pytest.mark.wasm_plugin(str(PLUGIN)), pytest.mark.wasm_config({"users": "alice, bob ,"})]


def request_of(call: HostCall) -> Any:
    """The decoded request of a transcript entry (it is None only when the bytes were unreadable)."""
    assert call.request is not None
    return call.request


def response_of(call: HostCall) -> Any:
    assert call.response is not None
    return call.response


def play(track: dict[str, Any], timestamp: int, user: str = "alice") -> dict[str, Any]:
    """The JSON body the plugin sends for a play (PUT now-playing, POST scrobbles)."""
    return {
        "user": user,
        "track": track["name"],
        "album": track["album"],
        "artists": [a["name"] for a in track["artists"]],
        "timestamp": timestamp,
    }


def bodies(route: Any) -> list[Any]:
    return [json.loads(call.request.content) for call in route.calls]


def http_methods(wasm_calls: WasmCalls) -> list[str]:
    return [call.function for call in wasm_calls("http")]


# -- IsAuthorized ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "authorized"),
    [("alice", True), ("bob", True), ("carol", False), ("", False), ("Alice", False)],
)
def test_only_configured_users_are_authorized(wasm_plugin: Plugin, username: str, authorized: bool) -> None:
    assert wasm_plugin.scrobbler.is_authorized(user_id="u1", username=username) is authorized


@pytest.mark.wasm_config({})
def test_nobody_is_authorized_without_users(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    assert wasm_plugin.scrobbler.is_authorized(username="alice") is False
    wasm_calls.assert_not_called("http")


# -- NowPlaying --------------------------------------------------------------------------------------


def test_now_playing_puts_the_track(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    route = wasm_http.put(NOW_PLAYING).respond(204)

    wasm_plugin.scrobbler.now_playing(user_id="u1", username="alice", track=TRACK, timestamp=1700000000)

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == play(TRACK, 1700000000)
    (call,) = wasm_calls.assert_called("http", "put", times=1, verdict="ok")
    assert request_of(call).timeout_ms == 5000
    assert wasm_cache.items(wasm_plugin.plugin_id) == {"np:alice": "mf-1"}
    (remember,) = wasm_calls.assert_called("cache", "set_string", times=1)
    assert request_of(remember).ttl_seconds == 86400
    wasm_calls.assert_not_called("http", "options")  # a first report needs no PATCH


def test_the_username_is_path_escaped(wasm_load: Any, wasm_http: HttpMock) -> None:
    plugin = wasm_load(PLUGIN, config={"users": "ann/bee"})
    route = wasm_http.put(f"{SERVICE}/users/ann%2Fbee/now-playing").respond(204)

    plugin.scrobbler.now_playing(username="ann/bee", track=TRACK, timestamp=1)

    assert route.calls.last.request.url.raw_path == b"/users/ann%2Fbee/now-playing"


def test_a_repeated_track_is_patched_when_options_allows_it(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    put = wasm_http.put(NOW_PLAYING).respond(204)
    # Header names reach the plugin canonicalised; the plugin also matches method names case-insensitively.
    options = wasm_http.options(NOW_PLAYING).respond(204, headers={"allow": "get, put, patch, options"})
    patch = wasm_http.patch(NOW_PLAYING).respond(204)

    for position in (0, 30, 60):
        wasm_plugin.scrobbler.now_playing(
            username="alice", track={**TRACK, "position": position}, timestamp=1
        )

    assert put.call_count == 1
    assert options.call_count == 1  # asked once, then the cached answer is used
    assert bodies(patch) == [{"position": 30}, {"position": 60}]
    assert patch.calls.last.request.headers["Content-Type"] == "application/json"
    assert http_methods(wasm_calls) == ["put", "options", "patch", "patch"]
    (asked,) = wasm_calls.assert_called("http", "options", times=1, verdict="ok")
    assert response_of(asked).headers == {"Allow": "get, put, patch, options"}
    assert wasm_cache.get(wasm_plugin.plugin_id, "allow:alice") == "get, put, patch, options"
    lookups = [c for c in wasm_calls("cache", "get_string") if request_of(c).key == "allow:alice"]
    assert [response_of(c).exists for c in lookups] == [False, True]


def test_a_repeated_track_is_put_again_when_options_lacks_patch(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls
) -> None:
    put = wasm_http.put(NOW_PLAYING).respond(204)
    wasm_http.options(NOW_PLAYING).respond(200, headers={"Allow": "GET, PUT, DELETE, OPTIONS"})

    for _ in range(3):
        wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=5)

    assert bodies(put) == [play(TRACK, 5)] * 3
    assert http_methods(wasm_calls) == ["put", "options", "put", "put"]
    wasm_calls.assert_not_called("http", "patch")


@pytest.mark.wasm_http(assert_all_mocked=False)
def test_a_failed_options_falls_back_to_put_and_asks_again(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    # No OPTIONS route: with assert_all_mocked off, OPTIONS fails like an unreachable server.
    put = wasm_http.put(NOW_PLAYING).respond(204)

    for _ in range(3):
        wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=5)

    assert put.call_count == 3
    assert http_methods(wasm_calls) == ["put", "options", "put", "options", "put"]
    assert "allow:alice" not in wasm_cache.items(wasm_plugin.plugin_id)


def test_another_track_is_put_without_options(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    put = wasm_http.put(NOW_PLAYING).respond(204)

    wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=1)
    wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK_TWO, timestamp=2)

    assert bodies(put) == [play(TRACK, 1), play(TRACK_TWO, 2)]
    wasm_calls.assert_not_called("http", "options")
    assert wasm_cache.get(wasm_plugin.plugin_id, "np:alice") == "mf-2"


def test_a_rejected_now_playing_is_an_error_and_not_remembered(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_cache: CacheStore
) -> None:
    wasm_http.put(NOW_PLAYING).respond(400)

    with pytest.raises(PluginError, match="PUT /users/alice/now-playing answered 400"):
        wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=1)

    assert wasm_cache.items(wasm_plugin.plugin_id) == {}


@pytest.mark.wasm_permissions(
    http={"reason": "no PATCH", "allowedUrls": {f"{SERVICE}/*": ["PUT", "OPTIONS"]}}
)
def test_a_patch_the_manifest_does_not_grant_is_denied(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls
) -> None:
    wasm_http.put(NOW_PLAYING).respond(204)
    wasm_http.options(NOW_PLAYING).respond(204, headers={"Allow": "PUT, PATCH"})

    wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=1)
    expected = (
        "Request blocked by plugin permissions: operation PATCH not allowed for URL pattern "
        "https://scrobble.example.com/*"
    )
    with pytest.raises(PluginError, match=expected.replace(".", r"\.").replace("*", r"\*")):
        wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=1)

    (call,) = wasm_calls.assert_called("http", "patch", times=1, verdict="denied")
    assert response_of(call).error == expected
    assert response_of(call).status == 0


# -- Scrobble ----------------------------------------------------------------------------------------


def test_scrobble_heads_posts_and_ends_now_playing(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    wasm_http.put(f"{SERVICE}/users/bob/now-playing").respond(204)
    head = wasm_http.head(f"{SERVICE}/users/bob/scrobbles/1700000100").respond(404)
    post = wasm_http.post(f"{SERVICE}/users/bob/scrobbles").respond(201, json={"ok": True})
    delete = wasm_http.delete(f"{SERVICE}/users/bob/now-playing").respond(204)

    wasm_plugin.scrobbler.now_playing(username="bob", track=TRACK, timestamp=1700000000)
    assert wasm_cache.get(wasm_plugin.plugin_id, "np:bob") == "mf-1"
    wasm_plugin.scrobbler.scrobble(username="bob", track=TRACK, timestamp=1700000100)

    assert http_methods(wasm_calls) == ["put", "head", "post", "delete"]
    assert head.call_count == delete.call_count == 1
    assert bodies(post) == [play(TRACK, 1700000100, user="bob")]
    assert post.calls.last.request.headers["Content-Type"] == "application/json"
    assert delete.calls.last.request.content == b""
    # The track finished: the now-playing entry is gone and the last track is remembered.
    assert wasm_cache.items(wasm_plugin.plugin_id) == {"last:bob": "Song One"}
    (forget,) = wasm_calls.assert_called("cache", "remove", times=1, verdict="ok")
    assert request_of(forget).key == "np:bob"
    last = [c for c in wasm_calls("cache", "set_string") if request_of(c).key == "last:bob"]
    assert [request_of(c).ttl_seconds for c in last] == [86400]
    # An empty queue is read, not written.
    (queue,) = wasm_calls.assert_called("cache", "get_bytes", times=1)
    assert request_of(queue).key == "queue:bob"
    assert response_of(queue).exists is False
    wasm_calls.assert_not_called("cache", "set_bytes")


def test_a_recorded_scrobble_is_not_posted_again(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    wasm_http.head(f"{SCROBBLES}/1700000100").respond(200, headers={"Content-Length": "42"})
    wasm_http.delete(NOW_PLAYING).respond(204)

    wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=1700000100)

    assert http_methods(wasm_calls) == ["head", "delete"]
    wasm_calls.assert_not_called("http", "post")
    assert wasm_cache.get(wasm_plugin.plugin_id, "last:alice") == "Song One"


def test_a_failed_delete_does_not_fail_the_scrobble(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_cache: CacheStore
) -> None:
    wasm_http.head(f"{SCROBBLES}/7").respond(404)
    wasm_http.post(SCROBBLES).respond(201)
    wasm_http.delete(NOW_PLAYING).respond(500)

    wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=7)

    assert wasm_cache.get(wasm_plugin.plugin_id, "last:alice") == "Song One"


def test_failed_scrobbles_are_queued_and_flushed_in_order(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    one, two, three = play(TRACK, 100), play(TRACK_TWO, 200), play(TRACK, 300)
    wasm_http.head(url__regex=rf"^{SCROBBLES}/(100|200|300)$").respond(404)
    post = wasm_http.post(SCROBBLES).mock(
        side_effect=[
            httpx.Response(503),  # scrobble 1: the service fails
            httpx.ConnectError("connection refused"),  # scrobble 2: flushing 1 fails, 2 is queued behind it
            httpx.Response(201),  # scrobble 3: flush 1,
            httpx.Response(201),  # flush 2,
            httpx.Response(201),  # then 3 itself
        ]
    )
    wasm_http.delete(NOW_PLAYING).respond(204)
    queue = wasm_plugin.plugin_id, "queue:alice"

    with pytest.raises(PluginError, match="POST /users/alice/scrobbles answered 503"):
        wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=100)
    assert wasm_cache.get(*queue) == json.dumps(one, separators=(",", ":")).encode() + b"\n"

    with pytest.raises(PluginError, match="connection refused"):
        wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK_TWO, timestamp=200)
    queued = wasm_cache.get(*queue)
    assert isinstance(queued, bytes)
    assert [json.loads(line) for line in queued.splitlines()] == [one, two]
    assert "last:alice" not in wasm_cache.items(wasm_plugin.plugin_id)

    wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=300)

    assert bodies(post) == [one, one, one, two, three]
    # Each scrobble HEADs first; the queue is flushed once the service has answered.
    assert http_methods(wasm_calls) == [
        "head",
        "post",
        "head",
        "post",
        "head",
        "post",
        "post",
        "post",
        "delete",
    ]
    assert wasm_cache.get(*queue) == b""  # flushed: the queue is stored empty
    assert wasm_cache.get(wasm_plugin.plugin_id, "last:alice") == "Song One"
    writes = wasm_calls.assert_called("cache", "set_bytes", times=3, verdict="ok")
    assert {request_of(c).ttl_seconds for c in writes} == {604800}


def test_a_retried_scrobble_is_queued_once(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    wasm_http.head(f"{SCROBBLES}/1").respond(404)
    post = wasm_http.post(SCROBBLES).respond(502)

    for _ in range(3):  # the host retrying the same scrobble
        with pytest.raises(PluginError, match="POST /users/alice/scrobbles answered 502"):
            wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=1)

    # The first attempt, then per retry only the queued copy: the flush stops at its failure.
    assert bodies(post) == [play(TRACK, 1)] * 3
    assert wasm_cache.get(wasm_plugin.plugin_id, "queue:alice") == (
        json.dumps(play(TRACK, 1), separators=(",", ":")).encode() + b"\n"
    )
    wasm_calls.assert_called("cache", "set_bytes", times=1)


def test_a_rejected_scrobble_is_an_error_and_not_queued(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    wasm_http.head(f"{SCROBBLES}/1").respond(404)
    wasm_http.post(SCROBBLES).respond(400, json={"error": "bad timestamp"})

    with pytest.raises(PluginError, match="POST /users/alice/scrobbles answered 400"):
        wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=1)

    assert wasm_cache.items(wasm_plugin.plugin_id) == {}
    wasm_calls.assert_not_called("cache", "set_bytes")
    wasm_calls.assert_not_called("http", "delete")


@pytest.mark.wasm_permissions(http={"reason": "lookups only", "allowedUrls": {f"{SERVICE}/*": ["HEAD"]}})
def test_a_denied_scrobble_is_an_error_and_not_queued(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    wasm_http.head(f"{SCROBBLES}/1").respond(404)

    with pytest.raises(
        PluginError, match="Request blocked by plugin permissions: operation POST not allowed"
    ):
        wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=1)

    wasm_calls.assert_called("http", "post", times=1, verdict="denied")
    wasm_calls.assert_not_called("cache", "set_bytes")  # retrying cannot help
    assert wasm_cache.items(wasm_plugin.plugin_id) == {}


# -- Rate limiting -----------------------------------------------------------------------------------


def test_retry_after_backs_off_until_it_expires(
    wasm_plugin: Plugin,
    wasm_http: HttpMock,
    wasm_calls: WasmCalls,
    wasm_cache: CacheStore,
    wasm_clock: WasmClock,
) -> None:
    put = wasm_http.put(NOW_PLAYING).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "1.5"}), httpx.Response(204)]
    )

    with pytest.raises(PluginError, match=r"scrobbler: rate limited, retry in 1\.5 s"):
        wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=1)
    assert wasm_cache.get(wasm_plugin.plugin_id, "backoff") == 1.5
    (stored,) = wasm_calls.assert_called("cache", "set_float", times=1, verdict="ok")
    assert request_of(stored).ttl_seconds == 2  # the seconds, rounded up

    # While backing off, nothing reaches the service; a scrobble waits in the queue.
    with pytest.raises(PluginError, match=r"rate limited, retry in 1\.5 s"):
        wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=2)
    with pytest.raises(PluginError, match=r"rate limited, retry in 1\.5 s"):
        wasm_plugin.scrobbler.scrobble(username="bob", track=TRACK, timestamp=3)
    assert len(wasm_http.requests) == 1
    assert wasm_cache.get(wasm_plugin.plugin_id, "queue:bob") == (
        json.dumps(play(TRACK, 3, user="bob"), separators=(",", ":")).encode() + b"\n"
    )

    wasm_clock.advance(2.5)
    assert "backoff" not in wasm_cache.items(wasm_plugin.plugin_id)
    wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=4)

    assert put.call_count == 2
    assert json.loads(put.calls.last.request.content) == play(TRACK, 4)
    lookups = wasm_calls.assert_called("cache", "get_float", times=4, verdict="ok")
    assert [response_of(c).exists for c in lookups] == [False, True, True, False]


def test_each_fail_fast_read_slides_the_backoff(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_cache: CacheStore, wasm_clock: WasmClock
) -> None:
    # The cache slides an entry's expiry on every read, so a call during the backoff extends it.
    wasm_http.head(f"{SCROBBLES}/1").respond(429, headers={"Retry-After": "2"})

    with pytest.raises(PluginError, match="rate limited, retry in 2 s"):
        wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=1)
    wasm_clock.advance(1.5)
    with pytest.raises(PluginError, match="rate limited, retry in 2 s"):
        wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=2)
    wasm_clock.advance(1.5)  # 3 s after the 429, but only 1.5 s after the last read

    assert wasm_cache.get(wasm_plugin.plugin_id, "backoff") == 2.0
    wasm_clock.advance(1)
    assert wasm_cache.get(wasm_plugin.plugin_id, "backoff") is None


def test_a_429_without_retry_after_is_an_error_without_backoff(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls
) -> None:
    wasm_http.put(NOW_PLAYING).respond(429)

    for _ in range(2):
        with pytest.raises(PluginError, match="PUT /users/alice/now-playing answered 429"):
            wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=1)

    wasm_calls.assert_called("http", "put", times=2)
    wasm_calls.assert_not_called("cache", "set_float")
