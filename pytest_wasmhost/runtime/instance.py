"""Compile, link and instantiate a plugin module; call its exports; turn every failure into our errors.

:class:`LinkedPlugin` is the per-plugin product of compile + link: a wasmtime module, a linker holding
WASI (with the original's fake clocks and deterministic random shadowed in) and only the host
functions of the services the manifest grants, and an ``InstancePre`` so instantiation does not
re-resolve imports. :class:`PluginInstance` is one store + instance, used by one thread at a time; it
implements :class:`~pytest_wasmhost.abi.memory.GuestAccess`.

Calling exports and defining host functions go through one narrow interface,
:class:`~pytest_wasmhost.runtime.callpath.CallPath`, chosen per linked plugin: the C-API fast path
(:mod:`.capi`) or wasmtime-py's public API. Both raise the same wasmtime objects for the same failures;
this module maps them to our errors once (:meth:`PluginInstance._failure`).

Host functions and WASI shims are defined once on the linker (store-independent), so they find the
instance they serve through a thread-local "active instance": a store runs on one thread at a time
and every guest->host call happens synchronously inside one of our guest calls.
"""

from __future__ import annotations

import logging
import struct
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

import wasmtime

from pytest_wasmhost.abi.memory import CallOutcome, call_method
from pytest_wasmhost.errors import (
    AbiError,
    PluginLoadError,
    PluginMemoryError,
    PluginTimeout,
    PluginTrap,
    WasmHostError,
)
from pytest_wasmhost.host.base import (
    HOST_MODULE,
    HostBinding,
    HostHardError,
    dispatch,
    grant_fix,
    service_of,
)
from pytest_wasmhost.runtime.callpath import (
    CallPath,
    ExportSignature,
    GuestExports,
    HostImport,
    closed_error,
)
from pytest_wasmhost.runtime.callpath_select import select_call_path
from pytest_wasmhost.runtime.engine import deadline_ticks, memory_is_fixed
from pytest_wasmhost.runtime.wasi import (
    ERRNO_BADF,
    ERRNO_FAULT,
    ERRNO_INVAL,
    ERRNO_SUCCESS,
    WASI_MODULE,
    GuestWorld,
    WasiOptions,
)

log = logging.getLogger("pytest_wasmhost.runtime.instance")


class _ActiveInstance(threading.local):
    """Per thread: the instance whose guest call is running (host functions find it here)."""

    instance: PluginInstance | None = None


_active = _ActiveInstance()


def _entered_instance() -> PluginInstance:
    """The instance whose guest just called a host function (every host callable starts here).

    The guest ran since the host last looked at its memory, so cached memory views are dropped.
    """
    inst = _active.instance
    if inst is None:  # only reachable if wasmtime called a host function outside our calls
        raise RuntimeError("host function called with no active plugin instance on this thread")
    inst._guest.guest_ran()
    return inst


@dataclass(frozen=True, slots=True)
class ExportInfo:
    name: str
    kind: str  # "func", "memory", "global", "table"
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()

    def signature(self) -> str:
        return f"({', '.join(self.params)}) -> ({', '.join(self.results)})"


@dataclass(frozen=True, slots=True)
class ImportInfo:
    module: str
    name: str
    kind: str
    params: tuple[str, ...] = ()
    results: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class InstanceLimits:
    """Per-instance guards the original did not have: a call deadline and a linear-memory cap."""

    call_timeout: float = 30.0  # seconds per top-level guest call (generous: a plugin doing real work)
    memory_limit: int | None = 512 * 1024 * 1024  # bytes of linear memory; None = wasm's 4 GiB


def _valtypes(types: Sequence[wasmtime.ValType]) -> tuple[str, ...]:
    return tuple(str(t) for t in types)


Description = tuple[tuple[ImportInfo, ...], tuple[ExportInfo, ...]]

# Per compiled module: describing one through wasmtime-py's type objects takes about 1 ms for a Go
# plugin, and every link and load check asks. The disk cache seeds it from an artifact's seal.
_descriptions: weakref.WeakKeyDictionary[wasmtime.Module, Description] = weakref.WeakKeyDictionary()


def remember_description(module: wasmtime.Module, description: Description) -> None:
    """Record what ``describe_module(module)`` returns (the disk cache knows it from the seal)."""
    _descriptions[module] = description


def describe_module(module: wasmtime.Module) -> Description:
    """Imports and exports of a compiled module, as plain values (used by load checks and inspect)."""
    known = _descriptions.get(module)
    if known is not None:
        return known
    imports: list[ImportInfo] = []
    for imp in module.imports:
        ty = imp.type
        if isinstance(ty, wasmtime.FuncType):
            imports.append(
                ImportInfo(imp.module, imp.name or "", "func", _valtypes(ty.params), _valtypes(ty.results))
            )
        else:
            imports.append(
                ImportInfo(imp.module, imp.name or "", type(ty).__name__.replace("Type", "").lower())
            )
    exports: list[ExportInfo] = []
    for exp in module.exports:
        ty = exp.type
        if isinstance(ty, wasmtime.FuncType):
            exports.append(ExportInfo(exp.name, "func", _valtypes(ty.params), _valtypes(ty.results)))
        else:
            exports.append(ExportInfo(exp.name, type(ty).__name__.replace("Type", "").lower()))
    description = (tuple(imports), tuple(exports))
    _descriptions[module] = description
    return description


def compile_module(engine: wasmtime.Engine, wasm: bytes, *, plugin_id: str) -> wasmtime.Module:
    """Compile wasm bytes; a broken module is a PluginLoadError, never a wasmtime exception."""
    try:
        return wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        cause = wasmtime_error_text(exc)
        raise PluginLoadError(
            f"plugin.wasm is not a valid WebAssembly module: {cause}.",
            plugin_id=plugin_id,
            original=f"failed to compile WASM for plugin {plugin_id}: {cause}",
            fix="rebuild it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (or your toolchain's "
            "wasm32-wasi reactor target).",
        ) from exc


def wasmtime_error_text(exc: Exception, *, drop_prefixes: tuple[str, ...] = ()) -> str:
    """wasmtime's multi-line "X\n\nCaused by:\n    Y" as one line: "X: Y" (minus lines to drop)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    kept = [line for line in lines if line and line != "Caused by:" and not line.startswith(drop_prefixes)]
    return ": ".join(kept) or "unknown error"


_I32_PAIR_TO_I64 = (("i32", "i32"), ("i64",))


_linkers: weakref.WeakKeyDictionary[wasmtime.Engine, dict[tuple[type, frozenset[str]], wasmtime.Linker]] = (
    weakref.WeakKeyDictionary()
)
_linkers_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class LinkProblem:
    """Why a module cannot be instantiated: kept by its LinkedPlugin and raised by every call."""

    problem: str
    import_name: str | None = None
    permission: str | None = None
    original: str | None = None
    fix: str | None = None


class LinkedPlugin:
    """A compiled plugin module linked against WASI and exactly the granted host services."""

    def __init__(
        self,
        *,
        plugin_id: str,
        engine: wasmtime.Engine,
        module: wasmtime.Module,
        granted: Sequence[str],
        implemented: Mapping[str, Sequence[str]],
        wasi: WasiOptions = WasiOptions(),
        fastpath: bool | None = None,
    ) -> None:
        self.plugin_id = plugin_id
        self.engine = engine
        self.module = module
        self.granted = tuple(granted)
        self.wasi = wasi
        # None: $WASMHOST_FASTPATH, else the fast path on a tested wasmtime (see callpath_select).
        self.call_path: CallPath = select_call_path(fastpath)
        self.imports, self.exports = describe_module(module)
        self.export_map: Mapping[str, ExportInfo] = {e.name: e for e in self.exports}
        self.signatures = tuple(
            ExportSignature(e.name, e.params, e.results) for e in self.exports if e.kind == "func"
        )
        # Only functions of granted services that this version implements are linked; instances bind
        # them to the service objects of their scope (fresh state per test, shared compiled code).
        self.linked_functions: frozenset[str] = frozenset(
            fn for service in self.granted for fn in implemented.get(service, ())
        )
        # The original linked at instantiation: a module whose imports cannot be linked still compiles,
        # is listed and loads, and every call to it fails (abi.md §8). So the problems are kept, not raised;
        # the first is what every call reports.
        self.import_problems: tuple[LinkProblem, ...] = tuple(
            problem for problem in map(self._import_problem, self.imports) if problem is not None
        )
        self.link_error: LinkProblem | None = self.import_problems[0] if self.import_problems else None
        self._instance_pre: wasmtime.InstancePre | None = None
        if self.link_error is None:
            self.linker = self._build_linker()
            try:
                self._instance_pre = self.linker.instantiate_pre(module)
            except wasmtime.WasmtimeError as exc:
                self.link_error = LinkProblem(
                    f"the module cannot be linked: {exc}",
                    original=str(exc),
                    fix="import only wasi_snapshot_preview1 functions and env functions of granted services.",
                )

    @property
    def instance_pre(self) -> wasmtime.InstancePre:
        if self._instance_pre is None:
            raise self.link_failure()
        return self._instance_pre

    def link_failure(self, *, export: str | None = None, capability: str | None = None) -> PluginLoadError:
        """The error every instantiation of an unlinkable module raises (a new one per call site).

        ``original`` is the original host's text for a capability call, which failed to load its
        instance: ``baseCapability: failed to load instance for <id>_<Capability>: <link error>``.
        """
        problem = self.link_error
        if problem is None:
            raise RuntimeError("the module links")
        original = problem.original
        if capability is not None and original is not None:
            instance = f"{self.plugin_id}_{capability}"
            original = f"baseCapability: failed to load instance for {instance}: {original}"
        return PluginLoadError(
            problem.problem,
            plugin_id=self.plugin_id,
            export=export,
            import_name=problem.import_name,
            permission=problem.permission,
            original=original,
            fix=problem.fix,
        )

    # -- linking ---------------------------------------------------------------------------------

    def _import_problem(self, imp: ImportInfo) -> LinkProblem | None:
        """Why the original would have failed to link ``imp`` (with the permission to add), or None."""
        if imp.module == WASI_MODULE:
            return None  # wasmtime's WASI knows every preview-1 name; a bad one fails at link time
        qualified = f"{imp.module}.{imp.name}"
        if imp.module != HOST_MODULE:
            return LinkProblem(
                f"the module imports {qualified}, but the host provides only the modules "
                f"{HOST_MODULE!r} and {WASI_MODULE!r}.",
                import_name=qualified,
                fix="build against the plugin API of the original host (host functions live in env).",
            )
        service = service_of(imp.name)
        not_exported = f"import func[env.{imp.name}]: function not exported in module env"
        if service is None:
            return LinkProblem(
                f"the module imports env.{imp.name}, which no host service provides.",
                import_name=qualified,
                original=not_exported,
                fix="remove the import; host functions are listed in the spec's abi.md §5.",
            )
        if service not in self.granted:
            return LinkProblem(
                f"the module imports env.{imp.name} from the {service!r} host service, but manifest.json "
                f"does not grant the {service!r} permission, so the host cannot instantiate the module "
                "and every call to this plugin fails (as in the original).",
                import_name=qualified,
                permission=service,
                original=not_exported,
                fix=grant_fix(service, (i.name for i in self.imports if i.module == HOST_MODULE)),
            )
        if imp.name not in self.linked_functions:
            return LinkProblem(
                f"the module imports env.{imp.name} ({service}); that permission is granted, but this "
                "version of pytest-wasmhost does not provide that host service yet.",
                import_name=qualified,
                permission=service,
                fix="upgrade pytest-wasmhost, or test the parts of the plugin that do not use it.",
            )
        if (imp.kind, (imp.params, imp.results)) != ("func", _I32_PAIR_TO_I64):
            return LinkProblem(
                f"the module imports env.{imp.name} as {imp.kind} {imp.params} -> {imp.results}; host "
                "functions have the signature (i32, i32) -> i64.",
                import_name=qualified,
                fix="declare the import as (offset i32, size i32) -> i64, as the go-plugin glue does.",
            )
        return None

    def _build_linker(self) -> wasmtime.Linker:
        # A linker depends only on the engine, the call path and the linked functions (its host
        # functions find their instance at call time), so plugins with the same grants share one.
        key = (type(self.call_path), self.linked_functions)
        with _linkers_lock:
            per_engine = _linkers.setdefault(self.engine, {})
            linker = per_engine.get(key)
            if linker is None:
                linker = per_engine[key] = self._new_linker()
            return linker

    def _new_linker(self) -> wasmtime.Linker:
        linker = wasmtime.Linker(self.engine)
        linker.define_wasi()
        linker.allow_shadowing = True  # our clock/random shims replace wasmtime's real ones
        define = self.call_path.define
        define(
            linker,
            HostImport(WASI_MODULE, "clock_time_get", ("i32", "i64", "i32"), ("i32",), _wasi_clock_time_get),
        )
        define(linker, HostImport(WASI_MODULE, "random_get", ("i32", "i32"), ("i32",), _wasi_random_get))
        # Output is captured synchronously on the calling thread. wasmtime's custom stdout/stderr
        # callbacks run on its own worker threads, which crash the process when they call back into
        # a Python interpreter that is shutting down.
        define(
            linker,
            HostImport(WASI_MODULE, "fd_write", ("i32", "i32", "i32", "i32"), ("i32",), _wasi_fd_write),
        )
        for name in sorted(self.linked_functions):
            define(linker, HostImport(HOST_MODULE, name, ("i32", "i32"), ("i64",), _host_trampoline(name)))
        return linker

    def instantiate(
        self, host: HostBinding | None = None, limits: InstanceLimits = InstanceLimits()
    ) -> PluginInstance:
        if self.link_error is not None:
            raise self.link_failure()
        return PluginInstance(self, host=host or HostBinding(self.plugin_id, {}), limits=limits)


def _wasi_clock_time_get(clock_id: int, _precision: int, result_ptr: int) -> int:
    # Go's runtime reads the clock in nearly every call (its free does): _entered_instance() is
    # written out, and the write's own range check stands for a separate one.
    inst = _active.instance
    if inst is None:
        inst = _entered_instance()  # raises
    inst._guest.guest_ran()
    value = inst.world.clock_ns(clock_id)
    if value is None:
        return ERRNO_INVAL
    try:
        inst.write_memory(result_ptr, (value & 0xFFFF_FFFF_FFFF_FFFF).to_bytes(8, "little"))
    except AbiError:  # the 8 bytes do not fit in the guest's memory
        return ERRNO_FAULT
    return ERRNO_SUCCESS


def _wasi_random_get(buf: int, length: int) -> int:
    inst = _entered_instance()
    if buf < 0 or length < 0 or buf + length > inst.memory_size():
        return ERRNO_FAULT
    if length:
        inst.write_memory(buf, inst.world.random_bytes(length))
    return ERRNO_SUCCESS


def _wasi_fd_write(fd: int, iovs: int, iovs_len: int, nwritten_ptr: int) -> int:
    inst = _entered_instance()
    sink = {1: inst.world.stdout, 2: inst.world.stderr}.get(fd)
    if sink is None:
        return ERRNO_BADF  # no files are open in the original's WASI world
    mem = inst.memory_size()
    if iovs < 0 or iovs_len < 0 or iovs + 8 * iovs_len > mem or nwritten_ptr < 0 or nwritten_ptr + 4 > mem:
        return ERRNO_FAULT
    table = inst.read_memory(iovs, 8 * iovs_len)
    total = 0
    for i in range(iovs_len):
        ptr, length = struct.unpack_from("<II", table, 8 * i)
        if ptr + length > mem:
            return ERRNO_FAULT
        if length:
            sink.write(inst.read_memory(ptr, length))
        total += length
    inst.write_memory(nwritten_ptr, struct.pack("<I", total & 0xFFFF_FFFF))
    return ERRNO_SUCCESS


def _host_trampoline(name: str) -> Callable[[int, int], int]:
    def call(offset: int, size: int) -> int:
        inst = _active.instance  # _entered_instance() written out: this is every host call's path
        if inst is None:
            inst = _entered_instance()  # raises
        inst._guest.guest_ran()
        fn = inst.host.functions.get(name)
        if fn is None:  # linked but not bound: the scope that made this instance lacks the service
            raise HostHardError(service_of(name) or "?", name, "the service is not bound to this instance")
        return dispatch(inst, fn, offset & 0xFFFF_FFFF, size & 0xFFFF_FFFF, binding=inst.host)

    call.__name__ = f"env.{name}"
    return call


class _NotStarted:
    """The GuestExports of an instance still being built: nothing to call yet."""

    has_memory = False

    def has_export(self, name: str) -> bool:
        return False

    def call(self, name: str, args: tuple[int, ...]) -> int | None:
        raise RuntimeError("the instance is not started")

    def method_call(self, export: str, request: bytes) -> CallOutcome | None:
        raise RuntimeError("the instance is not started")

    def memory_size(self) -> int:
        raise RuntimeError("the instance is not started")

    def read(self, ptr: int, size: int) -> bytes:
        raise RuntimeError("the instance is not started")

    def write(self, ptr: int, data: bytes) -> None:
        raise RuntimeError("the instance is not started")

    def set_deadline(self, ticks: int) -> None:
        """Construction arms the store itself."""

    def guest_ran(self) -> None:
        """Nothing cached."""

    def close(self) -> None:
        """Construction closes the store itself."""


class PluginInstance:
    """One store + instance of a plugin. Not thread-safe: one holder at a time (the pool's job).

    Implements :class:`~pytest_wasmhost.abi.memory.GuestAccess`: ``call_export``, ``memory_size``,
    ``read_memory`` and ``write_memory`` are the backend's own bound methods (they run several times
    per call, so no delegating frame sits in between). A constructed instance is initialised
    (``_initialize`` has run) and its exports are resolved, so the pool stores it ready to call.
    """

    call_export: Callable[[str, tuple[int, ...]], int | None]
    method_call: Callable[[str, bytes], CallOutcome | None]
    _set_deadline: Callable[[int], None]
    memory_size: Callable[[], int]
    read_memory: Callable[[int, int], bytes]
    write_memory: Callable[[int, bytes], None]

    def __init__(
        self,
        linked: LinkedPlugin,
        *,
        host: HostBinding,
        limits: InstanceLimits = InstanceLimits(),
    ) -> None:
        self.linked = linked
        self.plugin_id = linked.plugin_id
        self.host = host
        self.limits = limits
        self.world = GuestWorld(linked.wasi)
        self.dead = False
        self.closed = False
        self.checked_capabilities: set[str] = set()
        self._default_ticks = deadline_ticks(limits.call_timeout)
        self._spare: _Activation | None = None
        self._bind(_NotStarted())
        store = wasmtime.Store(linked.engine)
        try:
            if limits.memory_limit is not None:
                store.set_limits(memory_size=limits.memory_limit)
            # No args, env, preopens or stdin: the original's world (fd_write is shadowed for capture).
            store.set_wasi(wasmtime.WasiConfig())
            store.set_epoch_deadline(self._default_ticks)  # the start function runs under the deadline
            with self._activation("instantiate", loading=True):
                self._bind(
                    linked.call_path.instantiate(
                        linked.instance_pre,
                        store,
                        linked.signatures,
                        plugin_id=self.plugin_id,
                        memory_fixed=memory_is_fixed(linked.engine),
                    )
                )
        except BaseException:
            store.close()
            raise
        try:
            if not self._guest.has_memory:
                raise PluginLoadError(
                    "the module exports no linear memory named 'memory'.",
                    plugin_id=self.plugin_id,
                    fix="export the module's memory as 'memory' (Go and wasi-libc toolchains do by default).",
                )
            if self._guest.has_export("_initialize"):
                with self._activation("_initialize", loading=True):
                    self._guest.call("_initialize", ())
        except BaseException:
            self.close()
            raise

    def _bind(self, guest: GuestExports) -> None:
        self._guest = guest
        self.call_export = guest.call
        self.method_call = guest.method_call
        self._set_deadline = guest.set_deadline
        self.memory_size = guest.memory_size
        self.read_memory = guest.read
        self.write_memory = guest.write

    def has_export(self, name: str) -> bool:
        return self._guest.has_export(name)

    # -- calling ---------------------------------------------------------------------------------

    def run_method(self, export: str, request: bytes, timeout: float | None = None) -> CallOutcome:
        """One capability method call, start to end: what ``with activate(export): call_method(...)``
        does, in one frame (this is every plugin call's path). The backend's one-step round trip is
        used where it has one (``GuestExports.method_call``), else ``abi.memory.call_method``."""
        if self.closed:
            raise closed_error(self.plugin_id)
        self._set_deadline(self._default_ticks if timeout is None else deadline_ticks(timeout))
        previous = _active.instance
        _active.instance = self
        try:
            return self.method_call(export, request) or call_method(self, export, request)
        except BaseException as exc:
            seconds = self.limits.call_timeout if timeout is None else timeout
            mapped = self._failure(exc, export, loading=False, seconds=seconds)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            _active.instance = previous

    def activate(self, export: str, *, timeout: float | None = None) -> _Activation:
        """Run one top-level guest call for ``export`` under its deadline; failures become ours.

        ``timeout`` overrides the instance's call deadline for this call (seconds). Use as ``with``.
        """
        activation = self._spare
        if activation is None:  # first use, or a nested activation while the spare is in use
            return _Activation(self, export, False, timeout)
        self._spare = None
        activation._export = export
        activation._timeout = timeout
        return activation

    def _activation(self, export: str, *, loading: bool) -> _Activation:
        return _Activation(self, export, loading, None)

    def _failure(
        self, exc: BaseException, export: str, *, loading: bool, seconds: float
    ) -> BaseException | None:
        """The error of ours that ``exc`` (raised by a guest call for ``export``) becomes.

        None means "let ``exc`` itself propagate". Every failure mapped here marks the instance dead;
        anything else (a bug, KeyboardInterrupt) passes through as it is (the pool's lease discards the
        instance for any exception anyway).
        """
        if isinstance(exc, PluginLoadError):
            self.dead = True
            return None
        if isinstance(exc, AbiError):
            self.dead = True
            return self._memory_error(export, str(exc.problem)) if self._near_memory_cap() else None
        if isinstance(exc, WasmHostError):
            self.dead = True
            return None
        if isinstance(exc, HostHardError):
            self.dead = True
            cause = exc.__cause__
            if isinstance(cause, wasmtime.Trap) and cause.trap_code == wasmtime.TrapCode.INTERRUPT:
                # The deadline fired in a guest call the host made (its malloc for a response).
                return self._trap_error(cause, export, loading=loading, seconds=seconds)
            if self._near_memory_cap():
                return self._memory_error(export, exc.message)
            return PluginTrap(
                f"{exc}; the original host aborts the whole plugin call on this hard error.",
                plugin_id=self.plugin_id,
                export=export,
                stderr=self.world.stderr.text(),
                fix="see the host service's rules in the spec; the plugin's request is the usual cause.",
            )
        if isinstance(exc, wasmtime.ExitTrap):
            self.dead = True
            if loading:
                return PluginLoadError(
                    f"the module called proc_exit({exc.code}) while starting ({export}).",
                    plugin_id=self.plugin_id,
                    export=export,
                    original=f"unexpected exit_code: {exc.code}",
                    fix="plugins are WASI reactors: build with -buildmode=c-shared (Go) or "
                    "-mexec-model=reactor (C) so that _initialize returns instead of exiting.",
                )
            return PluginTrap(
                f"the guest called proc_exit({exc.code}); the instance is dead.",
                plugin_id=self.plugin_id,
                export=export,
                stderr=self.world.stderr.text(),
                fix="do not exit from an export; return an error instead.",
            )
        if isinstance(exc, wasmtime.Trap):
            self.dead = True
            return self._trap_error(exc, export, loading=loading, seconds=seconds)
        if isinstance(exc, wasmtime.WasmtimeError):
            self.dead = True
            if loading and "maximum concurrent limit" in str(exc):  # the pooling allocator is full
                return PluginLoadError(
                    f"no free instance slot: {str(exc).strip().splitlines()[0]} "
                    "(every live instance of every plugin on this engine holds one, idle pooled ones too).",
                    plugin_id=self.plugin_id,
                    export=export,
                    fix="close plugins and runtimes you no longer use (or lower PoolSettings.idle_size), or "
                    "raise the slot count: RuntimeSettings(engine=EngineSettings(instance_slots=...)); "
                    "instance_slots=None allocates instances on demand.",
                )
            if loading and "memory" in str(exc) and self.limits.memory_limit is not None:
                return self._memory_error(export, str(exc).strip().splitlines()[0])
            if loading:
                return PluginLoadError(
                    f"instantiation failed: {exc}",
                    plugin_id=self.plugin_id,
                    export=export,
                    fix="check the module's imports against the granted permissions.",
                )
            return PluginTrap(
                f"the call failed inside wasmtime: {exc}",
                plugin_id=self.plugin_id,
                export=export,
                stderr=self.world.stderr.text(),
            )
        return None

    def _trap_error(self, exc: wasmtime.Trap, export: str, *, loading: bool, seconds: float) -> WasmHostError:
        frames = tuple(_frame_text(f) for f in exc.frames)
        stderr = self.world.stderr.text()
        if exc.trap_code == wasmtime.TrapCode.INTERRUPT:
            return PluginTimeout(
                f"the call ran past its deadline of {seconds:g}s and was stopped"
                + (f" (last frames: {', '.join(frames[:3])})" if frames else "")
                + ".",
                plugin_id=self.plugin_id,
                export=export,
                fix="look for a loop that never ends or a blocking wait in the plugin; if the work is "
                "legitimately slow, raise the deadline (call_timeout / --wasm-call-timeout).",
            )
        if self._near_memory_cap():
            return self._memory_error(export, exc.message)
        problem = f"the guest trapped: {exc.message}"
        if loading:
            return PluginLoadError(
                f"{problem} (while starting: {export})",
                plugin_id=self.plugin_id,
                export=export,
                fix="see the plugin's stderr below; the module's start code failed.\n" + stderr,
            )
        return PluginTrap(
            problem,
            plugin_id=self.plugin_id,
            export=export,
            backtrace=frames,
            stderr=stderr,
            fix=_trap_fix(stderr),
        )

    def _near_memory_cap(self) -> bool:
        """True when the guest's memory cannot grow by another 64 KiB page: it failed because it was full."""
        limit = self.limits.memory_limit
        if limit is None or not self._guest.has_memory:
            return False
        try:
            return self.memory_size() + 65536 > limit
        except Exception:
            return False

    def _memory_error(self, export: str, cause: str) -> PluginMemoryError:
        limit = self.limits.memory_limit or 0
        return PluginMemoryError(
            f"the guest ran out of linear memory at the cap of {limit // (1024 * 1024)} MiB ({cause}).",
            plugin_id=self.plugin_id,
            export=export,
            fix="look for unbounded growth (caches, leaked buffers); if the plugin needs more, raise the cap "
            "(memory_limit / --wasm-memory-limit).",
        )

    def close(self) -> None:
        """Drop the store; the instance cannot be used again (every use raises, none can crash)."""
        if self.closed:
            return
        self._guest.close()  # refuses (raises) while one of this instance's calls is running
        self.closed = True


class _Activation:
    """The context of one top-level guest call: deadline armed, active instance set, failures mapped.

    A small class rather than a generator context manager, and one kept per instance for reuse: it
    runs on every call (about 0.3 us each for a generator and for a new object, measured).
    """

    __slots__ = ("_export", "_inst", "_loading", "_previous", "_timeout")

    def __init__(self, inst: PluginInstance, export: str, loading: bool, timeout: float | None) -> None:
        self._inst = inst
        self._export = export
        self._loading = loading
        self._timeout = timeout
        self._previous: PluginInstance | None = None

    def __enter__(self) -> None:
        inst = self._inst
        if inst.closed:
            raise closed_error(inst.plugin_id)
        timeout = self._timeout
        # Set before every top-level call: the deadline counts from now, not from the store's birth.
        inst._guest.set_deadline(inst._default_ticks if timeout is None else deadline_ticks(timeout))
        self._previous = _active.instance
        _active.instance = inst

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        _active.instance = self._previous
        self._previous = None
        inst = self._inst
        if not self._loading:
            inst._spare = self  # done with it: the next activate() may take it again
        if exc is None:
            return False
        seconds = inst.limits.call_timeout if self._timeout is None else self._timeout
        mapped = inst._failure(exc, self._export, loading=self._loading, seconds=seconds)
        if mapped is None:
            return False  # the original exception propagates
        raise mapped from exc


def _frame_text(frame: wasmtime.Frame) -> str:
    name = frame.func_name or f"func[{frame.func_index}]"
    module = frame.module_name or "<module>"
    return f"{module}!{name}"


def _trap_fix(stderr: str) -> str:
    if "panic:" in stderr:
        return "the Go code panicked; the panic and its stack are in the plugin's stderr."
    return "find the failing code from the wasm backtrace and the plugin's stderr."
