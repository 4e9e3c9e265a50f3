"""pytest entry point (``pytest11: wasmhost``): options, ini keys, markers, parametrization, reports.

Wiring only: fixtures live in :mod:`pytest_wasmhost.fixtures`, behaviour in the library. Nothing is
loaded or compiled at import time; ``--wasm-plugin`` paths are validated once at start-up so a typo is
a usage error naming the path, not a traceback in every test.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

import pytest

from pytest_wasmhost.errors import WasmHostError
from pytest_wasmhost.fixtures import (
    PERMISSIONS_PROPERTY,
    WasmCalls,
    callback_failure_section,
    callback_problems,
)
from pytest_wasmhost.pytest_state import (
    PLUGIN_KEY,
    SCOPE_KEY,
    SETTINGS_KEY,
    SOURCES_KEY,
    WasmSettings,
    settings_of,
)

# The fixtures live in their own module; listing it here makes pytest register it with this plugin
# (and -p no:wasmhost drops both).
pytest_plugins = ["pytest_wasmhost.fixtures"]

CONFORMANCE = Path(__file__).parent / "conformance" / "suite.py"

MARKERS = (
    "wasm_plugin(path): the plugin under test (a folder, an .ndp, or a .wasm with manifest.json beside).",
    "wasm_config(mapping, plugin_id=None): the configuration of every plugin this test loads (of plugin_id "
    "only, if given), however it is loaded; a load's config= replaces it. Plugins see keys in lower case.",
    "wasm_http(assert_all_mocked=True, assert_all_called=True): strictness of the wasm_http mock.",
    "wasm_permissions(**services): narrow (service=None) or widen (service={...} or True) the manifest's "
    "grants for every plugin this test loads, however it is loaded (a load's permissions= win service by "
    "service); each named service is replaced, the others keep the manifest's; shown in the summary.",
    "wasm_strict_callbacks(enabled=True): a scheduler or WebSocket callback of this test that fails (trap, "
    "hard host error, timeout) fails the test instead of warning; wasm_strict_callbacks(False) only warns.",
)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("wasmhost", "WebAssembly plugins (pytest-wasmhost)")
    group.addoption(
        "--wasm-plugin",
        action="append",
        default=[],
        metavar="PATH",
        help="plugin to test (repeatable): a plugin folder, an .ndp package, or a .wasm with manifest.json "
        "beside it; runs the built-in conformance suite on it and parametrizes the wasm_plugin fixture.",
    )
    group.addoption(
        "--wasm-config",
        action="append",
        default=[],
        metavar="ID.KEY=VALUE",
        help="configuration for a plugin under test (repeatable), e.g. --wasm-config ticker.url=wss://x; "
        "the conformance suite's OnInit and calls see it",
    )
    group.addoption(
        "--wasm-cache-dir", metavar="DIR", help="compile cache folder (default ~/.cache/pytest-wasmhost)"
    )
    group.addoption("--wasm-no-disk-cache", action="store_true", help="compile in memory only")
    group.addoption("--wasm-call-timeout", type=float, metavar="SECONDS", help="deadline per guest call (30)")
    group.addoption("--wasm-memory-limit", metavar="SIZE", help="linear-memory cap per instance, e.g. 256MiB")
    group.addoption(
        "--wasm-calls-json",
        metavar="PATH",
        help="write the host functions and callbacks each test exercised, per plugin, to PATH as JSON "
        "(what the terminal summary shows, for CI coverage gates)",
    )
    group.addoption(
        "--wasm-strict-callbacks",
        action="store_true",
        default=None,
        help="fail a test when a callback the host triggers (scheduler firing, WebSocket event) fails "
        "(trap, hard host error, timeout); by default it is a warning, as the original only logged it",
    )
    parser.addini(
        "wasm_strict_callbacks",
        "fail a test when a host-triggered callback fails (default: warn)",
        type="bool",
        default=False,
    )
    parser.addini("wasm_plugins", "plugins to test (one path per line)", type="linelist", default=[])
    parser.addini(
        "wasm_config_values", "plugin configuration, one ID.KEY=VALUE per line", type="linelist", default=[]
    )
    parser.addini("wasm_cache_dir", "compile cache folder", default="")
    parser.addini("wasm_call_timeout", "deadline per guest call in seconds", default="")
    parser.addini("wasm_memory_limit", "linear-memory cap per instance, e.g. 256MiB", default="")


def _settings(config: pytest.Config) -> WasmSettings:
    from pytest_wasmhost.runtime.compile_cache import parse_size  # the library, not a copy

    root = config.rootpath
    cli_plugins = [Path(p) for p in config.getoption("wasm_plugin") or []]
    ini_plugins = [root / p for p in config.getini("wasm_plugins")]
    cache_dir = config.getoption("wasm_cache_dir") or config.getini("wasm_cache_dir") or None
    timeout_text = config.getoption("wasm_call_timeout") or config.getini("wasm_call_timeout") or None
    memory_text = config.getoption("wasm_memory_limit") or config.getini("wasm_memory_limit") or None
    try:
        timeout = float(timeout_text) if timeout_text is not None else None
    except ValueError:
        raise pytest.UsageError(f"wasm_call_timeout: {timeout_text!r} is not a number of seconds") from None
    if timeout is not None and timeout <= 0:
        raise pytest.UsageError(f"--wasm-call-timeout must be positive, got {timeout:g}")
    memory = None
    if memory_text is not None:
        memory = parse_size(str(memory_text))
        if not memory:
            raise pytest.UsageError(
                f"--wasm-memory-limit: {memory_text!r} is not a size like 256MiB or 512MB"
            )
    plugin_config: dict[str, dict[str, str]] = {}
    for item in [*config.getini("wasm_config_values"), *(config.getoption("wasm_config") or [])]:
        target, sep, value = str(item).partition("=")
        plugin_id, dot, key = target.partition(".")
        if not sep or not dot or not plugin_id or not key:
            raise pytest.UsageError(
                f"--wasm-config takes ID.KEY=VALUE (e.g. ticker.url=wss://x), got {item!r}"
            )
        plugin_config.setdefault(plugin_id, {})[key] = value
    strict = config.getoption("wasm_strict_callbacks")
    return WasmSettings(
        config=plugin_config,
        strict_callbacks=bool(config.getini("wasm_strict_callbacks") if strict is None else strict),
        plugins=tuple(cli_plugins or ini_plugins),
        cache_dir=Path(cache_dir) if cache_dir else None,
        disk_cache=not config.getoption("wasm_no_disk_cache"),
        call_timeout=timeout,
        memory_limit=memory,
    )


def pytest_configure(config: pytest.Config) -> None:
    from pytest_wasmhost.abi.capabilities import CAPABILITIES

    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    for capability in CAPABILITIES:
        config.addinivalue_line(
            "markers", f"{capability}: conformance checks of the {capability} capability."
        )
    settings = _settings(config)
    config.stash[SETTINGS_KEY] = settings
    config.stash[SOURCES_KEY] = _validate_plugins(settings.plugins)
    calls_json = config.getoption("wasm_calls_json", None)
    config.pluginmanager.register(
        SessionSummary(Path(calls_json) if calls_json else None), "wasmhost-summary"
    )
    if settings.plugins and str(CONFORMANCE) not in config.args:
        config.args.append(str(CONFORMANCE))


def _validate_plugins(paths: tuple[Path, ...]) -> dict[str, str]:
    from pytest_wasmhost.package import load_plugin

    ids: dict[str, str] = {}
    for path in paths:
        if not path.exists():
            raise pytest.UsageError(f"--wasm-plugin {path}: no such file or folder")
        try:
            source = load_plugin(path)
        except WasmHostError as exc:
            raise pytest.UsageError(f"--wasm-plugin {path}: {exc}") from None
        ids[str(path)] = source.plugin_id
    return ids


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = settings_of(config)
    sources = config.stash.get(SOURCES_KEY, {})
    if not sources:
        return []
    listed = ", ".join(f"{pid} ({path})" for path, pid in sources.items())
    cache = "off" if not settings.disk_cache else str(settings.runtime_settings().resolved_cache_dir())
    return [f"wasmhost: plugins under test: {listed}; compile cache: {cache}"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``wasm_plugin`` over the configured plugins (ids = plugin ids) unless a marker picks."""
    if "wasm_plugin" not in metafunc.fixturenames or metafunc.definition.get_closest_marker("wasm_plugin"):
        return
    sources = metafunc.config.stash.get(SOURCES_KEY, {})
    if sources:
        metafunc.parametrize("wasm_plugin", list(sources), ids=list(sources.values()), indirect=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.when in ("call", "setup"):
        section = _failure_section(item)
        if section:
            report.sections.append(("wasmhost", section))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    # After a passing test body: its failed host-triggered callbacks become warnings, or (strict) the
    # test's failure. A body that failed shows them in its report section instead.
    result = yield
    scope = item.stash.get(SCOPE_KEY, None)
    if scope is not None:
        problems = callback_problems(item, scope.env)
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)
    return result


CALLS_PROPERTY = "wasmhost_calls"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    # Before the fixtures close: note which host functions this test's plugins exercised. Carried in
    # user_properties so the terminal summary sees them under pytest-xdist too.
    scope = item.stash.get(SCOPE_KEY, None)
    if scope is not None:
        transcript = scope.transcript
        # functions_called also covers calls whose outline the transcript has let go (it keeps the newest).
        exercised = {f"{pid}\t{service}.{fn}" for pid, service, fn in transcript.functions_called()}
        for plugin_id, exports in transcript.exports_called().items():
            exercised.update(f"{plugin_id}\t{export}" for export in exports)
        if exercised:
            item.user_properties.append((CALLS_PROPERTY, sorted(exercised)))
    return (yield)


class SessionSummary:
    """Collects, from every test report (also those of xdist workers), what the terminal summary shows."""

    def __init__(self, calls_json: Path | None = None) -> None:
        self.coverage: dict[str, set[str]] = {}
        self.by_test: dict[str, dict[str, list[str]]] = {}
        self.changed: list[tuple[str, str]] = []
        self.calls_json = calls_json

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "teardown":
            return
        for name, value in report.user_properties:
            if name == CALLS_PROPERTY and isinstance(value, list):
                for entry in value:
                    plugin_id, _, function = str(entry).partition("\t")
                    self.coverage.setdefault(plugin_id, set()).add(function)
                    self.by_test.setdefault(report.nodeid, {}).setdefault(plugin_id, []).append(function)
            elif name == PERMISSIONS_PROPERTY:
                self.changed.append((report.nodeid, str(value)))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        # Written by the controller only: under xdist it sees every worker's reports.
        if self.calls_json is None or hasattr(session.config, "workerinput"):
            return
        document = {
            "plugins": {pid: _split_calls(used) for pid, used in sorted(self.coverage.items())},
            "tests": {
                nodeid: {pid: _split_calls(used) for pid, used in sorted(calls.items())}
                for nodeid, calls in sorted(self.by_test.items())
            },
        }
        self.calls_json.parent.mkdir(parents=True, exist_ok=True)
        self.calls_json.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        from pytest_wasmhost.host.base import SERVICE_FUNCTIONS

        if not self.coverage and not self.changed:
            return
        terminalreporter.section("wasmhost")
        for nodeid, summary in self.changed:
            terminalreporter.write_line(f"permissions changed by marker in {nodeid}: {summary}")
        for plugin_id in sorted(self.coverage):
            used = self.coverage[plugin_id]
            host_calls = {f for f in used if f.split(".", 1)[0] in SERVICE_FUNCTIONS}
            services = sorted({f.split(".", 1)[0] for f in host_calls})
            untouched = [
                f"{svc}.{fn}"
                for svc in services
                for fn in SERVICE_FUNCTIONS[svc]
                if f"{svc}.{fn}" not in used
            ]
            terminalreporter.write_line(
                f"{plugin_id}: host functions exercised: {', '.join(sorted(host_calls)) or '(none)'}"
                + (f"; never touched in the services it used: {', '.join(untouched)}" if untouched else "")
            )


def _split_calls(used: Iterable[str]) -> dict[str, list[str]]:
    """Host functions and callbacks ("service.function") apart from capability exports (no dot)."""
    names = sorted(set(used))
    return {"host": [n for n in names if "." in n], "exports": [n for n in names if "." not in n]}


def _failure_section(item: pytest.Item) -> str:
    scope = item.stash.get(SCOPE_KEY, None)
    if scope is None:
        return ""
    verbose = item.config.get_verbosity() >= 2
    lines: list[str] = []
    plugin = item.stash.get(PLUGIN_KEY, None)
    if plugin is not None:
        lines.append(f"plugin: {plugin.plugin_id} ({plugin.source.origin}: {plugin.source.wasm_path})")
    lines.append(WasmCalls(scope.transcript).render(limit=None if verbose else 20))
    callbacks = callback_failure_section(scope.env)
    if callbacks:
        lines.append(callbacks)
    stderr = plugin.stderr if plugin is not None else ""
    if stderr:
        tail = stderr if verbose else "\n".join(stderr.splitlines()[-20:])
        lines.append("plugin stderr" + ("" if verbose else " (last 20 lines, -vv for all)") + ":")
        lines.extend(f"  {line}" for line in tail.splitlines())
    return "\n".join(lines)
