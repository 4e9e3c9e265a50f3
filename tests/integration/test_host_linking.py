"""Guest->host calls, permission-gated linking and the guest's WASI world (abi.md §5, §7, §8)."""

from __future__ import annotations

import json
import re
import struct

import pytest
import wasmtime

from pytest_wasmhost.abi.memory import unpack
from pytest_wasmhost.abi.proto import config_pb2
from pytest_wasmhost.errors import PluginLoadError, PluginTrap
from pytest_wasmhost.host.base import Transcript
from pytest_wasmhost.host.config import ConfigService
from pytest_wasmhost.host.registry import IMPLEMENTED, bind
from pytest_wasmhost.manifest import parse_manifest, runtime_permission_problems
from pytest_wasmhost.runtime.engine import shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, PluginInstance, compile_module
from pytest_wasmhost.runtime.wasi import FAKE_EPOCH_NS, WasiOptions
from tests.support.plugins import manifest

BUMP = """
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "malloc") (param i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get 0))) (local.get $p))
  (func (export "free") (param i32))
"""


class Linked:
    """A linked module plus the config-service functions its instances are bound to."""

    def __init__(self, linked: LinkedPlugin, config: dict[str, str]) -> None:
        self.linked = linked
        self.binding = bind("host-test", [ConfigService(lambda: dict(config))], Transcript())

    def instantiate(self) -> PluginInstance:
        return self.linked.instantiate(self.binding)


def link(
    wat: str,
    *,
    granted: tuple[str, ...] = (),
    config: dict[str, str] | None = None,
    wasi: WasiOptions = WasiOptions(),
) -> Linked:
    engine = shared_engine()
    module = compile_module(engine, wasmtime.wat2wasm(wat), plugin_id="host-test")
    linked = LinkedPlugin(
        plugin_id="host-test",
        engine=engine,
        module=module,
        granted=granted,
        implemented=IMPLEMENTED,
        wasi=wasi,
    )
    return Linked(linked, config or {})


def run(inst: PluginInstance, export: str, *args: int) -> int | None:
    with inst.activate(export):
        return inst.call_export(export, args)


CONFIG_WAT = f"""
(module
  (import "env" "get_plugin_config" (func $cfg (param i32 i32) (result i64)))
  {BUMP}
  (func (export "cfg") (param i32 i32) (result i64) (call $cfg (local.get 0) (local.get 1)))
)"""


def test_granted_host_function_writes_its_response_through_guest_malloc() -> None:
    inst = link(CONFIG_WAT, granted=("config",), config={"greeting": "hi"}).instantiate()
    result = run(inst, "cfg", 0, 0)
    assert isinstance(result, int)
    got = unpack(result)
    assert got.ptr == 1024  # the first bump allocation: the host called malloc re-entrantly
    response = config_pb2.GetPluginConfigResponse.FromString(inst.read_memory(got.ptr, got.size))
    assert dict(response.config) == {"greeting": "hi"}


def test_empty_response_returns_zero_without_allocating() -> None:
    inst = link(CONFIG_WAT, granted=("config",), config={}).instantiate()
    assert run(inst, "cfg", 0, 0) == 0


def test_ungranted_service_import_links_lazily_and_every_instantiation_names_it() -> None:
    # The original compiled and listed such a plugin; instantiating it for a call failed (abi.md §8).
    linked = link(CONFIG_WAT, granted=())
    assert linked.linked.link_error is not None
    with pytest.raises(PluginLoadError) as info:
        linked.instantiate()
    err = info.value
    assert err.import_name == "env.get_plugin_config"
    assert err.permission == "config"
    assert "plugin 'host-test'" in str(err)
    assert '"config": {"reason": "..."}' in str(err)


def test_http_import_without_http_permission_names_http() -> None:
    wat = f'(module (import "env" "get" (func (param i32 i32) (result i64))) {BUMP})'
    with pytest.raises(PluginLoadError, match=r"env\.get from the 'http' host service") as info:
        link(wat, granted=("config",)).instantiate()
    assert info.value.permission == "http"


def test_the_fix_for_an_ungranted_http_import_gives_a_valid_manifest() -> None:
    # Following the old hint ("http": {"reason": "..."}) gave a manifest the validator refuses.
    wat = f"""(module (import "env" "post" (func (param i32 i32) (result i64)))
      (import "env" "get" (func (param i32 i32) (result i64))) {BUMP})"""
    with pytest.raises(PluginLoadError) as info:
        link(wat, granted=()).instantiate()
    assert info.value.fix is not None
    snippet = re.fullmatch(r'add (.*) under "permissions" in manifest\.json, .*', info.value.fix)
    assert snippet is not None, info.value.fix
    followed = parse_manifest(manifest(permissions=json.loads("{" + snippet.group(1) + "}")))
    assert runtime_permission_problems(followed, "host-test") == []
    assert followed.permissions.http is not None
    assert followed.permissions.http.allowed_urls == (("https://api.example.com/*", ("GET", "POST")),)


def test_import_of_no_known_host_function_is_refused() -> None:
    wat = f'(module (import "env" "launch_missiles" (func (param i32 i32) (result i64))) {BUMP})'
    with pytest.raises(PluginLoadError, match="which no host service provides"):
        link(wat).instantiate()


def test_import_from_an_unknown_module_is_refused() -> None:
    wat = f'(module (import "custom" "thing" (func)) {BUMP})'
    with pytest.raises(PluginLoadError, match=r"imports custom\.thing"):
        link(wat).instantiate()


def test_host_function_with_wrong_signature_is_refused() -> None:
    wat = f'(module (import "env" "get_plugin_config" (func (param i32) (result i32))) {BUMP})'
    with pytest.raises(PluginLoadError, match=r"\(i32, i32\) -> i64"):
        link(wat, granted=("config",)).instantiate()


def test_request_outside_guest_memory_is_a_hard_error_trap() -> None:
    inst = link(CONFIG_WAT, granted=("config",)).instantiate()
    with pytest.raises(PluginTrap) as info:
        run(inst, "cfg", 65530, 100)
    message = str(info.value)
    assert "env.get_plugin_config (config) failed" in message
    assert "outside the guest's memory" in message
    assert inst.dead


CLOCK_WAT = f"""
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clk (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $rnd (param i32 i32) (result i32)))
  {BUMP}
  (func (export "clock") (param i32) (result i32) (call $clk (local.get 0) (i64.const 1) (i32.const 16)))
  (func (export "random") (result i32) (call $rnd (i32.const 32) (i32.const 8)))
)"""


def read_u64(inst: PluginInstance, ptr: int) -> int:
    return int(struct.unpack("<Q", inst.read_memory(ptr, 8))[0])


def test_fake_wall_clock_starts_at_2022_and_ticks_1ms_per_reading() -> None:
    inst = link(CLOCK_WAT).instantiate()
    readings = []
    for _ in range(3):
        assert run(inst, "clock", 0) == 0
        readings.append(read_u64(inst, 16))
    assert readings == [FAKE_EPOCH_NS, FAKE_EPOCH_NS + 1_000_000, FAKE_EPOCH_NS + 2_000_000]


def test_fake_monotonic_clock_starts_at_zero_per_instance() -> None:
    linked = link(CLOCK_WAT)
    first, second = linked.instantiate(), linked.instantiate()
    run(first, "clock", 1)
    run(first, "clock", 1)
    assert read_u64(first, 16) == 1_000_000
    run(second, "clock", 1)
    assert read_u64(second, 16) == 0


def test_unsupported_clock_is_einval() -> None:
    inst = link(CLOCK_WAT).instantiate()
    assert run(inst, "clock", 2) == 28


def test_real_clocks_option_gives_real_time() -> None:
    inst = link(CLOCK_WAT, wasi=WasiOptions(real_clocks=True)).instantiate()
    run(inst, "clock", 0)
    assert read_u64(inst, 16) > FAKE_EPOCH_NS + 10**18 // 100  # well after 2022


def test_random_is_deterministic_per_instance() -> None:
    linked = link(CLOCK_WAT)
    a, b = linked.instantiate(), linked.instantiate()
    run(a, "random")
    run(b, "random")
    assert a.read_memory(32, 8) == b.read_memory(32, 8)
    assert a.read_memory(32, 8) != bytes(8)


STDERR_WAT = f"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  {BUMP}
  (data (i32.const 64) "boom\\n")
  (func (export "shout") (param i32) (result i32)
    (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 5))
    (call $w (local.get 0) (i32.const 0) (i32.const 1) (i32.const 8)))
)"""


def test_stderr_and_stdout_are_captured_per_instance() -> None:
    linked = link(STDERR_WAT)
    a, b = linked.instantiate(), linked.instantiate()
    run(a, "shout", 2)
    run(a, "shout", 1)
    assert a.world.stderr.text() == "boom\n"
    assert a.world.stdout.text() == "boom\n"
    assert b.world.stderr.text() == ""


def test_every_host_call_is_in_the_transcript() -> None:
    linked = link(CONFIG_WAT, granted=("config",), config={"k": "v"})
    inst = linked.instantiate()
    run(inst, "cfg", 0, 0)
    with pytest.raises(PluginTrap):
        run(inst, "cfg", 65530, 100)
    ok, failed = linked.binding.transcript.calls("config", "get_plugin_config")  # type: ignore[union-attr]
    assert (ok.seq, ok.plugin_id, ok.verdict) == (1, "host-test", "ok")
    assert dict(ok.response.config) == {"k": "v"}  # type: ignore[union-attr]
    assert ok.duration >= 0
    assert (failed.verdict, failed.request) == ("hard-error", None)
    assert "outside the guest's memory" in failed.detail
    assert "config.get_plugin_config -> hard-error" in str(failed)
