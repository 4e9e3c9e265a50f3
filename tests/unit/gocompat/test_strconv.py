"""gocompat.strconv against Go's quote_test.go (quotetests) and every code point class of IsPrint."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_wasmhost.gocompat.strconv import NumError, atoi, is_print, quote


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        # Go's quotetests (the Quote column); Go string literals with \xNN are bytes here
        ("\a\b\f\r\n\t\v", '"\\a\\b\\f\\r\\n\\t\\v"'),
        ("\\", '"\\\\"'),
        (b"abc\xffdef", '"abc\\xffdef"'),
        ("\u263a", '"☺"'),
        ("\U0010ffff", '"\\U0010ffff"'),
        ("\x04", '"\\x04"'),
        ("!\u00a0!\u2000!\u3000!", '"!\\u00a0!\\u2000!\\u3000!"'),  # graphic but not printable
        ("\x7f", '"\\x7f"'),
        # ours
        ('a"b\\c\n\x01é', '"a\\"b\\\\c\\n\\x01é"'),
        ("", '""'),
        (" ", '" "'),
        ("'", '"\'"'),
        (b"\x80", '"\\x80"'),  # bytes that are not UTF-8, at both ends of the range
        (b"\xff", '"\\xff"'),
        (b"\xe2\x82", '"\\xe2\\x82"'),  # a character cut short: each byte on its own
        (b"\xe2\x82\xac", '"€"'),
        (b"\xed\xa0\x80", '"\\xed\\xa0\\x80"'),  # an encoded surrogate is no rune in Go
        ("\udc80\udcff", '"\\x80\\xff"'),  # a str with surrogate-escaped bytes is the same Go string
        ("\ud800", '"\\xed\\xa0\\x80"'),  # a lone surrogate: its CESU-8 bytes, invalid to Go
        ("\ufffd", '"�"'),  # U+FFFD itself is printable (So)
        ("\u200b", '"\\u200b"'),  # Cf, in and beyond the BMP
        ("\U000e0001", '"\\U000e0001"'),
        ("\u0085", '"\\u0085"'),  # Cc above 0x7f: \u, not \x
        ("\u2028\u2029", '"\\u2028\\u2029"'),  # Zl, Zp
        ("\ue000", '"\\ue000"'),  # Co
        ("\U000f0000", '"\\U000f0000"'),
        ("\u0378", '"\\u0378"'),  # Cn (unassigned)
        ("e\u0301", '"e\u0301"'),  # Mn: kept
        ("\u0903", '"\u0903"'),  # Mc
        ("\u20dd", '"\u20dd"'),  # Me
        ("٣Ⅳ½", '"٣Ⅳ½"'),  # Nd, Nl, No
        ("_-()«»!", '"_-()«»!"'),  # P*
        ("$+^¦", '"$+^¦"'),  # Sc, Sm, Sk, So
        ("ǅʰ中", '"ǅʰ中"'),  # Lt, Lm, Lo
    ],
)
def test_quote(value: str | bytes, quoted: str) -> None:
    assert quote(value) == quoted


@given(st.characters())
def test_every_code_point_follows_the_categories(ch: str) -> None:
    category = unicodedata.category(ch)
    printable = ch == " " or category[0] in "LMNPS"
    assert is_print(ch) == printable
    text = quote(ch)[1:-1]
    if ch in '"\\':
        assert text == "\\" + ch
    elif 0xD800 <= ord(ch) <= 0xDFFF:
        assert text.startswith("\\x")
    elif printable:
        assert text == ch
    else:
        assert text.startswith("\\")
        assert text.isascii()


@pytest.mark.parametrize(
    ("text", "value", "error"),
    [
        # Go's atoi64tests (the Atoi view: "strconv.Atoi" as the function name)
        ("", 0, "invalid syntax"),
        ("0", 0, ""),
        ("-0", 0, ""),
        ("+0", 0, ""),
        ("1", 1, ""),
        ("-1", -1, ""),
        ("+1", 1, ""),
        ("12345", 12345, ""),
        ("-12345", -12345, ""),
        ("012345", 12345, ""),
        ("-012345", -12345, ""),
        ("98765432100", 98765432100, ""),
        ("-98765432100", -98765432100, ""),
        ("9223372036854775807", (1 << 63) - 1, ""),
        ("-9223372036854775807", -((1 << 63) - 1), ""),
        ("9223372036854775808", 0, "value out of range"),
        ("-9223372036854775808", -(1 << 63), ""),
        ("9223372036854775809", 0, "value out of range"),
        ("-9223372036854775809", 0, "value out of range"),
        ("-1_2_3_4_5", 0, "invalid syntax"),  # base 10: no underscores
        ("-_12345", 0, "invalid syntax"),
        ("_12345", 0, "invalid syntax"),
        ("1__2345", 0, "invalid syntax"),
        ("12345_", 0, "invalid syntax"),
        ("-", 0, "invalid syntax"),
        ("٣", 0, "invalid syntax"),  # only ASCII digits
        ("1x" + "9" * 30, 0, "invalid syntax"),
        ("9" * 30 + "x", 0, "value out of range"),  # the first problem met while scanning wins
    ],
)
def test_atoi(text: str, value: int, error: str) -> None:
    if not error:
        assert atoi(text) == value
        return
    with pytest.raises(NumError) as info:
        atoi(text)
    assert str(info.value) == f"strconv.Atoi: parsing {quote(text)}: {error}"
