"""Host service subsonicapi (spec/services/subsonicapi.md): the acceptance table, the permission rules,
Go's URL handling and the FakeSubsonic backend, driven directly through the service's handler."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_wasmhost.abi.proto import subsonicapi_pb2
from pytest_wasmhost.clock import SYSTEM_CLOCK
from pytest_wasmhost.doubles.subsonic import FakeSubsonic, SubsonicReply
from pytest_wasmhost.host.base import Denied, HostEnvironment, HostHardError, ServiceContext
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.host.subsonicapi import (
    FAKE_SERVER_VERSION,
    NOT_FOUND_BODY,
    RoutedRequest,
    SubsonicApiService,
    SubsonicBackendError,
    SubsonicOptions,
    SubsonicUser,
    scope_backend,
    subsonic_failed,
    subsonic_ok,
)
from pytest_wasmhost.manifest import SubsonicApiPermission, parse_manifest
from tests.support.plugins import manifest as manifest_dict

PLUGIN = "test-plugin"
ROUTER_OK = '{"subsonic-response":{"status":"ok","version":"1.16.1"}}'


@dataclass(frozen=True)
class Outcome:
    """What the guest gets and how the transcript would judge it (as host.base.dispatch does)."""

    response: subsonicapi_pb2.CallResponse
    verdict: str
    rule: str | None = None

    @property
    def error(self) -> str:
        return self.response.error

    @property
    def json(self) -> str:
        return self.response.json


def perm(*, allowed: tuple[str, ...] = (), admins: bool = False) -> SubsonicApiPermission:
    return SubsonicApiPermission(reason="test", allowed_usernames=allowed, allow_admins=admins)


def make(
    permission: SubsonicApiPermission | None = None, backend: FakeSubsonic | None = None
) -> tuple[SubsonicApiService, FakeSubsonic]:
    fake = backend if backend is not None else FakeSubsonic()
    return SubsonicApiService(plugin_id=PLUGIN, backend=fake, permission=permission), fake


def invoke(service: SubsonicApiService, url: str) -> Outcome:
    try:
        response = service.call(subsonicapi_pb2.CallRequest(url=url))
    except Denied as denial:
        return denied(denial)
    return Outcome(response, "error" if response.error else "ok")


def denied(denial: Denied) -> Outcome:
    assert isinstance(denial.response, subsonicapi_pb2.CallResponse)
    assert denial.reason == denial.response.error  # the transcript's detail is the guest's error text
    return Outcome(denial.response, "denied", denial.rule)


# -- the acceptance table (original tests: no permission object, users admin (admin) and user) -----------


def test_ping_returns_the_router_body() -> None:
    service, _ = make(backend=FakeSubsonic(responses={"ping": ROUTER_OK}))
    out = invoke(service, "/rest/ping?u=admin")
    assert (out.verdict, out.error) == ("ok", "")
    assert "subsonic-response" in out.json
    assert "ok" in out.json


def test_required_parameters_are_added_and_the_rest_kept() -> None:
    service, fake = make()
    invoke(service, "/rest/getAlbum.view?id=123&u=admin")
    params = fake.last.params
    assert params["c"] == "test-plugin"
    assert params["f"] == "json"
    assert params["v"] == "1.16.1"
    assert params["id"] == "123"
    assert params["u"] == "admin"


def test_only_path_and_query_of_an_absolute_url_are_used() -> None:
    service, fake = make()
    invoke(service, "https://external.example.com:8080/rest/ping?u=admin")
    assert fake.last.path == "/ping"
    assert fake.last.target == "/ping?c=test-plugin&f=json&u=admin&v=1.16.1"  # no scheme, no host


def test_path_prefix_is_ignored() -> None:
    service, fake = make()
    invoke(service, "/basepath/rest/ping?u=admin")
    assert fake.last.path == "/ping"


def test_internal_authentication_uses_the_u_parameter() -> None:
    service, fake = make()
    invoke(service, "/rest/ping?u=testuser")
    assert fake.last.username == "testuser"


@pytest.mark.parametrize("url", ["/rest/ping?u=admin", "://invalid-url", "/rest/ping?p=password", ""])
def test_without_a_router_every_call_answers_router_not_available(url: str) -> None:
    service = SubsonicApiService(plugin_id=PLUGIN, backend=None, permission=perm())
    out = invoke(service, url)
    assert (out.verdict, out.error, out.json) == ("error", "SubsonicAPI router not available", "")


def test_malformed_url_is_an_invalid_url_format_error() -> None:
    service, fake = make()
    out = invoke(service, "://invalid-url")
    assert "invalid URL format" in out.error
    assert out.error == 'invalid URL format: parse "://invalid-url": missing protocol scheme'
    assert (out.verdict, out.json) == ("error", "")
    assert fake.requests == []


def test_missing_u_is_an_error() -> None:
    service, fake = make()
    out = invoke(service, "/rest/ping?p=password")
    assert out.error == "missing required parameter 'u' (username)"
    assert (out.verdict, out.json) == ("error", "")
    assert fake.requests == []


def test_username_outside_allowed_usernames_is_denied() -> None:
    service, fake = make(perm(allowed=("user",)))
    out = invoke(service, "/rest/ping?u=admin")
    assert "not allowed" in out.error
    assert (out.error, out.json) == ("username admin is not allowed", "")
    assert (out.verdict, out.rule) == ("denied", "allowedUsernames")
    assert fake.requests == []
    assert fake.lookups == []  # the allow-list is checked before the user store


def test_admin_is_denied_when_allow_admins_is_false() -> None:
    service, fake = make(SubsonicApiPermission(reason="test"))
    out = invoke(service, "/rest/ping?u=admin")
    assert "not allowed" in out.error
    assert out.error == "calling SubsonicAPI as admin user is not allowed"
    assert (out.verdict, out.rule) == ("denied", "allowAdmins")
    assert fake.requests == []


def test_admin_is_allowed_when_allow_admins_is_true() -> None:
    service, fake = make(perm(admins=True))
    out = invoke(service, "/rest/ping?u=admin")
    assert (out.verdict, out.error) == ("ok", "")
    assert fake.lookups == []  # with allowAdmins the user is not looked up by the service


# -- the subsonicapi-demo plugin's flow (examples.md) --------------------------------------------------


@pytest.mark.parametrize("user", ["admin", "Admin", "ADMIN"])
def test_demo_flow_ping_then_get_license(user: str) -> None:
    service, fake = make(perm(allowed=("admin",), admins=True))
    ping = invoke(service, f"/rest/ping?u={user}")
    license_ = invoke(service, f"/rest/getLicense?u={user}")
    assert (ping.verdict, license_.verdict) == ("ok", "ok")
    assert json.loads(ping.json)["subsonic-response"]["status"] == "ok"
    doc = json.loads(license_.json)["subsonic-response"]
    assert doc["status"] == "ok"
    assert doc["license"] == {"valid": True}
    assert [(r.endpoint, r.username) for r in fake.requests] == [("ping", user), ("getLicense", user)]


def test_demo_flow_fails_for_another_user() -> None:
    service, _ = make(perm(allowed=("admin",), admins=True))
    out = invoke(service, "/rest/ping?u=user")
    assert (out.verdict, out.error) == ("denied", "username user is not allowed")


# -- permission rules ---------------------------------------------------------------------------------


def test_unknown_user_is_not_found_when_allow_admins_is_false() -> None:
    service, fake = make(perm())
    out = invoke(service, "/rest/ping?u=ghost")
    assert (out.verdict, out.rule, out.error) == ("denied", "allowAdmins", "username ghost not found")
    assert fake.lookups == ["ghost"]
    assert fake.requests == []


def test_non_admin_user_passes_the_admin_check() -> None:
    service, fake = make(perm())
    out = invoke(service, "/rest/ping?u=user")
    assert out.verdict == "ok"
    assert fake.last.username == "user"


def test_disallowed_user_is_refused_even_when_it_exists() -> None:
    service, _ = make(perm(allowed=("someone",)))
    assert invoke(service, "/rest/ping?u=user").error == "username user is not allowed"


def test_unknown_user_with_allow_admins_fails_inside_the_subsonic_api() -> None:
    service, fake = make(perm(admins=True))
    out = invoke(service, "/rest/ping?u=ghost")
    assert (out.verdict, out.error) == ("ok", "")
    doc = json.loads(out.json)["subsonic-response"]
    assert doc["status"] == "failed"
    assert doc["error"] == {"code": 40, "message": "Wrong username or password"}
    assert fake.last.username == "ghost"


def test_user_store_error_is_a_plain_error_with_its_text() -> None:
    service, fake = make(perm())
    fake.store_error = "database is locked"
    out = invoke(service, "/rest/ping?u=user")
    assert (out.verdict, out.error, out.json) == ("error", "database is locked", "")


def test_allowed_usernames_match_case_insensitively_both_ways() -> None:
    service, _ = make(perm(allowed=("AdMiN",), admins=True))
    assert invoke(service, "/rest/ping?u=aDmIn").verdict == "ok"


def test_allowed_usernames_use_go_lower_casing() -> None:
    # Go's strings.ToLower maps U+0130 to "i"; Python's str.lower() gives "i" + U+0307.
    service, _ = make(perm(allowed=("i",), admins=True))
    assert invoke(service, "/rest/ping?u=%C4%B0").verdict == "ok"
    # Go lowers rune by rune, without the final-sigma rule Python's str.lower() applies.
    sigma_alpha_sigma, sigma_alpha_final_sigma = "\u03c3\u03b1\u03c3", "\u03c3\u03b1\u03c2"
    service, _ = make(perm(allowed=(sigma_alpha_final_sigma,), admins=True))
    assert invoke(service, "/rest/ping?u=%CE%A3%CE%91%CE%A3").verdict == "denied"
    service, _ = make(perm(allowed=(sigma_alpha_sigma,), admins=True))
    assert invoke(service, "/rest/ping?u=%CE%A3%CE%91%CE%A3").verdict == "ok"


def test_user_store_folds_ascii_case_only_like_sqlite_nocase() -> None:
    fake = FakeSubsonic(users={"bob": False, "ädmin": False})
    service, _ = make(perm(), fake)
    assert invoke(service, "/rest/ping?u=BOB").verdict == "ok"
    assert invoke(service, "/rest/ping?u=%C3%84DMIN").error == "username ÄDMIN not found"


def test_denial_message_keeps_the_username_as_given() -> None:
    service, _ = make(perm(allowed=("x",)))
    assert invoke(service, "/rest/ping?u=Some+One").error == "username Some One is not allowed"


def test_invalid_utf8_username_reaches_messages_as_replacement_characters() -> None:
    service, fake = make(perm(admins=True))
    assert invoke(service, "/rest/ping?u=%FFx").verdict == "ok"
    assert fake.last.username == "\ufffdx"


# -- the query rewrite and the endpoint ---------------------------------------------------------------


def test_c_f_v_overwrite_the_plugins_values_and_everything_else_passes() -> None:
    service, fake = make()
    invoke(service, "/rest/ping?u=admin&u=user&c=evil&f=xml&v=1.0.0&p=pw&t=tok&s=salt&x=1&x=2")
    assert fake.last.query == (
        ("c", "test-plugin"),
        ("f", "json"),
        ("p", "pw"),
        ("s", "salt"),
        ("t", "tok"),
        ("u", "admin"),
        ("u", "user"),
        ("v", "1.16.1"),
        ("x", "1"),
        ("x", "2"),
    )
    assert fake.last.username == "admin"  # the first u authenticates; p/t/s are never checked


def test_query_is_reencoded_in_sorted_key_form() -> None:
    service, fake = make()
    invoke(service, "/rest/search3?query=a+b%26c&u=admin&artistCount=0&albumCount=5")
    assert fake.last.target == (
        "/search3?albumCount=5&artistCount=0&c=test-plugin&f=json&query=a+b%26c&u=admin&v=1.16.1"
    )


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("/rest/ping?u=admin", "ping"),
        ("/rest/ping/?u=admin", "ping"),
        ("/rest/ping///?u=admin", "ping"),
        ("/basepath/rest/getAlbum.view?u=admin", "getAlbum.view"),
        ("?u=admin", "."),
        ("/?u=admin", "/"),
        ("http://host?u=admin", "."),
        ("http:rest/ping?u=admin", "."),  # opaque URL: no path
        ("/rest/a%2Fb?u=admin", "b"),  # the path is decoded before its last segment is taken
    ],
)
def test_endpoint_is_the_last_path_segment(url: str, endpoint: str) -> None:
    service, fake = make()
    invoke(service, url)
    assert fake.last.endpoint == endpoint


def test_view_suffix_routes_to_the_same_handler() -> None:
    service, _ = make()
    out = invoke(service, "/rest/ping.view?u=admin")
    assert json.loads(out.json)["subsonic-response"]["status"] == "ok"


def test_unknown_endpoint_returns_the_routers_404_text_as_json() -> None:
    service, fake = make()
    out = invoke(service, "/rest/nope?u=admin")
    assert (out.verdict, out.error, out.json) == ("ok", "", NOT_FOUND_BODY)
    assert fake.last.endpoint == "nope"


def test_body_is_returned_whatever_the_status() -> None:
    body = "This endpoint is not implemented, but may be in future releases"
    service, _ = make(backend=FakeSubsonic(responses={"getPodcasts": SubsonicReply(501, body)}))
    assert invoke(service, "/rest/getPodcasts?u=admin").json == body


def test_backend_failure_is_a_hard_error() -> None:
    class Broken(FakeSubsonic):
        def handle(self, endpoint: str, query: list[tuple[str, str]], username: str) -> tuple[int, str]:
            raise SubsonicBackendError("connection refused")

    service, _ = make(backend=Broken())
    with pytest.raises(HostHardError, match="the Subsonic backend failed: connection refused"):
        invoke(service, "/rest/ping?u=admin")


# -- Go's net/url, as Go 1.25 answers (values produced by the real Go toolchain) ------------------------

GO_ERRORS = [
    ("://invalid-url", 'parse "://invalid-url": missing protocol scheme'),
    ("/a%zz?u=a", 'parse "/a%zz?u=a": invalid URL escape "%zz"'),
    ("/a%1é?u=a", 'parse "/a%1é?u=a": invalid URL escape "%1\\xc3"'),
    ("/rest/p\x01ing?u=a", 'parse "/rest/p\\x01ing?u=a": net/url: invalid control character in URL'),
    ("1:2/x?u=a", 'parse "1:2/x?u=a": first path segment in URL cannot contain colon'),
    ("http://h:8a/x?u=a", 'parse "http://h:8a/x?u=a": invalid port ":8a" after host'),
    ("http://[zz]/x?u=a", 'parse "http://[zz]/x?u=a": invalid host: ParseAddr("zz"): unable to parse IP'),
    ("http://[::1/x?u=a", "parse \"http://[::1/x?u=a\": missing ']' in host"),
    ("http://[1.2.3.4]/x?u=a", 'parse "http://[1.2.3.4]/x?u=a": invalid IP-literal'),
    ("http://a[::1]/x?u=a", 'parse "http://a[::1]/x?u=a": invalid IP-literal'),
    ("http://u ser@h/x?u=a", 'parse "http://u ser@h/x?u=a": net/url: invalid userinfo'),
    ("http://h%41/x?u=a", 'parse "http://h%41/x?u=a": invalid URL escape "%41"'),
    ("http://h /x?u=a", 'parse "http://h /x?u=a": invalid character " " in host name'),
    ("/rest/ping?u=a#frag%zz", 'parse "/rest/ping?u=a#frag%zz": invalid URL escape "%zz"'),
    (
        "http://[::1.2.3.4.5]/?u=a",
        'parse "http://[::1.2.3.4.5]/?u=a": invalid host: ParseAddr("::1.2.3.4.5"): IPv4 address too long',
    ),
    ("http://[fe80::1%25%0a]/?u=a", 'parse "http://[fe80::1%25%0a]/?u=a": invalid URL escape "%0a"'),
    ("http://[%ff]/?u=a", 'parse "http://[%ff]/?u=a": invalid host: ParseAddr("\\xff"): unable to parse IP'),
    (
        "http://[1::2::3]/?u=a",
        'parse "http://[1::2::3]/?u=a": invalid host: ParseAddr("1::2::3"): multiple :: in address (at ":3")',
    ),
]


@pytest.mark.parametrize(("url", "go_error"), GO_ERRORS)
def test_url_errors_are_gos(url: str, go_error: str) -> None:
    service, fake = make()
    out = invoke(service, url)
    assert (out.verdict, out.error, out.json) == ("error", f"invalid URL format: {go_error}", "")
    assert fake.requests == []


GO_ROUTED = [
    ("x:y/z?u=a", ".", "a", "/.?c=test-plugin&f=json&u=a&v=1.16.1"),
    ("http://h<>/x?u=a", "x", "a", "/x?c=test-plugin&f=json&u=a&v=1.16.1"),
    ("http://h:80:80/rest/ping?u=a", "ping", "a", "/ping?c=test-plugin&f=json&u=a&v=1.16.1"),
    ("http://[::1]:4533/rest/ping?u=admin", "ping", "admin", "/ping?c=test-plugin&f=json&u=admin&v=1.16.1"),
    ("http://[fe80::1%25en0]/rest/ping?u=a", "ping", "a", "/ping?c=test-plugin&f=json&u=a&v=1.16.1"),
    ("/rest/ping?u=a;b&u=c", "ping", "c", "/ping?c=test-plugin&f=json&u=c&v=1.16.1"),  # ';' drops a pair
    ("/rest/ping?u=%zz&u=b", "ping", "b", "/ping?c=test-plugin&f=json&u=b&v=1.16.1"),  # so does a bad escape
    ("/rest/ping?u=a+b&x=%20y&=z&&k", "ping", "a b", "/ping?=z&c=test-plugin&f=json&k=&u=a+b&v=1.16.1&x=+y"),
    ("/rest/a%3Fb?u=x", "a?b", "x", "/a%3Fb?c=test-plugin&f=json&u=x&v=1.16.1"),
    ("/rest/..?u=x", "..", "x", "/..?c=test-plugin&f=json&u=x&v=1.16.1"),
    ("/?u=admin", "/", "admin", "//?c=test-plugin&f=json&u=admin&v=1.16.1"),
    ("*?u=a", "*", "a", "/%2A?c=test-plugin&f=json&u=a&v=1.16.1"),
    ("/rest/x:y?u=a", "x:y", "a", "/x:y?c=test-plugin&f=json&u=a&v=1.16.1"),
    ("HTTP://H/REST/PING.VIEW?u=A#top", "PING.VIEW", "A", "/PING.VIEW?c=test-plugin&f=json&u=A&v=1.16.1"),
    ("/x?u=a&k=%E2%82%AC&k=1", "x", "a", "/x?c=test-plugin&f=json&k=%E2%82%AC&k=1&u=a&v=1.16.1"),
    ("//host/rest/ping?u=a", "ping", "a", "/ping?c=test-plugin&f=json&u=a&v=1.16.1"),
    ("///rest/ping?u=a", "ping", "a", "/ping?c=test-plugin&f=json&u=a&v=1.16.1"),
    (
        "/rest/p?u=a&c=evil&f=xml&v=1&p=pw&t=tt&s=ss",
        "p",
        "a",
        "/p?c=test-plugin&f=json&p=pw&s=ss&t=tt&u=a&v=1.16.1",
    ),
]


@pytest.mark.parametrize(("url", "endpoint", "user", "target"), GO_ROUTED)
def test_routed_request_is_gos(url: str, endpoint: str, user: str, target: str) -> None:
    service, fake = make()
    out = invoke(service, url)
    assert out.error == ""
    assert (fake.last.endpoint, fake.last.username, fake.last.target) == (endpoint, user, target)


# -- creation from the scope's options -----------------------------------------------------------------


def context(options: SubsonicOptions, permissions: dict[str, Any] | None = None) -> ServiceContext:
    grants = permissions if permissions is not None else {"subsonicapi": {"reason": "x"}}
    manifest = parse_manifest(json.dumps(manifest_dict(permissions=grants)), plugin_id="p1")
    env = HostEnvironment(clock=SYSTEM_CLOCK, options=HostOptions(subsonicapi=options))
    return ServiceContext(plugin_id="p1", manifest=manifest, config=dict, env=env)


def test_create_reads_the_backend_and_the_permission() -> None:
    fake = FakeSubsonic()
    service = SubsonicApiService.create(context(SubsonicOptions(backend=fake)))
    assert invoke(service, "/rest/ping?u=admin").error == "calling SubsonicAPI as admin user is not allowed"
    assert invoke(service, "/rest/ping?u=user").verdict == "ok"
    assert fake.last.params["c"] == "p1"


def test_a_factory_makes_one_backend_per_scope() -> None:
    ctx = context(SubsonicOptions(backend=FakeSubsonic))
    first = scope_backend(ctx.env)
    assert isinstance(first, FakeSubsonic)
    assert scope_backend(ctx.env) is first  # every plugin of the scope reaches the same one
    service = SubsonicApiService.create(ctx)
    assert '"status":"ok"' in invoke(service, "/rest/ping?u=user").json
    assert first.last.username == "user"
    assert scope_backend(context(SubsonicOptions(backend=FakeSubsonic)).env) is not first


def test_without_a_backend_there_is_no_router() -> None:
    # The default: the service never invents a server; the fixtures and the CLI wire in FakeSubsonic.
    for options in (SubsonicOptions(), SubsonicOptions(backend=None)):
        service = SubsonicApiService.create(context(options))
        assert invoke(service, "/rest/ping?u=admin").error == "SubsonicAPI router not available"


def test_options_refuse_a_backend_that_is_not_one() -> None:
    with pytest.raises(TypeError, match=r"must provide find_user\(\) and handle\(\)"):
        SubsonicOptions(backend=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"must provide find_user\(\) and handle\(\)"):
        SubsonicOptions(backend="http://x")  # type: ignore[arg-type]


def test_a_factory_that_makes_no_backend_is_refused() -> None:
    ctx = context(SubsonicOptions(backend=lambda: object()))  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match=r"made object, which does not provide find_user\(\) and handle\(\)"):
        scope_backend(ctx.env)


def test_service_links_call_only() -> None:
    service, _ = make()
    (fn,) = service.functions()
    assert (fn.service, fn.name) == ("subsonicapi", "call")
    assert SubsonicApiService.function_names == ("call",)


# -- FakeSubsonic ---------------------------------------------------------------------------------------


def test_fake_default_documents_have_navidromes_shape() -> None:
    fake = FakeSubsonic()
    version = FAKE_SERVER_VERSION
    envelope = f'"status":"ok","version":"1.16.1","type":"navidrome","serverVersion":"{version}"'
    assert fake.handle("ping", [], "admin") == (
        200,
        f'{{"subsonic-response":{{{envelope},"openSubsonic":true}}}}',
    )
    status, body = fake.handle("getLicense", [], "user")
    assert status == 200
    assert body.endswith(',"openSubsonic":true,"license":{"valid":true}}}')


def test_fake_unknown_user_gets_error_40_and_unknown_endpoint_404_first() -> None:
    fake = FakeSubsonic()
    status, body = fake.handle("ping", [], "ghost")
    assert status == 200
    assert json.loads(body)["subsonic-response"]["error"] == {
        "code": 40,
        "message": "Wrong username or password",
    }
    assert fake.handle("nope", [], "ghost") == (404, NOT_FOUND_BODY)  # routing before authentication


def test_fake_canned_responses_documents_texts_replies_and_callables() -> None:
    seen: list[RoutedRequest] = []

    def get_album(request: RoutedRequest) -> dict[str, Any]:
        seen.append(request)
        return subsonic_ok(album={"id": request.params["id"], "name": "<A & B>"})

    fake = FakeSubsonic(responses={"getAlbum": get_album, "raw": "plain text"})
    fake.respond("gone", SubsonicReply(410, "This endpoint will not be implemented"))
    status, body = fake.handle("getAlbum.view", [("id", "7"), ("u", "admin")], "admin")
    assert status == 200
    assert '"name":"\\u003cA \\u0026 B\\u003e"' in body  # Go's encoding/json escapes
    assert json.loads(body)["subsonic-response"]["album"] == {"id": "7", "name": "<A & B>"}
    assert seen[0].endpoint == "getAlbum.view"
    assert fake.handle("raw", [], "admin") == (200, "plain text")
    assert fake.handle("gone", [], "admin") == (410, "This endpoint will not be implemented")


def test_fake_records_every_routed_request_and_can_clear() -> None:
    fake = FakeSubsonic()
    fake.handle("ping", [("u", "admin")], "admin")
    fake.handle("nope", [], "user")
    assert [(r.endpoint, r.query, r.username) for r in fake.requests] == [
        ("ping", (("u", "admin"),), "admin"),
        ("nope", (), "user"),
    ]
    fake.clear()
    assert fake.requests == []
    with pytest.raises(LookupError):
        _ = fake.last


def test_fake_users_and_store_error() -> None:
    fake = FakeSubsonic(users={})
    assert fake.find_user("admin") is None
    fake.add_user("Carol", admin=True)
    assert fake.find_user("CAROL") == SubsonicUser("Carol", True)
    fake.store_error = "boom"
    # Navidrome's authentication answers any store error with code 40.
    assert json.loads(fake.handle("ping", [], "carol")[1])["subsonic-response"]["error"]["code"] == 40


def test_routed_request_helpers() -> None:
    request = RoutedRequest("a b", (("x", "2"), ("u", "me"), ("x", "1")), "me")
    assert request.path == "/a b"
    assert request.params == {"x": "2", "u": "me"}
    assert request.get_all("x") == ["2", "1"]
    assert request.target == "/a%20b?u=me&x=2&x=1"


def test_subsonic_failed_defaults_to_navidromes_texts() -> None:
    doc = subsonic_failed(70)["subsonic-response"]
    assert doc["status"] == "failed"
    assert doc["error"] == {"code": 70, "message": "The requested data was not found"}
    assert subsonic_failed(99)["subsonic-response"]["error"]["message"] == "A generic error"
    assert subsonic_failed(0, "custom")["subsonic-response"]["error"]["message"] == "custom"


# -- any URL is answered, never raised --------------------------------------------------------------------

URL_CHARS = "/:?#%@[]+&=;.uU ab019fF-_~é\x01İ"  # what URL parsing reacts to


@settings(max_examples=300, deadline=None)
@given(url=st.text(alphabet=st.sampled_from(list(URL_CHARS)) | st.characters(codec="utf-8"), max_size=60))
def test_any_url_gets_either_json_or_an_error(url: str) -> None:
    service, _ = make(perm(admins=True))
    out = invoke(service, url)
    assert (out.error == "") != (out.json == "")
    assert out.verdict in ("ok", "error", "denied")
