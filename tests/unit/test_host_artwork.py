"""The artwork host service (spec/services/artwork.md): URL rules, the JWT and its exact bytes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from urllib.parse import urlsplit

import pytest

from pytest_wasmhost.abi.proto import artwork_pb2
from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.host.artwork import (
    DEFAULT_SECRET,
    ArtworkOptions,
    ArtworkService,
    LiveArtworkOptions,
    artwork_id,
    artwork_url,
    decode_artwork_token,
    encode_artwork_token,
    live_options,
)
from pytest_wasmhost.host.base import SERVICE_FUNCTIONS, HostEnvironment, ServiceContext
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.manifest import parse_manifest
from tests.support.plugins import manifest as manifest_dict

SHARE = ArtworkOptions(share_url="https://music.example.com")
HEADER_B64 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"  # {"alg":"HS256","typ":"JWT"}


def service(settings: ArtworkOptions | None = None) -> ArtworkService:
    fixed = settings or ArtworkOptions()
    return ArtworkService(lambda: fixed)


def call(svc: ArtworkService, function: str, item_id: str, size: int = 0) -> str:
    handler = getattr(svc, function)
    response = handler(artwork_pb2.GetArtworkUrlRequest(id=item_id, size=size))
    assert isinstance(response, artwork_pb2.GetArtworkUrlResponse)
    return str(response.url)


def token_of(url: str) -> str:
    path = urlsplit(url).path
    assert "/share/img/" in path
    return path.rsplit("/", 1)[1]


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def context(env: HostEnvironment) -> ServiceContext:
    permissions = {"artwork": {"reason": "tests"}}
    manifest = parse_manifest(json.dumps(manifest_dict(permissions=permissions)), plugin_id="p")
    return ServiceContext(plugin_id="p", manifest=manifest, config=dict, env=env)


# -- the service's shape ------------------------------------------------------------------------------


def test_function_names_are_the_originals_in_link_order() -> None:
    assert ArtworkService.function_names == SERVICE_FUNCTIONS["artwork"]
    functions = service().functions()
    assert [fn.name for fn in functions] == list(SERVICE_FUNCTIONS["artwork"])
    assert {(fn.service, fn.request_type, fn.response_type) for fn in functions} == {
        ("artwork", artwork_pb2.GetArtworkUrlRequest, artwork_pb2.GetArtworkUrlResponse)
    }


# -- acceptance rows ----------------------------------------------------------------------------------


def test_share_url_artist_with_size_300() -> None:
    url = call(service(SHARE), "get_artist_url", "123", 300)
    assert "https://music.example.com" in url
    assert "size=300" in url


def test_share_url_album_with_size_0() -> None:
    url = call(service(SHARE), "get_album_url", "456", 0)
    assert "https://music.example.com" in url
    assert "size=" not in url
    assert "?" not in url


def test_share_url_track_with_size_150() -> None:
    url = call(service(SHARE), "get_track_url", "789", 150)
    assert "https://music.example.com" in url
    assert "size=150" in url


def test_no_share_url_is_localhost() -> None:
    url = call(service(), "get_artist_url", "123")
    assert "http://localhost" in url
    assert url.startswith("http://localhost/share/img/")


# -- the whole URL ----------------------------------------------------------------------------------------


def test_share_url_form_is_exact() -> None:
    token = encode_artwork_token("ar-123_0", DEFAULT_SECRET)
    assert call(service(SHARE), "get_artist_url", "123", 300) == (
        f"https://music.example.com/share/img/{token}?size=300"
    )


@pytest.mark.parametrize("size", [0, -1, -300])
def test_size_zero_or_negative_adds_no_query(size: int) -> None:
    url = call(service(), "get_album_url", "1", size)
    assert urlsplit(url).query == ""


def test_share_url_path_is_ignored_and_base_path_not_applied() -> None:
    settings = ArtworkOptions(share_url="https://music.example.com/navidrome/?x=1#top", base_path="/music")
    url = call(service(settings), "get_track_url", "1", 64)
    assert url.startswith("https://music.example.com/share/img/")
    assert url.endswith("?size=64")


@pytest.mark.parametrize(
    ("settings", "prefix"),
    [
        (ArtworkOptions(base_host="nd.example.com:4533"), "http://nd.example.com:4533/share/img/"),
        (
            ArtworkOptions(base_host="nd.example.com", base_scheme="https"),
            "https://nd.example.com/share/img/",
        ),
        (
            ArtworkOptions(base_host="nd.example.com", base_scheme="https", base_path="/music"),
            "https://nd.example.com/music/share/img/",
        ),
        (ArtworkOptions(base_path="/music"), "http://localhost/music/share/img/"),
        (ArtworkOptions(base_scheme="https"), "http://localhost/share/img/"),  # BaseScheme needs BaseHost
    ],
)
def test_base_host_scheme_and_path(settings: ArtworkOptions, prefix: str) -> None:
    assert call(service(settings), "get_artist_url", "123").startswith(prefix)


@pytest.mark.parametrize(
    ("base_path", "prefix"),
    [
        ("/music/", "http://localhost/music/share/img/"),  # Go's path.Join cleans the trailing slash
        ("/", "http://localhost/share/img/"),
        ("music", "http://localhost/music/share/img/"),  # url.String adds the slash after the host
        ("/a//b/./c/..", "http://localhost/a/b/share/img/"),
        ("/my music", "http://localhost/my%20music/share/img/"),  # escaped as Go escapes a path
    ],
)
def test_base_path_is_joined_as_go_joins_paths(base_path: str, prefix: str) -> None:
    assert call(service(ArtworkOptions(base_path=base_path)), "get_artist_url", "1").startswith(prefix)


@pytest.mark.parametrize(
    ("share_url", "prefix"),
    [
        ("HTTPS://Music.Example.com", "https://Music.Example.com/share/img/"),  # scheme lowercased only
        ("https://user:secret@music.example.com:8443/x", "https://music.example.com:8443/share/img/"),
        ("https://café.example", "https://caf%C3%A9.example/share/img/"),  # Go escapes non-ASCII hosts
        ("https://caf%C3%A9.example", "https://caf%C3%A9.example/share/img/"),
        ("music.example.com", "/share/img/"),  # no scheme: Go yields a relative URL
    ],
)
def test_share_url_is_read_as_go_parses_it(share_url: str, prefix: str) -> None:
    assert call(service(ArtworkOptions(share_url=share_url)), "get_album_url", "1").startswith(prefix)


@pytest.mark.parametrize(
    "share_url",
    ["https://music.example.com:port", "https://music.example.com\n", " https://music.example.com", "://x"],
)
def test_share_url_that_go_cannot_parse_falls_back_to_rule_2(share_url: str) -> None:
    settings = ArtworkOptions(share_url=share_url, base_path="/music")
    assert call(service(settings), "get_album_url", "1").startswith("http://localhost/music/share/img/")


# -- the token ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "claim"),
    [("get_artist_url", "ar-123_0"), ("get_album_url", "al-123_0"), ("get_track_url", "mf-123_0")],
)
def test_token_claims_name_the_kind_and_id(function: str, claim: str) -> None:
    url = call(service(SHARE), function, "123", 300)
    assert decode_artwork_token(token_of(url), DEFAULT_SECRET) == {"id": claim, "iss": "ND"}


def test_empty_id_still_gives_a_url_with_an_empty_id_claim() -> None:
    url = call(service(), "get_artist_url", "")
    assert url.startswith("http://localhost/share/img/")
    assert decode_artwork_token(token_of(url), DEFAULT_SECRET) == {"id": "", "iss": "ND"}
    assert artwork_id("ar", "") == ""


def test_ids_are_not_validated() -> None:
    url = call(service(), "get_track_url", "no such track / ?&")
    assert decode_artwork_token(token_of(url), DEFAULT_SECRET)["id"] == "mf-no such track / ?&_0"


def test_token_bytes_are_the_go_libraries() -> None:
    token = encode_artwork_token("ar-123_0", DEFAULT_SECRET)
    header, payload, signature = token.split(".")
    assert header == HEADER_B64
    assert b64url_decode(header) == b'{"alg":"HS256","typ":"JWT"}'
    assert b64url_decode(payload) == b'{"id":"ar-123_0","iss":"ND"}'  # claims sorted, compact
    expected = hmac.new(DEFAULT_SECRET.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert b64url_decode(signature) == expected
    assert "=" not in token  # base64url without padding


def test_claim_strings_are_escaped_as_go_escapes_them() -> None:
    token = encode_artwork_token('ar-<a>&"\\\u2028\b\x01é_0', DEFAULT_SECRET)
    payload = b64url_decode(token.split(".")[1])
    assert payload == (
        b'{"id":"ar-\\u003ca\\u003e\\u0026\\"\\\\\\u2028\\b\\u0001' + "é".encode() + b'_0","iss":"ND"}'
    )
    assert decode_artwork_token(token, DEFAULT_SECRET)["id"] == 'ar-<a>&"\\\u2028\b\x01é_0'


def test_secret_option_signs_the_token() -> None:
    url = call(service(ArtworkOptions(secret=b"server secret")), "get_artist_url", "1")
    assert decode_artwork_token(token_of(url), "server secret")["id"] == "ar-1_0"
    with pytest.raises(ValueError, match="signature"):
        decode_artwork_token(token_of(url), DEFAULT_SECRET)


def test_decoder_checks_a_known_answer_and_refuses_garbage() -> None:
    # jwt.io's example token, made by an independent HS256 implementation
    known = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0"
        "IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    )
    assert decode_artwork_token(known, "your-256-bit-secret")["name"] == "John Doe"
    for bad in ("", "a.b", "a.b.c.d", f"{HEADER_B64}.!!!.xx"):
        with pytest.raises(ValueError, match=r"parts|base64url|signature"):
            decode_artwork_token(bad, DEFAULT_SECRET)


# -- options -------------------------------------------------------------------------------------------


def test_options_are_typed_and_checked() -> None:
    assert ArtworkOptions() == ArtworkOptions("", "", "", "", DEFAULT_SECRET)
    with pytest.raises(TypeError, match=r"ArtworkOptions\.base_host must be a str, got int"):
        ArtworkOptions(base_host=4533)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"ArtworkOptions\.secret must be str or bytes, got int"):
        ArtworkOptions(secret=1)  # type: ignore[arg-type]


def test_the_scope_starts_from_its_options() -> None:
    start = ArtworkOptions(share_url="https://music.example.com")
    env = HostEnvironment(clock=ManualClock(), options=HostOptions(artwork=start))
    assert live_options(env).current == start
    assert call(ArtworkService.create(context(env)), "get_artist_url", "1").startswith(
        "https://music.example.com/share/img/"
    )


def test_options_are_read_live_on_every_call() -> None:
    env = HostEnvironment(clock=ManualClock())
    svc = ArtworkService.create(context(env))
    assert call(svc, "get_artist_url", "1").startswith("http://localhost/")
    live_options(env)["share_url"] = "https://music.example.com"
    assert call(svc, "get_artist_url", "1").startswith("https://music.example.com/share/img/")


def test_live_options_check_each_change_when_it_is_made() -> None:
    live = LiveArtworkOptions(ArtworkOptions(base_host="nd.example.com"))
    assert dict(live) == {
        "share_url": "",
        "base_host": "nd.example.com",
        "base_scheme": "",
        "base_path": "",
        "secret": DEFAULT_SECRET,
    }
    with pytest.raises(KeyError, match=r"no setting 'shareURL'; valid: \['share_url', 'base_host'"):
        live["shareURL"] = "x"
    with pytest.raises(TypeError, match="base_path must be a str"):
        live["base_path"] = 1
    assert live["base_path"] == ""  # a refused change changes nothing
    live["secret"] = b"k"
    del live["base_host"]
    live["share_url"] = None  # None restores the default, as it did in the dict
    assert live.current == ArtworkOptions(secret=b"k")


def test_artwork_url_helper_matches_the_service() -> None:
    assert artwork_url("al", "9", 50, SHARE) == call(service(SHARE), "get_album_url", "9", 50)
