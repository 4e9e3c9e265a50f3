"""A loaded plugin end to end: load checks, error mapping, instance hygiene (abi.md §3, runtime.md §9-10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_wasmhost import (
    AbiError,
    NotFoundByPlugin,
    NotImplementedByPlugin,
    Plugin,
    PluginError,
    PluginLoadError,
    PluginTrap,
    WasmHostError,
    open_plugin,
)
from pytest_wasmhost.abi.proto import api_pb2
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module, packed

MBID = "metadata_agent_get_artist_mbid"


def load(tmp_path: Path, wasm: bytes, *, init: bool = True, **manifest: object) -> Plugin:
    return open_plugin(write_plugin(tmp_path, wasm, **manifest), init=init, disk_cache=False)


def error_result(text: bytes) -> tuple[str, bytes]:
    return packed(256, len(text), error=True), text


def test_empty_result_decodes_to_an_all_defaults_response(tmp_path: Path) -> None:
    with load(tmp_path, metadata_module()) as plugin:
        response = plugin.metadata_agent.get_artist_mbid(name="x")
    assert response == api_pb2.ArtistMBIDResponse()


def test_response_bytes_decode_into_the_typed_message(tmp_path: Path) -> None:
    data = api_pb2.ArtistSimilarResponse(artists=[api_pb2.Artist(name="A", mbid="m")]).SerializeToString()
    with load(tmp_path, metadata_module(result=packed(256, len(data)), data=data)) as plugin:
        response = plugin.metadata_agent.get_similar_artists(name="x", limit=3)
    assert [(a.name, a.mbid) for a in response.artists] == [("A", "m")]


@pytest.mark.parametrize(
    ("text", "expected"),
    [(b"plugin:not_implemented", NotImplementedByPlugin), (b"plugin:not_found", NotFoundByPlugin)],
)
def test_sentinel_error_strings_become_their_exceptions(tmp_path: Path, text: bytes, expected: type) -> None:
    result, data = error_result(text)
    with load(tmp_path, metadata_module(result=result, data=data)) as plugin, pytest.raises(expected) as info:
        plugin.metadata_agent.get_artist_biography(name="x")
    assert info.value.export == "metadata_agent_get_artist_biography"
    assert info.value.plugin_id == "test_plugin"


def test_any_other_error_string_is_a_plugin_error_carrying_the_text(tmp_path: Path) -> None:
    result, data = error_result(b"rate limited by upstream")
    with (
        load(tmp_path, metadata_module(result=result, data=data)) as plugin,
        pytest.raises(PluginError) as info,
    ):
        plugin.metadata_agent.get_artist_url(name="x")
    assert info.value.text == "rate limited by upstream"
    assert "rate limited by upstream" in str(info.value)


def test_album_info_without_info_is_not_found_as_the_adapter(tmp_path: Path) -> None:
    with load(tmp_path, metadata_module()) as plugin, pytest.raises(NotFoundByPlugin):
        plugin.metadata_agent.get_album_info(name="a", artist="b")


def test_declared_capability_missing_a_method_export_fails_the_load(tmp_path: Path) -> None:
    wasm = metadata_module(omit=("metadata_agent_get_album_images",))
    with pytest.raises(PluginLoadError) as info:
        load(tmp_path, wasm)
    assert info.value.original == (
        "baseCapability: failed to load instance for test_plugin_MetadataAgent: "
        "metadata_agent_get_album_images is not exported"
    )
    assert "metadata_agent_get_album_images is not exported" in str(info.value)


def test_missing_version_export_fails_the_load(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match="metadata_agent_api_version is not exported"):
        load(tmp_path, metadata_module(omit=("metadata_agent_api_version",)))


def test_api_version_other_than_1_fails_the_load(tmp_path: Path) -> None:
    with pytest.raises(PluginLoadError, match="API version mismatch, host: 1, plugin: 2"):
        load(tmp_path, metadata_module(version=2))


@pytest.mark.parametrize("name", ["malloc", "free"])
def test_missing_allocator_exports_fail_the_load(tmp_path: Path, name: str) -> None:
    with pytest.raises(PluginLoadError, match=f"{name} is not exported"):
        load(tmp_path, metadata_module(omit=(name,)))


def test_capability_not_declared_is_never_called(tmp_path: Path) -> None:
    wasm = metadata_module(capabilities=("MetadataAgent", "Scrobbler"))
    with load(tmp_path, wasm) as plugin, pytest.raises(PluginLoadError) as info:
        plugin.scrobbler.is_authorized(user_id="u", username="u")
    assert info.value.original == "plugin adapter not registered: test_plugin, capability: Scrobbler"


def test_trapping_call_discards_the_instance_and_the_next_call_gets_a_fresh_one(tmp_path: Path) -> None:
    # $calls survives between calls on one instance and the export traps on the 2nd call of an instance.
    extra = """
  (global $calls (mut i32) (i32.const 0))
  (func $bump (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1))) (global.get $calls))"""
    wasm = metadata_module(
        extra=extra,
        results={MBID: "(if (i32.eq (call $bump) (i32.const 2)) (then unreachable)) (i64.const 0)"},
    )
    with load(tmp_path, wasm) as plugin:
        plugin.metadata_agent.get_artist_mbid(name="x")
        with pytest.raises(PluginTrap) as info:
            plugin.metadata_agent.get_artist_mbid(name="x")
        assert "unreachable" in str(info.value)
        assert info.value.export == MBID
        # A reused (crashed) instance would be at 3 and 4 now and never trap again; a fresh one traps on
        # its second call.
        plugin.metadata_agent.get_artist_mbid(name="x")
        with pytest.raises(PluginTrap):
            plugin.metadata_agent.get_artist_mbid(name="x")


def test_scrobbler_is_authorized_is_false_on_any_error_as_the_adapter(tmp_path: Path) -> None:
    result, data = error_result(b"token expired")
    wasm = metadata_module(capabilities=("Scrobbler",), result=result, data=data)
    with load(tmp_path, wasm, capabilities=("Scrobbler",)) as plugin:
        assert plugin.scrobbler.is_authorized(user_id="u1", username="alice") is False


def test_scrobbler_now_playing_ignores_the_response_error_field(tmp_path: Path) -> None:
    data = api_pb2.ScrobblerNowPlayingResponse(error="ignored by the host").SerializeToString()
    wasm = metadata_module(capabilities=("Scrobbler",), result=packed(256, len(data)), data=data)
    with load(tmp_path, wasm, capabilities=("Scrobbler",)) as plugin:
        response = plugin.scrobbler.now_playing(user_id="u1", track={"name": "Song"}, timestamp=1)
    assert response.error == "ignored by the host"


def test_lifecycle_on_init_honours_the_response_error_field(tmp_path: Path) -> None:
    data = api_pb2.InitResponse(error="initialization failed with response error").SerializeToString()
    wasm = metadata_module(capabilities=("LifecycleManagement",), result=packed(256, len(data)), data=data)
    lifecycle = ("LifecycleManagement",)
    with (
        load(tmp_path, wasm, init=False, capabilities=lifecycle) as plugin,
        pytest.raises(PluginError) as info,
    ):
        plugin.lifecycle_management.on_init(config={"a": "b"})
    assert info.value.text == "initialization failed with response error"


def test_loading_runs_on_init_once_and_a_failure_fails_the_load(tmp_path: Path) -> None:
    data = api_pb2.InitResponse(error="initialization failed with response error").SerializeToString()
    lifecycle = ("LifecycleManagement",)
    failing = metadata_module(capabilities=lifecycle, result=packed(256, len(data)), data=data)
    with pytest.raises(PluginError, match="initialization failed with response error"):
        load(tmp_path / "a", failing, capabilities=lifecycle)
    with load(tmp_path / "b", metadata_module(capabilities=lifecycle), capabilities=lifecycle) as plugin:
        (call,) = plugin.transcript.calls("lifecycle", "on_init")
        assert call.verdict == "ok"


ECHO = "(i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32)) (i64.extend_i32_u (local.get 1)))"


@pytest.mark.parametrize("payload", [b"", b"\xff", b"\x0a\x05trunc", bytes(range(256)) * 4])
def test_call_raw_sends_the_payload_as_it_is_and_returns_the_reply_bytes(
    tmp_path: Path, payload: bytes
) -> None:
    with load(tmp_path, metadata_module(results={MBID: ECHO})) as plugin:
        outcome = plugin.call_raw(MBID, payload)  # garbage protobuf: call() could not send these
        assert outcome == (payload, None)
        assert MBID in plugin.transcript.exports_called()[plugin.plugin_id]


def test_call_raw_returns_the_error_text_without_mapping_it(tmp_path: Path) -> None:
    result, data = error_result(b"plugin:not_found")
    with load(tmp_path, metadata_module(result=result, data=data)) as plugin:
        assert plugin.call_raw(MBID, b"") == (b"", "plugin:not_found")


def test_call_raw_refuses_unknown_exports_and_undeclared_capabilities(tmp_path: Path) -> None:
    wasm = metadata_module(capabilities=("MetadataAgent", "Scrobbler"))
    with load(tmp_path, wasm) as plugin:
        with pytest.raises(WasmHostError, match="'malloc' is not a capability method export"):
            plugin.call_raw("malloc", b"")
        with pytest.raises(PluginLoadError, match="does not declare the Scrobbler capability"):
            plugin.call_raw("scrobbler_is_authorized", b"")


def test_call_raw_discards_an_instance_that_trapped(tmp_path: Path) -> None:
    with load(tmp_path, metadata_module(result="(unreachable)")) as plugin:
        with pytest.raises(PluginTrap):
            plugin.call_raw(MBID, b"x")
        assert plugin.stats().live == 0


def test_a_response_that_does_not_decode_is_an_abi_error_naming_the_message(tmp_path: Path) -> None:
    garbage = b"\xff\xff"
    with load(tmp_path, metadata_module(result=packed(256, len(garbage)), data=garbage)) as plugin:
        with pytest.raises(AbiError) as info:
            plugin.call(MBID, api_pb2.ArtistMBIDRequest(name="x"))
        assert plugin.call_raw(MBID, b"") == (garbage, None)  # the bytes themselves, for a closer look
    message = str(info.value)
    assert "the response bytes (2) do not decode as api.ArtistMBIDResponse" in message
    assert info.value.export == MBID


def test_request_bytes_that_do_not_decode_are_refused_before_the_call(tmp_path: Path) -> None:
    with load(tmp_path, metadata_module()) as plugin:
        with pytest.raises(AbiError, match=r"the request bytes \(1\) do not decode as api.ArtistMBIDRequest"):
            plugin.call(MBID, b"\xff")
        assert plugin.stats().created == 1  # refused before any instance was needed beyond the load's
