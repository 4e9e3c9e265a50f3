"""The plugin manager: scan a plugins folder, precompile in the background, run OnInit once.

Behaviour and strings are the original's (runtime.md §3, §4, §7, §9 "Plugin lookup errors";
manifest.md §5). Fixed on the way (runtime.md §11): a background OnInit failure from an earlier scan
never unregisters a newer registration of the same id (§11.11), the OnInit tracker is checked and
marked atomically, and loading a plugin while it precompiles simply waits for that compilation.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pytest_wasmhost.clock import host_monotonic
from pytest_wasmhost.discovery import DiscoveredPlugin, DiscoveryProblem, discover_plugins
from pytest_wasmhost.errors import PluginLoadError, WasmHostError
from pytest_wasmhost.manifest import Manifest
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.runtime import Runtime, ScopedRuntime

log = logging.getLogger("pytest_wasmhost.runtime.manager")

LIFECYCLE = "LifecycleManagement"


@dataclass(frozen=True, slots=True)
class Metric:
    """One recorded capability call, as the original's metrics: (plugin, method, ok, elapsed ms)."""

    plugin_id: str
    method: str
    ok: bool
    elapsed_ms: float


@dataclass(eq=False)
class Registration:
    """A discovered plugin and the state of its background compilation."""

    plugin_id: str
    path: Path
    wasm_path: Path
    manifest: Manifest
    is_symlink: bool
    compiled: threading.Event = field(default_factory=threading.Event)
    compile_error: str | None = None

    @property
    def capabilities(self) -> tuple[str, ...]:
        return self.manifest.capabilities


class PluginManager:
    """Discovers, registers, precompiles and initialises the plugins of one folder."""

    def __init__(
        self,
        runtime: Runtime,
        folder: str | Path,
        *,
        config: Mapping[str, Mapping[str, str]] | None = None,
        compile_timeout: float = 60.0,
        compile_concurrency: int = 2,
    ) -> None:
        self.runtime = runtime
        self.folder = Path(folder)
        # Values <= 0 fall back to one minute, as DevPluginCompilationTimeout did.
        self.compile_timeout = compile_timeout if compile_timeout > 0 else 60.0
        # The original snapshotted PluginConfig when the manager was created; OnInit gets that copy: the
        # scope copies each section when it is built.
        self.scope: ScopedRuntime = runtime.scope(config=config)
        self.scope.config_case_warnings = False  # Navidrome's config file is case-insensitive
        self._compile_slots = threading.BoundedSemaphore(compile_concurrency)
        self._lock = threading.RLock()
        self._plugins: dict[str, Registration] = {}
        self._handles: dict[str, tuple[object, Plugin]] = {}
        self._workers: list[threading.Thread] = []
        self.metrics: list[Metric] = []
        self.problems: list[DiscoveryProblem] = []

    # -- scanning --------------------------------------------------------------------------------

    def scan(self) -> list[DiscoveryProblem]:
        """Replace the registrations with a fresh discovery; compile and initialise in the background."""
        entries = discover_plugins(self.folder)
        problems = [e for e in entries if isinstance(e, DiscoveryProblem)]
        for problem in problems:
            log.warning("plugin discovery: %s", problem.original)
        root_failure = [p for p in problems if not p.plugin_id]
        registrations: dict[str, Registration] = {}
        if not root_failure:  # an unreadable root aborts the whole scan, as the original did
            for entry in entries:
                if isinstance(entry, DiscoveredPlugin):
                    registrations[entry.plugin_id] = Registration(
                        plugin_id=entry.plugin_id,
                        path=Path(entry.path),
                        wasm_path=Path(entry.wasm_path),
                        manifest=entry.manifest,
                        is_symlink=entry.is_symlink,
                    )
                    log.info("Discovered plugin %s (dev_mode=%s)", entry.plugin_id, entry.is_symlink)
        with self._lock:
            self._plugins = registrations
            self.problems = problems
        # Started after all are registered, as the original; a list copy because OnInit may unregister.
        for registration in list(registrations.values()):
            worker = threading.Thread(
                target=self._precompile_and_init,
                args=(registration,),
                name=f"wasmhost-precompile-{registration.plugin_id}",
                daemon=True,
            )
            with self._lock:
                self._workers.append(worker)
            worker.start()
        return problems

    def _precompile_and_init(self, reg: Registration) -> None:
        with self._compile_slots:
            try:
                self.runtime.build(reg.path, plugin_id=reg.plugin_id)
            except WasmHostError as exc:
                reg.compile_error = getattr(exc, "original", None) or str(exc)
                log.error("plugin %s failed to compile: %s", reg.plugin_id, reg.compile_error)
            finally:
                reg.compiled.set()
        self._initialise_if_needed(reg)

    def _initialise_if_needed(self, reg: Registration) -> None:
        if LIFECYCLE not in reg.capabilities:
            return
        started = host_monotonic()
        try:
            plugin = self._handle(reg)
            # The scope tracks "once per id and version" atomically and records the call (§11.11).
            ran = self.scope.initialise(plugin)
        except WasmHostError as exc:
            self.metrics.append(Metric(reg.plugin_id, "OnInit", False, (host_monotonic() - started) * 1000))
            log.error("OnInit failed for plugin %s, unregistering it: %s", reg.plugin_id, exc)
            with self._lock:
                # Only this registration: a newer scan's registration of the same id stays (§11.11).
                if self._plugins.get(reg.plugin_id) is reg:
                    del self._plugins[reg.plugin_id]
            return
        if ran:
            self.metrics.append(Metric(reg.plugin_id, "OnInit", True, (host_monotonic() - started) * 1000))

    # -- queries ---------------------------------------------------------------------------------

    def registrations(self) -> list[Registration]:
        with self._lock:
            return sorted(self._plugins.values(), key=lambda r: r.plugin_id)

    def plugin_ids(self, capability: str | None = None) -> list[str]:
        """Registered plugin ids (with ``capability`` if given), compiled or not, sorted."""
        return [
            r.plugin_id for r in self.registrations() if capability is None or capability in r.capabilities
        ]

    def ensure_compiled(self, plugin_id: str) -> None:
        """Wait for the plugin's background compilation; raise if it is unknown, failed or too slow."""
        with self._lock:
            reg = self._plugins.get(plugin_id)
        if reg is None:
            raise PluginLoadError(
                f"no plugin with id {plugin_id!r} is registered.",
                plugin_id=plugin_id,
                original=f"plugin not found: {plugin_id}",
                fix=f"check the folder name under {self.folder} (the folder name is the plugin id).",
            )
        if not reg.compiled.wait(self.compile_timeout):
            raise PluginLoadError(
                f"compilation did not finish within {self.compile_timeout:g}s.",
                plugin_id=plugin_id,
                original=f"timed out waiting for plugin {plugin_id} to compile",
                fix="raise the compile timeout, or look at the plugin's size.",
            )
        if reg.compile_error is not None:
            raise PluginLoadError(
                reg.compile_error,
                plugin_id=plugin_id,
                original=reg.compile_error,
                fix="see the cause; the plugin stays listed but cannot be loaded until it compiles.",
            )

    def load(self, plugin_id: str, capability: str) -> Plugin | None:
        """The plugin for one capability, or None exactly where the original's lookup returned nothing."""
        with self._lock:
            reg = self._plugins.get(plugin_id)
        if reg is None:
            log.warning("plugin not registered: %s", plugin_id)
            return None
        if capability not in reg.capabilities:
            log.warning("plugin adapter not registered: %s, capability: %s", plugin_id, capability)
            return None
        try:
            self.ensure_compiled(plugin_id)
        except PluginLoadError as exc:
            log.warning("Plugin is not ready, cannot be loaded: %s", exc)
            return None
        return self._handle(reg)

    def _handle(self, reg: Registration) -> Plugin:
        """One Plugin (one pool) per registration and build; a rebuilt plugin gets a new one."""
        build = self.runtime.build(reg.path, plugin_id=reg.plugin_id)
        with self._lock:
            current = self._handles.get(reg.plugin_id)
            if current is not None and current[0] is build:
                return current[1]
        plugin = self.scope.plugin(reg.path, plugin_id=reg.plugin_id, eager=False, init=False)
        with self._lock:
            self._handles[reg.plugin_id] = (build, plugin)
        return plugin

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait for the background precompile/OnInit tasks started so far (tests, CLI). True if done."""
        deadline = host_monotonic() + timeout
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            worker.join(max(0.0, deadline - host_monotonic()))
        return not any(w.is_alive() for w in workers)

    def close(self) -> None:
        self.wait_idle()
        self.scope.close()

    def __enter__(self) -> PluginManager:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
