"""The Go fake_artist_agent sample behaves as the original's fake_artist_agent (spec/examples.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_wasmhost import NotFoundByPlugin, NotImplementedByPlugin, Plugin, PluginTrap, open_plugin
from tests.support.plugins import write_plugin


@pytest.fixture(scope="module")
def agent(samples_dir: Path) -> Iterator[Plugin]:
    with open_plugin(samples_dir / "go" / "fake_artist_agent") as plugin:
        yield plugin


def test_manifest_is_the_originals(agent: Plugin) -> None:
    assert agent.plugin_id == "fake_artist_agent"
    assert agent.manifest.author == "Navidrome Test"
    assert agent.manifest.capabilities == ("MetadataAgent",)
    assert agent.manifest.permissions.granted() == ()


def test_artist_methods(agent: Plugin) -> None:
    ma = agent.metadata_agent
    assert ma.get_artist_mbid(id="artist-id", name="Test Artist").mbid == "1234567890"
    assert ma.get_artist_url(name="Test Artist").url == "https://example.com"
    assert ma.get_artist_biography(name="Test Artist").biography == "This is a test biography"
    similar = ma.get_similar_artists(name="Test Artist", limit=1).artists
    assert [(a.name, a.mbid) for a in similar] == [
        ("Similar Artist 1", "mbid1"),
        ("Similar Artist 2", "mbid2"),
    ]
    images = ma.get_artist_images(name="Test Artist").images
    assert [(i.url, i.size) for i in images] == [
        ("https://example.com/image1.jpg", 100),
        ("https://example.com/image2.jpg", 200),
    ]
    songs = ma.get_artist_top_songs(artist_name="Test Artist", count=5).songs
    assert [(s.name, s.mbid) for s in songs] == [("Song 1", "mbid1"), ("Song 2", "mbid2")]


@pytest.mark.parametrize(
    "method",
    ["get_artist_mbid", "get_artist_url", "get_artist_biography", "get_similar_artists", "get_artist_images"],
)
def test_empty_name_is_not_found(agent: Plugin, method: str) -> None:
    with pytest.raises(NotFoundByPlugin):
        getattr(agent.metadata_agent, method)(id="artist-id", name="")


def test_top_songs_without_artist_name_is_not_found(agent: Plugin) -> None:
    with pytest.raises(NotFoundByPlugin):
        agent.metadata_agent.get_artist_top_songs(artist_name="")


def test_album_methods_are_not_implemented(agent: Plugin) -> None:
    with pytest.raises(NotImplementedByPlugin):
        agent.metadata_agent.get_album_info(name="Album", artist="Artist", mbid="m")
    with pytest.raises(NotImplementedByPlugin):
        agent.metadata_agent.get_album_images(name="Album", artist="Artist")


def test_instance_is_reused_across_calls(agent: Plugin) -> None:
    agent.metadata_agent.get_artist_mbid(name="a")
    created = agent.stats().created
    for _ in range(5):
        agent.metadata_agent.get_artist_mbid(name="b")
    assert agent.stats().created == created
    assert agent.stats().idle == 1


def test_calling_an_unregistered_go_capability_traps_with_the_go_panic(
    samples_dir: Path, tmp_path: Path
) -> None:
    # Declaring Scrobbler on a plugin that registered only MetadataAgent: the Go glue dereferences a nil
    # interface, prints the panic and executes unreachable (abi.md §1).
    source = samples_dir / "go" / "fake_artist_agent"
    manifest = json.loads((source / "manifest.json").read_text())
    folder = write_plugin(
        tmp_path,
        (source / "plugin.wasm").read_bytes(),
        plugin_id="liar",
        capabilities=("MetadataAgent", "Scrobbler"),
        permissions=manifest["permissions"],
    )
    with open_plugin(folder) as plugin:
        with pytest.raises(PluginTrap) as info:
            plugin.scrobbler.scrobble(user_id="u", track={"name": "x"}, timestamp=1)
        assert "panic" in info.value.stderr
        assert info.value.export == "scrobbler_scrobble"
        assert info.value.backtrace, "a wasm backtrace is attached"
        # The crashed instance is gone; the plugin still serves its real capability.
        assert plugin.metadata_agent.get_artist_mbid(name="x").mbid == "1234567890"
