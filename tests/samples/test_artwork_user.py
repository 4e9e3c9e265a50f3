"""The artwork_user sample, tested the way a plugin author would: public fixtures and markers only.

``wasm_artwork`` holds the artwork service's settings (``share_url`` etc.), read on every call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_wasmhost import NotFoundByPlugin, NotImplementedByPlugin

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_wasmhost import Plugin
    from pytest_wasmhost.fixtures import WasmCalls
    from pytest_wasmhost.host.artwork import LiveArtworkOptions
    from pytest_wasmhost.host.base import HostCall

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "artwork_user"
SHARE = "https://music.example.com"

pytestmark = pytest.mark.wasm_plugin(str(PLUGIN))


def request_of(call: HostCall) -> Any:
    assert call.request is not None
    return call.request


def test_artist_images_use_the_share_url(
    wasm_plugin: Plugin, wasm_artwork: LiveArtworkOptions, wasm_calls: WasmCalls
) -> None:
    wasm_artwork["share_url"] = SHARE + "/ignored/path"

    response = wasm_plugin.metadata_agent.get_artist_images(id="123", name="Artist")

    (img,) = response.images
    assert img.size == 300
    assert img.url.startswith(f"{SHARE}/share/img/")
    assert img.url.endswith("?size=300")
    (call,) = wasm_calls.assert_called("artwork", "get_artist_url", times=1, verdict="ok")
    assert request_of(call).id == "123"
    assert request_of(call).size == 300


def test_album_images_use_the_mbid(
    wasm_plugin: Plugin, wasm_artwork: LiveArtworkOptions, wasm_calls: WasmCalls
) -> None:
    wasm_artwork["share_url"] = SHARE

    response = wasm_plugin.metadata_agent.get_album_images(name="Album", artist="Artist", mbid="456")

    (img,) = response.images
    assert (img.size, img.url.startswith(f"{SHARE}/share/img/"), img.url.endswith("?size=300")) == (
        300,
        True,
        True,
    )
    (call,) = wasm_calls.assert_called("artwork", "get_album_url", times=1)
    assert request_of(call).id == "456"


def test_artist_url_is_a_track_image_without_size(
    wasm_plugin: Plugin, wasm_artwork: LiveArtworkOptions, wasm_calls: WasmCalls
) -> None:
    wasm_artwork["share_url"] = SHARE

    url = wasm_plugin.metadata_agent.get_artist_url(id="789", name="Artist").url

    assert url.startswith(f"{SHARE}/share/img/")
    assert "size=" not in url
    (call,) = wasm_calls.assert_called("artwork", "get_track_url", times=1)
    assert request_of(call).size == 0


def test_without_share_url_the_urls_fall_back_to_localhost(wasm_plugin: Plugin) -> None:
    agent = wasm_plugin.metadata_agent

    (artist,) = agent.get_artist_images(id="123").images
    (album,) = agent.get_album_images(mbid="456").images
    track = agent.get_artist_url(id="789").url

    for url in (artist.url, album.url, track):
        assert url.startswith("http://localhost/share/img/")
    assert artist.url != album.url  # different kinds (ar-, al-) give different tokens


def test_the_urls_differ_per_kind_for_the_same_id(wasm_plugin: Plugin) -> None:
    agent = wasm_plugin.metadata_agent
    artist = agent.get_artist_images(id="1").images[0].url
    album = agent.get_album_images(mbid="1").images[0].url
    track = agent.get_artist_url(id="1").url
    assert len({artist.split("?")[0], album.split("?")[0], track}) == 3


def test_empty_ids_are_not_found_without_artwork_calls(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    agent = wasm_plugin.metadata_agent
    for call in (
        lambda: agent.get_artist_images(name="X"),
        lambda: agent.get_album_images(name="A", artist="X"),
        lambda: agent.get_artist_url(name="X"),
    ):
        with pytest.raises(NotFoundByPlugin):
            call()
    wasm_calls.assert_not_called("artwork")


def test_other_methods_are_not_implemented(wasm_plugin: Plugin) -> None:
    agent = wasm_plugin.metadata_agent
    calls: list[Callable[[], object]] = [
        lambda: agent.get_artist_mbid(name="X"),
        lambda: agent.get_artist_biography(name="X"),
        lambda: agent.get_similar_artists(name="X", limit=1),
        lambda: agent.get_artist_top_songs(artist_name="X", count=1),
        lambda: agent.get_album_info(name="A", artist="X"),
    ]
    for call in calls:
        with pytest.raises(NotImplementedByPlugin):
            call()
