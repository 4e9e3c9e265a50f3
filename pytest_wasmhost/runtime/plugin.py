"""A plugin ready to call: an instance pool over its linked module, its host services, typed clients.

``Plugin`` puts one plugin in one scope together: the scope's service objects bound for its instances,
the pool, the method runner over it (:mod:`.runner`: the original's per-call sequence) and the typed
clients over that runner (:mod:`.clients`). Plugins come from ``ScopedRuntime.plugin`` /
``Runtime.plugin``, or stand-alone from ``runtime.open_plugin(path)`` (CLI, simple tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType

from google.protobuf.message import Message

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.abi.memory import CallOutcome
from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock
from pytest_wasmhost.errors import hide_harness_frames
from pytest_wasmhost.host.base import HostEnvironment, HostService, ServiceContext, Transcript
from pytest_wasmhost.host.registry import bind, build_services
from pytest_wasmhost.manifest import Manifest
from pytest_wasmhost.package import PluginSource
from pytest_wasmhost.runtime.clients import (
    LifecycleManagementClient,
    MetadataAgentClient,
    SchedulerCallbackClient,
    ScrobblerClient,
    WebSocketCallbackClient,
)
from pytest_wasmhost.runtime.instance import InstanceLimits, LinkedPlugin, PluginInstance
from pytest_wasmhost.runtime.pool import InstancePool, PoolSettings, PoolStats
from pytest_wasmhost.runtime.runner import MethodRunner, decode

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
        self.limits = limits
        self._on_close = on_close
        self.env = env if env is not None else HostEnvironment(clock=clock)
        context = ServiceContext(
            plugin_id=self.plugin_id, manifest=self.manifest, config=config, env=self.env
        )
        # One set of service objects per plugin and scope: shared by its instances, as in the original.
        self.services = (services or build_services)(context)
        self.binding = bind(self.plugin_id, self.services, self.env.transcript)
        self.pool: InstancePool[PluginInstance] = InstancePool(
            plugin_id=self.plugin_id,
            factory=lambda: linked.instantiate(self.binding, limits),
            close=PluginInstance.close,
            settings=pool,
            clock=clock,
        )
        self._runner = runner = MethodRunner(
            self.plugin_id,
            linked,
            self.pool,
            declared=self.manifest.capabilities,
            exports_called=self.env.transcript.exports_of(self.plugin_id),
        )
        self.metadata_agent = MetadataAgentClient(runner, clock.now)
        self.scrobbler = ScrobblerClient(runner, clock.now)
        self.scheduler_callback = SchedulerCallbackClient(runner, clock.now)
        self.lifecycle_management = LifecycleManagementClient(runner, clock.now)
        self.web_socket_callback = WebSocketCallbackClient(runner, clock.now)
        if eager and linked.link_error is None:
            # Surface missing capability exports now, not at the first call. An unlinkable module loads,
            # as in the original, and every call to it raises the link error (abi.md §8).
            try:
                with self.pool.lease() as instance:
                    for name in self.manifest.capabilities:
                        runner.load_check(instance, name)
            except BaseException:
                self.pool.close()
                raise

    # -- calls -----------------------------------------------------------------------------------

    def call(
        self, export: str, request: Message | bytes | None = None, *, timeout: float | None = None
    ) -> Reply:
        """Call a capability method export by name; returns the raw reply (no error mapping)."""
        runner = self._runner
        method = runner.method(export)
        if request is None:
            request = method.request()
        elif isinstance(request, bytes):
            request = decode(method.request, request, plugin_id=self.plugin_id, export=export, what="request")
        return runner.invoke(method, request, timeout)

    def call_raw(self, export: str, payload: bytes, *, timeout: float | None = None) -> CallOutcome:
        """The ABI round trip alone: ``payload`` goes to a capability method export as it is, and the
        reply comes back as bytes (or the plugin's error text), with no protobuf either way.

        For testing how a plugin copes with bytes no well-behaved host sends (truncated or garbage
        requests); the pool, the load checks and every ABI check are the same as for ``call``.
        """
        runner = self._runner
        return runner.run(runner.method(export), payload, timeout)

    @property
    def stderr(self) -> str:
        """What the plugin wrote to stderr on the instance of the latest call that wrote anything."""
        return self._runner.stderr

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
