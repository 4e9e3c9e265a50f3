"""unicode/utf8 and Go's string <-> bytes conversions (the package's convention: see ``gocompat``)."""

from __future__ import annotations

import codecs

__all__ = ["go_bytes", "go_string", "replace_invalid"]


def go_bytes(text: str) -> bytes:
    """The bytes of a Go string: surrogate-escaped bytes as they were.

    A surrogate that is no escaped byte (Python can hold one, Go cannot) becomes its three CESU-8 bytes,
    which Go reads as invalid UTF-8, byte by byte.
    """
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def go_string(data: bytes) -> str:
    """Bytes as a Go string (lossless: invalid bytes surrogate-escaped)."""
    return data.decode("utf-8", "surrogateescape")


def _replace_one_byte(exc: UnicodeError) -> tuple[str, int]:
    # Go's utf8.DecodeRune consumes exactly one byte of an invalid sequence; Python's "replace"
    # swallows the maximal invalid subpart, which gives fewer U+FFFD.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "\ufffd", exc.start + 1


_ONE_BYTE_ERRORS = "pytest_wasmhost.go-utf8"
codecs.register_error(_ONE_BYTE_ERRORS, _replace_one_byte)


def replace_invalid(data: bytes | str) -> str:
    """Valid text as Go prints (``for range``, ``strings.ToValidUTF8``-like): each invalid byte is U+FFFD."""
    raw = go_bytes(data) if isinstance(data, str) else data
    return raw.decode("utf-8", _ONE_BYTE_ERRORS)
