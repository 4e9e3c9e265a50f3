"""The production runtime and the scopes tests get.

``Runtime`` owns what is expensive and shareable: the engine, the compiled-module cache (memory and
disk), and one :class:`PluginBuild` (source + compiled, linked module) per plugin id. It is created
once per process (the ``wasm_host`` session fixture) or per command.

``ScopedRuntime`` owns what must not leak between tests: instance pools, host-service state and
configuration. Closing a scope closes every instance it created and nothing else.

Unlike the original (which kept a runtime per id forever, runtime.md §11.9), a build is re-checked on
every load: a changed ``plugin.wasm`` or ``manifest.json`` produces a new build, so an author who
rebuilds between runs never tests a stale binary. The check is a ``stat`` fingerprint first, then the
content digest (§11.12).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import wasmtime
from google.protobuf.message import Message

from pytest_wasmhost.abi.capabilities import Reply
from pytest_wasmhost.clock import SYSTEM_CLOCK, Clock, Janitor, host_monotonic
from pytest_wasmhost.errors import ConfigKeyWarning, PluginLoadError, WasmHostError, hide_harness_frames
from pytest_wasmhost.host.base import HostEnvironment, Transcript
from pytest_wasmhost.host.options import HostOptions
from pytest_wasmhost.host.registry import IMPLEMENTED
from pytest_wasmhost.manifest import parse_manifest, runtime_permission_problems
from pytest_wasmhost.package import PluginSource, load_plugin
from pytest_wasmhost.runtime import legacy_options
from pytest_wasmhost.runtime.compile_cache import CompiledModuleCache, DiskCache, wasm_digest
from pytest_wasmhost.runtime.engine import EngineSettings, shared_engine
from pytest_wasmhost.runtime.instance import InstanceLimits, LinkedPlugin
from pytest_wasmhost.runtime.plugin import Plugin, ServiceBuilder
from pytest_wasmhost.runtime.pool import PoolSettings
from pytest_wasmhost.runtime.wasi import WasiOptions

# Errors of ours show the user's frames, not these (see errors.hide_harness_frames).
__tracebackhide__ = hide_harness_frames

log = logging.getLogger("pytest_wasmhost.runtime.runtime")

DEFAULT_CACHE_SIZE = "100MB"  # the original's Plugins.CacheSize default


def default_cache_dir() -> Path:
    """$WASMHOST_CACHE_DIR, else $XDG_CACHE_HOME/pytest-wasmhost, else ~/.cache/pytest-wasmhost."""
    explicit = os.environ.get("WASMHOST_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "pytest-wasmhost"


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    """Everything a runtime can be configured with; defaults are the original's numbers."""

    cache_dir: Path | None = None  # None: default_cache_dir(); the disk cache lives in <cache_dir>/plugins
    disk_cache: bool = True
    cache_size: str = DEFAULT_CACHE_SIZE
    limits: InstanceLimits = InstanceLimits()
    pool: PoolSettings = PoolSettings()
    wasi: WasiOptions = WasiOptions()
    engine: EngineSettings = EngineSettings()
    compiled_ttl: float = 300.0  # the original's 5 minutes since last access
    compile_concurrency: int = 2  # the original compiled at most 2 plugins at once
    #: Seconds between the janitor's sweeps; None: the pool's idle TTL / 3, as the original (at least 1 s).
    janitor_interval: float | None = None
    #: How guest calls are made: None = $WASMHOST_FASTPATH, else the C-API fast path on a tested
    #: wasmtime; True / False force the fast path / wasmtime-py's public API (runtime/callpath.py).
    fastpath: bool | None = None

    def resolved_cache_dir(self) -> Path:
        return self.cache_dir if self.cache_dir is not None else default_cache_dir()

    def resolved_janitor_interval(self) -> float:
        if self.janitor_interval is not None:
            if not self.janitor_interval > 0:
                raise ValueError(f"janitor_interval must be > 0, got {self.janitor_interval}")
            return self.janitor_interval
        return max(self.pool.idle_ttl / 3, 1.0)


@dataclass(frozen=True)
class PluginBuild:
    """A plugin's source and its compiled, linked module: shared by every scope of a runtime."""

    source: PluginSource
    digest: str
    module: wasmtime.Module  # held here so a cache expiry never closes a module in use (§11.10)
    linked: LinkedPlugin
    fingerprint: tuple[object, ...] = field(compare=False)

    @property
    def plugin_id(self) -> str:
        return self.source.plugin_id


@dataclass(frozen=True)
class LoadDefaults:
    """What every load into a scope gets unless the load passes its own (a test's markers, say).

    ``config`` maps a plugin id (matched case-insensitively) or ``"*"`` (any plugin) to the config
    map a load uses when it passes none and the scope has none for that id; the map itself is used,
    so later changes are seen live. ``permissions`` are overrides as ``Runtime.build`` takes them;
    a load's own ``permissions`` win service by service.
    """

    config: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    permissions: Mapping[str, Any] | None = None

    def config_for(self, plugin_id: str) -> Mapping[str, str] | None:
        for pid, section in self.config.items():
            if pid != "*" and pid.lower() == plugin_id.lower():
                return section
        return self.config.get("*")

    def permissions_with(self, explicit: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        if self.permissions is None:
            return explicit
        return {**self.permissions, **(explicit or {})}


def _fingerprint(path: Path) -> tuple[object, ...]:
    """A cheap change detector: (mtime, size, inode) of the files a load reads."""
    files = (
        [path / "manifest.json", path / "plugin.wasm"]
        if path.is_dir()
        else [path, path.parent / "manifest.json"]
    )
    stamps: list[object] = [str(path.resolve())]
    for file in files:
        try:
            st = file.stat()
        except OSError:
            stamps.append(None)
        else:
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(stamps)


def _with_permissions(source: PluginSource, permissions: Mapping[str, Any]) -> PluginSource:
    """The source with its manifest's permissions overridden, validated by the same rules."""
    document = source.manifest.as_json()
    granted = dict(document.get("permissions") or {})
    for name, value in permissions.items():
        if value is None:
            granted.pop(name, None)
        elif value is True:  # granted with a placeholder reason (services without settings)
            granted[name] = {"reason": "granted by the test"}
        else:
            granted[name] = value
    document["permissions"] = granted
    where = f"{source.wasm_path or source.plugin_id} (permissions overridden)"
    manifest = parse_manifest(json.dumps(document), path=where)
    return dataclasses.replace(source, manifest=manifest)


_purged_roots: set[Path] = set()
_purge_lock = threading.Lock()


def _purge_once(disk: DiskCache) -> None:
    """The original purged the disk cache once per process, right before opening it (runtime.md §5);
    the disk cache also purges after each write it makes."""
    with _purge_lock:
        if disk.root in _purged_roots:
            return
        _purged_roots.add(disk.root)
    removed = disk.purge()
    if removed:
        log.info(
            "purged %d compiled artifacts from %s to stay under %s", len(removed), disk.root, disk.size_limit
        )


class Runtime:
    """The production runtime: shared engine, compile caches, plugin builds, and a default scope.

    Like the original, it expires idle instances and compiled modules on its own: a janitor thread
    sweeps every production scope on real time (``janitor=False`` turns it off). Scopes created with
    ``clock_driven=True`` (every test scope) are left to the test's clock: ``wasm_clock.advance``
    sweeps them, and a janitor sweep never runs at the same time as that one.
    """

    def __init__(
        self,
        settings: RuntimeSettings = RuntimeSettings(),
        *,
        clock: Clock = SYSTEM_CLOCK,
        config: Mapping[str, Mapping[str, str]] | None = None,
        host_options: HostOptions | Mapping[str, Any] | None = None,
        services: ServiceBuilder | None = None,
        janitor: bool = True,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.engine = shared_engine(settings.engine)
        self._services = services
        disk = None
        if settings.disk_cache:
            root = settings.resolved_cache_dir() / "plugins"
            disk = DiskCache(root, self.engine, settings.engine.cache_key(), size_limit=settings.cache_size)
            _purge_once(disk)
        self.modules = CompiledModuleCache(
            self.engine,
            settings_key=settings.engine.cache_key(),
            clock=clock,
            ttl=settings.compiled_ttl,
            disk=disk,
            compile_slots=threading.BoundedSemaphore(settings.compile_concurrency),
        )
        self._lock = threading.Lock()
        self._builds: dict[str, PluginBuild] = {}
        self._build_locks: dict[str, threading.Lock] = {}
        self._scopes: set[ScopedRuntime] = set()
        self._sweep_lock = threading.Lock()  # one sweep at a time: the janitor's or a clock-driven one
        self.closed = False
        options = legacy_options.host_options(host_options)
        if janitor and options.scheduler.run is None:
            # Production: scheduled jobs fire on a real-time thread (tests fire them by advancing the clock).
            options = options.replace(scheduler=dataclasses.replace(options.scheduler, run=True))
        self.default_scope = self.scope(config=config, host_options=options)
        self.janitor: Janitor | None = None
        if janitor:
            # The original swept every TTL/3; the janitor only sweeps, test scopes are swept by their clock.
            self.janitor = Janitor(
                self._janitor_sweep, settings.resolved_janitor_interval(), name="wasmhost-janitor"
            ).start()

    # -- builds ----------------------------------------------------------------------------------

    def build(
        self,
        path: str | Path,
        *,
        plugin_id: str | None = None,
        permissions: Mapping[str, Any] | None = None,
    ) -> PluginBuild:
        """The plugin's build, compiled once and reused until its files change on disk.

        ``permissions`` overrides entries of the manifest's ``permissions`` object (a value of None
        removes a grant, True grants it with a placeholder reason, an object replaces it): the
        ``wasm_permissions`` marker narrows or widens grants this way.
        """
        path = Path(path)
        override = json.dumps(permissions, sort_keys=True, default=str) if permissions is not None else ""
        fingerprint = (*_fingerprint(path), override)
        key = f"{plugin_id or path.resolve()}\0{override}"
        with self._lock:
            lock = self._build_locks.setdefault(key, threading.Lock())
        with lock:  # concurrent first use of one plugin builds it once
            current = self._builds.get(key)
            if current is not None and current.fingerprint == fingerprint:
                return current
            source = load_plugin(path, plugin_id=plugin_id)
            if permissions is not None:
                source = _with_permissions(source, permissions)
            digest = wasm_digest(source.wasm_bytes)
            if (
                current is not None
                and current.digest == digest
                and current.source.manifest == source.manifest
                and current.plugin_id == source.plugin_id
            ):
                current = PluginBuild(current.source, digest, current.module, current.linked, fingerprint)
            else:
                replaced, current = current, self._new_build(source, digest, fingerprint)
                if replaced is not None and replaced.digest != digest:
                    self._release_replaced(replaced)
            self._builds[key] = current
            return current

    def _new_build(self, source: PluginSource, digest: str, fingerprint: tuple[object, ...]) -> PluginBuild:
        problems = runtime_permission_problems(source.manifest, source.plugin_id)
        if problems:
            raise PluginLoadError(
                problems[0],
                plugin_id=source.plugin_id,
                original=f"failed to create runtime for plugin {source.plugin_id}: {problems[0]}",
                fix="list at least one URL pattern in the permission's allowedUrls in manifest.json.",
            )
        module = self.modules.get(source.wasm_bytes, plugin_id=source.plugin_id, digest=digest)
        linked = LinkedPlugin(
            plugin_id=source.plugin_id,
            engine=self.engine,
            module=module,
            granted=source.manifest.permissions.granted(),
            implemented=IMPLEMENTED,
            wasi=self.settings.wasi,
            fastpath=self.settings.fastpath,
        )
        return PluginBuild(source, digest, module, linked, fingerprint)

    # -- scopes and plugins ----------------------------------------------------------------------

    def scope(
        self,
        *,
        config: Mapping[str, Mapping[str, str]] | None = None,
        pool: PoolSettings | None = None,
        limits: InstanceLimits | None = None,
        clock: Clock | None = None,
        host_options: HostOptions | Mapping[str, Any] | None = None,
        clock_driven: bool = False,
        defaults: LoadDefaults | None = None,
    ) -> ScopedRuntime:
        """A new scope: fresh pools, fresh service state; close it to release exactly what it took.

        ``host_options`` are the host services' settings (:class:`HostOptions`; a dict is deprecated).
        A ``clock_driven`` scope (a test's) expires only when its clock is advanced and swept, never
        by the janitor. ``defaults`` are what its loads get unless they pass their own.
        """
        scope = ScopedRuntime(
            self,
            config=config,
            pool=pool or self.settings.pool,
            limits=limits or self.settings.limits,
            clock=clock or self.clock,
            host_options=legacy_options.host_options(host_options),
            clock_driven=clock_driven,
            defaults=defaults,
        )
        with self._lock:
            self._scopes.add(scope)
        return scope

    def plugin(
        self,
        path: str | Path,
        *,
        plugin_id: str | None = None,
        config: Mapping[str, str] | None = None,
        eager: bool = True,
    ) -> Plugin:
        """A plugin in the runtime's default (production) scope."""
        return self.default_scope.plugin(path, plugin_id=plugin_id, config=config, eager=eager)

    def sweep(self) -> int:
        """Expire idle instances and compiled modules of every scope now (the tests' entry point)."""
        return self._sweep(clock_driven_too=True)

    def _janitor_sweep(self) -> int:
        return self._sweep(clock_driven_too=False)

    def _sweep(self, *, clock_driven_too: bool) -> int:
        with self._sweep_lock:
            with self._lock:
                scopes = [s for s in self._scopes if clock_driven_too or not s.clock_driven]
            swept = self.modules.sweep() + sum(scope.sweep() for scope in scopes)
            self._release_unused_builds()
            return swept

    def _release_unused_builds(self) -> None:
        """Forget builds whose module expired from the memory cache and that no open plugin uses, so
        an expiry really frees the compiled code (the next load takes it from the disk cache)."""
        in_use = {id(plugin.linked) for plugin in self._open_plugins()}
        for key, build in list(self._builds.items()):
            if id(build.linked) not in in_use and not self.modules.holds(build.digest):
                self._builds.pop(key, None)

    def _release_replaced(self, old: PluginBuild) -> None:
        """A plugin rebuilt in place drops its previous module from the memory cache at once, unless
        another build or an open plugin still uses it: each module holds native code and a memory image
        (an open file), so a watch-and-rebuild loop would otherwise keep one per build until expiry."""
        # A snapshot: another plugin's build may add to the map while this one is being replaced.
        if any(build.digest == old.digest for build in list(self._builds.values()) if build is not old):
            return
        if any(plugin.linked.module is old.module for plugin in self._open_plugins()):
            return
        self.modules.discard(old.digest)

    def _open_plugins(self) -> list[Plugin]:
        with self._lock:
            scopes = list(self._scopes)
        return [plugin for scope in scopes for plugin in scope.open_plugins()]

    def _forget(self, scope: ScopedRuntime) -> None:
        with self._lock:
            self._scopes.discard(scope)

    def close(self) -> None:
        if self.janitor is not None:
            self.janitor.stop()
        with self._lock:
            scopes = list(self._scopes)
            self.closed = True
        for scope in scopes:
            scope.close()
        self.modules.clear()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class ScopedRuntime:
    """Per-test state over a shared Runtime: pools, host-service state, config. A context manager."""

    def __init__(
        self,
        runtime: Runtime,
        *,
        config: Mapping[str, Mapping[str, str]] | None,
        pool: PoolSettings,
        limits: InstanceLimits,
        clock: Clock,
        host_options: HostOptions | None = None,
        clock_driven: bool = False,
        defaults: LoadDefaults | None = None,
    ) -> None:
        self.runtime = runtime
        self.clock_driven = clock_driven
        self.defaults = defaults or LoadDefaults()
        self._warned_keys: set[tuple[str, str]] = set()
        #: Warn when a test gives a key in another case (off for a manager: Navidrome's config file
        #: is case-insensitive by design).
        self.config_case_warnings = True
        self.pool_settings = pool
        self.limits = limits
        self.clock = clock
        # Plugin ids and keys lower-cased: the original's config loader did so (runtime.md §1).
        # Sections are kept as given (a test may keep mutating its dict) and lower-cased when read.
        self.config: dict[str, Mapping[str, str]] = {
            pid: dict(section) for pid, section in (config or {}).items()
        }
        self._lock = threading.Lock()
        self._plugins: list[Plugin] = []
        self._initialised: set[tuple[str, str]] = set()  # (plugin id, version): never a joined string
        #: The host services' settings of this scope (frozen), as its services read them through ``env``.
        self.host_options = host_options if host_options is not None else HostOptions()
        self.env = HostEnvironment(clock=clock, call_plugin=self.call_plugin, options=self.host_options)
        self.closed = False

    @property
    def transcript(self) -> Transcript:
        """Every host call made by this scope's plugins, in order."""
        return self.env.transcript

    def open_plugins(self) -> list[Plugin]:
        with self._lock:
            return list(self._plugins)

    def find(self, plugin_id: str) -> Plugin | None:
        """The newest plugin loaded into this scope under ``plugin_id``."""
        with self._lock:
            for plugin in reversed(self._plugins):
                if plugin.plugin_id == plugin_id:
                    return plugin
        return None

    def call_plugin(self, plugin_id: str, export: str, request: Message) -> Reply:
        """Call back into a plugin of this scope (scheduler firings, websocket messages)."""
        plugin = self.find(plugin_id)
        if plugin is None:
            raise PluginLoadError(
                f"no plugin {plugin_id!r} is loaded in this scope.",
                plugin_id=plugin_id,
                original=f"plugin not registered: {plugin_id}",
                fix="load the plugin into the same runtime scope before its callbacks fire.",
            )
        return plugin.call(export, request)

    def plugin(
        self,
        path: str | Path,
        *,
        plugin_id: str | None = None,
        config: Mapping[str, str] | None = None,
        eager: bool = True,
        init: bool = True,
        permissions: Mapping[str, Any] | None = None,
    ) -> Plugin:
        """Load a plugin into this scope (compiled once per runtime; instances per scope).

        With ``init`` (the default) a plugin declaring LifecycleManagement gets its OnInit call with its
        config once per plugin id and version in this scope, as the original did after compiling it;
        an OnInit failure (which made the original unregister the plugin) raises here.
        """
        if self.closed:
            raise RuntimeError("this runtime scope is closed")
        permissions = self.defaults.permissions_with(permissions)
        build = self.runtime.build(path, plugin_id=plugin_id, permissions=permissions)
        if config is None and not self._has_config(build.plugin_id):
            config = self.defaults.config_for(build.plugin_id)
        if config is not None:
            # The caller's mapping itself, not a copy: later changes are seen live, as in the original.
            self.config[build.plugin_id] = config
            for key in list(config):
                if key.lower() != key:
                    self._warn_key(build.plugin_id, key)
        plugin = Plugin(
            build.source,
            build.linked,
            config=self._config_source(build.plugin_id),
            pool=self.pool_settings,
            limits=self.limits,
            clock=self.clock,
            env=self.env,
            services=self.runtime._services,
            eager=eager,
        )
        with self._lock:
            self._plugins.append(plugin)
        if init:
            self.initialise(plugin)
        return plugin

    def initialise(self, plugin: Plugin) -> bool:
        """OnInit once per plugin id and version in this scope; True if it ran now, raises if it failed."""
        if "LifecycleManagement" not in plugin.manifest.capabilities:
            return False
        key = (plugin.plugin_id, plugin.manifest.version)  # the original joined them with U+200B
        with self._lock:
            if key in self._initialised:
                return False
            self._initialised.add(key)
        config = self.plugin_config(plugin.plugin_id)
        started = host_monotonic()
        try:
            response = plugin.lifecycle_management.on_init(config=config)
        except WasmHostError as exc:
            with self._lock:
                self._initialised.discard(key)
            self.env.transcript.record(
                plugin_id=plugin.plugin_id,
                service="lifecycle",
                function="on_init",
                request=None,
                response=None,
                verdict="error",
                detail=str(exc),
                duration=host_monotonic() - started,
            )
            raise
        self.env.transcript.record(
            plugin_id=plugin.plugin_id,
            service="lifecycle",
            function="on_init",
            request=None,
            response=response,
            verdict="ok",
            duration=host_monotonic() - started,
        )
        return True

    def run_due(self) -> list[Any]:
        """Fire the scheduler jobs that are due by the clock, in due order (tests advance the clock first)."""
        return self.env.run_due()

    def _config_source(self, plugin_id: str) -> Callable[[], Mapping[str, str]]:
        # Read live on every call, as the original's config service did.
        return lambda: self.plugin_config(plugin_id)

    def _has_config(self, plugin_id: str) -> bool:
        wanted = plugin_id.lower()
        return any(pid.lower() == wanted for pid in list(self.config))

    def plugin_config(self, plugin_id: str) -> dict[str, str]:
        """The plugin's config now. Ids and keys match case-insensitively and are seen in lower case:
        Navidrome's configuration loader lower-cases them (runtime.md §1). A key given in another case
        is warned about once per plugin and key, so a test that sets ``apiKey`` learns what it sees."""
        wanted = plugin_id.lower()
        merged: dict[str, str] = {}
        for pid, section in list(self.config.items()):
            if pid.lower() == wanted:
                for key, value in list(section.items()):
                    lowered = key.lower()
                    if lowered != key:
                        self._warn_key(plugin_id, key)
                    merged[lowered] = value
        return merged

    def _warn_key(self, plugin_id: str, key: str) -> None:
        if not self.config_case_warnings:
            return
        with self._lock:
            if (plugin_id, key) in self._warned_keys:
                return
            self._warned_keys.add((plugin_id, key))
        warnings.warn(
            ConfigKeyWarning(
                f"plugin {plugin_id!r} sees the configuration key {key.lower()!r}, not {key!r}: Navidrome "
                f"lower-cases configuration keys. Fix: use {key.lower()!r} in the test; the plugin must "
                "ask for it in lower case too."
            ),
            stacklevel=2,
        )

    def sweep(self) -> int:
        with self._lock:
            plugins = list(self._plugins)
        return sum(p.sweep() for p in plugins) + self.env.sweep()

    def close(self) -> None:
        with self._lock:
            plugins, self._plugins = self._plugins, []
            self.closed = True
        for plugin in plugins:
            plugin.close()
        self.env.close()
        self.runtime._forget(self)

    def __enter__(self) -> ScopedRuntime:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_plugin(
    path: str | Path, *, plugin_id: str | None = None, init: bool = True, **settings: Any
) -> Plugin:
    """Load a plugin folder, an ``.ndp`` package, or a ``.wasm`` with ``manifest.json`` beside it, alone.

    The stand-alone entry point (CLI, simple tests): the plugin gets a private :class:`Runtime` (disk
    compile cache included), closed with the plugin. ``settings`` are ``RuntimeSettings`` fields plus
    ``config`` (the plugin's configuration map). With ``init``, a LifecycleManagement plugin gets its
    OnInit call first, as in production.
    """
    config = settings.pop("config", None)
    runtime = Runtime(RuntimeSettings(**settings))
    try:
        plugin = runtime.default_scope.plugin(path, plugin_id=plugin_id, config=config, init=init)
    except BaseException:
        runtime.close()
        raise
    plugin.close_also(runtime.close)
    return plugin
