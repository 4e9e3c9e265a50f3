"""The fixtures plugin authors use, and the small helper objects behind them.

Library first: everything here is a thin layer over :mod:`pytest_wasmhost.runtime`; the pytest hooks
(options, markers, parametrization, reports) live in :mod:`pytest_wasmhost.pytest_plugin`.
Nothing does work at import time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from pytest_wasmhost.doubles.http import HttpMock
from pytest_wasmhost.doubles.subsonic import FakeSubsonic
from pytest_wasmhost.doubles.websocket import MemoryTransportFactory, MemoryWebSockets
from pytest_wasmhost.errors import CallbackFailureWarning, WasmHostError, hide_harness_frames
from pytest_wasmhost.host.artwork import LiveArtworkOptions, live_options
from pytest_wasmhost.host.base import CallbackFailures, HostCall, HostEnvironment, Transcript
from pytest_wasmhost.host.cache import CacheStore, scope_store
from pytest_wasmhost.host.options import HostOptions, HttpOptions, SubsonicOptions, WebSocketOptions
from pytest_wasmhost.host.scheduler import SchedulerEngine
from pytest_wasmhost.host.subsonicapi import scope_backend
from pytest_wasmhost.host.websocket import websocket_hub
from pytest_wasmhost.pytest_state import PLUGIN_KEY, SCOPE_KEY, WasmSettings, settings_of
from pytest_wasmhost.runtime import legacy_options
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.runtime import LoadDefaults, Runtime, ScopedRuntime

# Errors of ours show the user's frames, not these (see errors.hide_harness_frames).
__tracebackhide__ = hide_harness_frames

__all__ = [
    "WasmCalls",
    "WasmClock",
    "WasmRuntime",
    "WasmSettings",
    "wasm_artwork",
    "wasm_cache",
    "wasm_calls",
    "wasm_clock",
    "wasm_config",
    "wasm_host",
    "wasm_http",
    "wasm_load",
    "wasm_plugin",
    "wasm_runtime",
    "wasm_scheduler",
    "wasm_subsonic",
    "wasm_websocket",
]

# -- runtime ---------------------------------------------------------------------------------------


class WasmRuntime:
    """The per-test runtime scope (``wasm_runtime``): load plugins, inspect host state, get fresh scopes.

    Attribute access falls through to the underlying :class:`ScopedRuntime`.
    """

    def __init__(
        self,
        host: Runtime,
        scope: ScopedRuntime,
        host_options: HostOptions | None = None,
        http: HttpMock | None = None,
    ) -> None:
        self.host = host
        self.scope = scope
        self.http = http if http is not None else HttpMock()
        #: What this test's scopes are built with (its doubles included); fresh() starts from it.
        self.host_options = host_options if host_options is not None else scope.host_options

    def load(self, path: str | Path, *, plugin_id: str | None = None, **kwargs: Any) -> Plugin:
        """Load a plugin into this test's scope (compiled once per session).

        The test's ``wasm_config`` and ``wasm_permissions`` markers apply; ``config=`` replaces the
        marker's configuration for this plugin, ``permissions=`` wins over the marker service by service.
        """
        return self.scope.plugin(path, plugin_id=plugin_id, **kwargs)

    def fresh(self, **scope_options: Any) -> contextlib.AbstractContextManager[ScopedRuntime]:
        """A brand-new scope for one hypothesis example (or any block that needs clean state).

        It gets this test's :attr:`host_options` (its network doubles: the ``wasm_http`` mock, in-memory
        WebSockets, a fresh fake Subsonic) unless ``host_options=`` gives others; start those from
        ``wasm_runtime.host_options.replace(cache=CacheOptions(...))`` to keep the doubles.
        """
        # Converted here, not in the generator, so a deprecated dict warns at the caller's line.
        scope_options["host_options"] = legacy_options.host_options(
            scope_options.get("host_options"), base=self.host_options
        )
        return self._fresh(scope_options)

    @contextlib.contextmanager
    def _fresh(self, scope_options: dict[str, Any]) -> Iterator[ScopedRuntime]:
        scope_options.setdefault("clock_driven", True)
        scope_options.setdefault("defaults", self.scope.defaults)  # the test's markers apply here too
        with self.host.scope(**scope_options) as scope:
            try:
                yield scope
            finally:
                # Its failed callbacks are this test's too (reported with the test's own).
                self.scope.env.callback_failures.absorb(scope.env.callback_failures)

    @property
    def callback_failures(self) -> CallbackFailures:
        """The host-triggered callbacks (scheduler firings, WebSocket events) that failed and are not yet
        reported; a test that provokes one on purpose asserts on them and ``clear()``s them."""
        return self.scope.env.callback_failures

    @property
    def transcript(self) -> Transcript:
        return self.scope.transcript

    def __getattr__(self, name: str) -> Any:
        return getattr(self.scope, name)


# -- clock -----------------------------------------------------------------------------------------

#: Modules that keep real time under ``wasm_clock``: pytest's own clock (durations, junitxml times).
#: freezegun also gives real time to any call with an ignored module among its 5 nearest callers, so
#: these stay narrow: "_pytest." or "pluggy." would unfreeze ``time.time()`` in every test body.
REAL_TIME_MODULES = ("_pytest.timing", "_pytest.subtests")


class WasmClock:
    """Test time (freezegun underneath). ``advance`` moves it, expires what is due, fires due jobs."""

    def __init__(self, runtime: WasmRuntime, start: dt.datetime | str | None = None) -> None:
        from freezegun import freeze_time  # imported on use: freezegun costs tens of ms to import

        self._runtime = runtime
        # pytest's own clock (durations, junitxml times) and its plugins' keep real time.
        self._freezer = freeze_time(
            start or dt.datetime.now(dt.UTC), tick=False, ignore=list(REAL_TIME_MODULES)
        )
        self._frozen: Any = None

    def start(self) -> WasmClock:
        self._frozen = self._freezer.start()
        return self

    def stop(self) -> None:
        if self._frozen is not None:
            self._freezer.stop()
            self._frozen = None

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def advance(self, delta: float | dt.timedelta) -> list[Any]:
        """Move time forward, sweep pools and caches, fire due scheduler jobs; return what fired.

        Jobs fire in due order; a recurring job fires once per time it fell due within ``delta``.
        """
        if self._frozen is None:
            raise RuntimeError("wasm_clock is not running")
        seconds = delta.total_seconds() if isinstance(delta, dt.timedelta) else float(delta)
        if seconds < 0:
            raise ValueError("time only moves forward: advance() takes a non-negative delta")
        fired: list[Any] = []
        # Fire in steps so that jobs see the clock at (about) their due time, not at the end of the jump.
        target = self._frozen.time_to_freeze.timestamp() + seconds
        while True:
            next_due = self._next_due()
            now = self._frozen.time_to_freeze.timestamp()
            if next_due is None or next_due > target:
                break
            if next_due > now:
                self._frozen.tick(dt.timedelta(seconds=next_due - now))
            step = self._runtime.scope.run_due()
            if not step:
                break  # nothing was actually due (e.g. cancelled meanwhile)
            fired.extend(step)
        remaining = target - self._frozen.time_to_freeze.timestamp()
        if remaining > 0:
            self._frozen.tick(dt.timedelta(seconds=remaining))
        self._runtime.host.sweep()
        fired.extend(self._runtime.scope.run_due())
        return fired

    def _next_due(self) -> float | None:
        engine = self._runtime.scope.env.peek("scheduler")
        next_due = getattr(engine, "next_due", None)
        return next_due() if callable(next_due) else None


# -- transcript ------------------------------------------------------------------------------------


class WasmCalls:
    """The host-call transcript of the test (``wasm_calls``), with assertion helpers."""

    def __init__(self, transcript: Transcript) -> None:
        self._transcript = transcript

    def __call__(self, service: str | None = None, function: str | None = None, **kw: Any) -> list[HostCall]:
        return self._transcript.calls(service, function, **kw)

    def __iter__(self) -> Iterator[HostCall]:
        return iter(self._transcript)

    def __len__(self) -> int:
        return len(self._transcript)

    def assert_called(
        self,
        service: str,
        function: str | None = None,
        *,
        times: int | None = None,
        verdict: str | None = None,
    ) -> list[HostCall]:
        """Assert the plugin called ``service.function`` (``times`` times, with ``verdict``)."""
        calls = [
            c for c in self._transcript.calls(service, function) if verdict is None or c.verdict == verdict
        ]
        what = f"{service}.{function or '*'}" + (f" with verdict {verdict!r}" if verdict else "")
        if (times is None and not calls) or (times is not None and len(calls) != times):
            expected = "at least once" if times is None else f"{times} time(s)"
            raise AssertionError(f"expected {what} {expected}, got {len(calls)}.\n{self.render()}")
        return calls

    def assert_not_called(self, service: str, function: str | None = None) -> None:
        calls = self._transcript.calls(service, function)
        if calls:
            raise AssertionError(
                f"expected no call to {service}.{function or '*'}, got {len(calls)}.\n{self.render()}"
            )

    def render(self, *, limit: int | None = 20) -> str:
        calls = list(self._transcript)
        if not calls:
            return "host calls: (none)"
        shown = calls if limit is None else calls[-limit:]
        dropped = calls[0].seq - 1  # the transcript keeps the newest calls; older outlines were let go
        lines = [
            f"host calls ({len(calls)}{f', {dropped} older dropped' if dropped else ''}"
            f"{', last ' + str(len(shown)) if len(shown) < len(calls) else ''}):"
        ]
        lines.extend(f"  {call}" for call in shown)
        return "\n".join(lines)


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def wasm_host(pytestconfig: pytest.Config) -> Iterator[Runtime]:
    """The production runtime of the session: real engine, disk compile cache, pools (xdist-safe)."""
    with Runtime(settings_of(pytestconfig).runtime_settings()) as runtime:
        yield runtime


def _marker_config(request: pytest.FixtureRequest) -> dict[str, dict[str, str]]:
    """``wasm_config({...})`` (every plugin the test loads) or ``wasm_config({...}, plugin_id="x")``;
    several markers may name several plugins, the closest marker of one id wins. Always has "*"."""
    sections: dict[str, dict[str, str]] = {}
    for marker in request.node.iter_markers("wasm_config"):
        if (
            len(marker.args) != 1
            or not isinstance(marker.args[0], Mapping)
            or set(marker.kwargs) - {"plugin_id"}
        ):
            raise pytest.UsageError(
                "@pytest.mark.wasm_config takes one dict and optionally plugin_id: "
                "wasm_config({'key': 'value'}, plugin_id='my-plugin')"
            )
        plugin_id = str(marker.kwargs.get("plugin_id", "*"))
        sections.setdefault(plugin_id, {str(k): str(v) for k, v in marker.args[0].items()})
    sections.setdefault("*", {})  # the wasm_config fixture's map: changes to it are seen live
    return sections


def _http_mock(request: pytest.FixtureRequest) -> HttpMock:
    marker = request.node.get_closest_marker("wasm_http")
    return HttpMock(**(marker.kwargs if marker else {}))


@pytest.fixture
def wasm_runtime(wasm_host: Runtime, request: pytest.FixtureRequest) -> Iterator[WasmRuntime]:
    """A fresh runtime scope for this test: its own pools, host-service state, config and transcript.

    Nothing leaves the machine: the http service talks to this test's ``wasm_http`` mock and the
    websocket service to in-memory peers (``wasm_websocket``).
    """
    http = _http_mock(request)
    options = HostOptions(
        http=HttpOptions(transport=http.transport),
        websocket=WebSocketOptions(transport=MemoryTransportFactory()),
        subsonicapi=SubsonicOptions(backend=FakeSubsonic),  # a fresh fake per scope
    )
    defaults = LoadDefaults(config=_marker_config(request), permissions=_marker_permissions(request))
    with wasm_host.scope(host_options=options, clock_driven=True, defaults=defaults) as scope:
        runtime = WasmRuntime(wasm_host, scope, options, http)
        request.node.stash[SCOPE_KEY] = scope
        yield runtime
    # Callbacks that failed after the test body ran (those before were reported by the call hook).
    problems = [*callback_problems(request.node, scope.env), *http.problems()]
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


# -- host-triggered callbacks that failed ------------------------------------------------------------

STRICT_CALLBACKS_MARKER = "wasm_strict_callbacks"
STRICT_HINT = (
    "To fail the test on it instead of warning, pass --wasm-strict-callbacks "
    "(or mark the test @pytest.mark.wasm_strict_callbacks)."
)


def strict_callbacks(node: pytest.Item) -> bool:
    """Whether a failed callback fails this test: its ``wasm_strict_callbacks`` marker, else the option."""
    marker = node.get_closest_marker(STRICT_CALLBACKS_MARKER)
    if marker is None:
        return settings_of(node.config).strict_callbacks
    enabled = marker.kwargs.get("enabled", marker.args[0] if marker.args else True)
    if len(marker.args) > 1 or set(marker.kwargs) - {"enabled"} or not isinstance(enabled, bool):
        raise pytest.UsageError(
            "@pytest.mark.wasm_strict_callbacks takes at most one bool: wasm_strict_callbacks() or "
            "wasm_strict_callbacks(False)"
        )
    return enabled


def _failure_lines(env: HostEnvironment) -> list[str]:
    """The scope's pending callback failures, one text each (now reported: taken from the scope)."""
    failures, more = env.callback_failures.take()
    lines = [f"{failure}" + (f" [{count} times]" if count > 1 else "") for failure, count in failures]
    if more:
        lines.append(f"... and {more} more failed callbacks (not kept).")
    return lines


def callback_problems(node: pytest.Item, env: HostEnvironment) -> list[str]:
    """Report the scope's failed host-triggered callbacks: one warning each, or, with strict callbacks,
    the failure text returned for the caller to fail the test with."""
    strict = strict_callbacks(node)  # first: a bad marker is an error even when nothing failed
    lines = _failure_lines(env)
    if not lines:
        return []
    if strict:
        return [
            "host-triggered callbacks failed (strict callbacks; @pytest.mark.wasm_strict_callbacks(False) "
            "only warns):\n" + "\n".join(f"  {line}" for line in lines)
        ]
    lineno = node.location[1]
    for line in lines:
        # Attributed to the test's own line: it is what the user goes to, not this module.
        warnings.warn_explicit(
            CallbackFailureWarning(f"{line} {STRICT_HINT}"),
            CallbackFailureWarning,
            filename=str(node.path),
            lineno=(lineno or 0) + 1,
        )
    return []


def callback_failure_section(env: HostEnvironment) -> str:
    """For a test that failed anyway: its callback failures, shown with the report (never a warning)."""
    lines = _failure_lines(env)
    if not lines:
        return ""
    return "host-triggered callbacks that failed:\n" + "\n".join(f"  {line}" for line in lines)


@pytest.fixture
def wasm_config(wasm_runtime: WasmRuntime) -> dict[str, str]:
    """The configuration map every plugin of this test sees unless its load passes ``config=`` (or a
    ``wasm_config(..., plugin_id=...)`` marker names that plugin). Read live: change it any time.

    Starts from the ``wasm_config`` marker. The plugin sees keys in lower case, as Navidrome hands
    them over; a key in another case gets one ``ConfigKeyWarning``.
    """
    return wasm_runtime.scope.defaults.config["*"]  # type: ignore[return-value]


@pytest.fixture
def wasm_plugin(
    request: pytest.FixtureRequest, wasm_runtime: WasmRuntime, wasm_config: dict[str, str]
) -> Plugin:
    """The plugin under test: from --wasm-plugin (parametrized), the wasm_plugin marker, or a conftest."""
    path = _plugin_path(request)
    try:  # the markers reach it through the scope's defaults, as they reach wasm_load
        plugin = wasm_runtime.load(path)
    except WasmHostError as exc:
        pytest.fail(str(exc), pytrace=False)
    request.node.stash[PLUGIN_KEY] = plugin
    return plugin


PERMISSIONS_PROPERTY = "wasmhost_permissions"


def _marker_permissions(request: pytest.FixtureRequest) -> dict[str, Any] | None:
    """``wasm_permissions(http={...}, cache=None, scheduler=True)``: per-test grants over the manifest's.

    A dict replaces that service's permission object, ``True`` grants it with a placeholder reason,
    ``None`` removes it. The change is recorded so the terminal summary shows which tests granted,
    replaced or removed what their manifest grants.
    """
    marker = request.node.get_closest_marker("wasm_permissions")
    if marker is None:
        return None
    if marker.args:
        raise pytest.UsageError(
            "@pytest.mark.wasm_permissions takes keyword arguments: wasm_permissions(http={...})"
        )
    overrides: dict[str, Any] = dict(marker.kwargs)
    # A dict may widen or narrow what the manifest grants; the summary says what was done, not which.
    changes = {
        "granted": sorted(k for k, v in marker.kwargs.items() if v is True),
        "replaced": sorted(k for k, v in marker.kwargs.items() if v is not None and v is not True),
        "removed": sorted(k for k, v in marker.kwargs.items() if v is None),
    }
    summary = "; ".join(f"{change}: {', '.join(names)}" for change, names in changes.items() if names)
    request.node.user_properties.append((PERMISSIONS_PROPERTY, summary))
    return overrides


def _plugin_path(request: pytest.FixtureRequest) -> Path:
    marker = request.node.get_closest_marker("wasm_plugin")
    if marker is not None:
        if len(marker.args) != 1:
            raise pytest.UsageError("@pytest.mark.wasm_plugin takes one path: wasm_plugin('path/to/plugin')")
        path = Path(str(marker.args[0]))
        if path.is_absolute():
            return path
        # Relative to the test file, else to the rootdir (where pytest runs from in CI).
        beside_test = Path(str(request.node.path)).parent / path
        return beside_test if beside_test.exists() else request.config.rootpath / path
    param = getattr(request, "param", None)
    if param is not None:
        return Path(param)
    raise pytest.UsageError(
        f"{request.node.nodeid} uses wasm_plugin but no plugin was given: pass --wasm-plugin PATH, set the "
        "wasm_plugins ini key, mark the test with @pytest.mark.wasm_plugin('path'), or override the "
        "wasm_plugin fixture in your conftest.py."
    )


@pytest.fixture
def wasm_load(wasm_runtime: WasmRuntime) -> Any:
    """A factory: ``wasm_load(path, config={...}, plugin_id=...)`` loads any plugin into this test's scope."""
    return wasm_runtime.load


@pytest.fixture
def wasm_clock(wasm_runtime: WasmRuntime) -> Iterator[WasmClock]:
    """Frozen test time; ``wasm_clock.advance(seconds)`` expires what is due and fires scheduler jobs."""
    clock = WasmClock(wasm_runtime).start()
    try:
        yield clock
    finally:
        clock.stop()


@pytest.fixture
def wasm_cache(wasm_runtime: WasmRuntime) -> CacheStore:
    """The cache service's store of this test: seed it, or inspect what the plugin cached."""
    return scope_store(wasm_runtime.scope.env)


@pytest.fixture
def wasm_scheduler(wasm_runtime: WasmRuntime) -> SchedulerEngine:
    """The scheduler of this test: ``jobs()`` lists what the plugin scheduled; fire them with wasm_clock."""
    return SchedulerEngine.of(wasm_runtime.scope.env)


@pytest.fixture
def wasm_subsonic(wasm_runtime: WasmRuntime) -> FakeSubsonic:
    """The fake Subsonic server the plugin's ``subsonicapi`` calls reach: users, canned answers, requests."""
    backend = scope_backend(wasm_runtime.scope.env)
    if not isinstance(backend, FakeSubsonic):
        raise pytest.UsageError(f"this test's Subsonic backend is {backend!r}, not a FakeSubsonic")
    return backend


@pytest.fixture
def wasm_artwork(wasm_runtime: WasmRuntime) -> LiveArtworkOptions:
    """The artwork service's settings of this test (``share_url``, ``base_host``, ``base_scheme``,
    ``base_path``, ``secret``), a mapping read on every call, so set them any time."""
    return live_options(wasm_runtime.scope.env)


@pytest.fixture
def wasm_http(wasm_runtime: WasmRuntime) -> HttpMock:
    """A respx router for the plugin's permitted HTTP requests (denied ones never reach it).

    Strict by default: an unmatched request, or a route never requested, fails the test at teardown
    (switch off with ``@pytest.mark.wasm_http(assert_all_mocked=False, assert_all_called=False)``).
    """
    return wasm_runtime.http


@pytest.fixture
def wasm_websocket(wasm_runtime: WasmRuntime) -> MemoryWebSockets:
    """The scope's WebSockets on the in-memory transport: ``wasm_websocket.peer(connection_id)`` is
    the server side of a plugin's connection (push_text, push_binary, close, sent)."""
    return MemoryWebSockets(websocket_hub(wasm_runtime.scope.env))


@pytest.fixture
def wasm_calls(wasm_runtime: WasmRuntime) -> WasmCalls:
    """Every host call this test's plugins made, in order (service, function, request, verdict, duration)."""
    return WasmCalls(wasm_runtime.transcript)
