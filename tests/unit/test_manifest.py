"""manifest.py: the original host's validator (layer B), its error texts, lint against the schema (A).

Every ``original`` below was checked against Go's encoding/json decoding into the generated types.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_wasmhost.errors import ManifestError
from pytest_wasmhost.manifest import (
    CAPABILITIES,
    HTTP_METHODS,
    MAX_MANIFEST_BYTES,
    SERVICES,
    HttpPermission,
    LintWarning,
    Manifest,
    Permissions,
    SubsonicApiPermission,
    WebSocketPermission,
    format_json_path,
    lint_manifest,
    load_manifest,
    parse_manifest,
    runtime_permission_problems,
)
from tests.support.permissions import IGNORES_PERMISSION_BITS, SKIP_REASON

CAPS_ENUM = (
    '[]interface {}{"MetadataAgent", "Scrobbler", "SchedulerCallback", "LifecycleManagement", '
    '"WebSocketCallback"}'
)
METHODS_ENUM = '[]interface {}{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "*"}'


def valid(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "lastfm",
        "author": "Navidrome",
        "version": "1.0.0",
        "description": "Last.fm agent",
        "website": "https://www.last.fm",
        "capabilities": ["MetadataAgent", "Scrobbler"],
        "permissions": {
            "http": {
                "reason": "call the Last.fm API",
                "allowedUrls": {"https://ws.audioscrobbler.com/*": ["GET", "POST"]},
            },
            "config": {"reason": "API key"},
        },
    }
    for key, value in changes.items():
        if value is _DELETE:
            del doc[key]
        else:
            doc[key] = value
    return doc


_DELETE = object()


def encode(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def with_permissions(**perms: Any) -> bytes:
    return encode(valid(permissions=perms))


def rejected(data: Any) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, path="plugins/x/manifest.json")
    return info.value


# --------------------------------------------------------------------------------------------------
# Rejections: one case per row, each with the original text, rule, JSON path and file path
# --------------------------------------------------------------------------------------------------

BAD: list[tuple[str, bytes, str, str, str]] = [
    (
        "not-json",
        b'{"name": }',
        "invalid manifest: invalid character '}' looking for beginning of value",
        "json",
        "$.name",
    ),
    ("empty-file", b"", "invalid manifest: unexpected end of JSON input", "json", "$"),
    ("truncated", b'{"name": "x"', "invalid manifest: unexpected end of JSON input", "json", "$"),
    ("trailing-text", b"{} x", "invalid manifest: invalid character 'x' after top-level value", "json", "$"),
    (
        "trailing-comma",
        b'{"a":1,}',
        "invalid manifest: invalid character '}' looking for beginning of object key string",
        "json",
        "$",
    ),
    (
        "nan",
        b'{"a": NaN}',
        "invalid manifest: invalid character 'N' looking for beginning of value",
        "json",
        "$.a",
    ),
    (
        "single-quotes",
        b"{'a': 1}",
        "invalid manifest: invalid character '\\'' looking for beginning of object key string",
        "json",
        "$",
    ),
    ("lone-minus", b"-", "invalid manifest: invalid character ' ' in numeric literal", "json", "$"),
    ("leading-zero", b"[01]", "invalid manifest: invalid character '1' after array element", "json", "$"),
    (
        "bad-escape",
        b'{"a": "\\x"}',
        "invalid manifest: invalid character 'x' in string escape code",
        "json",
        "$.a",
    ),
    (
        "control-char",
        b'{"a": "\x01"}',
        "invalid manifest: invalid character '\\x01' in string literal",
        "json",
        "$.a",
    ),
    (
        "bom",
        b'\xef\xbb\xbf{"name": "x"}',
        "invalid manifest: invalid character '\u00ef' looking for beginning of value",
        "utf-8",
        "$",
    ),
    (
        "latin1-outside-string",
        b'{"name": \xe9}',
        "invalid manifest: invalid character '\u00e9' looking for beginning of value",
        "utf-8",
        "$.name",
    ),
    (
        "too-deep",
        b"[" * 10001,
        "invalid manifest: invalid character '[' exceeded max depth",
        "json",
        "$" + "[0]" * 10000,
    ),
    (
        "top-level-array",
        b"[]",
        "invalid manifest: json: cannot unmarshal array into Go value of type map[string]interface {}",
        "type",
        "$",
    ),
    (
        "top-level-string",
        b'"x"',
        "invalid manifest: json: cannot unmarshal string into Go value of type map[string]interface {}",
        "type",
        "$",
    ),
    (
        "name-number",
        encode(valid(name=5)),
        "invalid manifest: json: cannot unmarshal number into Go struct field Plain.name of type string",
        "type",
        "$.name",
    ),
    (
        "version-bool",
        encode(valid(version=True)),
        "invalid manifest: json: cannot unmarshal bool into Go struct field Plain.version of type string",
        "type",
        "$.version",
    ),
    (
        "capabilities-string",
        encode(valid(capabilities="Scrobbler")),
        "invalid manifest: json: cannot unmarshal string into Go struct field Plain.capabilities of type "
        "[]schema.PluginManifestCapabilitiesElem",
        "type",
        "$.capabilities",
    ),
    (
        "capability-number",
        encode(valid(capabilities=["Scrobbler", 5])),
        "invalid manifest: json: cannot unmarshal number into Go struct field Plain.capabilities "
        "of type string",
        "type",
        "$.capabilities[1]",
    ),
    (
        "permissions-array",
        encode(valid(permissions=[])),
        "invalid manifest: json: cannot unmarshal array into Go struct field Plain.permissions of type "
        "schema.PluginManifestPermissions",
        "type",
        "$.permissions",
    ),
    (
        "http-number",
        with_permissions(http=5),
        "invalid manifest: json: cannot unmarshal number into Go struct field "
        "PluginManifestPermissions.permissions.http of type map[string]interface {}",
        "type",
        "$.permissions.http",
    ),
    (
        "http-reason-number",
        with_permissions(http={"allowedUrls": {}, "reason": 5}),
        "invalid manifest: json: cannot unmarshal number into Go struct field "
        "PluginManifestPermissions.permissions.http.reason of type string",
        "type",
        "$.permissions.http.reason",
    ),
    (
        "http-method-number",
        with_permissions(http={"allowedUrls": {"https://x/*": [5]}, "reason": "r"}),
        "invalid manifest: json: cannot unmarshal number into Go struct field "
        "PluginManifestPermissions.permissions.http.allowedUrls of type string",
        "type",
        '$.permissions.http.allowedUrls["https://x/*"][0]',
    ),
    (
        "http-allowed-urls-array",
        with_permissions(http={"allowedUrls": ["https://x"], "reason": "r"}),
        "invalid manifest: json: cannot unmarshal array into Go struct field "
        "PluginManifestPermissions.permissions.http.allowedUrls of type "
        "map[string][]schema.PluginManifestPermissionsHttpAllowedUrlsValueElem",
        "type",
        "$.permissions.http.allowedUrls",
    ),
    (
        "websocket-local-network-string",
        with_permissions(websocket={"allowedUrls": ["wss://x"], "reason": "r", "allowLocalNetwork": "yes"}),
        "invalid manifest: json: cannot unmarshal string into Go struct field "
        "PluginManifestPermissions.permissions.websocket.allowLocalNetwork of type bool",
        "type",
        "$.permissions.websocket.allowLocalNetwork",
    ),
    (
        "number-overflow",
        b'{"x": 1e400, "name": "n"}',
        "invalid manifest: json: cannot unmarshal number 1e400 into Go value of type float64",
        "type",
        "$.x",
    ),
    (
        "empty-capabilities",
        encode(valid(capabilities=[])),
        "invalid manifest: field capabilities length: must be >= 1",
        "min-items",
        "$.capabilities",
    ),
    (
        "unknown-capability",
        encode(valid(capabilities=["MetadataAgent", "Lyrics"])),
        f'invalid manifest: invalid value (expected one of {CAPS_ENUM}): "Lyrics"',
        "enum",
        "$.capabilities[1]",
    ),
    (
        "lower-case-capability",
        encode(valid(capabilities=["scrobbler"])),
        f'invalid manifest: invalid value (expected one of {CAPS_ENUM}): "scrobbler"',
        "enum",
        "$.capabilities[0]",
    ),
    (
        "null-capability",
        encode(valid(capabilities=[None])),
        f'invalid manifest: invalid value (expected one of {CAPS_ENUM}): ""',
        "enum",
        "$.capabilities[0]",
    ),
    (
        "missing-reason",
        with_permissions(scheduler={}),
        "invalid manifest: field reason in PluginManifestPermissionsScheduler: required",
        "required",
        "$.permissions.scheduler.reason",
    ),
    (
        "empty-reason",
        with_permissions(cache={"reason": ""}),
        "invalid manifest: field reason length: must be >= 1",
        "min-length",
        "$.permissions.cache.reason",
    ),
    (
        "null-reason",
        with_permissions(artwork={"reason": None}),
        "invalid manifest: field reason length: must be >= 1",
        "min-length",
        "$.permissions.artwork.reason",
    ),
    (
        "http-missing-allowed-urls",
        with_permissions(http={}),  # reason is missing too: allowedUrls is checked first
        "invalid manifest: field allowedUrls in PluginManifestPermissionsHttp: required",
        "required",
        "$.permissions.http.allowedUrls",
    ),
    (
        "websocket-missing-allowed-urls",
        with_permissions(websocket={}),
        "invalid manifest: field allowedUrls in PluginManifestPermissionsWebsocket: required",
        "required",
        "$.permissions.websocket.allowedUrls",
    ),
    (
        "websocket-empty-allowed-urls",
        with_permissions(websocket={"allowedUrls": [], "reason": ""}),  # checked before the reason
        "invalid manifest: field allowedUrls length: must be >= 1",
        "min-items",
        "$.permissions.websocket.allowedUrls",
    ),
    (
        "unknown-method",
        with_permissions(http={"allowedUrls": {"https://x": ["GET", "FETCH"]}, "reason": "r"}),
        f'invalid manifest: invalid value (expected one of {METHODS_ENUM}): "FETCH"',
        "enum",
        '$.permissions.http.allowedUrls["https://x"][1]',
    ),
    (
        "lower-case-method",
        with_permissions(http={"allowedUrls": {"https://x": ["get"]}, "reason": "r"}),
        f'invalid manifest: invalid value (expected one of {METHODS_ENUM}): "get"',
        "enum",
        '$.permissions.http.allowedUrls["https://x"][0]',
    ),
    (
        "case-variant-key-alone",
        encode({k if k != "name" else "Name": v for k, v in valid().items()}),
        "invalid manifest: field name in PluginManifest: required",
        "required",
        "$.name",
    ),
]


@pytest.mark.parametrize(
    ("data", "original", "rule", "json_path"), [case[1:] for case in BAD], ids=[case[0] for case in BAD]
)
def test_rejected_with_original_text(data: bytes, original: str, rule: str, json_path: str) -> None:
    err = rejected(data)
    assert err.original == original
    assert err.rule == rule
    assert err.json_path == json_path
    assert err.path == "plugins/x/manifest.json"
    assert err.fix
    assert "plugins/x/manifest.json" in str(err)


REQUIRED_ORDER = ["author", "capabilities", "description", "name", "permissions", "version", "website"]


@pytest.mark.parametrize("missing", REQUIRED_ORDER)
def test_missing_key_reports_the_first_in_the_originals_order(missing: str) -> None:
    doc = valid()
    # drop this key and every key after it: the original reports only the first missing one
    for key in REQUIRED_ORDER[REQUIRED_ORDER.index(missing) :]:
        del doc[key]
    err = rejected(encode(doc))
    assert err.original == f"invalid manifest: field {missing} in PluginManifest: required"
    assert (err.rule, err.json_path) == ("required", f"$.{missing}")


@pytest.mark.parametrize(
    ("key", "type_name"),
    [
        ("http", "Http"),
        ("config", "Config"),
        ("scheduler", "Scheduler"),
        ("websocket", "Websocket"),
        ("cache", "Cache"),
        ("artwork", "Artwork"),
        ("subsonicapi", "Subsonicapi"),
    ],
)
def test_missing_reason_names_the_permission_type(key: str, type_name: str) -> None:
    extra = {"http": {"allowedUrls": {}}, "websocket": {"allowedUrls": ["wss://x"]}}.get(key, {})
    err = rejected(with_permissions(**{key: extra}))
    assert err.original == f"invalid manifest: field reason in PluginManifestPermissions{type_name}: required"
    assert err.json_path == f"$.permissions.{key}.reason"


def test_type_error_beats_an_earlier_saved_error_only_when_fatal() -> None:
    # Go saves the first type error and keeps going; an UnmarshalJSON error aborts and wins.
    err = rejected(
        b'{"name": 5, "author":"a","description":"d","version":"v","website":"w",'
        b'"capabilities":["Nope"],"permissions":{}}'
    )
    assert err.original == f'invalid manifest: invalid value (expected one of {CAPS_ENUM}): "Nope"'


def test_readable_problem_and_fix() -> None:
    err = rejected(encode(valid(name=5)))
    assert err.problem == "expected a string, found a number"
    assert err.fix == "Use a string at $.name."
    assert "[rule: type]" in str(err)


def test_plugin_id_is_carried() -> None:
    with pytest.raises(ManifestError) as info:
        parse_manifest(b"[]", plugin_id="lastfm")
    assert info.value.plugin_id == "lastfm"
    assert "plugin 'lastfm'" in str(info.value)


def test_python_value_that_is_not_json() -> None:
    err = rejected({"name": {1, 2}})
    assert err.rule == "json"
    assert err.original is None


def test_oversized_manifest() -> None:
    err = rejected(b" " * (MAX_MANIFEST_BYTES + 1))
    assert err.rule == "max-size"


# --------------------------------------------------------------------------------------------------
# Acceptance: what the original accepted, including where it disagreed with the schema
# --------------------------------------------------------------------------------------------------


def test_valid_manifest_fields() -> None:
    m = parse_manifest(encode(valid()))
    assert (m.name, m.author, m.version, m.description, m.website) == (
        "lastfm",
        "Navidrome",
        "1.0.0",
        "Last.fm agent",
        "https://www.last.fm",
    )
    assert m.capabilities == ("MetadataAgent", "Scrobbler")
    assert m.permissions.http == HttpPermission(
        "call the Last.fm API", (("https://ws.audioscrobbler.com/*", ("GET", "POST")),), False
    )
    assert m.permissions.config is not None
    assert m.permissions.config.reason == "API key"
    assert m.permissions.granted() == ("config", "http")
    assert json.loads(m.raw) == valid()
    assert m.as_json() == valid()


def test_every_permission_and_the_link_order() -> None:
    perms = {
        "subsonicapi": {"reason": "r", "allowedUsernames": ["Admin"], "allowAdmins": True},
        "websocket": {"reason": "r", "allowedUrls": ["wss://gateway.discord.gg"], "allowLocalNetwork": True},
        "http": {"reason": "r", "allowedUrls": {"b": ["*"], "a": ["GET"]}, "allowLocalNetwork": True},
        "artwork": {"reason": "r"},
        "cache": {"reason": "r"},
        "scheduler": {"reason": "r"},
        "config": {"reason": "r"},
    }
    p = parse_manifest(with_permissions(**perms)).permissions
    assert (
        p.granted()
        == SERVICES
        == ("config", "scheduler", "cache", "artwork", "http", "websocket", "subsonicapi")
    )
    assert p.http == HttpPermission("r", (("b", ("*",)), ("a", ("GET",))), True)  # manifest order kept
    assert p.websocket == WebSocketPermission("r", ("wss://gateway.discord.gg",), True)
    assert p.subsonicapi == SubsonicApiPermission("r", ("Admin",), True)


def test_constants() -> None:
    assert CAPABILITIES == (
        "MetadataAgent",
        "Scrobbler",
        "SchedulerCallback",
        "LifecycleManagement",
        "WebSocketCallback",
    )
    assert HTTP_METHODS == ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "*")


def test_website_not_a_uri_is_accepted() -> None:
    assert parse_manifest(encode(valid(website="not a url"))).website == "not a url"


def test_empty_strings_are_accepted() -> None:
    m = parse_manifest(encode(valid(name="", author="", version="", description="", website="")))
    assert m.name == ""


def test_empty_method_list_and_duplicates_are_accepted() -> None:
    urls = {"https://a/*": [], "https://b/*": ["GET", "GET"], "https://c/*": None}
    http = parse_manifest(with_permissions(http={"reason": "r", "allowedUrls": urls})).permissions.http
    assert http is not None
    assert http.allowed_urls == (("https://a/*", ()), ("https://b/*", ("GET", "GET")), ("https://c/*", ()))


def test_websocket_pattern_is_not_checked() -> None:
    ws = parse_manifest(with_permissions(websocket={"reason": "r", "allowedUrls": ["https://not-ws"]}))
    assert ws.permissions.websocket is not None
    assert ws.permissions.websocket.allowed_urls == ("https://not-ws",)


def test_extra_fields_in_permission_objects_are_ignored() -> None:
    perms = {
        "config": {"reason": "r", "foo": [1, {"x": None}]},
        "http": {"reason": "r", "allowedUrls": {}, "x": 1},
    }
    assert parse_manifest(with_permissions(**perms)).permissions.granted() == ("config", "http")


def test_unknown_permission_and_top_level_keys_are_ignored() -> None:
    doc = valid(permissions={"lyrics": {"anything": True}, "users": 5}, **{"$schema": "x", "extra": [1]})
    m = parse_manifest(encode(doc))
    assert m.permissions == Permissions()


def test_http_without_patterns_loads_but_fails_at_runtime() -> None:
    no_urls: list[dict[str, list[str]] | None] = [{}, None]
    for urls in no_urls:
        m = parse_manifest(with_permissions(http={"reason": "r", "allowedUrls": urls}))
        assert m.permissions.http is not None
        assert m.permissions.http.allowed_urls == ()
        assert runtime_permission_problems(m, "p1") == [
            "invalid http permissions for plugin p1: allowedUrls must contain at least one URL pattern"
        ]


def test_websocket_null_urls_load_but_fail_at_runtime() -> None:
    m = parse_manifest(with_permissions(websocket={"reason": "r", "allowedUrls": None}))
    assert runtime_permission_problems(m, "p1") == [
        "invalid websocket permissions for plugin p1: allowedUrls must contain at least one URL pattern"
    ]


def test_runtime_problems_in_link_order_and_none_for_good_manifests() -> None:
    both = with_permissions(
        websocket={"reason": "r", "allowedUrls": None}, http={"reason": "r", "allowedUrls": {}}
    )
    assert [p.split()[1] for p in runtime_permission_problems(parse_manifest(both), "x")] == [
        "http",
        "websocket",
    ]
    assert runtime_permission_problems(parse_manifest(encode(valid())), "x") == []


def test_null_document_gives_an_empty_manifest() -> None:
    m = parse_manifest(b"null")
    assert m.capabilities == ()
    assert m.name == ""
    assert m.permissions.granted() == ()


def test_null_permissions_and_null_permission_grant_nothing() -> None:
    assert parse_manifest(encode(valid(permissions=None))).permissions.granted() == ()
    assert parse_manifest(with_permissions(http=None, config={"reason": "r"})).permissions.granted() == (
        "config",
    )


def test_null_values_count_as_present() -> None:
    m = parse_manifest(encode(valid(name=None, capabilities=None, website=None)))
    assert (m.name, m.capabilities, m.website) == ("", (), "")


def test_duplicate_capabilities_are_accepted() -> None:
    assert parse_manifest(encode(valid(capabilities=["Scrobbler", "Scrobbler"]))).capabilities == (
        "Scrobbler",
        "Scrobbler",
    )


def test_duplicate_keys_are_read_in_order() -> None:
    text = encode(valid())[:-1] + b', "name": "second", "permissions": {"cache": {"reason": "r"}}}'
    m = parse_manifest(text)
    assert m.name == "second"
    # the permissions struct is decoded twice into the same value: grants accumulate
    assert m.permissions.granted() == ("config", "cache", "http")


def test_null_permission_after_a_grant_revokes_it() -> None:
    text = b'{"author":"a","capabilities":["Scrobbler"],"description":"d","name":"n","version":"v",'
    text += b'"website":"w","permissions":{"config":{"reason":"r"},"config":null}}'
    assert parse_manifest(text).permissions.granted() == ()


def test_duplicate_arrays_reuse_the_backing_array() -> None:
    # Go decodes [null] into the old slice's first cell, which keeps "c"; the length becomes 2 then 1...
    ws = b'{"allowedUrls":["a","b"],"allowedUrls":["c"],"allowedUrls":[null,null],"reason":"r"}'
    text = b'{"author":"a","capabilities":["Scrobbler"],"description":"d","name":"n","version":"v",'
    text += b'"website":"w","permissions":{"websocket":' + ws + b"}}"
    m = parse_manifest(text)
    assert m.permissions.websocket is not None
    assert m.permissions.websocket.allowed_urls == ("c", "b")


def test_field_names_match_case_insensitively() -> None:
    doc = valid(
        permissions={
            "HTTP": {"reason": "r", "allowedUrls": {"https://x/*": ["GET"]}},
            "\u017fcheduler": {"reason": "r"},
        }
    )
    doc["NAME"] = "upper"  # the raw "name" key satisfies the required check; "NAME" comes later and wins
    assert parse_manifest(encode(doc)).name == "upper"
    assert parse_manifest(encode(doc)).permissions.granted() == ("scheduler", "http")


def test_allow_local_network_needs_the_exact_key() -> None:
    exact = with_permissions(http={"reason": "r", "allowedUrls": {"a": ["GET"]}, "allowLocalNetwork": True})
    folded = with_permissions(http={"reason": "r", "allowedUrls": {"a": ["GET"]}, "ALLOWLOCALNETWORK": True})
    assert parse_manifest(exact).permissions.http.allow_local_network is True  # type: ignore[union-attr]
    assert parse_manifest(folded).permissions.http.allow_local_network is False  # type: ignore[union-attr]


def test_invalid_utf8_inside_strings_becomes_replacement_chars() -> None:
    text = encode(valid())[:-1] + b', "name": "a\xe2\x82b\xff"}'
    assert parse_manifest(text).name == "a\ufffd\ufffdb\ufffd"  # one U+FFFD per byte, as Go


def test_escapes_and_surrogates_as_go() -> None:
    text = encode(valid())[:-1] + b', "name": "\\ud83d\\ude00 \\ud800 \\u00e9\\n"}'
    assert parse_manifest(text).name == "\U0001f600 \ufffd \u00e9\n"


def test_deep_nesting_within_the_limit_is_accepted() -> None:
    text = encode(valid())[:-1] + b', "deep": ' + b"[" * 9999 + b"]" * 9999 + b"}"
    assert parse_manifest(text).name == "lastfm"


def test_accepts_text_and_python_values() -> None:
    assert parse_manifest(json.dumps(valid())).name == "lastfm"
    assert parse_manifest(valid()).name == "lastfm"


def test_manifest_is_frozen_and_hashable() -> None:
    m = parse_manifest(encode(valid()))
    with pytest.raises(AttributeError):
        m.name = "x"  # type: ignore[misc]
    assert hash(m) == hash(parse_manifest(encode(valid())))


def test_format_json_path() -> None:
    assert format_json_path(("permissions", "http", "allowedUrls", "https://x/*", 0)) == (
        '$.permissions.http.allowedUrls["https://x/*"][0]'
    )
    assert format_json_path(()) == "$"


# --------------------------------------------------------------------------------------------------
# load_manifest (LoadManifest)
# --------------------------------------------------------------------------------------------------


def test_load_manifest_reads_the_folder(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_bytes(encode(valid()))
    assert load_manifest(tmp_path).name == "lastfm"


def test_load_manifest_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    file = f"{tmp_path}/manifest.json"
    assert info.value.original == f"failed to read manifest file: open {file}: no such file or directory"
    assert (info.value.rule, info.value.path) == ("io", file)


def test_load_manifest_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").mkdir()
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert (
        info.value.original == f"failed to read manifest file: read {tmp_path}/manifest.json: is a directory"
    )


def test_load_manifest_invalid(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_bytes(b"{")
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert info.value.original == "invalid manifest: unexpected end of JSON input"
    assert info.value.path == f"{tmp_path}/manifest.json"


@pytest.mark.skipif(IGNORES_PERMISSION_BITS, reason=SKIP_REASON)
def test_load_manifest_unreadable(tmp_path: Path) -> None:
    file = tmp_path / "manifest.json"
    file.write_bytes(encode(valid()))
    file.chmod(0)
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path)
    assert info.value.original == f"failed to read manifest file: open {file}: permission denied"


# --------------------------------------------------------------------------------------------------
# lint_manifest (the published schema, minus its known defect, plus what the host did silently)
# --------------------------------------------------------------------------------------------------


def lint(doc: Any) -> dict[str, str]:
    data = doc if isinstance(doc, bytes) else encode(doc)
    return {w.json_path: w.message for w in lint_manifest(data)}


def test_lint_clean_manifest() -> None:
    assert lint_manifest(encode(valid())) == []


def test_lint_does_not_reproduce_the_base_permission_defect() -> None:
    perms = {
        "http": {"reason": "r", "allowedUrls": {"https://x/*": ["GET"]}, "allowLocalNetwork": False},
        "websocket": {"reason": "r", "allowedUrls": ["wss://x"], "allowLocalNetwork": True},
        "subsonicapi": {"reason": "r", "allowedUsernames": ["u"], "allowAdmins": False},
    }
    assert lint_manifest(encode(valid(permissions=perms))) == []


def test_lint_unknown_field_in_a_permission() -> None:
    perms = {
        "http": {"reason": "r", "allowedUrls": {"https://x/*": ["GET"]}, "allowedURLS": {}},
        "cache": {"reason": "r", "ttl": 5},
    }
    found = lint(valid(permissions=perms))
    assert "$.permissions.cache.ttl" in found
    assert "unknown field 'ttl'" in found["$.permissions.cache.ttl"]
    # a case variant is read by the host, so it gets the case warning instead
    assert "reads 'allowedURLS' as 'allowedUrls'" in found["$.permissions.http.allowedURLS"]


def test_lint_schema_rules_the_host_did_not_enforce() -> None:
    perms = {
        "http": {"reason": "r", "allowedUrls": {"https://a/*": [], "https://b/*": ["GET", "GET"]}},
        "websocket": {"reason": "r", "allowedUrls": ["https://x"]},
    }
    found = lint(valid(website="not a url", permissions=perms))
    assert "not an absolute URI" in found["$.website"]
    assert "empty list" in found['$.permissions.http.allowedUrls["https://a/*"]']
    assert "duplicate items" in found['$.permissions.http.allowedUrls["https://b/*"]']
    assert "ws:// or wss://" in found["$.permissions.websocket.allowedUrls[0]"]


def test_lint_http_without_patterns() -> None:
    found = lint(valid(permissions={"http": {"reason": "r", "allowedUrls": {}}}))
    assert "allowedUrls must contain at least one URL pattern" in found["$.permissions.http.allowedUrls"]


def test_lint_null_values() -> None:
    found = lint(valid(name=None, permissions={"config": None}))
    assert found["$.name"].startswith("expected string, found null")
    assert "$.permissions.config" in found


def test_lint_duplicate_and_case_variant_keys() -> None:
    text = encode(valid())[:-1] + b', "name": "again", "Version": "2"}'
    found = lint(text)
    assert "appears 2 times" in found["$.name"]
    assert "reads 'Version' as 'version'" in found["$.Version"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("api.example.com/*", "no scheme and no host"),
        ("ftp://files.example.com/*", "the scheme 'ftp' is never requested"),
        ("https://api.example.com/v1/*/items", "matched literally"),
        ("https://api.example.com/v1*", "matched literally"),
        ("https://api.example.com/search?q=1", "query and fragment are ignored"),
        ("https://API.example.com/*", "upper-case letters"),
    ],
)
def test_lint_url_patterns_that_cannot_work(pattern: str, expected: str) -> None:
    found = lint(valid(permissions={"http": {"reason": "r", "allowedUrls": {pattern: ["GET"]}}}))
    assert expected in found[format_json_path(("permissions", "http", "allowedUrls", pattern))]


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "https://api.example.com",
        "https://*.example.com/*",
        "https://api.example.com:*",
        "/v1/*",
        "http://10.0.0.1:8080/x",
    ],
)
def test_lint_url_patterns_that_work(pattern: str) -> None:
    assert (
        lint_manifest(encode(valid(permissions={"http": {"reason": "r", "allowedUrls": {pattern: ["GET"]}}})))
        == []
    )


def test_lint_colon_free_websocket_patterns() -> None:
    ok = valid(
        permissions={"websocket": {"reason": "r", "allowedUrls": ["wss://gateway.discord.gg", "wss://*"]}}
    )
    assert lint_manifest(encode(ok)) == []


def test_lint_invalid_utf8() -> None:
    text = encode(valid())[:-1] + b', "description": "caf\xe9"}'
    assert lint_manifest(text)[0] == LintWarning(
        "$", "the file is not valid UTF-8; the host replaced each invalid byte with U+FFFD"
    )


def test_lint_not_json_raises() -> None:
    with pytest.raises(ManifestError) as info:
        lint_manifest(b"{")
    assert info.value.rule == "json"


def test_lint_deep_document_does_not_crash() -> None:
    text = encode(valid())[:-1] + b', "capabilities": ' + b"[" * 9000 + b"]" * 9000 + b"}"
    assert isinstance(lint_manifest(text), list)


def test_lint_warning_is_frozen() -> None:
    w = LintWarning("$", "m")
    with pytest.raises(AttributeError):
        w.message = "x"  # type: ignore[misc]


def test_schema_file_matches_the_published_one() -> None:
    schema = json.loads(
        (Path(__file__).parents[2] / "pytest_wasmhost/schema/manifest.schema.json").read_text()
    )
    assert schema["$id"] == "navidrome://plugins/manifest"
    assert schema["title"] == "Navidrome Plugin Manifest"
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["required"] == [
        "name",
        "author",
        "version",
        "description",
        "website",
        "capabilities",
        "permissions",
    ]
    assert schema["properties"]["capabilities"]["items"]["enum"] == list(CAPABILITIES)
    assert schema["properties"]["capabilities"]["minItems"] == 1
    assert schema["properties"]["website"]["format"] == "uri"
    perms = schema["properties"]["permissions"]
    assert perms["additionalProperties"] is True
    assert sorted(perms["properties"]) == sorted(SERVICES)
    http = perms["properties"]["http"]["allOf"][1]["properties"]["allowedUrls"]
    assert http["minProperties"] == 1
    assert http["additionalProperties"]["items"]["enum"] == list(HTTP_METHODS)
    assert (http["additionalProperties"]["minItems"], http["additionalProperties"]["uniqueItems"]) == (
        1,
        True,
    )
    ws = perms["properties"]["websocket"]["allOf"][1]["properties"]["allowedUrls"]
    assert ws["items"]["pattern"] == "^wss?://.*$"
    base = schema["$defs"]["basePermission"]
    assert base["additionalProperties"] is False  # the documented defect, kept in the schema itself
    assert base["properties"]["reason"]["minLength"] == 1
    for key in SERVICES:
        assert perms["properties"][key]["allOf"][0] == {"$ref": "#/$defs/basePermission"}


def test_manifest_type_exports() -> None:
    assert Manifest.__dataclass_params__.frozen  # type: ignore[attr-defined]
