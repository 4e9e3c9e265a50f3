"""The scrobbler sample, tested the way a plugin author would: public fixtures and markers only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_wasmhost import PluginError

if TYPE_CHECKING:
    from pytest_wasmhost import Plugin
    from pytest_wasmhost.fixtures import WasmCalls
    from pytest_wasmhost.host.base import HostCall
    from pytest_wasmhost.host.cache import CacheStore
    from pytest_wasmhost.mocks import HttpMock

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "scrobbler"
SERVICE = "https://scrobble.example.com"
TRACK: dict[str, Any] = {
    "id": "mf-1",
    "name": "Song One",
    "album": "First Album",
    "artists": [{"name": "Artist A"}, {"name": "Artist B"}],
    "length": 180,
}

pytestmark = [pytest.mark.wasm_plugin(str(PLUGIN)), pytest.mark.wasm_config({"users": "alice, bob ,"})]


def request_of(call: HostCall) -> Any:
    assert call.request is not None
    return call.request


@pytest.mark.parametrize(
    ("username", "authorized"),
    [("alice", True), ("bob", True), ("carol", False), ("", False), ("Alice", False)],
)
def test_only_configured_users_are_authorized(wasm_plugin: Plugin, username: str, authorized: bool) -> None:
    assert wasm_plugin.scrobbler.is_authorized(user_id="u1", username=username) is authorized


@pytest.mark.wasm_config({})
def test_nobody_is_authorized_without_users(wasm_plugin: Plugin) -> None:
    assert wasm_plugin.scrobbler.is_authorized(username="alice") is False


def test_now_playing_posts_json(wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls) -> None:
    route = wasm_http.post(f"{SERVICE}/now").respond(204)

    wasm_plugin.scrobbler.now_playing(user_id="u1", username="alice", track=TRACK, timestamp=1700000000)

    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {
        "user": "alice",
        "track": "Song One",
        "album": "First Album",
        "artists": ["Artist A", "Artist B"],
        "timestamp": 1700000000,
    }
    (call,) = wasm_calls.assert_called("http", "post", times=1, verdict="ok")
    assert request_of(call).timeout_ms == 5000
    wasm_calls.assert_not_called("cache")


def test_scrobble_posts_and_caches_the_track(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    route = wasm_http.post(f"{SERVICE}/scrobble").respond(200, json={"ok": True})

    wasm_plugin.scrobbler.scrobble(username="bob", track=TRACK, timestamp=1700000100)
    wasm_plugin.scrobbler.scrobble(username="bob", track={**TRACK, "name": "Song Two"}, timestamp=1700000300)

    assert route.call_count == 2
    assert [json.loads(c.request.content)["track"] for c in route.calls] == ["Song One", "Song Two"]
    assert wasm_cache.get(wasm_plugin.plugin_id, "last:bob") == "Song Two"
    assert wasm_cache.items(wasm_plugin.plugin_id) == {"last:bob": "Song Two"}
    calls = wasm_calls.assert_called("cache", "set_string", times=2, verdict="ok")
    assert request_of(calls[0]).ttl_seconds == 86400


def test_a_failed_scrobble_is_an_error_and_not_cached(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_cache: CacheStore, wasm_calls: WasmCalls
) -> None:
    wasm_http.post(f"{SERVICE}/scrobble").respond(503)

    with pytest.raises(PluginError, match="/scrobble answered 503"):
        wasm_plugin.scrobbler.scrobble(username="alice", track=TRACK, timestamp=1)

    assert wasm_cache.items(wasm_plugin.plugin_id) == {}
    wasm_calls.assert_not_called("cache", "set_string")


@pytest.mark.wasm_permissions(http={"reason": "x", "allowedUrls": {f"{SERVICE}/scrobble": ["POST"]}})
def test_a_denied_now_playing_is_an_error(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    with pytest.raises(PluginError, match="Request blocked by plugin permissions"):
        wasm_plugin.scrobbler.now_playing(username="alice", track=TRACK, timestamp=1)
    wasm_calls.assert_called("http", "post", times=1, verdict="denied")
