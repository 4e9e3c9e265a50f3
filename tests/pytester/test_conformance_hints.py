"""The suite's static checks give fixes that work when followed and warn of methods no pattern allows."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pytest_wasmhost.manifest import parse_manifest, runtime_permission_problems
from tests.pytester.test_pytest_plugin import run
from tests.support.plugins import manifest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

IMPORTS_CHECK = "test_imports_are_wasi_or_granted"


def test_the_suite_warns_of_an_imported_method_no_pattern_allows(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    sample = samples_dir / "go" / "http_agent"  # imports env.get and env.post
    plugin = pytester.path / "get_only"
    shutil.copytree(sample, plugin)
    document = json.loads((sample / "manifest.json").read_text())
    document["permissions"]["http"]["allowedUrls"] = {"https://api.example.com/*": ["GET"]}
    (plugin / "manifest.json").write_text(json.dumps(document))
    both = ["--wasm-plugin", str(plugin), "--wasm-plugin", str(sample)]  # the sample allows GET and POST
    result = run(pytester, *both, "-k", IMPORTS_CHECK, *cache_args)
    result.assert_outcomes(passed=2, warnings=1)  # warned, not failed: the plugin may never POST
    result.stdout.fnmatch_lines(
        [
            "*warnings summary*",
            f"*{IMPORTS_CHECK}[[]get_only[]]*",
            "*UserWarning: get_only: env.post is imported, but no pattern in permissions.http.allowedUrls "
            "lists POST*",
        ]
    )
    assert "http_agent: env.post" not in result.stdout.str()


def test_the_fix_for_an_ungranted_http_import_gives_a_valid_manifest(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    plugin = samples_dir / "hostile" / "ungranted_import"  # imports env.get, grants no http
    result = run(pytester, "--wasm-plugin", str(plugin), "-k", IMPORTS_CHECK, *cache_args)
    result.assert_outcomes(failed=1)
    hint = r'grant the \'http\' permission.*Fix: add (.*?) under "permissions"'
    found = re.search(hint, result.stdout.str())
    assert found is not None, result.stdout.str()
    followed = parse_manifest(manifest(permissions=json.loads("{" + found.group(1) + "}")))
    assert runtime_permission_problems(followed, "ungranted_import") == []
    assert followed.permissions.http is not None
    assert followed.permissions.http.allowed_urls == (("https://api.example.com/*", ("GET",)),)
