"""The cache and artwork host functions called from a real wasm guest, via the real linker and dispatch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_wasmhost.abi.proto import artwork_pb2, cache_pb2
from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.errors import HostLimitWarning, PluginLoadError, PluginTrap
from pytest_wasmhost.host.artwork import ArtworkOptions, decode_artwork_token
from pytest_wasmhost.host.base import SERVICE_FUNCTIONS, HostEnvironment
from pytest_wasmhost.host.cache import CacheOptions, scope_store
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.host.registry import bind
from tests.support.hostcall import HostHarness

CACHE_FUNCTIONS = SERVICE_FUNCTIONS["cache"]
ARTWORK_FUNCTIONS = SERVICE_FUNCTIONS["artwork"]
ALL_FUNCTIONS = (*CACHE_FUNCTIONS, *ARTWORK_FUNCTIONS)
PERMISSIONS = {"cache": {"reason": "cache things"}, "artwork": {"reason": "show covers"}}
SECRET = "integration secret"
OPTIONS = HostOptions(artwork=ArtworkOptions(share_url="https://music.example.com", secret=SECRET))

RESPONSE_TYPES: dict[str, type[Message]] = {
    "set_string": cache_pb2.SetResponse,
    "get_string": cache_pb2.GetStringResponse,
    "set_int": cache_pb2.SetResponse,
    "get_int": cache_pb2.GetIntResponse,
    "set_float": cache_pb2.SetResponse,
    "get_float": cache_pb2.GetFloatResponse,
    "set_bytes": cache_pb2.SetResponse,
    "get_bytes": cache_pb2.GetBytesResponse,
    "remove": cache_pb2.RemoveResponse,
    "has": cache_pb2.HasResponse,
    "get_artist_url": artwork_pb2.GetArtworkUrlResponse,
    "get_album_url": artwork_pb2.GetArtworkUrlResponse,
    "get_track_url": artwork_pb2.GetArtworkUrlResponse,
}


def make_harness(plugin_id: str = "test_plugin", env: HostEnvironment | None = None) -> HostHarness:
    env = env if env is not None else HostEnvironment(clock=ManualClock(), options=OPTIONS)
    return HostHarness(ALL_FUNCTIONS, permissions=PERMISSIONS, plugin_id=plugin_id, env=env)


@pytest.fixture
def harness() -> Iterator[HostHarness]:
    h = make_harness()
    yield h
    h.close()


def call(harness: HostHarness, function: str, request: Message) -> Any:
    return harness.call(function, request, RESPONSE_TYPES[function])


def assert_recorded_ok(harness: HostHarness, service: str, function: str, request: Message) -> None:
    entry = harness.transcript.calls(service, function)[-1]
    assert entry.plugin_id == harness.plugin_id
    assert entry.verdict == "ok"
    assert entry.request == request
    assert entry.detail == ""


# -- every function from the guest ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setter", "set_request", "getter", "expected"),
    [
        (
            "set_string",
            cache_pb2.SetStringRequest(key="string_key", value="test_value"),
            "get_string",
            cache_pb2.GetStringResponse(exists=True, value="test_value"),
        ),
        (
            "set_int",
            cache_pb2.SetIntRequest(key="int_key", value=42),
            "get_int",
            cache_pb2.GetIntResponse(exists=True, value=42),
        ),
        (
            "set_float",
            cache_pb2.SetFloatRequest(key="float_key", value=3.14),
            "get_float",
            cache_pb2.GetFloatResponse(exists=True, value=3.14),
        ),
        (
            "set_bytes",
            cache_pb2.SetBytesRequest(key="bytes_key", value=bytes([1, 2, 3])),
            "get_bytes",
            cache_pb2.GetBytesResponse(exists=True, value=bytes([1, 2, 3])),
        ),
    ],
)
def test_typed_set_then_get_from_the_guest(
    harness: HostHarness, setter: str, set_request: Message, getter: str, expected: Message
) -> None:
    assert call(harness, setter, set_request) == cache_pb2.SetResponse(success=True)
    get_request = cache_pb2.GetRequest(key=set_request.key)
    assert call(harness, getter, get_request) == expected
    assert_recorded_ok(harness, "cache", setter, set_request)
    assert_recorded_ok(harness, "cache", getter, get_request)
    assert harness.transcript.calls("cache", getter)[-1].response == expected


@pytest.mark.parametrize("getter", ["get_string", "get_int", "get_float", "get_bytes"])
def test_get_of_a_missing_key_returns_no_bytes(harness: HostHarness, getter: str) -> None:
    assert harness.call_raw(getter, cache_pb2.GetRequest(key="missing_key")) == b""  # ptr 0 / size 0
    assert_recorded_ok(harness, "cache", getter, cache_pb2.GetRequest(key="missing_key"))


def test_mismatched_type_remove_and_has_from_the_guest(harness: HostHarness) -> None:
    call(harness, "set_string", cache_pb2.SetStringRequest(key="mixed_key", value="string value"))
    assert call(harness, "get_int", cache_pb2.GetRequest(key="mixed_key")) == cache_pb2.GetIntResponse()
    assert call(harness, "has", cache_pb2.HasRequest(key="mixed_key")) == cache_pb2.HasResponse(exists=True)
    remove = cache_pb2.RemoveRequest(key="mixed_key")
    assert call(harness, "remove", remove) == cache_pb2.RemoveResponse(success=True)
    assert call(harness, "has", cache_pb2.HasRequest(key="mixed_key")) == cache_pb2.HasResponse()
    assert_recorded_ok(harness, "cache", "remove", remove)
    assert_recorded_ok(harness, "cache", "has", cache_pb2.HasRequest(key="mixed_key"))
    assert [c.verdict for c in harness.transcript.calls("cache")] == ["ok"] * 5


@pytest.mark.parametrize(
    ("function", "item_id", "size", "claim", "query"),
    [
        ("get_artist_url", "123", 300, "ar-123_0", "?size=300"),
        ("get_album_url", "456", 0, "al-456_0", ""),
        ("get_track_url", "789", 150, "mf-789_0", "?size=150"),
    ],
)
def test_artwork_urls_from_the_guest(
    harness: HostHarness, function: str, item_id: str, size: int, claim: str, query: str
) -> None:
    request = artwork_pb2.GetArtworkUrlRequest(id=item_id, size=size)
    url = call(harness, function, request).url
    prefix = "https://music.example.com/share/img/"
    assert url.startswith(prefix)
    token, _, rest = url.removeprefix(prefix).partition("?")
    assert ("?" + rest if rest else "") == query
    assert decode_artwork_token(token, SECRET) == {"id": claim, "iss": "ND"}
    assert_recorded_ok(harness, "artwork", function, request)


def test_artwork_without_share_url_is_localhost_from_the_guest() -> None:
    h = make_harness(env=HostEnvironment(clock=ManualClock()))
    try:
        url = call(h, "get_artist_url", artwork_pb2.GetArtworkUrlRequest(id="123")).url
        assert url.startswith("http://localhost/share/img/")
    finally:
        h.close()


def test_every_function_is_linked_and_recorded(harness: HostHarness) -> None:
    for function in ALL_FUNCTIONS:
        harness.call_raw(function, harness.instance.host.functions[function].request_type())
    assert [c.function for c in harness.transcript] == list(ALL_FUNCTIONS)
    assert {c.verdict for c in harness.transcript} == {"ok"}


def test_two_plugins_of_one_scope_share_the_store_not_the_keys() -> None:
    env = HostEnvironment(clock=ManualClock(), options=OPTIONS)
    alpha, beta = make_harness("alpha", env), make_harness("beta", env)
    try:
        call(alpha, "set_string", cache_pb2.SetStringRequest(key="k", value="from alpha"))
        assert call(beta, "get_string", cache_pb2.GetRequest(key="k")) == cache_pb2.GetStringResponse()
        assert scope_store(env).items("alpha") == {"k": "from alpha"}
        assert [c.plugin_id for c in env.transcript] == ["alpha", "beta"]
    finally:
        alpha.close()
        beta.close()


def test_plugin_ids_with_a_colon_stay_apart_from_the_guest() -> None:
    # The original's "<pluginID>:<key>" made plugin "a" key "b:c" and plugin "a:b" key "c" one entry.
    env = HostEnvironment(clock=ManualClock(), options=OPTIONS)
    a, ab = make_harness("a", env), make_harness("a:b", env)
    try:
        call(ab, "set_string", cache_pb2.SetStringRequest(key="c", value="a:b's secret"))
        assert call(a, "get_string", cache_pb2.GetRequest(key="b:c")) == cache_pb2.GetStringResponse()
        call(a, "set_string", cache_pb2.SetStringRequest(key="b:c", value="overwritten?"))
        got = call(ab, "get_string", cache_pb2.GetRequest(key="c"))
        assert got == cache_pb2.GetStringResponse(exists=True, value="a:b's secret")
    finally:
        a.close()
        ab.close()


def test_a_set_past_a_cap_answers_success_false_and_the_transcript_says_why() -> None:
    options = OPTIONS.replace(cache=CacheOptions(plugin_max_entries=1))
    h = make_harness(env=HostEnvironment(clock=ManualClock(), options=options))
    try:
        assert call(h, "set_string", cache_pb2.SetStringRequest(key="k0", value="v")).success is True
        with pytest.warns(HostLimitWarning, match="plugin 'test_plugin' reached the host's cache cap"):
            raw = h.call_raw("set_string", cache_pb2.SetStringRequest(key="k1", value="v"))
        assert raw == b""  # SetResponse(success=false): not a trap, the plugin carries on
        refused = h.transcript.calls("cache", "set_string")[-1]
        assert (refused.verdict, refused.response) == ("error", cache_pb2.SetResponse(success=False))
        assert refused.detail.startswith("cache: 'k1' not stored: the host's cap plugin_max_entries=1")
        assert call(h, "get_string", cache_pb2.GetRequest(key="k0")).value == "v"
    finally:
        h.close()


def test_ttl_expiry_follows_the_scope_clock_from_the_guest() -> None:
    clock = ManualClock()
    h = make_harness(env=HostEnvironment(clock=clock))
    try:
        call(h, "set_string", cache_pb2.SetStringRequest(key="k", value="v", ttl_seconds=10))
        clock.advance(9)
        assert call(h, "has", cache_pb2.HasRequest(key="k")).exists is True
        clock.advance(9)
        assert call(h, "get_string", cache_pb2.GetRequest(key="k")).value == "v"
        clock.advance(11)
        assert call(h, "get_string", cache_pb2.GetRequest(key="k")).exists is False
    finally:
        h.close()


# -- permission gating -------------------------------------------------------------------------------


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_without_the_permission_linking_fails_naming_import_and_permission(function: str) -> None:
    service = "cache" if function in CACHE_FUNCTIONS else "artwork"
    with pytest.raises(PluginLoadError) as info:
        HostHarness([function], permissions={})
    assert info.value.import_name == f"env.{function}"
    assert info.value.permission == service
    assert f'"{service}": {{"reason": "..."}}' in str(info.value)


def test_granting_cache_does_not_link_artwork() -> None:
    with pytest.raises(PluginLoadError) as info:
        HostHarness(["set_string", "get_track_url"], permissions={"cache": {"reason": "x"}})
    assert info.value.import_name == "env.get_track_url"
    assert info.value.permission == "artwork"


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


FIELD_VALUES: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_STRING: st.text(max_size=40),
    FieldDescriptor.TYPE_BYTES: st.binary(max_size=40),
    FieldDescriptor.TYPE_INT64: st.integers(-(1 << 63), (1 << 63) - 1),
    FieldDescriptor.TYPE_INT32: st.integers(-(1 << 31), (1 << 31) - 1),
    FieldDescriptor.TYPE_DOUBLE: st.floats(),
}


def well_formed(request_type: type[Message]) -> st.SearchStrategy[bytes]:
    """Valid requests with extreme field values, so the handlers (not only the decoder) are exercised."""
    fields = {f.name: FIELD_VALUES[f.type] for f in request_type.DESCRIPTOR.fields}
    return st.fixed_dictionaries(fields).map(lambda values: request_type(**values).SerializeToString())


@pytest.mark.parametrize("function", ALL_FUNCTIONS)
def test_random_request_bytes_never_crash_the_host(harness: HostHarness, function: str) -> None:
    response_type = RESPONSE_TYPES[function]
    request_type = harness.instance.host.functions[function].request_type

    @settings(max_examples=200, deadline=None)
    @given(data=st.one_of(st.binary(max_size=200), well_formed(request_type)))
    def check(data: bytes) -> None:
        if harness.instance.dead or bump_pointer(harness) > 64 * 1024:  # the guest's malloc never frees
            fresh_instance(harness)
        before = len(harness.transcript)
        trap: PluginTrap | None = None
        try:
            raw = harness.call_raw(function, data)
        except PluginTrap as exc:  # an undecodable request is the original's hard error: the call aborts
            trap = exc
        if trap is not None:
            assert f"env.{function}" in str(trap)
            verdict = "hard-error"
        else:
            try:
                response_type.FromString(raw)
            except DecodeError:  # pragma: no cover - the failure message is the point
                pytest.fail(f"env.{function} wrote bytes that do not decode as {response_type.__name__}")
            verdict = "ok"
        assert len(harness.transcript) == before + 1
        entry = harness.transcript.calls()[-1]
        assert (entry.function, entry.verdict) == (function, verdict)

    check()
