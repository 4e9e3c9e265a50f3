"""Deprecated for one release: host options as nested dicts (``{"websocket": {"transport": "memory"}}``).

Every entry point that took the dicts (``Runtime(host_options=...)``, ``Runtime.scope``,
``wasm_runtime.fresh``) hands them here, the one place that converts them to a
:class:`~pytest_wasmhost.host.options.HostOptions`, with a ``DeprecationWarning``, keeping what each dict
meant: a service the dict names gets that section's settings over the service's defaults; the others keep
``base`` (for a runtime or scope: the defaults, where a dict without ``subsonicapi`` meant a fresh
``FakeSubsonic`` per scope; for ``fresh()``: the test's options). Remove with the dicts.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

from pytest_wasmhost.clock import Clock
from pytest_wasmhost.host.options import SERVICE_OPTIONS, HostOptions
from pytest_wasmhost.host.subsonicapi import SubsonicOptions
from pytest_wasmhost.host.websocket import Transport, TransportFactory, WebSocketOptions

# Settings whose None means something other than "the default".
_NONE_IS_A_VALUE = frozenset({("websocket", "idle_timeout"), ("subsonicapi", "backend")})


def host_options(
    value: HostOptions | Mapping[str, Any] | None, *, base: HostOptions | None = None, stacklevel: int = 2
) -> HostOptions:
    """``value`` as HostOptions: as is, ``base`` (default: the defaults) for None, converted for a dict."""
    if isinstance(value, HostOptions):
        return value
    if value is None:
        return base if base is not None else HostOptions()
    if not isinstance(value, Mapping):
        raise TypeError(f"host_options must be a HostOptions, got {type(value).__name__}")
    warnings.warn(
        "host_options as a dict is deprecated and goes in the next release; pass HostOptions "
        "(from pytest_wasmhost import HostOptions, CacheOptions, ...), e.g. "
        "HostOptions(cache=CacheOptions(plugin_max_entries=3))",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )
    return from_dict(value, base=base if base is not None else _legacy_defaults())


def from_dict(options: Mapping[str, Any], *, base: HostOptions) -> HostOptions:
    """The HostOptions a nested dict meant; an unknown service or setting is refused, naming the valid
    ones."""
    replaced: dict[str, Any] = {}
    for service, section in options.items():
        kind = SERVICE_OPTIONS.get(service)
        if kind is None:
            raise ValueError(f"host_options has no service {service!r}; valid: {list(SERVICE_OPTIONS)}")
        if not isinstance(section, Mapping):
            raise TypeError(
                f"host_options[{service!r}] must be a dict of settings, got {type(section).__name__}"
            )
        valid = [f.name for f in dataclasses.fields(kind)] + (
            ["autodeliver"] if service == "websocket" else []
        )
        settings: dict[str, Any] = {}
        for setting, setting_value in section.items():
            if setting not in valid:
                raise ValueError(f"host_options[{service!r}] has no setting {setting!r}; valid: {valid}")
            if setting_value is not None or (service, setting) in _NONE_IS_A_VALUE:
                settings[setting] = setting_value
        if service == "websocket":
            replaced[service] = _websocket(settings)
        elif service == "subsonicapi" and "backend" not in settings:
            replaced[service] = _legacy_defaults().subsonicapi  # {} meant the scope's fake, as no section did
        else:
            replaced[service] = kind(**_typed(service, settings))
    return base.replace(**replaced)


def _typed(service: str, settings: dict[str, Any]) -> dict[str, Any]:
    # The dicts took any truthy "run" and any printable "timezone".
    if service == "scheduler":
        if "run" in settings:
            settings["run"] = bool(settings["run"])
        if "timezone" in settings:
            settings["timezone"] = str(settings["timezone"])
    return settings


def _websocket(settings: dict[str, Any]) -> WebSocketOptions:
    autodeliver = bool(settings.pop("autodeliver", True))
    transport = settings.pop("transport", "real")
    factory: TransportFactory | None
    if transport == "real":
        factory = None
    elif transport == "memory":
        from pytest_wasmhost.doubles.websocket import MemoryTransportFactory

        factory = MemoryTransportFactory(autodeliver=autodeliver)
    elif isinstance(transport, str) or not callable(getattr(transport, "dial", None)):
        raise ValueError(
            "host_options['websocket']['transport'] must be 'real', 'memory' or a Transport, "
            f"got {transport!r}"
        )
    else:
        factory = _given(transport)
    return WebSocketOptions(transport=factory, **settings)


def _given(transport: Transport) -> TransportFactory:
    def factory(clock: Clock, options: WebSocketOptions) -> Transport:
        return transport

    return factory


def _legacy_defaults() -> HostOptions:
    from pytest_wasmhost.doubles.subsonic import FakeSubsonic

    return HostOptions(subsonicapi=SubsonicOptions(backend=FakeSubsonic))
