"""Properties: whatever a user feeds in, only ManifestError escapes, and valid manifests load."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_wasmhost.errors import ManifestError
from pytest_wasmhost.manifest import CAPABILITIES, HTTP_METHODS, Manifest, lint_manifest, parse_manifest
from pytest_wasmhost.package import PluginSource, load_plugin

WASM = b"\x00asm\x01\x00\x00\x00"
KEYS = [
    "name",
    "author",
    "version",
    "description",
    "website",
    "capabilities",
    "permissions",
    "http",
    "websocket",
    "subsonicapi",
    "config",
    "reason",
    "allowedUrls",
    "allowLocalNetwork",
    "allowedUsernames",
    "allowAdmins",
    "HTTP",
    "Name",
    "\u017fcheduler",
]

SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from([*CAPABILITIES, *HTTP_METHODS, "get", "", "https://x/*"])
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=12,
)
# values that serialize to standard JSON (no NaN/Infinity), for manifests that must stay valid
finite_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)

reasons = st.text(min_size=1, max_size=10)
patterns = st.text(max_size=15)


@st.composite
def valid_manifests(draw: st.DrawFn) -> dict[str, Any]:
    perms: dict[str, Any] = {}
    if draw(st.booleans()):
        urls = draw(
            st.dictionaries(patterns, st.lists(st.sampled_from(HTTP_METHODS), max_size=3), max_size=3)
        )
        perms["http"] = {
            "reason": draw(reasons),
            "allowedUrls": urls,
            "allowLocalNetwork": draw(st.booleans()),
        }
    if draw(st.booleans()):
        ws = draw(st.lists(patterns, min_size=1, max_size=3))
        perms["websocket"] = {"reason": draw(reasons), "allowedUrls": ws}
    if draw(st.booleans()):
        users = draw(st.lists(st.text(max_size=5), max_size=3))
        perms["subsonicapi"] = {
            "reason": draw(reasons),
            "allowedUsernames": users,
            "allowAdmins": draw(st.booleans()),
        }
    for key in draw(st.sets(st.sampled_from(["config", "scheduler", "cache", "artwork"]))):
        perms[key] = {"reason": draw(reasons)}
    if draw(st.booleans()):
        perms["future-service"] = draw(finite_json_values)
    return {
        "name": draw(st.text(max_size=10)),
        "author": draw(st.text(max_size=10)),
        "version": draw(st.text(max_size=10)),
        "description": draw(st.text(max_size=10)),
        "website": draw(st.text(max_size=10)),
        "capabilities": draw(st.lists(st.sampled_from(CAPABILITIES), min_size=1, max_size=4)),
        "permissions": perms,
    }


@st.composite
def mutated_manifests(draw: st.DrawFn) -> Any:
    """A valid manifest with one to three values replaced, keys dropped or keys renamed."""
    doc: Any = draw(valid_manifests())
    for _ in range(draw(st.integers(1, 3))):
        path = _random_path(draw, doc)
        parent, key = path
        action = draw(st.sampled_from(["replace", "delete", "rename"]))
        if action == "replace" or isinstance(parent, list):
            parent[key] = draw(json_values)
        elif action == "delete":
            del parent[key]
        else:
            parent[draw(st.sampled_from(KEYS))] = parent.pop(key)
    return doc


def _random_path(draw: st.DrawFn, doc: Any) -> tuple[Any, Any]:
    parent, key = doc, draw(st.sampled_from(sorted(doc)))
    while isinstance(parent[key], dict | list) and parent[key] and draw(st.booleans()):
        parent = parent[key]
        key = (
            draw(st.sampled_from(sorted(parent)))
            if isinstance(parent, dict)
            else draw(st.integers(0, len(parent) - 1))
        )
    return parent, key


Edit = tuple[str, int, int]
edits = st.lists(
    st.tuples(st.sampled_from(["insert", "delete", "flip"]), st.integers(0, 1 << 16), st.integers(0, 255)),
    min_size=1,
    max_size=4,
)


def _mutate_bytes(data: bytes, changes: list[Edit]) -> bytes:
    out = bytearray(data)
    for op, where, value in changes:
        at = where % (len(out) + 1)
        if op == "insert":
            out.insert(at, value)
        elif out:
            at = min(at, len(out) - 1)
            if op == "delete":
                del out[at]
            else:
                out[at] = value
    return bytes(out)


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["json", "mutated", "bytes", "mutated-bytes"]))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    if kind == "mutated":
        return json.dumps(draw(mutated_manifests()), ensure_ascii=draw(st.booleans())).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=80))
    return _mutate_bytes(json.dumps(draw(valid_manifests())).encode(), draw(edits))


def _check_error(err: ManifestError) -> None:
    assert err.rule
    assert err.json_path.startswith("$")
    assert err.original is None or isinstance(err.original, str)
    assert str(err)


def _outcome(call: Callable[[], object]) -> object:
    """The result (a PluginSource's manifest), or the ManifestError; anything else propagates."""
    try:
        result = call()
    except ManifestError as err:
        _check_error(err)
        return err
    return result.manifest if isinstance(result, PluginSource) else result


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("props")


@SETTINGS
@given(json_values)
def test_random_json_values(value: Any) -> None:
    outcome = _outcome(lambda: parse_manifest(value))
    assert isinstance(outcome, Manifest | ManifestError)


@SETTINGS
@given(documents())
def test_random_documents(data: bytes) -> None:
    outcome = _outcome(lambda: parse_manifest(data))
    if isinstance(outcome, ManifestError) and outcome.rule not in ("max-size",):
        assert outcome.original is not None
        assert outcome.original.startswith("invalid manifest: ")
    lint = _outcome(lambda: lint_manifest(data))
    assert isinstance(lint, list | ManifestError)


@SETTINGS
@given(valid_manifests(), st.booleans())
def test_valid_manifests_are_accepted(base: Path, doc: dict[str, Any], via_package: bool) -> None:
    if via_package:
        archive = _zip({"manifest.json": json.dumps(doc).encode(), "plugin.wasm": WASM})
        (base / "valid.ndp").write_bytes(archive)
        m = load_plugin(base / "valid.ndp", plugin_id="p").manifest
    else:
        m = parse_manifest(json.dumps(doc).encode())
    assert (m.name, m.author, m.version, m.description, m.website) == (
        doc["name"],
        doc["author"],
        doc["version"],
        doc["description"],
        doc["website"],
    )
    assert m.capabilities == tuple(doc["capabilities"])
    perms = doc["permissions"]
    assert set(m.permissions.granted()) == set(perms) - {"future-service"}
    if "http" in perms:
        assert m.permissions.http is not None
        expected = tuple((k, tuple(v)) for k, v in perms["http"]["allowedUrls"].items())
        assert m.permissions.http.allowed_urls == expected
    if "websocket" in perms:
        assert m.permissions.websocket is not None
        assert m.permissions.websocket.allowed_urls == tuple(perms["websocket"]["allowedUrls"])
    assert isinstance(lint_manifest(m.raw), list)


GOOD = {
    "name": "plugin-id",
    "author": "a",
    "version": "1",
    "description": "d",
    "website": "https://example.com",
    "capabilities": ["Scrobbler"],
    "permissions": {"http": {"reason": "r", "allowedUrls": {"https://x/*": ["GET"]}}},
}


@SETTINGS
@given(data=documents(), damage=st.none() | edits)
def test_load_plugin_folders_and_packages(base: Path, data: bytes, damage: list[Edit] | None) -> None:
    # the same files are rewritten for every example (creating folders per example is slow on disk)
    plugin = base / "plugin"
    plugin.mkdir(exist_ok=True)
    (plugin / "manifest.json").write_bytes(data)
    (plugin / "plugin.wasm").write_bytes(WASM)
    _outcome(lambda: load_plugin(plugin))
    _outcome(lambda: load_plugin(plugin / "plugin.wasm"))
    # a package holding the same manifest, possibly damaged
    archive = _zip({"manifest.json": data, "plugin.wasm": WASM, "README.md": b"r"})
    (base / "random.ndp").write_bytes(archive if damage is None else _mutate_bytes(archive, damage))
    _outcome(lambda: load_plugin(base / "random.ndp"))
    # a valid manifest, damaged the same way
    archive = _zip({"manifest.json": json.dumps(GOOD).encode(), "plugin.wasm": WASM})
    (base / "good.ndp").write_bytes(archive if damage is None else _mutate_bytes(archive, damage))
    outcome = _outcome(lambda: load_plugin(base / "good.ndp"))
    if damage is None:
        assert isinstance(outcome, Manifest)
        assert outcome.name == "plugin-id"
