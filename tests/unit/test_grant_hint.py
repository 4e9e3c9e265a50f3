"""The fix for an ungranted import: the manifest entry it suggests is valid when followed as written."""

from __future__ import annotations

import json
import re

import pytest

from pytest_wasmhost.host.base import SERVICE_FUNCTIONS, grant_fix, grant_snippet
from pytest_wasmhost.manifest import SERVICES, parse_manifest, runtime_permission_problems
from tests.support.plugins import manifest


def follow(snippet: str) -> dict[str, object]:
    """The ``permissions`` object a user gets by pasting ``snippet`` into an empty one."""
    parsed = json.loads("{" + snippet + "}")
    assert isinstance(parsed, dict)
    return parsed


@pytest.mark.parametrize("service", SERVICES)
def test_every_suggested_grant_is_a_valid_manifest(service: str) -> None:
    imported = SERVICE_FUNCTIONS[service]
    permissions = follow(grant_snippet(service, imported))
    assert list(permissions) == [service]
    parsed = parse_manifest(manifest(permissions=permissions), plugin_id="p")  # raises if invalid
    assert parsed.permissions.granted() == (service,)
    assert runtime_permission_problems(parsed, "p") == []  # allowedUrls present and non-empty


def test_the_http_grant_lists_the_methods_the_module_imports() -> None:
    snippet = grant_snippet("http", ["post", "get_plugin_config", "get", "fd_write"])
    assert snippet == (
        '"http": {"reason": "...", "allowedUrls": {"https://api.example.com/*": ["GET", "POST"]}}'
    )
    http = parse_manifest(manifest(permissions=follow(snippet))).permissions.http
    assert http is not None
    assert http.allowed_urls == (("https://api.example.com/*", ("GET", "POST")),)


def test_the_websocket_grant_has_allowed_urls() -> None:
    assert grant_snippet("websocket", ["connect"]) == (
        '"websocket": {"reason": "...", "allowedUrls": ["wss://api.example.com/*"]}'
    )


def test_a_reason_only_grant_is_unchanged() -> None:
    assert grant_snippet("config") == '"config": {"reason": "..."}'


@pytest.mark.parametrize("service", SERVICES)
def test_the_fix_embeds_the_snippet(service: str) -> None:
    fix = grant_fix(service, ["get"])
    match = re.fullmatch(r'add (.*) under "permissions" in manifest\.json(, [^.]*)?\.', fix)
    assert match is not None, fix
    assert match.group(1) == grant_snippet(service, ["get"])
    assert (match.group(2) is not None) is (service in ("http", "websocket"))  # says the URL is an example
