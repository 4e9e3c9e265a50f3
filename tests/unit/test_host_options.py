"""HostOptions: one frozen, typed value per scope, and the deprecated nested dicts it replaces."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import pytest

from pytest_wasmhost import (
    ArtworkOptions,
    CacheOptions,
    HostOptions,
    HttpOptions,
    Runtime,
    RuntimeSettings,
    SchedulerOptions,
    SubsonicOptions,
    TranscriptOptions,
    WebSocketOptions,
)
from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.doubles import FakeSubsonic, MemoryTransport, MemoryTransportFactory
from pytest_wasmhost.host.artwork import DEFAULT_SECRET
from pytest_wasmhost.host.http import DEFAULT_MAX_RESPONSE_BYTES
from pytest_wasmhost.host.options import SERVICE_OPTIONS
from pytest_wasmhost.runtime.legacy_options import from_dict, host_options

MIB = 1024 * 1024
DICTS = "host_options as a dict is deprecated"


def legacy(options: dict[str, Any]) -> HostOptions:
    with pytest.warns(DeprecationWarning, match=DICTS):
        return host_options(options)


# -- the typed options -----------------------------------------------------------------------------------


def test_every_option_object_is_frozen() -> None:
    options = HostOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.cache = CacheOptions(max_entries=1)  # type: ignore[misc]
    for name in SERVICE_OPTIONS:
        section = getattr(options, name)
        field = dataclasses.fields(section)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(section, field, getattr(section, field))


def test_the_defaults_are_the_old_dict_defaults() -> None:
    options = HostOptions()
    assert options.cache == CacheOptions(200_000, 64 * MIB, 50_000, 16 * MIB)
    assert options.scheduler == SchedulerOptions(None, None, 50_000, 64 * MIB, 10_000, 16 * MIB)
    assert options.artwork == ArtworkOptions("", "", "", "", DEFAULT_SECRET)
    assert options.http == HttpOptions("strict", None, None, DEFAULT_MAX_RESPONSE_BYTES)
    assert DEFAULT_MAX_RESPONSE_BYTES == 32 * MIB
    assert options.websocket == WebSocketOptions(None, "strict", 60.0, 45.0, None, None, 256, 64)
    assert options.transcript == TranscriptOptions(20_000, 4096)
    # The one change: no invented Subsonic server unless the caller wires one in (fixtures, CLI do).
    assert options.subsonicapi == SubsonicOptions(backend=None)
    # Each empty section of the old dicts means exactly these defaults.
    empty = legacy({name: {} for name in SERVICE_OPTIONS if name != "subsonicapi"})
    assert empty == HostOptions(subsonicapi=SubsonicOptions(backend=FakeSubsonic))


def test_a_service_given_something_else_than_its_options_is_refused() -> None:
    with pytest.raises(TypeError, match=r"HostOptions\.cache must be a CacheOptions, got dict"):
        HostOptions(cache={"max_entries": 3})  # type: ignore[arg-type]


def test_replace_changes_one_service_and_names_the_valid_ones() -> None:
    base = HostOptions(http=HttpOptions(mode="legacy"))
    changed = base.replace(cache=CacheOptions(plugin_max_entries=3))
    assert (changed.cache.plugin_max_entries, changed.http) == (3, base.http)
    assert base.cache == CacheOptions()  # frozen: the original is unchanged
    with pytest.raises(TypeError, match=r"no service 'caches'; valid: \['cache', 'scheduler', 'artwork'"):
        base.replace(caches=CacheOptions())


def test_a_misspelt_setting_is_refused_by_the_options_class() -> None:
    with pytest.raises(TypeError, match="plugin_max_entry"):
        CacheOptions(plugin_max_entry=3)  # type: ignore[call-arg]


# -- the deprecated dicts: converted in one place, with a warning ---------------------------------------


def test_a_dict_is_converted_with_a_deprecation_warning_naming_the_caller() -> None:
    with pytest.warns(DeprecationWarning, match=DICTS) as caught:
        converted = host_options({"cache": {"plugin_max_entries": 3}}, stacklevel=1)
    assert caught[0].filename == __file__
    assert converted.cache == CacheOptions(plugin_max_entries=3)


def test_host_options_as_they_are_pass_through_without_a_warning() -> None:
    options = HostOptions(cache=CacheOptions(max_entries=5))
    base = HostOptions(http=HttpOptions(mode="legacy"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert host_options(options) is options
        assert host_options(None) == HostOptions()
        assert host_options(None, base=base) is base
    with pytest.raises(TypeError, match="host_options must be a HostOptions, got list"):
        host_options([("cache", {})])  # type: ignore[arg-type]


def test_every_setting_of_the_old_dicts_converts() -> None:
    resolver = lambda host, port: ["127.0.0.1"]  # noqa: E731
    options = legacy(
        {
            "cache": {"max_entries": 9, "max_bytes": 1000, "plugin_max_entries": 3, "plugin_max_bytes": 500},
            "scheduler": {"run": 1, "timezone": "UTC", "plugin_max_jobs": 2},
            "artwork": {"share_url": "https://x", "secret": "s", "base_host": None},
            "http": {"mode": "legacy", "resolver": resolver, "max_response_bytes": 10},
            "websocket": {
                "transport": "memory",
                "autodeliver": False,
                "idle_timeout": None,
                "mode": "legacy",
            },
            "subsonicapi": {"backend": None},
            "transcript": {"max_calls": 3, "max_payloads": 1},
        }
    )
    assert options == HostOptions(
        cache=CacheOptions(max_entries=9, max_bytes=1000, plugin_max_entries=3, plugin_max_bytes=500),
        scheduler=SchedulerOptions(run=True, timezone="UTC", plugin_max_jobs=2),
        artwork=ArtworkOptions(share_url="https://x", secret="s"),  # None meant the default
        http=HttpOptions(mode="legacy", resolver=resolver, max_response_bytes=10),
        websocket=WebSocketOptions(
            transport=MemoryTransportFactory(autodeliver=False), idle_timeout=None, mode="legacy"
        ),
        subsonicapi=SubsonicOptions(backend=None),  # an explicit None: the original without a router
        transcript=TranscriptOptions(max_calls=3, max_payloads=1),
    )


def test_websocket_transports_of_the_dicts() -> None:
    assert legacy({"websocket": {"transport": "real"}}).websocket.transport is None
    assert legacy({"websocket": {}}).websocket.transport is None
    given = MemoryTransport()
    factory = legacy({"websocket": {"transport": given}}).websocket.transport
    assert factory is not None
    assert factory(ManualClock(), WebSocketOptions()) is given
    with pytest.raises(ValueError, match="must be 'real', 'memory' or a Transport, got 'carrier-pigeon'"):
        legacy({"websocket": {"transport": "carrier-pigeon"}})


def test_a_subsonic_section_without_a_backend_meant_the_scopes_fake() -> None:
    for options in ({}, {"subsonicapi": {}}):
        assert legacy(options).subsonicapi == SubsonicOptions(backend=FakeSubsonic)
    fake = FakeSubsonic()
    assert legacy({"subsonicapi": {"backend": fake}}).subsonicapi.backend is fake


def test_services_the_dict_does_not_name_keep_the_base() -> None:
    base = HostOptions(http=HttpOptions(mode="legacy"), cache=CacheOptions(max_entries=7))
    merged = from_dict({"cache": {"plugin_max_entries": 3}}, base=base)
    assert merged.http is base.http
    assert merged.cache == CacheOptions(plugin_max_entries=3)  # a named section replaces the base's whole


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"caches": {}}, r"host_options has no service 'caches'; valid: \['cache', 'scheduler', 'artwork', "),
        (
            {"cache": {"max_entry": 3}},
            r"host_options\['cache'\] has no setting 'max_entry'; valid: \['max_entries', 'max_bytes', ",
        ),
        (
            {"websocket": {"transprt": "memory"}},
            r"has no setting 'transprt'; valid: \['transport', .*'autodeliver'\]",
        ),
        ({"artwork": {"shareURL": "x"}}, r"has no setting 'shareURL'; valid: \['share_url'"),
    ],
)
def test_bad_keys_name_the_key_and_the_valid_ones(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_dict(options, base=HostOptions())


def test_bad_values_are_refused_by_the_options_classes() -> None:
    with pytest.raises(TypeError, match=r"host_options\['cache'\] must be a dict of settings, got int"):
        from_dict({"cache": 3}, base=HostOptions())
    with pytest.raises(ValueError, match=r"CacheOptions\.max_entries must be a positive whole number"):
        from_dict({"cache": {"max_entries": 0}}, base=HostOptions())


# -- the runtime takes both -------------------------------------------------------------------------------


def test_the_runtime_converts_a_dict_once_and_its_production_scope_runs_the_scheduler(tmp_path: Path) -> None:
    settings = RuntimeSettings(cache_dir=tmp_path, disk_cache=False)
    with pytest.warns(DeprecationWarning, match=DICTS) as caught:
        runtime = Runtime(settings, host_options={"cache": {"max_entries": 5}})
    with runtime:
        assert [w.filename for w in caught] == [__file__]
        options = runtime.default_scope.host_options
        assert (options.cache.max_entries, options.scheduler.run) == (5, True)
        with pytest.warns(DeprecationWarning, match=DICTS) as caught:
            scope = runtime.scope(host_options={"transcript": {"max_calls": 2}})
        with scope:
            assert [w.filename for w in caught] == [__file__]
            assert scope.host_options.transcript.max_calls == 2
            assert scope.host_options.scheduler.run is None  # only the production scope fires on its own
    quiet = HostOptions(scheduler=SchedulerOptions(run=False))
    with Runtime(settings, host_options=quiet) as runtime:
        assert runtime.default_scope.host_options.scheduler.run is False  # an explicit choice is kept
    with Runtime(settings, janitor=False) as runtime:
        assert runtime.default_scope.host_options == HostOptions()
