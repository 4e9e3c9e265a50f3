"""The http host service against respx mocks, and against a real server on 127.0.0.1.

Every socket a test opens is checked: anything but a loopback address fails the test.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import respx

from pytest_wasmhost.abi.proto.http_pb2 import HttpRequest, HttpResponse
from pytest_wasmhost.clock import SYSTEM_CLOCK
from pytest_wasmhost.host.base import Denied, HostEnvironment, HostHardError, ServiceContext
from pytest_wasmhost.host.http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    GO_USER_AGENT,
    HttpClient,
    HttpOptions,
    HttpService,
    canonical_header_key,
    method_warnings,
)
from pytest_wasmhost.host.netpolicy import AddressGuard, NetPolicy
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.manifest import Manifest, parse_manifest
from tests.support.plugins import manifest as manifest_dict
from tests.support.ssrf_corpus import FAKE_DNS, REDIRECT_TARGETS, fake_resolver

API = "https://api.example.com"
ANY_API = (("https://api.example.com/*", ("*",)), ("https://api.example.com", ("*",)))


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


Make = Callable[..., HttpService]


@pytest.fixture
def make() -> Iterator[Make]:
    clients: list[HttpClient] = []

    def build(
        allowed: Sequence[tuple[str, Sequence[str]] | str] = ANY_API,
        *,
        allow_local: bool = False,
        mode: str = "strict",
        resolver: Any = fake_resolver,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> HttpService:
        policy = NetPolicy(allowed, allow_local_network=allow_local, mode=mode, resolver=resolver)  # type: ignore[arg-type]
        clients.append(HttpClient())
        return HttpService(policy, clients[-1], max_response_bytes=max_response_bytes)

    yield build
    for each in clients:
        each.close()


def call(
    service: HttpService,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout_ms: int = 0,
) -> tuple[HttpResponse, Denied | None]:
    """What the plugin gets back, and the denial the transcript would record (if any)."""
    request = HttpRequest(url=url, headers=dict(headers or {}), body=body, timeout_ms=timeout_ms)
    try:
        return service.request(method, request), None
    except Denied as exc:
        denial = exc
    assert isinstance(denial.response, HttpResponse)
    return denial.response, denial


def fail_unmatched(router: respx.MockRouter) -> None:
    """Make a request no route matches fail the test with the routes that were tried.

    respx's ``assert_all_mocked`` already fails such a request ("... not mocked!"); a catch-all route
    added after the real ones makes the failure list what was tried.
    """
    tried = list(router.routes)

    def unmatched(request: httpx.Request) -> httpx.Response:
        listing = "\n".join(f"  {route.name or '-'}: {route.pattern!r}" for route in tried)
        raise AssertionError(
            f"no respx route matched {request.method} {request.url}; routes tried:\n{listing}"
        )

    router.route(name="unmatched").mock(side_effect=unmatched)


def sent(route: respx.Route) -> httpx.Request:
    request: httpx.Request = route.calls.last.request
    return request


# --------------------------------------------------------------------------------------------------
# A real server on 127.0.0.1, for what only a socket can show
# --------------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/slow":
            time.sleep(0.05)  # the spec's "sleeps 50 ms"
            self._reply(200, b"late")
        elif self.path == "/gzip":
            self._reply(200, gzip.compress(b"unzipped by the host"), {"Content-Encoding": "gzip"})
        elif self.path == "/echo":
            self._reply(200, json.dumps(dict(self.headers.items())).encode())
        else:
            self._reply(201, b"hello", {"X-Test": "ok"})


@pytest.fixture(scope="module")
def local_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --------------------------------------------------------------------------------------------------
# Request execution (the spec's table)
# --------------------------------------------------------------------------------------------------


def test_get_with_headers_and_timeout(router: respx.MockRouter, make: Make) -> None:
    route = router.get(f"{API}/v1").respond(201, headers={"X-Test": "ok"}, content=b"hello")
    response, denial = call(make(), "GET", f"{API}/v1", headers={"A": "B"}, timeout_ms=1000)
    assert denial is None
    assert (response.status, response.body, response.headers["X-Test"], response.error) == (
        201,
        b"hello",
        "ok",
        "",
    )
    assert sent(route).headers["A"] == "B"


@pytest.mark.parametrize(
    ("method", "body", "prefix"),
    [("POST", b"abc", b"got:"), ("PUT", b"xyz", b"put:"), ("PATCH", b"test-patch", b"patch:")],
)
def test_body_methods_send_the_body(
    router: respx.MockRouter, make: Make, method: str, body: bytes, prefix: bytes
) -> None:
    router.route(method=method, url=f"{API}/echo").mock(
        side_effect=lambda request: httpx.Response(200, content=prefix + request.content)
    )
    response, _ = call(make(), method, f"{API}/echo", body=body)
    assert (response.status, response.body) == (200, prefix + body)


def test_delete(router: respx.MockRouter, make: Make) -> None:
    router.delete(f"{API}/item/1").respond(204)
    response, _ = call(make(), "DELETE", f"{API}/item/1")
    assert (response.status, response.error) == (204, "")


def test_head(router: respx.MockRouter, make: Make) -> None:
    router.head(f"{API}/doc").respond(
        200, headers={"Content-Type": "application/json", "Content-Length": "42"}
    )
    response, _ = call(make(), "HEAD", f"{API}/doc")
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Content-Length"] == "42"
    assert response.body == b""


def test_options(router: respx.MockRouter, make: Make) -> None:
    verbs = "GET, POST, PUT, DELETE, PATCH, HEAD, OPTIONS"
    router.options(f"{API}/x").respond(204, headers={"Allow": verbs, "Access-Control-Allow-Methods": verbs})
    response, _ = call(make(), "OPTIONS", f"{API}/x")
    assert response.headers["Allow"] == verbs
    assert response.headers["Access-Control-Allow-Methods"] == verbs


@pytest.mark.parametrize("method", ["GET", "DELETE", "HEAD", "OPTIONS"])
def test_body_is_not_sent_for_other_methods(router: respx.MockRouter, make: Make, method: str) -> None:
    route = router.route(method=method, url=f"{API}/x").respond(200)
    call(make(), method, f"{API}/x", body=b"ignored")
    assert sent(route).content == b""
    assert "Content-Length" not in sent(route).headers


def test_post_with_empty_body_sends_content_length_zero(router: respx.MockRouter, make: Make) -> None:
    route = router.post(f"{API}/x").respond(200)
    call(make(), "POST", f"{API}/x")
    assert sent(route).headers["Content-Length"] == "0"


@pytest.mark.parametrize("status", [200, 301, 404, 418, 500, 503])
def test_status_passes_through(router: respx.MockRouter, make: Make, status: int) -> None:
    router.get(f"{API}/s").respond(status, content=b"x")
    response, _ = call(make(), "GET", f"{API}/s")
    assert (response.status, response.body, response.error) == (status, b"x", "")


# --------------------------------------------------------------------------------------------------
# Headers as Go sends and receives them
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("x-api-key", "X-Api-Key"),
        ("CONTENT-TYPE", "Content-Type"),
        ("www-authenticate", "Www-Authenticate"),
        ("a", "A"),
        ("x_y", "X_y"),
        ("bad name", "bad name"),
        ("ümlaut", "ümlaut"),
    ],
)
def test_canonical_header_key(name: str, canonical: str) -> None:
    assert canonical_header_key(name) == canonical


def test_request_headers_are_canonical_with_go_defaults(router: respx.MockRouter, make: Make) -> None:
    route = router.get(f"{API}/h").respond(200)
    headers = {"x-api-key": "k", "host": "evil.example", "content-length": "99", "accept": "application/json"}
    call(make(), "GET", f"{API}/h", headers=headers)
    request = sent(route)
    names = [name for name, _ in request.headers.raw]
    assert b"X-Api-Key" in names
    assert b"Accept" in names
    assert request.headers["Host"] == "api.example.com"  # Go ignores a Host entry in the header map
    assert "Content-Length" not in request.headers
    assert request.headers["User-Agent"] == GO_USER_AGENT
    assert request.headers["Accept-Encoding"] == "gzip"


def test_user_agent_can_be_replaced_or_removed(router: respx.MockRouter, make: Make) -> None:
    route = router.get(f"{API}/ua").respond(200)
    call(make(), "GET", f"{API}/ua", headers={"user-agent": "plugin/1.0"})
    assert sent(route).headers["User-Agent"] == "plugin/1.0"
    call(make(), "GET", f"{API}/ua", headers={"User-Agent": ""})
    assert "User-Agent" not in sent(route).headers


def test_non_ascii_header_values_are_sent_as_utf8(router: respx.MockRouter, make: Make) -> None:
    route = router.get(f"{API}/u").respond(200)
    call(make(), "GET", f"{API}/u", headers={"X-Name": "Beyoncé"})
    assert (b"X-Name", "Beyoncé".encode()) in sent(route).headers.raw


def test_response_headers_canonical_first_value_only(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/m").respond(
        200,
        headers=[
            ("set-cookie", "a=1"),
            ("Set-Cookie", "b=2"),
            ("x-lower", "v"),
            ("Transfer-Encoding", "chunked"),
        ],
    )
    response, _ = call(make(), "GET", f"{API}/m")
    assert response.headers["Set-Cookie"] == "a=1"
    assert response.headers["X-Lower"] == "v"
    assert "Transfer-Encoding" not in response.headers


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({"bad name": "x"}, 'net/http: invalid header field name "bad name"'),
        ({"": "x"}, 'net/http: invalid header field name ""'),
        ({"x-a": "line\r\nbreak"}, 'net/http: invalid header field value for "X-A"'),
    ],
)
def test_invalid_headers_fail_like_go(
    router: respx.MockRouter, make: Make, headers: dict[str, str], error: str
) -> None:
    route = router.get(f"{API}/x").respond(200)
    response, denial = call(make(), "GET", f"{API}/x", headers=headers)
    assert denial is None
    assert response.error == f'Get "{API}/x": {error}'
    assert not route.called


def test_no_cookie_jar(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/login").respond(200, headers={"Set-Cookie": "session=s3cr3t; Path=/"})
    route = router.get(f"{API}/next").respond(200)
    service = make()
    call(service, "GET", f"{API}/login")
    call(service, "GET", f"{API}/next")
    assert "Cookie" not in sent(route).headers


def test_userinfo_becomes_basic_auth_and_is_redacted_in_errors(router: respx.MockRouter, make: Make) -> None:
    route = router.get(f"{API}/private").respond(200)
    call(make(), "GET", "https://user:secret@api.example.com/private")
    assert sent(route).headers["Authorization"] == "Basic dXNlcjpzZWNyZXQ="
    assert "secret" not in str(sent(route).url)
    router.get(f"{API}/down").mock(side_effect=httpx.ConnectError("connection reset"))
    response, _ = call(make(), "GET", "https://user:secret@api.example.com/down")
    assert response.error == 'Get "https://user:***@api.example.com/down": connection reset'


def test_explicit_authorization_wins_over_userinfo(router: respx.MockRouter, make: Make) -> None:
    route = router.get(f"{API}/private").respond(200)
    call(make(), "GET", "https://user:secret@api.example.com/private", headers={"Authorization": "Bearer t"})
    assert sent(route).headers["Authorization"] == "Bearer t"


# --------------------------------------------------------------------------------------------------
# gzip, as Go's transport does it
# --------------------------------------------------------------------------------------------------


def test_gzip_is_decoded_transparently(router: respx.MockRouter, make: Make) -> None:
    payload = gzip.compress(b"first ") + gzip.compress(b"second")  # multi-member, as Go reads it
    router.get(f"{API}/gz").respond(200, headers={"Content-Encoding": "gzip", "X-Keep": "1"}, content=payload)
    response, _ = call(make(), "GET", f"{API}/gz")
    assert response.body == b"first second"
    assert "Content-Encoding" not in response.headers
    assert "Content-Length" not in response.headers
    assert response.headers["X-Keep"] == "1"


def test_gzip_is_left_alone_when_the_plugin_chose_the_encoding(router: respx.MockRouter, make: Make) -> None:
    payload = gzip.compress(b"raw")
    route = router.get(f"{API}/gz").respond(200, headers={"Content-Encoding": "gzip"}, content=payload)
    response, _ = call(make(), "GET", f"{API}/gz", headers={"accept-encoding": "gzip"})
    assert response.body == payload
    assert response.headers["Content-Encoding"] == "gzip"
    assert sent(route).headers["Accept-Encoding"] == "gzip"


@pytest.mark.parametrize(("method", "headers"), [("HEAD", {}), ("GET", {"Range": "bytes=0-1"})])
def test_no_gzip_for_head_or_ranges(
    router: respx.MockRouter, make: Make, method: str, headers: dict[str, str]
) -> None:
    route = router.route(method=method, url=f"{API}/r").respond(206)
    call(make(), method, f"{API}/r", headers=headers)
    assert "Accept-Encoding" not in sent(route).headers


def test_other_encodings_are_returned_raw(router: respx.MockRouter, make: Make) -> None:
    payload = zlib.compress(b"deflated")
    router.get(f"{API}/d").respond(200, headers={"Content-Encoding": "deflate"}, content=payload)
    response, _ = call(make(), "GET", f"{API}/d")
    assert response.body == payload


class _Undecoded(httpx.SyncByteStream):
    """Not a ByteStream, so respx hands the bytes over without decoding them itself."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self._data


def _raw(data: bytes) -> Callable[[httpx.Request], httpx.Response]:
    """A gzip-labelled response carrying exactly ``data``."""
    return lambda _: httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=_Undecoded(data))


def test_corrupt_gzip_is_a_body_error(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/bad").mock(side_effect=_raw(b"not gzip at all"))
    response, _ = call(make(), "GET", f"{API}/bad")
    assert response.error == f'Get "{API}/bad": gzip: invalid header'
    router.get(f"{API}/cut").mock(side_effect=_raw(gzip.compress(b"x" * 100)[:-6]))
    response, _ = call(make(), "GET", f"{API}/cut")
    assert response.error == f'Get "{API}/cut": unexpected EOF'


# --------------------------------------------------------------------------------------------------
# The size cap
# --------------------------------------------------------------------------------------------------


def test_response_size_cap(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/ten").respond(200, content=b"0123456789")
    router.get(f"{API}/eleven").respond(200, content=b"0123456789A")
    service = make(max_response_bytes=10)
    assert call(service, "GET", f"{API}/ten")[0].body == b"0123456789"
    response, denial = call(service, "GET", f"{API}/eleven")
    assert denial is None
    assert (response.status, response.body) == (0, b"")
    assert response.error == (
        f'Get "{API}/eleven": response body exceeds the host\'s limit of 10 bytes '
        "(HostOptions.http.max_response_bytes)"
    )


def test_size_cap_applies_after_gunzip(router: respx.MockRouter, make: Make) -> None:
    bomb = gzip.compress(b"\0" * 1_000_000)
    assert len(bomb) < 2000
    router.get(f"{API}/bomb").respond(200, headers={"Content-Encoding": "gzip"}, content=bomb)
    response, _ = call(make(max_response_bytes=4096), "GET", f"{API}/bomb")
    assert "exceeds the host's limit of 4096 bytes" in response.error


# --------------------------------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------------------------------


def _timeouts(router: respx.MockRouter, make: Make, timeout_ms: int) -> dict[str, float | None]:
    route = router.get(f"{API}/t").respond(200)
    call(make(), "GET", f"{API}/t", timeout_ms=timeout_ms)
    timeouts: dict[str, float | None] = sent(route).extensions["timeout"]
    return timeouts


def test_timeout_zero_means_ten_seconds(router: respx.MockRouter, make: Make) -> None:
    assert all(9.0 < (t or 0) <= 10.0 for t in _timeouts(router, make, 0).values())


def test_timeout_in_milliseconds(router: respx.MockRouter, make: Make) -> None:
    assert all(0.0 < (t or 0) <= 0.25 for t in _timeouts(router, make, 250).values())


def test_negative_timeout_means_none(router: respx.MockRouter, make: Make) -> None:
    assert set(_timeouts(router, make, -1).values()) == {None}


def test_timeout_error_from_the_transport(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/slow").mock(side_effect=httpx.ReadTimeout("timed out"))
    response, _ = call(make(), "GET", f"{API}/slow", timeout_ms=1)
    assert response.error == f'Get "{API}/slow": context deadline exceeded'
    assert "deadline exceeded" in response.error


def test_deadline_covers_a_slow_answer(router: respx.MockRouter, make: Make) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(0.05)
        return httpx.Response(200, content=b"late")

    router.get(f"{API}/slow").mock(side_effect=slow)
    response, _ = call(make(), "GET", f"{API}/slow", timeout_ms=1)
    assert (response.status, response.error) == (0, f'Get "{API}/slow": context deadline exceeded')


def test_deadline_with_a_real_slow_server(make: Make, local_server: str) -> None:
    url = f"http://{local_server}/slow"
    response, _ = call(make(["*"], allow_local=True), "GET", url, timeout_ms=1)
    assert response.error == f'Get "{url}": context deadline exceeded'


# --------------------------------------------------------------------------------------------------
# Redirects
# --------------------------------------------------------------------------------------------------


def _chain(router: respx.MockRouter, hops: int) -> list[respx.Route]:
    routes = [
        router.get(f"{API}/r{i}").respond(
            302, headers={"Location": f"/r{i + 1}"}, content=f"hop {i}".encode()
        )
        for i in range(hops)
    ]
    routes.append(router.get(f"{API}/r{hops}").respond(200, content=b"done"))
    return routes


def test_four_redirects_are_followed(router: respx.MockRouter, make: Make) -> None:
    routes = _chain(router, 4)
    response, denial = call(make(), "GET", f"{API}/r0")
    assert (response.status, response.body, denial) == (200, b"done", None)
    assert all(route.call_count == 1 for route in routes)


def test_the_fifth_redirect_is_returned_as_is(router: respx.MockRouter, make: Make) -> None:
    routes = _chain(router, 6)
    response, denial = call(make(), "GET", f"{API}/r0")
    assert denial is None
    assert (response.status, response.body, response.headers["Location"]) == (302, b"hop 4", "/r5")
    assert [route.call_count for route in routes] == [1, 1, 1, 1, 1, 0, 0]


@pytest.mark.parametrize("status", [301, 302, 303])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_301_302_303_turn_the_method_into_get(
    router: respx.MockRouter, make: Make, status: int, method: str
) -> None:
    router.route(method=method, url=f"{API}/form").respond(status, headers={"Location": "/result"})
    target = router.get(f"{API}/result").respond(200, content=b"ok")
    response, _ = call(make(), method, f"{API}/form", body=b"payload", headers={"Content-Type": "text/plain"})
    assert (response.status, response.body) == (200, b"ok")
    assert sent(target).content == b""
    assert "Content-Length" not in sent(target).headers
    assert sent(target).headers["Content-Type"] == "text/plain"  # Go copies the plugin's headers


@pytest.mark.parametrize("status", [307, 308])
def test_307_308_keep_method_and_body(router: respx.MockRouter, make: Make, status: int) -> None:
    router.post(f"{API}/form").respond(status, headers={"Location": "/again"})
    target = router.post(f"{API}/again").respond(201)
    response, _ = call(make(), "POST", f"{API}/form", body=b"payload")
    assert response.status == 201
    assert sent(target).content == b"payload"


def test_head_stays_head(router: respx.MockRouter, make: Make) -> None:
    router.head(f"{API}/a").respond(302, headers={"Location": "/b"})
    target = router.head(f"{API}/b").respond(200)
    assert call(make(), "HEAD", f"{API}/a")[0].status == 200
    assert target.called


def test_redirect_without_location_is_returned(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/nowhere").respond(302, content=b"no location")
    response, _ = call(make(), "GET", f"{API}/nowhere")
    assert (response.status, response.body) == (302, b"no location")


def test_redirect_sets_referer_like_go(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/a").respond(302, headers={"Location": "https://cdn.example.com/b"})
    same_scheme = router.get("https://cdn.example.com/b").respond(
        302, headers={"Location": "http://cdn.example.com/c"}
    )
    downgraded = router.get("http://cdn.example.com/c").respond(200)
    service = make(["https://*.example.com/*", "http://*.example.com/*"])
    assert call(service, "GET", f"{API}/a")[0].status == 200
    assert sent(same_scheme).headers["Referer"] == f"{API}/a"
    assert "Referer" not in sent(downgraded).headers  # https -> http


CREDENTIALS = {"Authorization": "Bearer t", "Cookie": "s=1", "Proxy-Authorization": "Basic eA=="}


def test_credentials_survive_same_origin_redirects(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/a").respond(302, headers={"Location": "/b"})
    target = router.get(f"{API}/b").respond(200)
    call(make(), "GET", f"{API}/a", headers=CREDENTIALS)
    for name, value in CREDENTIALS.items():
        assert sent(target).headers[name] == value


@pytest.mark.parametrize(
    "location",
    ["https://cdn.example.com/b", "http://api.example.com/b", "https://api.example.com:8443/b"],
    ids=["other-host", "other-scheme", "other-port"],
)
def test_credentials_are_dropped_across_origins(router: respx.MockRouter, make: Make, location: str) -> None:
    router.get(f"{API}/a").respond(302, headers={"Location": location})
    target = router.get(location).respond(200)
    service = make(["*"])
    assert call(service, "GET", f"{API}/a", headers={**CREDENTIALS, "X-Other": "kept"})[0].status == 200
    for name in CREDENTIALS:
        assert name not in sent(target).headers
    assert sent(target).headers["X-Other"] == "kept"


def test_dropped_credentials_stay_dropped_back_on_the_first_origin(
    router: respx.MockRouter, make: Make
) -> None:
    router.get(f"{API}/a").respond(302, headers={"Location": "https://cdn.example.com/b"})
    router.get("https://cdn.example.com/b").respond(302, headers={"Location": f"{API}/c"})
    back = router.get(f"{API}/c").respond(200)
    call(make(["https://*.example.com/*"]), "GET", f"{API}/a", headers=CREDENTIALS)
    assert "Authorization" not in sent(back).headers


def test_refused_hop_returns_the_redirect_response(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/out").respond(
        302, headers={"Location": "https://evil.example.net/x"}, content=b"moved"
    )
    evil = router.get("https://evil.example.net/x").respond(200)
    response, denial = call(make(), "GET", f"{API}/out")
    assert (response.status, response.body, response.error) == (302, b"moved", "")
    assert response.headers["Location"] == "https://evil.example.net/x"
    assert not evil.called
    assert denial is not None
    assert denial.rule == "not-in-allowlist: allowedUrls"
    assert denial.reason == (
        "redirect to https://evil.example.net/x not followed: Request blocked by plugin permissions: "
        "URL https://evil.example.net/x does not match any allowed URL patterns"
    )


def test_redirect_hop_checked_with_the_redirected_method(router: respx.MockRouter, make: Make) -> None:
    router.post(f"{API}/form").respond(303, headers={"Location": "https://cdn.example.com/done"})
    router.get("https://cdn.example.com/done").respond(200)
    service = make([(f"{API}/form", ["POST"]), ("https://cdn.example.com/*", ["POST"])])
    response, denial = call(service, "POST", f"{API}/form")
    assert response.status == 303
    assert denial is not None
    assert denial.rule == "method: https://cdn.example.com/*"


@pytest.mark.parametrize(("location", "code"), REDIRECT_TARGETS)
def test_redirects_to_non_public_addresses_are_refused(
    router: respx.MockRouter, make: Make, location: str, code: str
) -> None:
    router.get(f"{API}/jump").respond(302, headers={"Location": location}, content=b"jump")
    fail_unmatched(router)  # the refused hop must never be requested
    response, denial = call(make(["*"]), "GET", f"{API}/jump")
    assert (response.status, response.body) == (302, b"jump")
    assert denial is not None
    assert denial.rule == f"{code}: allowLocalNetwork=false"


def test_redirect_to_a_rebinding_name_is_refused_at_connect_time(make: Make, local_server: str) -> None:
    # 127.0.0.1 serves the first hop (allowed explicitly); its redirect names a host that resolves to
    # 127.0.0.1 too, which the strict guard refuses when the transport dials it.
    port = local_server.split(":")[1]
    resolver = {"start.test": ["93.184.216.34"], "rebind.test": ["127.0.0.1"]}
    with respx.mock(assert_all_mocked=True) as mock:
        mock.get("http://start.test/").respond(302, headers={"Location": f"http://rebind.test:{port}/"})
        mock.route(host="rebind.test").pass_through()
        service = make(["*"], resolver=lambda host, _: resolver[host])
        response, denial = call(service, "GET", "http://start.test/")
    assert response.status == 302
    assert denial is not None
    assert denial.rule == "loopback: allowLocalNetwork=false"
    assert "(rebind.test -> 127.0.0.1)" in denial.reason


def test_unparseable_location_is_an_error(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/bad").respond(302, headers={"Location": "http://[::1"})
    response, _ = call(make(), "GET", f"{API}/bad")
    assert response.error.startswith(f'Get "{API}/bad": failed to parse Location header "http://[::1": ')


# --------------------------------------------------------------------------------------------------
# Permission refusals and error strings
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "method", "url", "error", "rule"),
    [
        (
            ["*"],
            "GET",
            "http://[::1",
            "invalid URL: parse \"http://[::1\": missing ']' in host",
            "invalid-url",
        ),
        (["*"], "GET", "http://localhost:8080/", "requests to localhost are not allowed", "loopback"),
        (["*"], "GET", "http://10.0.0.1/", "requests to private IP addresses are not allowed", "private"),
        ([], "GET", f"{API}/", "no allowed URLs configured for plugin", "no-allowlist"),
        (
            [(API, ["GET"])],
            "DELETE",
            API,
            f"operation DELETE not allowed for URL pattern {API}",
            f"method: {API}",
        ),
        (
            [(API, ["GET"])],
            "GET",
            "https://other.example.com/",
            "URL https://other.example.com/ does not match any allowed URL patterns",
            "not-in-allowlist",
        ),
    ],
)
def test_permission_errors(make: Make, allowed: Any, method: str, url: str, error: str, rule: str) -> None:
    response, denial = call(make(allowed), method, url)
    assert (response.status, response.body) == (0, b"")
    assert response.error == f"Request blocked by plugin permissions: {error}"
    assert denial is not None
    # The transcript's reason is the plugin's text, plus why for a method refusal (the plugin's text stays).
    assert denial.reason.partition(" (why: ")[0] == response.error
    assert denial.rule is not None
    assert denial.rule.startswith(rule)


def test_a_refused_path_says_why_in_the_transcript_only(make: Make) -> None:
    response, denial = call(make([(API, ["GET"])]), "GET", f"{API}/v1/artist")
    assert response.error == (
        f"Request blocked by plugin permissions: URL {API}/v1/artist does not match any allowed URL patterns"
    )  # the plugin sees the original's text
    assert denial is not None
    assert denial.reason == (
        f'{response.error} (why: "{API}" has no "*", so it matches only the path "/", not "/v1/artist"; '
        f'"{API}/*" would match)'
    )


def test_a_refused_method_says_what_the_pattern_lists(make: Make) -> None:
    response, denial = call(make([(f"{API}/*", ["GET"])]), "post", f"{API}/scrobble")
    assert (
        response.error
        == f"Request blocked by plugin permissions: operation POST not allowed for URL pattern {API}/*"
    )
    assert denial is not None
    assert denial.reason == (
        f'{response.error} (why: "{API}/*" lists only GET, not POST; '
        'add "POST" to its methods in allowedUrls)'
    )


def test_a_refused_redirect_hop_says_why(router: respx.MockRouter, make: Make) -> None:
    router.get(f"{API}/out").respond(302, headers={"Location": "https://example.com/x"})
    response, denial = call(make([("https://*.example.com/*", ["GET"])]), "GET", f"{API}/out")
    assert (response.status, response.error) == (302, "")
    assert denial is not None
    assert denial.reason == (
        "redirect to https://example.com/x not followed: Request blocked by plugin permissions: "
        "URL https://example.com/x does not match any allowed URL patterns "
        '(why: "*" in a host matches exactly one label, so "https://*.example.com/*" does not match '
        '"example.com" itself; "https://example.com/*" would match)'
    )


def _http_manifest(allowed_urls: dict[str, list[str]]) -> Manifest:
    return parse_manifest(manifest_dict(permissions={"http": {"reason": "r", "allowedUrls": allowed_urls}}))


def test_an_imported_method_no_pattern_lists_is_warned() -> None:
    manifest = _http_manifest({f"{API}/*": ["GET"], "https://cdn.example.com/*": ["GET", "HEAD"]})
    assert method_warnings(manifest, ["get", "post", "head", "get_plugin_config"]) == [
        'env.post is imported, but no pattern in permissions.http.allowedUrls lists POST (or "*"), so '
        'every POST request the plugin makes is refused; add "POST" to the methods of the patterns it sends '
        "them to."
    ]


@pytest.mark.parametrize(
    ("allowed_urls", "imported"),
    [
        ({f"{API}/*": ["GET", "POST"]}, ["get", "post"]),
        ({f"{API}/*": ["GET"], f"{API}/hook": ["*"]}, ["get", "delete"]),  # "*" lists every method
        ({f"{API}/*": ["GET"]}, ["connect", "send_text"]),  # no http function imported
    ],
)
def test_no_warning_when_every_imported_method_is_listed(
    allowed_urls: dict[str, list[str]], imported: list[str]
) -> None:
    assert method_warnings(_http_manifest(allowed_urls), imported) == []


def test_no_method_warning_without_the_http_permission() -> None:
    # The import does not link at all then; that is reported as a link error, not this warning.
    assert method_warnings(parse_manifest(manifest_dict()), ["post"]) == []


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://files.example.com/x", 'unsupported protocol scheme "ftp"'),
        ("wss://api.example.com/x", 'unsupported protocol scheme "wss"'),
    ],
)
def test_unsupported_schemes(make: Make, url: str, error: str) -> None:
    response, denial = call(make(["*"]), "GET", url)
    assert denial is None
    assert response.error == f'Get "{url}": {error}'


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
def test_transport_errors_name_the_method_in_title_case(
    router: respx.MockRouter, make: Make, method: str
) -> None:
    router.route(url=f"{API}/x").mock(
        side_effect=httpx.ConnectError("dial tcp: lookup api.example.com: no such host")
    )
    response, _ = call(make(), method, f"{API}/x")
    title = method[0] + method[1:].lower()
    assert response.error == f'{title} "{API}/x": dial tcp: lookup api.example.com: no such host'


def test_an_unmatched_request_fails_the_test_with_the_routes_tried(make: Make) -> None:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        mock.get(f"{API}/v1/users", name="users").respond(200)
        mock.post(f"{API}/v1/users", name="create").respond(201)
        fail_unmatched(mock)
        with pytest.raises(AssertionError) as failure:
            call(make(), "GET", f"{API}/v1/groups")
    message = str(failure.value)
    assert f"no respx route matched GET {API}/v1/groups" in message
    assert "users: " in message
    assert "create: " in message
    # Without the catch-all, respx's own assert_all_mocked still fails the call (it is not swallowed
    # into an error response).
    with respx.mock(assert_all_mocked=True), pytest.raises(AssertionError, match="not mocked"):
        call(make(), "GET", f"{API}/v1/groups")


def test_legacy_hard_error_when_go_cannot_build_the_request(make: Make) -> None:
    service = make(["*"], mode="legacy", allow_local=True)
    with pytest.raises(HostHardError, match='failed to create request: parse "http://\\[::1"'):
        service.request("GET", HttpRequest(url="http://[::1"))


def test_strict_refuses_what_go_cannot_parse_even_with_allow_local_network(make: Make) -> None:
    response, denial = call(make(["*"], allow_local=True), "GET", "http://[::1")
    assert denial is not None
    assert response.error.startswith("Request blocked by plugin permissions: invalid URL: ")


# --------------------------------------------------------------------------------------------------
# The connect-time guard, with the real transport (refusals happen before any socket is opened)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["rebind.test", "internal.test", "mixed.test", "meta.test", "mapped.test"])
def test_connect_time_guard_refuses_names_resolving_to_local_addresses(make: Make, host: str) -> None:
    response, denial = call(make(["*"]), "GET", f"http://{host}/")
    assert denial is not None
    assert response.error.startswith("Request blocked by plugin permissions: requests to ")
    assert f"({host} -> " in response.error
    assert denial.rule is not None
    assert denial.rule.endswith(": allowLocalNetwork=false")


def test_connect_time_resolution_failure_is_a_transport_error(make: Make) -> None:
    response, denial = call(make(["*"]), "GET", "http://nowhere.test/")
    assert denial is None
    assert response.error.startswith('Get "http://nowhere.test/": dial tcp: lookup nowhere.test: ')


def test_real_request_to_a_local_server(make: Make, local_server: str) -> None:
    url = f"http://{local_server}/hello"
    refused, denial = call(make(["*"]), "GET", url)
    assert denial is not None
    assert refused.error == "Request blocked by plugin permissions: requests to localhost are not allowed"
    response, _ = call(make(["*"], allow_local=True), "GET", url)
    assert (response.status, response.body, response.headers["X-Test"]) == (201, b"hello", "ok")


def test_real_gzip_is_decoded(make: Make, local_server: str) -> None:
    response, _ = call(make(["*"], allow_local=True), "GET", f"http://{local_server}/gzip")
    assert response.body == b"unzipped by the host"


def test_the_approved_address_is_dialled_and_the_name_kept(make: Make, local_server: str) -> None:
    port = local_server.split(":")[1]
    service = make(["*"], allow_local=True, resolver=lambda host, _: {"pinned.test": ["127.0.0.1"]}[host])
    response, _ = call(service, "GET", f"http://pinned.test:{port}/echo")
    received = json.loads(response.body)
    assert received["Host"] == f"pinned.test:{port}"
    assert received["User-Agent"] == GO_USER_AGENT


def test_legacy_mode_reproduces_the_original_dns_weakness(make: Make, local_server: str) -> None:
    port = local_server.split(":")[1]
    url = f"http://rebind.test:{port}/hello"
    _, denial = call(make(["*"]), "GET", url)
    assert denial is not None
    legacy, _ = call(make(["*"], mode="legacy"), "GET", url)
    assert (legacy.status, legacy.body) == (201, b"hello")


def test_connection_refused_reads_like_go(make: Make) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}/"
    response, _ = call(make(["*"], allow_local=True), "GET", url)
    assert response.error == f'Get "{url}": dial tcp 127.0.0.1:{port}: connect: connection refused'


# --------------------------------------------------------------------------------------------------
# Service wiring: options, the scope's shared client
# --------------------------------------------------------------------------------------------------


def _context(env: HostEnvironment, permissions: Mapping[str, Any]) -> ServiceContext:
    manifest = parse_manifest(json.dumps(manifest_dict(permissions=permissions)), plugin_id="p")
    return ServiceContext(plugin_id="p", manifest=manifest, config=dict, env=env)


HTTP_PERMISSION = {"http": {"reason": "r", "allowedUrls": {"https://api.example.com/*": ["GET"]}}}


def test_create_reads_the_manifest_and_shares_one_client_per_scope(router: respx.MockRouter) -> None:
    router.get(f"{API}/x").respond(200)
    env = HostEnvironment(clock=SYSTEM_CLOCK, options=HostOptions(http=HttpOptions(resolver=fake_resolver)))
    first = HttpService.create(_context(env, HTTP_PERMISSION))
    second = HttpService.create(_context(env, HTTP_PERMISSION))
    assert [fn.name for fn in first.functions()] == [
        "get",
        "post",
        "put",
        "delete",
        "patch",
        "head",
        "options",
    ]
    assert first.function_names == tuple(fn.name for fn in first.functions())
    assert first.client is second.client
    assert call(first, "GET", f"{API}/x")[0].status == 200
    assert call(first, "POST", f"{API}/x")[1] is not None
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        first.client.transport_for(first.policy.guard)


def test_handlers_dispatch_by_method(router: respx.MockRouter) -> None:
    env = HostEnvironment(clock=SYSTEM_CLOCK)
    service = HttpService.create(_context(env, {"http": {"reason": "r", "allowedUrls": {"*": ["*"]}}}))
    for fn in service.functions():
        route = router.route(method=fn.name.upper(), url=f"{API}/{fn.name}").respond(200)
        fn.handler(HttpRequest(url=f"{API}/{fn.name}"))
        assert route.called
    env.close()


def test_an_injected_transport_replaces_the_network() -> None:
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=request.url.host.encode()))
    options = HostOptions(http=HttpOptions(transport=transport, mode="legacy"))
    env = HostEnvironment(clock=SYSTEM_CLOCK, options=options)
    service = HttpService.create(_context(env, {"http": {"reason": "r", "allowedUrls": {"*": ["*"]}}}))
    assert service.policy.mode == "legacy"
    assert call(service, "GET", "http://anything.test/")[0].body == b"anything.test"
    env.close()


def test_one_pool_per_guard() -> None:
    client = HttpClient()
    strict, local = AddressGuard(), AddressGuard(allow_local_network=True)
    assert client.transport_for(strict) is client.transport_for(AddressGuard())
    assert client.transport_for(strict) is not client.transport_for(local)
    client.close()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"mode": "lenient"}, ValueError, r"HttpOptions.mode must be one of \['strict', 'legacy'\]"),
        ({"max_response_bytes": 0}, ValueError, "HttpOptions.max_response_bytes must be a positive"),
        ({"max_response_bytes": True}, ValueError, "HttpOptions.max_response_bytes must be a positive"),
        ({"resolver": "8.8.8.8"}, TypeError, "HttpOptions.resolver must be callable"),
        ({"transport": object()}, TypeError, "HttpOptions.transport must be an httpx.BaseTransport"),
        ({"max_bytes": 1}, TypeError, "max_bytes"),
    ],
)
def test_options_are_validated(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        HttpOptions(**options)


def test_default_options() -> None:
    assert HttpOptions() == HttpOptions("strict", None, None, DEFAULT_MAX_RESPONSE_BYTES)
    assert FAKE_DNS  # the resolver the tests inject never falls through to real DNS


def test_a_calls_deadline_passes_under_a_frozen_test_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    # The deadline is network time: it must read the host's clock, which freezegun does not freeze.
    from freezegun import freeze_time

    from pytest_wasmhost.host import http

    now = [100.0]
    monkeypatch.setattr(http, "host_monotonic", lambda: now[0])
    with freeze_time("2026-01-01"):
        deadline = http._Deadline(timeout_ms=500)
        assert deadline.remaining() == pytest.approx(0.5)
        now[0] += 0.6
        with pytest.raises(http._DeadlineExceeded):
            deadline.remaining()
