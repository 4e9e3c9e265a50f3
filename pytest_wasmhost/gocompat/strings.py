"""strings: ``ToLower``, ``Fields``, ``TrimSpace`` (with ``unicode.IsSpace``)."""

from __future__ import annotations

import re

from pytest_wasmhost.gocompat.utf8 import replace_invalid

__all__ = ["SPACE", "fields", "to_lower", "trim_space"]

#: ``unicode.IsSpace``. Python's ``str.split()`` / ``strip()`` also take U+001C..U+001F, which Go keeps.
SPACE = "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
SPACE += "\u2028\u2029\u202f\u205f\u3000"
_SPACE_RUN = re.compile(f"[{re.escape(SPACE)}]+")


def to_lower(text: str) -> str:
    """``strings.ToLower``: rune by rune, the simple case mapping.

    Python's ``str.lower`` uses the full mapping (U+0130 becomes two runes) and a context rule (a final
    capital sigma becomes U+03C2); Go's non-ASCII path also turns each invalid byte into U+FFFD.
    """
    if text.isascii():
        return text.lower()
    return "".join("i" if ch == "\u0130" else ch.lower() for ch in replace_invalid(text))


def fields(text: str) -> list[str]:
    """``strings.Fields``: the runs between ``unicode.IsSpace`` characters."""
    return [part for part in _SPACE_RUN.split(text) if part]


def trim_space(text: str) -> str:
    """``strings.TrimSpace``."""
    return text.strip(SPACE)
