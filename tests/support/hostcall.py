"""Drive host functions from a real wasm guest: a tiny module that imports ``env.<fn>`` and re-exports it.

``HostHarness(["set_string", "get_string"], permissions={"cache": {"reason": "x"}})`` links the module
exactly as a plugin with that manifest would be linked (same linker, same permission gating, same
dispatch), then ``harness.call("get_string", GetRequest(key="k"))`` writes the request into guest
memory through the guest's malloc, calls the import from inside the guest, and decodes the response
the host wrote back through malloc.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import wasmtime
from google.protobuf.message import Message

from pytest_wasmhost.abi.memory import unpack, write_buffer
from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock
from pytest_wasmhost.host.base import HostEnvironment, ServiceContext
from pytest_wasmhost.host.registry import IMPLEMENTED, bind, build_services
from pytest_wasmhost.manifest import parse_manifest
from pytest_wasmhost.runtime.engine import shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, PluginInstance, compile_module
from tests.support.plugins import manifest as manifest_dict


def host_caller_wat(functions: Sequence[str]) -> str:
    imports = "\n".join(
        f'  (import "env" "{fn}" (func ${fn} (param i32 i32) (result i64)))' for fn in functions
    )
    exports = "\n".join(
        f'  (func (export "call_{fn}") (param i32 i32) (result i64) (call ${fn} (local.get 0) (local.get 1)))'
        for fn in functions
    )
    return f"""
(module
{imports}
  (memory (export "memory") 2)
  (global $next (mut i32) (i32.const 1024))
  (func (export "malloc") (param i32) (result i32) (local $p i32)
    (local.set $p (global.get $next))
    (global.set $next (i32.add (global.get $next) (local.get 0))) (local.get $p))
  (func (export "free") (param i32))
{exports}
)"""


class HostHarness:
    """One guest instance wired to the host functions of a manifest's permissions."""

    def __init__(
        self,
        functions: Sequence[str],
        *,
        permissions: Mapping[str, Any],
        capabilities: Sequence[str] = ("MetadataAgent",),
        plugin_id: str = "test_plugin",
        config: Mapping[str, str] | None = None,
        env: HostEnvironment | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.plugin_id = plugin_id
        manifest = parse_manifest(
            json.dumps(manifest_dict(capabilities=capabilities, permissions=permissions)), plugin_id=plugin_id
        )
        engine = shared_engine()
        module = compile_module(engine, wasmtime.wat2wasm(host_caller_wat(functions)), plugin_id=plugin_id)
        self.linked = LinkedPlugin(
            plugin_id=plugin_id,
            engine=engine,
            module=module,
            granted=manifest.permissions.granted(),
            implemented=IMPLEMENTED,
        )
        self.env = env if env is not None else HostEnvironment(clock=clock)
        context = ServiceContext(
            plugin_id=plugin_id, manifest=manifest, config=lambda: dict(config or {}), env=self.env
        )
        self.services = build_services(context)
        self.instance: PluginInstance = self.linked.instantiate(
            bind(plugin_id, self.services, self.env.transcript)
        )

    @property
    def transcript(self) -> Any:
        return self.env.transcript

    def call_raw(self, function: str, request: Message | bytes) -> bytes:
        """Call ``env.<function>`` from inside the guest; return the response bytes the host wrote."""
        data = request if isinstance(request, bytes) else request.SerializeToString()
        export = f"call_{function}"
        with self.instance.activate(export):
            ptr = write_buffer(self.instance, data, export=export)
            result = self.instance.call_export(export, (ptr, len(data)))
        assert isinstance(result, int)
        packed = unpack(result)
        assert not packed.is_error, "the host never sets the error bit"
        return self.instance.read_memory(packed.ptr, packed.size) if packed.size else b""

    def call(self, function: str, request: Message | bytes, response_type: type[Message]) -> Any:
        """Call ``env.<function>`` and decode the response as ``response_type``."""
        return response_type.FromString(self.call_raw(function, request))

    def close(self) -> None:
        self.instance.close()
        for service in self.services:
            service.close()
