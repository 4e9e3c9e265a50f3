"""Which host services this version implements, and how a scope builds them for one plugin.

Each service module declares the function names it implements; the linker links exactly those for a
granted service. Each scope (a test, or the production runtime) has one ``HostEnvironment``; each
plugin in the scope gets its own service objects over it, so state never leaks between tests while
compiled code is shared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pytest_wasmhost.host.artwork import ArtworkService
from pytest_wasmhost.host.base import HostBinding, HostService, ServiceContext, Transcript
from pytest_wasmhost.host.cache import CacheService
from pytest_wasmhost.host.config import ConfigService
from pytest_wasmhost.host.http import HttpService
from pytest_wasmhost.host.scheduler import SchedulerService
from pytest_wasmhost.host.subsonicapi import SubsonicApiService
from pytest_wasmhost.host.websocket import WebSocketService

# In the original's link order (runtime.md §6).
SERVICES: Mapping[str, type[HostService]] = {
    cls.name: cls
    for cls in (
        ConfigService,
        SchedulerService,
        CacheService,
        ArtworkService,
        HttpService,
        WebSocketService,
        SubsonicApiService,
    )
}

IMPLEMENTED: Mapping[str, tuple[str, ...]] = {name: cls.function_names for name, cls in SERVICES.items()}


def build_services(ctx: ServiceContext) -> list[HostService]:
    """Fresh service objects for every granted, implemented service, in the original's link order."""
    return [SERVICES[name].create(ctx) for name in ctx.manifest.permissions.granted() if name in SERVICES]


def bind(plugin_id: str, services: Sequence[HostService], transcript: Transcript | None) -> HostBinding:
    return HostBinding(
        plugin_id=plugin_id,
        functions={fn.name: fn for service in services for fn in service.functions()},
        transcript=transcript,
    )
