"""Host service ``config``: ``get_plugin_config`` returns the plugin's configuration section.

The original read ``PluginConfig.<pluginID>`` live at call time, never failed, and (through its
case-insensitive configuration loader) saw keys in lower case. We keep keys as given by the runtime's
settings; the runtime's config source decides case (see ``ConfigSource``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pytest_wasmhost.abi.proto import config_pb2
from pytest_wasmhost.host.base import HostFunction, HostService, ServiceContext

ConfigSource = Callable[[], Mapping[str, str]]


class ConfigService(HostService):
    name = "config"
    function_names = ("get_plugin_config",)

    @classmethod
    def create(cls, ctx: ServiceContext) -> ConfigService:
        return cls(ctx.config)

    def __init__(self, source: ConfigSource) -> None:
        # A callable, not a dict: the original read the live configuration on every call.
        self._source = source

    def get_plugin_config(
        self, _request: config_pb2.GetPluginConfigRequest
    ) -> config_pb2.GetPluginConfigResponse:
        return config_pb2.GetPluginConfigResponse(config=dict(self._source()))

    def functions(self) -> Sequence[HostFunction]:
        return (
            HostFunction(
                service=self.name,
                name="get_plugin_config",
                request_type=config_pb2.GetPluginConfigRequest,
                response_type=config_pb2.GetPluginConfigResponse,
                handler=self.get_plugin_config,
            ),
        )
