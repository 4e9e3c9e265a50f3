"""The cache host service (spec/services/cache.md): acceptance rows, TTL, namespacing and the caps."""

from __future__ import annotations

import json
import sys
import tracemalloc
import warnings
from datetime import timedelta

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_wasmhost.abi.proto import cache_pb2
from pytest_wasmhost.clock import SYSTEM_CLOCK, ManualClock
from pytest_wasmhost.errors import HostLimitWarning
from pytest_wasmhost.host.base import SERVICE_FUNCTIONS, HostEnvironment, ServiceContext, SoftError
from pytest_wasmhost.host.cache import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_ENTRIES,
    DEFAULT_PLUGIN_MAX_BYTES,
    DEFAULT_PLUGIN_MAX_ENTRIES,
    CacheOptions,
    CacheService,
    CacheStore,
    effective_ttl,
    entry_size,
    namespaced,
    scope_store,
    value_kind,
)
from pytest_wasmhost.host.options import HostOptions
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
    # Both ends of int64 are kept, one past either end is refused (the store never holds what the wire
    # cannot carry back).
    assert value_kind(-(1 << 63)) == value_kind((1 << 63) - 1) == "int64"
    for outside in (1 << 63, -(1 << 63) - 1):
        with pytest.raises(ValueError, match="int64"):
            value_kind(outside)
        with pytest.raises(ValueError, match="int64"):
            CacheStore(ManualClock()).put(PLUGIN, "k", outside)


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


def test_plugin_ids_with_a_colon_cannot_reach_each_others_entries(store: CacheStore) -> None:
    # The original stored "<pluginID>:<key>": plugin "a" key "b:c" and plugin "a:b" key "c" were one entry,
    # so "a" could read and overwrite what "a:b" stored (issue 15). Each plugin now has a table of its own.
    a, ab = CacheService("a", store), CacheService("a:b", store)
    set_string(ab, "c", "a:b's secret")
    assert get_string(a, "b:c").exists is False
    assert has(a, "b:c") is False
    set_string(a, "b:c", "a's own")
    assert get_string(ab, "c").value == "a:b's secret"
    a.remove(cache_pb2.RemoveRequest(key="b:c"))
    assert get_string(ab, "c").value == "a:b's secret"
    assert store.items("a") == {}  # not a prefix match over "a:"
    assert store.items("a:b") == {"c": "a:b's secret"}
    set_string(CacheService("", store), "a:b:c", "empty id")
    assert store.items("a:b") == {"c": "a:b's secret"}
    assert store.get("", "a:b:c") == "empty id"


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
    assert held == entry_size("k", "v")
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
    assert store.size_bytes == entry_size("long", "v")
    assert store.usage(PLUGIN) == store.usage() == (1, entry_size("long", "v"))


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
    assert store.usage() == (0, 0)
    assert store.usage("p") == store.usage("q") == (0, 0)


@pytest.mark.parametrize("end", ["clear", "close"])
def test_clear_and_close_give_back_the_whole_scope_cap(clock: ManualClock, end: str) -> None:
    """After a clear (or close) the scope's caps count from zero again: every entry fits once more."""
    store = CacheStore(clock, options=CacheOptions(max_entries=2))
    assert store.set("p", "a", 1)
    assert store.set("q", "b", 2)
    assert not store.set("r", "c", 3)  # the scope is full
    getattr(store, end)()
    assert store.set("r", "c", 3)
    assert store.set("p", "a", 1)
    assert store.usage() == (2, entry_size("c", 3) + entry_size("a", 1))


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


# -- the caps ------------------------------------------------------------------------------------------


def test_default_caps_and_options() -> None:
    assert CacheOptions() == CacheOptions(
        max_entries=DEFAULT_MAX_ENTRIES,
        max_bytes=DEFAULT_MAX_BYTES,
        plugin_max_entries=DEFAULT_PLUGIN_MAX_ENTRIES,
        plugin_max_bytes=DEFAULT_PLUGIN_MAX_BYTES,
    )
    assert (DEFAULT_PLUGIN_MAX_ENTRIES, DEFAULT_PLUGIN_MAX_BYTES) == (50_000, 16 * 1024 * 1024)
    assert (DEFAULT_MAX_ENTRIES, DEFAULT_MAX_BYTES) == (200_000, 64 * 1024 * 1024)
    options = CacheOptions(max_bytes=1000, max_entries=9, plugin_max_entries=3, plugin_max_bytes=500)
    env = HostEnvironment(clock=ManualClock(), options=HostOptions(cache=options))
    store = CacheService.create(context(PLUGIN, env)).store
    assert store.max_bytes == 1000
    assert store.options == options


@pytest.mark.parametrize("setting", ["max_entries", "max_bytes", "plugin_max_entries", "plugin_max_bytes"])
@pytest.mark.parametrize("bad", [0, -1, "10", "1MB", 2.5, True, False])
def test_cache_options_refuse_what_is_not_a_positive_whole_number(setting: str, bad: object) -> None:
    with pytest.raises(ValueError, match=rf"CacheOptions.{setting} must be a positive whole number"):
        CacheOptions(**{setting: bad})  # type: ignore[arg-type]


def test_the_smallest_caps_are_accepted(clock: ManualClock) -> None:
    caps = CacheOptions(max_entries=1, max_bytes=1, plugin_max_entries=1, plugin_max_bytes=1)
    assert (caps.max_entries, caps.max_bytes, caps.plugin_max_entries, caps.plugin_max_bytes) == (1, 1, 1, 1)
    assert CacheStore(clock, max_bytes=1).options.max_bytes == 1


def test_a_store_refuses_a_max_bytes_that_is_not_positive(clock: ManualClock) -> None:
    for bad in (0, -1):
        with pytest.raises(ValueError, match=rf"max_bytes must be positive, got {bad}"):
            CacheStore(clock, max_bytes=bad)
        with pytest.raises(ValueError, match=rf"max_bytes must be positive, got {bad}"):
            CacheStore(clock, max_bytes=bad, options=CacheOptions())  # refused even with options=


def test_sets_refused_for_new_plugins_keep_nothing(clock: ManualClock) -> None:
    # A full scope refuses a plugin that holds nothing; what the refusal built for it must go as well,
    # or a stream of refused sets from new plugin ids would grow the process past the caps' bound.
    store = CacheStore(clock, options=CacheOptions(max_entries=1))
    assert store.set("first", "k", "v")
    plugin_ids = [f"plugin-{i}" for i in range(2_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for plugin_id in plugin_ids:
            assert store.put(plugin_id, "k", "v") is not None
        spent = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert spent < 50_000  # a table kept per refused plugin costs > 100 bytes each: > 200 kB here
    assert store.usage() == (1, entry_size("k", "v"))
    assert all(store.usage(plugin_id) == (0, 0) for plugin_id in plugin_ids)


def test_sizes_count_the_objects_an_entry_keeps(store: CacheStore) -> None:
    store.set("p", "k", "é")
    store.set("p", "n", 1)
    store.set("p", "f", 1.0)
    store.set("p", "b", b"abc")
    sizes = [entry_size("k", "é"), entry_size("n", 1), entry_size("f", 1.0), entry_size("b", b"abc")]
    assert store.size_bytes == sum(sizes)
    assert entry_size("k", "é") == 200 + sys.getsizeof("k") + sys.getsizeof("é")
    store.set("p", "k", "")  # an overwrite replaces the old size
    assert store.usage("p") == (4, sum(sizes) - entry_size("k", "é") + entry_size("k", ""))


def test_the_counted_bytes_cover_what_the_process_really_spends(clock: ManualClock) -> None:
    # The bound used to count key and value bytes only (4.7 MB counted for ~130 MiB spent, issue 15).
    store = CacheStore(clock, options=CacheOptions(max_entries=10**6, plugin_max_entries=10**6))
    keys = [f"key-{i}" for i in range(20_000)]
    values: list[str | int | bytes] = [
        f"value {i}" if i % 3 else i * 1000 if i % 2 else b"v" * (i % 50) for i in range(20_000)
    ]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, (key, value) in enumerate(zip(keys, values, strict=True)):
            store.set("p", key, value, ttl_seconds=i % 7)
        spent = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    spent += sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in zip(keys, values, strict=True))
    counted = store.size_bytes
    assert spent <= counted <= 1.5 * spent


def test_a_set_past_the_plugins_entry_cap_is_refused_and_nothing_is_evicted(clock: ManualClock) -> None:
    store = CacheStore(clock, options=CacheOptions(plugin_max_entries=3))
    assert [store.set("p", f"k{i}", "v") for i in range(3)] == [True, True, True]
    cap = store.put("p", "k3", "v")
    assert cap is not None
    assert (cap.service, cap.setting, cap.limit, cap.per_plugin) == ("cache", "plugin_max_entries", 3, True)
    assert store.items("p") == {"k0": "v", "k1": "v", "k2": "v"}  # no live entry evicted to make room
    assert store.set("p", "k0", "new") is True  # replacing a key adds no entry
    assert store.set("q", "k0", "v") is True  # the cap is the plugin's own
    store.remove("p", "k1")
    assert store.set("p", "k3", "v") is True


def test_a_set_past_the_plugins_byte_cap_is_refused(clock: ManualClock) -> None:
    store = CacheStore(clock, options=CacheOptions(plugin_max_bytes=3 * entry_size("k0", "value!")))
    for i in range(3):
        assert store.set("p", f"k{i}", "value!")
    refused = store.put("p", "k3", "value!")
    assert refused is not None
    assert refused.setting == "plugin_max_bytes"
    assert set(store.items("p")) == {"k0", "k1", "k2"}
    assert store.set("p", "k3", "") is False  # a smaller value does not fit either: entries cost overhead
    assert store.set("other", "k3", "value!") is True


def test_one_plugin_filling_the_scope_never_costs_another_plugin_its_data(clock: ManualClock) -> None:
    # The old bound evicted the least recently used entry of *any* plugin: a flood by one plugin silently
    # threw away the others' data. Now the flooding plugin is refused instead.
    store = CacheStore(clock, options=CacheOptions(max_entries=4))
    assert store.set("victim", "token", "secret")
    assert [store.set("flood", f"k{i}", "x") for i in range(5)] == [True, True, True, False, False]
    refused = store.put("flood", "k9", "x")
    assert refused is not None
    assert (refused.setting, refused.per_plugin) == ("max_entries", False)
    assert store.get("victim", "token") == "secret"
    assert store.set("victim", "more", "x") is False  # the scope is full for everyone, loudly
    assert store.usage() == (4, store.size_bytes)


def test_scope_byte_cap(clock: ManualClock) -> None:
    store = CacheStore(clock, max_bytes=2 * entry_size("k0", "v"))
    assert store.set("a", "k0", "v")
    assert store.set("b", "k0", "v")
    refused = store.put("c", "k0", "v")
    assert refused is not None
    assert refused.setting == "max_bytes"
    assert store.items("a") == store.items("b") == {"k0": "v"}


def test_expired_entries_make_room_before_a_refusal(clock: ManualClock) -> None:
    store = CacheStore(clock, options=CacheOptions(plugin_max_entries=3, max_entries=4))
    store.set("p", "k0", "v", ttl_seconds=100)
    store.set("p", "k1", "v", ttl_seconds=1)
    store.set("p", "k2", "v", ttl_seconds=100)
    store.set("q", "old", "v", ttl_seconds=1)
    assert store.set("p", "k3", "v") is False
    clock.advance(2)
    assert store.set("p", "k3", "v") is True  # k1 expired: it went, nothing live did
    assert set(store.items("p")) == {"k0", "k2", "k3"}
    assert store.usage() == (4, store.size_bytes)  # q's expired entry is still held, not yet needed
    assert store.set("r", "k", "v") is True  # the scope cap drops every plugin's expired entries
    assert store.usage("q") == (0, 0)


def test_a_refused_set_drops_the_value_it_meant_to_replace(clock: ManualClock) -> None:
    cache = CacheService(
        PLUGIN, CacheStore(clock, max_bytes=entry_size("other", "kept") + entry_size("k", "x"))
    )
    set_string(cache, "other", "kept")
    set_string(cache, "k", "x")
    with pytest.warns(HostLimitWarning), pytest.raises(SoftError) as refusal:
        set_string(cache, "k", "x" * 100)
    assert refusal.value.response == cache_pb2.SetResponse(success=False)
    assert get_string(cache, "k").exists is False  # the plugin never reads the value it replaced
    assert get_string(cache, "other").value == "kept"  # and nothing else went


def test_the_plugin_is_refused_with_success_false_and_the_test_warned_once_per_cap(
    clock: ManualClock,
) -> None:
    store = CacheStore(clock, options=CacheOptions(plugin_max_entries=1, max_entries=3))
    alpha, beta = CacheService("alpha", store), CacheService("beta", store)
    assert set_string(alpha, "k0").success is True
    with pytest.warns(HostLimitWarning) as first, pytest.raises(SoftError) as refusal:
        set_string(alpha, "k1")
    assert refusal.value.response == cache_pb2.SetResponse(success=False)
    assert refusal.value.detail == (
        "cache: 'k1' not stored: the host's cap plugin_max_entries=1 "
        "(entries per plugin, HostOptions.cache.plugin_max_entries) is reached"
    )
    (warning,) = first
    text = str(warning.message)
    assert "plugin 'alpha'" in text
    assert "plugin_max_entries=1" in text
    assert "HostOptions.cache.plugin_max_entries" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second refusal for the same plugin and cap warns no more
        for key in ("k2", "k3"):
            with pytest.raises(SoftError):
                alpha.set_int(cache_pb2.SetIntRequest(key=key, value=1))
    assert set_string(beta, "k0").success is True
    with pytest.warns(HostLimitWarning, match="plugin 'beta'"), pytest.raises(SoftError):
        set_string(beta, "k1")  # the same cap, another plugin: warned again
    assert store.set("gamma", "k0", "v")  # the scope is full now
    with pytest.warns(HostLimitWarning, match=r"plugin 'delta'.* max_entries=3"), pytest.raises(SoftError):
        set_string(CacheService("delta", store), "k0")


def test_an_error_warnings_filter_never_changes_the_plugins_answer(clock: ManualClock) -> None:
    cache = CacheService(PLUGIN, CacheStore(clock, options=CacheOptions(plugin_max_entries=1)))
    set_string(cache, "k0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(SoftError):  # not the warning: the plugin still gets success=false
            set_string(cache, "k1")


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
@given(ops=st.lists(OPS, max_size=40), max_bytes=st.integers(1, 1500), max_entries=st.integers(1, 4))
def test_a_set_is_kept_exactly_when_it_fits_beside_the_live_entries(
    ops: list[tuple], max_bytes: int, max_entries: int
) -> None:
    clock = ManualClock()
    store = CacheStore(clock, options=CacheOptions(max_bytes=max_bytes, max_entries=max_entries))
    live: dict[str, tuple[bytes, float, float]] = {}  # the model: key -> (value, ttl, expiry)
    for op in ops:
        now = clock.now()
        live = {k: entry for k, entry in live.items() if not entry[2] < now}
        if op[0] == "set":
            _, n, value, ttl_seconds = op
            key = f"k{n}"
            live.pop(key, None)
            held = sum(entry_size(k, v) for k, (v, _, _) in live.items())
            fits = len(live) < max_entries and held + entry_size(key, value) <= max_bytes
            assert store.set("p", key, value, ttl_seconds) is fits
            if fits:
                ttl = effective_ttl(ttl_seconds)
                live[key] = (value, ttl, now + ttl)
        elif op[0] == "get":
            key = f"k{op[1]}"
            found = store.lookup("p", key)
            assert (found is not None) is (key in live)
            if key in live:
                value, ttl, _ = live[key]
                live[key] = (value, ttl, now + ttl)  # a hit slides the expiry
        elif op[0] == "remove":
            store.remove("p", f"k{op[1]}")
            live.pop(f"k{op[1]}", None)
        elif op[0] == "advance":
            clock.advance(op[1])
        else:
            store.sweep()
        entries, held_now = store.usage()
        assert entries <= max_entries
        assert 0 <= held_now <= max_bytes
    assert store.items("p") == {k: v for k, (v, _, exp) in live.items() if not exp < clock.now()}
