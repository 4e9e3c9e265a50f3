"""Host service ``artwork`` (spec/services/artwork.md). Not implemented yet: links no functions."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_wasmhost.host.base import HostFunction, HostService, ServiceContext


class ArtworkService(HostService):
    name = "artwork"
    function_names = ()

    @classmethod
    def create(cls, ctx: ServiceContext) -> ArtworkService:
        return cls()

    def functions(self) -> Sequence[HostFunction]:
        return ()
