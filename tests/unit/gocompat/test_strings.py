"""gocompat.strings (ToLower, Fields, TrimSpace) against Go's strings_test.go cases and ours."""

from __future__ import annotations

import pytest

from pytest_wasmhost.gocompat.strings import fields, to_lower, trim_space


@pytest.mark.parametrize(
    ("text", "lowered"),
    [
        # Go's lowerTests
        ("", ""),
        ("abc", "abc"),
        ("AbC123", "abc123"),
        ("azAZ09_", "azaz09_"),
        ("longStrinGwitHmixofsmaLLandcAps", "longstringwithmixofsmallandcaps"),
        (
            "renan bastos 93 AOSDAJDJAIDJAIDAJIaidsjjaidijadsjiadjiOOKKO",
            "renan bastos 93 aosdajdjaidjaidajiaidsjjaidijadsjiadjiookko",
        ),
        (
            "LONG\u2c6fSTRING\u2c6fWITH\u2c6fNONASCII\u2c6fCHARS",
            "long\u0250string\u0250with\u0250nonascii\u0250chars",
        ),
        ("\u2c6d\u2c6d\u2c6d\u2c6d\u2c6d", "\u0251\u0251\u0251\u0251\u0251"),  # shrinks one byte per char
        ("A\u0080\U0010ffff", "a\u0080\U0010ffff"),  # test utf8.RuneSelf and utf8.MaxRune
        # ours: the simple mapping, rune by rune
        ("\u0130", "i"),  # Python's full mapping gives "i" + U+0307
        ("\u0391\u03a3", "\u03b1\u03c3"),  # no final-sigma rule
        ("ÀÉ\udcff", "àé\ufffd"),  # the non-ASCII path turns an invalid byte into U+FFFD
        ("A\udcff", "a\ufffd"),
    ],
)
def test_to_lower(text: str, lowered: str) -> None:
    assert to_lower(text) == lowered


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        # Go's fieldstests
        ("", []),
        (" ", []),
        (" \t ", []),
        ("\u2000", []),
        ("  abc  ", ["abc"]),
        ("1 2 3 4", ["1", "2", "3", "4"]),
        ("1  2  3  4", ["1", "2", "3", "4"]),
        ("1\t\t2\t\t3\t4", ["1", "2", "3", "4"]),
        ("1\u20002\u20013\u20024", ["1", "2", "3", "4"]),
        ("\u2000\u2001\u2002", []),
        ("\n™\t™\n", ["™", "™"]),
        ("☺", ["☺"]),
        # ours: U+001C..U+001F are not space to Go (Python's split() takes them)
        ("a\x1cb c", ["a\x1cb", "c"]),
        ("a\x85b\xa0c\u3000d", ["a", "b", "c", "d"]),
    ],
)
def test_fields(text: str, parts: list[str]) -> None:
    assert fields(text) == parts


@pytest.mark.parametrize(
    ("text", "trimmed"),
    [
        # Go's trimSpaceTests
        ("", ""),
        ("abc", "abc"),
        (" ", ""),
        (" \t\r\n \t\t\r\r\n\n ", ""),
        (" \t\r\n x\t\t\r\r\n\n ", "x"),
        (" \u2000\t\r\n x\t\t\r\r\ny\n \u3000", "x\t\t\r\r\ny"),
        ("1 \t\r\n2", "1 \t\r\n2"),
        (" x ", "x"),
        ("\x1cx\x1f", "\x1cx\x1f"),  # ours
    ],
)
def test_trim_space(text: str, trimmed: str) -> None:
    assert trim_space(text) == trimmed
