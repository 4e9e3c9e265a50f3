"""Host service ``cache`` (spec/services/cache.md): a typed TTL cache shared by every plugin of a scope.

The original kept one process-wide TTL cache for all plugins. Here one :class:`CacheStore` per scope (a test,
or the production runtime) plays that part; every plugin's :class:`CacheService` reaches it through
``ctx.env.shared("cache", ...)``. Keys are stored as ``<pluginID>:<key>`` exactly as the original stored
them, so its (harmless) collision case is kept too.

Behaviour is the original's: ``ttl_seconds <= 0`` means 24 h; every successful lookup (a typed get, even
one whose type does not match, and ``has``) slides the expiry to *now + the entry's own TTL*; ``set``
overwrites whatever the key held and answers ``success=true``; a typed get answers ``exists=true`` only
for the exact stored type. Expiry is read from the scope's clock at the moment of use: entries are
dropped lazily on access and by :meth:`CacheStore.sweep`.

One addition the original lacked: a size bound (see :class:`CacheStore`), set with
``options["cache"]["max_bytes"]`` (default 64 MiB per scope).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from google.protobuf.message import Message

from pytest_wasmhost.abi.proto import cache_pb2
from pytest_wasmhost.clock import Clock
from pytest_wasmhost.host.base import HostEnvironment, HostFunction, HostService, ServiceContext

log = logging.getLogger("pytest_wasmhost.host.cache")

DEFAULT_TTL_SECONDS = 24 * 60 * 60
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
# int64 and float64 values count as 8 bytes each towards the size bound.
_NUMBER_SIZE = 8

CacheValue = str | int | float | bytes
ValueKind = Literal["string", "int64", "float64", "bytes"]


def effective_ttl(ttl_seconds: int) -> float:
    """The original's TTL helper: ``ttl_seconds <= 0`` means 24 h, else exactly that many seconds."""
    return float(DEFAULT_TTL_SECONDS if ttl_seconds <= 0 else ttl_seconds)


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
    """The key as the original stored it."""
    return f"{plugin_id}:{key}"


def max_bytes_option(options: Mapping[str, Any]) -> int:
    """``options["cache"]["max_bytes"]``: a positive number of bytes, default 64 MiB."""
    value = (options.get("cache") or {}).get("max_bytes")
    if value is None:
        return DEFAULT_MAX_BYTES
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"options['cache']['max_bytes'] must be a positive number of bytes, got {value!r}")
    return value


def _entry_size(full_key: str, value: CacheValue) -> int:
    size = len(full_key.encode("utf-8", "surrogatepass"))
    if isinstance(value, str):
        return size + len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes):
        return size + len(value)
    return size + _NUMBER_SIZE


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


class CacheStore:
    """The scope's one cache: all plugins' entries, keyed ``<pluginID>:<key>``. Thread-safe.

    Size bound (the original had none): the total of key bytes (UTF-8 of the namespaced key) plus value
    bytes (UTF-8 of a string, the bytes themselves, 8 for an int or float) stays <= ``max_bytes``. When a
    ``set`` would exceed it, expired entries go first, then the least recently used ones (set or read),
    until the new entry fits; each eviction is logged at debug level. An entry larger than the whole
    bound is not stored (see :meth:`set`).

    Besides what the service uses, it offers test-facing helpers (:meth:`get`, :meth:`items`,
    :meth:`clear`) that never move an entry's expiry or recency, so looking does not change behaviour.
    """

    def __init__(self, clock: Clock, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self.clock = clock
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._bytes = 0

    # -- what the service does ---------------------------------------------------------------------

    def set(self, plugin_id: str, key: str, value: CacheValue, ttl_seconds: int = 0) -> bool:
        """Store ``value`` under the key, replacing whatever it held; ``False`` if too large to keep.

        An entry larger than ``max_bytes`` on its own is refused: the old value is dropped anyway (after a
        set the plugin must never read the value it replaced) and nothing is stored, which the plugin sees
        as an ordinary cache miss; the service still answers ``success=true`` as the original always did.
        """
        kind = value_kind(value)
        full_key = namespaced(plugin_id, key)
        size = _entry_size(full_key, value)
        ttl = effective_ttl(ttl_seconds)
        with self._lock:
            now = self.clock.now()
            self._drop(full_key)
            if size > self.max_bytes:
                log.warning(
                    "cache: not storing %r (%d bytes): larger than the cache's bound of %d bytes",
                    full_key,
                    size,
                    self.max_bytes,
                )
                return False
            self._make_room(size, now)
            self._entries[full_key] = _Entry(value, kind, ttl, now + ttl, size)
            self._bytes += size
            return True

    def lookup(self, plugin_id: str, key: str) -> tuple[ValueKind, CacheValue] | None:
        """The live entry's type and value, sliding its expiry (the original "touched" on every hit)."""
        full_key = namespaced(plugin_id, key)
        with self._lock:
            now = self.clock.now()
            entry = self._live(full_key, now)
            if entry is None:
                return None
            entry.expires_at = now + entry.ttl
            self._entries.move_to_end(full_key)
            return entry.kind, entry.value

    def remove(self, plugin_id: str, key: str) -> None:
        with self._lock:
            self._drop(namespaced(plugin_id, key))

    def sweep(self) -> int:
        """Drop every expired entry now; returns how many went (the runtime's janitor calls this)."""
        with self._lock:
            return self._drop_expired(self.clock.now())

    # -- test-facing helpers -------------------------------------------------------------------------

    def get(self, plugin_id: str, key: str) -> CacheValue | None:
        """The plugin's live value under ``key``, or None; does not slide the expiry."""
        with self._lock:
            entry = self._peek(namespaced(plugin_id, key), self.clock.now())
            return None if entry is None else entry.value

    def items(self, plugin_id: str) -> dict[str, CacheValue]:
        """The plugin's live entries by its own key (without the ``<pluginID>:`` prefix)."""
        prefix = namespaced(plugin_id, "")
        with self._lock:
            now = self.clock.now()
            return {
                full_key[len(prefix) :]: entry.value
                for full_key, entry in self._entries.items()
                if full_key.startswith(prefix) and not entry.expired(now)
            }

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def close(self) -> None:
        """The scope is over: nothing is persisted, as in the original."""
        self.clear()

    @property
    def size_bytes(self) -> int:
        """Bytes held now (including expired entries not dropped yet)."""
        with self._lock:
            return self._bytes

    # -- internals (lock held) -----------------------------------------------------------------------

    def _peek(self, full_key: str, now: float) -> _Entry | None:
        entry = self._entries.get(full_key)
        return None if entry is None or entry.expired(now) else entry

    def _live(self, full_key: str, now: float) -> _Entry | None:
        entry = self._entries.get(full_key)
        if entry is not None and entry.expired(now):
            self._drop(full_key)
            return None
        return entry

    def _drop(self, full_key: str) -> None:
        entry = self._entries.pop(full_key, None)
        if entry is not None:
            self._bytes -= entry.size

    def _drop_expired(self, now: float) -> int:
        expired = [k for k, entry in self._entries.items() if entry.expired(now)]
        for full_key in expired:
            self._drop(full_key)
        return len(expired)

    def _make_room(self, size: int, now: float) -> None:
        if self._bytes + size <= self.max_bytes:
            return
        dropped = self._drop_expired(now)
        if dropped:
            log.debug(
                "cache: over its bound of %d bytes, dropped %d expired entries", self.max_bytes, dropped
            )
        while self._bytes + size > self.max_bytes:
            full_key, entry = self._entries.popitem(last=False)
            self._bytes -= entry.size
            log.debug(
                "cache: over its bound of %d bytes, evicted %r (least recently used)",
                self.max_bytes,
                full_key,
            )


def scope_store(env: HostEnvironment) -> CacheStore:
    """The scope's one store, created on first use; what every plugin's service and a test fixture share."""
    return env.shared("cache", lambda: CacheStore(env.clock, max_bytes=max_bytes_option(env.options)))


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
    """One plugin's view of the scope's :class:`CacheStore`. No error fields, no hard errors."""

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
        self.store.set(self.plugin_id, key, value, ttl_seconds)
        return cache_pb2.SetResponse(success=True)

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
