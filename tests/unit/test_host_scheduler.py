"""Host service ``scheduler`` (spec/services/scheduler.md): registry, cron dialect, firing, time_now.

Expected cron times and error texts below were produced by robfig/cron v3.0.1 itself (a Go oracle run
while writing this module); they are the behaviour plugins saw in production.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import tracemalloc
import warnings
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from google.protobuf.message import Message

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.abi.proto import api_pb2, scheduler_pb2
from pytest_wasmhost.clock import SYSTEM_CLOCK, ManualClock
from pytest_wasmhost.errors import HostLimitWarning, PluginLoadError, PluginTrap
from pytest_wasmhost.gocompat.time import format_rfc3339_nano, resolve_local_zone
from pytest_wasmhost.host.base import HostEnvironment, HostHardError, ServiceContext, SoftError
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.host.registry import IMPLEMENTED, SERVICES
from pytest_wasmhost.host.scheduler import (
    CALLBACK_EXPORT,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_JOBS,
    DEFAULT_PLUGIN_MAX_BYTES,
    DEFAULT_PLUGIN_MAX_JOBS,
    JOB_OVERHEAD,
    NANOID_ALPHABET,
    CapExceeded,
    SchedulerEngine,
    SchedulerOptions,
    SchedulerService,
    job_size,
)
from pytest_wasmhost.manifest import parse_manifest
from tests.support.plugins import manifest as manifest_dict

PLUGIN = "test_plugin"
START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC).timestamp()
ID_SHAPE = re.compile(r"^[_\-0-9a-zA-Z]{10}$")


class Recorder:
    """A fake ``call_plugin``: records each callback, answers with ``reply`` or raises ``error``."""

    def __init__(self, reply: Reply | None = None, error: Exception | None = None) -> None:
        self.calls: list[tuple[str, str, api_pb2.SchedulerCallbackRequest]] = []
        self.reply = reply if reply is not None else Reply(api_pb2.SchedulerCallbackResponse(), None)
        self.error = error
        self.during: list[Any] = []  # whatever `on_call` observed while the callback ran
        self.on_call: Any = None

    def __call__(self, plugin_id: str, export: str, request: Message) -> Reply:
        assert isinstance(request, api_pb2.SchedulerCallbackRequest)
        self.calls.append((plugin_id, export, request))
        if self.on_call is not None:
            self.during.append(self.on_call(plugin_id, request))
        if self.error is not None:
            raise self.error
        return self.reply

    def ids(self) -> list[str]:
        return [request.schedule_id for _, _, request in self.calls]


def make_env(
    clock: Any = None, recorder: Recorder | None = None, timezone: str | None = "UTC", **caps: int
) -> HostEnvironment:
    options = HostOptions(scheduler=SchedulerOptions(timezone=timezone, **caps))
    return HostEnvironment(clock=clock or ManualClock(START), call_plugin=recorder, options=options)


def service(env: HostEnvironment, plugin_id: str = PLUGIN) -> SchedulerService:
    fields = manifest_dict(
        name=plugin_id, capabilities=["SchedulerCallback"], permissions={"scheduler": {"reason": "r"}}
    )
    manifest = parse_manifest(json.dumps(fields), plugin_id=plugin_id)
    ctx = ServiceContext(plugin_id=plugin_id, manifest=manifest, config=dict, env=env)
    return SchedulerService.create(ctx)


def one_time(svc: SchedulerService, delay: int, schedule_id: str = "", payload: bytes = b"") -> str:
    request = scheduler_pb2.ScheduleOneTimeRequest(
        delay_seconds=delay, schedule_id=schedule_id, payload=payload
    )
    return svc.schedule_one_time(request).schedule_id


def recurring(svc: SchedulerService, cron: str, schedule_id: str = "", payload: bytes = b"") -> str:
    request = scheduler_pb2.ScheduleRecurringRequest(
        cron_expression=cron, schedule_id=schedule_id, payload=payload
    )
    return svc.schedule_recurring(request).schedule_id


def cancel(svc: SchedulerService, schedule_id: str) -> scheduler_pb2.CancelResponse:
    return svc.cancel_schedule(scheduler_pb2.CancelRequest(schedule_id=schedule_id))


def next_times(cron: str, *, start: float = START, count: int = 4, timezone: str = "UTC") -> list[str]:
    """The first ``count`` firings of ``cron`` after ``start``, as ISO times in ``timezone``."""
    env = make_env(ManualClock(start), Recorder(), timezone=timezone)
    engine = SchedulerEngine.of(env)
    engine.schedule_recurring(PLUGIN, "probe", cron, b"")
    zone = ZoneInfo(timezone) if timezone else UTC
    times: list[str] = []
    due = engine.next_due()
    while due is not None and len(times) < count:
        times.append(datetime.fromtimestamp(due, zone).isoformat())
        engine.run_due(due)
        due = engine.next_due()
    return times


@pytest.fixture
def env() -> HostEnvironment:
    return make_env(recorder=Recorder())


@pytest.fixture
def svc(env: HostEnvironment) -> SchedulerService:
    return service(env)


# -- wiring -------------------------------------------------------------------------------------


def test_the_service_links_its_four_imports() -> None:
    assert SERVICES["scheduler"] is SchedulerService
    assert IMPLEMENTED["scheduler"] == (
        "schedule_one_time",
        "schedule_recurring",
        "cancel_schedule",
        "time_now",
    )
    names = [fn.name for fn in service(make_env()).functions()]
    assert tuple(names) == SchedulerService.function_names


def test_every_plugin_of_a_scope_shares_one_engine(env: HostEnvironment) -> None:
    assert service(env, "a").engine is service(env, "b").engine is SchedulerEngine.of(env)
    assert SchedulerEngine.of(make_env()) is not SchedulerEngine.of(env)


# -- acceptance rows of the spec ----------------------------------------------------------------


def test_one_time_registers_under_the_internal_id(svc: SchedulerService) -> None:
    assert one_time(svc, 1, "test-job", b"test payload") == "test-job"
    job = svc.engine.job(PLUGIN, "test-job")
    assert job is not None
    assert (job.internal_id, job.type, job.payload) == ("test_plugin:test-job", "one-time", b"test payload")


def test_one_time_with_empty_id_gets_a_generated_nanoid(svc: SchedulerService) -> None:
    generated = one_time(svc, 1)
    assert ID_SHAPE.match(generated)
    assert svc.engine.job(PLUGIN, generated) is not None


def test_one_time_then_cancel_succeeds_and_removes_the_entry(svc: SchedulerService) -> None:
    one_time(svc, 10, "test-job")
    assert cancel(svc, "test-job") == scheduler_pb2.CancelResponse(success=True, error="")
    assert svc.engine.job(PLUGIN, "test-job") is None


def test_recurring_registers_as_recurring(svc: SchedulerService) -> None:
    assert recurring(svc, "* * * * *", "test-cron") == "test-cron"
    job = svc.engine.job(PLUGIN, "test-cron")
    assert job is not None
    assert (job.type, job.expression) == ("recurring", "* * * * *")


def test_recurring_with_empty_id_gets_a_generated_nanoid(svc: SchedulerService) -> None:
    assert ID_SHAPE.match(recurring(svc, "* * * * *"))


def test_recurring_then_cancel_succeeds_and_removes_the_entry(svc: SchedulerService) -> None:
    recurring(svc, "* * * * *", "test-cron")
    assert cancel(svc, "test-cron").success
    assert svc.engine.jobs() == []


def test_replacing_a_one_time_job_keeps_the_count(svc: SchedulerService) -> None:
    one_time(svc, 10, "replace-job")
    count = len(svc.engine)
    one_time(svc, 60, "replace-job")
    job = svc.engine.job(PLUGIN, "replace-job")
    assert job is not None
    assert job.due == START + 60
    assert len(svc.engine) == count == 1


def test_replacing_a_recurring_job_keeps_the_count(svc: SchedulerService) -> None:
    recurring(svc, "0 * * * *", "replace-cron")
    count = len(svc.engine)
    recurring(svc, "*/5 * * * *", "replace-cron")
    job = svc.engine.job(PLUGIN, "replace-cron")
    assert job is not None
    assert job.expression == "*/5 * * * *"
    assert len(svc.engine) == count == 1


def test_time_now_matches_the_clock_and_the_local_zone_name() -> None:
    svc = service(make_env(SYSTEM_CLOCK, timezone=None))
    before_ms = int(SYSTEM_CLOCK.now() * 1000)
    response = svc.time_now(scheduler_pb2.TimeNowRequest())
    assert response.unix_milli >= before_ms
    parsed = datetime.fromisoformat(response.rfc3339_nano.replace("Z", "+00:00"))
    assert int(parsed.timestamp() * 1000) == response.unix_milli
    assert response.local_time_zone == resolve_local_zone(os.environ.get("TZ")).name


# -- ids ----------------------------------------------------------------------------------------


def test_generated_ids_are_10_chars_of_the_nanoid_alphabet_and_distinct(svc: SchedulerService) -> None:
    ids = {one_time(svc, 1) for _ in range(300)}
    assert len(ids) == 300
    assert all(len(i) == 10 and set(i) <= set(NANOID_ALPHABET) for i in ids)
    assert len(set("".join(ids))) > 40  # the whole alphabet is in use, not a subset


def test_named_callback_ids_pass_through_byte_for_byte(env: HostEnvironment, svc: SchedulerService) -> None:
    named = "heartbeat\u200bann"
    assert recurring(svc, "@every 41s", named) == named
    assert one_time(svc, 0, "close-activity\u200bann") == "close-activity\u200bann"
    SchedulerEngine.of(env).run_due(START + 41)
    recorder = env.call_plugin
    assert isinstance(recorder, Recorder)
    assert recorder.ids() == ["close-activity\u200bann", named]
    assert cancel(svc, named).success


def test_two_plugins_use_the_same_id_independently(env: HostEnvironment) -> None:
    a, b = service(env, "a"), service(env, "b")
    one_time(a, 10, "job", b"from a")
    one_time(b, 20, "job", b"from b")
    assert [j.internal_id for j in a.engine.jobs()] == ["a:job", "b:job"]
    assert cancel(a, "job").success
    assert not cancel(a, "job").success, "a cannot reach b's job"
    assert [j.payload for j in a.engine.jobs("b")] == [b"from b"]


# -- replacement and the original's defects -----------------------------------------------------


def test_replacement_works_across_types(env: HostEnvironment, svc: SchedulerService) -> None:
    one_time(svc, 10, "x", b"old")
    recurring(svc, "* * * * *", "x", b"new")
    assert svc.engine.jobs()[0].type == "recurring"
    recurring(svc, "* * * * *", "y", b"old")
    one_time(svc, 10, "y", b"new")
    assert [(j.schedule_id, j.type) for j in svc.engine.jobs()] == [("x", "recurring"), ("y", "one-time")]
    firings = svc.engine.run_due(START + 60)
    assert [(f.schedule_id, f.payload) for f in firings] == [("y", b"new"), ("x", b"new")]


def test_defect_1_an_invalid_replacement_leaves_the_old_schedule_firing(svc: SchedulerService) -> None:
    recurring(svc, "0 * * * *", "keep", b"old")
    with pytest.raises(HostHardError, match="expected exactly 5 fields"):
        recurring(svc, "*/2 * * * * *", "keep", b"new")
    job = svc.engine.job(PLUGIN, "keep")
    assert job is not None
    assert (job.expression, job.payload) == ("0 * * * *", b"old")
    assert [f.payload for f in svc.engine.run_due(START + 3600)] == [b"old"]


def test_defect_2_a_replaced_one_time_job_never_fires(svc: SchedulerService) -> None:
    one_time(svc, 10, "job", b"old")
    one_time(svc, 60, "job", b"new")
    assert svc.engine.run_due(START + 11) == [], "the old timer is bound to the old job"
    firings = svc.engine.run_due(START + 61)
    assert [(f.payload, f.due) for f in firings] == [(b"new", START + 60)]
    assert svc.engine.run_due(START + 3600) == []


def test_a_replaced_recurring_job_never_fires_again(svc: SchedulerService) -> None:
    recurring(svc, "@every 5s", "job", b"old")
    recurring(svc, "@every 7s", "job", b"new")
    firings = svc.engine.run_due(START + 14)
    assert [(f.payload, f.due - START) for f in firings] == [(b"new", 7), (b"new", 14)]


# -- cancel -------------------------------------------------------------------------------------


@pytest.mark.parametrize("setup", ["never", "fired", "cancelled"])
def test_cancel_of_an_unregistered_schedule_is_a_soft_error(svc: SchedulerService, setup: str) -> None:
    if setup != "never":
        one_time(svc, 1, "gone")
    if setup == "fired":
        svc.engine.run_due(START + 1)
    if setup == "cancelled":
        cancel(svc, "gone")
    assert cancel(svc, "gone") == scheduler_pb2.CancelResponse(success=False, error="schedule not found")


def test_cancel_all_removes_one_plugins_schedules(env: HostEnvironment) -> None:
    a, b = service(env, "a"), service(env, "b")
    one_time(a, 1, "1")
    recurring(a, "@hourly", "2")
    one_time(b, 1, "3")
    assert a.engine.cancel_all("a") == 2
    assert [j.internal_id for j in a.engine.jobs()] == ["b:3"]
    assert [f.plugin_id for f in a.engine.run_due(START + 7200)] == ["b"]


# -- isolation and caps -------------------------------------------------------------------------


def test_plugin_ids_with_a_colon_keep_their_schedules_apart(env: HostEnvironment) -> None:
    # The original keyed "<pluginID>:<schedule id>": plugin "a" schedule "b:c" replaced (and could cancel)
    # plugin "a:b"'s schedule "c" (issue 15). The key is the pair now; internal_id is only shown.
    a, ab = service(env, "a"), service(env, "a:b")
    one_time(ab, 10, "c", b"a:b's")
    one_time(a, 20, "b:c", b"a's")
    assert [(j.plugin_id, j.schedule_id, j.payload) for j in a.engine.jobs()] == [
        ("a:b", "c", b"a:b's"),
        ("a", "b:c", b"a's"),
    ]
    assert cancel(a, "b:c").success
    assert not cancel(a, "b:c").success
    job = a.engine.job("a:b", "c")
    assert job is not None
    assert job.payload == b"a:b's"
    assert [f.plugin_id for f in a.engine.run_due(START + 60)] == ["a:b"]


def test_default_caps_and_options() -> None:
    assert SchedulerOptions() == SchedulerOptions(
        None, None, DEFAULT_MAX_JOBS, DEFAULT_MAX_BYTES, DEFAULT_PLUGIN_MAX_JOBS, DEFAULT_PLUGIN_MAX_BYTES
    )
    assert (DEFAULT_PLUGIN_MAX_JOBS, DEFAULT_PLUGIN_MAX_BYTES) == (10_000, 16 * 1024 * 1024)
    assert (DEFAULT_MAX_JOBS, DEFAULT_MAX_BYTES) == (50_000, 64 * 1024 * 1024)
    engine = SchedulerEngine.of(
        make_env(max_jobs=9, plugin_max_jobs=3, max_bytes=10**6, plugin_max_bytes=10**5)
    )
    assert engine.options == SchedulerOptions(
        timezone="UTC", max_jobs=9, max_bytes=10**6, plugin_max_jobs=3, plugin_max_bytes=10**5
    )
    for bad in (0, -1, "5", 1.5, True):
        with pytest.raises(ValueError, match=r"SchedulerOptions.plugin_max_jobs must be a positive whole"):
            SchedulerOptions(plugin_max_jobs=bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"SchedulerOptions\.run must be True, False or None"):
        SchedulerOptions(run="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"SchedulerOptions\.timezone must be a str"):
        SchedulerOptions(timezone=0)  # type: ignore[arg-type]


def test_a_schedule_past_the_plugins_cap_gets_no_id_and_changes_nothing() -> None:
    env = make_env(recorder=Recorder(), plugin_max_jobs=2)
    svc, other = service(env), service(env, "other")
    assert one_time(svc, 10, "a") == "a"
    assert recurring(svc, "@hourly", "b") == "b"
    request = scheduler_pb2.ScheduleOneTimeRequest(delay_seconds=5, schedule_id="c", payload=b"p")
    with pytest.warns(HostLimitWarning) as caught, pytest.raises(SoftError) as refusal:
        svc.schedule_one_time(request)
    assert refusal.value.response == scheduler_pb2.ScheduleResponse()  # no id: nothing was scheduled
    assert refusal.value.detail == (
        "failed to schedule one-time job: the host's cap plugin_max_jobs=2 "
        "(jobs per plugin, HostOptions.scheduler.plugin_max_jobs) is reached"
    )
    (warning,) = caught
    assert "plugin 'test_plugin'" in str(warning.message)
    assert "plugin_max_jobs=2" in str(warning.message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per plugin and cap
        with pytest.raises(SoftError, match="failed to schedule recurring job"):
            recurring(svc, "@daily", "d")  # recurring too: a soft refusal, never a trap
        with pytest.raises(HostHardError, match="expected exactly 5 fields"):
            recurring(svc, "* * * * * *", "e")  # a bad expression is still the original's hard error
    assert [j.schedule_id for j in svc.engine.jobs(PLUGIN)] == ["a", "b"]
    assert one_time(svc, 99, "a", b"replaced") == "a"  # a replacement adds no job
    assert one_time(other, 1, "c") == "c"  # the cap is each plugin's own
    assert cancel(svc, "b").success
    assert one_time(svc, 5, "c") == "c"  # a cancel frees a place ...
    svc.engine.run_due(START + 5)  # ... and so does a one-time job that fired
    assert [j.schedule_id for j in svc.engine.jobs(PLUGIN)] == ["a"]
    assert one_time(svc, 5, "d") == "d"
    assert svc.engine.usage(PLUGIN)[0] == 2


def test_the_scope_cap_refuses_every_plugin_without_touching_anyones_jobs() -> None:
    env = make_env(max_jobs=3)
    a, b = service(env, "a"), service(env, "b")
    for schedule_id in ("1", "2", "3"):
        one_time(a, 10, schedule_id)
    with (
        pytest.warns(HostLimitWarning, match=r"plugin 'b'.* max_jobs=3 \(jobs for all plugins"),
        pytest.raises(SoftError),
    ):
        one_time(b, 10, "1")
    with pytest.raises(CapExceeded) as info:
        a.engine.schedule_one_time("b", "1", 10, b"")  # the engine's own API raises the cap
    assert (info.value.cap.setting, info.value.cap.per_plugin) == ("max_jobs", False)
    assert len(a.engine) == 3


def test_byte_caps_count_payloads_and_parsed_cron_fields() -> None:
    cron = job_size("r", b"", "* * * * *", None)
    env = make_env(plugin_max_bytes=20_000)
    svc = service(env)
    recurring(svc, "* * * * *", "r")
    _, held = svc.engine.usage(PLUGIN)
    assert held > cron + 4_000, "five parsed cron fields cost KBs, and they are counted"
    before = svc.engine.usage(PLUGIN)[1]
    recurring(svc, "@daily", "d")  # a descriptor's fields are shared: it costs little
    assert svc.engine.usage(PLUGIN)[1] - before < 1_000
    one_time(svc, 10, "big", b"x" * 5_000)
    with pytest.warns(HostLimitWarning, match="plugin_max_bytes"), pytest.raises(SoftError):
        one_time(svc, 10, "bigger", b"x" * 20_000)
    with pytest.raises(SoftError):
        one_time(svc, 10, "big", b"x" * 20_000)  # a refused replacement leaves the old job alone
    job = svc.engine.job(PLUGIN, "big")
    assert job is not None
    assert len(job.payload) == 5_000
    assert job_size("id", b"abc", "", None) == JOB_OVERHEAD + sys.getsizeof("id") + sys.getsizeof(b"abc")


def test_the_counted_bytes_cover_what_the_process_really_spends() -> None:
    engine = SchedulerEngine.of(make_env(plugin_max_jobs=10**6, max_jobs=10**6))
    ids = [f"job-{i}" for i in range(4_000)]
    payloads = [b"p" * (i % 40) for i in range(4_000)]
    crons = [f"{i % 60} */{1 + i % 5} * * *" for i in range(4_000)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i, (schedule_id, payload) in enumerate(zip(ids, payloads, strict=True)):
            if i % 4:
                engine.schedule_one_time(PLUGIN, schedule_id, 3600 + i, payload)
            else:
                engine.schedule_recurring(PLUGIN, schedule_id, crons[i], payload)
        spent = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    spent += sum(sys.getsizeof(i) + sys.getsizeof(p) for i, p in zip(ids, payloads, strict=True))
    spent += sum(sys.getsizeof(crons[i]) for i in range(0, 4_000, 4))
    counted = engine.usage()[1]
    assert spent <= counted <= 1.5 * spent


def test_replacing_one_far_future_schedule_again_and_again_keeps_the_heap_small(env: HostEnvironment) -> None:
    engine = SchedulerEngine.of(env)
    for i in range(3_000):
        engine.schedule_one_time(PLUGIN, "same", 10**8 + i, b"")
        engine.schedule_recurring(PLUGIN, f"cron-{i % 3}", "@yearly", b"")
        if i % 2:
            engine.cancel(PLUGIN, f"cron-{i % 3}")
    assert len(engine) <= 4
    assert len(engine._heap) < 600, "replaced and cancelled jobs' heap entries are compacted away"
    registered = [job.due for job in engine.jobs() if job.due is not None]
    assert engine.next_due() == min(registered)  # and it still orders what is registered


# -- cron dialect (robfig/cron v3 standard parser) ----------------------------------------------


def hard_error_text(svc: SchedulerService, cron: str) -> str:
    with pytest.raises(HostHardError) as info:
        recurring(svc, cron, "bad")
    assert svc.engine.job(PLUGIN, "bad") is None
    return info.value.message


def test_a_6_field_cron_is_a_hard_error_with_robfigs_text(svc: SchedulerService) -> None:
    text = hard_error_text(svc, "*/2 * * * * *")
    assert text == "failed to schedule recurring job: expected exactly 5 fields, found 6: [*/2 * * * * *]"


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("  ", "expected exactly 5 fields, found 0: []"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("5-3 * * * *", "beginning of range (5) beyond end of range (3): 5-3"),
        ("* * * FEB-JAN *", "beginning of range (2) beyond end of range (1): FEB-JAN"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("1/2/3 * * * *", "too many slashes: 1/2/3"),
        ("*/-5 * * * *", "negative number (-5) not allowed: -5"),
        ("* * L * *", 'failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax'),
        ("* * * * 1#2", 'failed to parse int from 1#2: strconv.Atoi: parsing "1#2": invalid syntax'),
        ("5- * * * *", 'failed to parse int from : strconv.Atoi: parsing "": invalid syntax'),
        ("\x01 * * * *", 'failed to parse int from \x01: strconv.Atoi: parsing "\\x01": invalid syntax'),
        (
            "99999999999999999999 * * * *",
            "failed to parse int from 99999999999999999999: strconv.Atoi: parsing "
            '"99999999999999999999": value out of range',
        ),
        (
            "9" * 5000 + " * * * *",
            f"failed to parse int from {'9' * 5000}: "
            f'strconv.Atoi: parsing "{"9" * 5000}": value out of range',
        ),
        ("@Daily", "unrecognized descriptor: @Daily"),
        ("@daily ", "unrecognized descriptor: @daily "),
        (" @daily", "expected exactly 5 fields, found 1: [@daily]"),
        ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
        ("@every  5s", 'failed to parse duration @every  5s: time: invalid duration " 5s"'),
        (
            "@every 1é",
            'failed to parse duration @every 1é: time: unknown unit "\\xc3\\xa9" in duration "1\\xc3\\xa9"',
        ),
        ("CRON_TZ=Bad/Zone * * * * *", "provided bad location Bad/Zone: unknown time zone Bad/Zone"),
        ("TZ=../x * * * * *", "provided bad location ../x: time: invalid location name"),
        ("TZ=America * * * * *", "provided bad location America: is a directory"),
        ("TZ=UTC ", "expected exactly 5 fields, found 0: []"),
    ],
)
def test_parse_errors_carry_robfigs_messages(svc: SchedulerService, cron: str, message: str) -> None:
    assert hard_error_text(svc, cron) == f"failed to schedule recurring job: {message}"


def test_a_tz_prefix_without_a_space_traps_like_robfigs_panic(svc: SchedulerService) -> None:
    assert hard_error_text(svc, "CRON_TZ=UTC") == "runtime error: slice bounds out of range [:-1]"


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        ("@yearly", ["2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"]),
        ("@annually", ["2025-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"]),
        ("@monthly", ["2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"]),
        ("@weekly", ["2024-01-07T00:00:00+00:00", "2024-01-14T00:00:00+00:00"]),
        ("@daily", ["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"]),
        ("@midnight", ["2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00"]),
        ("@hourly", ["2024-01-01T13:00:00+00:00", "2024-01-01T14:00:00+00:00"]),
    ],
)
def test_descriptors(cron: str, expected: list[str]) -> None:
    assert next_times(cron, count=2) == expected


@pytest.mark.parametrize(
    ("cron", "expected"),
    [
        (
            "@every 41s",
            ["2024-01-01T12:00:41+00:00", "2024-01-01T12:01:22+00:00", "2024-01-01T12:02:03+00:00"],
        ),
        (
            "@every 5m",
            ["2024-01-01T12:05:00+00:00", "2024-01-01T12:10:00+00:00", "2024-01-01T12:15:00+00:00"],
        ),
        (
            "@every 1h30m",
            ["2024-01-01T13:30:00+00:00", "2024-01-01T15:00:00+00:00", "2024-01-01T16:30:00+00:00"],
        ),
        (
            "@every 1.5h",
            ["2024-01-01T13:30:00+00:00", "2024-01-01T15:00:00+00:00", "2024-01-01T16:30:00+00:00"],
        ),
        # robfig's Every: at least one second, sub-second parts dropped.
        (
            "@every 300ms",
            ["2024-01-01T12:00:01+00:00", "2024-01-01T12:00:02+00:00", "2024-01-01T12:00:03+00:00"],
        ),
        (
            "@every 1.9s",
            ["2024-01-01T12:00:01+00:00", "2024-01-01T12:00:02+00:00", "2024-01-01T12:00:03+00:00"],
        ),
        (
            "@every -5s",
            ["2024-01-01T12:00:01+00:00", "2024-01-01T12:00:02+00:00", "2024-01-01T12:00:03+00:00"],
        ),
    ],
)
def test_every_with_go_durations(cron: str, expected: list[str]) -> None:
    assert next_times(cron, count=3) == expected


def test_every_ticks_land_on_whole_seconds() -> None:
    assert next_times("@every 41s", start=START + 0.5, count=2) == [
        "2024-01-01T12:00:41+00:00",
        "2024-01-01T12:01:22+00:00",
    ]


def test_cron_tz_prefix_selects_the_zone() -> None:
    assert next_times("CRON_TZ=America/New_York 0 9 * * *", count=2) == [
        "2024-01-01T14:00:00+00:00",
        "2024-01-02T14:00:00+00:00",
    ]
    assert next_times("TZ=Asia/Tokyo 0 9 * * *", count=1) == ["2024-01-02T00:00:00+00:00"]
    assert next_times("TZ= 0 9 * * *", count=1, timezone="America/New_York") == ["2024-01-02T04:00:00-05:00"]


def test_without_prefix_the_local_zone_applies_and_tz_local_names_it() -> None:
    assert next_times("0 9 * * *", count=1, timezone="America/New_York") == ["2024-01-01T09:00:00-05:00"]
    assert next_times("TZ=Local 0 9 * * *", count=1, timezone="Asia/Tokyo") == ["2024-01-02T09:00:00+09:00"]


@pytest.mark.parametrize(
    ("cron", "expected_days"),
    [
        ("0 0 13 * 5", ["01-05", "01-12", "01-13", "01-19"]),  # both restricted: the 13th OR Fridays
        ("0 0 */2 * 5", ["01-03", "01-05", "01-07", "01-09"]),  # a step > 1 clears robfig's star bit: OR
        ("0 0 * * 5", ["01-05", "01-12", "01-19", "01-26"]),  # one field is *: AND
        ("0 0 */1 * 5", ["01-05", "01-12", "01-19", "01-26"]),  # */1 keeps the star bit: AND
        ("0 0 ? * FRI", ["01-05", "01-12", "01-19", "01-26"]),  # ? is *, names are case-insensitive
        ("0 0 * * 5/2", ["01-05", "01-12", "01-19", "01-26"]),  # N/step runs to 6, never to a Sunday "7"
        ("0 0 * jan,Feb sun", ["01-07", "01-14", "01-21", "01-28"]),
    ],
)
def test_day_of_month_and_day_of_week_follow_robfig(cron: str, expected_days: list[str]) -> None:
    assert [t[5:10] for t in next_times(cron)] == expected_days


def test_impossible_dates_never_fire_but_stay_registered(svc: SchedulerService) -> None:
    recurring(svc, "0 0 30 2 *", "feb30")
    recurring(svc, ", * * * *", "empty-list")
    assert [j.due for j in svc.engine.jobs()] == [None, None]
    assert svc.engine.run_due(START + 10 * 365 * 86400) == []


def test_dst_gaps_are_skipped_and_repeated_hours_fire_twice() -> None:
    spring = datetime(2024, 3, 9, 12, tzinfo=UTC).timestamp()
    assert next_times("30 2 * * *", start=spring, count=2, timezone="America/New_York") == [
        "2024-03-11T02:30:00-04:00",
        "2024-03-12T02:30:00-04:00",
    ]
    autumn = datetime(2024, 11, 2, 12, tzinfo=UTC).timestamp()
    assert next_times("30 1 * * *", start=autumn, count=3, timezone="America/New_York") == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-03T01:30:00-05:00",
        "2024-11-04T01:30:00-05:00",
    ]
    cairo = datetime(2024, 4, 24, 12, tzinfo=UTC).timestamp()  # 2024-04-26 has no midnight in Cairo
    assert next_times("0 0 * * *", start=cairo, count=2, timezone="Africa/Cairo") == [
        "2024-04-25T00:00:00+02:00",
        "2024-04-27T00:00:00+03:00",
    ]


def test_the_zone_option_sets_the_local_zone_of_crons() -> None:
    env = make_env(timezone="Asia/Kolkata")
    assert SchedulerEngine.of(env).local_zone().name == "Asia/Kolkata"
    assert next_times("45 17 * * *", count=1, timezone="Asia/Kolkata") == ["2024-01-01T17:45:00+05:30"]


# -- time_now -------------------------------------------------------------------------------------


def time_now(timezone: str | None = "UTC") -> scheduler_pb2.TimeNowResponse:
    return service(make_env(SYSTEM_CLOCK, timezone=timezone)).time_now(scheduler_pb2.TimeNowRequest())


@pytest.mark.parametrize(
    ("instant", "timezone", "rfc3339", "zone_name"),
    [
        ("2024-01-02T03:04:05+00:00", "UTC", "2024-01-02T03:04:05Z", "UTC"),
        ("2024-01-02T03:04:05.120+00:00", "UTC", "2024-01-02T03:04:05.12Z", "UTC"),
        ("2024-01-02T03:04:05.123456+00:00", "UTC", "2024-01-02T03:04:05.123456Z", "UTC"),
        (
            "2024-01-02T03:04:05.5+00:00",
            "America/New_York",
            "2024-01-01T22:04:05.5-05:00",
            "America/New_York",
        ),
        ("2024-07-02T03:04:05+00:00", ":America/New_York", "2024-07-01T23:04:05-04:00", "America/New_York"),
        ("2024-01-02T03:04:05+00:00", "Asia/Kolkata", "2024-01-02T08:34:05+05:30", "Asia/Kolkata"),
        ("2024-01-02T03:04:05+00:00", "Europe/London", "2024-01-02T03:04:05Z", "Europe/London"),
        ("2024-01-02T03:04:05+00:00", "", "2024-01-02T03:04:05Z", "UTC"),
        ("2024-01-02T03:04:05+00:00", "Bad/Zone", "2024-01-02T03:04:05Z", "UTC"),
    ],
)
def test_time_now_formats(instant: str, timezone: str, rfc3339: str, zone_name: str) -> None:
    with freeze_time(instant):
        response = time_now(timezone)
    assert (response.rfc3339_nano, response.local_time_zone) == (rfc3339, zone_name)
    assert response.unix_milli == int(datetime.fromisoformat(instant).timestamp() * 1000)


def test_rfc3339_nano_trims_trailing_zeros_at_full_precision() -> None:
    base = 1_700_000_000 * 10**9
    zone = ZoneInfo("America/St_Johns")
    assert format_rfc3339_nano(base + 120_000_000, UTC) == "2023-11-14T22:13:20.12Z"
    assert format_rfc3339_nano(base + 1, UTC) == "2023-11-14T22:13:20.000000001Z"
    assert format_rfc3339_nano(base + 100, zone) == "2023-11-14T18:43:20.0000001-03:30"
    assert format_rfc3339_nano(-1_000, UTC) == "1969-12-31T23:59:59.999999Z"


@pytest.mark.parametrize(
    ("tz", "name"),
    [
        ("", "UTC"),
        ("UTC", "UTC"),
        (":", "UTC"),
        ("Bad/Zone", "UTC"),
        ("America/New_York", "America/New_York"),
        (":Europe/Paris", "Europe/Paris"),
        ("/nonexistent/zone", "UTC"),
    ],
)
def test_local_zone_names_follow_gos_tz_rules(tz: str, name: str) -> None:
    assert resolve_local_zone(tz).name == name


SYSTEM_TOKYO = Path("/usr/share/zoneinfo/Asia/Tokyo")


@pytest.mark.skipif(not SYSTEM_TOKYO.exists(), reason="needs the system zone database")
def test_local_zone_from_the_system_file_is_named_local(tmp_path: Path) -> None:
    zone_file = tmp_path / "localtime"
    shutil.copy(SYSTEM_TOKYO, zone_file)
    local = resolve_local_zone(None, str(zone_file))
    assert local.name == "Local"
    assert format_rfc3339_nano(0, local.tzinfo) == "1970-01-01T09:00:00+09:00"
    assert resolve_local_zone(None, str(tmp_path / "missing")).name == "UTC"
    assert resolve_local_zone(str(zone_file)).name == str(zone_file), "an absolute TZ path names the zone"
    assert resolve_local_zone(f":{zone_file}").name == str(zone_file)


# -- firing (freezegun acceptance) ----------------------------------------------------------------


@pytest.fixture
def frozen() -> Iterator[Any]:
    with freeze_time("2024-01-01 12:00:00") as frozen_time:
        yield frozen_time


@pytest.fixture
def live() -> tuple[HostEnvironment, Recorder, SchedulerService]:
    recorder = Recorder()
    env = make_env(SYSTEM_CLOCK, recorder)
    return env, recorder, service(env)


def test_a_one_time_job_fires_once_after_its_delay(frozen: Any, live: Any) -> None:
    _, recorder, svc = live
    one_time(svc, 60, "once", b"p")
    frozen.tick(59)
    assert svc.engine.run_due() == []
    frozen.tick(2)
    firings = svc.engine.run_due()
    assert [(f.schedule_id, f.is_recurring, f.payload, f.outcome) for f in firings] == [
        ("once", False, b"p", "ok")
    ]
    assert firings[0].due == START + 60
    frozen.tick(600)
    assert svc.engine.run_due() == []
    assert recorder.calls == [
        (PLUGIN, CALLBACK_EXPORT, api_pb2.SchedulerCallbackRequest(schedule_id="once", payload=b"p"))
    ]


def test_a_five_minute_cron_fires_12_times_in_an_hour(frozen: Any, live: Any) -> None:
    _, recorder, svc = live
    recurring(svc, "*/5 * * * *", "five", b"tick")
    frozen.tick(3600)
    firings = svc.engine.run_due()
    assert [f.due - START for f in firings] == [300.0 * i for i in range(1, 13)]
    assert all(f.is_recurring and f.payload == b"tick" for f in firings)
    assert len(recorder.calls) == 12
    assert all(request.is_recurring for _, _, request in recorder.calls)


def test_every_5s_fires_12_times_in_a_minute(frozen: Any, live: Any) -> None:
    _, _, svc = live
    recurring(svc, "@every 5s", "every")
    frozen.tick(60)
    assert [f.due - START for f in svc.engine.run_due()] == [5.0 * i for i in range(1, 13)]
    assert svc.engine.next_due() == START + 65


def test_cancel_stops_a_recurring_job(frozen: Any, live: Any) -> None:
    _, _, svc = live
    recurring(svc, "@every 5s", "every")
    frozen.tick(10)
    assert len(svc.engine.run_due()) == 2
    assert cancel(svc, "every").success
    frozen.tick(60)
    assert svc.engine.run_due() == []
    assert svc.engine.next_due() is None


def test_firings_come_in_due_order_across_jobs_and_plugins(frozen: Any, live: Any) -> None:
    env, recorder, svc = live
    other = service(env, "other")
    recurring(svc, "@every 20s", "a")
    one_time(other, 30, "b")
    recurring(other, "* * * * *", "c")
    one_time(svc, 0, "d")
    frozen.tick(60)
    order = [(f.plugin_id, f.schedule_id, f.due - START) for f in svc.engine.run_due()]
    assert order == [
        (PLUGIN, "d", 0),
        (PLUGIN, "a", 20),
        ("other", "b", 30),
        (PLUGIN, "a", 40),
        (PLUGIN, "a", 60),
        ("other", "c", 60),
    ]
    assert [call[0] for call in recorder.calls] == [p for p, _, _ in order]


def test_a_negative_delay_fires_at_the_next_run(svc: SchedulerService) -> None:
    one_time(svc, -5, "now")
    assert [f.due for f in svc.engine.run_due(START)] == [START]


# -- delivery -----------------------------------------------------------------------------------


def test_a_firing_is_recorded_in_the_transcript(env: HostEnvironment, svc: SchedulerService) -> None:
    one_time(svc, 0, "rec", b"data")
    svc.engine.run_due(START)
    (call,) = env.transcript.calls("scheduler", "on_scheduler_callback")
    assert (call.plugin_id, call.verdict, call.detail) == (PLUGIN, "ok", "")
    assert call.request == api_pb2.SchedulerCallbackRequest(schedule_id="rec", payload=b"data")
    assert call.response == api_pb2.SchedulerCallbackResponse()


@pytest.mark.parametrize(
    ("recorder", "error"),
    [
        (
            Recorder(error=PluginLoadError("no plugin 'x' is loaded.", plugin_id="x")),
            "no plugin 'x' is loaded",
        ),
        (Recorder(reply=Reply(None, "guest failed")), "guest failed"),
        (Recorder(reply=Reply(api_pb2.SchedulerCallbackResponse(error="busy"), None)), "busy"),
        (None, "plugin not found for callback: test_plugin"),
    ],
)
def test_delivery_errors_are_logged_and_dropped(
    recorder: Recorder | None, error: str, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env(recorder=recorder)
    svc = service(env)
    one_time(svc, 0, "x")
    recurring(svc, "@every 1s", "y")
    firings = svc.engine.run_due(START + 2)
    assert [f.outcome for f in firings] == ["error"] * 3
    assert all(error in f.error for f in firings)
    assert [c.verdict for c in env.transcript.calls("scheduler", "on_scheduler_callback")] == ["error"] * 3
    assert error in caplog.text
    assert svc.engine.job(PLUGIN, "y") is not None, "a failing recurring job keeps ticking"


def test_a_callback_that_raises_is_kept_for_the_test_and_an_error_answer_is_not() -> None:
    trap = PluginTrap(
        "the guest trapped: unreachable", plugin_id=PLUGIN, export=CALLBACK_EXPORT, fix="fix it."
    )
    env = make_env(recorder=Recorder(error=trap))
    svc = service(env)
    one_time(svc, 0, "x")
    recurring(svc, "@every 1s", "y")
    svc.engine.run_due(START + 3)  # x once, y three times: the same failure of y is counted
    kept, more = env.callback_failures.take()
    assert [(f.subject, n) for f, n in kept] == [("schedule 'x'", 1), ("schedule 'y'", 3)]
    failure = kept[0][0]
    assert (failure.plugin_id, failure.export, failure.service, failure.cause) == (
        PLUGIN,
        CALLBACK_EXPORT,
        "scheduler",
        trap,
    )
    assert str(failure) == (
        f"plugin {PLUGIN!r}, export {CALLBACK_EXPORT!r}: the host's callback for schedule 'x' failed "
        "(PluginTrap): the guest trapped: unreachable. Like the original, the host only logged it and "
        "dropped the event. Fix: fix it."
    )
    assert (more, len(env.callback_failures)) == (0, 0), "taken: no longer pending"

    answered = make_env(recorder=Recorder(reply=Reply(None, "guest failed")))
    one_time(service(answered), 0, "z")
    SchedulerEngine.of(answered).run_due(START)
    assert len(answered.callback_failures) == 0


def test_only_a_bounded_number_of_distinct_callback_failures_is_kept() -> None:
    env = make_env(recorder=Recorder(error=RuntimeError("boom")))
    svc = service(env)
    limit = env.callback_failures.LIMIT
    for n in range(limit + 5):
        one_time(svc, 0, f"job{n}")
    svc.engine.run_due(START)
    kept, more = env.callback_failures.take()
    assert (len(kept), more) == (limit, 5)


def test_a_one_time_job_is_gone_before_its_callback_runs(env: HostEnvironment, svc: SchedulerService) -> None:
    recorder = env.call_plugin
    assert isinstance(recorder, Recorder)
    recorder.on_call = lambda plugin_id, request: svc.engine.job(plugin_id, request.schedule_id)
    one_time(svc, 0, "x")
    svc.engine.run_due(START)
    assert recorder.during == [None]


def test_callbacks_may_schedule_and_cancel_reentrantly(env: HostEnvironment, svc: SchedulerService) -> None:
    recorder = env.call_plugin
    assert isinstance(recorder, Recorder)

    def react(_plugin_id: str, request: api_pb2.SchedulerCallbackRequest) -> None:
        if request.schedule_id == "first":
            cancel(svc, "later")
            one_time(svc, 0, "first")  # re-schedules itself at once: waits for the next run, no loop

    recorder.on_call = react
    one_time(svc, 0, "first")
    one_time(svc, 5, "later")
    assert [f.schedule_id for f in svc.engine.run_due(START + 10)] == ["first"]
    assert [f.schedule_id for f in svc.engine.run_due(START + 10)] == ["first"]
    assert svc.engine.job(PLUGIN, "later") is None


# -- production thread ----------------------------------------------------------------------------


def test_the_production_thread_fires_due_jobs_and_stops_on_close() -> None:
    fired = threading.Event()
    recorder = Recorder()
    recorder.on_call = lambda *_: fired.set()
    clock = ManualClock(START)
    engine = SchedulerEngine.of(make_env(clock, recorder))
    engine.start()
    engine.schedule_one_time(PLUGIN, "soon", 5, b"")
    clock.advance(5)  # the thread sleeps in real time; a new job re-evaluates its wait
    engine.schedule_one_time(PLUGIN, "now", 0, b"")
    assert fired.wait(timeout=5)
    thread = engine._thread
    engine.close()
    assert thread is not None
    assert not thread.is_alive()
    assert engine.jobs() == []
    assert recorder.ids()[0] == "soon", "equal due times fire in registration order"
