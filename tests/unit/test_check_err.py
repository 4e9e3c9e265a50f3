"""The original's checkErr acceptance table (runtime.md §10)."""

from __future__ import annotations

import pytest

from pytest_wasmhost.abi.capabilities import Reply, check_err
from pytest_wasmhost.abi.proto import api_pb2
from pytest_wasmhost.errors import NotFoundByPlugin, NotImplementedByPlugin, PluginError


def run(error_field: str | None, transport: str | None) -> None:
    response = None if error_field is None else api_pb2.InitResponse(error=error_field)
    check_err(
        Reply(response=response, error_text=transport), plugin_id="p", export="lifecycle_management_on_init"
    )


def test_no_error_field_and_no_transport_error_is_success() -> None:
    run(None, None)
    run("", None)
    check_err(Reply(api_pb2.ArtistMBIDResponse(mbid="x"), None), plugin_id="p", export="e")


def test_empty_field_with_transport_error_is_that_error() -> None:
    with pytest.raises(PluginError) as info:
        run("", "X")
    assert info.value.text == "X"


@pytest.mark.parametrize("field", ["", None])
def test_transport_sentinels_map_by_exact_text(field: str | None) -> None:
    with pytest.raises(NotImplementedByPlugin):
        run(field, "plugin:not_implemented")
    with pytest.raises(NotFoundByPlugin):
        run(field, "plugin:not_found")


def test_sentinels_need_exact_equality() -> None:
    with pytest.raises(PluginError) as info:
        run(None, "plugin:not_found ")
    assert info.value.text == "plugin:not_found "


def test_error_field_alone_is_an_error() -> None:
    with pytest.raises(PluginError) as info:
        run("plugin error", None)
    assert info.value.text == "plugin error"


def test_error_field_and_transport_error_are_joined() -> None:
    with pytest.raises(PluginError) as info:
        run("plugin error", "original error")
    assert info.value.text == "plugin error\noriginal error"


@pytest.mark.parametrize("transport", [None, "anything"])
def test_error_field_sentinels_win_over_any_transport_error(transport: str | None) -> None:
    with pytest.raises(NotImplementedByPlugin):
        run("plugin:not_implemented", transport)
    with pytest.raises(NotFoundByPlugin):
        run("plugin:not_found", transport)


def test_error_field_is_ignored_when_the_adapter_ignores_it() -> None:
    reply = Reply(api_pb2.ScrobblerNowPlayingResponse(error="ignored"), None)
    check_err(reply, plugin_id="p", export="scrobbler_now_playing", honour_error_field=False)
