"""Host service ``subsonicapi``: ``call`` runs a Subsonic API request (spec/services/subsonicapi.md).

The original parsed the plugin's URL with Go's ``url.Parse``, checked the ``u`` user against the
manifest, rewrote ``c``/``f``/``v``, kept only the last path segment as the endpoint and served
``GET /<endpoint>?<query>`` in-process on Navidrome's Subsonic router, authenticated internally as ``u``.
The plugin got the response body, whatever the status. We reproduce every step on the bytes Go saw
(``net/url`` as in Go 1.25, the toolchain of the last Navidrome release with this host), so errors, the
chosen endpoint and the re-encoded query are the original's.

The router is a :class:`SubsonicBackend`, chosen per scope by :class:`SubsonicOptions`
(``HostOptions.subsonicapi.backend``):

* :class:`ForwardingSubsonic`: a real Subsonic-compatible server over HTTP, with configured credentials;
* the test double :class:`pytest_wasmhost.doubles.subsonic.FakeSubsonic` (an in-memory server that
  records every request), which the fixtures, the conformance suite and the CLI wire in (its class is a
  factory: one fresh fake per scope); this module never imports it.

Without a backend (``None``, the default) the service is the original without a router: every call
answers ``SubsonicAPI router not available``. The service never closes a backend it was given: whoever
put it into the options owns it (:class:`ForwardingSubsonic` is a context manager); one a factory made
belongs to its scope and is closed with it.

Decisions where the spec is silent:

* Refusals by a permission rule raise :class:`Denied` (transcript verdict ``denied``): ``username <u>
  is not allowed`` (rule ``allowedUsernames``), ``username <u> not found`` and ``calling SubsonicAPI as
  admin user is not allowed`` (rule ``allowAdmins``, whose check needs a known, non-admin user). Every
  other failure is a plain ``error`` response, including a user-store error (:class:`UserStoreError`).
* A backend that cannot serve at all (:class:`SubsonicBackendError`: the forwarding server is down,
  rejects the configured credentials, ...) is a hard error: the plugin's call traps, naming the cause.
  The in-process original had no such failure, so a test must not pass silently over one.
* Strings Go kept as raw bytes (``%FF`` in the query) reach the plugin and the backend with each invalid
  byte as U+FFFD: protobuf strings in Python must be valid UTF-8.
* Under a permission, a query with more than one ``u`` is refused (``repeated parameter 'u' (username)
  is not allowed``, rule ``u``, before the other checks): the original checked the first value while
  the routed query still carried the others, so ``?u=alice&u=admin`` passed as alice with ``u=admin``
  in the backend's query. Without a permission object nothing is checked, and the query passes as is.
* The original's defensive ``permissions check failed: router not available`` cannot happen here: the
  backend is both the router and the user store, and its absence is answered first.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, cast, runtime_checkable

from pytest_wasmhost.abi.proto import subsonicapi_pb2
from pytest_wasmhost.gocompat import json as gojson
from pytest_wasmhost.gocompat import neturl
from pytest_wasmhost.gocompat import path as gopath
from pytest_wasmhost.gocompat.strings import to_lower
from pytest_wasmhost.gocompat.utf8 import go_bytes, replace_invalid
from pytest_wasmhost.host.base import (
    Denied,
    HostEnvironment,
    HostFunction,
    HostHardError,
    HostService,
    ServiceContext,
)
from pytest_wasmhost.manifest import SubsonicApiPermission

if TYPE_CHECKING:
    import httpx

__all__ = [
    "FAKE_SERVER_VERSION",
    "NOT_FOUND_BODY",
    "SUBSONIC_API_VERSION",
    "ForwardingSubsonic",
    "RecordingBackend",
    "RoutedRequest",
    "SubsonicApiService",
    "SubsonicBackend",
    "SubsonicBackendError",
    "SubsonicOptions",
    "SubsonicUser",
    "UserStoreError",
    "nocase_fold",
    "scope_backend",
    "subsonic_failed",
    "subsonic_json",
    "subsonic_ok",
]

#: ``v`` forced on every call (Navidrome's ``subsonic.Version``).
SUBSONIC_API_VERSION = "1.16.1"

#: What Navidrome's router (chi, no custom NotFound handler) answered for an unknown endpoint.
NOT_FOUND_BODY = "404 page not found\n"

#: ``serverVersion`` in the fake's documents (Navidrome prints ``<tag> (<sha>)``).
FAKE_SERVER_VERSION = "0.59.0 (pytest-wasmhost)"

# Navidrome's Subsonic error texts (server/subsonic/responses/errors.go).
_SUBSONIC_ERRORS: Mapping[int, str] = {
    0: "A generic error",
    10: "Required parameter is missing",
    20: "Incompatible Subsonic REST protocol version. Client must upgrade",
    30: "Incompatible Subsonic REST protocol version. Server must upgrade",
    40: "Wrong username or password",
    50: "User is not authorized for the given operation",
    60: "The trial period for the Subsonic server is over. Please upgrade to Subsonic Premium. "
    "Visit subsonic.org for details",
    70: "The requested data was not found",
}


# --------------------------------------------------------------------------------------------------
# The backend protocol
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubsonicUser:
    """A user as the permission check sees it."""

    username: str
    is_admin: bool = False


class UserStoreError(Exception):
    """The user store failed (not a plain "not found"); the plugin gets this text as ``error``."""


class SubsonicBackendError(Exception):
    """The backend cannot serve at all (network, credentials); the plugin's call traps."""


@runtime_checkable
class SubsonicBackend(Protocol):
    """The Subsonic router and the user store behind ``call``."""

    def find_user(self, username: str) -> SubsonicUser | None:
        """The user named ``username`` by the store's own case rules; ``None`` when there is none.

        Raise :class:`UserStoreError` for another store failure.
        """
        ...

    def handle(self, endpoint: str, query: list[tuple[str, str]], username: str) -> tuple[int, str]:
        """Serve ``GET /<endpoint>?<query>`` authenticated as ``username``; return (status, body text).

        ``query`` is sorted by key (values of a key in their original order) and already carries the
        forced ``c``, ``f`` and ``v``.
        """
        ...


@dataclass(frozen=True, slots=True)
class RoutedRequest:
    """One request that reached a backend's router."""

    endpoint: str
    query: tuple[tuple[str, str], ...]
    username: str  # the internal-auth user (the first ``u``)

    @property
    def path(self) -> str:
        return "/" + self.endpoint

    @property
    def params(self) -> dict[str, str]:
        """The first value of every key, as Go's ``Values.Get`` reads them."""
        first: dict[str, str] = {}
        for key, value in self.query:
            first.setdefault(key, value)
        return first

    def get_all(self, key: str) -> list[str]:
        return [value for k, value in self.query if k == key]

    @property
    def target(self) -> str:
        """The internal request target, as the original built it: ``/ping?c=...&f=json&u=...&v=1.16.1``."""
        query = neturl.encode_query(self.query)
        return neturl.escape_path("/" + self.endpoint) + ("?" + query if query else "")


# --------------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------------


class SubsonicApiService(HostService):
    name = "subsonicapi"
    function_names = ("call",)

    @classmethod
    def create(cls, ctx: ServiceContext) -> SubsonicApiService:
        # A granted service always has its permission object. The original turned a missing one into
        # the restrictive defaults (any user, admins refused), never into "no checks".
        permission = ctx.manifest.permissions.subsonicapi or SubsonicApiPermission(reason="")
        return cls(plugin_id=ctx.plugin_id, backend=scope_backend(ctx.env), permission=permission)

    def __init__(
        self,
        *,
        plugin_id: str,
        backend: SubsonicBackend | None,
        permission: SubsonicApiPermission | None,
    ) -> None:
        """``permission=None`` skips every check, like the original's tests without a permission object."""
        self._plugin_id = plugin_id
        self._backend = backend
        self._permission = permission
        self._allowed = frozenset(to_lower(u) for u in permission.allowed_usernames) if permission else None

    def call(self, request: subsonicapi_pb2.CallRequest) -> subsonicapi_pb2.CallResponse:
        backend = self._backend
        if backend is None:
            return _error("SubsonicAPI router not available")
        try:
            url = neturl.parse(request.url)
        except neturl.URLError as exc:
            return _error(f"invalid URL format: {exc}")
        values = neturl.parse_query(url.raw_query)
        raw_user = values.get("u", [""])[0]
        if not raw_user:
            return _error("missing required parameter 'u' (username)")
        username = replace_invalid(raw_user)
        refusal = self._check_permissions(backend, username, repeated=len(values["u"]) > 1)
        if refusal is not None:
            return refusal
        values["c"] = [self._plugin_id]
        values["f"] = ["json"]
        values["v"] = [SUBSONIC_API_VERSION]
        endpoint = replace_invalid(gopath.base(url.path))
        query = [
            (replace_invalid(key), replace_invalid(value))
            for key in sorted(values, key=go_bytes)  # Go sorts the keys' bytes
            for value in values[key]
        ]
        try:
            _status, body = backend.handle(endpoint, query, username)
        except SubsonicBackendError as exc:
            raise HostHardError(self.name, "call", f"the Subsonic backend failed: {exc}") from exc
        # The body whatever the status: a Subsonic failure is a normal document, a 404 is chi's text.
        return subsonicapi_pb2.CallResponse(json=body)

    def _check_permissions(
        self, backend: SubsonicBackend, username: str, *, repeated: bool
    ) -> subsonicapi_pb2.CallResponse | None:
        permission = self._permission
        if permission is None:
            return None
        if repeated:
            # The checks read the first u, the backend gets them all: it could serve another one.
            _deny("repeated parameter 'u' (username) is not allowed", "u")
        if self._allowed and to_lower(username) not in self._allowed:
            _deny(f"username {username} is not allowed", "allowedUsernames")
        if not permission.allow_admins:
            try:
                user = backend.find_user(username)
            except UserStoreError as exc:
                return _error(str(exc))
            except SubsonicBackendError as exc:
                raise HostHardError(self.name, "call", f"the Subsonic user store failed: {exc}") from exc
            if user is None:
                _deny(f"username {username} not found", "allowAdmins")
            elif user.is_admin:
                _deny("calling SubsonicAPI as admin user is not allowed", "allowAdmins")
        return None

    def functions(self) -> Sequence[HostFunction]:
        return (
            HostFunction(
                service=self.name,
                name="call",
                request_type=subsonicapi_pb2.CallRequest,
                response_type=subsonicapi_pb2.CallResponse,
                handler=self.call,
            ),
        )


def scope_backend(env: HostEnvironment) -> SubsonicBackend | None:
    """The scope's backend: the one its options name, one its factory made for it (on first use), or None."""
    backend = env.options.of(SubsonicOptions).backend
    if backend is None or _is_backend(backend):
        return cast("SubsonicBackend | None", backend)
    made: object = env.shared(_SCOPE_BACKEND, cast("BackendFactory", backend))
    if not _is_backend(made):
        raise TypeError(
            f"SubsonicOptions.backend's factory {backend!r} made {type(made).__name__}, which does not "
            "provide find_user() and handle()"
        )
    return cast("SubsonicBackend", made)


def _is_backend(value: object) -> bool:
    # A class has find_user and handle too: it is a factory (FakeSubsonic), not a backend.
    return not isinstance(value, type) and isinstance(value, SubsonicBackend)


_SCOPE_BACKEND = "subsonicapi.backend"

BackendFactory: TypeAlias = Callable[[], SubsonicBackend]


@dataclass(frozen=True)
class SubsonicOptions:
    """The subsonicapi service's settings of a scope (``HostOptions.subsonicapi``).

    ``backend``: a :class:`SubsonicBackend` (yours: you close it; every scope these options reach shares
    it), a factory called once per scope (a class such as ``FakeSubsonic``: a fresh one per scope), or
    None: no router, as the original without one (the default).
    """

    backend: SubsonicBackend | BackendFactory | None = None

    def __post_init__(self) -> None:
        if self.backend is not None and not _is_backend(self.backend) and not callable(self.backend):
            raise TypeError(
                "SubsonicOptions.backend must provide find_user() and handle() (ForwardingSubsonic, "
                f"FakeSubsonic()), be a factory of one (FakeSubsonic), or be None, not "
                f"{type(self.backend).__name__}"
            )


def _error(text: str) -> subsonicapi_pb2.CallResponse:
    return subsonicapi_pb2.CallResponse(error=text)


def _deny(text: str, rule: str) -> None:
    raise Denied(_error(text), reason=text, rule=rule)


# --------------------------------------------------------------------------------------------------
# Subsonic documents (Navidrome's shape and Go's encoding/json output)
# --------------------------------------------------------------------------------------------------


def subsonic_ok(*, server_version: str = FAKE_SERVER_VERSION, **fields: Any) -> dict[str, Any]:
    """A successful Navidrome document: ``subsonic_ok(license={"valid": True})``."""
    return {"subsonic-response": {**_envelope("ok", server_version), **fields}}


def subsonic_failed(
    code: int, message: str | None = None, *, server_version: str = FAKE_SERVER_VERSION
) -> dict[str, Any]:
    """A Subsonic error document; ``message`` defaults to Navidrome's text for ``code``."""
    text = message if message is not None else _SUBSONIC_ERRORS.get(code, _SUBSONIC_ERRORS[0])
    return {
        "subsonic-response": {
            **_envelope("failed", server_version),
            "error": {"code": code, "message": text},
        }
    }


def _envelope(status: str, server_version: str) -> dict[str, Any]:
    # Field order of Navidrome's responses.Subsonic struct.
    return {
        "status": status,
        "version": SUBSONIC_API_VERSION,
        "type": "navidrome",
        "serverVersion": server_version,
        "openSubsonic": True,
    }


def subsonic_json(document: Mapping[str, Any]) -> str:
    """A document's body text as Navidrome sent it (Go's encoding/json, HTML-safe escapes)."""
    return gojson.marshal(document)


# --------------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------------


class RecordingBackend:
    """A backend base that keeps every routed request, thread-safely, so tests can assert what reached the
    server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RoutedRequest] = []

    def _record(self, endpoint: str, query: Sequence[tuple[str, str]], username: str) -> RoutedRequest:
        request = RoutedRequest(endpoint, tuple(query), username)
        with self._lock:
            self._requests.append(request)
        return request

    @property
    def requests(self) -> list[RoutedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def last(self) -> RoutedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("no request has reached the Subsonic backend")
            return self._requests[-1]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()


class ForwardingSubsonic(RecordingBackend):
    """Sends each call to a real Subsonic-compatible server over HTTP as one configured user.

    ``base_url`` is the server's root (Navidrome's BaseURL included); calls go to
    ``<base_url>/rest/<endpoint>`` with the plugin's query, authenticated with the Subsonic token scheme
    (``t = md5(password + salt)``, ``s = salt``). The plugin's own ``p``/``t``/``s``/``jwt``/``apiKey``
    are dropped: the server would otherwise authenticate with them instead.

    The backend knows exactly one user, the configured one (matched ASCII-case-insensitively, as
    Navidrome does), so it behaves like a server whose user store holds only that user:

    * ``find_user`` asks the server's ``getUser`` for that user's ``adminRole`` (on every call, as the
      original read the store per call); any other name is not found;
    * a call for another user is answered, without network, with Subsonic error 40, as Navidrome
      answers an unknown user.

    Endpoints ``.``, ``..`` and ``/`` (from URLs without a path) are answered without network with the
    router's 404: over HTTP they would be resolved as directories. Network failures, timeouts and a
    rejected ``getUser`` raise :class:`SubsonicBackendError` (the plugin's call traps). The environment's
    proxy settings are never used; a client you pass must have ``trust_env=False``.
    """

    _AUTH_PARAMS = frozenset({"p", "t", "s", "jwt", "apiKey"})

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        client: httpx.Client | None = None,
        *,
        timeout: float = 10.0,
        client_name: str = "pytest-wasmhost",
    ) -> None:
        import httpx  # optional dependency: only this backend needs it

        super().__init__()
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must be an http:// or https:// URL, not {base_url!r}")
        if client is not None and client.trust_env:
            raise ValueError("pass an httpx.Client(trust_env=False): calls must not follow proxy settings")
        self.base_url = base_url.rstrip("/")
        self.username = username
        self._password = password
        self._client_name = client_name
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout, trust_env=False, follow_redirects=False)
        self._http_error: type[Exception] = httpx.HTTPError

    def find_user(self, username: str) -> SubsonicUser | None:
        if not self._is_configured_user(username):
            return None
        status, body = self._get(
            "getUser",
            [
                ("c", self._client_name),
                ("f", "json"),
                ("u", self.username),
                ("username", self.username),
                ("v", SUBSONIC_API_VERSION),
            ],
        )
        try:
            document = json.loads(body)["subsonic-response"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SubsonicBackendError(f"getUser answered HTTP {status} without a Subsonic document") from exc
        if not isinstance(document, dict) or document.get("status") != "ok":
            error = document.get("error", {}) if isinstance(document, dict) else {}
            raise SubsonicBackendError(
                f"getUser for the configured user {self.username!r} failed: "
                f"{error.get('message', 'no message')} (code {error.get('code', '?')})"
            )
        user = document.get("user") or {}
        return SubsonicUser(str(user.get("username", self.username)), bool(user.get("adminRole", False)))

    def handle(self, endpoint: str, query: list[tuple[str, str]], username: str) -> tuple[int, str]:
        self._record(endpoint, query, username)
        if endpoint in (".", "..", "/"):
            return 404, NOT_FOUND_BODY
        if not self._is_configured_user(username):
            return 200, gojson.marshal(subsonic_failed(40))
        return self._get(endpoint, [(k, v) for k, v in query if k not in self._AUTH_PARAMS])

    def _get(self, endpoint: str, query: list[tuple[str, str]]) -> tuple[int, str]:
        """GET ``/rest/<endpoint>`` with ``query`` plus a fresh salt and token for the configured password."""
        salt = secrets.token_hex(8)
        token = hashlib.md5((self._password + salt).encode(), usedforsecurity=False).hexdigest()
        params = [*query, ("s", salt), ("t", token)]
        path = neturl.escape_path(f"/rest/{endpoint}")
        try:
            response = self._client.get(f"{self.base_url}{path}?{neturl.encode_query(params)}")
        except self._http_error as exc:
            raise SubsonicBackendError(f"GET {self.base_url}{path} failed: {exc}") from exc
        return response.status_code, replace_invalid(response.content)

    def _is_configured_user(self, username: str) -> bool:
        return nocase_fold(username) == nocase_fold(self.username)

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> ForwardingSubsonic:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def nocase_fold(text: str) -> str:
    """SQLite's NOCASE folding (Navidrome's user lookup): ASCII letters only."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
