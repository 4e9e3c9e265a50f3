"""subsonicapi through a real wasm guest (linker, permission gating, dispatch, transcript), and
ForwardingSubsonic against a tiny Subsonic-like HTTP server on 127.0.0.1 (the only network used)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from google.protobuf.message import DecodeError
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_wasmhost.abi.proto import subsonicapi_pb2
from pytest_wasmhost.clock import SYSTEM_CLOCK
from pytest_wasmhost.doubles.subsonic import FakeSubsonic
from pytest_wasmhost.errors import PluginLoadError, PluginTrap
from pytest_wasmhost.host.base import HostEnvironment
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.host.registry import bind
from pytest_wasmhost.host.subsonicapi import (
    NOT_FOUND_BODY,
    ForwardingSubsonic,
    SubsonicBackend,
    SubsonicOptions,
    subsonic_failed,
    subsonic_ok,
)
from tests.support.hostcall import HostHarness

CallResponse = subsonicapi_pb2.CallResponse


def make_harness(backend: SubsonicBackend | None, permission: Mapping[str, Any] | None = None) -> HostHarness:
    options = HostOptions(subsonicapi=SubsonicOptions(backend))  # None: the original without a router
    return HostHarness(
        ["call"],
        permissions={"subsonicapi": dict(permission or {"reason": "talk to the server"})},
        env=HostEnvironment(clock=SYSTEM_CLOCK, options=options),
    )


def call(harness: HostHarness, url: str) -> Any:
    return harness.call("call", subsonicapi_pb2.CallRequest(url=url), CallResponse)


@pytest.fixture
def fake() -> FakeSubsonic:
    return FakeSubsonic()


@pytest.fixture
def harness(fake: FakeSubsonic) -> Iterator[HostHarness]:
    h = make_harness(fake, {"reason": "x", "allowAdmins": True})
    yield h
    h.close()


# -- the call through the guest ---------------------------------------------------------------------------


def test_call_returns_the_router_document_and_records_ok(harness: HostHarness, fake: FakeSubsonic) -> None:
    response = call(harness, "/rest/ping?u=admin&p=secret")
    assert response.error == ""
    assert json.loads(response.json)["subsonic-response"]["status"] == "ok"
    (entry,) = harness.transcript.calls("subsonicapi", "call")
    assert (entry.plugin_id, entry.verdict, entry.detail) == ("test_plugin", "ok", "")
    assert entry.request.url == "/rest/ping?u=admin&p=secret"
    assert entry.response == response
    assert fake.last.target == "/ping?c=test_plugin&f=json&p=secret&u=admin&v=1.16.1"


def test_subsonicapi_demo_flow_through_the_guest() -> None:
    fake = FakeSubsonic()
    harness = make_harness(fake, {"reason": "demo", "allowAdmins": True, "allowedUsernames": ["admin"]})
    try:
        ping = call(harness, "/rest/ping?u=Admin")
        license_ = call(harness, "/rest/getLicense?u=Admin")
    finally:
        harness.close()
    assert (ping.error, license_.error) == ("", "")
    assert json.loads(license_.json)["subsonic-response"]["license"] == {"valid": True}
    assert [c.verdict for c in harness.transcript] == ["ok", "ok"]
    assert [r.endpoint for r in fake.requests] == ["ping", "getLicense"]


def test_permission_refusal_is_denied_with_its_rule() -> None:
    fake = FakeSubsonic()
    harness = make_harness(fake, {"reason": "x", "allowedUsernames": ["user"]})
    try:
        other = call(harness, "/rest/ping?u=admin")
        allowed = call(harness, "/rest/ping?u=USER")  # on the list, and found as a non-admin user
    finally:
        harness.close()
    assert other == CallResponse(error="username admin is not allowed")
    assert allowed.error == ""
    first, second = harness.transcript.calls()
    assert (first.verdict, first.rule, first.detail) == ("denied", "allowedUsernames", other.error)
    assert second.verdict == "ok"


def test_admin_refused_without_allow_admins() -> None:
    harness = make_harness(FakeSubsonic(), {"reason": "x"})
    try:
        response = call(harness, "/rest/ping?u=admin")
        missing = call(harness, "/rest/ping?u=nobody")
    finally:
        harness.close()
    assert response == CallResponse(error="calling SubsonicAPI as admin user is not allowed")
    assert missing == CallResponse(error="username nobody not found")
    assert [(c.verdict, c.rule) for c in harness.transcript] == [
        ("denied", "allowAdmins"),
        ("denied", "allowAdmins"),
    ]


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("/rest/ping?p=password", "missing required parameter 'u' (username)"),
        ("://invalid-url", 'invalid URL format: parse "://invalid-url": missing protocol scheme'),
    ],
)
def test_failures_are_plain_errors(harness: HostHarness, url: str, error: str) -> None:
    assert call(harness, url) == CallResponse(error=error)
    (entry,) = harness.transcript.calls()
    assert (entry.verdict, entry.detail, entry.rule) == ("error", error, None)


def test_without_a_backend_the_router_is_not_available() -> None:
    harness = make_harness(None)
    try:
        assert call(harness, "/rest/ping?u=admin") == CallResponse(error="SubsonicAPI router not available")
    finally:
        harness.close()
    assert harness.transcript.calls()[0].verdict == "error"


def test_without_the_permission_linking_fails_naming_import_and_permission() -> None:
    with pytest.raises(PluginLoadError) as info:
        HostHarness(["call"], permissions={"config": {"reason": "x"}})
    assert info.value.import_name == "env.call"
    assert info.value.permission == "subsonicapi"
    assert '"subsonicapi": {"reason": "..."}' in str(info.value)


# -- ForwardingSubsonic against a tiny Subsonic-like server ----------------------------------------------


@dataclass
class Account:
    password: str
    admin: bool = False


@dataclass
class SubsonicServer:
    """What the test server knows and saw."""

    url: str
    accounts: dict[str, Account]
    seen: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)

    def endpoints(self) -> list[str]:
        return [path for path, _ in self.seen]


def subsonic_handler(state: SubsonicServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = parse_qs(parts.query, keep_blank_values=True)
            state.seen.append((parts.path, params))
            endpoint = parts.path.removeprefix("/rest/").removesuffix(".view")  # Navidrome routes both
            self.answer(*self.route(endpoint, params))

        def route(self, endpoint: str, params: dict[str, list[str]]) -> tuple[int, Any]:
            one = {key: values[0] for key, values in params.items()}
            account = state.accounts.get(one.get("u", "").lower())
            token = hashlib.md5(((account.password if account else "") + one.get("s", "")).encode())
            if account is None or "p" in one or one.get("t") != token.hexdigest():
                return 200, subsonic_failed(40, server_version="test")
            if endpoint == "ping":
                return 200, subsonic_ok(server_version="test")
            if endpoint == "getLicense":
                return 200, subsonic_ok(server_version="test", license={"valid": True})
            if endpoint == "getUser":
                user = {"username": one["username"], "adminRole": account.admin}
                return 200, subsonic_ok(server_version="test", user=user)
            return 404, NOT_FOUND_BODY

        def answer(self, status: int, body: Any) -> None:
            data = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[SubsonicServer]:
    state = SubsonicServer(url="", accounts={"alice": Account("s3cret"), "root": Account("toor", admin=True)})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), subsonic_handler(state))
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.fixture
def forwarding(server: SubsonicServer) -> Iterator[ForwardingSubsonic]:
    with ForwardingSubsonic(server.url, "alice", "s3cret", timeout=5.0) as backend:
        yield backend


def test_forwarding_ping_uses_token_auth_and_the_rewritten_query(
    server: SubsonicServer, forwarding: ForwardingSubsonic
) -> None:
    harness = make_harness(forwarding, {"reason": "x", "allowAdmins": True})
    try:
        response = call(harness, "https://elsewhere.example/rest/ping?u=alice&p=plugin-pw&t=x&s=y&f=xml")
    finally:
        harness.close()
    assert response.error == ""
    assert json.loads(response.json)["subsonic-response"]["status"] == "ok"
    ((path, params),) = server.seen
    assert path == "/rest/ping"
    assert {k: v for k, v in params.items() if k not in ("t", "s")} == {
        "c": ["test_plugin"],
        "f": ["json"],
        "u": ["alice"],
        "v": ["1.16.1"],
    }  # the plugin's p/t/s never reach the server; ours authenticate
    assert len(params["s"][0]) >= 6
    assert forwarding.last.endpoint == "ping"


def test_forwarding_demo_flow_and_admin_lookup_through_get_user(
    server: SubsonicServer, forwarding: ForwardingSubsonic
) -> None:
    harness = make_harness(forwarding, {"reason": "x"})  # allowAdmins false: the user store is asked
    try:
        ping = call(harness, "/rest/ping?u=ALICE")
        license_ = call(harness, "/rest/getLicense.view?u=alice")
        stranger = call(harness, "/rest/ping?u=bob")
    finally:
        harness.close()
    assert (ping.error, license_.error) == ("", "")
    assert json.loads(license_.json)["subsonic-response"]["license"] == {"valid": True}
    assert stranger == CallResponse(error="username bob not found")  # only the configured user exists
    assert server.endpoints() == ["/rest/getUser", "/rest/ping", "/rest/getUser", "/rest/getLicense.view"]
    assert [c.verdict for c in harness.transcript] == ["ok", "ok", "denied"]


def test_forwarding_admin_is_refused_by_the_servers_admin_role(server: SubsonicServer) -> None:
    with ForwardingSubsonic(server.url, "root", "toor") as backend:
        harness = make_harness(backend, {"reason": "x"})
        try:
            response = call(harness, "/rest/ping?u=root")
        finally:
            harness.close()
    assert response == CallResponse(error="calling SubsonicAPI as admin user is not allowed")
    assert server.endpoints() == ["/rest/getUser"]


def test_forwarding_call_for_another_user_answers_error_40_without_network(
    server: SubsonicServer, forwarding: ForwardingSubsonic
) -> None:
    harness = make_harness(forwarding, {"reason": "x", "allowAdmins": True})
    try:
        response = call(harness, "/rest/ping?u=bob")
        dot = call(harness, "/?u=alice")
    finally:
        harness.close()
    doc = json.loads(response.json)["subsonic-response"]
    assert doc["error"] == {"code": 40, "message": "Wrong username or password"}
    assert dot.json == NOT_FOUND_BODY  # endpoint "/" would be a directory over HTTP
    assert server.seen == []
    assert [r.username for r in forwarding.requests] == ["bob", "alice"]


def test_forwarding_with_a_wrong_password_gets_the_servers_error_document(server: SubsonicServer) -> None:
    with ForwardingSubsonic(server.url, "alice", "wrong") as backend:
        status, body = backend.handle("ping", [("u", "alice")], "alice")
    assert status == 200
    assert json.loads(body)["subsonic-response"]["error"]["code"] == 40


def test_forwarding_user_lookup_failure_traps_the_call(server: SubsonicServer) -> None:
    with ForwardingSubsonic(server.url, "alice", "wrong") as backend:
        harness = make_harness(backend, {"reason": "x"})
        try:
            with pytest.raises(PluginTrap, match=r"env\.call") as info:
                call(harness, "/rest/ping?u=alice")
        finally:
            harness.close()
    assert "getUser for the configured user 'alice' failed: Wrong username or password (code 40)" in str(
        info.value
    )
    (entry,) = harness.transcript.calls()
    assert entry.verdict == "hard-error"


def test_forwarding_to_a_server_that_is_down_traps_the_call() -> None:
    with ForwardingSubsonic(f"http://127.0.0.1:{closed_port()}", "a", "b", timeout=2.0) as backend:
        harness = make_harness(backend, {"reason": "x", "allowAdmins": True})
        try:
            with pytest.raises(PluginTrap, match=r"the Subsonic backend failed: GET http://127\.0\.0\.1"):
                call(harness, "/rest/ping?u=a")
        finally:
            harness.close()


def test_forwarding_ignores_proxy_settings_of_the_environment(
    server: SubsonicServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with ForwardingSubsonic(server.url, "alice", "s3cret") as backend:
        status, body = backend.handle("ping", [("u", "alice")], "alice")
    assert (status, json.loads(body)["subsonic-response"]["status"]) == (200, "ok")


def test_forwarding_refuses_a_client_that_trusts_the_environment(server: SubsonicServer) -> None:
    with httpx.Client() as client, pytest.raises(ValueError, match="trust_env=False"):
        ForwardingSubsonic(server.url, "alice", "s3cret", client)
    with httpx.Client(trust_env=False) as client:
        backend = ForwardingSubsonic(server.url, "alice", "s3cret", client)
        assert backend.find_user("Alice") is not None
        backend.close()  # a client passed in stays open: its owner closes it
        assert not client.is_closed


def closed_port() -> int:
    """A local port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- random requests never crash the host ---------------------------------------------------------------


def fresh_instance(harness: HostHarness) -> None:
    """A new instance of the same linked module and services: fresh memory, nothing dead."""
    harness.instance.close()
    harness.instance = harness.linked.instantiate(
        bind(harness.plugin_id, harness.services, harness.transcript)
    )


def bump_pointer(harness: HostHarness) -> int:
    with harness.instance.activate("malloc"):
        result = harness.instance.call_export("malloc", (0,))
    assert isinstance(result, int)
    return result


PREFIXES = ["", "/rest/", "/base/rest/", "http://h:4533/rest/", "https://[::1]/rest/", "://", "http://[zz]/"]
ENDPOINTS = ["ping", "getLicense", "ping.view", "nope", "", "a%2Fb", "%zz", "x:y"]
PAIRS = [
    "u=admin",
    "u=user",
    "u=Admin",
    "u=ghost",
    "u=",
    "u=%FF",
    "p=x",
    "c=evil",
    "id=1;2",
    "%zz=1",
    "",
    "f=xml",
]


def url_strings() -> st.SearchStrategy[str]:
    """URLs close enough to real ones to reach every verdict, plus arbitrary text."""
    structured = st.builds(
        lambda prefix, endpoint, pairs, fragment: f"{prefix}{endpoint}?{'&'.join(pairs)}{fragment}",
        st.sampled_from(PREFIXES),
        st.sampled_from(ENDPOINTS),
        st.lists(st.sampled_from(PAIRS), max_size=4),
        st.sampled_from(["", "#top", "#%zz"]),
    )
    return st.one_of(structured, st.text(max_size=60))


def well_formed_requests() -> st.SearchStrategy[bytes]:
    return url_strings().map(lambda url: subsonicapi_pb2.CallRequest(url=url).SerializeToString())


def test_random_request_bytes_never_crash_the_host() -> None:
    fake = FakeSubsonic()
    harness = make_harness(fake, {"reason": "x", "allowedUsernames": ["admin", "user"]})

    @settings(max_examples=200, deadline=None)
    @given(data=st.one_of(st.binary(max_size=200), well_formed_requests()))
    def check(data: bytes) -> None:
        if harness.instance.dead or bump_pointer(harness) > 64 * 1024:  # the guest's malloc never frees
            fresh_instance(harness)
        before = len(harness.transcript)
        trap: PluginTrap | None = None
        try:
            raw = harness.call_raw("call", data)
        except PluginTrap as exc:  # an undecodable request is the original's hard error: the call aborts
            trap = exc
        assert len(harness.transcript) == before + 1
        entry = harness.transcript.calls()[-1]
        if trap is not None:
            assert "env.call" in str(trap)
            assert entry.verdict == "hard-error"
            assert entry.request is None  # only undecodable requests trap, never the service itself
            return
        try:
            response = CallResponse.FromString(raw)
        except DecodeError:  # pragma: no cover - the failure message is the point
            pytest.fail("env.call wrote bytes that do not decode as CallResponse")
        assert entry.verdict in ("ok", "error", "denied")
        assert (response.error == "") == (entry.verdict == "ok")
        assert (response.json != "") == (entry.verdict == "ok")

    try:
        check()
    finally:
        harness.close()
