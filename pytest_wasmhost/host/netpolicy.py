"""Network policy for the http and websocket services: URL allow-lists and the local-network guard.

CONTRACT (implemented by the http issue; the websocket service codes against it):

* ``url_matches(url, pattern) -> bool``: the original's matcher, exactly (services/http.md).
* ``NetPolicy(allowed, allow_local_network=False, mode="strict", resolver=None)``:
  ``allowed`` is a sequence of ``(pattern, methods)`` (http; methods upper-case, ``"*"`` = any) or of
  plain patterns (websocket: no methods). ``mode="strict"`` (default) also resolves host names and
  refuses every non-public address in every spelling; ``mode="legacy"`` reproduces the original's
  checks exactly (literal addresses only). ``resolver(host, port) -> list[str]`` returns IP address
  strings (default: ``socket.getaddrinfo``); tests inject a fake one.
* ``NetPolicy.check_http(url, method) -> Decision`` and ``NetPolicy.check_websocket(url) -> Decision``.
* ``NetPolicy.guard_address(ip) -> Decision``: the connect-time check of the address actually
  connected to (so there is no resolve-then-connect race).
* ``Decision(allowed, reason, code, rule, addresses)``: ``reason`` is the original's text that follows
  ``Request blocked by plugin permissions: `` / ``Connection blocked by plugin permissions: ``;
  ``code`` is a short reason code for the transcript; ``rule`` the pattern or policy that decided;
  ``addresses`` the resolved addresses that were approved (strict mode).

ADDITIONS (compatible with the contract):

* ``check_http(url, method, *, resolve=True)`` / ``check_websocket(url, *, resolve=True)``: with
  ``resolve=False`` the strict policy stops after the literal checks and leaves name resolution to the
  connect-time guard (the http service does this so respx-mocked hosts are never looked up).
* ``NetPolicy.resolve(host, port) -> Decision`` (also on :class:`AddressGuard`): resolve through the
  policy's resolver and guard every address; ``addresses`` are what to connect to. ``host`` is the
  host the client connects to (``httpx.URL.raw_host``: punycode, no brackets).
* ``Decision.error_text(prefix)``, ``HTTP_DENIAL_PREFIX``, ``WEBSOCKET_DENIAL_PREFIX``; reason codes
  in :data:`REASON_CODES`; ``Decision.label`` (``"<code>: <rule>"``) for the transcript's rule column.
* ``whatwg_href(url, base=None) -> str``: ``url`` read by the WHATWG URL rules (Ada, the parser of
  Node.js), ``ValueError`` naming why not (the validity rule of step 7; the http service resolves
  redirect targets with it).
* ``NetPolicy.explain(url, method, decision) -> str`` and ``with_explanation(text, explanation)``: why
  the allow-list refused and which pattern would allow, for the transcript (the plugin still gets the
  original's text).

Order of the checks (services/http.md "Permission algorithm"), per mode:

1. local network (skipped with ``allowLocalNetwork``) — legacy: the original's literal string / IP
   checks; strict: the same place, on every spelling of an address (see :func:`classify_host`), keeping
   the original's message whenever the original also refused;
2-6. the allow-list, identical in both modes (exact patterns first, then wildcards; when several
   patterns match, any pattern that allows the method allows — the spec's deterministic fix). It
   matches the path the request goes to: dot segments (``..``, ``%2e%2e``, also between backslashes)
   are resolved first by the WHATWG rules, so ``/api/../admin`` is ``/admin`` to ``/api/*`` (the
   original matched the spelling, and the request reached ``/admin``);
7. strict only: the URL must be valid under the WHATWG URL rules (whatever ``allowLocalNetwork`` says:
   no port over 65535, no IPv6 zone id, no host that ends in a number without being an IPv4 address,
   such as ``7147006462``), and mean the same host, port and path to the matcher (Go's ``net/url``) and
   to the HTTP client (httpx), or it is refused as ``invalid-url``;
8. strict only, ``resolve=True``: resolve the host and guard every address.

Name resolution comes last on purpose: a URL the allow-list refuses is never looked up, and the
messages of the original's refusals stay the original's.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Final, Literal
from urllib.parse import quote, unquote

import ada_url
import httpx
import idna

from pytest_wasmhost.gocompat import neturl
from pytest_wasmhost.gocompat.strconv import quote as go_quote

__all__ = [
    "HTTP_DENIAL_PREFIX",
    "REASON_CODES",
    "WEBSOCKET_DENIAL_PREFIX",
    "AddressGuard",
    "Decision",
    "Mode",
    "NetPolicy",
    "Refusal",
    "Resolver",
    "classify_address",
    "classify_host",
    "default_resolver",
    "legacy_is_private",
    "parse_ip_literal",
    "parse_legacy_ipv4",
    "url_matches",
    "whatwg_href",
    "with_explanation",
]

Mode = Literal["strict", "legacy"]
Resolver = Callable[[str, int], Sequence[str]]
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

HTTP_DENIAL_PREFIX: Final = "Request blocked by plugin permissions: "
WEBSOCKET_DENIAL_PREFIX: Final = "Connection blocked by plugin permissions: "

REASON_CODES: Final = (
    "loopback",
    "private",
    "link-local",
    "cgnat",
    "multicast",
    "reserved",
    "unspecified",
    "ipv6-embedded-ipv4",
    "metadata",
    "invalid-url",
    "no-allowlist",
    "not-in-allowlist",
    "method",
    "resolution-failed",
)

# The original's messages (kept verbatim wherever the original refused too).
MSG_LOCALHOST: Final = "requests to localhost are not allowed"
MSG_PRIVATE: Final = "requests to private IP addresses are not allowed"
MSG_NO_ALLOWLIST: Final = "no allowed URLs configured for plugin"

# Strict-only refusals: same shape as the original's, plus what was refused in parentheses.
_STRICT_MESSAGES: Final[dict[str, str]] = {
    "loopback": "requests to loopback addresses are not allowed",
    "private": "requests to private IP addresses are not allowed",
    "link-local": "requests to link-local / metadata addresses are not allowed",
    "metadata": "requests to link-local / metadata addresses are not allowed",
    "cgnat": "requests to shared (CGNAT) addresses are not allowed",
    "multicast": "requests to multicast addresses are not allowed",
    "reserved": "requests to reserved IP addresses are not allowed",
    "unspecified": "requests to unspecified addresses are not allowed",
    "ipv6-embedded-ipv4": "requests to IPv6 addresses embedding a non-public IPv4 address are not allowed",
}

_LOCAL_RULE: Final = "allowLocalNetwork=false"
_ALLOWLIST_RULE: Final = "allowedUrls"
_TARGET_RULE: Final = "strict URL check"  # step 7: matcher and client must see the same host
_DNS_RULE: Final = "name resolution"
_DEFAULT_PORTS: Final[dict[str, int]] = {"http": 80, "https": 443, "ws": 80, "wss": 443}


# --------------------------------------------------------------------------------------------------
# The WHATWG URL Standard, read by Ada (the parser of Node.js)
# --------------------------------------------------------------------------------------------------
#
# Go's net/url decides what the allow-list sees; browsers, most servers' redirect logic and the Fetch
# standard read URLs by the WHATWG rules, which differ where attacks live: ``///127.0.0.1/x`` and
# ``/\127.0.0.1/x`` name the host 127.0.0.1, a host ending in a number must be a valid IPv4 address
# (``http://7147006462/`` is no URL at all, not a DNS name), ports stop at 65535, an IPv6 host has no
# zone. The strict policy refuses what Ada refuses, and redirect targets are resolved with it.

_SPECIAL_SCHEMES: Final = frozenset({"http", "https", "ws", "wss", "ftp"})


def whatwg_href(url: str, base: str | None = None) -> str:
    """``url`` (against ``base``) parsed by the WHATWG URL rules and serialised.

    Raises ``ValueError`` naming why the URL is refused (Ada only says it is).
    """
    try:
        return ada_url.URL(url, base).href
    except ValueError:  # also a str that is not UTF-8 (lone surrogates)
        raise ValueError(_whatwg_reason(url, relative=base is not None)) from None


def _whatwg_reason(url: str, *, relative: bool = False) -> str:
    """Words for Ada's refusal of ``url``: Ada decided; Go's reading of the same URL names the parts."""
    try:
        parsed = neturl.parse(url)
    except neturl.URLError:
        return "not a valid URL"
    if not parsed.scheme and not relative:
        return "missing-scheme-non-relative-URL: a relative URL without a base"
    return _host_reason(parsed.hostname, parsed.port)


def _host_reason(host: str, port: str = "") -> str:
    """The refusals the policy exists for, by name; anything else Ada refuses is "not a valid URL"."""
    if port and int(port) > 0xFFFF:
        return f"port-out-of-range: {port} is over 65535"
    if ":" in host and "%" in host:
        return f"IPv6-invalid-code-point: {host!r} is not an IPv6 address (no zone ids)"
    last = normalize_host(host).rpartition(".")[2]
    if last and _aton_part(last) is not None:
        return f"host {host!r} ends in a number but is not an IPv4 address"
    if not host:
        return "host-missing: a URL of a special scheme needs a host"
    return "not a valid URL"


def _sent_path(request: neturl.URL) -> str:
    """The path a request is really sent to, as the matcher reads paths (decoded, like Go's).

    Go's path with its dot segments removed by the WHATWG path rules (``/`` and ``\\`` both separate
    segments in the special schemes; ``%2e`` is already ``.`` here, and so is a ``%2f``-spelled
    separator, which a server that decodes before normalising reads as one). The allow-list matches
    this path: ``/api/../admin`` is ``/admin``, whatever the pattern ``/api/*`` says about its spelling.
    Unchanged when there is no dot segment.
    """
    path = request.path
    if request.scheme not in _SPECIAL_SCHEMES or not path:
        return path
    if not {".", ".."} & set(re.split(r"[/\\]", path)):
        return path
    # Re-escaped for Ada, separators and "." aside: only the segments that are dots once decoded count.
    escaped = quote(path.encode("utf-8", "surrogateescape"), safe="/\\")
    return unquote(ada_url.URL("http://h" + escaped).pathname, errors="surrogateescape")


# --------------------------------------------------------------------------------------------------
# The original's URL pattern matcher
# --------------------------------------------------------------------------------------------------


def url_matches(url: str, pattern: str) -> bool:
    """The original's ``matchesURLPattern(url, pattern)``, exactly (services/http.md, "matcher")."""
    if pattern == "*":
        return True
    try:
        request = neturl.parse(url)
    except neturl.URLError:
        return False
    return _matches(request, url, pattern)


def _matches(request: neturl.URL, raw_url: str, pattern: str) -> bool:
    if pattern == "*":
        return True
    parsed = _parse_pattern(pattern)
    if parsed is None:  # e.g. https://api.example.com:* — a regex over the whole raw URL
        return _fallback_regex(pattern).fullmatch(raw_url) is not None
    if parsed.scheme and parsed.scheme != request.scheme:
        return False
    if not _host_matches(request.host, parsed.host):
        return False
    if parsed.path in ("", "/") and "*" in pattern:
        return True
    return _path_matches(request.path, parsed.path)


@lru_cache(maxsize=1024)
def _parse_pattern(pattern: str) -> neturl.URL | None:
    try:
        return neturl.parse(pattern)
    except neturl.URLError:
        return None


@lru_cache(maxsize=1024)
def _fallback_regex(pattern: str) -> re.Pattern[str]:
    return re.compile(re.escape(pattern).replace(r"\*", ".*"))


@lru_cache(maxsize=1024)
def _host_regexes(pattern_host: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    quoted = re.escape(pattern_host)
    return re.compile(quoted.replace(r"\*", "[0-9.]+")), re.compile(quoted.replace(r"\*", "[^.]*"))


def _host_matches(request_host: str, pattern_host: str) -> bool:
    # Both sides include the port (api.example.com:8443); the comparison is case-sensitive, like Go's.
    if pattern_host in ("", "*"):
        return True
    if "*" in pattern_host:
        ip_ish, label = _host_regexes(pattern_host)
        return ip_ish.fullmatch(request_host) is not None or label.fullmatch(request_host) is not None
    return request_host == pattern_host


def _path_matches(request_path: str, pattern_path: str) -> bool:
    request_path = request_path or "/"
    pattern_path = pattern_path or "/"
    if pattern_path.endswith("/*"):
        # A plain string prefix (no segment boundary: /v1/* admits /v10), as the original.
        return request_path.startswith(pattern_path[:-2])
    return request_path == pattern_path


# --------------------------------------------------------------------------------------------------
# Addresses: every spelling, one classification
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why an address or host is not public: a reason code and what was seen (for the message)."""

    code: str
    detail: str


def _nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


# Cloud metadata endpoints. 168.63.129.16 (Azure's wire server, reachable from GitHub-hosted runners)
# and 100.100.100.200 (Alibaba) are not link-local, so they are listed by address.
METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "168.63.129.16",
        "100.100.100.200",
        "fd00:ec2::254",
        "fd00:ec2::23",
    )
)
METADATA_HOSTS: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
LOCALHOST_HOSTS: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})

# Explicit tables rather than ipaddress.is_private / is_global: those changed between Python patch
# releases (3.11.10, 3.12.4, 3.13), and the guard must not move with the interpreter.
_V4_TABLE: Final = (
    (_nets("0.0.0.0/8"), "unspecified"),
    (_nets("127.0.0.0/8"), "loopback"),
    (_nets("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"), "private"),
    (_nets("169.254.0.0/16"), "link-local"),
    (_nets("100.64.0.0/10"), "cgnat"),
    (_nets("224.0.0.0/4"), "multicast"),
    (
        _nets(
            "240.0.0.0/4",  # includes 255.255.255.255
            "192.0.0.0/24",
            "192.0.2.0/24",
            "198.51.100.0/24",
            "203.0.113.0/24",
            "198.18.0.0/15",  # benchmarking; also the "fake-ip" range of local DNS proxies
            "192.88.99.0/24",
        ),
        "reserved",
    ),
)
_V6_TABLE: Final = (
    (_nets("::/128"), "unspecified"),
    (_nets("::1/128"), "loopback"),
    (_nets("fc00::/7", "fec0::/10", "64:ff9b:1::/48"), "private"),
    (_nets("fe80::/10"), "link-local"),
    (_nets("ff00::/8"), "multicast"),
    (_nets("2001::/23", "2001:db8::/32", "3fff::/20", "100::/64", "5f00::/16"), "reserved"),
)
_V6_GLOBAL_UNICAST: Final = ipaddress.ip_network("2000::/3")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_V4_COMPATIBLE: Final = ipaddress.ip_network("::/96")


def classify_address(ip: Address) -> Refusal | None:
    """``None`` for a public address; otherwise the strict policy's reason code and detail."""
    if ip in METADATA_ADDRESSES:
        return Refusal("metadata", str(ip))
    if isinstance(ip, ipaddress.IPv4Address):
        return _classify_v4(ip)
    return _classify_v6(ip)


def _classify_v4(ip: ipaddress.IPv4Address) -> Refusal | None:
    for networks, code in _V4_TABLE:
        if any(ip in net for net in networks):
            return Refusal(code, str(ip))
    return None


def _classify_v6(ip: ipaddress.IPv6Address) -> Refusal | None:
    plain = ipaddress.IPv6Address(int(ip))  # drop a %zone: it does not change where the address is
    for embedded in _embedded_ipv4(plain):
        inner = classify_address(embedded)
        if inner is not None:
            return Refusal("ipv6-embedded-ipv4", f"{ip} embeds {embedded}, {inner.code}")
    if plain.ipv4_mapped is not None or plain in _NAT64 or plain.sixtofour is not None:
        return None  # a translation of a public IPv4 address is as public as that address
    if plain.teredo is not None:
        return None
    for networks, code in _V6_TABLE:
        if any(plain in net for net in networks):
            return Refusal(code, str(ip))
    if plain in _V4_COMPATIBLE or plain not in _V6_GLOBAL_UNICAST:
        return Refusal("reserved", str(ip))
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: mapped, compatible, NAT64, 6to4, Teredo."""
    if ip.ipv4_mapped is not None:
        return [ip.ipv4_mapped]
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V4_COMPATIBLE and int(ip) > 1:  # ::a.b.c.d (deprecated), but not :: or ::1
        return [low32]
    if ip in _NAT64:
        return [low32]
    if ip.sixtofour is not None:
        return [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return [client, server]
    return []


def parse_ip_literal(host: str) -> Address | None:
    """An IP address however it is spelled, or ``None`` for a name.

    ``host`` is normalised first (see :func:`normalize_host`). Besides what ``ipaddress`` reads, this
    accepts the legacy IPv4 spellings of :func:`parse_legacy_ipv4`.
    """
    text = normalize_host(host)
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return parse_legacy_ipv4(text)


def parse_legacy_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """The BSD ``inet_aton`` grammar: 1-4 dot-separated parts, each decimal, 0-octal or 0x-hex.

    ``ipaddress`` accepts only dotted-quad decimal, but libc's resolver (and so ``getaddrinfo``, which the
    connection uses), curl and the WHATWG URL parser of browsers all read ``2130706433``, ``0x7f.1``,
    ``017700000001`` and ``127.1`` as 127.0.0.1; the guard must read them the same way. Implemented
    here rather than with ``socket.inet_aton`` so it is identical on every platform and never accepts
    glibc's "anything after a space".
    """
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values = [_aton_part(part) for part in parts]
    if any(v is None for v in values):
        return None
    numbers = [v for v in values if v is not None]
    head, last = numbers[:-1], numbers[-1]
    if any(v > 0xFF for v in head) or last >= 1 << (8 * (5 - len(numbers))):
        return None
    value = last
    for index, byte in enumerate(head):
        value |= byte << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _aton_part(part: str) -> int | None:
    if part[:2] in ("0x", "0X"):
        digits, base, alphabet = part[2:], 16, "0123456789abcdefABCDEF"
    elif len(part) > 1 and part[0] == "0":
        digits, base, alphabet = part[1:], 8, "01234567"
    else:
        digits, base, alphabet = part, 10, "0123456789"
    if not all(ch in alphabet for ch in digits):  # ASCII only: int() accepts full-width digits and "1_0"
        return None
    if not digits:
        return 0 if base == 16 else None
    return int(digits, base)


def normalize_host(host: str) -> str:
    """How a resolver sees a host: brackets, zone escapes, UTS #46 mapping (full-width digits,
    ideographic full stops), case and trailing dots all removed."""
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    text = text.replace("%25", "%")
    if not text.isascii():
        with contextlib.suppress(idna.IDNAError, UnicodeError, ValueError):  # unmappable: as written
            text = idna.uts46_remap(text, std3_rules=False, transitional=False)
    return text.lower().rstrip(".")


def classify_host(host: str) -> Refusal | None:
    """The strict verdict on a host without resolving it: localhost / metadata names, IP literals."""
    name = normalize_host(host)
    if name in LOCALHOST_HOSTS or name.endswith(".localhost"):
        return Refusal("loopback", host)
    if name in METADATA_HOSTS:
        return Refusal("metadata", host)
    ip = parse_ip_literal(name)
    refusal = None if ip is None else classify_address(ip)
    if refusal is None or host == str(ip):
        return refusal
    return Refusal(refusal.code, f"{host} = {refusal.detail}")  # show the spelling that was used


def legacy_is_private(ip: Address) -> bool:
    """The original's ``IsPrivateIP``: loopback, RFC 1918 / fc00::/7, IPv4 and IPv6 link-local.

    Go's ``To4()`` treats IPv4-mapped IPv6 as IPv4; the other embeddings are not unwrapped.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv4Address):
        return any(ip in net for net in _LEGACY_V4)
    return ip == ipaddress.IPv6Address("::1") or any(ip in net for net in _LEGACY_V6)


_LEGACY_V4: Final = _nets("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
_LEGACY_V6: Final = _nets("fc00::/7", "fe80::/10")


def _legacy_local_refusal(url: neturl.URL) -> str | None:
    """The original's ``checkLocalNetwork`` on a parsed URL: its message, or ``None``."""
    host = url.hostname
    if host in ("localhost", "127.0.0.1", "::1"):
        return MSG_LOCALHOST
    ip = neturl.parse_ip(host)
    if ip is not None and legacy_is_private(ip):
        return MSG_PRIVATE
    return None


# --------------------------------------------------------------------------------------------------
# Decisions and the connect-time guard
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """One verdict. ``reason`` is empty when allowed; ``rule`` is the pattern or policy that decided."""

    allowed: bool
    reason: str = ""
    code: str = "allowed"
    rule: str = ""
    addresses: tuple[str, ...] = ()

    @classmethod
    def allow(cls, rule: str, addresses: Iterable[str] = ()) -> Decision:
        return cls(True, "", "allowed", rule, tuple(addresses))

    @classmethod
    def deny(cls, code: str, reason: str, rule: str) -> Decision:
        return cls(False, reason, code, rule)

    def error_text(self, prefix: str = HTTP_DENIAL_PREFIX) -> str:
        """The text the plugin receives, e.g. ``Request blocked by plugin permissions: <reason>``."""
        return prefix + self.reason

    @property
    def label(self) -> str:
        """``"<code>: <rule>"``, what the transcript shows as the deciding rule."""
        return f"{self.code}: {self.rule}" if self.rule else self.code


def default_resolver(host: str, port: int) -> list[str]:
    """``getaddrinfo`` for TCP, addresses in the system's preference order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _strict_refusal_decision(refusal: Refusal) -> Decision:
    return Decision.deny(refusal.code, f"{_STRICT_MESSAGES[refusal.code]} ({refusal.detail})", _LOCAL_RULE)


@dataclass(frozen=True)
class AddressGuard:
    """The connect-time half of a policy: resolve a host and vet the addresses actually connected to.

    Hashable, so a scope can keep one connection pool per distinct guard: a connection opened under a
    permissive guard is never reused by a plugin under a stricter one.
    """

    mode: Mode = "strict"
    allow_local_network: bool = False
    resolver: Resolver | None = None

    def __post_init__(self) -> None:
        # A misspelt mode ("Strict") must not quietly turn the guard off.
        _check_mode(self.mode)

    @property
    def enforcing(self) -> bool:
        """Legacy mode had no connect-time check, and ``allowLocalNetwork`` turns it off."""
        return self.mode == "strict" and not self.allow_local_network

    def guard_address(self, ip: str) -> Decision:
        """The verdict on one address about to be connected to."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return Decision.deny("invalid-url", f"invalid URL: {ip!r} is not an IP address", _LOCAL_RULE)
        if not self.enforcing:
            return Decision.allow("allowLocalNetwork" if self.allow_local_network else "legacy", [ip])
        refusal = classify_address(address)
        if refusal is not None:
            return _strict_refusal_decision(refusal)
        return Decision.allow("public address", [ip])

    def resolve(self, host: str, port: int) -> Decision:
        """Resolve ``host`` (as the client connects to it) and guard every address it resolves to.

        One non-public address refuses the whole name (a rebinding name may mix public and private
        records). Literal addresses, in any spelling, are not sent to the resolver.
        """
        literal = parse_ip_literal(host)
        if literal is not None:
            return self._vet(host, [str(literal)])
        if self.mode == "strict" and not ada_url.URL.can_parse(f"http://{host}/"):
            # Not a host by the WHATWG rules (7147006462: it ends in a number but is no IPv4 address), so
            # not a name either: a resolver might still read an address into it.
            return Decision.deny(
                "invalid-url", f"invalid URL: {_host_reason(host)} (WHATWG URL rules)", _TARGET_RULE
            )
        if self.enforcing:
            refusal = classify_host(host)
            if refusal is not None:
                return _strict_refusal_decision(refusal)
        try:
            addresses = list((self.resolver or default_resolver)(host, port))
        except (OSError, UnicodeError, ValueError) as exc:
            return Decision.deny("resolution-failed", f"lookup {host}: {_resolver_cause(exc)}", _DNS_RULE)
        if not addresses:
            return Decision.deny("resolution-failed", f"lookup {host}: no such host", _DNS_RULE)
        return self._vet(host, addresses)

    def _vet(self, host: str, addresses: list[str]) -> Decision:
        for ip in addresses:
            verdict = self.guard_address(ip)
            if not verdict.allowed:
                return self._name_refusal(host, ip, verdict)
        rule = "public address" if self.enforcing else self.guard_address(addresses[0]).rule
        return Decision.allow(rule, addresses)

    @staticmethod
    def _name_refusal(host: str, ip: str, verdict: Decision) -> Decision:
        """Say which name led to the refused address: ``(evil.test -> 127.0.0.1)``."""
        if normalize_host(host) == ip or verdict.code not in _STRICT_MESSAGES:
            return verdict
        return Decision.deny(verdict.code, f"{_STRICT_MESSAGES[verdict.code]} ({host} -> {ip})", verdict.rule)


def _check_mode(mode: object) -> None:
    if mode not in ("strict", "legacy"):
        raise ValueError(f"network policy mode must be 'strict' or 'legacy', got {mode!r}")


def _resolver_cause(exc: Exception) -> str:
    if isinstance(exc, socket.gaierror) and exc.errno in (
        socket.EAI_NONAME,
        getattr(socket, "EAI_NODATA", -5),
    ):
        return "no such host"
    return str(exc) or type(exc).__name__


# --------------------------------------------------------------------------------------------------
# The policy
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: str
    methods: tuple[str, ...]  # ("*",) for websocket patterns

    @property
    def specificity(self) -> int:
        """Literal characters: the most specific of several refusing patterns names the refusal."""
        return len(self.pattern) - self.pattern.count("*")


class NetPolicy:
    """A plugin's network permission: allow-list + local-network guard (see the module docstring)."""

    def __init__(
        self,
        allowed: Sequence[tuple[str, Sequence[str]] | str],
        allow_local_network: bool = False,
        mode: Mode = "strict",
        resolver: Resolver | None = None,
    ) -> None:
        _check_mode(mode)
        self.mode: Mode = mode
        self.allow_local_network = allow_local_network
        self.guard = AddressGuard(mode, allow_local_network, resolver)
        self._rules = tuple(
            _Rule(entry, ("*",)) if isinstance(entry, str) else _Rule(entry[0], tuple(entry[1]))
            for entry in allowed
        )
        self._exact = tuple(r for r in self._rules if "*" not in r.pattern)
        self._wildcard = tuple(r for r in self._rules if "*" in r.pattern)

    @property
    def patterns(self) -> tuple[str, ...]:
        return tuple(r.pattern for r in self._rules)

    # --- public checks -------------------------------------------------------------------------

    def check_http(self, url: str, method: str, *, resolve: bool = True) -> Decision:
        """``IsRequestAllowed(url, method)``; strict mode adds the connection-target and address checks."""
        return self._check(url, method.upper(), resolve=resolve)

    def check_websocket(self, url: str, *, resolve: bool = True) -> Decision:
        """``IsConnectionAllowed(url)``: like http without methods (every matching pattern allows)."""
        return self._check(url, None, resolve=resolve)

    def guard_address(self, ip: str) -> Decision:
        return self.guard.guard_address(ip)

    def resolve(self, host: str, port: int) -> Decision:
        return self.guard.resolve(host, port)

    def explain(self, url: str, method: str | None, decision: Decision) -> str:
        """Why the allow-list refused ``url`` (``method`` for http, None for websocket) and what would
        allow it, or ``""``; for people reading the transcript: the plugin gets the original's text.

        Said for a ``not-in-allowlist`` refusal (a pattern without ``*`` matches one path only, ``*`` in
        a host matches exactly one label, a wildcard host never matches a URL with a port, the scheme
        differs) and a ``method`` refusal (what the matching patterns list). Refusals of other kinds
        say what they need already.
        """
        request, url = _as_sent(_parse_request(url)[0], url)
        if decision.code == "method" and method is not None:
            return _explain_methods(self._exact, self._wildcard, request, url, method.upper())
        if decision.code == "not-in-allowlist":
            return _explain_no_match(self._rules, request, url)
        return ""

    # --- the algorithm -------------------------------------------------------------------------

    def _check(self, url: str, method: str | None, *, resolve: bool) -> Decision:
        request, parse_error = _parse_request(url)
        if not self.allow_local_network:
            if request is None:
                return Decision.deny("invalid-url", f"invalid URL: {parse_error}", _LOCAL_RULE)
            local = self._local_network(url, request)
            if local is not None:
                return local
        # The allow-list matches the path the request goes to, dot segments resolved (both modes).
        sent, sent_url = _as_sent(request, url)
        decision = self._allow_list(url, sent, method, sent_url)
        if not decision.allowed or self.mode == "legacy":
            return decision
        if request is None or sent is None:  # only the pattern "*" matches an unparseable URL
            return Decision.deny("invalid-url", f"invalid URL: {parse_error}", _TARGET_RULE)
        if not ada_url.URL.can_parse(url):
            reason = f"invalid URL: {_whatwg_reason(url)} (WHATWG URL rules)"
            return Decision.deny("invalid-url", reason, _TARGET_RULE)
        target = _connection_target(url, request, sent.path)
        if isinstance(target, Decision):
            return target
        if not resolve:
            return decision
        resolved = self.guard.resolve(*target)
        if not resolved.allowed:
            return resolved
        return Decision.allow(decision.rule, resolved.addresses)

    def _local_network(self, url: str, request: neturl.URL) -> Decision | None:
        legacy = _legacy_local_refusal(request)
        if self.mode == "legacy":
            if legacy is None:
                return None
            found = classify_host(request.hostname)
            return Decision.deny(found.code if found else "private", legacy, _LOCAL_RULE)
        refusal = classify_host(request.hostname) or _classify_client_host(url)
        if refusal is None:
            return None
        if legacy is not None:  # the original refused this too: keep its message
            return Decision.deny(refusal.code, legacy, _LOCAL_RULE)
        return _strict_refusal_decision(refusal)

    def _allow_list(
        self, url: str, request: neturl.URL | None, method: str | None, matched_url: str
    ) -> Decision:
        """Steps 2-6 on ``request`` (as sent: :func:`_as_sent`); ``url`` as the plugin wrote it, for the
        message; ``matched_url`` the raw URL the patterns Go cannot parse match as a regex."""
        if not self._rules:
            return Decision.deny("no-allowlist", MSG_NO_ALLOWLIST, _ALLOWLIST_RULE)
        for group in (self._exact, self._wildcard):
            matching = [r for r in group if self._rule_matches(r, request, matched_url)]
            if not matching:
                continue
            for rule in matching:
                if method is None or "*" in rule.methods or method in rule.methods:
                    return Decision.allow(rule.pattern)
            # Every matching pattern refuses the method: name the most specific (first on ties).
            worst = max(matching, key=lambda r: r.specificity)
            return Decision.deny(
                "method", f"operation {method} not allowed for URL pattern {worst.pattern}", worst.pattern
            )
        return Decision.deny(
            "not-in-allowlist", f"URL {url} does not match any allowed URL patterns", _ALLOWLIST_RULE
        )

    @staticmethod
    def _rule_matches(rule: _Rule, request: neturl.URL | None, url: str) -> bool:
        if rule.pattern == "*":
            return True
        return request is not None and _matches(request, url, rule.pattern)


def _parse_request(url: str) -> tuple[neturl.URL | None, str]:
    try:
        return neturl.parse(url), ""
    except neturl.URLError as exc:
        return None, str(exc)


def _as_sent(request: neturl.URL | None, url: str) -> tuple[neturl.URL | None, str]:
    """The request as the allow-list matches it: its path as sent (:func:`_sent_path`), and the raw URL
    spelled with that path (for the patterns matched as a regex over the raw URL)."""
    if request is None:
        return None, url
    path = _sent_path(request)
    if path == request.path:
        return request, url
    return replace(request, path=path), _with_raw_path(url, path)


def _with_raw_path(url: str, path: str) -> str:
    """``url`` with its path replaced by ``path`` (escaped); the rest as written."""
    before, hash_sign, fragment = url.partition("#")
    main, question, query = before.partition("?")
    split = neturl.get_scheme(main)
    rest = main if split is None else split[1]
    head = len(main) - len(rest)
    if rest.startswith("//"):
        slash = rest.find("/", 2)
        head += len(rest) if slash < 0 else slash
    return main[:head] + quote(path, safe="/:@!$&'()*+,;=~") + question + query + hash_sign + fragment


def _classify_client_host(url: str) -> Refusal | None:
    """The host httpx will connect to, when it differs in spelling from Go's view (defence in depth)."""
    try:
        host = httpx.URL(url).raw_host.decode("ascii")
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return None  # httpx cannot connect to it either
    return classify_host(unquote(host))


def _connection_target(url: str, request: neturl.URL, matched_path: str) -> tuple[str, int] | Decision:
    """Strict step 7: the host, port and path httpx will send to must be the ones the matcher saw.

    The allow-list reads the URL the way Go did; the connection is made by httpx, which parses URLs by
    RFC 3986 + IDNA. Where the two disagree (``%``-escapes in the host, an IDNA spelling only one of them
    accepts), the check and the connection could see different hosts, so the URL is refused.
    """
    try:
        client = httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        return Decision.deny("invalid-url", f"invalid URL: {exc}", _TARGET_RULE)
    client_host = unquote(client.raw_host.decode("ascii")).lower()
    try:
        expected = unquote(httpx.URL(scheme="http", host=request.hostname).raw_host.decode("ascii")).lower()
    except (httpx.InvalidURL, UnicodeError, ValueError):
        expected = request.hostname.lower()
    client_port = client.port or _DEFAULT_PORTS.get(client.scheme, 0)
    expected_port = int(request.port) if request.port else _DEFAULT_PORTS.get(request.scheme, 0)
    if (client.scheme, client_host, client_port) != (request.scheme, expected, expected_port):
        return Decision.deny(
            "invalid-url",
            f"invalid URL: ambiguous host: {request.host!r} to the permission check, "
            f"{client.netloc.decode('ascii')!r} to the HTTP client",
            _TARGET_RULE,
        )
    # Compared decoded, as the matcher reads paths: a dot segment httpx sends unresolved (``%2e%2e``,
    # ``..\``) or resolves by other rules would reach another path than the one the allow-list matched.
    client_path = client.raw_path.partition(b"?")[0].decode("ascii")
    if unquote(client_path, errors="surrogateescape") != (matched_path or "/"):
        return Decision.deny(
            "invalid-url",
            f"invalid URL: ambiguous path: {matched_path or '/'!r} to the permission check, "
            f"{client_path!r} to the HTTP client",
            _TARGET_RULE,
        )
    return client.raw_host.decode("ascii"), client_port


# --------------------------------------------------------------------------------------------------
# Explanations: why the allow-list refused, and which pattern would have allowed
# --------------------------------------------------------------------------------------------------
#
# Only for the transcript and the user: the plugin still receives the original's text. Each
# explanation names one pattern that nearly matched and a fix the real matcher has confirmed, so a
# suggestion is never wrong and a pattern for an unrelated host is never mentioned.

_MAX_EXPLAINED: Final = 3


def with_explanation(text: str, explanation: str) -> str:
    """``text`` followed by ``(why: <explanation>)`` when there is one."""
    return f"{text} (why: {explanation})" if explanation else text


def _explain_methods(
    exact: Sequence[_Rule], wildcard: Sequence[_Rule], request: neturl.URL | None, url: str, method: str
) -> str:
    """A ``method`` refusal: what the deciding patterns list, and a wildcard the exact ones shadowed."""
    for group in (exact, wildcard):
        matching = [r for r in group if NetPolicy._rule_matches(r, request, url)]
        if matching:
            break
    else:
        return ""
    listed = "; ".join(f"{go_quote(r.pattern)} lists {_method_list(r.methods, method)}" for r in matching)
    target = "its" if len(matching) == 1 else "one of these patterns'"
    text = f"{listed}; add {go_quote(method)} to {target} methods in allowedUrls"
    if group is exact:
        shadowed = [
            r
            for r in wildcard
            if ("*" in r.methods or method in r.methods) and NetPolicy._rule_matches(r, request, url)
        ]
        if shadowed:
            wildcard_pattern = go_quote(shadowed[0].pattern)
            text += (
                f'; patterns without "*" decide before wildcard patterns, so {wildcard_pattern}, '
                f"which allows {method}, was not consulted"
            )
    return text


def _method_list(methods: Sequence[str], refused: str) -> str:
    return f"only {', '.join(methods)}, not {refused}" if methods else "no methods"


def _explain_no_match(rules: Sequence[_Rule], request: neturl.URL | None, url: str) -> str:
    """A ``not-in-allowlist`` refusal: the patterns that nearly matched, each with a confirmed fix."""
    if request is None:
        return ""
    found = [e for e in (_explain_rule(r.pattern, request, url) for r in rules) if e]
    return "; ".join(found[:_MAX_EXPLAINED])


def _explain_rule(pattern: str, request: neturl.URL, url: str) -> str | None:
    """Why ``pattern`` does not match ``url`` and a pattern that would, or None (an unrelated pattern)."""
    parsed = _parse_pattern(pattern)
    if parsed is None:  # matched as a regex over the raw URL: nothing finer to say
        return None
    reasons: list[str] = []
    candidate = pattern
    if not parsed.scheme and not parsed.host:
        head = pattern.partition("/")[0]
        if not request.scheme or pattern.startswith("/") or "." not in head:
            return None  # a path-only pattern, meant for any host
        reasons.append(f"{go_quote(pattern)} has no scheme, so it is read as a path, not as a host")
        candidate = f"{request.scheme}://{pattern}"
    elif parsed.scheme and parsed.scheme != request.scheme:
        reasons.append(f"{go_quote(pattern)} matches only {parsed.scheme}: URLs, not {request.scheme}:")
        candidate = request.scheme + candidate[len(parsed.scheme) :]
    parsed = _parse_pattern(candidate)
    if parsed is None:
        return None
    path_refused = not _path_admits(parsed, candidate, request)
    any_path = parsed.path in ("", "/") and "*" in candidate
    if not _host_matches(request.host, parsed.host):
        fix = _host_fix(request.host, parsed.host)
        replaced = None if fix is None else _with_host(candidate, parsed.host, fix[1])
        if fix is None or replaced is None:
            return None
        reasons.append(fix[0].replace("{pattern}", go_quote(pattern)))
        candidate = replaced
        parsed = _parse_pattern(candidate)
        if parsed is None:
            return None
    if any_path and "*" not in candidate:  # the host fix dropped the "*" that admitted every path
        candidate = _before_path(candidate) + "/*"
    elif not _path_admits(parsed, candidate, request):
        why, candidate = _path_fix(pattern, candidate, parsed, request)
        if path_refused:  # else the host fix caused it, and the new path needs no reason of its own
            reasons.append(why)
    if not reasons or not url_matches(url, candidate):
        return None
    return "; ".join(reasons) + f"; {go_quote(candidate)} would match"


def _path_admits(parsed: neturl.URL, pattern: str, request: neturl.URL) -> bool:
    """The matcher's path step (after scheme and host)."""
    return (parsed.path in ("", "/") and "*" in pattern) or _path_matches(request.path, parsed.path)


def _host_fix(request_host: str, pattern_host: str) -> tuple[str, str] | None:
    """Why a nearly matching host pattern refused ``request_host``, and the host that would match.

    ``{pattern}`` in the reason stands for the quoted pattern. None when the hosts are unrelated.
    """
    name, port = neturl.split_host_port(request_host)
    if "*" not in pattern_host:
        if neturl.split_host_port(pattern_host)[0] == name:
            return (
                f"{{pattern}} compares the host with its port: it names {go_quote(pattern_host)}, "
                f"the URL {go_quote(request_host)}",
                request_host,
            )
        if pattern_host.lower() == request_host.lower():
            return "host names compare case-sensitively in {pattern}", request_host
        return None
    if port and ":" not in pattern_host and _host_matches(name, pattern_host):
        return (
            f'a host with "*" in {{pattern}} never matches a URL that has a port ({go_quote(request_host)}) '
            "unless the pattern names the port too",
            f"{pattern_host}:{port}",
        )
    if pattern_host.count("*") != 1:
        return None
    for without in (pattern_host.replace("*.", "", 1), pattern_host.replace(".*", "", 1)):
        if without != pattern_host and without == request_host:
            return (
                f'"*" in a host matches exactly one label, so {{pattern}} does not match '
                f"{go_quote(request_host)} itself",
                request_host,
            )
    before, after = pattern_host.split("*")
    middle = request_host[len(before) : len(request_host) - len(after)]
    if (
        len(request_host) > len(before) + len(after)
        and request_host.startswith(before)
        and request_host.endswith(after)
        and "." in middle
    ):
        return (
            f'"*" in a host matches exactly one label, so in {{pattern}} it does not match '
            f"{go_quote(middle)}",
            before + "*" + middle[middle.index(".") :] + after,
        )
    return None


def _with_host(pattern: str, old_host: str, new_host: str) -> str | None:
    """``pattern`` with its host replaced; None when the host is not spelled plainly after ``//``."""
    start = pattern.find("//")
    if start < 0 or not pattern.startswith(old_host, start + 2):
        return None
    return pattern[: start + 2] + new_host + pattern[start + 2 + len(old_host) :]


def _path_fix(pattern: str, candidate: str, parsed: neturl.URL, request: neturl.URL) -> tuple[str, str]:
    """Why the path refused, and ``candidate`` with a path that admits the request's path."""
    path = parsed.path or "/"
    request_path = request.path or "/"
    if "*" not in pattern:
        why = f'{go_quote(pattern)} has no "*", so it matches only the path {go_quote(path)}'
    elif path.endswith("/*"):
        why = f"{go_quote(pattern)} matches only paths starting with {go_quote(path[:-2])}"
    else:
        why = f"{go_quote(pattern)} matches only the path {go_quote(path)}"
    why += f", not {go_quote(request_path)}"
    if "*" in path and not path.endswith("/*"):
        why += ' (a "*" inside a path is literal; only a trailing "/*" matches by prefix)'
    base = _before_path(candidate)
    prefix = path.split("*", 1)[0].rstrip("/")
    if prefix and (request_path == prefix or request_path.startswith(prefix + "/")):
        return why, f"{base}{prefix}/*"
    return why, f"{base}/*"


def _before_path(pattern: str) -> str:
    """``scheme://host[:port]`` of a pattern (query, fragment and path dropped)."""
    start = pattern.find("//")
    start = 0 if start < 0 else start + 2
    ends = [i for i in (pattern.find(c, start) for c in "/?#") if i >= 0]
    return pattern[: min(ends)] if ends else pattern
