"""The coverart_agent sample, tested the way a plugin author would: public fixtures and markers only."""

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

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "coverart_agent"
MBID = "76df3287-6cda-33eb-8e9a-044b5e15ffdd"
RELEASE = f"https://coverartarchive.org/release/{MBID}"

pytestmark = pytest.mark.wasm_plugin(str(PLUGIN))


def response_of(call: HostCall) -> Any:
    assert call.response is not None
    return call.response


def request_of(call: HostCall) -> Any:
    assert call.request is not None
    return call.request


def image(url: str, **fields: Any) -> dict[str, Any]:
    return {"image": url, "front": False, "types": [], "thumbnails": {}, **fields}


def sizes(response: Any) -> list[tuple[str, int]]:
    return sorted((img.url, img.size) for img in response.images)


def test_front_image_thumbnails(wasm_plugin: Plugin, wasm_http: HttpMock, wasm_calls: WasmCalls) -> None:
    route = wasm_http.get(RELEASE).respond(
        200,
        json={
            "images": [
                image("https://ia.example/back.jpg", thumbnails={"250": "https://ia.example/back-250.jpg"}),
                image(
                    "https://ia.example/front.jpg",
                    front=True,
                    types=["Front"],
                    thumbnails={
                        "250": "https://ia.example/front-250.jpg",
                        "500": "https://ia.example/front-500.jpg",
                        "1200": "https://ia.example/front-1200.jpg",
                        "small": "https://ia.example/front-small.jpg",
                        "large": "https://ia.example/front-large.jpg",
                    },
                ),
            ]
        },
    )

    response = wasm_plugin.metadata_agent.get_album_images(name="Album", artist="Artist", mbid=MBID)

    assert sizes(response) == [
        ("https://ia.example/front-1200.jpg", 1200),
        ("https://ia.example/front-250.jpg", 250),
        ("https://ia.example/front-500.jpg", 500),
    ]
    assert route.call_count == 1
    (call,) = wasm_calls.assert_called("http", "get", times=1, verdict="ok")
    assert request_of(call).timeout_ms == 5000
    assert call.rule is not None
    assert "https://coverartarchive.org/*" in call.rule


def test_types_front_then_large_and_small(wasm_plugin: Plugin, wasm_http: HttpMock) -> None:
    wasm_http.get(RELEASE).respond(
        200,
        json={
            "images": [
                image("https://ia.example/a.jpg", thumbnails={"1200": "https://ia.example/a-1200.jpg"}),
                image(
                    "https://ia.example/b.jpg",
                    types=["Medium", "Front"],
                    thumbnails={"large": "https://ia.example/b-l.jpg", "small": "https://ia.example/b-s.jpg"},
                ),
            ]
        },
    )

    response = wasm_plugin.metadata_agent.get_album_images(mbid=MBID)

    assert sizes(response) == [("https://ia.example/b-l.jpg", 500), ("https://ia.example/b-s.jpg", 250)]


def test_first_image_without_thumbnails_gives_the_full_image(
    wasm_plugin: Plugin, wasm_http: HttpMock
) -> None:
    wasm_http.get(RELEASE).respond(
        200, json={"images": [image("https://ia.example/only.jpg"), image("https://ia.example/2.jpg")]}
    )

    response = wasm_plugin.metadata_agent.get_album_images(mbid=MBID)

    assert sizes(response) == [("https://ia.example/only.jpg", 0)]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"images": [image("https://ia.example/x.jpg")]}),
        (200, {"images": []}),
        (200, {"images": [{"front": True}]}),
        (200, "not json"),
    ],
    ids=["status-404", "no-images", "image-without-urls", "not-json"],
)
def test_unusable_answers_are_not_found(
    wasm_plugin: Plugin, wasm_http: HttpMock, status: int, body: Any
) -> None:
    route = wasm_http.get(RELEASE)
    if isinstance(body, str):
        route.respond(status, text=body)
    else:
        route.respond(status, json=body)

    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_album_images(mbid=MBID)


def test_empty_mbid_is_not_found_without_http(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_album_images(name="Album", artist="Artist")
    wasm_calls.assert_not_called("http")


def test_the_original_exact_pattern_blocks_the_release_path(
    wasm_load: Callable[..., Plugin], wasm_calls: WasmCalls
) -> None:
    # The coverartarchive example's own allow-list: an exact pattern admits only "/".
    plugin = wasm_load(
        PLUGIN,
        permissions={
            "http": {
                "reason": "x",
                "allowedUrls": {"https://coverartarchive.org": ["GET"], "https://*.archive.org": ["GET"]},
            }
        },
    )

    with pytest.raises(NotFoundByPlugin):
        plugin.metadata_agent.get_album_images(mbid=MBID)

    (call,) = wasm_calls.assert_called("http", "get", times=1, verdict="denied")
    assert response_of(call).error == (
        f"Request blocked by plugin permissions: URL {RELEASE} does not match any allowed URL patterns"
    )


def test_other_methods_are_not_implemented(wasm_plugin: Plugin) -> None:
    agent = wasm_plugin.metadata_agent
    calls: list[Callable[[], object]] = [
        lambda: agent.get_artist_mbid(name="X"),
        lambda: agent.get_artist_url(name="X"),
        lambda: agent.get_artist_biography(name="X"),
        lambda: agent.get_similar_artists(name="X", limit=1),
        lambda: agent.get_artist_images(name="X"),
        lambda: agent.get_artist_top_songs(artist_name="X", count=1),
        lambda: agent.get_album_info(name="A", artist="X"),
    ]
    for call in calls:
        with pytest.raises(NotImplementedByPlugin):
            call()
