"""net/url (``Parse``, ``ParseQuery``, ``Values.Encode``, ``URL.String``), net/netip ``ParseAddr``,
``net.ParseIP`` and ``net.JoinHostPort``, as in Go 1.25 (the toolchain of the last Navidrome release
with the legacy plugin host), including its rule that only an IPv6 address may stand in brackets.

One port for every caller: the allow-list matcher (``host/netpolicy.py``), the Subsonic router
(``host/subsonicapi.py``) and the artwork ShareURL (``host/artwork.py``). Strings are Go strings (see
``gocompat``); the parser works on their bytes, as Go does, so an escape that cuts a multi-byte
character is quoted byte by byte in the error text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_wasmhost.gocompat.strconv import quote
from pytest_wasmhost.gocompat.utf8 import go_bytes, go_string

__all__ = [
    "URL",
    "AddrError",
    "URLError",
    "encode_query",
    "escape_path",
    "get_scheme",
    "join_host_port",
    "parse",
    "parse_addr",
    "parse_ip",
    "parse_query",
    "split_host_port",
    "url_string",
]


class URLError(ValueError):
    """``url.Parse`` failed; ``str()`` is Go's text, e.g. ``parse "http://[::1": missing ']' in host``."""


class _Error(Exception):
    """Go's inner error, before ``url.Error`` wraps it with ``parse "<url>": ``."""


@dataclass(frozen=True, slots=True)
class URL:
    """The fields of Go's ``url.URL`` that callers read (unescaped, as Go stores them)."""

    scheme: str = ""
    opaque: str = ""
    userinfo: str | None = None  # raw, as written; None when the URL has no '@' in its authority
    host: str = ""  # host[:port], brackets kept, like Go's URL.Host
    path: str = ""
    raw_query: str = ""
    fragment: str = ""

    @property
    def hostname(self) -> str:
        """Go's ``URL.Hostname()``: no port, no brackets."""
        return split_host_port(self.host)[0]

    @property
    def port(self) -> str:
        """Go's ``URL.Port()``: the digits after the last ``:``, or ``""``."""
        return split_host_port(self.host)[1]


# Encoding modes of net/url (the order of its constants).
_PATH, _PATH_SEGMENT, _HOST, _ZONE, _USER_PASSWORD, _QUERY_COMPONENT, _FRAGMENT = range(7)


def _should_escape(c: int, mode: int) -> bool:
    """net/url's shouldEscape."""
    if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A or 0x30 <= c <= 0x39:
        return False
    if mode in (_HOST, _ZONE) and chr(c) in "!$&'()*+,;=:[]<>\"":
        return False
    if chr(c) in "-_.~":
        return False
    if chr(c) in "$&+,/:;=?@":
        if mode == _PATH:
            return c == ord("?")
        if mode == _PATH_SEGMENT:
            return chr(c) in "/;,?"
        if mode == _USER_PASSWORD:
            return chr(c) in "@/?:"
        if mode == _QUERY_COMPONENT:
            return True
        if mode == _FRAGMENT:
            return False
    return not (mode == _FRAGMENT and chr(c) in "!()*")


_KEEP: tuple[frozenset[int], ...] = tuple(
    frozenset(c for c in range(256) if not _should_escape(c, mode)) for mode in range(7)
)
_HEX = frozenset(b"0123456789abcdefABCDEF")
_USERINFO_CHARS = frozenset(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._:~!$&'()*+,;=%@"
)


def _escape(data: bytes, mode: int) -> str:
    keep = _KEEP[mode]
    out: list[str] = []
    for c in data:
        if c == 0x20 and mode == _QUERY_COMPONENT:
            out.append("+")
        elif c in keep:
            out.append(chr(c))
        else:
            out.append(f"%{c:02X}")
    return "".join(out)


def _unescape(s: bytes, mode: int) -> bytes:
    """net/url's unescape: validate every escape first (Go's error for the first bad one), then decode."""
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x25:  # %
            if i + 2 >= len(s) or s[i + 1] not in _HEX or s[i + 2] not in _HEX:
                raise _Error("invalid URL escape " + quote(s[i : i + 3]))
            value = int(s[i + 1 : i + 3], 16)
            # In a host, escapes are only for non-ASCII bytes; %25 introduces an IPv6 zone.
            if mode == _HOST and value < 0x80 and s[i : i + 3] != b"%25":
                raise _Error("invalid URL escape " + quote(s[i : i + 3]))
            if mode == _ZONE and s[i : i + 3] != b"%25" and value != 0x20 and _should_escape(value, _HOST):
                raise _Error("invalid URL escape " + quote(s[i : i + 3]))
            i += 3
            continue
        if mode in (_HOST, _ZONE) and c < 0x80 and _should_escape(c, mode):
            raise _Error("invalid character " + quote(s[i : i + 1]) + " in host name")
        i += 1
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x25:
            out.append(int(s[i + 1 : i + 3], 16))
            i += 3
            continue
        out.append(0x20 if c == 0x2B and mode == _QUERY_COMPONENT else c)
        i += 1
    return bytes(out)


# -- url.Parse --------------------------------------------------------------------------------------


def parse(raw: str) -> URL:
    """Go's ``url.Parse(raw)`` (a URL reference: absolute or relative); raises :class:`URLError`."""
    data = go_bytes(raw)
    before, hash_sign, fragment = data.partition(b"#")
    try:
        url = _parse(before)
    except _Error as exc:
        raise URLError(f"parse {quote(before)}: {exc}") from None
    if not hash_sign:
        return url
    try:
        decoded = _unescape(fragment, _FRAGMENT)
    except _Error as exc:
        raise URLError(f"parse {quote(data)}: {exc}") from None
    return URL(url.scheme, url.opaque, url.userinfo, url.host, url.path, url.raw_query, go_string(decoded))


def _parse(raw: bytes) -> URL:
    if any(c < 0x20 or c == 0x7F for c in raw):
        raise _Error("net/url: invalid control character in URL")
    if raw == b"*":
        return URL(path="*")
    scheme, rest = _get_scheme(raw)
    scheme = scheme.lower()
    if rest.endswith(b"?") and rest.count(b"?") == 1:
        rest, query = rest[:-1], b""
    else:
        rest, _, query = rest.partition(b"?")
    if not rest.startswith(b"/"):
        if scheme:
            return URL(scheme=go_string(scheme), opaque=go_string(rest), raw_query=go_string(query))
        if b":" in rest.partition(b"/")[0]:
            raise _Error("first path segment in URL cannot contain colon")
    userinfo: bytes | None = None
    host = b""
    if (scheme or not rest.startswith(b"///")) and rest.startswith(b"//"):
        authority, slash, path = rest[2:].partition(b"/")
        rest = slash + path
        userinfo, host = _parse_authority(authority)
    return URL(
        scheme=go_string(scheme),
        userinfo=None if userinfo is None else go_string(userinfo),
        host=go_string(host),
        path=go_string(_unescape(rest, _PATH)),
        raw_query=go_string(query),
    )


def get_scheme(raw: str) -> tuple[str, str] | None:
    """Go's ``getScheme`` (case kept): ``(scheme, rest)``, ``("", raw)`` without one, None for ``:x``."""
    try:
        scheme, rest = _get_scheme(go_bytes(raw))
    except _Error:
        return None
    return go_string(scheme), go_string(rest)


def _get_scheme(raw: bytes) -> tuple[bytes, bytes]:
    for i, c in enumerate(raw):
        if 0x61 <= c <= 0x7A or 0x41 <= c <= 0x5A:
            continue
        if 0x30 <= c <= 0x39 or c in b"+-.":
            if i == 0:
                return b"", raw
            continue
        if c == 0x3A:  # :
            if i == 0:
                raise _Error("missing protocol scheme")
            return raw[:i], raw[i + 1 :]
        return b"", raw
    return b"", raw


def _parse_authority(authority: bytes) -> tuple[bytes | None, bytes]:
    at = authority.rfind(b"@")  # the LAST '@': http://allowed.com@127.0.0.1/ is 127.0.0.1
    host = _parse_host(authority[at + 1 :])
    if at < 0:
        return None, host
    userinfo = authority[:at]
    if any(c not in _USERINFO_CHARS for c in userinfo):
        raise _Error("net/url: invalid userinfo")
    for part in userinfo.split(b":", 1):
        _unescape(part, _USER_PASSWORD)
    return userinfo, host


def _parse_host(host: bytes) -> bytes:
    bracket = host.rfind(b"[")
    if bracket > 0:
        raise _Error("invalid IP-literal")
    if bracket == 0:
        close = host.rfind(b"]")
        if close < 0:
            raise _Error("missing ']' in host")
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            raise _Error(f"invalid port {quote(colon_port)} after host")
        port = _unescape(colon_port, _HOST)
        hostname = host[1:close]
        zone = hostname.find(b"%25")
        if zone >= 0:
            literal = _unescape(hostname[:zone], _HOST) + _unescape(hostname[zone:], _ZONE)
        else:
            literal = _unescape(hostname, _HOST)
        try:
            is_ipv4 = _parse_addr(literal)
        except _Error as exc:
            raise _Error(f"invalid host: {exc}") from None
        if is_ipv4:  # only an IPv6 address may stand in brackets (RFC 3986)
            raise _Error("invalid IP-literal")
        return b"[" + literal + b"]" + port
    colon = host.rfind(b":")  # Go 1.25: the port is after the last colon
    if colon >= 0 and not _valid_optional_port(host[colon:]):
        raise _Error(f"invalid port {quote(host[colon:])} after host")
    return _unescape(host, _HOST)


def _valid_optional_port(port: bytes) -> bool:
    return port == b"" or (port[:1] == b":" and all(0x30 <= c <= 0x39 for c in port[1:]))


def split_host_port(host_port: str) -> tuple[str, str]:
    """url's ``splitHostPort`` (``URL.Hostname()`` / ``URL.Port()``): a valid ``:digits`` port is cut
    off, then one pair of brackets."""
    host, port = host_port, ""
    colon = host.rfind(":")
    if colon != -1 and _valid_optional_port(go_bytes(host[colon:])):
        host, port = host[:colon], host[colon + 1 :]
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


# -- queries and output -----------------------------------------------------------------------------


def parse_query(raw_query: str) -> dict[str, list[str]]:
    """``url.ParseQuery`` as ``URL.Query()`` uses it: pairs with ``;`` or a bad escape are dropped."""
    values: dict[str, list[str]] = {}
    for pair in go_bytes(raw_query).split(b"&"):
        if not pair or b";" in pair:
            continue
        key, _, value = pair.partition(b"=")
        try:
            key, value = _unescape(key, _QUERY_COMPONENT), _unescape(value, _QUERY_COMPONENT)
        except _Error:
            continue
        values.setdefault(go_string(key), []).append(go_string(value))
    return values


def encode_query(pairs: Sequence[tuple[str, str]]) -> str:
    """``url.Values.Encode``: keys in byte order, each key's values in their order."""
    ordered = sorted(((go_bytes(k), go_bytes(v)) for k, v in pairs), key=lambda kv: kv[0])
    return "&".join(f"{_escape(k, _QUERY_COMPONENT)}={_escape(v, _QUERY_COMPONENT)}" for k, v in ordered)


def escape_path(path: str) -> str:
    """``URL.EscapedPath()`` of a URL with this (unescaped) ``Path`` and no ``RawPath``."""
    return "*" if path == "*" else _escape(go_bytes(path), _PATH)


def url_string(scheme: str, host: str, path: str, raw_query: str = "") -> str:
    """Go's ``URL.String`` for a URL of these parts (no userinfo, opaque, fragment; ``path`` unescaped)."""
    text = f"{scheme}:" if scheme else ""
    if (scheme or host) and (host or path):
        text += "//" + _escape(go_bytes(host), _HOST)
    escaped_path = escape_path(path)
    if escaped_path and not escaped_path.startswith("/") and host:
        text += "/"
    if not text and ":" in escaped_path.partition("/")[0]:
        text = "./"
    text += escaped_path
    return f"{text}?{raw_query}" if raw_query else text


def join_host_port(host: str, port: int | str) -> str:
    """``net.JoinHostPort``: brackets around a host that has a colon."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# -- net/netip --------------------------------------------------------------------------------------


class AddrError(ValueError):
    """``netip.ParseAddr`` failed; ``str()`` is Go's text, e.g. ``ParseAddr("zz"): unable to parse IP``."""


def parse_addr(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """``netip.ParseAddr`` (the zone is dropped from the value); raises :class:`AddrError` with Go's text."""
    try:
        _parse_addr(go_bytes(text))
    except _Error as exc:
        raise AddrError(str(exc)) from None
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:  # netip accepted it: never expected, but then a name is the safe reading
        raise AddrError(f"ParseAddr({quote(text)}): unable to parse IP") from None


def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``net.ParseIP``: ``netip.ParseAddr`` without a zone, or None."""
    if "%" in text:
        return None
    try:
        return parse_addr(text)
    except AddrError:
        return None


def _parse_addr(s: bytes) -> bool:
    """netip's ParseAddr: returns whether ``s`` is plain IPv4; raises Go's error."""
    for c in s:
        if c == 0x2E:
            _parse_ipv4_fields(s, 0, len(s))
            return True
        if c == 0x3A:
            _parse_ipv6(s)
            return False
        if c == 0x25:
            raise _addr_error(s, "missing IPv6 address")
    raise _addr_error(s, "unable to parse IP")


def _addr_error(given: bytes, msg: str, at: bytes = b"") -> _Error:
    text = f"ParseAddr({quote(given)}): {msg}"
    return _Error(f"{text} (at {quote(at)})" if at else text)


def _parse_ipv4_fields(given: bytes, start: int, end: int) -> None:
    s = given[start:end]
    value = fields = digits = 0
    for i, c in enumerate(s):
        if 0x30 <= c <= 0x39:
            if digits == 1 and value == 0:
                raise _addr_error(given, "IPv4 field has octet with leading zero")
            value = value * 10 + c - 0x30
            digits += 1
            if value > 255:
                raise _addr_error(given, "IPv4 field has value >255")
        elif c == 0x2E:
            if i == 0 or i == len(s) - 1 or s[i - 1] == 0x2E:
                raise _addr_error(given, "IPv4 field must have at least one digit", s[i:])
            if fields == 3:
                raise _addr_error(given, "IPv4 address too long")
            fields, value, digits = fields + 1, 0, 0
        else:
            raise _addr_error(given, "unexpected character", s[i:])
    if fields < 3:
        raise _addr_error(given, "IPv4 address too short")


def _parse_ipv6(given: bytes) -> None:
    """A port of ``netip.parseIPv6`` (only the error texts matter here)."""
    s, zone = given, b""
    if b"%" in s:
        s, _, zone = s.partition(b"%")
        if not zone:
            raise _addr_error(given, "zone must be a non-empty string")
    ellipsis = -1
    if s[:2] == b"::":
        ellipsis, s = 0, s[2:]
        if not s:
            return
    i = 0
    while i < 16:
        off = acc = 0
        while off < len(s) and s[off] in _HEX:
            acc = (acc << 4) + int(s[off : off + 1], 16)
            if off > 3:
                raise _addr_error(given, "each group must have 4 or less digits", s)
            if acc > 0xFFFF:
                raise _addr_error(given, "IPv6 field has value >=2^16", s)
            off += 1
        if off == 0:
            raise _addr_error(given, "each colon-separated field must have at least one digit", s)
        if off < len(s) and s[off] == 0x2E:
            if ellipsis < 0 and i != 12:
                raise _addr_error(
                    given, "embedded IPv4 address must replace the final 2 fields of the address", s
                )
            if i + 4 > 16:
                raise _addr_error(
                    given, "too many hex fields to fit an embedded IPv4 at the end of the address", s
                )
            end = len(given) - (len(zone) + 1 if zone else 0)
            _parse_ipv4_fields(given, end - len(s), end)
            s, i = b"", i + 4
            break
        i += 2
        s = s[off:]
        if not s:
            break
        if s[0] != 0x3A:
            raise _addr_error(given, "unexpected character, want colon", s)
        if len(s) == 1:
            raise _addr_error(given, "colon must be followed by more characters", s)
        s = s[1:]
        if s[0] == 0x3A:
            if ellipsis >= 0:
                raise _addr_error(given, "multiple :: in address", s)
            ellipsis, s = i, s[1:]
            if not s:
                break
    if s:
        raise _addr_error(given, "trailing garbage after address", s)
    if i < 16 and ellipsis < 0:
        raise _addr_error(given, "address string too short")
    if i >= 16 and ellipsis >= 0:
        raise _addr_error(given, "the :: must expand to at least one field of zeros")
