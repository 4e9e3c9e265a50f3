"""The hostile samples (sample_plugins/hostile/*): the harness contains each misbehaving plugin.

Written the way a plugin author would write them, with the public fixtures only: each test loads a
hostile plugin into a fresh runtime scope with small limits (0.3 s per call, 32 MiB of memory), checks
that the harness raises the right error, and then checks that a good plugin still works in that same
scope.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_wasmhost import (
    AbiError,
    CallbackFailed,
    InstanceLimits,
    PluginError,
    PluginLoadError,
    PluginMemoryError,
    PluginTimeout,
    PluginTrap,
    ScopedRuntime,
)
from pytest_wasmhost.doubles import MemoryWebSockets
from pytest_wasmhost.fixtures import WasmRuntime
from pytest_wasmhost.host.websocket import websocket_hub

SAMPLES = Path(__file__).resolve().parents[2] / "sample_plugins"
HOSTILE = SAMPLES / "hostile"
GOOD = SAMPLES / "go" / "fake_artist_agent"

MEMORY_CAP = 32 * 1024 * 1024
LIMITS = InstanceLimits(call_timeout=0.3, memory_limit=MEMORY_CAP)


@pytest.fixture
def scope(wasm_runtime: WasmRuntime) -> Iterator[ScopedRuntime]:
    """A fresh scope with small limits, so a runaway plugin is stopped fast."""
    with wasm_runtime.fresh(limits=LIMITS) as fresh:
        yield fresh


def assert_still_usable(scope: ScopedRuntime) -> None:
    """A good plugin loads and answers in the scope the hostile one ran in."""
    good = scope.plugin(GOOD)
    assert good.metadata_agent.get_artist_mbid(name="x").mbid == "1234567890"


# -- failures during a call --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "error", "phrase"),
    [
        pytest.param("infinite_loop", PluginTimeout, "ran past its deadline of 0.3s", id="infinite_loop"),
        pytest.param(
            "memory_hog", PluginMemoryError, "ran out of linear memory at the cap of 32 MiB", id="memory_hog"
        ),
        pytest.param("trap", PluginTrap, "unreachable", id="trap"),
        pytest.param("oob_result", AbiError, "lies outside the guest's memory", id="oob_result"),
        pytest.param(
            "huge_response", AbiError, "Memory.Read(1024, 2147483647) out of range", id="huge_response"
        ),
        pytest.param("reentrant", PluginTrap, "env.schedule_one_time", id="reentrant"),
    ],
)
def test_a_failing_call_is_contained(
    scope: ScopedRuntime, sample: str, error: type[Exception], phrase: str
) -> None:
    plugin = scope.plugin(HOSTILE / sample)
    with pytest.raises(error) as excinfo:
        plugin.metadata_agent.get_artist_mbid(name="x")
    assert phrase in str(excinfo.value)
    assert_still_usable(scope)


def test_error_text_that_is_not_utf8_becomes_replacement_characters(scope: ScopedRuntime) -> None:
    plugin = scope.plugin(HOSTILE / "error_garbage")
    with pytest.raises(PluginError, match="the plugin returned the error") as excinfo:
        plugin.metadata_agent.get_artist_mbid(name="x")
    assert excinfo.value.text == "\ufffd\ufffdbad\ufffd(utf8\ufffd"
    assert_still_usable(scope)


def test_a_huge_result_size_allocates_nothing(scope: ScopedRuntime) -> None:
    plugin = scope.plugin(HOSTILE / "huge_response")
    tracemalloc.start()
    try:
        with pytest.raises(AbiError, match="size 2147483647"):
            plugin.metadata_agent.get_artist_mbid(name="x")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024, f"the host allocated {peak:,} bytes for a result it could not read"
    assert_still_usable(scope)


def test_a_bad_pointer_to_a_host_function_is_a_hard_error(scope: ScopedRuntime) -> None:
    plugin = scope.plugin(HOSTILE / "reentrant")
    with pytest.raises(
        PluginTrap, match=r"host function env\.schedule_one_time \(scheduler\) failed"
    ) as excinfo:
        plugin.metadata_agent.get_artist_mbid(name="x")
    assert "request at 0x7fff0000 with size 16 lies outside the guest's memory" in str(excinfo.value)
    # The first call, with a request in the guest's own malloc'd buffer, was served normally.
    calls = scope.transcript.calls("scheduler", "schedule_one_time")
    assert [call.verdict for call in calls] == ["ok", "hard-error"]
    assert_still_usable(scope)


def test_a_hard_error_inside_a_websocket_callback_is_kept_for_the_test(scope: ScopedRuntime) -> None:
    plugin = scope.plugin(HOSTILE / "bad_cron_on_close")  # OnInit connects "feed"
    MemoryWebSockets(websocket_hub(scope.env)).peer("feed").close(1000, "bye")
    # The host logged and dropped it, as the original did; the scope keeps it for the test to report.
    (failure,) = scope.env.callback_failures
    assert isinstance(failure, CallbackFailed)
    assert (failure.plugin_id, failure.export) == (plugin.plugin_id, "web_socket_callback_on_close")
    assert isinstance(failure.cause, PluginTrap)
    assert "expected exactly 5 fields, found 6: [*/2 * * * * *]" in str(failure)
    (call,) = scope.transcript.calls("websocket", "on_close")
    assert call.verdict == "error"
    scope.env.callback_failures.clear()  # provoked on purpose: not this test's warning
    assert_still_usable(scope)


# -- failures at load time ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sample", "phrases"),
    [
        pytest.param("no_malloc", ("malloc is not exported",), id="no_malloc"),
        pytest.param(
            "wrong_api_version", ("API version mismatch, host: 1, plugin: 2",), id="wrong_api_version"
        ),
        pytest.param(
            "missing_capability", ("scrobbler_api_version is not exported",), id="missing_capability"
        ),
    ],
)
def test_a_plugin_that_cannot_load_is_refused(
    scope: ScopedRuntime, sample: str, phrases: tuple[str, ...]
) -> None:
    with pytest.raises(PluginLoadError) as excinfo:
        scope.plugin(HOSTILE / sample)
    for phrase in phrases:
        assert phrase in str(excinfo.value)
    assert_still_usable(scope)


def test_an_ungranted_import_loads_and_every_call_names_the_import_and_the_permission(
    scope: ScopedRuntime,
) -> None:
    plugin = scope.plugin(HOSTILE / "ungranted_import")  # loads, as in the original (abi.md §8)
    for _ in range(2):  # every call, not only the first
        with pytest.raises(PluginLoadError) as excinfo:
            plugin.metadata_agent.get_artist_mbid(name="x")
        assert excinfo.value.import_name == "env.get"
        assert excinfo.value.permission == "http"
        assert excinfo.value.export == "metadata_agent_get_artist_mbid"
        assert "'http' permission" in str(excinfo.value)
        assert excinfo.value.original is not None
        assert excinfo.value.original.startswith(
            "baseCapability: failed to load instance for ungranted_import_MetadataAgent: "
        )
    assert plugin.stats().created == 0
    assert_still_usable(scope)


# -- slow damage -------------------------------------------------------------------------------------


def test_a_leak_is_bounded_by_the_memory_cap_and_the_instance_is_recycled(scope: ScopedRuntime) -> None:
    plugin = scope.plugin(HOSTILE / "leaky")
    calls_per_instance = MEMORY_CAP // (64 * 1024)  # at most this many 64 KiB leaks fit under the cap
    outcomes: list[str] = []
    for _ in range(calls_per_instance + 50):
        try:
            assert plugin.metadata_agent.get_artist_mbid(name="x").mbid == "leaky"
            outcomes.append("ok")
        except PluginMemoryError as exc:
            outcomes.append("full" if "cap of 32 MiB" in str(exc) else str(exc))
    assert set(outcomes) == {"ok", "full"}, "the leak failed some other way, or never reached the cap"
    first_full = outcomes.index("full")
    assert 400 < first_full < calls_per_instance  # the cap, not something earlier, stopped it
    assert outcomes[first_full + 1] == "ok"  # the full instance was dropped and a fresh one answered
    assert_still_usable(scope)


def test_a_stderr_flood_is_captured_bounded(scope: ScopedRuntime) -> None:
    plugin = scope.plugin(HOSTILE / "stderr_flood")
    assert plugin.metadata_agent.get_artist_mbid(name="x").mbid == "flood"
    kept = 64 * 1024
    dropped = 10 * 1024 * 1024 - kept
    assert plugin.stderr.startswith(f"[... {dropped} earlier bytes dropped ...]\n")
    assert plugin.stderr.endswith("A" * kept)
    assert len(plugin.stderr) < kept + 100
    assert_still_usable(scope)
