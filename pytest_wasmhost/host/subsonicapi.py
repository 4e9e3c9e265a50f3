"""Host service ``subsonicapi`` (spec/services/subsonicapi.md). Not implemented yet: links no functions."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_wasmhost.host.base import HostFunction, HostService, ServiceContext


class SubsonicApiService(HostService):
    name = "subsonicapi"
    function_names = ()

    @classmethod
    def create(cls, ctx: ServiceContext) -> SubsonicApiService:
        return cls()

    def functions(self) -> Sequence[HostFunction]:
        return ()
