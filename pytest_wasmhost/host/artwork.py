"""Host service ``artwork`` (spec/services/artwork.md): public image URLs for artists, albums and tracks.

A URL is ``<scheme>://<host><path>/share/img/<token>[?size=<n>]``, the token an HS256 JWT with claims
``iss=ND`` and ``id=<prefix>-<id>_0`` (no expiry). The base comes from the scope's
:class:`ArtworkOptions` (``HostOptions.artwork``, held live by :class:`LiveArtworkOptions`), read on every
call as the original read its live configuration:

* ``share_url``  (the original's ``ShareURL``): when set, only its scheme and host are used;
* ``base_host``, ``base_scheme`` (default ``http``), ``base_path``: the original's ``BaseHost``,
  ``BaseScheme`` and ``BasePath``, used when there is no ShareURL (no BaseHost: ``http://localhost``);
* ``secret``: the token secret (str or bytes), default :data:`DEFAULT_SECRET`.

The original built these URLs with Go's ``net/url`` and ``path`` packages; ``gocompat`` reproduces
what those did for the parts involved (parsing ShareURL, joining BasePath, escaping on output), so a
plugin sees the same string it saw in production. The id is not validated, and the service never fails.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Final

from pytest_wasmhost.abi.proto import artwork_pb2
from pytest_wasmhost.gocompat import json as gojson
from pytest_wasmhost.gocompat import neturl
from pytest_wasmhost.gocompat import path as gopath
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
    """The scope's live artwork settings, starting from its :class:`ArtworkOptions`; shared by its plugins."""
    return env.shared("artwork", lambda: LiveArtworkOptions(env.options.of(ArtworkOptions)))


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
    payload = f'{{"id":{gojson.marshal(artwork_id)},"iss":"{JWT_ISSUER}"}}'.encode()
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
        path = gopath.join(settings.base_path, path)
        if settings.base_host:
            scheme, host = settings.base_scheme or "http", settings.base_host
        else:
            scheme, host = "http", "localhost"
    return neturl.url_string(scheme, host, path, query)


def _parse_share_url(raw: str) -> tuple[str, str] | None:
    """(scheme, host) of ShareURL as Go's ``url.Parse`` gives them; None where it fails (rule 2 then)."""
    try:
        url = neturl.parse(raw)
    except neturl.URLError:
        return None
    return url.scheme, url.host


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
