"""An SSRF corpus for the local-network guard: URLs as data, with what each mode must decide.

Every :data:`CORPUS` entry must be refused by the strict policy with ``allowLocalNetwork=false`` (with
``code``). ``legacy`` is what the original's literal checks say about the same URL: the message it
refuses with, or ``None`` where the original let it through (its known weaknesses). ``syntactic`` is
true when the URL is well-formed for the matcher, the HTTP client and the WHATWG rules, so that with
``allowLocalNetwork=true`` the strict policy lets it pass. ``resolves`` marks host names that are only
refused after :data:`FAKE_DNS` resolves them.

:data:`REDIRECT_TARGETS` are Location values an allowed host may redirect to, one per non-public range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

LOCALHOST = "requests to localhost are not allowed"
PRIVATE = "requests to private IP addresses are not allowed"
INVALID = "invalid URL: "


@dataclass(frozen=True)
class SsrfCase:
    url: str
    code: str  # the strict policy's reason code
    legacy: str | None  # the original's message (a prefix for invalid URLs), None = it allowed the URL
    syntactic: bool = True
    resolves: bool = False

    @property
    def id(self) -> str:
        return self.url


def _c(
    url: str, code: str, legacy: str | None, *, syntactic: bool = True, resolves: bool = False
) -> SsrfCase:
    return SsrfCase(url, code, legacy, syntactic, resolves)


# A resolver the tests inject: never the network. Unknown names fail like NXDOMAIN.
FAKE_DNS: dict[str, list[str]] = {
    "rebind.test": ["127.0.0.1"],
    "internal.test": ["10.1.2.3"],
    "mixed.test": ["93.184.216.34", "192.168.0.10"],
    "v6loop.test": ["::1"],
    "mapped.test": ["::ffff:169.254.169.254"],
    "cgnat.test": ["100.64.1.1"],
    "meta.test": ["169.254.169.254"],
    "nat64.test": ["64:ff9b::a00:1"],
    "api.example.com": ["93.184.216.34"],
    "cdn.example.com": ["93.184.216.34"],
    "public.test": ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"],
}


def fake_resolver(host: str, port: int) -> list[str]:
    try:
        return list(FAKE_DNS[host])
    except KeyError:
        raise OSError(f"lookup {host}: no such host (fake DNS)") from None


CORPUS: Sequence[SsrfCase] = (
    # --- IPv4 loopback, every spelling -------------------------------------------------------------
    _c("http://127.0.0.1/", "loopback", LOCALHOST),
    _c("http://127.0.0.1:8080/admin", "loopback", LOCALHOST),
    _c("http://127.1.2.3/", "loopback", PRIVATE),
    _c("http://127.255.255.254/", "loopback", PRIVATE),
    _c("http://2130706433/", "loopback", None),  # decimal
    _c("http://0x7f000001/", "loopback", None),  # hex
    _c("http://0x7f.1/", "loopback", None),  # hex + short form
    _c("http://0x7F.0.0.1/", "loopback", None),
    _c("http://0x7f.0x0.0x0.0x1/", "loopback", None),
    _c("http://017700000001/", "loopback", None),  # octal
    _c("http://0177.0.0.1/", "loopback", None, syntactic=False),  # httpx refuses 4-part octal
    _c("http://0000177.0.0.1/", "loopback", None, syntactic=False),
    _c("http://127.000.000.001/", "loopback", None, syntactic=False),
    _c("http://127.1/", "loopback", None),  # short forms
    _c("http://127.0.1/", "loopback", None),
    _c("http://127.0.0.1./", "loopback", None),  # trailing dots
    _c("http://127.0.0.1../", "loopback", None),
    # --- localhost names ---------------------------------------------------------------------------
    _c("http://localhost/", "loopback", LOCALHOST),
    _c("http://localhost:3000/path?q=1", "loopback", LOCALHOST),
    _c("http://LOCALHOST/", "loopback", None),
    _c("http://LocalHost./", "loopback", None),
    _c("http://localhost./", "loopback", None),
    _c("http://foo.localhost/", "loopback", None),
    _c("http://localhost.localdomain/", "loopback", None),
    _c("http://ip6-localhost/", "loopback", None),
    _c("http://ｌｏｃａｌｈｏｓｔ/", "loopback", None, syntactic=False),  # full-width letters  # noqa: RUF001
    # --- userinfo and backslash tricks --------------------------------------------------------------
    _c("http://allowed.com@127.0.0.1/", "loopback", LOCALHOST),
    _c("http://allowed.com:80@127.0.0.1/", "loopback", LOCALHOST),
    _c("http://a@b@127.0.0.1/", "loopback", LOCALHOST),
    _c("http://user:pass@10.0.0.1/", "private", PRIVATE),
    _c("http://allowed.com\\@127.0.0.1/", "invalid-url", INVALID, syntactic=False),
    _c("http://127.0.0.1\\@allowed.com/", "invalid-url", INVALID, syntactic=False),
    _c("http://127.0.0.1\\.allowed.com/", "invalid-url", INVALID, syntactic=False),
    # --- RFC 1918 ------------------------------------------------------------------------------------
    _c("http://10.0.0.1/", "private", PRIVATE),
    _c("http://10.255.255.255/", "private", PRIVATE),
    _c("http://172.16.0.1/", "private", PRIVATE),
    _c("http://172.31.255.255/", "private", PRIVATE),
    _c("http://192.168.1.1/", "private", PRIVATE),
    _c("http://0xa000001/", "private", None),
    _c("http://3232235777/", "private", None),  # 192.168.1.1
    _c("http://0xc0.0xa8.1.1/", "private", None),
    # --- link-local and cloud metadata -------------------------------------------------------------
    _c("http://169.254.169.254/latest/meta-data/", "metadata", PRIVATE),
    _c("http://169.254.1.1/", "link-local", PRIVATE),
    _c("http://2852039166/", "metadata", None),  # 169.254.169.254
    _c("http://metadata.google.internal/computeMetadata/v1/", "metadata", None),
    _c("http://metadata/", "metadata", None),
    _c("http://[fd00:ec2::254]/", "metadata", PRIVATE),
    _c("http://168.63.129.16/", "metadata", None),  # Azure wire server
    _c("http://100.100.100.200/", "metadata", None),  # Alibaba
    _c("http://[fe80::1]/", "link-local", PRIVATE),
    # Go's ParseIP rejects zones; WHATWG has no zone ids at all, so allowLocalNetwork does not admit it
    _c("http://[fe80::1%25eth0]/", "link-local", None, syntactic=False),
    # --- CGNAT, unspecified, multicast, reserved ----------------------------------------------------
    _c("http://100.64.0.1/", "cgnat", None),
    _c("http://100.127.255.254/", "cgnat", None),
    _c("http://0.0.0.0/", "unspecified", None),
    _c("http://0.0.0.0:8080/", "unspecified", None),
    _c("http://0/", "unspecified", None),
    _c("http://[::]/", "unspecified", None),
    _c("http://224.0.0.1/", "multicast", None),
    _c("http://[ff02::1]/", "multicast", None),
    _c("http://255.255.255.255/", "reserved", None),
    _c("http://240.0.0.1/", "reserved", None),
    _c("http://198.18.0.1/", "reserved", None),
    _c("http://192.0.2.1/", "reserved", None),
    _c("http://[2001:db8::1]/", "reserved", None),
    # --- IPv6 loopback and private, and IPv4 embedded in IPv6 ---------------------------------------
    _c("http://[::1]/", "loopback", LOCALHOST),
    _c("http://[::1]:8080/", "loopback", LOCALHOST),
    _c("http://[0:0:0:0:0:0:0:1]/", "loopback", PRIVATE),
    _c("http://[fc00::1]/", "private", PRIVATE),
    _c("http://[fd12:3456::1]/", "private", PRIVATE),
    _c("http://[fec0::1]/", "private", None),  # deprecated site-local
    _c("http://[::ffff:127.0.0.1]/", "ipv6-embedded-ipv4", PRIVATE),  # IPv4-mapped
    _c("http://[::ffff:7f00:1]/", "ipv6-embedded-ipv4", PRIVATE),
    _c("http://[::ffff:10.0.0.1]/", "ipv6-embedded-ipv4", PRIVATE),
    _c("http://[::ffff:a9fe:a9fe]/", "ipv6-embedded-ipv4", PRIVATE),
    _c("http://[::127.0.0.1]/", "ipv6-embedded-ipv4", None),  # IPv4-compatible
    _c("http://[64:ff9b::127.0.0.1]/", "ipv6-embedded-ipv4", None),  # NAT64
    _c("http://[64:ff9b::a9fe:a9fe]/", "ipv6-embedded-ipv4", None),
    _c("http://[2002:7f00:1::]/", "ipv6-embedded-ipv4", None),  # 6to4
    _c("http://[2002:c0a8:101::1]/", "ipv6-embedded-ipv4", None),
    _c("http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/", "ipv6-embedded-ipv4", None),  # Teredo
    # --- IDNA, full-width and other Unicode spellings -----------------------------------------------
    _c("http://１２７.０.０.１/", "loopback", None, syntactic=False),  # noqa: RUF001
    _c("http://127。0。0。1/", "loopback", None),  # ideographic full stops (httpx maps them too)
    _c("http://①②⑦.0.0.1/", "loopback", None, syntactic=False),
    _c("http://０ｘ７ｆ.1/", "loopback", None, syntactic=False),  # noqa: RUF001
    _c("http://１０.0.0.1/", "private", None, syntactic=False),  # noqa: RUF001
    # --- percent-encoding in the host (Go refuses ASCII escapes there) -------------------------------
    _c("http://%31%32%37.0.0.1/", "invalid-url", INVALID, syntactic=False),
    _c("http://127.0.0.%31/", "invalid-url", INVALID, syntactic=False),
    # --- names that resolve (through FAKE_DNS) to non-public addresses ------------------------------
    _c("http://rebind.test/", "loopback", None, resolves=True),
    _c("http://internal.test:8443/", "private", None, resolves=True),
    _c("http://mixed.test/", "private", None, resolves=True),  # one bad record refuses the name
    _c("http://v6loop.test/", "loopback", None, resolves=True),
    _c("http://mapped.test/", "ipv6-embedded-ipv4", None, resolves=True),
    _c("http://cgnat.test/", "cgnat", None, resolves=True),
    _c("http://meta.test/", "metadata", None, resolves=True),
    _c("http://nat64.test/", "ipv6-embedded-ipv4", None, resolves=True),
)

# Location values an allowed host redirects to: one per non-public range (and a rebinding name).
REDIRECT_TARGETS: Sequence[tuple[str, str]] = (
    ("http://127.0.0.1/", "loopback"),
    ("http://localhost:8080/", "loopback"),
    ("http://2130706433/", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://169.254.1.1/", "link-local"),
    ("http://100.64.0.1/", "cgnat"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://224.0.0.1/", "multicast"),
    ("http://240.0.0.1/", "reserved"),
    ("http://[::1]/", "loopback"),
    ("http://[fc00::1]/", "private"),
    ("http://[fe80::1]/", "link-local"),
    ("http://[::ffff:127.0.0.1]/", "ipv6-embedded-ipv4"),
    ("http://[64:ff9b::a00:1]/", "ipv6-embedded-ipv4"),
    ("http://metadata.google.internal/", "metadata"),
)
