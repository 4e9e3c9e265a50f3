"""The cache host service (spec/services/cache.md): acceptance rows, TTL, namespacing and the size bound."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_wasmhost.abi.proto import cache_pb2
from pytest_wasmhost.clock import SYSTEM_CLOCK, ManualClock
from pytest_wasmhost.host.base import SERVICE_FUNCTIONS, HostEnvironment, ServiceContext
from pytest_wasmhost.host.cache import (
    DEFAULT_MAX_BYTES,
    CacheService,
    CacheStore,
    effective_ttl,
    max_bytes_option,
    namespaced,
    scope_store,
    value_kind,
)
from pytest_wasmhost.manifest import parse_manifest
from tests.support.plugins import manifest as manifest_dict

PLUGIN = "test_plugin"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store(clock: ManualClock) -> CacheStore:
    return CacheStore(clock)


@pytest.fixture
def cache(store: CacheStore) -> CacheService:
    return CacheService(PLUGIN, store)


def context(plugin_id: str, env: HostEnvironment) -> ServiceContext:
    permissions = {"cache": {"reason": "tests"}}
    manifest = parse_manifest(json.dumps(manifest_dict(permissions=permissions)), plugin_id=plugin_id)
    return ServiceContext(plugin_id=plugin_id, manifest=manifest, config=dict, env=env)


def set_string(cache: CacheService, key: str, value: str = "v", ttl: int = 0) -> cache_pb2.SetResponse:
    return cache.set_string(cache_pb2.SetStringRequest(key=key, value=value, ttl_seconds=ttl))


def get_string(cache: CacheService, key: str) -> cache_pb2.GetStringResponse:
    return cache.get_string(cache_pb2.GetRequest(key=key))


def has(cache: CacheService, key: str) -> bool:
    return cache.has(cache_pb2.HasRequest(key=key)).exists


# -- the service's shape ------------------------------------------------------------------------------


def test_function_names_are_the_originals_in_link_order(cache: CacheService) -> None:
    assert CacheService.function_names == SERVICE_FUNCTIONS["cache"]
    assert [fn.name for fn in cache.functions()] == list(SERVICE_FUNCTIONS["cache"])
    assert {fn.service for fn in cache.functions()} == {"cache"}


def test_function_table_uses_the_spec_messages(cache: CacheService) -> None:
    table = {fn.name: (fn.request_type, fn.response_type) for fn in cache.functions()}
    assert table["set_float"] == (cache_pb2.SetFloatRequest, cache_pb2.SetResponse)
    assert table["get_bytes"] == (cache_pb2.GetRequest, cache_pb2.GetBytesResponse)
    assert table["remove"] == (cache_pb2.RemoveRequest, cache_pb2.RemoveResponse)
    assert table["has"] == (cache_pb2.HasRequest, cache_pb2.HasResponse)


# -- acceptance rows ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl_seconds", "expected"),
    [(0, timedelta(hours=24)), (-10, timedelta(hours=24)), (60, timedelta(minutes=1))],
)
def test_ttl_helper(ttl_seconds: int, expected: timedelta) -> None:
    assert effective_ttl(ttl_seconds) == expected.total_seconds()


def test_set_and_get_string(cache: CacheService) -> None:
    assert set_string(cache, "string_key", "test_value").success is True
    assert get_string(cache, "string_key") == cache_pb2.GetStringResponse(exists=True, value="test_value")


def test_get_missing_string_is_an_empty_response(cache: CacheService) -> None:
    response = get_string(cache, "missing_key")
    assert response.exists is False
    assert response.value == ""
    assert response.SerializeToString() == b""  # the host then returns ptr 0 / size 0


def test_set_and_get_int(cache: CacheService) -> None:
    assert cache.set_int(cache_pb2.SetIntRequest(key="int_key", value=42)).success is True
    assert cache.get_int(cache_pb2.GetRequest(key="int_key")) == cache_pb2.GetIntResponse(
        exists=True, value=42
    )


def test_set_and_get_float(cache: CacheService) -> None:
    assert cache.set_float(cache_pb2.SetFloatRequest(key="float_key", value=3.14)).success is True
    response = cache.get_float(cache_pb2.GetRequest(key="float_key"))
    assert response == cache_pb2.GetFloatResponse(exists=True, value=3.14)


def test_set_and_get_bytes(cache: CacheService) -> None:
    assert cache.set_bytes(cache_pb2.SetBytesRequest(key="bytes_key", value=bytes([1, 2, 3]))).success is True
    response = cache.get_bytes(cache_pb2.GetRequest(key="bytes_key"))
    assert response == cache_pb2.GetBytesResponse(exists=True, value=bytes([1, 2, 3]))


def test_string_read_as_int_does_not_exist(cache: CacheService) -> None:
    set_string(cache, "mixed_key", "string value")
    assert cache.get_int(cache_pb2.GetRequest(key="mixed_key")) == cache_pb2.GetIntResponse()
    assert has(cache, "mixed_key") is True


def test_remove_then_has_is_false(cache: CacheService) -> None:
    set_string(cache, "remove_key")
    assert has(cache, "remove_key") is True
    assert cache.remove(cache_pb2.RemoveRequest(key="remove_key")).success is True
    assert has(cache, "remove_key") is False


def test_has_existing_key(cache: CacheService) -> None:
    set_string(cache, "existing_key")
    assert has(cache, "existing_key") is True


def test_has_non_existing_key(cache: CacheService) -> None:
    assert has(cache, "non_existing_key") is False


# -- typed values ---------------------------------------------------------------------------------------

SETTERS = {
    "string": lambda c, k: c.set_string(cache_pb2.SetStringRequest(key=k, value="s")),
    "int64": lambda c, k: c.set_int(cache_pb2.SetIntRequest(key=k, value=7)),
    "float64": lambda c, k: c.set_float(cache_pb2.SetFloatRequest(key=k, value=7.0)),
    "bytes": lambda c, k: c.set_bytes(cache_pb2.SetBytesRequest(key=k, value=b"b")),
}
GETTERS = {
    "string": lambda c, k: c.get_string(cache_pb2.GetRequest(key=k)),
    "int64": lambda c, k: c.get_int(cache_pb2.GetRequest(key=k)),
    "float64": lambda c, k: c.get_float(cache_pb2.GetRequest(key=k)),
    "bytes": lambda c, k: c.get_bytes(cache_pb2.GetRequest(key=k)),
}


@pytest.mark.parametrize("stored", list(SETTERS))
@pytest.mark.parametrize("read", list(GETTERS))
def test_a_getter_sees_only_its_own_type(cache: CacheService, stored: str, read: str) -> None:
    SETTERS[stored](cache, "k")
    response = GETTERS[read](cache, "k")
    assert response.exists is (stored == read)
    if stored != read:
        assert response.SerializeToString() == b""  # exists=false and the type's zero value
    assert has(cache, "k") is True


def test_int_holding_a_whole_number_is_not_a_float(cache: CacheService) -> None:
    cache.set_int(cache_pb2.SetIntRequest(key="n", value=3))
    assert cache.get_float(cache_pb2.GetRequest(key="n")).exists is False


def test_set_overwrites_a_value_of_another_type(cache: CacheService) -> None:
    set_string(cache, "k", "old")
    assert cache.set_int(cache_pb2.SetIntRequest(key="k", value=5)).success is True
    assert get_string(cache, "k").exists is False
    assert cache.get_int(cache_pb2.GetRequest(key="k")).value == 5


def test_int64_extremes_round_trip(cache: CacheService) -> None:
    for value in (-(1 << 63), (1 << 63) - 1):
        cache.set_int(cache_pb2.SetIntRequest(key="k", value=value))
        assert cache.get_int(cache_pb2.GetRequest(key="k")).value == value


def test_empty_bytes_exist(cache: CacheService) -> None:
    cache.set_bytes(cache_pb2.SetBytesRequest(key="k", value=b""))
    assert cache.get_bytes(cache_pb2.GetRequest(key="k")) == cache_pb2.GetBytesResponse(exists=True)


def test_remove_of_a_missing_key_succeeds(cache: CacheService) -> None:
    assert cache.remove(cache_pb2.RemoveRequest(key="never_set")).success is True


def test_empty_key_is_stored_as_plugin_id_colon(cache: CacheService, store: CacheStore) -> None:
    set_string(cache, "", "empty")
    assert get_string(cache, "") == cache_pb2.GetStringResponse(exists=True, value="empty")
    assert namespaced(PLUGIN, "") == f"{PLUGIN}:"
    assert store.items(PLUGIN) == {"": "empty"}


def test_value_kind_refuses_what_no_setter_stores() -> None:
    assert [value_kind(v) for v in ("s", 1, 1.0, b"b")] == ["string", "int64", "float64", "bytes"]
    with pytest.raises(TypeError):
        value_kind(True)
    with pytest.raises(ValueError, match="int64"):
        value_kind(1 << 63)


# -- namespacing ----------------------------------------------------------------------------------------


def test_plugins_sharing_a_store_cannot_see_each_others_keys(store: CacheStore) -> None:
    alpha, beta = CacheService("alpha", store), CacheService("beta", store)
    set_string(alpha, "k", "from alpha")
    assert get_string(beta, "k").exists is False
    assert has(beta, "k") is False
    set_string(beta, "k", "from beta")
    assert get_string(alpha, "k").value == "from alpha"
    assert get_string(beta, "k").value == "from beta"
    beta.remove(cache_pb2.RemoveRequest(key="k"))
    assert get_string(alpha, "k").value == "from alpha"
    assert store.items("alpha") == {"k": "from alpha"}
    assert store.items("beta") == {}


def test_namespace_collision_is_the_originals(store: CacheStore) -> None:
    # spec: plugin "a" key "b:c" and plugin "a:b" key "c" are the same stored key, as in the original
    set_string(CacheService("a", store), "b:c", "shared")
    assert get_string(CacheService("a:b", store), "c").value == "shared"


def test_services_of_one_scope_share_one_store() -> None:
    env = HostEnvironment(clock=ManualClock())
    alpha = CacheService.create(context("alpha", env))
    beta = CacheService.create(context("beta", env))
    assert alpha.store is beta.store is scope_store(env)
    assert alpha.store.max_bytes == DEFAULT_MAX_BYTES
    set_string(alpha, "k", "v")
    assert env.sweep() == 0  # the runtime sweeps the store through the environment
    assert alpha.store.get("alpha", "k") == "v"


def test_scopes_do_not_share_stores() -> None:
    first = CacheService.create(context("alpha", HostEnvironment(clock=ManualClock())))
    second = CacheService.create(context("alpha", HostEnvironment(clock=ManualClock())))
    set_string(first, "k")
    assert get_string(second, "k").exists is False


def test_closing_the_scope_empties_the_store() -> None:
    env = HostEnvironment(clock=ManualClock())
    cache = CacheService.create(context("alpha", env))
    set_string(cache, "k")
    env.close()
    assert cache.store.items("alpha") == {}


# -- TTL (ManualClock) ----------------------------------------------------------------------------------


def test_entry_lives_through_its_last_instant(cache: CacheService, clock: ManualClock) -> None:
    set_string(cache, "a", ttl=10)
    set_string(cache, "b", ttl=10)
    clock.advance(10)
    assert has(cache, "a") is True  # expired only once the expiry lies before now
    clock.advance(10.001)
    assert has(cache, "b") is False


@pytest.mark.parametrize("reader", ["get_string", "get_int", "has"])
def test_every_successful_lookup_slides_the_expiry(
    cache: CacheService, clock: ManualClock, reader: str
) -> None:
    set_string(cache, "k", ttl=10)
    clock.advance(9)
    read = {"get_string": get_string, "has": has, "get_int": GETTERS["int64"]}[reader]
    read(cache, "k")  # a type-mismatched get slides it too
    clock.advance(9)  # 18 s after the set: it would be gone without the read at 9 s
    assert has(cache, "k") is True
    clock.advance(10.5)
    assert has(cache, "k") is False


def test_an_entry_read_once_per_ttl_never_expires(cache: CacheService, clock: ManualClock) -> None:
    set_string(cache, "k", ttl=60)
    for _ in range(100):
        clock.advance(59)
        assert get_string(cache, "k").exists is True


def test_a_new_set_shortens_the_ttl(cache: CacheService, clock: ManualClock) -> None:
    set_string(cache, "k", ttl=0)
    set_string(cache, "k", ttl=5)
    clock.advance(6)
    assert has(cache, "k") is False


def test_sliding_uses_the_entrys_own_ttl(cache: CacheService, clock: ManualClock) -> None:
    set_string(cache, "short", ttl=5)
    set_string(cache, "long", ttl=0)
    clock.advance(4)
    has(cache, "short")
    has(cache, "long")
    clock.advance(6)  # 10 s: short slid to 9 s and is gone, long slid to 4 s + 24 h
    assert has(cache, "short") is False
    clock.advance(timedelta(hours=24).total_seconds() - 7)
    assert has(cache, "long") is True


def test_test_helpers_do_not_slide_the_expiry(
    cache: CacheService, store: CacheStore, clock: ManualClock
) -> None:
    set_string(cache, "k", "v", ttl=10)
    clock.advance(9)
    assert store.get(PLUGIN, "k") == "v"
    assert store.items(PLUGIN) == {"k": "v"}
    clock.advance(2)
    assert store.get(PLUGIN, "k") is None
    assert store.items(PLUGIN) == {}
    assert has(cache, "k") is False


def test_expired_entries_are_dropped_on_access(
    cache: CacheService, store: CacheStore, clock: ManualClock
) -> None:
    set_string(cache, "k", "v", ttl=1)
    held = store.size_bytes
    assert held == len(f"{PLUGIN}:k") + 1
    clock.advance(2)
    assert store.size_bytes == held  # nothing happens by itself
    assert get_string(cache, "k").exists is False
    assert store.size_bytes == 0


def test_sweep_drops_exactly_the_expired_entries(
    cache: CacheService, store: CacheStore, clock: ManualClock
) -> None:
    set_string(cache, "short1", ttl=5)
    set_string(cache, "short2", ttl=5)
    set_string(cache, "long", "v", ttl=50)
    clock.advance(6)
    assert store.sweep() == 2
    assert store.sweep() == 0
    assert store.items(PLUGIN) == {"long": "v"}
    assert store.size_bytes == len(f"{PLUGIN}:long") + 1


def test_store_helpers_and_clear(store: CacheStore) -> None:
    store.set("p", "s", "text")
    store.set("p", "i", 1)
    store.set("p", "f", 1.5)
    store.set("p", "b", b"\x00")
    store.set("q", "s", "other")
    assert store.items("p") == {"s": "text", "i": 1, "f": 1.5, "b": b"\x00"}
    assert store.get("q", "s") == "other"
    assert store.get("q", "missing") is None
    store.clear()
    assert store.items("p") == {}
    assert store.size_bytes == 0


# -- TTL under freezegun (the real system clock) --------------------------------------------------------


def frozen_cache() -> CacheService:
    return CacheService.create(context(PLUGIN, HostEnvironment(clock=SYSTEM_CLOCK)))


def test_freezegun_ttl_10s_exists_at_9s_not_at_11s() -> None:
    with freeze_time("2024-05-01 12:00:00") as frozen:
        cache = frozen_cache()
        set_string(cache, "at9", ttl=10)
        set_string(cache, "at11", ttl=10)
        frozen.tick(timedelta(seconds=9))
        assert has(cache, "at9") is True
        frozen.tick(timedelta(seconds=2))
        assert has(cache, "at11") is False
        assert get_string(cache, "at11").exists is False


def test_freezegun_default_ttl_is_24_hours() -> None:
    with freeze_time("2024-05-01 12:00:00") as frozen:
        cache = frozen_cache()
        set_string(cache, "early", ttl=0)
        set_string(cache, "late", ttl=-10)
        frozen.tick(timedelta(hours=24) - timedelta(seconds=1))
        assert get_string(cache, "early").exists is True
        frozen.tick(timedelta(seconds=2))
        assert get_string(cache, "late").exists is False
        assert get_string(cache, "early").exists is True  # the read a second ago slid it


def test_freezegun_read_at_9s_extends_the_life() -> None:
    with freeze_time("2024-05-01 12:00:00") as frozen:
        cache = frozen_cache()
        set_string(cache, "k", "v", ttl=10)
        frozen.tick(timedelta(seconds=9))
        assert get_string(cache, "k").value == "v"
        frozen.tick(timedelta(seconds=9))  # 18 s: alive only because of the read at 9 s
        assert cache.store.get(PLUGIN, "k") == "v"
        frozen.tick(timedelta(seconds=2))  # 20 s: past 9 + 10
        assert get_string(cache, "k").exists is False


# -- the size bound -------------------------------------------------------------------------------------

ENTRY = len("p:k0") + 6  # a namespaced key of 4 bytes and a 6-byte value


def test_default_bound_and_option() -> None:
    assert max_bytes_option({}) == 64 * 1024 * 1024
    assert max_bytes_option({"cache": {}}) == DEFAULT_MAX_BYTES
    assert max_bytes_option({"cache": {"max_bytes": 1000}}) == 1000
    env = HostEnvironment(clock=ManualClock(), options={"cache": {"max_bytes": 1000}})
    assert CacheService.create(context(PLUGIN, env)).store.max_bytes == 1000


@pytest.mark.parametrize("bad", [0, -1, "1MB", 1.5, True])
def test_bad_bound_option_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"max_bytes"):
        max_bytes_option({"cache": {"max_bytes": bad}})


def test_sizes_count_key_and_value_bytes(store: CacheStore) -> None:
    store.set("p", "k", "é")  # two UTF-8 bytes
    store.set("p", "n", 1)
    store.set("p", "f", 1.0)
    store.set("p", "b", b"abc")
    assert store.size_bytes == (3 + 2) + (3 + 8) + (3 + 8) + (3 + 3)
    store.set("p", "k", "")  # an overwrite replaces the old size
    assert store.size_bytes == 3 + (3 + 8) + (3 + 8) + (3 + 3)


def test_least_recently_used_goes_first(clock: ManualClock, caplog: pytest.LogCaptureFixture) -> None:
    store = CacheStore(clock, max_bytes=3 * ENTRY)
    for i in range(3):
        store.set("p", f"k{i}", "value!")
    assert store.lookup("p", "k0") is not None  # a read makes k0 the most recently used
    with caplog.at_level(logging.DEBUG, logger="pytest_wasmhost.host.cache"):
        store.set("p", "k3", "value!")
    assert set(store.items("p")) == {"k0", "k2", "k3"}
    assert store.size_bytes <= store.max_bytes
    assert "evicted 'p:k1' (least recently used)" in caplog.text


def test_expired_entries_go_before_live_ones(clock: ManualClock) -> None:
    store = CacheStore(clock, max_bytes=3 * ENTRY)
    store.set("p", "k0", "value!", ttl_seconds=100)
    store.set("p", "k1", "value!", ttl_seconds=100)
    store.set("p", "k2", "value!", ttl_seconds=1)  # the most recently used, but expired below
    clock.advance(2)
    store.set("p", "k3", "value!")
    assert set(store.items("p")) == {"k0", "k1", "k3"}


def test_a_large_entry_evicts_as_many_as_it_needs(clock: ManualClock) -> None:
    store = CacheStore(clock, max_bytes=3 * ENTRY)
    for i in range(3):
        store.set("p", f"k{i}", "value!")
    store.set("p", "big", "x" * (2 * ENTRY - len("p:big")))  # exactly two entries' worth
    assert set(store.items("p")) == {"k2", "big"}
    assert store.size_bytes == store.max_bytes


def test_an_entry_larger_than_the_bound_is_not_kept_but_set_succeeds(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cache = CacheService(PLUGIN, CacheStore(clock, max_bytes=100))
    set_string(cache, "other", "kept")
    set_string(cache, "k", "old")
    with caplog.at_level(logging.WARNING, logger="pytest_wasmhost.host.cache"):
        response = set_string(cache, "k", "x" * 100)
    assert response.success is True  # the original's set always answered success
    assert get_string(cache, "k").exists is False  # the replaced value is gone, nothing new stored
    assert get_string(cache, "other").value == "kept"  # no eviction for a value that cannot fit anyway
    assert "larger than the cache's bound of 100 bytes" in caplog.text


OPS = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 5), st.binary(max_size=40), st.integers(-1, 20)),
    st.tuples(st.just("get"), st.integers(0, 5)),
    st.tuples(st.just("remove"), st.integers(0, 5)),
    st.tuples(st.just("advance"), st.integers(0, 15)),
    st.tuples(
        st.just("sweep"),
    ),
)


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(OPS, max_size=40), max_bytes=st.integers(1, 120))
def test_the_bound_holds_and_the_last_fitting_set_is_readable(ops: list[tuple], max_bytes: int) -> None:
    clock = ManualClock()
    store = CacheStore(clock, max_bytes=max_bytes)
    for op in ops:
        if op[0] == "set":
            _, key, value, ttl = op
            kept = store.set("p", f"k{key}", value, ttl)
            assert kept is (len(f"p:k{key}") + len(value) <= max_bytes)
            assert (store.get("p", f"k{key}") == value) is kept
        elif op[0] == "get":
            store.lookup("p", f"k{op[1]}")
        elif op[0] == "remove":
            store.remove("p", f"k{op[1]}")
            assert store.get("p", f"k{op[1]}") is None
        elif op[0] == "advance":
            clock.advance(op[1])
        else:
            store.sweep()
        assert 0 <= store.size_bytes <= max_bytes
    store.sweep()  # then the accounting is exactly the live entries
    live = store.items("p")
    assert store.size_bytes == sum(len(f"p:{k}") + len(v) for k, v in live.items() if isinstance(v, bytes))
