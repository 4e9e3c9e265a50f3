"""The one narrow interface between the runtime and wasmtime for calls, and its public-API implementation.

Two operations cross it, and nothing else in the package calls into a guest or defines a host function:

* **bind a host function**: :meth:`CallPath.define` puts a :class:`HostImport` (module, name, wasm
  types, a Python callable taking and returning ints) into a store-independent linker;
* **call a guest export**: :meth:`CallPath.instantiate` turns an ``InstancePre`` and a fresh store into
  :class:`GuestExports`, one instance's exports resolved once: call a function export with integer
  arguments, and read/write/size its ``memory``.

Two implementations exist: :class:`PublicCallPath` here (wasmtime-py's convenience API: ``Func.__call__``,
``Memory.read``/``write``, ``Linker.define_func``) and ``capi.FastCallPath`` (wasmtime's C API through
ctypes: unchecked calls, raw memory pointer, unchecked host functions). Both raise the same exceptions
for the same failures: wasmtime's own ``Trap`` / ``WasmtimeError`` / ``ExitTrap`` objects for guest
failures, the very exception a host callable raised for host failures, and the :class:`AbiError`
texts below, so the instance layer maps them to our errors once, for both paths.

:func:`select_call_path` picks one: an explicit choice, else ``$WASMHOST_FASTPATH`` (``0`` / ``1``), else
the fast path when the installed wasmtime is a version we test, the public path (with one warning) when
it is not.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import wasmtime

from pytest_wasmhost.abi.memory import CallOutcome
from pytest_wasmhost.errors import AbiError
from pytest_wasmhost.runtime.engine import wasmtime_version

__all__ = [
    "FASTPATH_ENV",
    "TESTED_WASMTIME",
    "CallPath",
    "ExportSignature",
    "GuestExports",
    "HostImport",
    "PublicCallPath",
    "WasmType",
    "select_call_path",
]

WasmType = Literal["i32", "i64"]
FASTPATH_ENV: Final = "WASMHOST_FASTPATH"
#: The wasmtime-py releases the fast path is tested with: CI runs the core tests on 50.0.1 (the floor,
#: the dev group's pin) and on the newest the registry serves (51.0.0). A release outside this range
#: takes the public path with one warning (pyproject sets only the floor).
TESTED_WASMTIME: Final = ((50, 0, 1), (52, 0, 0))

#: A host callable: the wasm arguments as Python ints (i32/i64 sign-extended, as wasmtime-py gives
#: them) in, the single result out. Raising aborts the guest call; the caller sees that exception.
HostCallable = Callable[..., int]


@dataclass(frozen=True, slots=True)
class HostImport:
    """One host function to define in a linker: ``module.name`` with wasm types and a Python callable."""

    module: str
    name: str
    params: tuple[WasmType, ...]
    results: tuple[WasmType, ...]
    callback: HostCallable

    def functype(self) -> wasmtime.FuncType:
        # Built per definition, hence per engine: wasmtime-py aborts on a FuncType shared across engines.
        return wasmtime.FuncType([_valtype(t) for t in self.params], [_valtype(t) for t in self.results])


@dataclass(frozen=True, slots=True)
class ExportSignature:
    """A function export's wasm types, as strings (``"i32"``, ``"f64"``, ...) from the compiled module."""

    name: str
    params: tuple[str, ...]
    results: tuple[str, ...]


class GuestExports(Protocol):
    """One live instance's exports, resolved once. Owns the store: ``close`` releases both.

    Not thread-safe (one store = one thread at a time). After ``close`` every method raises
    ``RuntimeError``; none touches freed memory.
    """

    def has_export(self, name: str) -> bool:
        """Whether ``name`` is a function export."""
        ...

    @property
    def has_memory(self) -> bool:
        """Whether the instance exports a linear memory named ``memory``."""
        ...

    def call(self, name: str, args: tuple[int, ...]) -> int | None:
        """Call a function export; its single integer result (signed, as wasm has it), or None."""
        ...

    def method_call(self, export: str, request: bytes) -> CallOutcome | None:
        """``abi.memory.call_method`` done by the backend in one step, or None: then the caller runs
        ``call_method`` itself. A backend that answers must match it exactly (steps, checks, errors)."""
        ...

    def memory_size(self) -> int:
        """Bytes of ``memory`` now (read after every guest call: the guest may grow it)."""
        ...

    def read(self, ptr: int, size: int) -> bytes:
        """Copy ``size`` bytes at ``ptr``; AbiError outside the memory (never reads outside it)."""
        ...

    def write(self, ptr: int, data: bytes) -> None:
        """Copy ``data`` to ``ptr``; AbiError outside the memory (never writes outside it)."""
        ...

    def set_deadline(self, ticks: int) -> None:
        """Arm the store's epoch deadline ``ticks`` after the engine's current epoch."""
        ...

    def guest_ran(self) -> None:
        """The guest ran since the host last looked (a host function was entered): drop cached views."""
        ...

    def close(self) -> None:
        """Invalidate every handle, then delete the store. Idempotent."""
        ...


class CallPath(Protocol):
    """How a linker gets host functions and how an instance's exports are called."""

    name: Literal["public", "fast"]

    def define(self, linker: wasmtime.Linker, imp: HostImport) -> None:
        """Define ``imp`` in ``linker`` (store-independent); wasmtime checks its type at link time."""
        ...

    def instantiate(
        self,
        pre: wasmtime.InstancePre,
        store: wasmtime.Store,
        exports: Iterable[ExportSignature],
        *,
        plugin_id: str,
        memory_fixed: bool = False,
    ) -> GuestExports:
        """Instantiate ``pre`` in ``store`` (which the result then owns) and resolve ``exports``.

        ``memory_fixed``: the store's engine guarantees the instance's memory never moves
        (``engine.memory_is_fixed``), which a backend may use to cache its view of the memory.

        Raises wasmtime's ``Trap`` / ``WasmtimeError`` (or what a host function raised) on failure;
        the caller still owns, and must close, ``store`` then.
        """
        ...


# -- errors both paths raise with the same text ----------------------------------------------------


def closed_error(plugin_id: str) -> RuntimeError:
    return RuntimeError(f"instance of plugin {plugin_id!r} used after close")


def close_in_call_error(plugin_id: str) -> RuntimeError:
    # Deleting a store with its wasm frames still on the stack would free memory they use.
    return RuntimeError(f"instance of plugin {plugin_id!r} cannot be closed from inside one of its calls")


def missing_export_error(plugin_id: str, name: str) -> AbiError:
    return AbiError(
        f"{name} is not exported.",
        plugin_id=plugin_id,
        export=name,
        fix=f"export {name} from the module.",
    )


def not_an_int_error(plugin_id: str, name: str, result: object) -> AbiError:
    return AbiError(
        f"{name} returned {result!r}; expected one integer result.",
        plugin_id=plugin_id,
        export=name,
        fix="check the export's signature against the spec.",
    )


def outside_memory_error(plugin_id: str, op: str, ptr: int, size: int, mem: int) -> AbiError:
    # The ABI layer checks every guest-supplied range first; this is the backstop under it, so a bug
    # above can never turn into a read or write outside the guest's memory.
    return AbiError(
        f"host {op} of {size} bytes at {ptr:#x} lies outside the guest's memory of {mem} bytes.",
        plugin_id=plugin_id,
        fix="this is a bug in pytest-wasmhost (the ABI layer checks ranges first); please report it.",
    )


def arity_error(given: int, expected: int) -> wasmtime.WasmtimeError:
    # wasmtime-py's Func.__call__ wording, so both paths fail alike.
    which = "many" if given > expected else "few"
    return wasmtime.WasmtimeError(f"too {which} parameters provided: given {given}, expected {expected}")


def _valtype(name: WasmType) -> wasmtime.ValType:
    return wasmtime.ValType.i32() if name == "i32" else wasmtime.ValType.i64()


# -- the public-API path ---------------------------------------------------------------------------


class PublicExports:
    """:class:`GuestExports` over wasmtime-py's convenience API (today's code, the reference)."""

    def __init__(self, store: wasmtime.Store, instance: wasmtime.Instance, *, plugin_id: str) -> None:
        self._store: wasmtime.Store | None = store
        self._plugin_id = plugin_id
        self._depth = 0
        self._funcs: dict[str, wasmtime.Func] = {}
        self._memory: wasmtime.Memory | None = None
        exports = instance.exports(store)
        for name in exports:
            item = exports[name]
            if isinstance(item, wasmtime.Func):
                self._funcs[name] = item
            elif isinstance(item, wasmtime.Memory) and name == "memory":
                self._memory = item

    def _live_store(self) -> wasmtime.Store:
        if self._store is None:
            raise closed_error(self._plugin_id)
        return self._store

    def has_export(self, name: str) -> bool:
        return name in self._funcs

    @property
    def has_memory(self) -> bool:
        return self._memory is not None

    def method_call(self, export: str, request: bytes) -> CallOutcome | None:
        return None  # the ABI layer's call_method runs over call/read/write

    def call(self, name: str, args: tuple[int, ...]) -> int | None:
        store = self._live_store()
        func = self._funcs.get(name)
        if func is None:
            raise missing_export_error(self._plugin_id, name)
        self._depth += 1
        try:
            result = func(store, *args)
        finally:
            self._depth -= 1
        if result is None or isinstance(result, int):
            return result
        raise not_an_int_error(self._plugin_id, name, result)

    def _live_memory(self) -> tuple[wasmtime.Store, wasmtime.Memory]:
        store = self._live_store()
        if self._memory is None:
            raise RuntimeError("the instance exports no memory")  # PluginInstance refuses such modules
        return store, self._memory

    def memory_size(self) -> int:
        store, memory = self._live_memory()
        return int(memory.data_len(store))

    def read(self, ptr: int, size: int) -> bytes:
        store, memory = self._live_memory()
        mem = int(memory.data_len(store))
        if ptr < 0 or size < 0 or ptr + size > mem:
            raise outside_memory_error(self._plugin_id, "read", ptr, size, mem)
        return bytes(memory.read(store, ptr, ptr + size))

    def write(self, ptr: int, data: bytes) -> None:
        store, memory = self._live_memory()
        mem = int(memory.data_len(store))
        if ptr < 0 or ptr + len(data) > mem:
            raise outside_memory_error(self._plugin_id, "write", ptr, len(data), mem)
        if data:
            memory.write(store, data, ptr)

    def set_deadline(self, ticks: int) -> None:
        self._live_store().set_epoch_deadline(ticks)

    def guest_ran(self) -> None:
        """Nothing is cached here: every access asks wasmtime."""

    def close(self) -> None:
        if self._depth:
            raise close_in_call_error(self._plugin_id)
        store, self._store = self._store, None
        self._funcs.clear()
        self._memory = None
        if store is not None:
            store.close()


class PublicCallPath:
    """The reference implementation over wasmtime-py's public API."""

    name: Literal["public", "fast"] = "public"

    def define(self, linker: wasmtime.Linker, imp: HostImport) -> None:
        linker.define_func(imp.module, imp.name, imp.functype(), imp.callback)

    def instantiate(
        self,
        pre: wasmtime.InstancePre,
        store: wasmtime.Store,
        exports: Iterable[ExportSignature],
        *,
        plugin_id: str,
        memory_fixed: bool = False,
    ) -> GuestExports:
        instance = pre.instantiate(store)
        return PublicExports(store, instance, plugin_id=plugin_id)


# -- choosing a path -------------------------------------------------------------------------------

_choice_lock = threading.Lock()
_auto_choice: CallPath | None = None  # decided once per process: the installed wasmtime cannot change


def _parse_version(text: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: "50.0.1" -> (50, 0, 1), "51.0.0rc1" -> (51, 0, 0)."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def wasmtime_is_tested(version: str) -> bool:
    """Whether ``version`` of wasmtime-py lies in the range the fast path is tested with."""
    low, high = TESTED_WASMTIME
    return low <= _parse_version(version) < high


def _env_choice(environ: Mapping[str, str]) -> bool | None:
    raw = environ.get(FASTPATH_ENV, "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"${FASTPATH_ENV} must be 0 or 1 (or auto), not {raw!r}")


def _fast() -> CallPath:
    from pytest_wasmhost.runtime import capi  # ctypes declarations load only when the fast path is used

    return capi.FastCallPath()


def select_call_path(fastpath: bool | None = None, *, environ: Mapping[str, str] | None = None) -> CallPath:
    """The call path to use: ``fastpath`` if given, else ``$WASMHOST_FASTPATH``, else by wasmtime version.

    A forced fast path on an untested wasmtime is honoured (the caller asked for it); the automatic
    choice falls back to the public path with one warning per process.
    """
    choice = fastpath if fastpath is not None else _env_choice(os.environ if environ is None else environ)
    if choice is True:
        return _fast()
    if choice is False:
        return PublicCallPath()
    global _auto_choice
    with _choice_lock:
        if _auto_choice is None:
            _auto_choice = _automatic()
        return _auto_choice


def _automatic() -> CallPath:
    version = wasmtime_version()
    if wasmtime_is_tested(version):
        try:
            return _fast()
        except (AttributeError, OSError) as exc:  # a symbol missing from this build of the library
            reason = f"its C API bindings failed to load ({exc})"
    else:
        low, high = (".".join(map(str, v)) for v in TESTED_WASMTIME)
        reason = f"wasmtime {version} is outside the tested range >={low},<{high}"
    warnings.warn(
        f"pytest-wasmhost: using the slower public-API call path because {reason}; "
        f"set {FASTPATH_ENV}=1 to force the fast path.",
        RuntimeWarning,
        stacklevel=3,
    )
    return PublicCallPath()
