"""The scheduler host functions called from real wasm guests (linker, dispatch, traps, callbacks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.abi.proto import api_pb2, scheduler_pb2
from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock, ManualClock
from pytest_wasmhost.errors import HostLimitWarning, PluginLoadError, PluginTrap
from pytest_wasmhost.host.base import HostEnvironment
from pytest_wasmhost.host.options import HostOptions, SchedulerOptions
from pytest_wasmhost.host.scheduler import CALLBACK_EXPORT, SchedulerEngine
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings
from tests.support.hostcall import HostHarness
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module

FUNCTIONS = ("schedule_one_time", "schedule_recurring", "cancel_schedule", "time_now")
GRANTED = {"scheduler": {"reason": "scheduler tests"}}
START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp()
RESPONSES: dict[str, type[Message]] = {
    "schedule_one_time": scheduler_pb2.ScheduleResponse,
    "schedule_recurring": scheduler_pb2.ScheduleResponse,
    "cancel_schedule": scheduler_pb2.CancelResponse,
    "time_now": scheduler_pb2.TimeNowResponse,
}


class Recorder:
    """A fake ``call_plugin`` that accepts every callback."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, Message]] = []

    def __call__(self, plugin_id: str, export: str, request: Message) -> Reply:
        self.calls.append((plugin_id, export, request))
        return Reply(api_pb2.SchedulerCallbackResponse(), None)


UTC_SCOPE = HostOptions(scheduler=SchedulerOptions(timezone="UTC"))


def make_harness(clock: Clock, recorder: Recorder | None = None) -> HostHarness:
    env = HostEnvironment(clock=clock, call_plugin=recorder, options=UTC_SCOPE)
    return HostHarness(FUNCTIONS, permissions=GRANTED, capabilities=("SchedulerCallback",), env=env)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def harness(recorder: Recorder) -> Iterator[HostHarness]:
    built = make_harness(ManualClock(START), recorder)
    yield built
    built.close()


def engine_of(harness: HostHarness) -> SchedulerEngine:
    return SchedulerEngine.of(harness.env)


# -- each host function from the guest ------------------------------------------------------------


def test_schedule_one_time_from_the_guest(harness: HostHarness) -> None:
    request = scheduler_pb2.ScheduleOneTimeRequest(
        delay_seconds=6, payload=b"test-payload", schedule_id="artist:X"
    )
    response = harness.call("schedule_one_time", request, scheduler_pb2.ScheduleResponse)
    assert response == scheduler_pb2.ScheduleResponse(schedule_id="artist:X")
    job = engine_of(harness).job("test_plugin", "artist:X")
    assert job is not None
    assert (job.type, job.due, job.payload) == ("one-time", START + 6, b"test-payload")
    call = harness.transcript.calls("scheduler", "schedule_one_time")[-1]
    assert (call.plugin_id, call.verdict, call.request, call.response) == (
        "test_plugin",
        "ok",
        request,
        response,
    )


def test_schedule_recurring_with_a_generated_id_from_the_guest(harness: HostHarness) -> None:
    request = scheduler_pb2.ScheduleRecurringRequest(cron_expression="@every 5s", payload=b"every 5 seconds")
    response = harness.call("schedule_recurring", request, scheduler_pb2.ScheduleResponse)
    assert len(response.schedule_id) == 10
    job = engine_of(harness).job("test_plugin", response.schedule_id)
    assert job is not None
    assert (job.type, job.expression, job.due) == ("recurring", "@every 5s", START + 5)
    assert harness.transcript.calls("scheduler", "schedule_recurring")[-1].verdict == "ok"


def test_cancel_schedule_from_the_guest(harness: HostHarness) -> None:
    named = "heartbeat\u200bann"
    harness.call(
        "schedule_recurring",
        scheduler_pb2.ScheduleRecurringRequest(cron_expression="@every 41s", schedule_id=named),
        scheduler_pb2.ScheduleResponse,
    )
    cancel = scheduler_pb2.CancelRequest(schedule_id=named)
    assert harness.call(
        "cancel_schedule", cancel, scheduler_pb2.CancelResponse
    ) == scheduler_pb2.CancelResponse(success=True)
    assert harness.transcript.calls("scheduler", "cancel_schedule")[-1].verdict == "ok"
    again = harness.call("cancel_schedule", cancel, scheduler_pb2.CancelResponse)
    assert again == scheduler_pb2.CancelResponse(success=False, error="schedule not found")
    call = harness.transcript.calls("scheduler", "cancel_schedule")[-1]
    assert (call.verdict, call.detail) == ("error", "schedule not found")


def test_time_now_from_the_guest() -> None:
    harness = make_harness(SYSTEM_CLOCK)
    with freeze_time("2024-05-06T07:08:09.250000+00:00"):
        response = harness.call("time_now", scheduler_pb2.TimeNowRequest(), scheduler_pb2.TimeNowResponse)
    assert response == scheduler_pb2.TimeNowResponse(
        rfc3339_nano="2024-05-06T07:08:09.25Z",
        unix_milli=int(datetime(2024, 5, 6, 7, 8, 9, 250000, tzinfo=UTC).timestamp() * 1000),
        local_time_zone="UTC",
    )
    call = harness.transcript.calls("scheduler", "time_now")[-1]
    assert (call.verdict, call.response) == ("ok", response)
    harness.close()


def test_a_6_field_cron_traps_the_guest_call(harness: HostHarness) -> None:
    request = scheduler_pb2.ScheduleRecurringRequest(
        cron_expression="*/2 * * * * *", schedule_id="crypto-ticker"
    )
    with pytest.raises(PluginTrap) as info:
        harness.call_raw("schedule_recurring", request)
    expected = "failed to schedule recurring job: expected exactly 5 fields, found 6: [*/2 * * * * *]"
    assert expected in str(info.value)
    call = harness.transcript.calls("scheduler", "schedule_recurring")[-1]
    assert (call.verdict, call.detail) == ("hard-error", expected)
    assert engine_of(harness).jobs() == []


def test_a_scheduled_job_fires_its_callback(harness: HostHarness, recorder: Recorder) -> None:
    request = scheduler_pb2.ScheduleOneTimeRequest(
        delay_seconds=6, payload=b"test-payload", schedule_id="artist:X"
    )
    harness.call("schedule_one_time", request, scheduler_pb2.ScheduleResponse)
    assert engine_of(harness).run_due(START + 5) == []
    (firing,) = engine_of(harness).run_due(START + 6)
    assert (firing.schedule_id, firing.outcome, firing.is_recurring) == ("artist:X", "ok", False)
    expected = api_pb2.SchedulerCallbackRequest(
        schedule_id="artist:X", payload=b"test-payload", is_recurring=False
    )
    assert recorder.calls == [("test_plugin", CALLBACK_EXPORT, expected)]
    callback = harness.transcript.calls("scheduler", "on_scheduler_callback")[-1]
    assert (callback.verdict, callback.request) == ("ok", expected)


def test_a_schedule_past_a_cap_answers_no_id_and_the_transcript_says_why(recorder: Recorder) -> None:
    env = HostEnvironment(
        clock=ManualClock(START),
        call_plugin=recorder,
        options=HostOptions(scheduler=SchedulerOptions(plugin_max_jobs=1)),
    )
    h = HostHarness(FUNCTIONS, permissions=GRANTED, capabilities=("SchedulerCallback",), env=env)
    try:
        first = scheduler_pb2.ScheduleOneTimeRequest(delay_seconds=60, schedule_id="a")
        assert h.call("schedule_one_time", first, scheduler_pb2.ScheduleResponse).schedule_id == "a"
        second = scheduler_pb2.ScheduleRecurringRequest(cron_expression="@every 5s", schedule_id="b")
        with pytest.warns(HostLimitWarning, match="plugin 'test_plugin' reached the host's scheduler cap"):
            raw = h.call_raw("schedule_recurring", second)
        assert raw == b""  # ScheduleResponse without an id: not a trap, nothing scheduled
        refused = h.transcript.calls("scheduler", "schedule_recurring")[-1]
        assert refused.verdict == "error"
        assert refused.detail.startswith("failed to schedule recurring job: the host's cap plugin_max_jobs=1")
        assert [j.schedule_id for j in SchedulerEngine.of(env).jobs()] == ["a"]
    finally:
        h.close()


def test_without_the_scheduler_permission_the_import_does_not_link() -> None:
    with pytest.raises(PluginLoadError) as info:
        HostHarness(["schedule_recurring"], permissions={})
    assert info.value.import_name == "env.schedule_recurring"
    assert info.value.permission == "scheduler"


# -- a real plugin: firing reaches its export through the scope ------------------------------------

SCHEDULE_TICK = scheduler_pb2.ScheduleRecurringRequest(
    cron_expression="@every 5s", payload=b"tick", schedule_id="tick"
).SerializeToString()
CANCEL_TICK = scheduler_pb2.CancelRequest(schedule_id="tick").SerializeToString()
IMPORTS = """
  (import "env" "schedule_recurring" (func $schedule (param i32 i32) (result i64)))
  (import "env" "cancel_schedule" (func $cancel (param i32 i32) (result i64)))"""


def ticker(capabilities: tuple[str, ...]) -> bytes:
    """GetArtistMBID schedules "tick" (@every 5s); the callback (if declared) cancels it re-entrantly."""
    schedule = f"(call $schedule (i32.const 256) (i32.const {len(SCHEDULE_TICK)}))"
    cancel = f"(call $cancel (i32.const {256 + len(SCHEDULE_TICK)}) (i32.const {len(CANCEL_TICK)}))"
    results = {
        "metadata_agent_get_artist_mbid": f"(drop {schedule}) (i64.const 0)",
        "scheduler_callback_on_scheduler_callback": f"(drop {cancel}) (i64.const 0)",
    }
    return metadata_module(
        data=SCHEDULE_TICK + CANCEL_TICK, imports=IMPORTS, capabilities=capabilities, results=results
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    with Runtime(RuntimeSettings(cache_dir=tmp_path / "cache")) as rt:
        yield rt


def test_a_firing_calls_the_plugins_callback_which_may_cancel_reentrantly(
    runtime: Runtime, tmp_path: Path
) -> None:
    folder = write_plugin(
        tmp_path,
        ticker(("MetadataAgent", "SchedulerCallback")),
        capabilities=["MetadataAgent", "SchedulerCallback"],
        permissions=GRANTED,
    )
    clock = ManualClock(START)
    with runtime.scope(clock=clock, host_options=UTC_SCOPE) as scope:
        plugin = scope.plugin(folder)
        plugin.call("metadata_agent_get_artist_mbid", api_pb2.ArtistMBIDRequest(name="x"))
        engine = SchedulerEngine.of(scope.env)
        assert [j.internal_id for j in engine.jobs()] == ["test_plugin:tick"]
        clock.advance(20)
        firings = engine.run_due()
        assert [(f.schedule_id, f.due - START, f.outcome) for f in firings] == [("tick", 5, "ok")]
        assert engine.jobs() == [], "the callback cancelled its own schedule"
        names = [(c.function, c.verdict) for c in scope.transcript.calls("scheduler")]
        assert names == [
            ("schedule_recurring", "ok"),
            ("cancel_schedule", "ok"),
            ("on_scheduler_callback", "ok"),
        ]


def test_a_plugin_without_scheduler_callback_gets_no_delivery(runtime: Runtime, tmp_path: Path) -> None:
    folder = write_plugin(
        tmp_path, ticker(("MetadataAgent",)), capabilities=["MetadataAgent"], permissions=GRANTED
    )
    with runtime.scope(clock=ManualClock(START), host_options=UTC_SCOPE) as scope:
        scope.plugin(folder).call("metadata_agent_get_artist_mbid", api_pb2.ArtistMBIDRequest(name="x"))
        engine = SchedulerEngine.of(scope.env)
        engine.schedule_one_time("ghost", "lost", 0, b"")
        firings = engine.run_due(START + 5)
        assert [(f.plugin_id, f.outcome) for f in firings] == [("ghost", "error"), ("test_plugin", "error")]
        assert "no plugin 'ghost' is loaded" in firings[0].error
        assert "SchedulerCallback" in firings[1].error
        assert engine.job("test_plugin", "tick") is not None, (
            "a recurring job keeps ticking, as in the original"
        )


# -- property: random request bytes never crash the host -----------------------------------------


@pytest.fixture(scope="module")
def harnesses() -> Iterator[dict[str, HostHarness]]:
    # One guest per function: the guest's bump allocator never frees, so each gets its own memory.
    built = {fn: make_harness(ManualClock(START), Recorder()) for fn in FUNCTIONS}
    yield built
    for one in built.values():
        one.close()


def call_guest(harness: HostHarness, function: str, data: bytes) -> Message | PluginTrap:
    """The decoded response (a DecodeError fails the test), or the trap the guest call ended in."""
    try:
        raw = harness.call_raw(function, data)
    except PluginTrap as trap:
        return trap
    return RESPONSES[function].FromString(raw)


CRON_TOKENS = [
    "*",
    "?",
    "*/5",
    "1-5",
    "5/2",
    "MON",
    "jan",
    "L",
    "7",
    "60",
    "0",
    ",",
    "-",
    "/",
    "@every",
    "@daily",
]
CRON_TOKENS += ["5s", "1h30m", "1.5h", "-1s", "CRON_TZ=UTC", "TZ=Bad/Zone", "TZ=America/New_York", "\u200b"]
CRON_TEXT = st.one_of(
    st.lists(st.sampled_from(CRON_TOKENS), min_size=5, max_size=5).map(" ".join),
    st.lists(st.sampled_from(CRON_TOKENS), max_size=7).map(" ".join),
    st.text(max_size=24),
)
IDS = st.text(max_size=12)
WELL_FORMED: dict[str, st.SearchStrategy[Message]] = {
    "schedule_one_time": st.builds(
        scheduler_pb2.ScheduleOneTimeRequest,
        delay_seconds=st.integers(-(2**31), 2**31 - 1),
        payload=st.binary(max_size=8),
        schedule_id=IDS,
    ),
    "schedule_recurring": st.builds(
        scheduler_pb2.ScheduleRecurringRequest,
        cron_expression=CRON_TEXT,
        payload=st.binary(max_size=8),
        schedule_id=IDS,
    ),
    "cancel_schedule": st.builds(scheduler_pb2.CancelRequest, schedule_id=IDS),
    "time_now": st.just(scheduler_pb2.TimeNowRequest()),
}


def request_bytes(function: str) -> st.SearchStrategy[bytes]:
    """Arbitrary bytes, or a well-formed request with arbitrary fields (so the handlers run too)."""
    return st.one_of(st.binary(max_size=48), WELL_FORMED[function].map(lambda m: m.SerializeToString()))


@pytest.mark.parametrize("function", FUNCTIONS)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(draw=st.data())
def test_random_requests_never_crash_the_host(
    harnesses: dict[str, HostHarness], function: str, draw: st.DataObject
) -> None:
    harness = harnesses[function]
    data = draw.draw(request_bytes(function), label="request")
    before = len(harness.transcript)
    outcome = call_guest(harness, function, data)
    if isinstance(outcome, PluginTrap):
        assert f"host function env.{function} (scheduler) failed" in str(outcome)
    else:
        assert isinstance(outcome, RESPONSES[function])
    calls = harness.transcript.calls("scheduler", function)
    assert len(harness.transcript) == before + 1
    assert not calls[-1].detail.startswith("internal error"), calls[-1].detail
