"""The host-call transcript: numbering, filtering, lazy decoding, and its bounded memory."""

from __future__ import annotations

import threading

import pytest

from pytest_wasmhost.abi.proto import cache_pb2, config_pb2
from pytest_wasmhost.clock import ManualClock
from pytest_wasmhost.fixtures import WasmCalls
from pytest_wasmhost.host.base import (
    DEFAULT_TRANSCRIPT_CALLS,
    DEFAULT_TRANSCRIPT_PAYLOADS,
    HostEnvironment,
    HostFunction,
    Transcript,
    TranscriptOptions,
)
from pytest_wasmhost.host.options import HostOptions

CONFIG_FN = HostFunction(
    service="config",
    name="get_plugin_config",
    request_type=config_pb2.GetPluginConfigRequest,
    response_type=config_pb2.GetPluginConfigResponse,
    handler=lambda _request: config_pb2.GetPluginConfigResponse(),
)
HAS_FN = HostFunction(
    service="cache",
    name="has",
    request_type=cache_pb2.HasRequest,
    response_type=cache_pb2.HasResponse,
    handler=lambda _request: cache_pb2.HasResponse(),
)


def add_config(transcript: Transcript, value: str, *, plugin_id: str = "p") -> None:
    response = config_pb2.GetPluginConfigResponse(config={"k": value}).SerializeToString()
    transcript.add(plugin_id, CONFIG_FN, b"", response, "ok", "", None, 0.001)


def test_host_calls_are_kept_as_bytes_and_decoded_on_read() -> None:
    transcript = Transcript()
    add_config(transcript, "v1")
    transcript.add("p", HAS_FN, b"\xff\xff", None, "hard-error", "request does not decode", None, 0.0)

    first, second = transcript.calls()
    assert (first.seq, first.service, first.function, first.verdict) == (
        1,
        "config",
        "get_plugin_config",
        "ok",
    )
    assert first.response == config_pb2.GetPluginConfigResponse(config={"k": "v1"})
    assert first.request == config_pb2.GetPluginConfigRequest()
    assert (second.seq, second.verdict, second.detail) == (2, "hard-error", "request does not decode")
    assert second.request is None  # the bytes did not decode
    assert second.response is None
    assert not first.dropped


def test_callbacks_keep_their_messages_and_share_the_numbering() -> None:
    transcript = Transcript()
    add_config(transcript, "v1")
    request = config_pb2.GetPluginConfigRequest()
    call = transcript.record(
        plugin_id="p",
        service="scheduler",
        function="on_scheduler_callback",
        request=request,
        response=None,
        verdict="ok",
    )
    assert call.seq == 2
    assert call.request is request
    assert [c.seq for c in transcript] == [1, 2]


def test_filters_keep_the_original_numbers() -> None:
    transcript = Transcript()
    add_config(transcript, "a", plugin_id="one")
    transcript.add("two", HAS_FN, b"", b"", "ok", "", None, 0.0)
    add_config(transcript, "c", plugin_id="one")
    assert [c.seq for c in transcript.calls("config")] == [1, 3]
    assert [c.seq for c in transcript.calls(plugin_id="two")] == [2]
    assert [c.seq for c in transcript.calls("config", "get_plugin_config", plugin_id="two")] == []


def test_only_the_newest_payloads_are_kept() -> None:
    transcript = Transcript(payload_limit=3)
    for i in range(5):
        add_config(transcript, f"v{i}")

    calls = transcript.calls()
    assert [c.seq for c in calls] == [1, 2, 3, 4, 5]
    assert all(c.verdict == "ok" and c.function == "get_plugin_config" for c in calls)
    assert [c.dropped for c in calls] == [True, True, False, False, False]
    kept = [c.response for c in calls]
    assert kept[:2] == [None, None]
    assert kept[2:] == [config_pb2.GetPluginConfigResponse(config={"k": f"v{i}"}) for i in (2, 3, 4)]


def test_clear_forgets_calls_and_payloads() -> None:
    transcript = Transcript(payload_limit=2)
    for i in range(4):
        add_config(transcript, f"v{i}")
    transcript.clear()
    assert len(transcript) == 0
    add_config(transcript, "after")
    (call,) = transcript.calls()
    assert (call.seq, call.dropped) == (1, False)
    assert call.response == config_pb2.GetPluginConfigResponse(config={"k": "after"})


def test_concurrent_adds_are_numbered_once_each() -> None:
    transcript = Transcript(payload_limit=50)

    def worker(name: str) -> None:
        for i in range(200):
            add_config(transcript, str(i), plugin_id=name)

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = transcript.calls()
    assert [c.seq for c in calls] == list(range(1, 801))
    assert sum(not c.dropped for c in calls) == 50
    assert all(not c.dropped for c in calls[-50:])
    for name in ("t0", "t1", "t2", "t3"):
        assert len(transcript.calls(plugin_id=name)) == 200


# -- the bounded ring of outlines (issue 15: +43 MiB for 300k calls, forever in the production scope) -------


def test_only_the_newest_outlines_are_kept_and_the_dropped_are_counted() -> None:
    transcript = Transcript(payload_limit=2, call_limit=4)
    for i in range(7):
        add_config(transcript, f"v{i}", plugin_id="one" if i < 2 else "two")
    calls = transcript.calls()
    assert [c.seq for c in calls] == [4, 5, 6, 7]  # numbers survive the drop
    assert [c.dropped for c in calls] == [True, True, False, False]
    assert calls[-1].response == config_pb2.GetPluginConfigResponse(config={"k": "v6"})
    assert (len(transcript), transcript.dropped, transcript.total) == (4, 3, 7)
    assert [c.seq for c in transcript.calls(plugin_id="two")] == [4, 5, 6, 7]
    assert transcript.calls(plugin_id="one") == []  # its outlines went ...
    assert ("one", "config", "get_plugin_config") in transcript.functions_called()  # ... not what it used
    call = transcript.record(
        plugin_id="two",
        service="scheduler",
        function="on_scheduler_callback",
        request=None,
        response=None,
        verdict="ok",
    )
    assert call.seq == 8
    assert [c.seq for c in transcript] == [5, 6, 7, 8]


def test_the_ring_never_grows_past_its_limit() -> None:
    transcript = Transcript(call_limit=100)
    for i in range(1_000):
        transcript.add("p", HAS_FN if i % 2 else CONFIG_FN, b"", b"", "ok", "", None, 0.0)
    assert len(transcript) == 100
    assert transcript.dropped == 900
    assert transcript.functions_called() == {("p", "cache", "has"), ("p", "config", "get_plugin_config")}
    assert sum(not c.dropped for c in transcript.calls()) == 100  # payload_limit 4096 > 100: all kept


def test_clear_forgets_the_dropped_count_too() -> None:
    transcript = Transcript(call_limit=2)
    for i in range(5):
        add_config(transcript, str(i))
    transcript.clear()
    assert (transcript.dropped, transcript.total, transcript.functions_called()) == (0, 0, set())
    add_config(transcript, "after")
    assert [c.seq for c in transcript] == [1]


def test_limits_are_settings_of_the_scope() -> None:
    assert (DEFAULT_TRANSCRIPT_CALLS, DEFAULT_TRANSCRIPT_PAYLOADS) == (20_000, 4096)
    options = HostOptions(transcript=TranscriptOptions(max_calls=3, max_payloads=1))
    env = HostEnvironment(clock=ManualClock(), options=options)
    for i in range(5):
        add_config(env.transcript, str(i))
    assert [(c.seq, c.dropped) for c in env.transcript] == [(3, True), (4, True), (5, False)]
    default = HostEnvironment(clock=ManualClock()).transcript
    for _ in range(DEFAULT_TRANSCRIPT_CALLS + 5):
        default.add("p", HAS_FN, b"", b"", "ok", "", None, 0.0)
    assert (len(default), default.dropped) == (DEFAULT_TRANSCRIPT_CALLS, 5)
    for bad in (0, -1, "10", 1.5, True):
        with pytest.raises(ValueError, match=r"TranscriptOptions.max_calls must be a positive whole number"):
            TranscriptOptions(max_calls=bad)  # type: ignore[arg-type]


def test_the_report_says_how_many_older_calls_were_dropped() -> None:
    transcript = Transcript(call_limit=3)
    for i in range(10):
        add_config(transcript, str(i))
    text = WasmCalls(transcript).render(limit=2)
    assert text.splitlines()[0] == "host calls (3, 7 older dropped, last 2):"
    assert text.splitlines()[1].startswith("  #9 p config.get_plugin_config -> ok")
