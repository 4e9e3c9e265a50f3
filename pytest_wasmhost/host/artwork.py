"""Host service ``artwork`` (spec/services/artwork.md): public image URLs for artists, albums and tracks.

A URL is ``<scheme>://<host><path>/share/img/<token>[?size=<n>]``, the token an HS256 JWT with claims
``iss=ND`` and ``id=<prefix>-<id>_0`` (no expiry). The base comes from the scope's
:class:`ArtworkOptions` (``HostOptions.artwork``, held live by :class:`LiveArtworkOptions`), read on every
call as the original read its live configuration:

* ``share_url``  (the original's ``ShareURL``): when set, only its scheme and host are used;
* ``base_host``, ``base_scheme`` (default ``http``), ``base_path``: the original's ``BaseHost``,
  ``BaseScheme`` and ``BasePath``, used when there is no ShareURL (no BaseHost: ``http://localhost``);
* ``secret``: the token secret (str or bytes), default :data:`DEFAULT_SECRET`.

The original built these URLs with Go's ``net/url`` and ``path`` packages; the helpers below reproduce
what those did for the parts involved (parsing ShareURL, joining BasePath, escaping on output), so a
plugin sees the same string it saw in production. The id is not validated, and the service never fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import posixpath
import re
import threading
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Final
from urllib.parse import quote

from pytest_wasmhost.abi.proto import artwork_pb2
from pytest_wasmhost.host.base import HostEnvironment, HostFunction, HostService, ServiceContext

DEFAULT_SECRET = "pytest-wasmhost-artwork-secret"
PUBLIC_IMAGES_PATH = "/share/img"  # the original's consts.URLPathPublicImages
JWT_ISSUER = "ND"

# Import name and artwork kind prefix, in the original's link order.
KINDS: tuple[tuple[str, str], ...] = (
    ("get_artist_url", "ar"),
    ("get_album_url", "al"),
    ("get_track_url", "mf"),
)


@dataclass(frozen=True, slots=True)
class ArtworkOptions:
    """The configuration the original read: ShareURL, BaseHost, BaseScheme, BasePath and the token secret
    (``HostOptions.artwork``: a scope's starting values; :class:`LiveArtworkOptions` holds the live ones)."""

    share_url: str = ""
    base_host: str = ""
    base_scheme: str = ""  # empty means http, as in the original
    base_path: str = ""
    secret: str | bytes = DEFAULT_SECRET

    def __post_init__(self) -> None:
        for name in ("share_url", "base_host", "base_scheme", "base_path"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"ArtworkOptions.{name} must be a str, got {type(value).__name__}")
        if not isinstance(self.secret, str | bytes):
            raise TypeError(f"ArtworkOptions.secret must be str or bytes, got {type(self.secret).__name__}")


_SETTINGS: Final = tuple(f.name for f in fields(ArtworkOptions))


class LiveArtworkOptions(MutableMapping[str, Any]):
    """A scope's artwork settings as every call reads them (the original read its live configuration).

    A mapping over :class:`ArtworkOptions`' fields (``wasm_artwork["share_url"] = ...``); each change is
    checked when it is made, so a typo fails the line that made it, not a plugin call. Deleting a setting
    (or setting it to None) restores its default.
    """

    def __init__(self, initial: ArtworkOptions) -> None:
        self._lock = threading.Lock()
        self._current = initial

    @property
    def current(self) -> ArtworkOptions:
        with self._lock:
            return self._current

    def _check(self, key: str) -> None:
        if key not in _SETTINGS:
            raise KeyError(f"the artwork service has no setting {key!r}; valid: {list(_SETTINGS)}")

    def __getitem__(self, key: str) -> Any:
        self._check(key)
        return getattr(self.current, key)

    def __setitem__(self, key: str, value: Any) -> None:
        self._check(key)
        if value is None:
            value = getattr(ArtworkOptions(), key)
        with self._lock:
            self._current = replace(self._current, **{key: value})

    def __delitem__(self, key: str) -> None:
        self[key] = None

    def __iter__(self) -> Iterator[str]:
        return iter(_SETTINGS)

    def __len__(self) -> int:
        return len(_SETTINGS)

    def __repr__(self) -> str:
        return f"LiveArtworkOptions({self.current!r})"


def live_options(env: HostEnvironment) -> LiveArtworkOptions:
    """The scope's live artwork settings, starting from ``env.options.artwork``; shared by its plugins."""
    return env.shared("artwork", lambda: LiveArtworkOptions(env.options.artwork))


# -- the token ---------------------------------------------------------------------------------------
#
# Hand-written on purpose: no JWT library is a dependency, and HS256 with one fixed header is ~10 lines of
# hmac + base64url; a library would also choose its own claim order and escaping, which must match Go's.
#
# Assumption about the bytes: the original signed with go-chi/jwtauth over lestrrat-go/jwx, whose token
# serialiser emits the claims sorted by name (``id`` before ``iss``, also what Go's encoding/json gives a
# map) as compact JSON with encoding/json's string escaping; the header is {"alg":"HS256","typ":"JWT"}.

_HEADER = b'{"alg":"HS256","typ":"JWT"}'


def artwork_id(prefix: str, item_id: str) -> str:
    """The ``id`` claim: kind prefix, the id as given (not validated), and the always-0 "last update".

    An empty id gives an empty claim, as the original's ArtworkID.String() did (spec: ``id: ""``).
    """
    return f"{prefix}-{item_id}_0" if item_id else ""


def encode_artwork_token(artwork_id: str, secret: str | bytes) -> str:
    """The HS256 JWT the original put in a public image URL for ``artwork_id``."""
    payload = f'{{"id":{_go_json_string(artwork_id)},"iss":"{JWT_ISSUER}"}}'.encode()
    signing_input = f"{_b64url(_HEADER)}.{_b64url(payload)}"
    return f"{signing_input}.{_b64url(_hs256(secret, signing_input))}"


def decode_artwork_token(token: str, secret: str | bytes) -> dict[str, Any]:
    """The claims of a token made by :func:`encode_artwork_token`; ValueError if malformed or forged."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError(f"a JWT has 3 dot-separated parts, this one has {len(parts)}")
    header, payload, signature = parts
    if not hmac.compare_digest(_b64url_decode(signature), _hs256(secret, f"{header}.{payload}")):
        raise ValueError("the token's signature does not match the secret")
    if json.loads(_b64url_decode(header)) != {"alg": "HS256", "typ": "JWT"}:
        raise ValueError("the token's header is not HS256/JWT")
    claims = json.loads(_b64url_decode(payload))
    if not isinstance(claims, dict):
        raise ValueError("the token's payload is not a JSON object")
    return claims


def _hs256(secret: str | bytes, signing_input: str) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, signing_input.encode("ascii"), hashlib.sha256).digest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url: {text[:20]!r}") from exc


# encoding/json escapes these beyond what Python's json does (HTML-safe output and JS line separators).
_GO_JSON_EXTRA = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _go_json_string(text: str) -> str:
    """``text`` as Go's encoding/json writes a string (Go >= 1.22: short escapes for \\b and \\f, too)."""
    return json.dumps(text, ensure_ascii=False).translate(_GO_JSON_EXTRA)


# -- the URL -----------------------------------------------------------------------------------------


def artwork_url(prefix: str, item_id: str, size: int, settings: ArtworkOptions) -> str:
    """The public image URL the original returned for one artwork (``size <= 0``: original size)."""
    token = encode_artwork_token(artwork_id(prefix, item_id), settings.secret)
    query = f"size={size}" if size > 0 else ""
    return public_url(f"{PUBLIC_IMAGES_PATH}/{token}", query, settings)


def public_url(path: str, query: str, settings: ArtworkOptions) -> str:
    """The original's PublicURL for an absolute path, with its two base-URL rules."""
    share = _parse_share_url(settings.share_url) if settings.share_url else None
    if share is not None:
        # Rule 1: only ShareURL's scheme and host; its path is ignored and BasePath is not applied.
        scheme, host = share
    else:
        # Rule 2 (also when ShareURL does not parse): as for a request to http://localhost.
        path = _go_path_join(settings.base_path, path)
        if settings.base_host:
            scheme, host = settings.base_scheme or "http", settings.base_host
        else:
            scheme, host = "http", "localhost"
    return _go_url_string(scheme, host, path, query)


def _go_path_join(base: str, path: str) -> str:
    """Go's ``path.Join``: join, then clean (``..``, ``.``, repeated and trailing slashes)."""
    cleaned = posixpath.normpath("/".join(p for p in (base, path) if p))
    # POSIX keeps exactly two leading slashes; Go's path.Clean keeps one.
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


# What Go's url.URL.String leaves unescaped (besides ASCII letters, digits and "-_.~", which quote keeps).
_HOST_SAFE = "!$&'()*+,;=:[]<>\""
_PATH_SAFE = "$&+,/:;=@"


def _go_url_string(scheme: str, host: str, path: str, query: str) -> str:
    """Go's ``url.URL.String`` for a URL made of these parts (``path`` is never empty here)."""
    text = f"{scheme}:" if scheme else ""
    if scheme or host:
        text += "//" + quote(host, safe=_HOST_SAFE, errors="surrogateescape")
    escaped_path = quote(path, safe=_PATH_SAFE)
    if host and not escaped_path.startswith("/"):
        text += "/"
    text += escaped_path
    return f"{text}?{query}" if query else text


# -- ShareURL as Go's url.Parse reads it ------------------------------------------------------------------

_VALID_ESCAPES = re.compile(r"(?:[^%]|%[0-9A-Fa-f]{2})*", re.DOTALL)
_USERINFO_CHARS = re.compile(r"[A-Za-z0-9\-._:~!$&'()*+,;=%]*")
_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_HOST_BYTES = _ASCII_ALNUM | frozenset("-_.~" + _HOST_SAFE)


def _parse_share_url(raw: str) -> tuple[str, str] | None:
    """(scheme, host) of ShareURL as Go's ``url.Parse`` gives them; None where it fails (then rule 2 applies).

    Covers what decides the result here: control characters, the scheme, opaque URLs, the authority
    (userinfo is dropped, the port must be digits, the host is unescaped) and invalid %-escapes.
    IPv6 zone identifiers (``%25``) are held to the host's rules, a little stricter than Go.
    """
    if any(c < " " or c == "\x7f" for c in raw):
        return None
    raw, _, fragment = raw.partition("#")
    if not _VALID_ESCAPES.fullmatch(fragment):
        return None
    split = _split_scheme(raw)
    if split is None:
        return None
    scheme, rest = split
    rest = rest[:-1] if rest.endswith("?") and rest.count("?") == 1 else rest.partition("?")[0]
    if not rest.startswith("/"):
        if scheme:
            return scheme, ""  # an opaque URL such as mailto:x has no host
        if ":" in rest.partition("/")[0]:
            return None  # "first path segment in URL cannot contain colon"
    host = ""
    if rest.startswith("//") and (scheme or not rest.startswith("///")):
        authority, slash, tail = rest[2:].partition("/")
        parsed_host = _parse_authority(authority)
        if parsed_host is None:
            return None
        host, rest = parsed_host, slash + tail
    return (scheme, host) if _VALID_ESCAPES.fullmatch(rest) else None


def _split_scheme(raw: str) -> tuple[str, str] | None:
    """Go's getScheme: a letter, then letters, digits, ``+-.``, up to ``:``; else no scheme."""
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                return "", raw
            continue
        if c == ":":
            return None if i == 0 else (raw[:i].lower(), raw[i + 1 :])
        return "", raw
    return "", raw


def _parse_authority(authority: str) -> str | None:
    userinfo, at, hostport = authority.rpartition("@")
    host = _parse_host(hostport)
    if host is None:
        return None
    if at and not (_USERINFO_CHARS.fullmatch(userinfo) and _VALID_ESCAPES.fullmatch(userinfo)):
        return None
    return host


def _parse_host(host: str) -> str | None:
    if host.startswith("["):
        end = host.rfind("]")
        if end < 0 or not _valid_port(host[end + 1 :]):
            return None
    else:
        colon = host.rfind(":")
        if colon >= 0 and not _valid_port(host[colon:]):
            return None
    return _unescape_host(host)


def _valid_port(colon_port: str) -> bool:
    return colon_port == "" or (colon_port[0] == ":" and all("0" <= c <= "9" for c in colon_port[1:]))


def _unescape_host(host: str) -> str | None:
    """Go's unescape in host mode: %-escapes only for non-ASCII bytes (or %25), no other special ASCII."""
    data, out, i = host.encode(), bytearray(), 0
    while i < len(data):
        byte = data[i]
        if byte == 0x25:  # %
            pair = data[i + 1 : i + 3]
            if len(pair) < 2 or not all(chr(b) in "0123456789abcdefABCDEF" for b in pair):
                return None
            value = int(pair, 16)
            if value < 0x80 and pair != b"25":
                return None
            out.append(value)
            i += 3
            continue
        if byte < 0x80 and chr(byte) not in _HOST_BYTES:
            return None
        out.append(byte)
        i += 1
    # Go strings are bytes: keep undecodable ones so that output escaping restores them exactly.
    return out.decode("utf-8", "surrogateescape")


# -- the service -------------------------------------------------------------------------------------


class ArtworkService(HostService):
    """URLs for ``get_artist_url`` (``ar``), ``get_album_url`` (``al``) and ``get_track_url`` (``mf``)."""

    name = "artwork"
    function_names = tuple(name for name, _ in KINDS)

    @classmethod
    def create(cls, ctx: ServiceContext) -> ArtworkService:
        live = live_options(ctx.env)
        return cls(lambda: live.current)

    def __init__(self, settings: Callable[[], ArtworkOptions]) -> None:
        # A callable, not a value: the original read its live configuration on every call.
        self._settings = settings

    def get_artist_url(self, request: artwork_pb2.GetArtworkUrlRequest) -> artwork_pb2.GetArtworkUrlResponse:
        return self._url("ar", request)

    def get_album_url(self, request: artwork_pb2.GetArtworkUrlRequest) -> artwork_pb2.GetArtworkUrlResponse:
        return self._url("al", request)

    def get_track_url(self, request: artwork_pb2.GetArtworkUrlRequest) -> artwork_pb2.GetArtworkUrlResponse:
        return self._url("mf", request)

    def functions(self) -> Sequence[HostFunction]:
        return tuple(
            HostFunction(
                service=self.name,
                name=name,
                request_type=artwork_pb2.GetArtworkUrlRequest,
                response_type=artwork_pb2.GetArtworkUrlResponse,
                handler=getattr(self, name),
            )
            for name, _ in KINDS
        )

    def _url(
        self, prefix: str, request: artwork_pb2.GetArtworkUrlRequest
    ) -> artwork_pb2.GetArtworkUrlResponse:
        url = artwork_url(prefix, request.id, request.size, self._settings())
        return artwork_pb2.GetArtworkUrlResponse(url=url)
