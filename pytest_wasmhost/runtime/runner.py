"""One plugin's method calls into its instance pool: the original's per-call sequence (runtime.md §8.1).

The manifest must declare the capability; an unlinkable module raises its link error on every call
(abi.md §8); an instance comes from the pool, gets the capability's load checks once, and runs the ABI
round trip under its deadline. Unlike the original, an instance that trapped, timed out, hit its memory
cap or broke the ABI is discarded (§11.6), and a failed load check never leaks a pool slot (§11.5).

Every call, typed or raw, comes through :meth:`MethodRunner.run`; the typed clients and ``Plugin.call``
go through :meth:`MethodRunner.invoke` (protobuf both ways), and only the clients map errors.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.message import DecodeError, Message

from pytest_wasmhost.abi.capabilities import (
    CAPABILITIES,
    METHODS_BY_EXPORT,
    Method,
    Reply,
    load_check_failure,
)
from pytest_wasmhost.abi.memory import CallOutcome
from pytest_wasmhost.errors import AbiError, PluginLoadError, WasmHostError, hide_harness_frames
from pytest_wasmhost.runtime.instance import LinkedPlugin, PluginInstance
from pytest_wasmhost.runtime.pool import InstancePool
from pytest_wasmhost.runtime.wasi import OutputCapture

# Errors of ours show the user's frames, not these (see errors.hide_harness_frames).
__tracebackhide__ = hide_harness_frames


class MethodRunner:
    """Runs the method calls of one plugin in one scope. Thread-safe: each call gets its own instance."""

    def __init__(
        self,
        plugin_id: str,
        linked: LinkedPlugin,
        pool: InstancePool[PluginInstance],
        *,
        declared: Iterable[str],
        exports_called: set[str],
    ) -> None:
        self.plugin_id = plugin_id
        self.linked = linked
        self.pool = pool
        self._declared = frozenset(declared)
        self._exports_called = exports_called  # the transcript's record of this plugin's exports
        self._stderr_capture: OutputCapture | None = None  # of the latest call's instance that wrote

    def invoke(self, method: Method, request: Message, timeout: float | None = None) -> Reply:
        """One method call with protobuf both ways; the reply unmapped (the caller applies ``check_err``)."""
        outcome = self.run(method, request.SerializeToString(), timeout)
        if outcome.error_text is not None:
            return Reply(None, outcome.error_text)
        response = decode(
            method.response, outcome.data, plugin_id=self.plugin_id, export=method.export, what="response"
        )
        return Reply(response, None)

    def run(self, method: Method, data: bytes, timeout: float | None) -> CallOutcome:
        """One round trip on a pooled instance; every call, typed or raw, comes through here."""
        if method.capability not in self._declared:
            raise PluginLoadError(
                f"the manifest does not declare the {method.capability} capability, so the host never "
                f"calls {method.export}.",
                plugin_id=self.plugin_id,
                export=method.export,
                original=f"plugin adapter not registered: {self.plugin_id}, capability: {method.capability}",
                fix=f'add "{method.capability}" to "capabilities" in manifest.json.',
            )
        export = method.export
        self._exports_called.add(export)
        if self.linked.link_error is not None:
            raise self.linked.link_failure(export=export, capability=method.capability)
        # The pool's get/put written out rather than ``with pool.lease()``: this is every call's path.
        # Any exception discards the instance: a failed instance is never reused.
        pool = self.pool
        instance = pool.get()
        try:
            if method.capability not in instance.checked_capabilities:
                self.load_check(instance, method.capability)
            try:
                outcome = instance.run_method(export, data, timeout)
            finally:
                stderr = instance.world.stderr
                if stderr.written:
                    self._stderr_capture = stderr
        except BaseException:
            pool.discard(instance)
            raise
        pool.put(instance)
        return outcome

    def method(self, export: str) -> Method:
        """The capability method of an export name, or an error listing the ones there are."""
        method = METHODS_BY_EXPORT.get(export)
        if method is None:
            known = ", ".join(sorted(METHODS_BY_EXPORT))
            raise WasmHostError(
                f"{export!r} is not a capability method export.",
                plugin_id=self.plugin_id,
                fix=f"use one of: {known}.",
            )
        return method

    @property
    def stderr(self) -> str:
        """What the plugin wrote to stderr on the instance of the latest call that wrote anything."""
        capture = self._stderr_capture
        return capture.text() if capture is not None else ""

    def load_check(self, instance: PluginInstance, capability_name: str) -> None:
        """The original's load checks of one capability on one instance, once (abi.md §3)."""
        if capability_name in instance.checked_capabilities:
            return
        capability = CAPABILITIES[capability_name]
        exports = {e.name: (e.params, e.results) for e in self.linked.exports if e.kind == "func"}

        def version() -> int | None:
            with instance.activate(capability.version_export):
                return instance.call_export(capability.version_export, ())

        cause = load_check_failure(capability, exports, version)
        if cause is not None:
            raise PluginLoadError(
                cause + ".",
                plugin_id=self.plugin_id,
                export=capability.version_export if "version" in cause else None,
                original=(
                    f"baseCapability: failed to load instance for {self.plugin_id}_{capability_name}: {cause}"
                ),
                fix=f"a {capability_name} plugin must export {capability.version_export} returning 1, every "
                f"{capability.prefix}_* method, malloc and free (the Go glue exports them all).",
            )
        instance.checked_capabilities.add(capability_name)


def decode(message_type: type[Message], data: bytes, *, plugin_id: str, export: str, what: str) -> Message:
    """Decode a request or response, or raise the AbiError that names the message it should have been."""
    try:
        return message_type.FromString(data)
    except DecodeError as exc:
        raise AbiError(
            f"the {what} bytes ({len(data)}) do not decode as {message_type.DESCRIPTOR.full_name}: {exc}",
            plugin_id=plugin_id,
            export=export,
            fix=f"encode the {what} as the spec's protobuf message.",
        ) from exc
