"""Host service ``scheduler`` (spec/services/scheduler.md). Not implemented yet: links no functions."""

from __future__ import annotations

from collections.abc import Sequence

from pytest_wasmhost.host.base import HostFunction, HostService, ServiceContext


class SchedulerService(HostService):
    name = "scheduler"
    function_names = ()

    @classmethod
    def create(cls, ctx: ServiceContext) -> SchedulerService:
        return cls()

    def functions(self) -> Sequence[HostFunction]:
        return ()
