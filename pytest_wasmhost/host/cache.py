"""Host service ``cache`` (spec/services/cache.md): a typed TTL cache shared by every plugin of a scope.

The original kept one process-wide TTL cache for all plugins. Here one :class:`CacheStore` per scope (a test,
or the production runtime) plays that part; every plugin's :class:`CacheService` reaches it through
``ctx.env.shared("cache", ...)``. The original stored keys as ``<pluginID>:<key>``, so plugin ``a`` key
``b:c`` and plugin ``a:b`` key ``c`` were one entry (spec "Namespacing"); here each plugin has its own
table, so no plugin id or key can reach another plugin's entries.

Behaviour is the original's: ``ttl_seconds <= 0`` means 24 h; every successful lookup (a typed get, even
one whose type does not match, and ``has``) slides the expiry to *now + the entry's own TTL*; ``set``
overwrites whatever the key held; a typed get answers ``exists=true`` only for the exact stored type.
Expiry is read from the scope's clock at the moment of use: entries are dropped lazily on access and by
:meth:`CacheStore.sweep`.

One addition the original lacked: caps on what the store holds (see :class:`CacheStore`), per plugin and
for the whole scope, set with :class:`CacheOptions` (``HostOptions.cache``): ``plugin_max_entries``
(default 50000), ``plugin_max_bytes`` (16 MiB), ``max_entries`` (200000) and ``max_bytes`` (64 MiB). A set
past a cap answers ``success=false`` (the only refusal the original's ``SetResponse`` can carry; the
original always answered true) and warns the test once per plugin and cap; no live entry is ever evicted
to make room.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from google.protobuf.message import Message

from pytest_wasmhost.abi.proto import cache_pb2
from pytest_wasmhost.clock import Clock
from pytest_wasmhost.host.base import (
    Cap,
    CapWarnings,
    HostEnvironment,
    HostFunction,
    HostService,
    ServiceContext,
    SoftError,
    check_positive,
)

log = logging.getLogger("pytest_wasmhost.host.cache")

SERVICE = "cache"
DEFAULT_TTL_SECONDS = 24 * 60 * 60
_DEFAULT_TTL = float(DEFAULT_TTL_SECONDS)  # one float shared by every entry with the default TTL
DEFAULT_MAX_BYTES = 64 * 1024 * 1024  # every plugin of the scope together
DEFAULT_MAX_ENTRIES = 200_000
DEFAULT_PLUGIN_MAX_BYTES = 16 * 1024 * 1024  # one plugin
DEFAULT_PLUGIN_MAX_ENTRIES = 50_000
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# What an entry costs besides its key and value objects (counted with sys.getsizeof): the _Entry object
# (72 bytes), its expiry float (24), its size int (28), its TTL float unless it is the shared default, and
# its slot in the plugin's dict. Measured once with tracemalloc on CPython 3.11 (1k..150k entries with the
# default TTL: 150..170 bytes per entry, the dict's slack after a resize included) and rounded up, so the
# bound is a bound on the memory the process really spends.
ENTRY_OVERHEAD = 200

CacheValue = str | int | float | bytes
ValueKind = Literal["string", "int64", "float64", "bytes"]


def effective_ttl(ttl_seconds: int) -> float:
    """The original's TTL helper: ``ttl_seconds <= 0`` means 24 h, else exactly that many seconds."""
    return _DEFAULT_TTL if ttl_seconds <= 0 else float(ttl_seconds)


def value_kind(value: CacheValue) -> ValueKind:
    """The wire type a value is stored as; refuses what no ``set_*`` can store."""
    if isinstance(value, bool):  # an int subclass, but the wire has no boolean value
        raise TypeError("a cache value is str, int, float or bytes; got bool")
    if isinstance(value, str):
        return "string"
    if isinstance(value, bytes):
        return "bytes"
    if isinstance(value, float):
        return "float64"
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise ValueError(f"a cache int is an int64; {value} is out of range")
        return "int64"
    raise TypeError(f"a cache value is str, int, float or bytes; got {type(value).__name__}")


def namespaced(plugin_id: str, key: str) -> str:
    """The key as the original spelled it, ``<pluginID>:<key>`` (for messages; never used as a key here)."""
    return f"{plugin_id}:{key}"


def entry_size(key: str, value: CacheValue) -> int:
    """The bytes an entry costs the process: its key and value objects and :data:`ENTRY_OVERHEAD`."""
    return ENTRY_OVERHEAD + sys.getsizeof(key) + sys.getsizeof(value)


@dataclass(frozen=True, slots=True)
class CacheOptions:
    """The store's caps (``HostOptions.cache``); each counts :func:`entry_size` bytes or entries."""

    max_entries: int = DEFAULT_MAX_ENTRIES
    max_bytes: int = DEFAULT_MAX_BYTES
    plugin_max_entries: int = DEFAULT_PLUGIN_MAX_ENTRIES
    plugin_max_bytes: int = DEFAULT_PLUGIN_MAX_BYTES

    def __post_init__(self) -> None:
        for name in ("max_entries", "max_bytes", "plugin_max_entries", "plugin_max_bytes"):
            check_positive("CacheOptions", name, getattr(self, name))

    def cap(self, setting: str) -> Cap:
        unit = "entries" if setting.endswith("entries") else "bytes"
        return Cap(SERVICE, setting, getattr(self, setting), unit, per_plugin=setting.startswith("plugin_"))


@dataclass(slots=True)
class _Entry:
    value: CacheValue
    kind: ValueKind
    ttl: float
    expires_at: float
    size: int

    def expired(self, now: float) -> bool:
        # The original's cache counted an entry expired once its expiry lay *before* now.
        return self.expires_at < now


class _Table:
    """One plugin's entries, and what they cost."""

    __slots__ = ("bytes", "earliest", "entries")

    def __init__(self) -> None:
        self.entries: dict[str, _Entry] = {}
        self.bytes = 0
        # No entry expires before this (expiries only ever move later), so a scan for expired entries
        # is skipped until then: a plugin at its cap pays one check per refused set, not a scan.
        self.earliest = math.inf


class CacheStore:
    """The scope's one cache: every plugin's entries, each plugin in a table of its own. Thread-safe.

    Caps (the original had none), per plugin and for the whole scope: a number of entries and a number of
    bytes, where an entry costs :func:`entry_size` (its key and value objects plus the bookkeeping of one
    entry, so the bound is on the memory the process really spends). A ``set`` that would pass a cap
    first drops the expired entries (of the plugin, or of the scope for a scope cap) and is refused if
    still over it: the key's old value is gone too (after a set the plugin must never read the value it
    meant to replace), nothing else changes, and :meth:`put` names the cap. No live entry is evicted:
    one plugin filling the cache never costs another plugin its data.

    Besides what the service uses, it offers test-facing helpers (:meth:`get`, :meth:`items`,
    :meth:`usage`, :meth:`clear`) that never move an entry's expiry, so looking does not change behaviour.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        options: CacheOptions | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.clock = clock
        self.options = options if options is not None else CacheOptions(max_bytes=max_bytes)
        self.max_bytes = self.options.max_bytes
        self.warnings = CapWarnings()
        self._lock = threading.Lock()
        self._tables: dict[str, _Table] = {}
        self._bytes = 0
        self._count = 0

    # -- what the service does ---------------------------------------------------------------------

    def put(self, plugin_id: str, key: str, value: CacheValue, ttl_seconds: int = 0) -> Cap | None:
        """Store ``value`` under the plugin's key, replacing whatever it held.

        Answers None, or the cap that refused the value (see the class docstring).
        """
        kind = value_kind(value)
        size = entry_size(key, value)
        ttl = effective_ttl(ttl_seconds)
        with self._lock:
            now = self.clock.now()
            table = self._tables.get(plugin_id)
            if table is None:
                table = self._tables[plugin_id] = _Table()
            self._drop(table, key)
            refused = self._refusal(plugin_id, table, size, now)
            if refused is not None:
                if not table.entries:
                    self._tables.pop(plugin_id, None)
                return refused
            self._tables[plugin_id] = table  # again: dropping expired entries may have let it go
            expires_at = now + ttl
            table.entries[key] = _Entry(value, kind, ttl, expires_at, size)
            table.bytes += size
            self._bytes += size
            self._count += 1
            if expires_at < table.earliest:
                table.earliest = expires_at
            return None

    def set(self, plugin_id: str, key: str, value: CacheValue, ttl_seconds: int = 0) -> bool:
        """:meth:`put`, answering whether the value was stored."""
        return self.put(plugin_id, key, value, ttl_seconds) is None

    def lookup(self, plugin_id: str, key: str) -> tuple[ValueKind, CacheValue] | None:
        """The live entry's type and value, sliding its expiry (the original "touched" on every hit)."""
        with self._lock:
            table = self._tables.get(plugin_id)
            entry = None if table is None else table.entries.get(key)
            if entry is None:
                return None
            assert table is not None  # an entry came from it
            now = self.clock.now()
            if entry.expired(now):
                self._drop(table, key)
                return None
            entry.expires_at = now + entry.ttl
            return entry.kind, entry.value

    def remove(self, plugin_id: str, key: str) -> None:
        with self._lock:
            table = self._tables.get(plugin_id)
            if table is not None:
                self._drop(table, key)

    def sweep(self) -> int:
        """Drop every expired entry now; returns how many went (the runtime's janitor calls this)."""
        with self._lock:
            now = self.clock.now()
            return sum(self._expire(plugin_id, now) for plugin_id in list(self._tables))

    # -- test-facing helpers -------------------------------------------------------------------------

    def get(self, plugin_id: str, key: str) -> CacheValue | None:
        """The plugin's live value under ``key``, or None; does not slide the expiry."""
        with self._lock:
            table = self._tables.get(plugin_id)
            entry = None if table is None else table.entries.get(key)
            return None if entry is None or entry.expired(self.clock.now()) else entry.value

    def items(self, plugin_id: str) -> dict[str, CacheValue]:
        """The plugin's live entries by its own key."""
        with self._lock:
            table = self._tables.get(plugin_id)
            if table is None:
                return {}
            now = self.clock.now()
            return {key: entry.value for key, entry in table.entries.items() if not entry.expired(now)}

    def usage(self, plugin_id: str | None = None) -> tuple[int, int]:
        """(entries, bytes) held now by the plugin, or by the whole scope (expired entries not dropped yet
        included)."""
        with self._lock:
            if plugin_id is None:
                return self._count, self._bytes
            table = self._tables.get(plugin_id)
            return (0, 0) if table is None else (len(table.entries), table.bytes)

    def clear(self) -> None:
        with self._lock:
            self._tables.clear()
            self._bytes = 0
            self._count = 0

    def close(self) -> None:
        """The scope is over: nothing is persisted, as in the original."""
        self.clear()

    @property
    def size_bytes(self) -> int:
        """Bytes held now by every plugin (including expired entries not dropped yet)."""
        with self._lock:
            return self._bytes

    # -- internals (lock held) -----------------------------------------------------------------------

    def _drop(self, table: _Table, key: str) -> None:
        entry = table.entries.pop(key, None)
        if entry is not None:
            table.bytes -= entry.size
            self._bytes -= entry.size
            self._count -= 1

    def _expire(self, plugin_id: str, now: float) -> int:
        """Drop the plugin's expired entries (a scan only once one can have expired); how many went."""
        table = self._tables[plugin_id]
        if table.earliest >= now:
            return 0
        expired = [key for key, entry in table.entries.items() if entry.expired(now)]
        for key in expired:
            self._drop(table, key)
        table.earliest = min((entry.expires_at for entry in table.entries.values()), default=math.inf)
        if not table.entries:
            del self._tables[plugin_id]
        elif expired:
            log.debug("cache: dropped %d expired entries of plugin %r", len(expired), plugin_id)
        return len(expired)

    def _over(self, table: _Table, size: int) -> str | None:
        """The first cap a new entry of ``size`` bytes would pass, by setting name."""
        caps = self.options
        if len(table.entries) >= caps.plugin_max_entries:
            return "plugin_max_entries"
        if table.bytes + size > caps.plugin_max_bytes:
            return "plugin_max_bytes"
        if self._count >= caps.max_entries:
            return "max_entries"
        if self._bytes + size > caps.max_bytes:
            return "max_bytes"
        return None

    def _refusal(self, plugin_id: str, table: _Table, size: int, now: float) -> Cap | None:
        over = self._over(table, size)
        if over is None:
            return None
        # Expired entries are no one's data any more: drop them (the plugin's, or every plugin's for a
        # cap of the scope), then look again.
        owners = [plugin_id] if over.startswith("plugin_") else list(self._tables)
        dropped = sum(self._expire(owner, now) for owner in owners)
        if dropped:
            over = self._over(table, size)
        return None if over is None else self.options.cap(over)


def scope_store(env: HostEnvironment) -> CacheStore:
    """The scope's one store, created on first use; what every plugin's service and a test fixture share."""
    return env.shared("cache", lambda: CacheStore(env.clock, options=env.options.of(CacheOptions)))


# Import name, request type, response type; in the original's link order.
_SIGNATURES: tuple[tuple[str, type[Message], type[Message]], ...] = (
    ("set_string", cache_pb2.SetStringRequest, cache_pb2.SetResponse),
    ("get_string", cache_pb2.GetRequest, cache_pb2.GetStringResponse),
    ("set_int", cache_pb2.SetIntRequest, cache_pb2.SetResponse),
    ("get_int", cache_pb2.GetRequest, cache_pb2.GetIntResponse),
    ("set_float", cache_pb2.SetFloatRequest, cache_pb2.SetResponse),
    ("get_float", cache_pb2.GetRequest, cache_pb2.GetFloatResponse),
    ("set_bytes", cache_pb2.SetBytesRequest, cache_pb2.SetResponse),
    ("get_bytes", cache_pb2.GetRequest, cache_pb2.GetBytesResponse),
    ("remove", cache_pb2.RemoveRequest, cache_pb2.RemoveResponse),
    ("has", cache_pb2.HasRequest, cache_pb2.HasResponse),
)


class CacheService(HostService):
    """One plugin's view of the scope's :class:`CacheStore`. No error fields, no hard errors; a set past
    a cap answers ``success=false`` (raised as :class:`SoftError`, so the transcript says why)."""

    name = "cache"
    function_names = tuple(name for name, _, _ in _SIGNATURES)

    @classmethod
    def create(cls, ctx: ServiceContext) -> CacheService:
        return cls(ctx.plugin_id, scope_store(ctx.env))

    def __init__(self, plugin_id: str, store: CacheStore) -> None:
        self.plugin_id = plugin_id
        self.store = store

    # -- set_* ----------------------------------------------------------------------------------------

    def set_string(self, request: cache_pb2.SetStringRequest) -> cache_pb2.SetResponse:
        return self._set(request.key, request.value, request.ttl_seconds)

    def set_int(self, request: cache_pb2.SetIntRequest) -> cache_pb2.SetResponse:
        return self._set(request.key, request.value, request.ttl_seconds)

    def set_float(self, request: cache_pb2.SetFloatRequest) -> cache_pb2.SetResponse:
        return self._set(request.key, request.value, request.ttl_seconds)

    def set_bytes(self, request: cache_pb2.SetBytesRequest) -> cache_pb2.SetResponse:
        return self._set(request.key, request.value, request.ttl_seconds)

    # -- get_* ----------------------------------------------------------------------------------------

    def get_string(self, request: cache_pb2.GetRequest) -> cache_pb2.GetStringResponse:
        value = self._get(request.key, "string")
        if value is None:
            return cache_pb2.GetStringResponse()
        return cache_pb2.GetStringResponse(exists=True, value=cast(str, value))

    def get_int(self, request: cache_pb2.GetRequest) -> cache_pb2.GetIntResponse:
        value = self._get(request.key, "int64")
        if value is None:
            return cache_pb2.GetIntResponse()
        return cache_pb2.GetIntResponse(exists=True, value=cast(int, value))

    def get_float(self, request: cache_pb2.GetRequest) -> cache_pb2.GetFloatResponse:
        value = self._get(request.key, "float64")
        if value is None:
            return cache_pb2.GetFloatResponse()
        return cache_pb2.GetFloatResponse(exists=True, value=cast(float, value))

    def get_bytes(self, request: cache_pb2.GetRequest) -> cache_pb2.GetBytesResponse:
        value = self._get(request.key, "bytes")
        if value is None:
            return cache_pb2.GetBytesResponse()
        return cache_pb2.GetBytesResponse(exists=True, value=cast(bytes, value))

    # -- remove / has ---------------------------------------------------------------------------------

    def remove(self, request: cache_pb2.RemoveRequest) -> cache_pb2.RemoveResponse:
        self.store.remove(self.plugin_id, request.key)
        return cache_pb2.RemoveResponse(success=True)

    def has(self, request: cache_pb2.HasRequest) -> cache_pb2.HasResponse:
        return cache_pb2.HasResponse(exists=self.store.lookup(self.plugin_id, request.key) is not None)

    def functions(self) -> Sequence[HostFunction]:
        return tuple(
            HostFunction(
                service=self.name,
                name=name,
                request_type=request_type,
                response_type=response_type,
                handler=getattr(self, name),
            )
            for name, request_type, response_type in _SIGNATURES
        )

    # -- internals ------------------------------------------------------------------------------------

    def _set(self, key: str, value: CacheValue, ttl_seconds: int) -> cache_pb2.SetResponse:
        refused = self.store.put(self.plugin_id, key, value, ttl_seconds)
        if refused is None:
            return cache_pb2.SetResponse(success=True)
        self.store.warnings.warn(
            self.plugin_id,
            refused,
            "its set_* calls answer success=false (nothing stored) until entries expire or are removed",
        )
        detail = f"cache: {key!r} not stored: {refused.reached()}"
        raise SoftError(cache_pb2.SetResponse(success=False), detail)

    def _get(self, key: str, kind: ValueKind) -> CacheValue | None:
        found = self.store.lookup(self.plugin_id, key)  # slides the expiry even when the type differs
        if found is None:
            return None
        stored_kind, value = found
        if stored_kind != kind:
            log.debug(
                "cache: plugin %r read key %r as %s, but it holds a %s",
                self.plugin_id,
                key,
                kind,
                stored_kind,
            )
            return None
        return value
