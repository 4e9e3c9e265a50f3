"""strconv: ``Quote`` (with ``unicode.IsPrint``) and ``Atoi``'s error texts."""

from __future__ import annotations

import unicodedata

from pytest_wasmhost.gocompat.utf8 import go_bytes, go_string

__all__ = ["NumError", "atoi", "is_print", "quote"]

_ESCAPES = {
    "\a": r"\a",
    "\b": r"\b",
    "\f": r"\f",
    "\n": r"\n",
    "\r": r"\r",
    "\t": r"\t",
    "\v": r"\v",
    '"': r"\"",
    "\\": r"\\",
}


def is_print(ch: str) -> bool:
    """``unicode.IsPrint``: categories L, M, N, P, S and the ASCII space.

    The categories are Python's ``unicodedata`` (Unicode 14.0 on Python 3.11, 15.0 from 3.12, which is
    Go 1.21-1.25's): a character assigned only in a later version counts as unprintable here.
    """
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


def quote(value: str | bytes) -> str:
    """``strconv.Quote`` (also ``%q`` and what ``%#v`` prints for a string).

    Printable runes are kept; ``\\a \\b \\f \\n \\r \\t \\v`` for those controls, ``\\xNN`` for other
    runes below U+0020 and U+007F and for each byte that is not valid UTF-8, ``\\uNNNN`` /
    ``\\UNNNNNNNN`` for the remaining unprintable runes.
    """
    text = go_string(go_bytes(value) if isinstance(value, str) else value)
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif is_print(ch):
            out.append(ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


class NumError(ValueError):
    """A ``*strconv.NumError``; ``str()`` is Go's text (``strconv.Atoi: parsing "x": invalid syntax``)."""


def atoi(text: str) -> int:
    """``strconv.Atoi`` for a 64-bit int; raises :class:`NumError` with Go's text."""
    body, negative = text, False
    if body[:1] in ("+", "-"):
        negative, body = body[0] == "-", body[1:]
    if not body:
        raise NumError(f"strconv.Atoi: parsing {quote(text)}: invalid syntax")
    value = 0
    for ch in body:  # the first problem met while scanning wins, as in ParseUint
        if not "0" <= ch <= "9":
            raise NumError(f"strconv.Atoi: parsing {quote(text)}: invalid syntax")
        value = value * 10 + ord(ch) - 48
        if value >= 1 << 64:
            break
    if value >= 1 << 63 and not (negative and value == 1 << 63):
        raise NumError(f"strconv.Atoi: parsing {quote(text)}: value out of range")
    return -value if negative else value
