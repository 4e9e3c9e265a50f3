"""Host service ``http`` (spec/services/http.md): seven verbs over httpx, behind the plugin's netpolicy.

Behaviour is the original's (Go ``net/http`` client), call by call:

* the permission check (:class:`~pytest_wasmhost.host.netpolicy.NetPolicy`) runs first; a refusal answers
  ``{error: "Request blocked by plugin permissions: <reason>"}`` and is recorded as ``denied`` with its
  reason code and rule;
* ``timeout_ms``: 0 means 10 s, negative means no timeout; it bounds the whole exchange, redirects and
  body included, and a timeout reads ``<Method> "<url>": context deadline exceeded``;
* the body is sent only for POST, PUT and PATCH; each header is set once under Go's canonical name
  (``x-api-key`` -> ``X-Api-Key``); ``Host``, ``Content-Length``, ``Transfer-Encoding`` and
  ``Trailer`` entries are ignored as Go ignores them; ``User-Agent: Go-http-client/1.1`` unless the
  plugin sets one (an empty one sends none); ``Accept-Encoding: gzip`` is added, and a gzip body
  transparently decompressed, exactly when Go would (not for HEAD, not with a ``Range`` header, not
  when the plugin chose an encoding itself);
* the response: status as is, the body, headers under canonical names with their first value only;
* redirects (301 302 303 307 308) are followed by hand, each ``Location`` resolved by the WHATWG URL rules
  (``///host/x`` names ``host``, as in every browser; Go's RFC 3986 reading kept it a path), at most 4
  (the 5th redirect response is returned as is); 301/302/303 turn any method but GET/HEAD into a body-less
  GET; every hop is re-checked against the policy, and a refused hop returns the redirect response itself
  (recorded as ``denied``); ``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Cookie2`` and
  ``Www-Authenticate`` are dropped for good once the chain leaves the first origin (scheme, host, port);
  ``Referer`` is set as Go sets it;
* a transport failure answers ``{error: '<Method> "<url>": <cause>'}`` (method in title case, the URL
  of the failing hop with any password shown as ``***``).

What this host adds, on purpose:

* the strict network policy (default): names are resolved at connect time by the transport's network
  backend, every address is checked by the policy's guard, and the connection is made to exactly that
  address (the URL keeps its host name, so ``Host``, TLS SNI and respx routes are unchanged);
* no proxies from the environment (Go's default transport honoured ``HTTP_PROXY``; a proxy would
  move the connection out of the guard's sight), and no cookie jar (Go's client had none);
* a response size cap: a body over ``max_response_bytes`` (after gzip decoding) answers
  ``{error: '<Method> "<url>": response body exceeds the host's limit of N bytes (...)'}``.

Options, :class:`HttpOptions` (``HostOptions.http``): ``mode`` (``"strict"`` | ``"legacy"``), ``resolver``
(``(host, port) -> [ip, ...]``), ``transport`` (an ``httpx.BaseTransport`` used instead of the real
one: the interface the test double :class:`pytest_wasmhost.doubles.http.HttpMock` serves through its
``transport``), ``max_response_bytes`` (default 32 MiB).

Mocking: requests go to the transport directly (not through ``httpx.Client``), so respx's default
mocker (``using="httpcore"``) intercepts them, and so does an injected transport; respx's
``using="httpx"`` mode (which patches ``httpx.Client``) does not.
"""

from __future__ import annotations

import base64
import logging
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import ada_url
import httpcore
import httpx

from pytest_wasmhost.abi.proto import http_pb2
from pytest_wasmhost.clock import host_monotonic
from pytest_wasmhost.gocompat import neturl
from pytest_wasmhost.gocompat.oserr import errno_text
from pytest_wasmhost.gocompat.strconv import quote as go_quote
from pytest_wasmhost.host.base import (
    Denied,
    HostFunction,
    HostHardError,
    HostService,
    ServiceContext,
    check_choice,
    check_positive,
    note_rule,
)
from pytest_wasmhost.host.netpolicy import (
    AddressGuard,
    Decision,
    Mode,
    NetPolicy,
    Resolver,
    whatwg_href,
    with_explanation,
)
from pytest_wasmhost.manifest import Manifest

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_REQUESTS_PER_CHAIN",
    "AddressRefused",
    "GuardedBackend",
    "GuardedTransport",
    "HttpClient",
    "HttpOptions",
    "HttpService",
    "canonical_header_key",
    "method_warnings",
]

log = logging.getLogger("pytest_wasmhost.host.http")

DEFAULT_TIMEOUT_SECONDS: Final = 10.0
DEFAULT_MAX_RESPONSE_BYTES: Final = 32 * 1024 * 1024
# The original's httpMaxRedirects, compared with the requests already sent: 4 redirects are followed.
MAX_REQUESTS_PER_CHAIN: Final = 5
GO_USER_AGENT: Final = "Go-http-client/1.1"

METHODS: Final[dict[str, str]] = {
    "get": "GET",
    "post": "POST",
    "put": "PUT",
    "delete": "DELETE",
    "patch": "PATCH",
    "head": "HEAD",
    "options": "OPTIONS",
}
_BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CREDENTIALS: Final = frozenset(
    {"Authorization", "Proxy-Authorization", "Cookie", "Cookie2", "Www-Authenticate"}
)
# Go's Request.Write takes these from the request itself, never from the header map.
_IGNORED_REQUEST_HEADERS: Final = frozenset({"Host", "Content-Length", "Transfer-Encoding", "Trailer"})
_DEFAULT_PORTS: Final[dict[str, int]] = {"http": 80, "https": 443}


def method_warnings(manifest: Manifest, imported: Iterable[str]) -> list[str]:
    """A warning per imported ``env`` http function whose method no allowedUrls pattern lists.

    ``imported`` are the module's ``env`` import names. Such a plugin links and loads, but every
    request it makes with that method is refused at call time (``operation POST not allowed ...``), so
    say it before anything runs. Without the http permission the import is a link error, not this.
    """
    permission = manifest.permissions.http
    if permission is None or not permission.allowed_urls:
        return []
    listed = {method for _, methods in permission.allowed_urls for method in methods}
    if "*" in listed:
        return []
    names = set(imported)
    return [
        f'env.{fn} is imported, but no pattern in permissions.http.allowedUrls lists {method} (or "*"), '
        f'so every {method} request the plugin makes is refused; add "{method}" to the methods of the '
        "patterns it sends them to."
        for fn, method in METHODS.items()
        if fn in names and method not in listed
    ]


# --------------------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpOptions:
    """The http service's settings of a scope (``HostOptions.http``; see the module docstring)."""

    mode: Mode = "strict"
    resolver: Resolver | None = None
    #: Where requests go instead of the network (``HttpMock().transport``, ``httpx.MockTransport``, ...).
    transport: httpx.BaseTransport | None = None
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        check_choice("HttpOptions", "mode", self.mode, ("strict", "legacy"))
        if self.resolver is not None and not callable(self.resolver):
            raise TypeError(f"HttpOptions.resolver must be callable(host, port), got {self.resolver!r}")
        if self.transport is not None and not isinstance(self.transport, httpx.BaseTransport):
            raise TypeError(f"HttpOptions.transport must be an httpx.BaseTransport, got {self.transport!r}")
        check_positive("HttpOptions", "max_response_bytes", self.max_response_bytes)


# --------------------------------------------------------------------------------------------------
# The guarded transport: connect only to addresses the policy approved
# --------------------------------------------------------------------------------------------------


class AddressRefused(Exception):
    """The connect-time guard refused every way to reach a host; carries the policy's decision."""

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        super().__init__(decision.reason)


class GuardedBackend(httpcore.NetworkBackend):
    """An httpcore network backend that resolves through the policy and dials the approved address.

    httpcore hands it the URL's host name; TLS (``server_hostname``) and the ``Host`` header keep using
    that name, only the socket goes to the address the guard approved, so a name that changes its
    answer between check and connect (DNS rebinding) gains nothing.
    """

    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        decision = self._guard.resolve(host, port)
        if decision.code == "resolution-failed":
            raise httpcore.ConnectError(f"dial tcp: {decision.reason}")
        if not decision.allowed:
            raise AddressRefused(decision)
        failure: httpcore.ConnectError | None = None
        for ip in decision.addresses:
            try:
                return self._sockets.connect_tcp(
                    ip, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except httpcore.ConnectError as exc:
                failure = _dial_error(ip, port, exc)
        assert failure is not None  # resolve() never approves an empty list
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("dial unix: plugins cannot reach unix sockets")

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


def _dial_error(ip: str, port: int, exc: httpcore.ConnectError) -> httpcore.ConnectError:
    """Go's wording: ``dial tcp 127.0.0.1:1: connect: connection refused``."""
    cause = exc.__cause__
    reason = errno_text(cause) if isinstance(cause, OSError) and cause.strerror else str(exc)
    return httpcore.ConnectError(
        f"dial tcp {neturl.join_host_port(ip, port)}: connect: {reason[:1].lower()}{reason[1:]}"
    )


class GuardedTransport(httpx.HTTPTransport):
    """``httpx.HTTPTransport`` whose connection pool dials through :class:`GuardedBackend`."""

    def __init__(self, guard: AddressGuard, *, limits: httpx.Limits | None = None) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        # Certificates as Go: the platform's roots, or SSL_CERT_FILE / SSL_CERT_DIR when set.
        ssl_context = httpx.create_ssl_context(trust_env=True)
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)
        # HTTPTransport has no network_backend parameter: swap its (still unused) pool for an identical
        # one that dials through the guard. handle_request() is inherited, so respx still patches it.
        unused, self._pool = (
            self._pool,
            httpcore.ConnectionPool(
                ssl_context=ssl_context,
                max_connections=limits.max_connections,
                max_keepalive_connections=limits.max_keepalive_connections,
                keepalive_expiry=limits.keepalive_expiry,
                network_backend=GuardedBackend(guard),
            ),
        )
        unused.close()


class HttpClient:
    """The scope's HTTP client (``ctx.env.shared("http.client")``): pooled transports, closed by the scope.

    One connection pool per distinct connect-time guard, so a connection opened for a plugin allowed on
    the local network is never reused by a plugin that is not. An injected transport serves everyone.
    Requests go straight to the transport: ``httpx.Client`` would add what Go's client did not have
    (a cookie jar, auth taken from the URL over an explicit header, its own redirect bookkeeping).
    """

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._injected = transport
        self._lock = threading.Lock()
        self._transports: dict[AddressGuard, httpx.BaseTransport] = {}
        self._closed = False

    def transport_for(self, guard: AddressGuard) -> httpx.BaseTransport:
        with self._lock:
            if self._closed:
                raise RuntimeError("the scope's HTTP client is closed")
            if self._injected is not None:
                return self._injected
            transport = self._transports.get(guard)
            if transport is None:
                transport = self._transports[guard] = GuardedTransport(guard)
            return transport

    def send(self, request: httpx.Request, guard: AddressGuard) -> httpx.Response:
        """One exchange, streaming: the caller reads the body and closes the response."""
        response = self.transport_for(guard).handle_request(request)
        response.request = request
        return response

    def close(self) -> None:
        with self._lock:
            transports, self._transports, self._closed = list(self._transports.values()), {}, True
            injected, self._injected = self._injected, None
        for transport in transports:
            transport.close()
        if injected is not None:
            injected.close()


# --------------------------------------------------------------------------------------------------
# Go's header rules
# --------------------------------------------------------------------------------------------------

_TOKEN_CHARS: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def canonical_header_key(name: str) -> str:
    """Go's ``textproto.CanonicalMIMEHeaderKey``: ``x-api-key`` -> ``X-Api-Key``; invalid names unchanged."""
    if not name or any(ch not in _TOKEN_CHARS for ch in name):
        return name
    out, upper = [], True
    for ch in name:
        out.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(out)


def _header_problem(name: str, value: str) -> str | None:
    """Go's transport check before sending (httpguts.ValidHeaderFieldName / ValidHeaderFieldValue)."""
    if not name or any(ch not in _TOKEN_CHARS for ch in name):
        return f"net/http: invalid header field name {go_quote(name)}"
    if any((ch < " " and ch != "\t") or ch == "\x7f" for ch in value):
        return f"net/http: invalid header field value for {go_quote(name)}"
    return None


def _plugin_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Each entry set once under its canonical name (sorted, so a clash resolves the same every time)."""
    out: dict[str, str] = {}
    for name in sorted(headers):
        key = canonical_header_key(name)
        if key not in _IGNORED_REQUEST_HEADERS:
            out[key] = headers[name]
    return out


def _response_headers(response: httpx.Response, *, decoded: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in response.headers.raw:
        name = canonical_header_key(raw_name.decode("latin-1"))
        if name == "Transfer-Encoding" or (decoded and name in ("Content-Encoding", "Content-Length")):
            continue  # Go moves Transfer-Encoding out of the map; gunzip drops the body's old framing
        out.setdefault(name, raw_value.decode("utf-8", "replace"))
    return out


# --------------------------------------------------------------------------------------------------
# One call
# --------------------------------------------------------------------------------------------------


class _DeadlineExceeded(Exception):
    pass


class _Failure(Exception):
    """A transport-level failure with Go's cause text (the ``<cause>`` of ``<Method> "<url>": <cause>``)."""


class _Deadline:
    """The call's single deadline (Go's Client.Timeout covers redirects and the body too)."""

    def __init__(self, timeout_ms: int) -> None:
        if timeout_ms < 0:
            self._end: float | None = None
        else:
            seconds = DEFAULT_TIMEOUT_SECONDS if timeout_ms == 0 else timeout_ms / 1000
            self._end = host_monotonic() + seconds  # network time is real time, not the test clock

    def remaining(self) -> float | None:
        if self._end is None:
            return None
        left = self._end - host_monotonic()
        if left <= 0:
            raise _DeadlineExceeded
        return left


@dataclass
class _Hop:
    method: str
    url: httpx.URL  # as requested, userinfo included (Go sends it as Basic auth)
    body: bytes | None
    referer: str | None = None


@dataclass
class _Chain:
    """The state of one call's redirect chain."""

    method: str  # the plugin's method: Go names it in every error
    headers: dict[str, str]
    deadline: _Deadline
    credentials_dropped: bool = False
    sent: int = 0
    last_redirect: http_pb2.HttpResponse | None = None  # what a refused hop answers


class HttpService(HostService):
    name = "http"
    function_names = tuple(METHODS)

    @classmethod
    def create(cls, ctx: ServiceContext) -> HttpService:
        options = ctx.env.options.of(HttpOptions)
        permission = ctx.manifest.permissions.http
        policy = NetPolicy(
            permission.allowed_urls if permission is not None else (),
            allow_local_network=permission.allow_local_network if permission is not None else False,
            mode=options.mode,
            resolver=options.resolver,
        )
        client = ctx.env.shared("http.client", lambda: HttpClient(options.transport))
        return cls(policy, client, max_response_bytes=options.max_response_bytes)

    def __init__(
        self, policy: NetPolicy, client: HttpClient, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    ) -> None:
        self.policy = policy
        self.client = client
        self._max_bytes = max_response_bytes

    def functions(self) -> Sequence[HostFunction]:
        return tuple(
            HostFunction(
                service=self.name,
                name=fn,
                request_type=http_pb2.HttpRequest,
                response_type=http_pb2.HttpResponse,
                handler=self._handler(method),
            )
            for fn, method in METHODS.items()
        )

    def _handler(self, method: str) -> Callable[[http_pb2.HttpRequest], http_pb2.HttpResponse]:
        def handle(request: http_pb2.HttpRequest) -> http_pb2.HttpResponse:
            return self.request(method, request)

        return handle

    # --- the call ------------------------------------------------------------------------------

    def request(self, method: str, request: http_pb2.HttpRequest) -> http_pb2.HttpResponse:
        """Serve one ``env.<method>`` call (raises :class:`Denied` for a permission refusal)."""
        method = method.upper()
        decision = self.policy.check_http(request.url, method, resolve=False)
        if not decision.allowed:
            log.debug("http %s %s refused: %s", method, request.url, decision.reason)
            text = decision.error_text()
            reason = with_explanation(text, self.policy.explain(request.url, method, decision))
            raise Denied(http_pb2.HttpResponse(error=text), reason=reason, rule=decision.label)
        log.debug("http %s %s allowed by %s", method, request.url, decision.label)
        note_rule(decision.label)
        _require_go_parse(method, request.url)
        chain = _Chain(method, _plugin_headers(request.headers), _Deadline(request.timeout_ms))
        try:
            url = httpx.URL(request.url)
        except httpx.InvalidURL as exc:  # Go could parse it (legacy mode): it failed when dialling
            return _error(method, request.url, str(exc))
        body = bytes(request.body) if method in _BODY_METHODS else None
        return self._run(chain, _Hop(method, url, body))

    def _run(self, chain: _Chain, hop: _Hop) -> http_pb2.HttpResponse:
        while True:
            try:
                response = self._send(chain, hop)
            except AddressRefused as refused:
                raise self._refusal(chain, hop, refused.decision) from None
            except _DeadlineExceeded:
                return _error(chain.method, _shown(hop.url), "context deadline exceeded")
            except _Failure as exc:
                return _error(chain.method, _shown(hop.url), str(exc))
            try:
                outcome = self._settle(chain, hop, response)
            finally:
                response.close()
            if isinstance(outcome, http_pb2.HttpResponse):
                return outcome
            hop = outcome

    def _settle(self, chain: _Chain, hop: _Hop, response: httpx.Response) -> http_pb2.HttpResponse | _Hop:
        """The plugin's answer for this response, or the next hop of the redirect chain."""
        try:
            target = _redirect_target(chain, hop, response)
            message = self._read(chain, hop, response)
        except _DeadlineExceeded:
            return _error(chain.method, _shown(hop.url), "context deadline exceeded")
        except _Failure as exc:
            return _error(chain.method, _shown(hop.url), str(exc))
        if target is None:
            return message
        next_hop = _next_hop(chain, hop, response.status_code, target)
        decision = self.policy.check_http(str(target), next_hop.method, resolve=False)
        chain.last_redirect = message
        if not decision.allowed:
            raise self._refusal(chain, next_hop, decision)
        return next_hop

    def _refusal(self, chain: _Chain, hop: _Hop, decision: Decision) -> Denied:
        """A refused first request answers the error; a refused hop answers the redirect response."""
        text = decision.error_text()
        explained = with_explanation(text, self.policy.explain(str(hop.url), hop.method, decision))
        if chain.last_redirect is None:
            return Denied(http_pb2.HttpResponse(error=text), reason=explained, rule=decision.label)
        reason = f"redirect to {_shown(hop.url)} not followed: {explained}"
        log.debug("http %s", reason)
        return Denied(chain.last_redirect, reason=reason, rule=decision.label)

    # --- one exchange --------------------------------------------------------------------------

    def _send(self, chain: _Chain, hop: _Hop) -> httpx.Response:
        request = _build_request(chain, hop)
        request.extensions["timeout"] = httpx.Timeout(chain.deadline.remaining()).as_dict()
        try:
            response = self.client.send(request, self.policy.guard)
        except httpx.TimeoutException:
            raise _DeadlineExceeded from None
        except httpx.HTTPError as exc:
            raise _Failure(_cause(exc)) from None
        chain.sent += 1
        try:
            chain.deadline.remaining()  # the answer may come in after the deadline (a slow mock)
        except _DeadlineExceeded:
            response.close()
            raise
        return response

    def _read(self, chain: _Chain, hop: _Hop, response: httpx.Response) -> http_pb2.HttpResponse:
        gunzip = hop.method != "HEAD" and _asked_for_gzip(chain, hop) and _is_gzip(response)
        sink: _Sink = _Gunzip(self._max_bytes) if gunzip else _Sink(self._max_bytes)
        try:
            for chunk in _raw_chunks(response):
                sink.feed(chunk)
                chain.deadline.remaining()
            chain.deadline.remaining()
        except httpx.TimeoutException:
            raise _DeadlineExceeded from None
        except httpx.HTTPError as exc:
            raise _Failure(_body_cause(exc)) from None
        return http_pb2.HttpResponse(
            status=response.status_code,
            body=sink.finish(),
            headers=_response_headers(response, decoded=gunzip),
        )


# --------------------------------------------------------------------------------------------------
# Requests and redirects, the Go way
# --------------------------------------------------------------------------------------------------


def _build_request(chain: _Chain, hop: _Hop) -> httpx.Request:
    if hop.url.scheme not in _DEFAULT_PORTS:
        raise _Failure(f"unsupported protocol scheme {go_quote(hop.url.scheme)}")
    if not hop.url.host:
        raise _Failure("http: no Host in request URL")
    headers = _hop_headers(chain, hop)
    for name, value in headers.items():
        problem = _header_problem(name, value)
        if problem is not None:
            raise _Failure(problem)
    url = hop.url.copy_with(userinfo=b"") if hop.url.userinfo else hop.url
    return httpx.Request(
        hop.method,
        url,
        headers=[(k.encode("utf-8"), v.encode("utf-8")) for k, v in headers.items()],
        content=hop.body,
    )


def _hop_headers(chain: _Chain, hop: _Hop) -> dict[str, str]:
    """The header lines of one hop, in Go's order: User-Agent, the plugin's (sorted), extras."""
    carried = {
        k: v for k, v in chain.headers.items() if not (chain.credentials_dropped and k in _CREDENTIALS)
    }
    agent = carried.pop("User-Agent", GO_USER_AGENT)
    headers = {"User-Agent": agent} if agent else {}
    headers.update(sorted(carried.items()))
    if hop.url.userinfo and not carried.get("Authorization"):
        # Go's Client.send: userinfo becomes Basic auth unless the plugin set Authorization.
        token = f"{hop.url.username}:{hop.url.password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")
    if hop.referer and "Referer" not in carried:
        headers["Referer"] = hop.referer
    if _asked_for_gzip(chain, hop) and hop.method != "HEAD":
        headers.pop("Accept-Encoding", None)  # an empty one counts as unset, as in Go
        headers["Accept-Encoding"] = "gzip"
    return headers


def _asked_for_gzip(chain: _Chain, hop: _Hop) -> bool:
    """Go adds ``Accept-Encoding: gzip`` (and then decodes) only if the plugin set neither it nor Range."""
    return hop.method != "HEAD" and not chain.headers.get("Accept-Encoding") and "Range" not in chain.headers


def _raw_chunks(response: httpx.Response) -> Iterable[bytes]:
    """The body as received. A transport may hand back a response it already read (httpx's
    MockTransport does): its bytes are still in the stream, undecoded."""
    if response.is_stream_consumed and isinstance(response.stream, httpx.ByteStream):
        return response.stream
    return response.iter_raw()


def _is_gzip(response: httpx.Response) -> bool:
    encoding: str = response.headers.get("Content-Encoding", "")
    return encoding.lower() == "gzip"


def _redirect_target(chain: _Chain, hop: _Hop, response: httpx.Response) -> httpx.URL | None:
    """Where a redirect points, if it is to be followed at all (Go's rules and the chain limit)."""
    if response.status_code not in _REDIRECTS:
        return None
    location = response.headers.get("Location")
    if not location or chain.sent >= MAX_REQUESTS_PER_CHAIN:
        return None  # Go returns a 3xx without Location as is
    try:
        return _resolve_location(hop.url, location)
    except (httpx.InvalidURL, ValueError) as exc:
        raise _Failure(f"failed to parse Location header {go_quote(location)}: {exc}") from None


def _resolve_location(current: httpx.URL, location: str) -> httpx.URL:
    """``location`` resolved against the current URL by the WHATWG rules, as browsers and servers read it.

    RFC 3986 (Go's and httpx's reading) keeps ``///127.0.0.1/x`` a path on the current host; the WHATWG
    parser, as every browser, reads the host 127.0.0.1, which the policy then checks. A target of another
    scheme (``mailto:``) is read as the standard reads it: the policy refuses it.
    """
    base = str(current)
    if not ada_url.URL.can_parse(base):  # only the legacy policy lets such a URL through: RFC 3986 as before
        return current.join(location)
    return httpx.URL(whatwg_href(location, base))


def _next_hop(chain: _Chain, hop: _Hop, status: int, target: httpx.URL) -> _Hop:
    method, body = hop.method, hop.body
    if status in (301, 302, 303) and method not in ("GET", "HEAD"):
        method, body = "GET", None
    if _origin(target) != _origin(hop.url):
        chain.credentials_dropped = True  # and they stay dropped, even back on the first origin
    referer = (
        None if (hop.url.scheme, target.scheme) == ("https", "http") else str(_without_userinfo(hop.url))
    )
    return _Hop(method, target, body, referer)


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _without_userinfo(url: httpx.URL) -> httpx.URL:
    return url.copy_with(userinfo=b"") if url.userinfo else url


def _shown(url: httpx.URL | str) -> str:
    """Go's ``stripPassword``: the URL as errors show it, a password replaced by ``***``."""
    text = str(url)
    try:
        userinfo = neturl.parse(text).userinfo
    except neturl.URLError:
        return text
    if userinfo is None or ":" not in userinfo:
        return text
    return text.replace(userinfo + "@", userinfo.partition(":")[0] + ":***@", 1)


def _error(method: str, url: str, cause: str) -> http_pb2.HttpResponse:
    """Go's ``url.Error``: ``Get "https://x/": <cause>``."""
    return http_pb2.HttpResponse(error=f"{method[:1]}{method[1:].lower()} {go_quote(_shown(url))}: {cause}")


def _require_go_parse(method: str, url: str) -> None:
    """The original's only hard error: Go could not build the request (``http.NewRequest``)."""
    try:
        neturl.parse(url)
    except neturl.URLError as exc:
        raise HostHardError("http", method.lower(), f"failed to create request: {exc}") from None


def _cause(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.RemoteProtocolError) and "disconnected" in str(exc).lower():
        return "EOF"  # the server closed the connection before answering
    return str(exc) or type(exc).__name__


def _body_cause(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.RemoteProtocolError):
        return "unexpected EOF"  # Go's text for a body cut short
    return _cause(exc)


# --------------------------------------------------------------------------------------------------
# Bodies: the size cap and Go's transparent gzip
# --------------------------------------------------------------------------------------------------


class _Sink:
    """Collects a body, refusing to hold more than the cap."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._append(chunk)

    def _append(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > self._limit:
            raise _Failure(
                f"response body exceeds the host's limit of {self._limit} bytes "
                "(HostOptions.http.max_response_bytes)"
            )

    def finish(self) -> bytes:
        return bytes(self._data)


class _Gunzip(_Sink):
    """Go's gzip reader: multi-member streams, errors ``gzip: invalid header`` / ``unexpected EOF``."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self._member: Any = None  # zlib's Decompress object of the member being read

    def feed(self, chunk: bytes) -> None:
        pending = chunk
        while pending:
            if self._member is None:
                self._member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            try:
                # Bounded output: a small body cannot balloon past the cap (a "zip bomb").
                self._append(self._member.decompress(pending, self._limit + 1 - len(self._data) or 1))
            except zlib.error:
                raise _Failure("gzip: invalid header") from None
            if self._member.eof:
                pending, self._member = self._member.unused_data, None
            else:
                pending = self._member.unconsumed_tail

    def finish(self) -> bytes:
        if self._member is not None and not self._member.eof:
            raise _Failure("unexpected EOF")
        return super().finish()
