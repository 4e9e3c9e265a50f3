"""The call-path interface and the C-API fast path: choosing a path, and what keeps the fast path safe."""

from __future__ import annotations

import ctypes
import gc
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
import wasmtime

from pytest_wasmhost.abi.memory import unpack
from pytest_wasmhost.abi.proto import config_pb2
from pytest_wasmhost.errors import AbiError, PluginTrap
from pytest_wasmhost.host.base import HostBinding, HostFunction, Transcript
from pytest_wasmhost.host.config import ConfigService
from pytest_wasmhost.host.registry import IMPLEMENTED, bind
from pytest_wasmhost.runtime import callpath, callpath_select, capi
from pytest_wasmhost.runtime.callpath import (
    CallPath,
    ExportSignature,
    GuestExports,
    HostImport,
    PublicCallPath,
)
from pytest_wasmhost.runtime.callpath_select import FASTPATH_ENV, select_call_path, wasmtime_is_tested
from pytest_wasmhost.runtime.engine import EngineSettings, memory_is_fixed, shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, PluginInstance, compile_module
from pytest_wasmhost.runtime.runtime import RuntimeSettings

PATHS = ["fast", "public"]

# -- choosing a path --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "tested"),
    [
        ("50.0.1", True),
        ("50.3.0", True),
        ("50.0.0", False),
        ("51.0.0", True),
        ("51.2.1", True),
        ("52.0.0", False),
        ("49.9", False),
        ("52.0.0rc1", False),
    ],
)
def test_tested_wasmtime_versions(version: str, tested: bool) -> None:
    assert wasmtime_is_tested(version) is tested


@pytest.mark.parametrize(
    ("value", "name"), [("1", "fast"), ("0", "public"), ("true", "fast"), ("off", "public")]
)
def test_environment_variable_forces_a_path(value: str, name: str) -> None:
    assert select_call_path(environ={FASTPATH_ENV: value}).name == name


def test_explicit_choice_beats_the_environment() -> None:
    assert select_call_path(True, environ={FASTPATH_ENV: "0"}).name == "fast"
    assert select_call_path(False, environ={FASTPATH_ENV: "1"}).name == "public"


def test_a_bad_environment_value_is_refused() -> None:
    with pytest.raises(ValueError, match="WASMHOST_FASTPATH must be 0 or 1"):
        select_call_path(environ={FASTPATH_ENV: "fastest"})


def test_automatic_choice_is_the_fast_path_on_the_tested_wasmtime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(callpath_select, "_auto_choice", None)
    assert select_call_path(environ={}).name == "fast"


def test_untested_wasmtime_falls_back_to_the_public_path_with_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(callpath_select, "_auto_choice", None)
    monkeypatch.setattr(callpath_select, "wasmtime_version", lambda: "52.0.0")
    with pytest.warns(RuntimeWarning, match=r"wasmtime 52\.0\.0 is outside the tested range") as record:
        first = select_call_path(environ={})
    assert first.name == "public"
    assert select_call_path(environ={}) is first  # decided once per process, warned once
    assert len(record) == 1
    assert "\n" not in str(record[0].message)


def test_runtime_settings_carry_the_switch() -> None:
    assert RuntimeSettings().fastpath is None
    assert RuntimeSettings(fastpath=False).fastpath is False


# -- the interface, on both paths -------------------------------------------------------------------

HOST_WAT = """
(module
  (import "test" "host" (func $host (param i32 i64) (result i64)))
  (memory (export "memory") 1)
  (func (export "call_host") (param i32 i64) (result i64) (call $host (local.get 0) (local.get 1)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
)"""


def make_path(name: str) -> CallPath:
    return select_call_path(name == "fast")


def instantiate(
    path: CallPath, callback: callpath.HostCallable, *, engine: wasmtime.Engine | None = None
) -> GuestExports:
    engine = engine or shared_engine()
    module = wasmtime.Module(engine, wasmtime.wat2wasm(HOST_WAT))
    linker = wasmtime.Linker(engine)
    path.define(linker, HostImport("test", "host", ("i32", "i64"), ("i64",), callback))
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1 << 30)
    signatures = [
        ExportSignature(e.name, tuple(map(str, e.type.params)), tuple(map(str, e.type.results)))
        for e in module.exports
        if isinstance(e.type, wasmtime.FuncType)
    ]
    return path.instantiate(
        linker.instantiate_pre(module),
        store,
        signatures,
        plugin_id="unit",
        memory_fixed=memory_is_fixed(engine),
    )


@pytest.mark.parametrize("name", PATHS)
def test_host_callable_gets_signed_arguments_and_its_result_reaches_the_guest(name: str) -> None:
    seen: list[tuple[int, int]] = []

    def host(a: int, b: int) -> int:
        seen.append((a, b))
        return a * 2 + b

    guest = instantiate(make_path(name), host)
    # -1 * 2 + -(2**63) wraps around to 2**63 - 2, as an i64 result does in wasm.
    assert guest.call("call_host", (0xFFFF_FFFF, -(2**63))) == 2**63 - 2
    assert seen == [(-1, -(2**63))]
    guest.close()


class Boom(BaseException):
    """Not even an Exception: it must still come out on the calling side, not unwind through C."""


@pytest.mark.parametrize("name", PATHS)
def test_an_exception_in_a_host_callable_comes_out_of_the_call_as_itself(name: str) -> None:
    boom = Boom("from the host")

    def host(a: int, b: int) -> int:
        raise boom

    guest = instantiate(make_path(name), host)
    with pytest.raises(Boom) as info:
        guest.call("call_host", (1, 2))
    assert info.value is boom
    guest.close()


@pytest.mark.parametrize("name", PATHS)
def test_a_host_exception_does_not_leak_into_the_next_call(name: str) -> None:
    calls = iter([ValueError("first"), 7])

    def host(a: int, b: int) -> int:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    guest = instantiate(make_path(name), host)
    with pytest.raises(ValueError, match="first"):
        guest.call("call_host", (0, 0))
    assert guest.call("call_host", (0, 0)) == 7
    guest.close()


@pytest.mark.parametrize("name", PATHS)
def test_a_non_integer_host_result_is_a_type_error(name: str) -> None:
    guest = instantiate(make_path(name), lambda a, b: "nope")
    with pytest.raises(TypeError, match="don't know how to convert 'nope' to i64"):
        guest.call("call_host", (0, 0))
    guest.close()


@pytest.mark.parametrize("name", PATHS)
def test_reads_and_writes_never_leave_the_memory(name: str) -> None:
    guest = instantiate(make_path(name), lambda a, b: 0)
    size = guest.memory_size()
    assert size == 65536
    guest.write(size - 3, b"abc")
    assert guest.read(size - 3, 3) == b"abc"
    assert guest.read(size, 0) == b""
    for ptr, length in [(size - 2, 3), (-1, 1), (0, size + 1), (2**40, 1), (5, -1)]:
        with pytest.raises(AbiError, match="outside the guest's memory of 65536 bytes"):
            guest.read(ptr, length)
    for ptr, data in [(size - 2, b"abc"), (-1, b"x"), (2**40, b"x")]:
        with pytest.raises(AbiError, match="outside the guest's memory"):
            guest.write(ptr, data)
    guest.close()


@pytest.mark.parametrize("name", PATHS)
def test_memory_views_follow_growth(name: str) -> None:
    guest = instantiate(make_path(name), lambda a, b: 0)
    assert guest.memory_size() == 65536
    assert guest.call("grow", (3,)) == 1
    assert guest.memory_size() == 4 * 65536  # re-read after the call
    guest.write(4 * 65536 - 1, b"z")
    assert guest.read(4 * 65536 - 1, 1) == b"z"
    guest.call("poke", (65536 * 3, 0x41))
    assert guest.read(65536 * 3, 1) == b"A"  # the guest's write is seen: no stale copy
    guest.close()


@pytest.mark.parametrize("may_move", [False, True], ids=["fixed-memory", "movable-memory"])
@pytest.mark.parametrize("name", PATHS)
def test_ranges_past_the_known_size_are_looked_up_again(name: str, may_move: bool) -> None:
    # A fixed memory keeps the size the fast path knows as a lower bound between guest calls: a range
    # past it must make the path look again, not fail, and a range past the real end must still fail.
    engine = shared_engine(EngineSettings(memory_may_move=may_move))
    assert memory_is_fixed(engine) is not may_move
    guest = instantiate(make_path(name), lambda a, b: 0, engine=engine)
    guest.write(10, b"x")  # the path now knows a 64 KiB memory
    assert guest.call("grow", (2,)) == 1
    guest.write(3 * 65536 - 2, b"hi")  # no memory_size() in between
    assert guest.read(3 * 65536 - 2, 2) == b"hi"
    with pytest.raises(AbiError, match="outside the guest's memory of 196608 bytes"):
        guest.read(3 * 65536 - 1, 2)
    with pytest.raises(AbiError, match="outside the guest's memory of 196608 bytes"):
        guest.write(3 * 65536, b"x")
    assert guest.memory_size() == 3 * 65536
    guest.close()


@pytest.mark.parametrize("name", PATHS)
def test_a_closed_instance_raises_and_never_touches_freed_memory(name: str) -> None:
    guest = instantiate(make_path(name), lambda a, b: 0)
    guest.memory_size()
    guest.close()
    guest.close()  # idempotent
    for use in (
        lambda: guest.call("grow", (0,)),
        lambda: guest.call("nothing", ()),
        guest.memory_size,
        lambda: guest.read(0, 1),
        lambda: guest.write(0, b"x"),
        lambda: guest.set_deadline(1),
    ):
        with pytest.raises(RuntimeError, match="used after close"):
            use()


@pytest.mark.parametrize("name", PATHS)
def test_closing_from_inside_its_own_call_is_refused(name: str) -> None:
    box: list[GuestExports] = []
    refusals: list[str] = []

    def host(a: int, b: int) -> int:
        try:
            box[0].close()
        except RuntimeError as exc:
            refusals.append(str(exc))
        return 1

    box.append(instantiate(make_path(name), host))
    assert box[0].call("call_host", (0, 0)) == 1
    assert refusals == ["instance of plugin 'unit' cannot be closed from inside one of its calls"]
    assert box[0].call("grow", (0,)) == 1  # still usable
    box[0].close()


@pytest.mark.parametrize("name", PATHS)
def test_host_functions_on_two_engines_do_not_share_a_functype(name: str) -> None:
    """wasmtime-py aborts the process on a FuncType used across engines: each definition builds its own."""
    path = make_path(name)
    for settings in (EngineSettings(), EngineSettings(cranelift_opt_level="none")):
        guest = instantiate(path, lambda a, b: a + b, engine=shared_engine(settings))
        assert guest.call("call_host", (2, 3)) == 5
        guest.close()


# -- the fast path's machinery ----------------------------------------------------------------------


def test_the_trampoline_never_raises_even_for_an_unknown_function() -> None:
    trap = capi._trampoline(10**9, None, None, 0)
    assert trap  # a trap pointer, not 0 (which would mean "success" to wasmtime)
    owned = wasmtime.Trap._from_ptr(ctypes.cast(trap, ctypes.POINTER(capi.ffi.wasm_trap_t)))
    assert "python exception in host function ?" in owned.message
    pending = capi._take_pending()
    assert isinstance(pending, KeyError)
    assert capi._take_pending() is None


def test_pending_exceptions_are_per_thread() -> None:
    capi._pending.exc = ValueError("main")
    seen: list[BaseException | None] = []
    thread = threading.Thread(target=lambda: seen.append(capi._take_pending()))
    thread.start()
    thread.join()
    assert seen == [None]
    assert isinstance(capi._take_pending(), ValueError)


def test_host_entries_are_released_when_wasmtime_drops_them() -> None:
    gc.collect()
    before = set(capi._host_entries)
    guest = instantiate(capi.FastCallPath(), lambda a, b: 0)
    ours = set(capi._host_entries) - before
    assert len(ours) == 1
    guest.close()  # the store goes; the linker went when instantiate() returned
    gc.collect()
    assert not ours & set(capi._host_entries)


def test_public_path_is_the_reference_implementation() -> None:
    assert isinstance(select_call_path(False), PublicCallPath)
    assert isinstance(select_call_path(True), capi.FastCallPath)


# -- through the instance layer ---------------------------------------------------------------------

GROW_BETWEEN_HOST_CALLS = """
(module
  (import "env" "get_plugin_config" (func $cfg (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  (func (export "malloc") (param i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get 0))) (local.get $p))
  (func (export "free") (param i32))
  ;; One host call, then the guest grows its memory and puts the next request past the old end: a
  ;; host that kept the first call's view of the memory would refuse to read it (or read elsewhere).
  (func (export "grow_between") (result i64)
    (drop (call $cfg (i32.const 0) (i32.const 0)))
    (drop (memory.grow (i32.const 15)))
    (i32.store8 (i32.const 0xF0000) (i32.const 0x08))  ;; field 1 varint 0: an unknown field, skipped
    (global.set $next (i32.const 0xF0010))
    (call $cfg (i32.const 0xF0000) (i32.const 2)))
)"""


@pytest.fixture(params=PATHS)
def grown(request: pytest.FixtureRequest) -> Iterator[PluginInstance]:
    engine = shared_engine()
    module = compile_module(engine, wasmtime.wat2wasm(GROW_BETWEEN_HOST_CALLS), plugin_id="grow")
    linked = LinkedPlugin(
        plugin_id="grow",
        engine=engine,
        module=module,
        granted=("config",),
        implemented=IMPLEMENTED,
        fastpath=request.param == "fast",
    )
    assert linked.call_path.name == request.param
    inst = linked.instantiate(bind("grow", [ConfigService(lambda: {"k": "v"})], Transcript()))
    yield inst
    inst.close()


def test_memory_grown_between_two_host_calls_is_seen_by_the_second(grown: PluginInstance) -> None:
    with grown.activate("grow_between"):
        result = grown.call_export("grow_between", ())
    assert isinstance(result, int)
    packed = unpack(result)
    assert packed.ptr == 0xF0010
    response = config_pb2.GetPluginConfigResponse.FromString(grown.read_memory(packed.ptr, packed.size))
    assert dict(response.config) == {"k": "v"}


def test_a_host_function_closing_its_own_instance_is_a_trap_not_a_crash(grown: PluginInstance) -> None:
    def close_me(_request: config_pb2.GetPluginConfigRequest) -> config_pb2.GetPluginConfigResponse:
        grown.close()
        return config_pb2.GetPluginConfigResponse()

    function = HostFunction(
        "config",
        "get_plugin_config",
        config_pb2.GetPluginConfigRequest,
        config_pb2.GetPluginConfigResponse,
        close_me,
    )
    grown.host = HostBinding("grow", {"get_plugin_config": function})
    with (
        pytest.raises(PluginTrap, match="cannot be closed from inside one of its calls"),
        grown.activate("grow_between"),
    ):
        grown.call_export("grow_between", ())
    assert not grown.closed
    grown.close()
    with pytest.raises(RuntimeError, match="used after close"):
        grown.memory_size()
    with pytest.raises(RuntimeError, match="used after close"), grown.activate("grow_between"):
        pass


def test_the_thunks_wasmtime_points_to_outlive_the_module_that_made_them() -> None:
    # wasmtime keeps raw pointers to the callback and finaliser thunks, and calls the finaliser when it
    # drops the last linker, which can be the collector's last pass at interpreter shutdown, after
    # capi's globals were cleared. If clearing them freed the thunks, that call ran freed memory (the
    # run exited 139 after its tests had passed). Clearing is simulated in a child process.
    script = (
        "import gc, sys, weakref\n"
        "from pytest_wasmhost.runtime import capi\n"
        "refs = [weakref.ref(capi._CALLBACK), weakref.ref(capi._FINALIZER)]\n"
        "for name in ('_CALLBACK', '_CALLBACK_AS_DECLARED', '_FINALIZER'):\n"
        "    vars(capi).pop(name)\n"
        "gc.collect()\n"
        "sys.exit(0 if all(ref() is not None for ref in refs) else 3)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"a thunk was freed with its module (exit {done.returncode}): {done.stderr}"
