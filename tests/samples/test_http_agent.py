"""The http_agent sample, tested the way a plugin author would: public fixtures and markers only."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_wasmhost import NotFoundByPlugin, NotImplementedByPlugin

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_wasmhost import Plugin
    from pytest_wasmhost.doubles import HttpMock
    from pytest_wasmhost.fixtures import WasmCalls
    from pytest_wasmhost.host.base import HostCall
    from pytest_wasmhost.host.cache import CacheStore

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "http_agent"
API = "https://api.example.com"

pytestmark = pytest.mark.wasm_plugin(str(PLUGIN))


def request_of(call: HostCall) -> Any:
    """The decoded request of a transcript entry (it is None only when the bytes were unreadable)."""
    assert call.request is not None
    return call.request


def response_of(call: HostCall) -> Any:
    assert call.response is not None
    return call.response


def test_artist_url_comes_from_the_json_answer(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls
) -> None:
    route = wasm_http.get(f"{API}/artist", params={"name": "Test Artist & Co"}).respond(
        200, json={"url": "https://music.example.com/test-artist"}, headers={"X-Served-By": "mock"}
    )

    response = wasm_plugin.metadata_agent.get_artist_url(id="ar-1", name="Test Artist & Co")

    assert response.url == "https://music.example.com/test-artist"
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.url.raw_path == b"/artist?name=Test+Artist+%26+Co"
    assert request.headers["Accept"] == "application/json"
    (call,) = wasm_calls.assert_called("http", "get", times=1, verdict="ok")
    assert request_of(call).timeout_ms == 5000
    assert response_of(call).status == 200
    assert response_of(call).headers["X-Served-By"] == "mock"


@pytest.mark.wasm_config({"endpoint": "https://api.example.com/v2/"})
def test_the_endpoint_comes_from_the_config(wasm_plugin: Plugin, wasm_http: HttpMock) -> None:
    wasm_http.get(f"{API}/v2/artist", params={"name": "X"}).respond(200, json={"url": "https://x.example"})

    assert wasm_plugin.metadata_agent.get_artist_url(name="X").url == "https://x.example"


def test_biography_is_posted_as_a_form_and_cached(
    wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls, wasm_cache: CacheStore
) -> None:
    route = wasm_http.post(f"{API}/bio").respond(200, text="A band from somewhere.")

    first = wasm_plugin.metadata_agent.get_artist_biography(id="ar-1", name="Test Artist")
    second = wasm_plugin.metadata_agent.get_artist_biography(id="ar-1", name="Test Artist")

    assert first.biography == second.biography == "A band from somewhere."
    assert route.call_count == 1  # the second answer came from the cache
    request = route.calls.last.request
    assert request.content == b"name=Test+Artist"
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    (set_call,) = wasm_calls.assert_called("cache", "set_string", times=1, verdict="ok")
    assert request_of(set_call).key == "bio:Test Artist"
    assert request_of(set_call).ttl_seconds == 3600
    lookups = wasm_calls.assert_called("cache", "get_string", times=2, verdict="ok")
    assert [response_of(call).exists for call in lookups] == [False, True]
    wasm_calls.assert_called("http", "post", times=1)


def test_non_200_is_not_found(wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls) -> None:
    wasm_http.get(f"{API}/artist", params={"name": "Nobody"}).respond(404, json={"url": "ignored"})
    wasm_http.post(f"{API}/bio").respond(500, text="oops")

    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_artist_url(name="Nobody")
    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_artist_biography(name="Nobody")
    wasm_calls.assert_not_called("cache", "set_string")


@pytest.mark.wasm_http(assert_all_mocked=False)
def test_a_transport_error_is_not_found(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    # No route: with assert_all_mocked off, the request fails like an unreachable server.
    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_artist_url(name="Slow")
    (call,) = wasm_calls("http", "get")
    assert response_of(call).error
    assert response_of(call).status == 0


def test_empty_name_is_not_found_without_http(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_artist_url(name="")
    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_artist_biography(name="")
    wasm_calls.assert_not_called("http")


def test_other_methods_are_not_implemented(wasm_plugin: Plugin) -> None:
    agent = wasm_plugin.metadata_agent
    calls: list[Callable[[], object]] = [
        lambda: agent.get_artist_mbid(name="X"),
        lambda: agent.get_similar_artists(name="X", limit=1),
        lambda: agent.get_artist_images(name="X"),
        lambda: agent.get_artist_top_songs(artist_name="X", count=1),
        lambda: agent.get_album_info(name="A", artist="X"),
        lambda: agent.get_album_images(name="A", artist="X"),
    ]
    for call in calls:
        with pytest.raises(NotImplementedByPlugin):
            call()


def test_a_url_outside_the_allow_list_is_denied(
    wasm_load: Callable[..., Plugin], wasm_calls: WasmCalls
) -> None:
    plugin = wasm_load(
        PLUGIN,
        permissions={"http": {"reason": "x", "allowedUrls": {"https://other.example.com/*": ["GET"]}}},
    )

    with pytest.raises(NotFoundByPlugin):
        plugin.metadata_agent.get_artist_url(name="Test Artist")

    (call,) = wasm_calls.assert_called("http", "get", times=1, verdict="denied")
    expected = (
        "Request blocked by plugin permissions: URL https://api.example.com/artist?name=Test+Artist "
        "does not match any allowed URL patterns"
    )
    assert response_of(call).error == expected
    assert response_of(call).status == 0


def test_an_unpermitted_method_is_denied(
    wasm_load: Callable[..., Plugin], wasm_http: HttpMock, wasm_calls: WasmCalls
) -> None:
    plugin = wasm_load(
        PLUGIN, permissions={"http": {"reason": "x", "allowedUrls": {"https://api.example.com/*": ["GET"]}}}
    )
    wasm_http.get(f"{API}/artist").respond(200, json={"url": "https://ok.example"})

    assert plugin.metadata_agent.get_artist_url(name="A").url == "https://ok.example"
    with pytest.raises(NotFoundByPlugin):
        plugin.metadata_agent.get_artist_biography(name="A")

    (call,) = wasm_calls.assert_called("http", "post", times=1, verdict="denied")
    assert response_of(call).error == (
        "Request blocked by plugin permissions: operation POST not allowed for URL pattern "
        "https://api.example.com/*"
    )
    wasm_calls.assert_not_called("cache", "set_string")


def test_allowed_calls_carry_the_rule_that_allowed_them(
    wasm_load: Any, wasm_http: Any, wasm_calls: Any
) -> None:
    plugin = wasm_load(PLUGIN, config={"endpoint": "https://api.example.com"})
    wasm_http.get("https://api.example.com/artist", params={"name": "Ann"}).respond(
        200, json={"url": "https://example.com/ann"}
    )
    plugin.metadata_agent.get_artist_url(name="Ann")
    (call,) = wasm_calls.assert_called("http", "get", verdict="ok")
    assert call.rule is not None
    assert "https://api.example.com/*" in call.rule
