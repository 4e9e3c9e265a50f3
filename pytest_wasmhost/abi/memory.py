"""The go-plugin memory ABI: packed ``ptr<<32 | len`` results, the error bit, and bounds-checked copies.

Everything here works on a :class:`GuestAccess`, the narrow interface to one live instance (call an
export, read and write its linear memory). The runtime provides it; a faster implementation over
wasmtime's C API can replace it without touching this module.

Where the original host was lax (it read at guest address 0 when ``malloc`` returned 0, or read
``size`` bytes at a zero result pointer), we raise :class:`AbiError` instead of handing garbage to the
caller: such a plugin is broken in production too, only silently.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from pytest_wasmhost.errors import AbiError, hide_harness_frames

# Errors of ours show the user's frames, not these (see errors.hide_harness_frames).
__tracebackhide__ = hide_harness_frames

ERROR_BIT = 0x8000_0000
_U32 = 0xFFFF_FFFF
_U64 = 0xFFFF_FFFF_FFFF_FFFF


class GuestAccess(Protocol):
    """What the ABI layer needs from one instance. Implemented by the runtime's instance backends."""

    plugin_id: str

    def call_export(self, name: str, args: tuple[int, ...]) -> int | None:
        """Call an export with integer arguments; return its single integer result (or None)."""
        ...

    def memory_size(self) -> int:
        """Current size of the guest's exported ``memory`` in bytes (re-read after every call)."""
        ...

    def read_memory(self, ptr: int, size: int) -> bytes:
        """Copy ``size`` bytes at ``ptr``; the caller has checked the bounds."""
        ...

    def write_memory(self, ptr: int, data: bytes) -> None:
        """Copy ``data`` to ``ptr``; the caller has checked the bounds."""
        ...


class PackedResult(NamedTuple):
    """An unpacked ``i64`` result of a guest method export (a NamedTuple: built on every call)."""

    ptr: int
    size: int
    is_error: bool


def pack(ptr: int, size: int, *, is_error: bool = False) -> int:
    """Pack a pointer and a length the way the guest (and the host, for responses) does."""
    if not 0 <= ptr <= _U32 or not 0 <= size <= 0x7FFF_FFFF:
        raise ValueError(f"pointer {ptr} or size {size} does not fit the packed format")
    return (ptr << 32) | size | (ERROR_BIT if is_error else 0)


def unpack(result: int) -> PackedResult:
    """Split a packed result: upper 32 bits pointer, lower 32 bits size, bit 31 of the size the error flag."""
    raw = result & _U64  # wasm i64 arrives signed; the original reads it as uint64
    ptr = raw >> 32
    size = raw & _U32
    is_error = bool(size & ERROR_BIT)
    return PackedResult(ptr=ptr, size=size & ~ERROR_BIT & _U32, is_error=is_error)


def outside_error(
    plugin_id: str, ptr: int, size: int, mem: int, *, export: str, what: str, op: str
) -> AbiError:
    return AbiError(
        f"{what} at {ptr:#x} with size {size} lies outside the guest's memory of {mem} bytes "
        f"(the original host: Memory.{op}({ptr}, {size}) out of range of memory size {mem}).",
        plugin_id=plugin_id,
        export=export,
        fix="return ptr<<32|len of a buffer inside the module's exported memory.",
    )


def malloc_no_value_error(plugin_id: str, export: str) -> AbiError:
    return AbiError(
        "malloc returned no value.",
        plugin_id=plugin_id,
        export=export,
        fix="export malloc with the signature (i32) -> i32.",
    )


def malloc_zero_error(plugin_id: str, size: int, export: str) -> AbiError:
    return AbiError(
        f"malloc({size}) returned 0 (out of memory, or a broken allocator); the original host would "
        "have written the data over guest address 0.",
        plugin_id=plugin_id,
        export=export,
        fix="make malloc return a valid pointer for every non-zero size.",
    )


def null_buffer_error(plugin_id: str, size: int, export: str, what: str) -> AbiError:
    return AbiError(
        f"{what} is a null pointer with size {size}; the original host would have read guest "
        "address 0 and decoded whatever was there.",
        plugin_id=plugin_id,
        export=export,
        fix="return 0 for an empty result, or ptr<<32|len of a real buffer.",
    )


def check_range(guest: GuestAccess, ptr: int, size: int, *, export: str, what: str, op: str) -> None:
    """Raise AbiError unless ``[ptr, ptr+size)`` lies inside the guest's memory.

    ``op`` is ``Read`` or ``Write``: the original's message (``Memory.Read(p, n) out of range of memory
    size m``) is kept in the text so it can be compared with production logs.
    """
    mem = guest.memory_size()
    if ptr < 0 or size < 0 or ptr + size > mem:
        raise outside_error(guest.plugin_id, ptr, size, mem, export=export, what=what, op=op)


def guest_malloc(guest: GuestAccess, size: int, *, export: str) -> int:
    """Allocate ``size`` bytes in the guest through its exported ``malloc``; 0 bytes allocate nothing."""
    if size == 0:
        return 0
    ptr = guest.call_export("malloc", (size,))
    if not isinstance(ptr, int):
        raise malloc_no_value_error(guest.plugin_id, export)
    ptr &= _U32
    if ptr == 0:
        raise malloc_zero_error(guest.plugin_id, size, export)
    check_range(guest, ptr, size, export=export, what=f"the buffer malloc({size}) returned", op="Write")
    return ptr


def write_buffer(guest: GuestAccess, data: bytes, *, export: str) -> int:
    """Copy ``data`` into a fresh guest allocation; return its pointer (0 for empty data)."""
    ptr = guest_malloc(guest, len(data), export=export)
    if data:
        guest.write_memory(ptr, data)
    return ptr


def read_buffer(guest: GuestAccess, ptr: int, size: int, *, export: str, what: str) -> bytes:
    """Read a buffer the guest handed back; ``(0, 0)`` is the valid empty buffer."""
    if size == 0:
        return b""
    if ptr == 0:
        raise null_buffer_error(guest.plugin_id, size, export, what)
    check_range(guest, ptr, size, export=export, what=what, op="Read")
    return guest.read_memory(ptr, size)


def free(guest: GuestAccess, ptr: int) -> None:
    """Release a guest pointer; 0 is skipped as the original did."""
    if ptr:
        guest.call_export("free", (ptr,))


class CallOutcome(NamedTuple):
    """Raw outcome of one method call: the response bytes, or the plugin's error text."""

    data: bytes
    error_text: str | None


def call_method(guest: GuestAccess, export: str, request: bytes) -> CallOutcome:
    """Run one host->guest method call exactly as the original (abi.md §4).

    malloc + write the request, call the export with ``(ptr, len)``, unpack the result, read it,
    free the result then the request (the original's order), and split off the error string.

    This is the reference the public call path runs; the fast backend does the same steps in one
    frame (``runtime/capi.py``, ``FastExports.method_call``), and the equivalence test holds the two
    to the same results and errors.
    """
    req_ptr = write_buffer(guest, request, export=export)
    raw = guest.call_export(export, (req_ptr, len(request)))
    if not isinstance(raw, int):
        raise AbiError(
            "the export returned no value.",
            plugin_id=guest.plugin_id,
            export=export,
            fix="method exports must have the signature (i32, i32) -> i64.",
        )
    res = unpack(raw)
    what = "the error string" if res.is_error else "the result"
    data = read_buffer(guest, res.ptr, res.size, export=export, what=what)
    # Frees happen only on the success path: after any failure the caller discards the instance,
    # and calling into a trapped guest again could fail in new ways.
    free(guest, res.ptr)
    free(guest, req_ptr)
    if res.is_error:
        # Go strings may hold any bytes; the original passed them through, we keep them readable.
        return CallOutcome(b"", data.decode("utf-8", errors="replace"))
    return CallOutcome(data, None)
