"""gocompat.neturl against Go's url_test.go (urltests, parse errors), netip's ParseAddr cases, and ours."""

from __future__ import annotations

import ipaddress

import pytest

from pytest_wasmhost.gocompat.neturl import (
    URL,
    AddrError,
    URLError,
    encode_query,
    escape_path,
    get_scheme,
    join_host_port,
    parse,
    parse_addr,
    parse_ip,
    parse_query,
    split_host_port,
    url_string,
)

# -- url.Parse: Go's urltests (fields as our URL keeps them: userinfo raw, the rest unescaped) -------

GO_URLTESTS = [
    ("http://www.google.com", URL(scheme="http", host="www.google.com")),
    ("http://www.google.com/", URL(scheme="http", host="www.google.com", path="/")),
    (
        "http://www.google.com/file%20one%26two",
        URL(scheme="http", host="www.google.com", path="/file one&two"),
    ),
    (
        "http://www.google.com/#file%20one%26two",
        URL(scheme="http", host="www.google.com", path="/", fragment="file one&two"),
    ),
    (
        "ftp://webmaster@www.google.com/",
        URL(scheme="ftp", userinfo="webmaster", host="www.google.com", path="/"),
    ),
    (
        "ftp://john%20doe@www.google.com/",
        URL(scheme="ftp", userinfo="john%20doe", host="www.google.com", path="/"),
    ),
    ("http://www.google.com/?", URL(scheme="http", host="www.google.com", path="/")),
    (
        "http://www.google.com/?foo=bar?",
        URL(scheme="http", host="www.google.com", path="/", raw_query="foo=bar?"),
    ),
    (
        "http://www.google.com/?q=go+language",
        URL(scheme="http", host="www.google.com", path="/", raw_query="q=go+language"),
    ),
    (
        "http://www.google.com/a%20b?q=c+d",
        URL(scheme="http", host="www.google.com", path="/a b", raw_query="q=c+d"),
    ),
    (
        "http:www.google.com/?q=go+language",
        URL(scheme="http", opaque="www.google.com/", raw_query="q=go+language"),
    ),
    (
        "http:%2f%2fwww.google.com/?q=go+language",
        URL(scheme="http", opaque="%2f%2fwww.google.com/", raw_query="q=go+language"),
    ),
    ("mailto:/webmaster@golang.org", URL(scheme="mailto", path="/webmaster@golang.org")),
    ("mailto:webmaster@golang.org", URL(scheme="mailto", opaque="webmaster@golang.org")),
    ("/foo?query=http://bad", URL(path="/foo", raw_query="query=http://bad")),
    ("//foo", URL(host="foo")),
    ("//user@foo/path?a=b", URL(userinfo="user", host="foo", path="/path", raw_query="a=b")),
    ("///threeslashes", URL(path="///threeslashes")),
    ("http://user:password@google.com", URL(scheme="http", userinfo="user:password", host="google.com")),
    ("http://j@ne:password@google.com", URL(scheme="http", userinfo="j@ne:password", host="google.com")),
    ("http://jane:p@ssword@google.com", URL(scheme="http", userinfo="jane:p@ssword", host="google.com")),
    (
        "http://j@ne:password@google.com/p@th?q=@go",
        URL(scheme="http", userinfo="j@ne:password", host="google.com", path="/p@th", raw_query="q=@go"),
    ),
    (
        "http://www.google.com/?q=go+language#foo%26bar",
        URL(scheme="http", host="www.google.com", path="/", raw_query="q=go+language", fragment="foo&bar"),
    ),
    ("file:///home/adg/rabbits", URL(scheme="file", path="/home/adg/rabbits")),
    ("file:///C:/FooBar/Baz.txt", URL(scheme="file", path="/C:/FooBar/Baz.txt")),
    ("MaIlTo:webmaster@golang.org", URL(scheme="mailto", opaque="webmaster@golang.org")),
    ("a/b/c", URL(path="a/b/c")),
    (
        "http://%3Fam:pa%3Fsword@google.com",
        URL(scheme="http", userinfo="%3Fam:pa%3Fsword", host="google.com"),
    ),
    ("http://192.168.0.1:8080/", URL(scheme="http", host="192.168.0.1:8080", path="/")),
    ("http://[fe80::1]:8080/", URL(scheme="http", host="[fe80::1]:8080", path="/")),
    ("http://[fe80::1%25en0]/", URL(scheme="http", host="[fe80::1%en0]", path="/")),
    ("http://[fe80::1%25%65%6e%301-._~]:8080/", URL(scheme="http", host="[fe80::1%en01-._~]:8080", path="/")),
    (
        "http://rest.rsc.io/foo%2fbar/baz%2Fquux?alt=media",
        URL("http", "", None, "rest.rsc.io", "/foo/bar/baz/quux", "alt=media"),
    ),
    ("mysql://a,b,c/bar", URL(scheme="mysql", host="a,b,c", path="/bar")),
    ("scheme://!$&'()*+,;=hello!:1/path", URL(scheme="scheme", host="!$&'()*+,;=hello!:1", path="/path")),
    ("http://host/!$&'()*+,;=:@[hello]", URL(scheme="http", host="host", path="/!$&'()*+,;=:@[hello]")),
    ("http://example.com/oid/[order_id]", URL(scheme="http", host="example.com", path="/oid/[order_id]")),
    ("http://192.168.0.2:/foo", URL(scheme="http", host="192.168.0.2:", path="/foo")),
    (
        "http://2b01:e34:ef40:7730:8e70:5aff:fefe:edac:8080/foo",  # Go 1.25: the port after the last colon
        URL(scheme="http", host="2b01:e34:ef40:7730:8e70:5aff:fefe:edac:8080", path="/foo"),
    ),
    (
        "http://[2b01:e34:ef40:7730:8e70:5aff:fefe:edac]:/foo",
        URL(scheme="http", host="[2b01:e34:ef40:7730:8e70:5aff:fefe:edac]:", path="/foo"),
    ),
    ("http://hello.世界.com/foo", URL(scheme="http", host="hello.世界.com", path="/foo")),
    ("http://hello.%e4%b8%96%e7%95%8c.com/foo", URL(scheme="http", host="hello.世界.com", path="/foo")),
    ("http://example.com//foo", URL(scheme="http", host="example.com", path="//foo")),
    ('myscheme://authority<"hi">/foo', URL(scheme="myscheme", host='authority<"hi">', path="/foo")),
    (
        "tcp://[2020::2020:20:2020:2020%25Windows%20Loves%20Spaces]:2020",
        URL(scheme="tcp", host="[2020::2020:20:2020:2020%Windows Loves Spaces]:2020"),
    ),
    ("magnet:?xt=urn:btih:c12f&dn", URL(scheme="magnet", raw_query="xt=urn:btih:c12f&dn")),
    ("mailto:?subject=hi", URL(scheme="mailto", raw_query="subject=hi")),
    (
        "http://[::ffff:192.168.0.1]/",
        URL(scheme="http", host="[::ffff:192.168.0.1]", path="/"),
    ),  # mapped: IPv6
    # ours (from the allow-list matcher's rows)
    ("a:b/c:d", URL(scheme="a", opaque="b/c:d")),  # opaque: no "/" after the scheme
    ("x/y:z", URL(path="x/y:z")),  # "/" before ":" ends the scheme: a relative path
    ("x:y/z:", URL(scheme="x", opaque="y/z:")),  # a scheme is found, so the colon rule does not apply
    ("*", URL(path="*")),  # the OPTIONS target
    ("http://h/p??", URL(scheme="http", host="h", path="/p", raw_query="?")),
    ("http://h/p?a?", URL(scheme="http", host="h", path="/p", raw_query="a?")),
    ("http://h?#f", URL(scheme="http", host="h", fragment="f")),
    ("HTTPZ://Zed:Z@EXAMPLEZ.COM:8080/Z?Z#Z", URL("httpz", "", "Zed:Z", "EXAMPLEZ.COM:8080", "/Z", "Z", "Z")),
    ("Aa0+-.9z:x", URL(scheme="aa0+-.9z", opaque="x")),  # every character class of a scheme
    ("http://@h/", URL(scheme="http", userinfo="", host="h", path="/")),  # an empty userinfo
    ("http://h/a%41", URL(scheme="http", host="h", path="/aA")),  # an escape that ends the URL
    ("http://a%25b/", URL(scheme="http", host="a%b", path="/")),  # %25 is allowed in any host
    ("http://%C2%80x/", URL(scheme="http", host="\x80x", path="/")),  # escapes of bytes >= 0x80
    ("http://%FFx/", URL(scheme="http", host="\udcffx", path="/")),  # a byte that is no UTF-8: kept
    ("http://[fe80::1%25en%200]/", URL(scheme="http", host="[fe80::1%en 0]", path="/")),  # zone: %20 ok
    ("http://h/%E2%82", URL(scheme="http", host="h", path="/\udce2\udc82")),
]


@pytest.mark.parametrize(("raw", "url"), GO_URLTESTS)
def test_parse(raw: str, url: URL) -> None:
    assert parse(raw) == url


@pytest.mark.parametrize(
    ("raw", "cause"),
    [
        # Go's parseRequestURL / Parse failures
        ("http://[::1]:namedport", 'invalid port ":namedport" after host'),
        ("http://x:namedport", 'invalid port ":namedport" after host'),
        ("http://[::1]a", 'invalid port "a" after host'),
        ("http://[::1]%23", 'invalid port "%23" after host'),
        ("http://[fe80::1%2en0]/", 'invalid URL escape "%2e"'),
        ("http://[fe80::1]:%38%30/", 'invalid port ":%38%30" after host'),
        ("http://[fe80::1%25%10]/", 'invalid URL escape "%10"'),
        ("http://[fe80::%31]", 'invalid URL escape "%31"'),
        ("http://a b.com/", 'invalid character " " in host name'),
        ("http://%41:8080/", 'invalid URL escape "%41"'),
        ("http://[192.168.0.1]/", "invalid IP-literal"),  # Go 1.25: only IPv6 in brackets
        ("http://[192.168.0.1]:8080/", "invalid IP-literal"),
        ("http://a[::1]/", "invalid IP-literal"),
        ("http://[[::1]]/", "invalid IP-literal"),
        ("http://[v1.x]/", 'invalid host: ParseAddr("v1.x"): unexpected character (at "v1.x")'),
        ("http://[]/", 'invalid host: ParseAddr(""): unable to parse IP'),
        # ours (from the allow-list matcher and the Subsonic router)
        ("http://[::1", "missing ']' in host"),
        ("https://api.example.com:*", 'invalid port ":*" after host'),
        ("http://h/%zz", 'invalid URL escape "%zz"'),
        ("http://u\\@h/", "net/url: invalid userinfo"),
        ("http://h/\n", "net/url: invalid control character in URL"),
        (":foo", "missing protocol scheme"),
        ("1a:b", "first path segment in URL cannot contain colon"),
        ("http://h/%", 'invalid URL escape "%"'),  # an escape cut short by the end
        ("http://h/%a", 'invalid URL escape "%a"'),
        ("http://%zz@h/", 'invalid URL escape "%zz"'),  # the user name is unescaped
        ("http://u:%zz@h/", 'invalid URL escape "%zz"'),  # ... and the password
        ("http://[fe80::1%25en%2f]/", 'invalid URL escape "%2f"'),
        ("/a%1é", 'invalid URL escape "%1\\xc3"'),  # an escape cuts a character: quoted byte by byte
        ("http://[%ff]/", 'invalid host: ParseAddr("\\xff"): unable to parse IP'),
        ("http://[1::2::3]/", 'invalid host: ParseAddr("1::2::3"): multiple :: in address (at ":3")'),
        ("http://[::1.2.3.4.5]/", 'invalid host: ParseAddr("::1.2.3.4.5"): IPv4 address too long'),
    ],
)
def test_parse_errors(raw: str, cause: str) -> None:
    with pytest.raises(URLError) as info:
        parse(raw)
    assert str(info.value) == f"parse {_go_quoted(raw)}: {cause}"


def _go_quoted(raw: str) -> str:
    from pytest_wasmhost.gocompat.strconv import quote

    return quote(raw)


def test_a_bad_fragment_names_the_whole_url() -> None:
    with pytest.raises(URLError) as info:
        parse("http://h/#%zz")
    assert str(info.value) == 'parse "http://h/#%zz": invalid URL escape "%zz"'


def test_hostname_and_port() -> None:
    url = parse("HTTPS://user:pw@[fe80::1%25eth0]:8443/a%2Fb?q=1#frag")
    assert (url.scheme, url.userinfo, url.host) == ("https", "user:pw", "[fe80::1%eth0]:8443")
    assert (url.hostname, url.port, url.path, url.raw_query, url.fragment) == (
        "fe80::1%eth0",
        "8443",
        "/a/b",
        "q=1",
        "frag",
    )
    assert parse("http://a@b@c:1/").hostname == "c"
    empty_host = parse("http://:80/")
    assert (empty_host.host, empty_host.hostname, empty_host.port) == (":80", "", "80")
    assert parse("http://a]/").hostname == "a]"  # brackets are dropped only in pairs
    assert split_host_port("h:8a") == ("h:8a", "")  # not a port: kept in the host


def test_get_scheme() -> None:
    assert get_scheme("HTTP://x") == ("HTTP", "//x")
    assert get_scheme("1http://x") == ("", "1http://x")
    assert get_scheme("/a:b") == ("", "/a:b")
    assert get_scheme(":x") is None


# -- queries ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "values"),
    [
        # Go's parseTests (ParseQuery; URL.Query() drops what ParseQuery reports as errors)
        ("a=1", {"a": ["1"]}),
        ("a=1&b=2", {"a": ["1"], "b": ["2"]}),
        ("a=1&a=2&a=banana", {"a": ["1", "2", "banana"]}),
        ("ascii=%3Ckey%3A+0x90%3E", {"ascii": ["<key: 0x90>"]}),
        ("a=1;b=2", {}),
        ("a;b=1", {}),
        ("a=%3B", {"a": [";"]}),
        ("a%3Bb=1", {"a;b": ["1"]}),
        ("a=1&a=2;a=banana", {"a": ["1"]}),
        ("a;b&c=1", {"c": ["1"]}),
        ("a=1&b=2;a=3&c=4", {"a": ["1"], "c": ["4"]}),
        ("a=1&b=2;c=3", {"a": ["1"]}),
        (";", {}),
        ("a=1&;", {"a": ["1"]}),
        ("a=1;&", {}),
        ("a=1&b=2;&", {"a": ["1"]}),
        # ours
        ("u=%zz&u=b", {"u": ["b"]}),
        ("=z&&k", {"": ["z"], "k": [""]}),
        ("k=%FF", {"k": ["\udcff"]}),
    ],
)
def test_parse_query(query: str, values: dict[str, list[str]]) -> None:
    assert parse_query(query) == values


def test_encode_query() -> None:
    # Go's EncodeQuery tests: sorted by key (bytes), values in order, QueryEscape (space as "+")
    assert encode_query([]) == ""
    assert encode_query([("q", "puppies"), ("oe", "utf8")]) == "oe=utf8&q=puppies"
    assert encode_query([("q", "dogs"), ("q", "&"), ("q", "7")]) == "q=dogs&q=%26&q=7"
    assert (
        encode_query(
            [
                ("a", "a1"),
                ("a", "a2"),
                ("a", "a3"),
                ("b", "b1"),
                ("b", "b2"),
                ("b", "b3"),
                ("c", "c1"),
                ("c", "c2"),
                ("c", "c3"),
            ]
        )
        == "a=a1&a=a2&a=a3&b=b1&b=b2&b=b3&c=c1&c=c2&c=c3"
    )
    assert encode_query([("k", "a b"), ("\udcff", "1"), ("\ue000", "2")]) == "k=a+b&%EE%80%80=2&%FF=1"


def test_escaped_path_and_string() -> None:
    assert escape_path("/a b/?#%") == "/a%20b/%3F%23%25"
    assert escape_path("/$&+,/:;=@!'()*") == "/$&+,/:;=@%21%27%28%29%2A"
    assert escape_path("*") == "*"
    assert escape_path("/*") == "/%2A"
    assert url_string("http", "h\u00e9:80", "/x y", "q=1") == "http://h%C3%A9:80/x%20y?q=1"
    assert url_string("https", "[::1]", "/") == "https://[::1]/"
    assert url_string("http", "h", "rel") == "http://h/rel"
    assert url_string("", "", "a:b") == "./a:b"  # a colon in the first segment would read as a scheme
    assert join_host_port("::1", 80) == "[::1]:80"
    assert join_host_port("h", "443") == "h:443"


# -- net/netip --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # netip's ParseAddr valid cases
        ("0.0.0.0", "0.0.0.0"),
        ("192.168.140.255", "192.168.140.255"),
        ("::", "::"),
        ("::1", "::1"),
        ("fd7a:115c:a1e0:ab12:4843:cd96:626b:430b", "fd7a:115c:a1e0:ab12:4843:cd96:626b:430b"),
        ("fd7a:115c::626b:430b", "fd7a:115c::626b:430b"),
        ("fd7a:115c:a1e0:ab12:4843:cd96::", "fd7a:115c:a1e0:ab12:4843:cd96::"),
        ("::ffff:192.168.140.255", "::ffff:192.168.140.255"),
        ("::ffff:c000:0280", "::ffff:c000:280"),
        ("fe80::1cc0:3e8c:119f:c2e1%ens18", "fe80::1cc0:3e8c:119f:c2e1"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),  # "::" may stand for one field
    ],
)
def test_parse_addr(text: str, value: str) -> None:
    assert parse_addr(text) == ipaddress.ip_address(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # netip's invalidIP cases, with Go's texts
        ("", 'ParseAddr(""): unable to parse IP'),
        ("bad", 'ParseAddr("bad"): unable to parse IP'),
        ("1.2.3", 'ParseAddr("1.2.3"): IPv4 address too short'),
        ("1.2.3.4.5", 'ParseAddr("1.2.3.4.5"): IPv4 address too long'),
        ("1.2.3.256", 'ParseAddr("1.2.3.256"): IPv4 field has value >255'),
        ("1.2.3.04", 'ParseAddr("1.2.3.04"): IPv4 field has octet with leading zero'),
        ("1..2.3", 'ParseAddr("1..2.3"): IPv4 field must have at least one digit (at ".2.3")'),
        ("1.2.3.4a", 'ParseAddr("1.2.3.4a"): unexpected character (at "a")'),
        ("%eth0", 'ParseAddr("%eth0"): missing IPv6 address'),
        ("fe80::1%", 'ParseAddr("fe80::1%"): zone must be a non-empty string'),
        ("1:2:3:4:5:6:7:8:9", 'ParseAddr("1:2:3:4:5:6:7:8:9"): trailing garbage after address (at "9")'),
        ("1:2:3:4:5:6:7", 'ParseAddr("1:2:3:4:5:6:7"): address string too short'),
        (
            "1:2:3:4::5:6:7:8",
            'ParseAddr("1:2:3:4::5:6:7:8"): the :: must expand to at least one field of zeros',
        ),
        ("12345::", 'ParseAddr("12345::"): each group must have 4 or less digits (at "12345::")'),
        ("1:2::3::4", 'ParseAddr("1:2::3::4"): multiple :: in address (at ":4")'),
        ("1:2:3:", 'ParseAddr("1:2:3:"): colon must be followed by more characters (at ":")'),
        ("1:2:3x", 'ParseAddr("1:2:3x"): unexpected character, want colon (at "x")'),
        ("::1.2.3.4.5", 'ParseAddr("::1.2.3.4.5"): IPv4 address too long'),
        (
            "1:2:3:1.2.3.4",
            'ParseAddr("1:2:3:1.2.3.4"): embedded IPv4 address must replace the final 2 fields '
            'of the address (at "1.2.3.4")',
        ),
        ("::ffff:1.2.03.4", 'ParseAddr("::ffff:1.2.03.4"): IPv4 field has octet with leading zero'),
    ],
)
def test_parse_addr_errors(text: str, message: str) -> None:
    with pytest.raises(AddrError) as info:
        parse_addr(text)
    assert str(info.value) == message


def test_parse_ip_is_parse_addr_without_a_zone() -> None:
    assert parse_ip("127.0.0.1") == ipaddress.ip_address("127.0.0.1")
    assert parse_ip("::ffff:10.0.0.1") == ipaddress.ip_address("::ffff:10.0.0.1")
    assert parse_ip("fe80::1%eth0") is None
    assert parse_ip("0177.0.0.1") is None  # no octal, no leading zeros
    assert parse_ip("localhost") is None
