"""The subsonic_demo sample, tested the way a plugin author would: public fixtures and markers only.

``wasm_subsonic`` is the fake Subsonic server the plugin's ``subsonicapi`` calls reach (users ``admin``
(admin) and ``user``); OnInit runs when the plugin loads.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_wasmhost import WasmHostError

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_wasmhost import Plugin
    from pytest_wasmhost.doubles import FakeSubsonic
    from pytest_wasmhost.fixtures import WasmCalls
    from pytest_wasmhost.host.base import HostCall

PLUGIN = Path(__file__).resolve().parents[2] / "sample_plugins" / "go" / "subsonic_demo"


def request_of(call: HostCall) -> Any:
    assert call.request is not None
    return call.request


def response_of(call: HostCall) -> Any:
    assert call.response is not None
    return call.response


def test_init_pings_and_reads_the_license(
    wasm_load: Callable[..., Plugin], wasm_subsonic: FakeSubsonic, wasm_calls: WasmCalls
) -> None:
    plugin = wasm_load(PLUGIN)

    assert [r.path for r in wasm_subsonic.requests] == ["/ping", "/getLicense"]
    for routed in wasm_subsonic.requests:
        assert routed.username == "admin"
        assert routed.params["u"] == "admin"
        assert routed.params["c"] == plugin.plugin_id
        assert routed.params["f"] == "json"
        assert routed.params["v"] == "1.16.1"
    calls = wasm_calls.assert_called("subsonicapi", "call", times=2, verdict="ok")
    assert [request_of(c).url for c in calls] == ["/rest/ping?u=admin", "/rest/getLicense?u=admin"]
    assert '"status":"ok"' in response_of(calls[0]).json
    assert '"license":{"valid":true}' in response_of(calls[1]).json


def test_on_init_can_run_again(wasm_load: Callable[..., Plugin], wasm_subsonic: FakeSubsonic) -> None:
    plugin = wasm_load(PLUGIN)
    wasm_subsonic.clear()

    assert plugin.lifecycle_management.on_init().error == ""
    assert [r.endpoint for r in wasm_subsonic.requests] == ["ping", "getLicense"]


def test_a_disallowed_user_fails_init(
    wasm_load: Callable[..., Plugin], wasm_subsonic: FakeSubsonic, wasm_calls: WasmCalls
) -> None:
    permissions = {"subsonicapi": {"reason": "x", "allowAdmins": True, "allowedUsernames": ["user"]}}

    with pytest.raises(WasmHostError, match="/rest/ping\\?u=admin: username admin is not allowed"):
        wasm_load(PLUGIN, permissions=permissions)

    assert wasm_subsonic.requests == []  # stopped at the first call
    (call,) = wasm_calls.assert_called("subsonicapi", "call", times=1, verdict="denied")
    assert response_of(call).error == "username admin is not allowed"


def test_admins_are_refused_without_allow_admins(
    wasm_load: Callable[..., Plugin], wasm_subsonic: FakeSubsonic
) -> None:
    permissions = {"subsonicapi": {"reason": "x", "allowedUsernames": ["admin"]}}

    with pytest.raises(WasmHostError, match="calling SubsonicAPI as admin user is not allowed"):
        wasm_load(PLUGIN, permissions=permissions)
    assert wasm_subsonic.requests == []


def test_a_failed_subsonic_document_does_not_fail_init(
    wasm_load: Callable[..., Plugin], wasm_subsonic: FakeSubsonic
) -> None:
    # A Subsonic-level failure is a normal answer (status "failed"), not a call error: only logged.
    wasm_subsonic.respond("getLicense", '{"subsonic-response":{"status":"failed"}}')

    wasm_load(PLUGIN)

    assert [r.endpoint for r in wasm_subsonic.requests] == ["ping", "getLicense"]
