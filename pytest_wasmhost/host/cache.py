"""Host service ``cache`` (spec/services/cache.md). Not implemented yet: links no functions."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_wasmhost.host.base import HostFunction, HostService, ServiceContext


class CacheService(HostService):
    name = "cache"
    function_names = ()

    @classmethod
    def create(cls, ctx: ServiceContext) -> CacheService:
        return cls()

    def functions(self) -> Sequence[HostFunction]:
        return ()
