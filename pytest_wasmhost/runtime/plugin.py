"""A plugin ready to call: an instance pool over its linked module, its host services, typed clients.

Each call follows the original's per-call sequence (runtime.md §8.1): take an instance from the pool,
run the capability's load checks on it once, call the method over the ABI, map errors as the
original's adapters, give the instance back. Unlike the original, an instance that trapped, timed
out, hit its memory cap or broke the ABI is discarded (§11.6), and a failed load check never leaks a
pool slot (§11.5).

Plugins come from ``ScopedRuntime.plugin`` / ``Runtime.plugin``, or stand-alone from
``runtime.open_plugin(path)`` (CLI, simple tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
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
from pytest_wasmhost.abi.memory import CallOutcome
from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock
from pytest_wasmhost.errors import AbiError, PluginLoadError, WasmHostError, hide_harness_frames
from pytest_wasmhost.host.base import HostEnvironment, HostService, ServiceContext, Transcript
from pytest_wasmhost.host.registry import bind, build_services
from pytest_wasmhost.manifest import Manifest
from pytest_wasmhost.package import PluginSource
from pytest_wasmhost.runtime.instance import InstanceLimits, LinkedPlugin, PluginInstance
from pytest_wasmhost.runtime.pool import InstancePool, PoolSettings, PoolStats
from pytest_wasmhost.runtime.wasi import OutputCapture

# Errors of ours show the user's frames, not these (see errors.hide_harness_frames).
__tracebackhide__ = hide_harness_frames

ServiceBuilder = Callable[[ServiceContext], list[HostService]]


class Plugin:
    """One plugin in one scope. Thread-safe: concurrent calls get different pooled instances."""

    def __init__(
        self,
        source: PluginSource,
        linked: LinkedPlugin,
        *,
        config: Callable[[], Mapping[str, str]] = dict,
        pool: PoolSettings = PoolSettings(),
        limits: InstanceLimits = InstanceLimits(),
        clock: Clock = SYSTEM_CLOCK,
        env: HostEnvironment | None = None,
        services: ServiceBuilder | None = None,
        eager: bool = True,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.linked = linked
        self.plugin_id = source.plugin_id
        self.manifest: Manifest = source.manifest
        self._declared = frozenset(self.manifest.capabilities)
        self.limits = limits
        self._on_close = on_close
        self.env = env if env is not None else HostEnvironment(clock=clock)
        context = ServiceContext(
            plugin_id=self.plugin_id, manifest=self.manifest, config=config, env=self.env
        )
        # One set of service objects per plugin and scope: shared by its instances, as in the original.
        self.services = (services or build_services)(context)
        self.binding = bind(self.plugin_id, self.services, self.env.transcript)
        self._exports_called = self.env.transcript.exports_of(self.plugin_id)
        self.pool: InstancePool[PluginInstance] = InstancePool(
            plugin_id=self.plugin_id,
            factory=lambda: linked.instantiate(self.binding, limits),
            close=PluginInstance.close,
            settings=pool,
            clock=clock,
        )
        self._stderr_capture: OutputCapture | None = None  # of the latest call's instance that wrote
        self.metadata_agent = MetadataAgentClient(self.plugin_id, self.invoke, clock.now)
        self.scrobbler = ScrobblerClient(self.plugin_id, self.invoke, clock.now)
        self.scheduler_callback = SchedulerCallbackClient(self.plugin_id, self.invoke, clock.now)
        self.lifecycle_management = LifecycleManagementClient(self.plugin_id, self.invoke, clock.now)
        self.web_socket_callback = WebSocketCallbackClient(self.plugin_id, self.invoke, clock.now)
        if eager and linked.link_error is None:
            # Surface missing capability exports now, not at the first call. An unlinkable module loads,
            # as in the original, and every call to it raises the link error (abi.md §8).
            try:
                with self.pool.lease() as instance:
                    for name in self.manifest.capabilities:
                        self._load_check(instance, name)
            except BaseException:
                self.pool.close()
                raise

    # -- calls -----------------------------------------------------------------------------------

    def call(
        self, export: str, request: Message | bytes | None = None, *, timeout: float | None = None
    ) -> Reply:
        """Call a capability method export by name; returns the raw reply (no error mapping)."""
        method = self._method(export)
        if request is None:
            request = method.request()
        elif isinstance(request, bytes):
            request = _decode(
                method.request, request, plugin_id=self.plugin_id, export=export, what="request"
            )
        return self.invoke(method, request, timeout)

    def call_raw(self, export: str, payload: bytes, *, timeout: float | None = None) -> CallOutcome:
        """The ABI round trip alone: ``payload`` goes to a capability method export as it is, and the
        reply comes back as bytes (or the plugin's error text), with no protobuf either way.

        For testing how a plugin copes with bytes no well-behaved host sends (truncated or garbage
        requests); the pool, the load checks and every ABI check are the same as for ``call``.
        """
        return self._run(self._method(export), payload, timeout)

    def invoke(self, method: Method, request: Message, timeout: float | None = None) -> Reply:
        """Run one method call on a pooled instance (the typed clients' path)."""
        outcome = self._run(method, request.SerializeToString(), timeout)
        if outcome.error_text is not None:
            return Reply(None, outcome.error_text)
        response = _decode(
            method.response, outcome.data, plugin_id=self.plugin_id, export=method.export, what="response"
        )
        return Reply(response, None)

    def _run(self, method: Method, data: bytes, timeout: float | None) -> CallOutcome:
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
                self._load_check(instance, method.capability)
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

    def _method(self, export: str) -> Method:
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

    def _load_check(self, instance: PluginInstance, capability_name: str) -> None:
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

    # -- lifecycle -------------------------------------------------------------------------------

    def stats(self) -> PoolStats:
        return self.pool.stats()

    def sweep(self) -> int:
        return self.pool.sweep()

    @property
    def transcript(self) -> Transcript:
        """The host calls of this plugin's scope (shared with the other plugins of the scope)."""
        return self.env.transcript

    def close_also(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` after this plugin's own close (``open_plugin`` closes its private runtime so)."""
        self._on_close = closer

    def close(self) -> None:
        self.pool.close()
        self.pool.close_checked_out()  # what a test took from the pool and never gave back
        for service in self.services:
            service.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> Plugin:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Plugin {self.plugin_id!r} {self.pool.stats()}>"


def _decode(message_type: type[Message], data: bytes, *, plugin_id: str, export: str, what: str) -> Message:
    try:
        return message_type.FromString(data)
    except DecodeError as exc:
        raise AbiError(
            f"the {what} bytes ({len(data)}) do not decode as {message_type.DESCRIPTOR.full_name}: {exc}",
            plugin_id=plugin_id,
            export=export,
            fix=f"encode the {what} as the spec's protobuf message.",
        ) from exc
