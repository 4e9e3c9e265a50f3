"""The host-service framework: declare a service's functions once, get the guest->host plumbing for free.

A service module holds only behaviour: a list of :class:`HostFunction` (import name, request and
response message types, handler). :func:`dispatch` does what every ``env.<fn>`` import does in the
original (abi.md §5): read the request from guest memory, decode it, run the handler, encode the
response, allocate it through the guest's ``malloc`` re-entrantly and return ``ptr<<32 | len``.

Failures the original turned into a panic (a *hard error*: bad request pointer, undecodable request,
``malloc`` failure, a service that reports a hard error) raise :class:`HostHardError`; wasmtime turns
the exception into a trap that aborts the plugin's export call, which the runtime reports as
``PluginTrap`` naming the host function.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError, Message

from pytest_wasmhost.abi.memory import GuestAccess, guest_malloc, pack
from pytest_wasmhost.errors import AbiError

# Import names per service, in the original's link order (runtime.md §6; abi.md §5 "Host import names").
SERVICE_FUNCTIONS: Mapping[str, tuple[str, ...]] = {
    "config": ("get_plugin_config",),
    "scheduler": ("schedule_one_time", "schedule_recurring", "cancel_schedule", "time_now"),
    "cache": (
        "set_string",
        "get_string",
        "set_int",
        "get_int",
        "set_float",
        "get_float",
        "set_bytes",
        "get_bytes",
        "remove",
        "has",
    ),
    "artwork": ("get_artist_url", "get_album_url", "get_track_url"),
    "http": ("get", "post", "put", "delete", "patch", "head", "options"),
    "websocket": ("connect", "send_text", "send_binary", "close"),
    "subsonicapi": ("call",),
}

HOST_MODULE = "env"

_FUNCTION_SERVICE: dict[str, str] = {fn: svc for svc, fns in SERVICE_FUNCTIONS.items() for fn in fns}


def service_of(function: str) -> str | None:
    """The service (= manifest permission key) that provides ``env.<function>``, if any."""
    return _FUNCTION_SERVICE.get(function)


class HostHardError(Exception):
    """A host function failed the way the original panicked: the plugin's whole export call aborts."""

    def __init__(self, service: str, function: str, message: str) -> None:
        self.service = service
        self.function = function
        self.message = message
        super().__init__(f"host function {HOST_MODULE}.{function} ({service}) failed: {message}")


Handler = Callable[[Any], Message]


@dataclass(frozen=True, slots=True)
class HostFunction:
    """One ``env.<name>`` import: its service, message types and behaviour."""

    service: str
    name: str
    request_type: type[Message]
    response_type: type[Message]
    handler: Handler


class HostService:
    """Base of every host service: a name (the permission key) and the functions it links."""

    name: str = ""

    def functions(self) -> Sequence[HostFunction]:
        raise NotImplementedError


def dispatch(guest: GuestAccess, fn: HostFunction, offset: int, size: int) -> int:
    """Serve one guest->host call; return the packed response pointer (0 for an empty response)."""
    try:
        if size == 0:
            raw = b""
        else:
            mem = guest.memory_size()
            if offset < 0 or size < 0 or offset + size > mem:
                raise HostHardError(
                    fn.service,
                    fn.name,
                    f"request at {offset:#x} with size {size} lies outside the guest's memory of {mem} bytes",
                )
            raw = guest.read_memory(offset, size)
        request = fn.request_type()
        try:
            request.ParseFromString(raw)
        except DecodeError as exc:
            raise HostHardError(
                fn.service,
                fn.name,
                f"request does not decode as {fn.request_type.DESCRIPTOR.full_name}: {exc}",
            ) from exc
        response = fn.handler(request)
        data = response.SerializeToString()
        if not data:
            return 0
        ptr = _guest_malloc(guest, fn, len(data))
        guest.write_memory(ptr, data)
        return _as_i64(pack(ptr, len(data)))
    except HostHardError:
        raise
    except Exception as exc:  # a bug in a service must still end as one clear trap, not a crash
        raise HostHardError(fn.service, fn.name, f"internal error {type(exc).__name__}: {exc}") from exc


def _guest_malloc(guest: GuestAccess, fn: HostFunction, size: int) -> int:
    try:
        return guest_malloc(guest, size, export=f"{HOST_MODULE}.{fn.name}")
    except AbiError as exc:
        raise HostHardError(fn.service, fn.name, f"cannot allocate the response: {exc.problem}") from exc


def _as_i64(value: int) -> int:
    """Wasm i64 results are signed; a pointer above 2 GiB sets the sign bit."""
    return value - (1 << 64) if value >= 1 << 63 else value
