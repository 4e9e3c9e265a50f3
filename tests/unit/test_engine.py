"""Engines: the pooling allocator's slots, its fallback, and what a reused slot must not carry over."""

from __future__ import annotations

import logging

import pytest
import wasmtime

from pytest_wasmhost.errors import PluginLoadError
from pytest_wasmhost.runtime import engine as engine_module
from pytest_wasmhost.runtime.engine import EngineSettings, shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, PluginInstance

# 64 pages (4 MiB): offset 2 MiB lies inside the part of a closed slot that stays mapped.
SCRATCH_WAT = """
(module
  (memory (export "memory") 64)
  (data (i32.const 16) "seed")
  (func (export "poke") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i32) (i32.load8_u (local.get 0)))
)"""
DEEP = 2 << 20


def linked(settings: EngineSettings) -> LinkedPlugin:
    engine = shared_engine(settings)
    module = wasmtime.Module(engine, wasmtime.wat2wasm(SCRATCH_WAT))
    return LinkedPlugin(plugin_id="slots", engine=engine, module=module, granted=(), implemented={})


def peek(instance: PluginInstance, offset: int) -> int:
    with instance.activate("peek"):
        return instance.call_export("peek", (offset,)) or 0


def poke(instance: PluginInstance, offset: int, value: int) -> None:
    with instance.activate("poke"):
        instance.call_export("poke", (offset, value))


def test_a_full_slot_pool_is_our_load_error_naming_the_fix_and_a_closed_instance_frees_its_slot() -> None:
    plugin = linked(EngineSettings(instance_slots=2))
    first, second = plugin.instantiate(), plugin.instantiate()
    with pytest.raises(PluginLoadError) as info:
        plugin.instantiate()
    message = str(info.value)
    assert "plugin 'slots'" in message
    assert "no free instance slot" in message
    assert "instance_slots" in message
    first.close()
    plugin.instantiate().close()  # the slot came back
    second.close()


def test_on_demand_engines_have_no_slot_limit() -> None:
    plugin = linked(EngineSettings(instance_slots=None))
    instances = [plugin.instantiate() for _ in range(5)]
    for instance in instances:
        instance.close()


def test_a_reused_slot_starts_from_the_modules_own_memory() -> None:
    plugin = linked(EngineSettings(instance_slots=1))  # one slot: the second instance reuses it
    scribbler = plugin.instantiate()
    poke(scribbler, 16, 0xAB)  # over the data segment
    poke(scribbler, DEEP, 0xCD)  # in the pages a closed slot keeps mapped
    assert (peek(scribbler, 16), peek(scribbler, DEEP)) == (0xAB, 0xCD)
    scribbler.close()
    reader = plugin.instantiate()
    assert (peek(reader, 16), peek(reader, DEEP)) == (ord("s"), 0)
    reader.close()


def test_without_room_for_the_slots_the_engine_allocates_on_demand_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(engine_module, "_address_space_available", lambda size: False)
    with caplog.at_level(logging.WARNING, logger="pytest_wasmhost.runtime.engine"):
        assert engine_module._pooled_engine(wasmtime.Config(), 7) is None
    assert [r.getMessage() for r in caplog.records] == [
        "no room to reserve address space for 7 wasmtime instance slots (ulimit -v, or a small address "
        "space); instances are allocated on demand instead (slower to create, otherwise the same)"
    ]


def test_the_address_space_probe_refuses_what_no_process_can_reserve() -> None:
    assert engine_module._address_space_available(1 << 20)
    assert not engine_module._address_space_available(1 << 62)  # 4 EiB: beyond any 64-bit user space


def test_the_slot_count_does_not_change_the_cache_key() -> None:
    assert EngineSettings(instance_slots=None).cache_key() == EngineSettings().cache_key()


@pytest.mark.parametrize("slots", [0, -3])
def test_a_slot_count_below_one_is_refused(slots: int) -> None:
    with pytest.raises(ValueError, match=f"instance_slots must be None .* or >= 1, got {slots}"):
        EngineSettings(instance_slots=slots)
