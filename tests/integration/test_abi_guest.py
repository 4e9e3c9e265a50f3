"""The host->guest ABI against real wasmtime instances of tiny WAT modules (abi.md §4)."""

from __future__ import annotations

import pytest

from pytest_wasmhost.abi.memory import call_method
from pytest_wasmhost.errors import AbiError
from pytest_wasmhost.runtime.engine import shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, PluginInstance, compile_module
from tests.support.wat import metadata_module, packed

EXPORT = "metadata_agent_get_artist_mbid"


def instance_of(wasm: bytes) -> PluginInstance:
    engine = shared_engine()
    module = compile_module(engine, wasm, plugin_id="abi-test")
    return LinkedPlugin(
        plugin_id="abi-test", engine=engine, module=module, granted=(), implemented={}
    ).instantiate()


def call(wasm: bytes, request: bytes = b"\x12\x01x"):
    inst = instance_of(wasm)
    with inst.activate(EXPORT):
        return call_method(inst, EXPORT, request)


def test_result_pointer_and_size_are_read_from_guest_memory() -> None:
    outcome = call(metadata_module(result=packed(256, 12), data=b"\x0a\x0a1234567890"))
    assert outcome.data == b"\x0a\x0a1234567890"
    assert outcome.error_text is None


def test_zero_result_is_an_empty_successful_response() -> None:
    outcome = call(metadata_module(result="(i64.const 0)"))
    assert (outcome.data, outcome.error_text) == (b"", None)


def test_error_bit_turns_the_bytes_into_the_error_string() -> None:
    outcome = call(metadata_module(result=packed(256, 22, error=True), data=b"plugin:not_implemented"))
    assert outcome.error_text == "plugin:not_implemented"
    assert outcome.data == b""


def test_error_string_with_invalid_utf8_stays_readable() -> None:
    outcome = call(metadata_module(result=packed(256, 3, error=True), data=b"a\xffb"))
    assert outcome.error_text == "a\ufffdb"


def test_out_of_bounds_result_pointer_is_an_abi_error_not_garbage() -> None:
    with pytest.raises(AbiError) as info:
        call(metadata_module(result=packed(65530, 100)))
    message = str(info.value)
    assert "plugin 'abi-test'" in message
    assert EXPORT in message
    assert "Memory.Read(65530, 100) out of range of memory size 65536" in message
    assert "Fix:" in message


def test_out_of_bounds_error_string_is_an_abi_error() -> None:
    with pytest.raises(AbiError, match=r"the error string at 0xfffffff0 with size 16"):
        call(metadata_module(result=packed(0xFFFF_FFF0, 16, error=True)))


def test_size_with_the_error_bit_is_not_read_as_a_huge_size() -> None:
    # 0x80000005: error bit + 5 bytes. Without clearing bit 31 this would be a 2 GiB read.
    outcome = call(metadata_module(result=packed(256, 5, error=True), data=b"boom!"))
    assert outcome.error_text == "boom!"


def test_zero_pointer_with_a_size_is_an_abi_error() -> None:
    with pytest.raises(AbiError, match=r"null pointer with size 7") as info:
        call(metadata_module(result=packed(0, 7)))
    assert "return 0 for an empty result" in str(info.value)


def test_malloc_returning_zero_is_an_abi_error() -> None:
    with pytest.raises(AbiError, match=r"malloc\(3\) returned 0") as info:
        call(metadata_module(malloc_body="(i32.const 0)"))
    assert info.value.plugin_id == "abi-test"
    assert info.value.export == EXPORT


def test_malloc_returning_a_pointer_outside_memory_is_an_abi_error() -> None:
    with pytest.raises(AbiError, match=r"Memory.Write\(65535, 3\) out of range"):
        call(metadata_module(malloc_body="(i32.const 65535)"))


def test_empty_request_allocates_nothing_and_passes_zero_pointer() -> None:
    # malloc traps if called: an empty request must not reach it (abi.md §4 step 2).
    outcome = call(metadata_module(malloc_body="(unreachable)"), request=b"")
    assert outcome.data == b""
