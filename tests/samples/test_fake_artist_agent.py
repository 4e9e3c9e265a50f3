"""The fake_artist_agent sample (the original test suite's agent), tested the way a plugin author would.

Public fixtures and markers only; the expected values are the original host's acceptance table
(spec/examples.md, "fake_artist_agent").
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pytest_wasmhost import NotFoundByPlugin, NotImplementedByPlugin

if TYPE_CHECKING:
    from pytest_wasmhost import Plugin
    from pytest_wasmhost.fixtures import WasmCalls

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "fake_artist_agent"

pytestmark = pytest.mark.wasm_plugin(str(PLUGIN))


def test_mbid_url_and_biography_of_a_named_artist(wasm_plugin: Plugin) -> None:
    agent = wasm_plugin.metadata_agent
    assert agent.get_artist_mbid(id="artist-id", name="Test Artist").mbid == "1234567890"
    assert agent.get_artist_url(id="artist-id", name="Test Artist").url == "https://example.com"
    assert agent.get_artist_biography(name="Test Artist").biography == "This is a test biography"


def test_similar_artists_ignore_the_limit(wasm_plugin: Plugin) -> None:
    for limit in (0, 1, 50):
        similar = wasm_plugin.metadata_agent.get_similar_artists(name="Test Artist", limit=limit)
        assert [(a.name, a.mbid) for a in similar.artists] == [
            ("Similar Artist 1", "mbid1"),
            ("Similar Artist 2", "mbid2"),
        ]


def test_images_and_top_songs(wasm_plugin: Plugin) -> None:
    agent = wasm_plugin.metadata_agent
    images = agent.get_artist_images(name="Test Artist").images
    assert [(i.url, i.size) for i in images] == [
        ("https://example.com/image1.jpg", 100),
        ("https://example.com/image2.jpg", 200),
    ]
    songs = agent.get_artist_top_songs(artist_name="Test Artist", count=1).songs
    assert [(s.name, s.mbid) for s in songs] == [("Song 1", "mbid1"), ("Song 2", "mbid2")]


@pytest.mark.parametrize(
    "method",
    ["get_artist_mbid", "get_artist_url", "get_artist_biography", "get_similar_artists", "get_artist_images"],
)
def test_an_empty_name_is_not_found(wasm_plugin: Plugin, method: str) -> None:
    with pytest.raises(NotFoundByPlugin):
        getattr(wasm_plugin.metadata_agent, method)(id="artist-id", name="")


def test_top_songs_need_the_artist_name(wasm_plugin: Plugin) -> None:
    with pytest.raises(NotFoundByPlugin):
        wasm_plugin.metadata_agent.get_artist_top_songs(id="artist-id", artist_name="")


def test_album_methods_are_not_implemented(wasm_plugin: Plugin) -> None:
    with pytest.raises(NotImplementedByPlugin):
        wasm_plugin.metadata_agent.get_album_info(name="Test Album", artist="Test Artist", mbid="m")
    with pytest.raises(NotImplementedByPlugin):
        wasm_plugin.metadata_agent.get_album_images(name="Test Album", artist="Test Artist", mbid="m")


def test_it_calls_no_host_function(wasm_plugin: Plugin, wasm_calls: WasmCalls) -> None:
    wasm_plugin.metadata_agent.get_artist_mbid(name="Test Artist")
    assert len(wasm_calls) == 0


def test_pooled_instances_answer_alike_across_many_calls(wasm_plugin: Plugin) -> None:
    # A pooled instance serves call after call: no state leaks from one answer into the next.
    answers = {wasm_plugin.metadata_agent.get_artist_mbid(name=f"Artist {i}").mbid for i in range(200)}
    assert answers == {"1234567890"}
    assert wasm_plugin.stats().created == 1
