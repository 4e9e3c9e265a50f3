"""A loaded plugin: source + compiled, linked module + instances + typed capability clients.

This is the single-plugin entry point (``Plugin.load(path)``) used by the CLI and by tests. Each call
follows the original's per-call sequence: obtain an instance, run the capability's load checks on it
once, call the method over the ABI, map errors as the original's adapters. An instance that trapped,
timed out or broke the ABI is discarded, never reused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

from google.protobuf.message import DecodeError, Message

from pytest_wasmhost.abi.capabilities import (
    CAPABILITIES,
    METHODS_BY_EXPORT,
    LifecycleManagementClient,
    MetadataAgentClient,
    Method,
    Reply,
    SchedulerCallbackClient,
    ScrobblerClient,
    WebSocketCallbackClient,
    load_check_failure,
)
from pytest_wasmhost.abi.memory import call_method
from pytest_wasmhost.errors import AbiError, PluginLoadError, WasmHostError
from pytest_wasmhost.host.config import ConfigService
from pytest_wasmhost.manifest import Manifest, runtime_permission_problems
from pytest_wasmhost.package import PluginSource, load_plugin
from pytest_wasmhost.runtime.engine import EngineSettings, shared_engine
from pytest_wasmhost.runtime.instance import LinkedPlugin, PluginInstance, compile_module
from pytest_wasmhost.runtime.wasi import WasiOptions


class Plugin:
    """One plugin, ready to call. Thread-safe: calls are serialised on its single instance."""

    def __init__(
        self,
        source: PluginSource,
        *,
        config: Mapping[str, str] | None = None,
        wasi: WasiOptions = WasiOptions(),
        engine_settings: EngineSettings = EngineSettings(),
        now: Callable[[], float] = time.time,
        eager: bool = True,
    ) -> None:
        self.source = source
        self.plugin_id = source.plugin_id
        self.manifest: Manifest = source.manifest
        self.config: dict[str, str] = dict(config or {})
        self._now = now
        problems = runtime_permission_problems(self.manifest, self.plugin_id)
        if problems:
            raise PluginLoadError(
                problems[0],
                plugin_id=self.plugin_id,
                original=f"failed to create runtime for plugin {self.plugin_id}: {problems[0]}",
                fix="list at least one URL pattern in the permission's allowedUrls in manifest.json.",
            )
        engine = shared_engine(engine_settings)
        module = compile_module(engine, source.wasm_bytes, plugin_id=self.plugin_id)
        services = [ConfigService(lambda: self.config)]
        self.linked = LinkedPlugin(
            plugin_id=self.plugin_id,
            engine=engine,
            module=module,
            granted=self.manifest.permissions.granted(),
            services=services,
            wasi=wasi,
        )
        self._lock = threading.RLock()
        self._instance: PluginInstance | None = None
        self._checked: set[str] = set()
        self.last_stderr = ""
        self.metadata_agent = MetadataAgentClient(self.plugin_id, self.invoke, now)
        self.scrobbler = ScrobblerClient(self.plugin_id, self.invoke, now)
        self.scheduler_callback = SchedulerCallbackClient(self.plugin_id, self.invoke, now)
        self.lifecycle_management = LifecycleManagementClient(self.plugin_id, self.invoke, now)
        self.web_socket_callback = WebSocketCallbackClient(self.plugin_id, self.invoke, now)
        if eager:
            # Surface link errors and missing capability exports now, not at the first call.
            with self._lock:
                instance = self._acquire()
                for name in self.manifest.capabilities:
                    self._load_check(instance, name)

    @classmethod
    def load(cls, path: str | Path, *, plugin_id: str | None = None, **options: object) -> Plugin:
        """Load a plugin folder, an ``.ndp`` package, or a ``.wasm`` with ``manifest.json`` beside it."""
        return cls(load_plugin(path, plugin_id=plugin_id), **options)  # type: ignore[arg-type]

    # -- calls -----------------------------------------------------------------------------------

    def call(self, export: str, request: Message | bytes | None = None) -> Reply:
        """Call a capability method export by name; returns the raw reply (no error mapping)."""
        method = METHODS_BY_EXPORT.get(export)
        if method is None:
            known = ", ".join(sorted(METHODS_BY_EXPORT))
            raise WasmHostError(
                f"{export!r} is not a capability method export.",
                plugin_id=self.plugin_id,
                fix=f"use one of: {known}.",
            )
        if request is None:
            request = method.request()
        elif isinstance(request, bytes):
            request = _decode(
                method.request, request, plugin_id=self.plugin_id, export=export, what="request"
            )
        return self.invoke(method, request)

    def invoke(self, method: Method, request: Message) -> Reply:
        """Run one method call on an instance (the clients' path)."""
        if method.capability not in self.manifest.capabilities:
            raise PluginLoadError(
                f"the manifest does not declare the {method.capability} capability, so the host never "
                f"calls {method.export}.",
                plugin_id=self.plugin_id,
                export=method.export,
                original=f"plugin adapter not registered: {self.plugin_id}, capability: {method.capability}",
                fix=f'add "{method.capability}" to "capabilities" in manifest.json.',
            )
        data = request.SerializeToString()
        with self._lock:
            instance = self._acquire()
            try:
                self._load_check(instance, method.capability)
                with instance.activate(method.export):
                    outcome = call_method(instance, method.export, data)
                if outcome.error_text is not None:
                    return Reply(response=None, error_text=outcome.error_text)
                response = _decode(
                    method.response,
                    outcome.data,
                    plugin_id=self.plugin_id,
                    export=method.export,
                    what="response",
                )
                return Reply(response=response, error_text=None)
            except BaseException:
                # After any failure (trap, ABI breach, interrupt) the instance's state is suspect.
                self._discard()
                raise
            finally:
                if self._instance is not None:
                    self.last_stderr = self._instance.world.stderr.text()

    @property
    def stderr(self) -> str:
        """What the plugin wrote to stderr on its current instance (bounded)."""
        with self._lock:
            return self._instance.world.stderr.text() if self._instance else self.last_stderr

    # -- instances -------------------------------------------------------------------------------

    def _acquire(self) -> PluginInstance:
        if self._instance is None:
            self._instance = self.linked.instantiate()
            self._checked = set()
        return self._instance

    def _discard(self) -> None:
        if self._instance is not None:
            self.last_stderr = self._instance.world.stderr.text()
            self._instance.close()
            self._instance = None

    def _load_check(self, instance: PluginInstance, capability_name: str) -> None:
        if capability_name in self._checked:
            return
        capability = CAPABILITIES[capability_name]
        exports = {e.name: (e.params, e.results) for e in self.linked.exports if e.kind == "func"}

        def version() -> int | None:
            with instance.activate(capability.version_export):
                return instance.call_export(capability.version_export, ())

        cause = load_check_failure(capability, exports, version)
        if cause is not None:
            self._discard()  # never leak the instance (the original's slot leak, runtime.md §11.5)
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
        self._checked.add(capability_name)

    def close(self) -> None:
        with self._lock:
            self._discard()

    def __enter__(self) -> Plugin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _decode(message_type: type[Message], data: bytes, *, plugin_id: str, export: str, what: str) -> Message:
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as exc:
        raise AbiError(
            f"the {what} bytes ({len(data)}) do not decode as {message_type.DESCRIPTOR.full_name}: {exc}",
            plugin_id=plugin_id,
            export=export,
            fix=f"encode the {what} as the spec's protobuf message.",
        ) from exc
    return message
