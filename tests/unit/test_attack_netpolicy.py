"""Attacks on the network policy: allow-list paths that are not the path sent, and the SSRF leftovers.

Each test builds the hostile URL (or redirect) and asserts what the host does with it; every one
of them was let through before issue 15. HTTP goes through respx only: a request no route expects
fails the test, so "refused" also means "never sent".
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
import respx

from pytest_wasmhost.abi.proto.http_pb2 import HttpRequest, HttpResponse
from pytest_wasmhost.host.base import Denied
from pytest_wasmhost.host.http import HttpClient, HttpService
from pytest_wasmhost.host.netpolicy import AddressGuard, NetPolicy, whatwg_href
from tests.support.ssrf_corpus import fake_resolver

API = "https://api.example.com"
MODES = ("strict", "legacy")


def policy(
    allowed: Sequence[tuple[str, Sequence[str]] | str],
    *,
    mode: str = "strict",
    allow_local: bool = False,
    resolver: Any = fake_resolver,
) -> NetPolicy:
    return NetPolicy(allowed, allow_local_network=allow_local, mode=mode, resolver=resolver)  # type: ignore[arg-type]


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as mock:
        yield mock


@pytest.fixture
def clients() -> Iterator[list[HttpClient]]:
    made: list[HttpClient] = []
    yield made
    for client in made:
        client.close()


def service(clients: list[HttpClient], allowed: Sequence[str], **options: Any) -> HttpService:
    clients.append(HttpClient())
    return HttpService(policy([(p, ("*",)) for p in allowed], **options), clients[-1])


def get(http: HttpService, url: str) -> tuple[HttpResponse, Denied | None]:
    """What the plugin gets back for ``GET url``, and the denial the transcript records (if any)."""
    try:
        return http.request("GET", HttpRequest(url=url)), None
    except Denied as exc:
        refused = exc
    assert isinstance(refused.response, HttpResponse)
    return refused.response, refused


def never_sent(router: respx.MockRouter) -> None:
    """Fail the test on any request that no route before this one expects."""

    def unexpected(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"sent {request.method} {request.url}, which the policy should refuse")

    router.route(name="unexpected").mock(side_effect=unexpected)


# --------------------------------------------------------------------------------------------------
# Allow-list paths: the pattern judges the path the request goes to
# --------------------------------------------------------------------------------------------------

# Each of these reaches /admin (or /), outside the /api/* pattern, however it is spelled.
ESCAPES_FROM_API = [
    "/api/../admin",
    "/api/./../admin",
    "/api/x/../../admin",
    "/api/%2e%2e/admin",
    "/api/%2E%2E/admin",
    "/api/.%2e/admin",
    "/api/%2e./admin",
    "/api/..%2fadmin",  # a server that decodes before resolving reads ../admin
    "/api\\..\\admin",  # "\" separates segments in the special schemes (WHATWG)
    "/api/..",
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ESCAPES_FROM_API)
def test_dot_segments_do_not_escape_a_path_pattern(mode: str, path: str) -> None:
    checker = policy([(f"{API}/api/*", ("GET",))], mode=mode)
    decision = checker.check_http(API + path, "GET", resolve=False)
    assert (decision.allowed, decision.code) == (False, "not-in-allowlist"), decision
    assert decision.reason == f"URL {API}{path} does not match any allowed URL patterns"  # as written
    # Not a blanket refusal of dots: a dot segment that stays inside /api is matched where it goes.
    assert checker.check_http(f"{API}/api/x/../v1", "GET", resolve=False).allowed


@pytest.mark.parametrize("mode", MODES)
def test_an_exact_pattern_matches_the_resolved_path(mode: str) -> None:
    checker = policy([f"{API}/v1/status"], mode=mode)
    assert not checker.check_http(f"{API}/v1/status/../../admin", "GET", resolve=False).allowed
    # /v1/x/../status is /v1/status, which the original refused as a different spelling
    assert checker.check_http(f"{API}/v1/x/../status", "GET", resolve=False).allowed


def test_a_pattern_matched_as_a_regex_sees_the_resolved_path() -> None:
    # Go cannot parse "host:*", so the original matched the pattern as a regex over the raw URL.
    checker = policy([f"{API}:*/api/*"])
    assert not checker.check_http(f"{API}:443/api/../admin", "GET", resolve=False).allowed
    assert checker.check_http(f"{API}:443/api/v1", "GET", resolve=False).allowed


@pytest.mark.parametrize("mode", MODES)
def test_a_regex_pattern_sees_the_resolved_path_in_the_raw_url(mode: str) -> None:
    # "*http://..." has a colon in its first path segment, so Go cannot parse it: a regex over the URL,
    # which is re-spelled with the resolved path after the authority (also an empty one).
    checker = policy(["*http://api.example.com/b"], mode=mode)
    assert checker.check_http("http://api.example.com/a/../b", "GET", resolve=False).allowed
    assert not checker.check_http("http://api.example.com/a/b", "GET", resolve=False).allowed
    empty_host = policy(["*http:///b"], mode="legacy")
    assert empty_host.check_http("http:///a/../b", "GET").allowed
    assert not empty_host.check_http("http:///a/b", "GET").allowed


def test_a_non_special_scheme_keeps_its_dot_segments_and_strict_refuses_the_ambiguity() -> None:
    # Dot segments are resolved for the special schemes only; httpx resolves them in any scheme, so the
    # strict check sees the allow-list and the client disagree.
    assert policy(["foo://h/a/*"], mode="legacy").check_http("foo://h/a/../b", "GET").allowed
    decision = policy(["*"]).check_http("foo://h/a/../b", "GET", resolve=False)
    assert (decision.code, decision.rule) == ("invalid-url", "strict URL check")
    assert (
        decision.reason
        == "invalid URL: ambiguous path: '/a/../b' to the permission check, '/b' to the HTTP client"
    )


def test_strict_refuses_a_path_the_client_sends_unresolved() -> None:
    # The pattern allows /admin, which is where %2e%2e leads; but httpx sends %2e%2e as it is, and a
    # server that does not decode it routes /api/%2e%2e/admin under /api: not what was checked.
    decision = policy([f"{API}/admin"]).check_http(f"{API}/api/%2e%2e/admin", "GET", resolve=False)
    assert (decision.code, decision.rule) == ("invalid-url", "strict URL check")
    assert "ambiguous path: '/admin' to the permission check, '/api/%2e%2e/admin'" in decision.reason
    backslashes = policy([f"{API}/*"]).check_http(f"{API}/api\\..\\admin", "GET", resolve=False)
    assert backslashes.code == "invalid-url"
    assert "ambiguous path" in backslashes.reason
    # httpx resolves plain dot segments itself: that is the path it sends, and the one checked
    assert policy([f"{API}/admin"]).check_http(f"{API}/api/../admin", "GET", resolve=False).allowed


def test_websocket_patterns_match_the_resolved_path_too() -> None:
    checker = policy(["wss://api.example.com/stream/*"])
    assert not checker.check_websocket("wss://api.example.com/stream/../admin", resolve=False).allowed
    assert not checker.check_websocket("wss://api.example.com/stream/%2e%2e/admin", resolve=False).allowed
    assert checker.check_websocket("wss://api.example.com/stream/./live", resolve=False).allowed


def test_the_http_service_never_sends_an_escaped_path(
    router: respx.MockRouter, clients: list[HttpClient]
) -> None:
    api = router.get(f"{API}/api/v1").respond(200, content=b"api")
    never_sent(router)
    http = service(clients, [f"{API}/api/*"])
    response, denial = get(http, f"{API}/api/../admin")
    assert denial is not None
    assert response.error == (
        "Request blocked by plugin permissions: "
        f"URL {API}/api/../admin does not match any allowed URL patterns"
    )
    assert get(http, f"{API}/api/x/../v1")[0].body == b"api"  # sent to where it resolves
    assert api.call_count == 1


def test_a_redirect_cannot_step_out_of_a_path_pattern(
    router: respx.MockRouter, clients: list[HttpClient]
) -> None:
    # The Location is resolved by the WHATWG rules (%2e%2e is "..") before the policy sees it.
    router.get(f"{API}/api/jump").respond(302, headers={"Location": "/api/%2e%2e/admin"}, content=b"jump")
    never_sent(router)
    response, denial = get(service(clients, [f"{API}/api/*"]), f"{API}/api/jump")
    assert (response.status, response.body) == (302, b"jump")
    assert denial is not None
    assert denial.rule == "not-in-allowlist: allowedUrls"
    assert f"redirect to {API}/admin not followed" in denial.reason


# --------------------------------------------------------------------------------------------------
# SSRF: hosts that end in a number, WHATWG-invalid URLs, WHATWG redirect resolution
# --------------------------------------------------------------------------------------------------

# Not IPv4 (out of range / too many parts) but all-numeric: no URL at all by the WHATWG rules; a
# resolver that wraps 7147006462 or 0x41414141A9FEA9FE to 32 bits reads 169.254.169.254.
NUMERIC_NON_IPV4 = [
    "http://7147006462/",
    "http://0x41414141A9FEA9FE/",
    "http://0x1A9FEA9FE/",
    "http://1.2.3.4.5/",
    "http://256.256.256.256/",
    "http://169.254.169.254.0/",
    "http://metadata.0x0/",
    "http://foo.123/",
]


@pytest.mark.parametrize("allow_local", [False, True])
@pytest.mark.parametrize("url", NUMERIC_NON_IPV4)
def test_hosts_that_end_in_a_number_but_are_not_ipv4_are_refused(url: str, allow_local: bool) -> None:
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["169.254.169.254"]

    checker = policy(["*"], allow_local=allow_local, resolver=resolver)
    for decision in (checker.check_http(url, "GET"), checker.check_websocket(url.replace("http", "ws", 1))):
        assert (decision.allowed, decision.code) == (False, "invalid-url"), decision
        assert "ends in a number but is not an IPv4 address" in decision.reason
    assert looked_up == []  # refused before any lookup


@pytest.mark.parametrize("allow_local", [False, True])
def test_the_connect_time_guard_refuses_a_numeric_non_ipv4_host(allow_local: bool) -> None:
    looked_up: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["169.254.169.254"]

    guard = AddressGuard("strict", allow_local, resolver)
    decision = guard.resolve("7147006462", 80)
    assert (decision.allowed, decision.code) == (False, "invalid-url")
    assert looked_up == []
    assert guard.resolve("public.test", 80).allowed is allow_local  # names still go to the resolver
    assert looked_up == ["public.test"]


WHATWG_INVALID = [
    ("http://api.example.com:65536/", "port-out-of-range"),
    ("http://api.example.com:99999999999/", "port-out-of-range"),
    ("http://[fe80::1%25eth0]/", "no zone ids"),
    ("http://[::1%251]/", "no zone ids"),
    ("http://7147006462/", "ends in a number"),
    ("http://0x41414141A9FEA9FE/", "ends in a number"),
]


@pytest.mark.parametrize(("url", "why"), WHATWG_INVALID)
def test_whatwg_invalid_urls_are_refused_even_with_allow_local_network(url: str, why: str) -> None:
    checker = policy(["*"], allow_local=True)
    for decision in (
        checker.check_http(url, "GET", resolve=False),
        checker.check_websocket(url.replace("http", "ws", 1), resolve=False),
    ):
        assert (decision.allowed, decision.code, decision.rule) == (False, "invalid-url", "strict URL check")
        assert decision.reason.startswith("invalid URL: ")
        assert why in decision.reason
    # the same host with a valid port or without its zone is fine
    assert checker.check_http("http://api.example.com:65535/", "GET", resolve=False).allowed
    assert checker.check_http("http://[fe80::1]/", "GET", resolve=False).allowed


def test_the_http_service_never_dials_a_whatwg_invalid_url(
    router: respx.MockRouter, clients: list[HttpClient]
) -> None:
    never_sent(router)
    http = service(clients, ["*"], allow_local=True)
    for url, why in WHATWG_INVALID:
        response, denial = get(http, url)
        assert denial is not None, url
        assert response.error.startswith("Request blocked by plugin permissions: invalid URL: ")
        assert why in response.error


# Location values whose WHATWG reading names the host 127.0.0.1 (RFC 3986 reads a path on api.example.com).
SLASHED_LOCATIONS = [
    "///127.0.0.1/x",
    "////127.0.0.1/x",
    "/\\127.0.0.1/x",
    "\\\\127.0.0.1/x",
    "\\/127.0.0.1/x",
    "//１２７.０.０.１/x",  # noqa: RUF001 - full-width digits spell 127.0.0.1 (ada-url < 1.11 lost the host)
    "//%31%32%37.0.0.1/x",
]


@pytest.mark.parametrize("location", SLASHED_LOCATIONS)
def test_redirect_locations_are_resolved_by_whatwg_rules(
    router: respx.MockRouter, clients: list[HttpClient], location: str
) -> None:
    # bytes: a server sends a non-ASCII Location as UTF-8
    router.get(f"{API}/jump").respond(302, headers={"Location": location.encode()}, content=b"jump")
    never_sent(router)
    response, denial = get(service(clients, ["*"]), f"{API}/jump")
    assert (response.status, response.body) == (302, b"jump")  # the refused hop answers the redirect
    assert denial is not None
    assert denial.rule == "loopback: allowLocalNetwork=false"
    assert "redirect to https://127.0.0.1/x not followed" in denial.reason


def test_a_slashed_redirect_goes_to_the_host_it_names(
    router: respx.MockRouter, clients: list[HttpClient]
) -> None:
    # Where the local network is allowed, the WHATWG target is the one requested (not a path on API).
    router.get(f"{API}/jump").respond(302, headers={"Location": "///10.0.0.7:8443/x?y=1"})
    target = router.get("https://10.0.0.7:8443/x?y=1").respond(200, content=b"inner")
    never_sent(router)
    response, denial = get(service(clients, ["*"], allow_local=True), f"{API}/jump")
    assert denial is None
    assert (response.status, response.body) == (200, b"inner")
    assert target.call_count == 1


@pytest.mark.parametrize(
    ("location", "why"),
    [
        ("http://7147006462/", "ends in a number"),
        ("//0x41414141A9FEA9FE/", "ends in a number"),
        ("http://api.example.com:65536/", "port-out-of-range"),
        ("http://[fe80::1%25eth0]/", "no zone ids"),
    ],
)
def test_a_redirect_to_a_whatwg_invalid_url_is_not_followed(
    router: respx.MockRouter, clients: list[HttpClient], location: str, why: str
) -> None:
    router.get(f"{API}/jump").respond(302, headers={"Location": location})
    never_sent(router)
    response, denial = get(service(clients, ["*"], allow_local=True), f"{API}/jump")
    assert denial is None
    assert response.error.startswith(f'Get "{API}/jump": failed to parse Location header "{location}": ')
    assert why in response.error


@pytest.mark.parametrize(
    ("url", "why"),
    [
        # 65535 is a valid port: the refusal is about the host
        ("http://7147006462:65535/", "host '7147006462' ends in a number but is not an IPv4 address"),
        ("http://a%25b/", "not a valid URL"),  # "%" but no ":": no IPv6 zone; no number at the end
        ("http://ab%25/", "not a valid URL"),
    ],
)
def test_whatwg_refusals_name_the_rule(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(why)}$"):
        whatwg_href(url)


def test_whatwg_parser_reads_urls_as_browsers_do() -> None:
    base = "https://api.example.com/a/b?q"

    def resolved(location: str) -> str:
        return whatwg_href(location, base)

    assert resolved("///127.0.0.1/x") == "https://127.0.0.1/x"
    assert resolved("/\\evil.example/x") == "https://evil.example/x"
    assert resolved("https:evil.example") == "https://api.example.com/a/evil.example"  # same scheme
    assert resolved("http:evil.example") == "http://evil.example/"  # another scheme: an authority
    assert resolved("x/../../y/%2e/z") == "https://api.example.com/y/z"
    assert resolved("  \t?z ") == "https://api.example.com/a/b?z"
    assert resolved("//2130706433:443/") == "https://127.0.0.1/"
    assert resolved("//[0:0::1]/") == "https://[::1]/"
    assert resolved("//u@v@EXAMPLE.com/") == "https://u%40v@example.com/"
    assert resolved("mailto:x") == "mailto:x"  # not a special scheme: opaque, and the policy refuses it
    # The refusal names its reason (Ada only says "invalid").
    with pytest.raises(ValueError, match="ends in a number but is not an IPv4 address"):
        resolved("//0x41414141A9FEA9FE/")
    with pytest.raises(ValueError, match="missing-scheme-non-relative-URL"):
        whatwg_href("/x")
