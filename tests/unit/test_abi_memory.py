from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_wasmhost.abi.memory import ERROR_BIT, pack, unpack


@given(ptr=st.integers(0, 0xFFFF_FFFF), size=st.integers(0, 0x7FFF_FFFF), is_error=st.booleans())
def test_pack_unpack_round_trip(ptr: int, size: int, is_error: bool) -> None:
    packed = pack(ptr, size, is_error=is_error)
    assert unpack(packed) == (unpack(packed))  # dataclass equality is stable
    got = unpack(packed)
    assert (got.ptr, got.size, got.is_error) == (ptr, size, is_error)


@given(ptr=st.integers(0, 0xFFFF_FFFF), size=st.integers(0, 0x7FFF_FFFF))
def test_unpack_accepts_the_signed_i64_wasm_returns(ptr: int, size: int) -> None:
    unsigned = pack(ptr, size)
    signed = unsigned - (1 << 64) if unsigned >= 1 << 63 else unsigned
    assert unpack(signed) == unpack(unsigned)


def test_error_bit_is_bit_31_of_the_size_and_is_cleared() -> None:
    got = unpack((0x10 << 32) | 5 | ERROR_BIT)
    assert (got.ptr, got.size, got.is_error) == (0x10, 5, True)


def test_zero_is_the_empty_success() -> None:
    got = unpack(0)
    assert (got.ptr, got.size, got.is_error) == (0, 0, False)


@pytest.mark.parametrize(("ptr", "size"), [(-1, 0), (1 << 32, 0), (0, 1 << 31)])
def test_pack_rejects_values_that_do_not_fit(ptr: int, size: int) -> None:
    with pytest.raises(ValueError, match="does not fit"):
        pack(ptr, size)
