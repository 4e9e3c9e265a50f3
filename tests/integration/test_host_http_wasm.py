"""env.get / env.post & co. called from inside a real wasm guest, through the real linker and dispatch.

The harness is HostHarness's, with the http service bound explicitly (so it does not depend on the
registry listing it yet). Outside traffic is mocked with respx; the connect-time guard is exercised
with the real transport and an injected resolver, and refuses before any socket is opened. Every
socket a test opens is checked: anything but loopback fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import respx
import wasmtime

from pytest_wasmhost.abi.memory import unpack, write_buffer
from pytest_wasmhost.abi.proto.http_pb2 import HttpRequest, HttpResponse
from pytest_wasmhost.clock import SYSTEM_CLOCK
from pytest_wasmhost.host.base import HostEnvironment, ServiceContext
from pytest_wasmhost.host.http import HttpOptions, HttpService
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.host.registry import IMPLEMENTED, bind, build_services
from pytest_wasmhost.manifest import parse_manifest
from pytest_wasmhost.runtime.engine import shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, compile_module
from tests.support.hostcall import host_caller_wat
from tests.support.plugins import manifest as manifest_dict
from tests.support.ssrf_corpus import fake_resolver

FUNCTIONS = ("get", "post", "put", "delete", "patch", "head", "options")
API = "https://api.example.com"
PERMISSIONS = {
    "http": {
        "reason": "talks to the example API",
        "allowedUrls": {"https://api.example.com/v1/*": ["GET", "POST"], "http://*.test/*": ["GET"]},
    }
}


class HttpHarness:
    """A guest that re-exports every ``env.<verb>``, linked with the plugin's manifest permissions."""

    def __init__(self, permissions: Mapping[str, Any], *, options: HostOptions | None = None) -> None:
        self.plugin_id = "http_plugin"
        manifest = parse_manifest(
            json.dumps(manifest_dict(permissions=permissions)), plugin_id=self.plugin_id
        )
        engine = shared_engine()
        module = compile_module(
            engine, wasmtime.wat2wasm(host_caller_wat(FUNCTIONS)), plugin_id=self.plugin_id
        )
        linked = LinkedPlugin(
            plugin_id=self.plugin_id,
            engine=engine,
            module=module,
            granted=manifest.permissions.granted(),
            implemented={**IMPLEMENTED, HttpService.name: HttpService.function_names},
        )
        self.env = HostEnvironment(clock=SYSTEM_CLOCK, options=options)
        context = ServiceContext(plugin_id=self.plugin_id, manifest=manifest, config=dict, env=self.env)
        services = build_services(context)
        if not any(isinstance(s, HttpService) for s in services):
            services.append(HttpService.create(context))
        self.services = services
        self.instance = linked.instantiate(bind(self.plugin_id, services, self.env.transcript))

    def call(self, function: str, request: HttpRequest) -> HttpResponse:
        data = request.SerializeToString()
        export = f"call_{function}"
        with self.instance.activate(export):
            ptr = write_buffer(self.instance, data, export=export)
            result = self.instance.call_export(export, (ptr, len(data)))
        assert isinstance(result, int)
        packed = unpack(result)
        raw = self.instance.read_memory(packed.ptr, packed.size) if packed.size else b""
        return HttpResponse.FromString(raw)

    def close(self) -> None:
        self.instance.close()
        for service in self.services:
            service.close()
        self.env.close()


@contextmanager
def harness_for(**http: Any) -> Iterator[HttpHarness]:
    harness = HttpHarness(PERMISSIONS, options=HostOptions(http=HttpOptions(resolver=fake_resolver, **http)))
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def harness() -> Iterator[HttpHarness]:
    with harness_for() as made:
        yield made


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


def verdicts(harness: HttpHarness) -> list[tuple[str, str, str | None]]:
    return [(c.function, c.verdict, c.rule) for c in harness.env.transcript.calls("http")]


def test_get_returns_the_mocked_status_headers_and_body(
    harness: HttpHarness, router: respx.MockRouter
) -> None:
    route = router.get(f"{API}/v1/artist").respond(
        200, headers={"Content-Type": "application/json", "x-rate-limit": "99"}, content=b'{"name":"Nirvana"}'
    )
    response = harness.call("get", HttpRequest(url=f"{API}/v1/artist", headers={"x-api-key": "k"}))
    assert (response.status, response.body, response.error) == (200, b'{"name":"Nirvana"}', "")
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["X-Rate-Limit"] == "99"
    assert route.calls.last.request.headers["X-Api-Key"] == "k"
    assert verdicts(harness) == [("get", "ok", "allowed: https://api.example.com/v1/*")]


def test_post_sends_the_body(harness: HttpHarness, router: respx.MockRouter) -> None:
    router.post(f"{API}/v1/scrobble").mock(
        side_effect=lambda request: httpx.Response(
            201, headers={"Location": "/v1/scrobble/1"}, content=request.content
        )
    )
    response = harness.call("post", HttpRequest(url=f"{API}/v1/scrobble", body=b'{"track":"x"}'))
    assert (response.status, response.body) == (201, b'{"track":"x"}')
    assert response.headers["Location"] == "/v1/scrobble/1"


def test_unpermitted_url_answers_the_original_error(harness: HttpHarness, router: respx.MockRouter) -> None:
    response = harness.call("get", HttpRequest(url="https://other.example.com/"))
    assert response.status == 0
    assert response.error == (
        "Request blocked by plugin permissions: "
        "URL https://other.example.com/ does not match any allowed URL patterns"
    )
    call = harness.env.transcript.calls("http")[-1]
    assert (call.verdict, call.rule, call.detail) == (
        "denied",
        "not-in-allowlist: allowedUrls",
        response.error,
    )


def test_unpermitted_method_answers_the_original_error(
    harness: HttpHarness, router: respx.MockRouter
) -> None:
    route = router.delete(f"{API}/v1/artist").respond(204)
    response = harness.call("delete", HttpRequest(url=f"{API}/v1/artist"))
    assert response.error == (
        "Request blocked by plugin permissions: operation DELETE not allowed for URL pattern https://api.example.com/v1/*"
    )
    assert not route.called
    assert verdicts(harness) == [("delete", "denied", "method: https://api.example.com/v1/*")]


def test_transcript_records_every_call_with_its_verdict(
    harness: HttpHarness, router: respx.MockRouter
) -> None:
    router.get(f"{API}/v1/ok").respond(200)
    router.get(f"{API}/v1/down").mock(side_effect=httpx.ConnectError("connection reset by peer"))
    harness.call("get", HttpRequest(url=f"{API}/v1/ok"))
    harness.call("get", HttpRequest(url="http://localhost:8080/"))
    failed = harness.call("get", HttpRequest(url=f"{API}/v1/down"))
    harness.call("post", HttpRequest(url="http://service.test/x"))
    assert failed.error == f'Get "{API}/v1/down": connection reset by peer'
    assert verdicts(harness) == [
        ("get", "ok", "allowed: https://api.example.com/v1/*"),
        ("get", "denied", "loopback: allowLocalNetwork=false"),
        ("get", "error", "allowed: https://api.example.com/v1/*"),
        ("post", "denied", "method: http://*.test/*"),
    ]
    assert "[rule: loopback: allowLocalNetwork=false]" in str(harness.env.transcript.calls("http")[1])


def test_refused_redirect_hop_answers_the_redirect_and_is_recorded(
    harness: HttpHarness, router: respx.MockRouter
) -> None:
    router.get(f"{API}/v1/jump").respond(
        302, headers={"Location": "http://169.254.169.254/"}, content=b"moved"
    )
    response = harness.call("get", HttpRequest(url=f"{API}/v1/jump"))
    assert (response.status, response.body, response.error) == (302, b"moved", "")
    assert verdicts(harness) == [("get", "denied", "metadata: allowLocalNetwork=false")]


@pytest.mark.parametrize("host", ["rebind.test", "internal.test", "meta.test"])
def test_connect_time_guard_refuses_names_resolving_to_local_addresses(
    harness: HttpHarness, host: str
) -> None:
    # No respx here: the real transport resolves through the injected resolver and refuses to dial.
    response = harness.call("get", HttpRequest(url=f"http://{host}/x"))
    ip = fake_resolver(host, 80)[0]
    assert response.status == 0
    assert response.error.startswith("Request blocked by plugin permissions: requests to ")
    assert response.error.endswith(f"({host} -> {ip})")
    call = harness.env.transcript.calls("http")[-1]
    assert call.verdict == "denied"
    assert call.rule is not None
    assert call.rule.endswith(": allowLocalNetwork=false")


def test_all_seven_functions_are_linked(harness: HttpHarness, router: respx.MockRouter) -> None:
    for function in FUNCTIONS:
        router.route(method=function.upper(), url="http://service.test/x").respond(200)
    outcomes = {f: harness.call(f, HttpRequest(url="http://service.test/x")) for f in FUNCTIONS}
    assert outcomes["get"].status == 200
    for function in FUNCTIONS[1:]:
        assert outcomes[function].error.startswith(
            f"Request blocked by plugin permissions: operation {function.upper()} not allowed"
        )


def test_legacy_mode_through_the_guest(router: respx.MockRouter) -> None:
    with harness_for(mode="legacy") as harness:
        response = harness.call("get", HttpRequest(url="http://0x7f.1/"))
        # The original did not read 0x7f.1 as 127.0.0.1: only the allow-list refuses it here.
        assert "does not match any allowed URL patterns" in response.error


def test_http_is_bound_once(harness: HttpHarness) -> None:
    assert [service.name for service in harness.services].count("http") == 1
