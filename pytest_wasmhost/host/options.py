"""The host's settings of a scope: one frozen dataclass per service, composed in :class:`HostOptions`.

Each service module defines and documents its own options (what it reads, the defaults, the checks made
when an option object is built); this module only composes them, so a scope's whole configuration is one
typed, immutable value: ``Runtime(host_options=...)``, ``runtime.scope(host_options=...)``,
``wasm_runtime.fresh(host_options=...)``. ``wasm_runtime.host_options.replace(cache=CacheOptions(...))``
changes one service and keeps the others (a test's doubles among them).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Final

from pytest_wasmhost.host.artwork import ArtworkOptions
from pytest_wasmhost.host.base import OptionsT, TranscriptOptions
from pytest_wasmhost.host.cache import CacheOptions
from pytest_wasmhost.host.http import HttpOptions
from pytest_wasmhost.host.scheduler import SchedulerOptions
from pytest_wasmhost.host.subsonicapi import SubsonicOptions
from pytest_wasmhost.host.websocket import WebSocketOptions

__all__ = [
    "ArtworkOptions",
    "CacheOptions",
    "HostOptions",
    "HttpOptions",
    "SchedulerOptions",
    "SubsonicOptions",
    "TranscriptOptions",
    "WebSocketOptions",
]


@dataclass(frozen=True, slots=True)
class HostOptions:
    """Every host service's settings of a scope, by service name (the ``config`` service has none)."""

    cache: CacheOptions = CacheOptions()
    scheduler: SchedulerOptions = SchedulerOptions()
    artwork: ArtworkOptions = ArtworkOptions()
    http: HttpOptions = HttpOptions()
    websocket: WebSocketOptions = WebSocketOptions()
    subsonicapi: SubsonicOptions = SubsonicOptions()
    transcript: TranscriptOptions = TranscriptOptions()

    def __post_init__(self) -> None:
        for name, kind in SERVICE_OPTIONS.items():
            value = getattr(self, name)
            if not isinstance(value, kind):
                raise TypeError(
                    f"HostOptions.{name} must be a {kind.__name__}, got {type(value).__name__}: "
                    f"HostOptions({name}={kind.__name__}(...))"
                )

    def of(self, kind: type[OptionsT]) -> OptionsT:
        """The options of the service whose class is ``kind`` (how services read them: host/base.py)."""
        value = getattr(self, _FIELD_OF[kind])
        assert isinstance(value, kind)
        return value

    def replace(self, **services: Any) -> HostOptions:
        """A copy with the named services' options replaced: ``options.replace(cache=CacheOptions(...))``."""
        unknown = sorted(set(services) - set(SERVICE_OPTIONS))
        if unknown:
            raise TypeError(f"HostOptions has no service {unknown[0]!r}; valid: {list(SERVICE_OPTIONS)}")
        return dataclasses.replace(self, **services)


#: Service name -> the class of its options, in HostOptions' field order.
SERVICE_OPTIONS: Final[dict[str, type]] = {
    "cache": CacheOptions,
    "scheduler": SchedulerOptions,
    "artwork": ArtworkOptions,
    "http": HttpOptions,
    "websocket": WebSocketOptions,
    "subsonicapi": SubsonicOptions,
    "transcript": TranscriptOptions,
}
_FIELD_OF: Final[dict[type, str]] = {kind: name for name, kind in SERVICE_OPTIONS.items()}
