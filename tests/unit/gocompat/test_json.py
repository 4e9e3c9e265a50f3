"""gocompat.json: Go's scanner texts (decode_test.go / scanner_test.go cases) and its Unmarshal model."""

from __future__ import annotations

import pytest

from pytest_wasmhost.gocompat import json as gojson


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        # Go's decode_test.go syntax errors (Go's Offset counts the offending byte too: ours is its index)
        (b'{"X": "foo", "Y"}', "invalid character '}' after object key", 16),
        (b"[1, 2, 3+]", "invalid character '+' after array element", 8),
        (b'{"X":12x}', "invalid character 'x' after object key:value pair", 7),
        (b"[2, 3", "unexpected end of JSON input", 5),
        (b'{"F3": -}', "invalid character '}' in numeric literal", 8),
        # ours
        (b"", "unexpected end of JSON input", 0),
        (b"x", "invalid character 'x' looking for beginning of value", 0),
        (b"[1,]", "invalid character ']' looking for beginning of value", 3),
        (b"1 2", "invalid character '2' after top-level value", 2),
        (b"01", "invalid character '1' after top-level value", 1),
        (b'"\\x"', "invalid character 'x' in string escape code", 2),
        (b'"\x01"', "invalid character '\\x01' in string literal", 1),
        (b"1.e", "invalid character 'e' after decimal point in numeric literal", 2),
        (b'{"a":1,}', "invalid character '}' looking for beginning of object key string", 7),
        (b"nul", "invalid character ' ' in literal null (expecting 'l')", 3),
        (b"NaN", "invalid character 'N' looking for beginning of value", 0),
        (b"[" * 10001, "invalid character '[' exceeded max depth", 10000),
    ],
)
def test_syntax_errors(data: bytes, message: str, offset: int) -> None:
    with pytest.raises(gojson.GoSyntaxError) as info:
        gojson.parse(data)
    assert (info.value.message, info.value.offset) == (message, offset)


def test_the_tree_keeps_every_pair_and_replaces_bad_utf8_byte_by_byte() -> None:
    node = gojson.parse(b'{"a":1,"a":[true,null],"\xff\xfe":"\\ud800x\\ud83d\\ude00"}')
    assert isinstance(node, gojson.Obj)
    assert node.pairs == [
        ("a", gojson.Num("1")),
        ("a", [True, None]),
        ("\ufffd\ufffd", "\ufffdx\U0001f600"),  # a lone surrogate escape is U+FFFD, a pair one rune
    ]
    assert gojson.parse(b"[" * 10000 + b"]" * 10000) is not None  # Go's limit is exactly 10000


_T = gojson.StructT(
    "T",
    "main.T",
    (("name", gojson.STRING), ("on", gojson.BOOL), ("tags", gojson.SliceT(gojson.STRING))),
)


def _decode(data: bytes) -> gojson.StructVal:
    value = gojson.unmarshal(gojson.parse(data), _T, ())
    assert isinstance(value, gojson.StructVal)
    return value


def test_unmarshal_matches_fields_case_insensitively_and_in_order() -> None:
    value = _decode(b'{"NAME":"a","name":"b","ON":true,"unknown":{"x":1}}')
    assert (value.fields["name"], value.fields["on"], value.keys["name"]) == ("b", True, "name")
    assert gojson.fold_name("\u017fkip") == gojson.fold_name("SKIP")  # the long s folds to S, as in Go


def test_unmarshal_null_keeps_strings_and_resets_slices() -> None:
    value = _decode(b'{"name":"a","tags":["x"],"name":null,"tags":null}')
    assert (value.fields["name"], value.fields["tags"]) == ("a", None)


def test_unmarshal_type_errors_are_gos() -> None:
    with pytest.raises(gojson.Hard) as info:
        _decode(b'{"name":1,"on":"yes"}')
    # Go keeps decoding after a type error and reports the first one
    assert (
        info.value.err.message() == "json: cannot unmarshal number into Go struct field T.name of type string"
    )
    with pytest.raises(gojson.Hard) as top:
        gojson.unmarshal(gojson.parse(b"[]"), _T, ())
    assert top.value.err.message() == "json: cannot unmarshal array into Go value of type main.T"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        # Go's encoding/json output for these values (HTML-safe, compact, short escapes since Go 1.22)
        ("<a&b>", '"\\u003ca\\u0026b\\u003e"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("\b\f\n\r\t\x01\x7f", '"\\b\\f\\n\\r\\t\\u0001\x7f"'),
        ('q"\\', '"q\\"\\\\"'),
        ("é☺", '"é☺"'),
        ("a\udcffb", '"a\\ufffdb"'),  # a byte that is not UTF-8: one U+FFFD escape per byte
        ({"k": [1, True, None]}, '{"k":[1,true,null]}'),
    ],
)
def test_marshal(value: object, text: str) -> None:
    assert gojson.marshal(value) == text
