"""encoding/json as the original host decoded manifests: Go's scanner and Go's Unmarshal model.

Go's scanner reads every document here, the success path included, rather than the stdlib ``json``
explaining only failures: the stdlib result cannot feed Go's Unmarshal. It drops duplicate keys (Go
decodes each in order into the same value), replaces invalid UTF-8 differently (Go: one U+FFFD per
byte), accepts NaN and Infinity, and recurses (RecursionError where Go stops at depth 10000); its error
texts are not Go's either. So :func:`parse` builds a node tree with every pair in document order, and
:func:`unmarshal` decodes it into a Go type description, with Go's error texts and error context
(``Go struct field Plain.permissions.http...``), case-insensitive field matching and slice reuse.

The types of a particular Go program (manifest.py's generated schema types) are described with
:class:`StructT`, :class:`SliceT`, :class:`MapT`, :class:`Prim` and, for types with their own
``UnmarshalJSON``, :class:`Unmarshaler`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from pytest_wasmhost.gocompat.strconv import quote
from pytest_wasmhost.gocompat.utf8 import go_bytes, replace_invalid

JsonPathPart: TypeAlias = "str | int"
JsonPath: TypeAlias = "tuple[JsonPathPart, ...]"

MAX_DEPTH = 10000  # encoding/json's maxNestingDepth


# -- Marshal ---------------------------------------------------------------------------------------

# encoding/json escapes these beyond what Python's json does (HTML-safe output and JS line separators).
_MARSHAL_EXTRA = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)
_SURROGATES = re.compile("[\ud800-\udfff]+")


def marshal(value: Any) -> str:
    """``json.Marshal`` of plain data (dicts, lists, str, numbers, bools, None): compact, HTML-safe.

    Python's ``json`` already writes Go's short escapes (``\\b``, ``\\f`` too, as Go does since 1.22)
    and lower-case ``\\u00XX``; Go adds ``<``, ``>``, ``&``, U+2028, U+2029, and writes ``\\ufffd`` for
    each byte of a string that is not UTF-8. The replacements are safe on the whole text: these
    characters can only occur inside strings.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_MARSHAL_EXTRA)
    if not text.isascii():
        text = _SURROGATES.sub(lambda m: "\\ufffd" * sum(len(go_bytes(c)) for c in m.group()), text)
    return text


# -- the scanner ------------------------------------------------------------------------------------


def _quote_char(byte: int) -> str:
    """The scanner's ``quoteChar``: a byte shown as the rune of the same value."""
    if byte == 0x27:
        return "'\\''"
    if byte == 0x22:
        return "'\"'"
    return "'" + quote(chr(byte))[1:-1] + "'"


class Obj:
    """A JSON object with every key/value pair in document order (duplicates kept)."""

    __slots__ = ("pairs",)

    def __init__(self) -> None:
        self.pairs: list[tuple[str, Node]] = []


@dataclass(frozen=True, slots=True)
class Num:
    text: str


Node: TypeAlias = "bool | str | Num | list[Node] | Obj | None"


class GoSyntaxError(Exception):
    def __init__(self, message: str, offset: int, byte: int | None, json_path: JsonPath) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset  # index of the offending byte (len(data) at end of input)
        self.byte = byte
        self.json_path = json_path


_WS = re.compile(rb"[ \t\r\n]*")
_STR_CHUNK = re.compile(rb'[^"\\\x00-\x1f]*')
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
_SIMPLE_ESC = frozenset(b'"\\/bfnrt')
_EOF_BYTE = 0x20  # Go feeds a space to the scanner at end of input


class _Frame:
    __slots__ = ("container", "key", "pending")

    def __init__(self, container: Obj | list[Node]) -> None:
        self.container = container
        self.key: str | None = None  # the key whose value is being parsed
        self.pending = isinstance(container, list)  # an array element is being parsed


class _Scanner:
    """An iterative parser (explicit stack, no recursion) with Go's ``encoding/json`` scanner errors."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.n = len(data)
        self.stack: list[_Frame] = []

    # -- errors -----------------------------------------------------------------------------------

    def _path(self) -> JsonPath:
        parts: list[JsonPathPart] = []
        for frame in self.stack:
            if isinstance(frame.container, list):
                if frame.pending:
                    parts.append(len(frame.container))
            elif frame.key is not None:
                parts.append(frame.key)
        return tuple(parts)

    def _fail(self, pos: int, context: str) -> GoSyntaxError:
        byte = self.data[pos] if pos < self.n else _EOF_BYTE
        return GoSyntaxError(
            f"invalid character {_quote_char(byte)} {context}",
            pos,
            byte if pos < self.n else None,
            self._path(),
        )

    def _eof(self) -> GoSyntaxError:
        return GoSyntaxError("unexpected end of JSON input", self.n, None, self._path())

    def _byte(self, pos: int) -> int:
        return self.data[pos] if pos < self.n else -1

    def _ws(self, pos: int) -> int:
        match = _WS.match(self.data, pos)
        assert match is not None  # the pattern matches the empty string
        return match.end()

    # -- driver -----------------------------------------------------------------------------------

    def parse(self) -> Node:
        pos = self._ws(0)
        while True:
            value, pos, opened = self._value(pos)
            if opened:
                continue  # a container was pushed; ``pos`` is at its first value
            pos, done, value = self._end_value(value, pos)
            if done:
                return value

    def _value(self, pos: int) -> tuple[Node, int, bool]:
        """Parse the value at ``pos``; for a non-empty container push it and report ``opened``."""
        c = self._byte(pos)
        if c in (0x7B, 0x5B):  # { [
            if len(self.stack) + 1 > MAX_DEPTH:
                raise self._fail(pos, "exceeded max depth")
            return self._open(c, pos)
        if c == 0x22:
            text, pos = self._string(pos)
            return text, pos, False
        if c == 0x2D or c in _DIGITS:
            num, pos = self._number(pos)
            return num, pos, False
        if c == 0x74:
            return True, self._literal(pos, b"true"), False
        if c == 0x66:
            return False, self._literal(pos, b"false"), False
        if c == 0x6E:
            return None, self._literal(pos, b"null"), False
        if c < 0:
            raise self._eof()
        raise self._fail(pos, "looking for beginning of value")

    def _open(self, c: int, pos: int) -> tuple[Node, int, bool]:
        pos = self._ws(pos + 1)
        if c == 0x5B:
            items: list[Node] = []
            if self._byte(pos) == 0x5D:
                return items, pos + 1, False
            self.stack.append(_Frame(items))
            return None, pos, True
        obj = Obj()
        if self._byte(pos) == 0x7D:
            return obj, pos + 1, False
        frame = _Frame(obj)
        self.stack.append(frame)
        return None, self._key(frame, pos), True

    def _key(self, frame: _Frame, pos: int) -> int:
        """Parse ``"key" :`` at ``pos`` (after whitespace); return the position of the value."""
        frame.key = None
        c = self._byte(pos)
        if c != 0x22:
            raise self._eof() if c < 0 else self._fail(pos, "looking for beginning of object key string")
        frame.key, pos = self._string(pos)
        pos = self._ws(pos)
        c = self._byte(pos)
        if c != 0x3A:
            raise self._eof() if c < 0 else self._fail(pos, "after object key")
        return self._ws(pos + 1)

    def _end_value(self, value: Node, pos: int) -> tuple[int, bool, Node]:
        """Attach a finished value, consume separators and closers.

        Returns (position of the next value, whole document done, the root when done).
        """
        while self.stack:
            frame = self.stack[-1]
            container = frame.container
            if isinstance(container, list):
                container.append(value)
                frame.pending = False
            else:
                assert frame.key is not None
                container.pairs.append((frame.key, value))
                frame.key = None
            pos = self._ws(pos)
            c = self._byte(pos)
            if c < 0:
                raise self._eof()
            if c == 0x2C:  # ,
                pos = self._ws(pos + 1)
                if isinstance(container, Obj):
                    pos = self._key(frame, pos)
                else:
                    frame.pending = True
                return pos, False, None
            closer = 0x5D if isinstance(container, list) else 0x7D
            if c != closer:
                context = "after array element" if closer == 0x5D else "after object key:value pair"
                raise self._fail(pos, context)
            self.stack.pop()
            value = container
            pos += 1
        pos = self._ws(pos)
        if pos < self.n:
            raise self._fail(pos, "after top-level value")
        return pos, True, value

    # -- tokens -----------------------------------------------------------------------------------

    def _string(self, start: int) -> tuple[str, int]:
        data, pos = self.data, start + 1
        while True:
            match = _STR_CHUNK.match(data, pos)
            assert match is not None
            pos = match.end()
            c = self._byte(pos)
            if c == 0x22:
                return _go_unquote(data[start + 1 : pos]), pos + 1
            if c < 0:
                raise self._eof()
            if c != 0x5C:
                raise self._fail(pos, "in string literal")  # a control character
            pos = self._escape(pos)

    def _escape(self, pos: int) -> int:
        esc = pos + 1
        c = self._byte(esc)
        if c in _SIMPLE_ESC:
            return esc + 1
        if c != 0x75:  # u
            raise self._fail(esc, "in string escape code")
        for hex_pos in range(esc + 1, esc + 5):
            if self._byte(hex_pos) not in _HEX:
                raise self._fail(hex_pos, "in \\u hexadecimal character escape")
        return esc + 5

    def _number(self, start: int) -> tuple[Num, int]:
        pos = start
        if self._byte(pos) == 0x2D:
            pos += 1
            if self._byte(pos) not in _DIGITS:
                raise self._fail(pos, "in numeric literal")
        if self._byte(pos) == 0x30:
            pos += 1
        else:
            pos = self._digits(pos)
        if self._byte(pos) == 0x2E:
            pos += 1
            if self._byte(pos) not in _DIGITS:
                raise self._fail(pos, "after decimal point in numeric literal")
            pos = self._digits(pos)
        if self._byte(pos) in (0x65, 0x45):
            pos += 1
            if self._byte(pos) in (0x2B, 0x2D):
                pos += 1
            if self._byte(pos) not in _DIGITS:
                raise self._fail(pos, "in exponent of numeric literal")
            pos = self._digits(pos)
        return Num(self.data[start:pos].decode("ascii")), pos

    def _digits(self, pos: int) -> int:
        while self._byte(pos) in _DIGITS:
            pos += 1
        return pos

    def _literal(self, pos: int, word: bytes) -> int:
        name = word.decode("ascii")
        for k in range(1, len(word)):
            if self._byte(pos + k) != word[k]:
                raise self._fail(pos + k, f"in literal {name} (expecting '{chr(word[k])}')")
        return pos + len(word)


def parse(data: bytes) -> Node:
    return _Scanner(data).parse()


_UNQUOTE_TOKEN = re.compile(rb'\\u([0-9a-fA-F]{4})|\\(["\\/bfnrt])|[^\\]+', re.DOTALL)
_ESCAPED = {b'"': '"', b"\\": "\\", b"/": "/", b"b": "\b", b"f": "\f", b"n": "\n", b"r": "\r", b"t": "\t"}


def _go_unquote(content: bytes) -> str:
    """Go's ``unquote``: escapes, surrogate pairs (lone halves -> U+FFFD), invalid UTF-8 -> U+FFFD."""
    if b"\\" not in content:
        return replace_invalid(content)
    tokens: list[str | int] = []  # int = a \uXXXX code unit
    for match in _UNQUOTE_TOKEN.finditer(content):
        hex_digits, simple = match.group(1), match.group(2)
        if hex_digits is not None:
            tokens.append(int(hex_digits, 16))
        elif simple is not None:
            tokens.append(_ESCAPED[simple])
        else:
            tokens.append(replace_invalid(match.group(0)))
    return "".join(_join_code_units(tokens))


def _join_code_units(tokens: list[str | int]) -> Iterator[str]:
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if isinstance(token, str):
            yield token
        elif not 0xD800 <= token < 0xE000:
            yield chr(token)
        else:
            low = tokens[i] if i < len(tokens) else None
            if 0xD800 <= token < 0xDC00 and isinstance(low, int) and 0xDC00 <= low < 0xE000:
                yield chr(0x10000 + ((token - 0xD800) << 10) + (low - 0xDC00))
                i += 1
            else:
                yield "\ufffd"


# -- Unmarshal --------------------------------------------------------------------------------------


@dataclass
class GoError:
    """An error as the Go decoder builds it; type errors get their context rewritten on the way up."""

    rule: str
    json_path: JsonPath
    text: str = ""
    value: str = ""  # UnmarshalTypeError.Value: "number", "string", "number 1e400", ...
    go_type: str = ""
    struct: str = ""
    field: str = ""
    is_type_error: bool = False
    subject: str = ""  # for messages: the offending value / key

    def message(self) -> str:
        if not self.is_type_error:
            return self.text
        if self.struct or self.field:
            return (
                f"json: cannot unmarshal {self.value} into Go struct field "
                f"{self.struct}.{self.field} of type {self.go_type}"
            )
        return f"json: cannot unmarshal {self.value} into Go value of type {self.go_type}"


class Hard(Exception):
    """An error that aborts decoding (returned by an ``UnmarshalJSON`` or by ``json.Unmarshal``)."""

    def __init__(self, err: GoError) -> None:
        super().__init__(err.message())
        self.err = err


@dataclass(frozen=True)
class Prim:
    go_name: str


@dataclass(frozen=True)
class Iface:
    go_name: str = "interface {}"


@dataclass(frozen=True)
class SliceT:
    elem: GoType

    @property
    def go_name(self) -> str:
        return "[]" + self.elem.go_name


@dataclass(frozen=True)
class MapT:
    elem: GoType

    @property
    def go_name(self) -> str:
        return "map[string]" + self.elem.go_name


@dataclass(frozen=True)
class StructT:
    name: str  # reflect Name(), used in error context
    go_name: str  # reflect String(), used as a target type
    fields: tuple[tuple[str, GoType], ...]

    @functools.cached_property
    def _exact(self) -> dict[str, str]:
        return {name: name for name, _ in self.fields}

    @functools.cached_property
    def _folded(self) -> dict[str, str]:
        return {fold_name(name): name for name, _ in self.fields}

    @functools.cached_property
    def types(self) -> dict[str, GoType]:
        return dict(self.fields)

    def lookup(self, key: str) -> str | None:
        """Go matches a key to a field exactly first, then case-insensitively (Unicode simple folding)."""
        return self._exact.get(key) or self._folded.get(fold_name(key))


@dataclass(frozen=True)
class Unmarshaler:
    """A named type with its own ``UnmarshalJSON``. Behind a pointer (``pointer``), ``null`` sets nil
    without calling it; a value type's method is called even for ``null``."""

    go_name: str
    unmarshal: Callable[[Node, JsonPath], Any]
    pointer: bool = False
    zero: Any = None


GoType: TypeAlias = "Prim | Iface | SliceT | MapT | StructT | Unmarshaler"

# Go's foldRune maps a rune to the smallest rune of its case-folding orbit; the only non-ASCII runes
# whose orbit reaches ASCII are the long s (-> S) and the Kelvin sign (-> K).
_FOLD_TABLE = {**{c: c - 32 for c in range(ord("a"), ord("z") + 1)}, 0x017F: ord("S"), 0x212A: ord("K")}


def fold_name(key: str) -> str:
    return key.translate(_FOLD_TABLE)


@dataclass
class GoSlice:
    """A Go slice: decoding into an existing slice reuses its backing array (even past its length)."""

    backing: list[Any]
    length: int

    def items(self) -> list[Any]:
        return self.backing[: self.length]


@dataclass
class StructVal:
    fields: dict[str, Any]
    keys: dict[str, str] = field(default_factory=dict)  # field -> the key spelling that set it last


STRING = Prim("string")
BOOL = Prim("bool")
IFACE = Iface()


def zero(t: GoType) -> Any:
    if t is STRING:
        return ""
    if isinstance(t, Unmarshaler):
        return t.zero
    if t is BOOL:
        return False
    if isinstance(t, StructT):
        return StructVal({name: zero(ft) for name, ft in t.fields})
    return None


def kind_of(node: Node) -> str:
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "bool"
    if isinstance(node, str):
        return "string"
    if isinstance(node, Num):
        return "number"
    return "array" if isinstance(node, list) else "object"


class DecodeState:
    """One ``json.Unmarshal`` call: its first saved error and its error context."""

    def __init__(self) -> None:
        self.saved: GoError | None = None
        self.ctx_struct: str | None = None
        self.ctx_stack: list[str] = []

    def add_context(self, err: GoError) -> None:
        if err.is_type_error and (self.ctx_struct is not None or self.ctx_stack):
            err.struct = self.ctx_struct or ""
            stack = [*self.ctx_stack, err.field] if err.field else list(self.ctx_stack)
            err.field = ".".join(stack)

    def save(self, err: GoError) -> None:
        if self.saved is None:
            self.add_context(err)
            self.saved = err

    def value(self, node: Node, t: GoType, cur: Any, path: JsonPath) -> Any:
        if isinstance(t, Unmarshaler):
            return None if node is None and t.pointer else t.unmarshal(node, path)
        if isinstance(t, Iface):
            return node
        kind = kind_of(node)
        if kind == "null":
            return None if isinstance(t, SliceT | MapT) else cur
        if isinstance(t, StructT) and isinstance(node, Obj):
            return self._struct(node, t, cur, path)
        if isinstance(t, MapT) and isinstance(node, Obj):
            return self._map(node, t, cur, path)
        if isinstance(t, SliceT) and isinstance(node, list):
            return self._slice(node, t, cur, path)
        if (t is STRING and kind == "string") or (t is BOOL and kind == "bool"):
            return node
        self.save(type_error(kind, t, path))
        return cur

    def _struct(self, node: Obj, t: StructT, cur: StructVal, path: JsonPath) -> StructVal:
        orig_len, orig_struct = len(self.ctx_stack), self.ctx_struct
        for key, val in node.pairs:
            name = t.lookup(key)
            if name is None:
                continue  # unknown keys are skipped without looking inside
            self.ctx_stack.append(name)
            self.ctx_struct = t.name
            cur.fields[name] = self.value(val, t.types[name], cur.fields[name], (*path, key))
            cur.keys[name] = key
            # restored only on success: an error propagating up keeps this context, as in Go
            del self.ctx_stack[orig_len:]
            self.ctx_struct = orig_struct
        return cur

    def _map(self, node: Obj, t: MapT, cur: dict[str, Any] | None, path: JsonPath) -> dict[str, Any]:
        result = cur if cur is not None else {}
        for key, val in node.pairs:
            result[key] = self.value(val, t.elem, zero(t.elem), (*path, key))
        return result

    def _slice(self, node: list[Node], t: SliceT, cur: GoSlice | None, path: JsonPath) -> GoSlice:
        backing = cur.backing if cur is not None else []
        length = cur.length if cur is not None else 0
        for i, item in enumerate(node):
            if i >= len(backing):
                backing.append(zero(t.elem))
            length = max(length, i + 1)
            backing[i] = self.value(item, t.elem, backing[i], (*path, i))
        if not node:
            return GoSlice([], 0)  # Go makes a fresh empty (non-nil) slice
        return GoSlice(backing, len(node))


def type_error(kind: str, t: GoType, path: JsonPath) -> GoError:
    return GoError(
        rule="type", json_path=path, value=kind, go_type=t.go_name, is_type_error=True, subject=kind
    )


def unmarshal(node: Node, t: GoType, path: JsonPath) -> Any:
    """``json.Unmarshal(value, &fresh)``: a new decode state; any error is returned (raised) upward."""
    state = DecodeState()
    try:
        result = state.value(node, t, zero(t), path)
    except Hard as exc:
        state.add_context(exc.err)
        raise
    if state.saved is not None:
        raise Hard(state.saved)
    return result


def raw_keys(node: Node, path: JsonPath) -> dict[str, bool] | None:
    """``json.Unmarshal(value, &raw)`` into ``map[string]interface{}``: key -> value is null."""
    if node is None:
        return None
    if not isinstance(node, Obj):
        raise Hard(type_error(kind_of(node), Prim("map[string]interface {}"), path))
    overflow = _first_overflow(node, path)
    if overflow is not None:
        num, num_path = overflow
        raise Hard(
            GoError(
                rule="type",
                json_path=num_path,
                value=f"number {num.text}",
                go_type="float64",
                is_type_error=True,
                subject=num.text,
            )
        )
    return {key: val is None for key, val in node.pairs}


def _first_overflow(node: Obj, path: JsonPath) -> tuple[Num, JsonPath] | None:
    """The first number (document order) that Go's ``strconv.ParseFloat`` rejects as out of range."""
    todo: list[tuple[Node, JsonPath]] = [(node, path)]
    while todo:
        current, where = todo.pop()
        if isinstance(current, Num):
            if _float_overflows(current.text):
                return current, where
        elif isinstance(current, list):
            todo.extend(reversed([(item, (*where, i)) for i, item in enumerate(current)]))
        elif isinstance(current, Obj):
            todo.extend(reversed([(val, (*where, key)) for key, val in current.pairs]))
    return None


def _float_overflows(text: str) -> bool:
    return float(text) in (float("inf"), float("-inf"))
