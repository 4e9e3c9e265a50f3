"""Attack: one plugin floods the host's own memory (issue 15 §2 and §7).

A guest that loops on host calls (300k cache writes, 300k other host calls, 100k schedules) must leave
the process's RSS growth under 32 MiB with the default caps, and past each cap it must see the documented
refusal: ``success=false`` from ``set_*``, an empty ``schedule_id`` from ``schedule_one_time``. The flood
runs in a subprocess (with a hard timeout) so that the RSS it measures is its own and a host that runs
away fails the test instead of the run. Before the caps: +255 MiB, every write and schedule accepted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from pytest_wasmhost.host.base import DEFAULT_TRANSCRIPT_CALLS
from pytest_wasmhost.host.cache import DEFAULT_PLUGIN_MAX_ENTRIES
from pytest_wasmhost.host.scheduler import DEFAULT_PLUGIN_MAX_JOBS
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module

REPO = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
RSS_BUDGET = 32 * MIB

# Each flooding export takes an 8-byte request (start counter, count; little-endian u32s), makes `count`
# host calls whose key is derived from the counter, and answers 8 raw bytes: refusals, successes (u32s).
CACHE_FLOOD = "metadata_agent_get_artist_mbid"
CALL_FLOOD = "metadata_agent_get_artist_url"
SCHEDULE_FLOOD = "metadata_agent_get_artist_biography"

DATA_AT = 256  # metadata_module places `data` here
RESULT_AT = 512  # refusals, successes
SCRATCH_AT = 8192  # malloc always answers this: every request and response is read before the next call


def _requests() -> tuple[bytes, dict[str, tuple[int, int, int]]]:
    """The three requests laid out from DATA_AT; per name: (offset, length, offset of the 4 counter chars)."""
    # SetStringRequest{key="ke"+4 chars, value="value"}
    set_string = b"\x0a\x06ke" + b"0000" + b"\x12\x05value"
    # HasRequest{key="k"}
    has = b"\x0a\x01k"
    # ScheduleOneTimeRequest{delay_seconds=31536000 (a year: never due here), payload="p", schedule_id="sc"+4}
    schedule = b"\x08\x80\xe7\x84\x0f" + b"\x12\x01p" + b"\x1a\x06sc" + b"0000"
    layout: dict[str, tuple[int, int, int]] = {}
    data = b""
    for name, request, counter_at in (
        ("set_string", set_string, 4),
        ("has", has, -1),
        ("schedule_one_time", schedule, len(schedule) - 4),
    ):
        start = DATA_AT + len(data)
        layout[name] = (start, len(request), start + counter_at if counter_at >= 0 else -1)
        data += request + b"\x00" * (-len(request) % 8)
    return data, layout


def flood_module() -> bytes:
    data, layout = _requests()
    imports = "\n".join(
        f'  (import "env" "{name}" (func ${name} (param i32 i32) (result i64)))' for name in layout
    )
    # Four counter-derived key characters, 6 bits each, all printable ASCII (a proto3 string must be UTF-8).
    stamp = """
  (func $stamp (param $at i32) (param $n i32)
    (i32.store8 (local.get $at) (i32.add (i32.const 48) (i32.and (local.get $n) (i32.const 63))))
    (i32.store8 offset=1 (local.get $at)
      (i32.add (i32.const 48) (i32.and (i32.shr_u (local.get $n) (i32.const 6)) (i32.const 63))))
    (i32.store8 offset=2 (local.get $at)
      (i32.add (i32.const 48) (i32.and (i32.shr_u (local.get $n) (i32.const 12)) (i32.const 63))))
    (i32.store8 offset=3 (local.get $at)
      (i32.add (i32.const 48) (i32.and (i32.shr_u (local.get $n) (i32.const 18)) (i32.const 63)))))"""

    def body(name: str) -> str:
        at, size, counter = layout[name]
        stamp_call = f"(call $stamp (i32.const {counter}) (local.get $i))" if counter >= 0 else ""
        return f"""
  (func ${name}_flood (param $req i32) (param $len i32) (result i64)
    (local $i i32) (local $end i32)
    (local.set $i (i32.load (local.get $req)))
    (local.set $end (i32.add (local.get $i) (i32.load offset=4 (local.get $req))))
    (i32.store (i32.const {RESULT_AT}) (i32.const 0))
    (i32.store (i32.const {RESULT_AT + 4}) (i32.const 0))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      {stamp_call}
      (if (i64.eqz (call ${name} (i32.const {at}) (i32.const {size})))
        (then (i32.store (i32.const {RESULT_AT}) (i32.add (i32.load (i32.const {RESULT_AT})) (i32.const 1))))
        (else (i32.store (i32.const {RESULT_AT + 4})
          (i32.add (i32.load (i32.const {RESULT_AT + 4})) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i64.const {(RESULT_AT << 32) | 8}))"""

    extra = stamp + "".join(body(name) for name in layout)
    call = "(call ${}_flood (local.get 0) (local.get 1))"
    return metadata_module(
        imports=imports,
        data=data,
        extra=extra,
        malloc_body=f"(i32.const {SCRATCH_AT})",
        results={
            CACHE_FLOOD: call.format("set_string"),
            CALL_FLOOD: call.format("has"),
            SCHEDULE_FLOOD: call.format("schedule_one_time"),
        },
    )


# Runs in the child: load the plugin into a production runtime's default scope, flood, report as JSON.
CHILD = r"""
import gc, json, struct, sys, warnings
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings
from pytest_wasmhost.host.cache import scope_store
from pytest_wasmhost.host.scheduler import SchedulerEngine

folder, plan = sys.argv[1], json.loads(sys.argv[2])

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise LookupError(field)

def flood(plugin, export, start, count, chunk=20_000):
    refused = accepted = 0
    for at in range(start, start + count, chunk):
        n = min(chunk, start + count - at)
        data, error = plugin.call_raw(export, struct.pack("<II", at, n), timeout=120)
        assert error is None, error
        r, a = struct.unpack("<II", data)
        refused, accepted = refused + r, accepted + a
    return refused, accepted

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with Runtime(RuntimeSettings(disk_cache=False)) as runtime:
        plugin = runtime.plugin(folder)
        flood(plugin, plan["calls"], 0, 2_000)  # warm: instance, buffers, the call path
        gc.collect()
        before = status("VmRSS")
        out = {
            "cache": flood(plugin, plan["cache"], 0, plan["n_cache"]),
            "calls": flood(plugin, plan["calls"], 0, plan["n_calls"]),
            "schedules": flood(plugin, plan["schedules"], 0, plan["n_schedules"]),
        }
        gc.collect()
        out["rss_growth"] = status("VmRSS") - before
        out["peak_growth"] = status("VmHWM") - before
        transcript = runtime.default_scope.transcript
        out["transcript_kept"] = len(transcript)
        out["transcript_dropped"] = getattr(transcript, "dropped", 0)
        env = runtime.default_scope.env
        out["cache_entries"] = len(scope_store(env).items(plugin.plugin_id))
        out["jobs"] = len(SchedulerEngine.of(env).jobs(plugin.plugin_id))
out["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught]
print(json.dumps(out))
"""

PLAN = {
    "cache": CACHE_FLOOD,
    "calls": CALL_FLOOD,
    "schedules": SCHEDULE_FLOOD,
    "n_cache": 300_000,
    "n_calls": 300_000,
    "n_schedules": 100_000,
}


def run_flood(folder: Path, plan: dict[str, Any]) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder), json.dumps(plan)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = f"{child.stdout[-3000:]}\n{child.stderr[-3000:]}"
    assert child.returncode == 0, f"the flooding child failed:\n{output}"
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def flooded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    permissions = {"cache": {"reason": "flood it"}, "scheduler": {"reason": "flood it"}}
    folder = write_plugin(tmp_path_factory.mktemp("flood"), flood_module(), permissions=permissions)
    return run_flood(folder, PLAN)


def test_the_flooding_guest_is_valid_wasm() -> None:
    wasmtime.Module(wasmtime.Engine(), flood_module())


def test_rss_growth_stays_under_32_mib(flooded: dict[str, Any]) -> None:
    assert flooded["rss_growth"] < RSS_BUDGET, flooded
    assert flooded["peak_growth"] < RSS_BUDGET, flooded


def test_cache_writes_past_the_cap_are_refused_to_the_plugin(flooded: dict[str, Any]) -> None:
    refused, accepted = flooded["cache"]
    assert accepted == DEFAULT_PLUGIN_MAX_ENTRIES, flooded
    assert refused == PLAN["n_cache"] - DEFAULT_PLUGIN_MAX_ENTRIES
    assert flooded["cache_entries"] == DEFAULT_PLUGIN_MAX_ENTRIES


def test_schedules_past_the_cap_are_refused_to_the_plugin(flooded: dict[str, Any]) -> None:
    refused, accepted = flooded["schedules"]
    assert accepted == DEFAULT_PLUGIN_MAX_JOBS, flooded
    assert refused == PLAN["n_schedules"] - DEFAULT_PLUGIN_MAX_JOBS
    assert flooded["jobs"] == DEFAULT_PLUGIN_MAX_JOBS


def test_the_transcript_keeps_the_newest_calls_and_counts_the_rest(flooded: dict[str, Any]) -> None:
    total = 2_000 + PLAN["n_cache"] + PLAN["n_calls"] + PLAN["n_schedules"]
    assert flooded["transcript_kept"] == DEFAULT_TRANSCRIPT_CALLS
    assert flooded["transcript_dropped"] == total - DEFAULT_TRANSCRIPT_CALLS
    refused, accepted = flooded["calls"]
    assert refused + accepted == PLAN["n_calls"]


def test_the_test_is_warned_once_per_cap_naming_the_plugin(flooded: dict[str, Any]) -> None:
    caps = [w for w in flooded["warnings"] if w.startswith("HostLimitWarning")]
    assert len(caps) == 2, flooded["warnings"]
    cache, scheduler = sorted(caps)
    assert (
        f"plugin 'test_plugin' reached the host's cache cap plugin_max_entries={DEFAULT_PLUGIN_MAX_ENTRIES}"
        in cache
    )
    assert (
        f"plugin 'test_plugin' reached the host's scheduler cap plugin_max_jobs={DEFAULT_PLUGIN_MAX_JOBS}"
        in scheduler
    )
