"""``host.base.dispatch`` writes the ABI's steps out for speed; here it is held to the ABI helpers.

Every guest->host call runs ``dispatch``, so it does not call ``abi.memory.check_range``,
``guest_malloc`` and ``pack`` but repeats their checks inline (and lets the backend's own range check
stand in for ``check_range`` on the request and the response). The reference below composes the
helpers themselves; for any request place, size, response length and ``malloc`` answer, both must
return the same packed pointer, leave the same memory, call ``malloc`` as often, and fail with the
same exception and text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from google.protobuf.message import DecodeError, Message
from hypothesis import given
from hypothesis import strategies as st

from pytest_wasmhost.abi.memory import check_range, guest_malloc, pack
from pytest_wasmhost.abi.proto import cache_pb2
from pytest_wasmhost.errors import AbiError
from pytest_wasmhost.host.base import HostBinding, HostFunction, HostHardError, dispatch
from pytest_wasmhost.runtime.callpath import outside_memory_error

MEMORY = 65536
PLUGIN = "p"


@dataclass
class FakeGuest:
    """A GuestAccess whose read/write check their range as both call-path backends do.

    Its memory is sparse (written bytes only), so it can be as large as wasm32 allows."""

    malloc_answer: int | None
    size: int = MEMORY
    memory: dict[int, int] = field(default_factory=dict)
    mallocs: list[int] = field(default_factory=list)
    plugin_id: str = PLUGIN

    def call_export(self, name: str, args: tuple[int, ...]) -> int | None:
        assert name == "malloc", name
        self.mallocs.append(args[0])
        return self.malloc_answer

    def memory_size(self) -> int:
        return self.size

    def read_memory(self, ptr: int, size: int) -> bytes:
        if ptr < 0 or size < 0 or ptr + size > self.size:
            raise outside_memory_error(self.plugin_id, "read", ptr, size, self.size)
        return bytes(self.memory.get(address, 0) for address in range(ptr, ptr + size))

    def write_memory(self, ptr: int, data: bytes) -> None:
        if ptr < 0 or ptr + len(data) > self.size:
            raise outside_memory_error(self.plugin_id, "write", ptr, len(data), self.size)
        self.memory.update(zip(range(ptr, ptr + len(data)), data, strict=True))


def reference(guest: FakeGuest, fn: HostFunction, offset: int, size: int) -> int:
    """The guest->host steps made of the ABI layer's own helpers (abi.md §5)."""
    label = f"env.{fn.name}"
    raw = b""
    if size:
        try:
            check_range(guest, offset, size, export=label, what="request", op="Read")
        except AbiError as error:
            raise HostHardError(fn.service, fn.name, error.problem) from None
        raw = guest.read_memory(offset, size)
    try:
        request = fn.request_type.FromString(raw)
    except DecodeError as exc:  # not an ABI step, but the bytes a misplaced request reads rarely decode
        name = fn.request_type.DESCRIPTOR.full_name
        raise HostHardError(fn.service, fn.name, f"request does not decode as {name}: {exc}") from exc
    data = fn.handler(request).SerializeToString()
    try:
        ptr = guest_malloc(guest, len(data), export=label)
    except AbiError as error:
        raise HostHardError(fn.service, fn.name, f"cannot allocate the response: {error.problem}") from None
    if not data:
        return 0
    guest.write_memory(ptr, data)
    packed = pack(ptr, len(data))
    return packed - (1 << 64) if packed >= 1 << 63 else packed  # an i64 result is signed


def cache_get(response_size: int) -> HostFunction:
    def handler(request: Message) -> Message:
        assert isinstance(request, cache_pb2.GetRequest)
        return cache_pb2.GetBytesResponse(exists=response_size > 0, value=b"v" * max(response_size - 4, 0))

    return HostFunction("cache", "get_bytes", cache_pb2.GetRequest, cache_pb2.GetBytesResponse, handler)


def outcome(run: Callable[[], int], guest: FakeGuest) -> tuple[object, dict[int, int], list[int]]:
    try:
        result: object = run()
    except Exception as exc:  # the type and the text are what must agree
        result = (type(exc), str(exc))
    return result, guest.memory, guest.mallocs


def assert_equivalent(
    malloc_answer: int | None, offset: int, size: int, key: str, response_size: int, memory: int = MEMORY
) -> None:
    fn = cache_get(response_size)
    request = cache_pb2.GetRequest(key=key).SerializeToString()
    guests = [FakeGuest(malloc_answer, memory), FakeGuest(malloc_answer, memory)]
    for guest in guests:
        if offset + len(request) <= memory and size == len(request):
            guest.write_memory(offset, request)  # a well-placed request, else whatever is there
    binding = HostBinding(plugin_id=PLUGIN, functions={fn.name: fn})
    ours = outcome(lambda: dispatch(guests[0], fn, offset, size, binding=binding), guests[0])
    theirs = outcome(lambda: reference(guests[1], fn, offset, size), guests[1])
    assert ours == theirs


@given(
    malloc_answer=st.one_of(
        st.none(),
        st.just(0),
        st.integers(1, MEMORY - 1),  # inside, or running past the end with a long response
        st.integers(MEMORY, 2**32 - 1),  # outside the memory
        st.integers(-(2**31), -1),  # a negative i32, as wasmtime hands it back
        st.integers(2**32, 2**33),  # more than 32 bits: only the low 32 count
    ),
    offset=st.integers(0, MEMORY + 16),
    key=st.text(max_size=40),
    well_placed=st.booleans(),
    other_size=st.integers(0, 2 * MEMORY),
    response_size=st.sampled_from([0, 2, 5, 100, 3000]),
)
def test_dispatch_takes_the_abi_helpers_steps(
    malloc_answer: int | None, offset: int, key: str, well_placed: bool, other_size: int, response_size: int
) -> None:
    size = len(cache_pb2.GetRequest(key=key).SerializeToString()) if well_placed else other_size
    assert_equivalent(malloc_answer, offset, size, key, response_size)


@pytest.mark.parametrize(
    ("malloc_answer", "offset", "size", "response_size", "memory"),
    [
        (1024, 0, 0, 100, MEMORY),  # an empty request at address 0: nothing is read
        (1024, MEMORY, 0, 100, MEMORY),  # an empty request just past the end: still nothing is read
        (1024, MEMORY - 2, 8, 100, MEMORY),  # a request running past the end of memory
        (1024, 0, 0, 0, MEMORY),  # an empty response: no malloc, result 0
        (None, 0, 0, 100, MEMORY),  # malloc returns no value
        (0, 0, 0, 100, MEMORY),  # malloc returns 0
        (-(2**32), 0, 0, 100, MEMORY),  # ... in its low 32 bits
        (MEMORY - 10, 0, 0, 100, MEMORY),  # malloc's buffer runs past the end
        (0x8000_0010, 0, 0, 100, 2**32),  # a buffer above 2 GiB: the packed i64 comes back negative
        (0xFFFF_FF00, 0xFFFF_FFF0, 3, 100, 2**32),  # a request and a buffer at the top of wasm32 memory
    ],
)
def test_dispatch_edge_cases_match_the_abi_helpers(
    malloc_answer: int | None, offset: int, size: int, response_size: int, memory: int
) -> None:
    assert_equivalent(malloc_answer, offset, size, "k", response_size, memory)


def test_the_fake_guest_sees_each_failure() -> None:
    """The comparisons above are not vacuous: each kind of answer happens."""
    binding_fn = cache_get(100)
    binding = HostBinding(plugin_id=PLUGIN, functions={binding_fn.name: binding_fn})
    assert dispatch(FakeGuest(2048), binding_fn, 0, 0, binding=binding) == (2048 << 32) | 100
    with pytest.raises(HostHardError, match="malloc returned no value"):
        dispatch(FakeGuest(None), binding_fn, 0, 0, binding=binding)
    with pytest.raises(HostHardError, match="request at 0xfffe with size 8 lies outside"):
        dispatch(FakeGuest(2048), binding_fn, MEMORY - 2, 8, binding=binding)
    with pytest.raises(HostHardError, match=r"the buffer malloc\(100\) returned at 0xfff6"):
        dispatch(FakeGuest(MEMORY - 10), binding_fn, 0, 0, binding=binding)
    assert dispatch(FakeGuest(0x8000_0010, 2**32), binding_fn, 0, 0, binding=binding) < 0  # signed i64
