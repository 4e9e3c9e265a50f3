"""The built-in conformance suite, collected once per plugin given with ``--wasm-plugin`` / ``wasm_plugins``.

Each check is one test with an id of the form ``test_<check>[<plugin id>]`` (or ``[<plugin id>-<export>]``),
marked with the capability it concerns, so ``-k`` and ``-m`` select them. Checks that cannot apply are
skipped with a reason. No real traffic leaves the machine: the suite's scopes answer permitted outbound
calls with canned replies, and a plugin error string in reply to those is fine; a trap or a timeout is not.
"""

from __future__ import annotations

import gc
import threading
import warnings
from collections.abc import Iterator

import pytest
from google.protobuf.message import Message
from humanize import naturalsize
from hypothesis import HealthCheck, given, settings

from pytest_wasmhost.abi.capabilities import CAPABILITIES, METHODS_BY_EXPORT, Reply, load_check_failure
from pytest_wasmhost.abi.codec import message_to_dict
from pytest_wasmhost.conformance.requests import TYPICAL, fuzz_strategy
from pytest_wasmhost.doubles.http import canned_http
from pytest_wasmhost.doubles.subsonic import FakeSubsonic
from pytest_wasmhost.doubles.websocket import MemoryTransportFactory, MemoryWebSockets
from pytest_wasmhost.errors import (
    AbiError,
    NoResult,
    PluginError,
    PluginMemoryError,
    PluginTimeout,
    PluginTrap,
    WasmHostError,
)
from pytest_wasmhost.host.http import method_warnings
from pytest_wasmhost.host.options import HostOptions, HttpOptions, SubsonicOptions, WebSocketOptions
from pytest_wasmhost.host.websocket import websocket_hub
from pytest_wasmhost.package import PluginSource, load_plugin
from pytest_wasmhost.pytest_state import PLUGIN_KEY, SCOPE_KEY, SOURCES_KEY, settings_of
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.runtime import Runtime, ScopedRuntime

FUZZ_EXAMPLES = 25
CONCURRENT_THREADS = 4
CALLS_PER_THREAD = 5
LEAK_WARMUP_CALLS = 50
LEAK_WINDOW_CALLS = 100
LEAK_SLACK = 1024 * 1024  # bytes; a garbage-collected guest may still take one more heap step


def _sources(config: pytest.Config) -> dict[str, str]:
    return config.stash.get(SOURCES_KEY, {})


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sources = _sources(metafunc.config)
    if "plugin_path" in metafunc.fixturenames:
        if "export" in metafunc.fixturenames:
            params = []
            for path, pid in sources.items():
                declared = load_plugin(path).manifest.capabilities
                for export, method in METHODS_BY_EXPORT.items():
                    if method.capability in declared:
                        marks = [getattr(pytest.mark, method.capability)]
                        params.append(pytest.param(path, export, id=f"{pid}-{export}", marks=marks))
            metafunc.parametrize(("plugin_path", "export"), params)
        else:
            metafunc.parametrize("plugin_path", list(sources), ids=list(sources.values()))


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture
def source(plugin_path: str) -> PluginSource:
    return load_plugin(plugin_path)


CANNED_HTTP_STATUS = 503


def canned_options() -> HostOptions:
    """No real traffic: HTTP answers 503, WebSockets reach silent in-memory peers, Subsonic is the fake.

    (A refused dial would be the original's hard error, a trap, for every WebSocket plugin's OnInit:
    a silent peer lets the suite check the rest of the plugin.)"""
    return HostOptions(
        http=HttpOptions(transport=canned_http(CANNED_HTTP_STATUS)),
        websocket=WebSocketOptions(transport=MemoryTransportFactory()),
        subsonicapi=SubsonicOptions(backend=FakeSubsonic),
    )


@pytest.fixture
def scope(wasm_host: Runtime, pytestconfig: pytest.Config) -> Iterator[ScopedRuntime]:
    config = settings_of(pytestconfig).config
    with wasm_host.scope(config=config, host_options=canned_options(), clock_driven=True) as scope:
        yield scope


@pytest.fixture
def plugin(scope: ScopedRuntime, plugin_path: str, request: pytest.FixtureRequest) -> Plugin:
    """The plugin loaded into a fresh scope; a load failure fails the check that needs it, naming why."""
    loaded = _load_unchecked(scope, plugin_path)
    _skip_if_unlinkable(loaded)
    request.node.stash[PLUGIN_KEY] = loaded
    request.node.stash[SCOPE_KEY] = scope
    return loaded


# -- static checks ---------------------------------------------------------------------------------


def test_manifest_is_valid(source: PluginSource) -> None:
    """The original host's validator accepts the manifest; schema-only findings are warnings."""
    for warning in source.lint:
        warnings.warn(
            f"{source.plugin_id}: manifest lint {warning.json_path}: {warning.message}", stacklevel=1
        )
    assert source.manifest.capabilities, "the manifest declares no capability"


def test_module_compiles(source: PluginSource, wasm_host: Runtime) -> None:
    wasm_host.modules.get(source.wasm_bytes, plugin_id=source.plugin_id)


def test_imports_are_wasi_or_granted(source: PluginSource, scope: ScopedRuntime, plugin_path: str) -> None:
    """Every import links: the plugin loads either way, but an unlinkable one fails every call (abi.md §8)."""
    loaded = _load_unchecked(scope, plugin_path)
    env_imports = [i.name for i in loaded.linked.imports if i.module == "env"]
    # Linkable, but refused at every call: a warning, since the plugin may never make such a request.
    for warning in method_warnings(source.manifest, env_imports):
        warnings.warn(f"{source.plugin_id}: {warning}", stacklevel=1)
    if loaded.linked.link_error is None:
        return
    others = [str(problem.import_name) for problem in loaded.linked.import_problems[1:]]
    also = f" Other imports the host would not link: {', '.join(others)}." if others else ""
    pytest.fail(f"{loaded.linked.link_failure()}{also}", pytrace=False)


def _load_unchecked(scope: ScopedRuntime, plugin_path: str) -> Plugin:
    """The plugin without instantiating it (so an unlinkable one loads, as in the original)."""
    try:
        return scope.plugin(plugin_path, eager=False, init=False)
    except WasmHostError as exc:
        pytest.fail(f"the plugin cannot be loaded, so this check cannot run: {exc}", pytrace=False)


def _skip_if_unlinkable(loaded: Plugin) -> None:
    """Checks that need an instance skip, with the reason, when the module cannot be instantiated."""
    problem = loaded.linked.link_error
    if problem is not None:
        pytest.skip(
            f"every call fails: the module cannot be instantiated ({problem.import_name}); "
            "see test_imports_are_wasi_or_granted"
        )


def test_exports_match_capabilities(source: PluginSource, scope: ScopedRuntime, plugin_path: str) -> None:
    """Every declared capability has its version export (= 1), every method export, malloc and free."""
    loaded = _load_unchecked(scope, plugin_path)
    _skip_if_unlinkable(loaded)
    problems = []
    for name in source.manifest.capabilities:
        cause = _load_check(loaded, name)
        if cause:
            problems.append(f"{name}: {cause}")
    assert not problems, "declared capabilities the module does not implement: " + "; ".join(problems)


def _load_check(loaded: Plugin, capability_name: str) -> str | None:
    """The original's load checks of one capability on a pooled instance: its error text, or None."""
    capability = CAPABILITIES[capability_name]
    exports = {e.name: (e.params, e.results) for e in loaded.linked.exports if e.kind == "func"}
    with loaded.pool.lease() as instance:

        def version(export: str = capability.version_export) -> int | None:
            with instance.activate(export):
                return instance.call_export(export, ()) if export in exports else None

        return load_check_failure(capability, exports, version)


def _skip_if_its_capability_is_broken(plugin: Plugin, export: str) -> None:
    """Every call of a capability that fails the load checks fails alike: one check reports it, once."""
    cause = _load_check(plugin, METHODS_BY_EXPORT[export].capability)
    if cause is not None:
        pytest.skip(
            f"every call of {export} fails the load checks ({cause}); see test_exports_match_capabilities"
        )


def test_initialize_runs(plugin: Plugin) -> None:
    """A fresh instance starts: ``_initialize`` returns without trapping or exiting."""
    with plugin.pool.lease():
        pass
    assert plugin.stats().created >= 1


def test_on_init_succeeds(source: PluginSource, scope: ScopedRuntime, request: pytest.FixtureRequest) -> None:
    if "LifecycleManagement" not in source.manifest.capabilities:
        pytest.skip("the plugin does not declare LifecycleManagement")
    plugin: Plugin = request.getfixturevalue("plugin")
    try:
        scope.initialise(plugin)
    except WasmHostError as exc:
        pytest.fail(f"OnInit failed (the original host would unregister the plugin): {exc}", pytrace=False)


# -- behaviour checks ------------------------------------------------------------------------------


def _call(plugin: Plugin, export: str, request: Message) -> Reply:
    try:
        return plugin.call(export, request)
    except (PluginTrap, PluginTimeout, PluginMemoryError, AbiError) as exc:
        pytest.fail(
            f"{type(exc).__name__} on {export} with request {message_to_dict(request)}: {exc}", pytrace=False
        )


def test_typical_request(plugin: Plugin, export: str, scope: ScopedRuntime) -> None:
    """A typical request gets a response, not-implemented / not-found, or a plugin error: never a trap."""
    _skip_if_its_capability_is_broken(plugin, export)
    reply = _call(plugin, export, TYPICAL[export])
    assert reply.response is not None or reply.error_text is not None
    denied = [c for c in scope.transcript if c.verdict == "denied"]
    assert not denied, (
        "host calls were denied (the manifest is missing a permission or a URL):\n  "
        + "\n  ".join(str(c) for c in denied)
    )


def test_fresh_and_pooled_instances_agree(
    plugin: Plugin, export: str, wasm_host: Runtime, plugin_path: str, scope: ScopedRuntime
) -> None:
    """The same request answered by a reused pooled instance and by a brand-new one: hidden state shows."""
    _skip_if_its_capability_is_broken(plugin, export)
    request = TYPICAL[export]
    _call(plugin, export, request)  # warm the pooled instance
    pooled = _call(plugin, export, request)
    with wasm_host.scope(config=scope.config, host_options=canned_options(), clock_driven=True) as other:
        fresh_plugin = other.plugin(plugin_path, init=False, eager=False)  # another capability may be broken
        fresh = _call(fresh_plugin, export, request)
    assert _comparable(pooled) == _comparable(fresh), (
        f"{export} answered differently on a reused instance than on a fresh one: the plugin keeps state "
        f"between calls (pooled: {_comparable(pooled)}, fresh: {_comparable(fresh)})"
    )


def _comparable(reply: Reply) -> object:
    return reply.error_text if reply.response is None else message_to_dict(reply.response)


def test_fuzzed_requests(plugin: Plugin, export: str) -> None:
    """Hypothesis-generated requests: no trap, no timeout, responses decode, memory within the cap."""
    _skip_if_its_capability_is_broken(plugin, export)
    stopped: list[str] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(request=fuzz_strategy(export))
    def run(request: Message) -> None:
        if stopped:
            return
        try:
            reply = plugin.call(export, request)
        except (PluginTimeout, PluginMemoryError) as exc:
            # Not shrunk: every shrinking step would wait for the deadline (or fill memory) again.
            stopped.append(f"{type(exc).__name__} on {export} with request {message_to_dict(request)}: {exc}")
            return
        except (PluginTrap, AbiError) as exc:
            pytest.fail(
                f"{type(exc).__name__} on {export} with request {message_to_dict(request)}: {exc}",
                pytrace=False,
            )
        assert reply.response is not None or reply.error_text is not None

    run()
    if stopped:
        pytest.fail(stopped[0], pytrace=False)


def test_concurrent_calls(plugin: Plugin, export: str) -> None:
    """Several threads through the pool at once: every call completes, nothing is handed out twice."""
    _skip_if_its_capability_is_broken(plugin, export)
    errors: list[BaseException] = []

    def worker() -> None:
        for _ in range(CALLS_PER_THREAD):
            try:
                plugin.call(export, TYPICAL[export])
            except (NoResult, PluginError):
                pass
            except BaseException as exc:
                errors.append(exc)
                return  # one failure is enough: a looping plugin would wait out every deadline

    threads = [threading.Thread(target=worker) for _ in range(CONCURRENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a concurrent call never returned"
    assert not errors, f"concurrent calls failed: {errors[0]}"
    stats = plugin.stats()
    assert stats.busy == 0
    assert stats.live <= plugin.pool.settings.max_live


def _memory_after(plugin: Plugin, export: str, calls: int) -> tuple[int, int]:
    """(linear memory size, instances created so far) after ``calls`` more sequential typical calls."""
    for _ in range(calls):
        _call(plugin, export, TYPICAL[export])
    with plugin.pool.lease() as instance:
        return instance.memory_size(), plugin.stats().created


def test_memory_does_not_grow_per_call(plugin: Plugin, export: str) -> None:
    """Repeated typical calls on one pooled instance: its linear memory levels off instead of growing.

    A pooled instance lives for many calls, so memory a plugin forgets to free on every call (a result
    buffer never released, a cache without bounds) ends in an out-of-memory trap in production. The
    first window lets allocators and garbage collectors reach their working size; the second must not
    grow by more than ``LEAK_SLACK``.
    """
    _skip_if_its_capability_is_broken(plugin, export)
    _memory_after(plugin, export, LEAK_WARMUP_CALLS)
    settled, created = _memory_after(plugin, export, LEAK_WINDOW_CALLS)
    grown, created_after = _memory_after(plugin, export, LEAK_WINDOW_CALLS)
    assert created_after == created, "the pool replaced the instance between calls: memory cannot be compared"
    growth = grown - settled

    def size(n: int) -> str:
        return naturalsize(n, binary=True)  # wasm pages are 64 KiB: binary units read exactly

    assert growth <= LEAK_SLACK, (
        f"{export}: linear memory grew by {size(growth)} ({size(growth // LEAK_WINDOW_CALLS)} per call) over "
        f"{LEAK_WINDOW_CALLS} identical calls after a warm-up ({size(settled)} -> {size(grown)}): "
        "the plugin keeps "
        "memory from every call. Fix: free what each call allocates (results are freed by the host through "
        "the plugin's free export) and bound any cache the plugin keeps."
    )


def test_repeated_load_and_unload_leaves_nothing_behind(plugin_path: str, wasm_host: Runtime) -> None:
    with wasm_host.scope(host_options=canned_options(), clock_driven=True) as probe:
        loaded = _load_unchecked(probe, plugin_path)
        _skip_if_unlinkable(loaded)
        broken = [
            f"{name}: {cause}"
            for name in loaded.manifest.capabilities
            if (cause := _load_check(loaded, name))
        ]
    if broken:
        pytest.skip(
            f"the plugin fails its load checks ({'; '.join(broken)}), so no load succeeds; "
            "see test_exports_match_capabilities"
        )
    before = threading.active_count()
    for _ in range(3):
        with wasm_host.scope(host_options=canned_options(), clock_driven=True) as scope:
            loaded = scope.plugin(plugin_path, init=False)
            stats_open = loaded.stats()
        stats = loaded.stats()
        assert stats_open.live >= 1
        assert stats.live == 0, f"instances left open: {stats}"
        assert stats.closed == stats.created, f"instances left open: {stats}"
    if threading.active_count() > before:
        gc.collect()  # a thread may end only once a cycle holding it goes (a full collection is slow)
    assert threading.active_count() <= before, "threads were left running"


def _drive_own_connections(scope: ScopedRuntime, plugin: Plugin, events: tuple[str, ...]) -> int:
    """Initialise the plugin (OnInit, if declared), then let the server end of every connection it opened
    send ``events`` in order (``text``, ``binary``, ``close``, ``error``) while the connection is open.
    Answers how many connections the plugin opened."""
    if "LifecycleManagement" in plugin.manifest.capabilities:
        try:
            scope.initialise(plugin)
        except WasmHostError as exc:
            pytest.skip(f"OnInit failed, so there is no connection of the plugin's own to drive: {exc}")
    peers = MemoryWebSockets(websocket_hub(scope.env))
    connections = peers.connection_ids(plugin.plugin_id)
    for connection_id in connections:
        peer = peers.peer(connection_id, plugin_id=plugin.plugin_id)
        for event in events:
            if not peer.open:  # the plugin closed it from a callback: nothing more can be sent
                break
            if event == "text":
                peer.push_text('{"type":"ping"}')
            elif event == "binary":
                peer.push_binary(b"\x00\x01")
            elif event == "close":
                peer.close(1000, "conformance")
            else:
                peer.fail("i/o timeout")
    return len(connections)


@pytest.mark.WebSocketCallback
def test_websocket_callbacks(
    source: PluginSource,
    scope: ScopedRuntime,
    wasm_host: Runtime,
    plugin_path: str,
    request: pytest.FixtureRequest,
) -> None:
    """The WebSocketCallback exports, called by the host for events on the connections the plugin itself
    opened while initialising: a text frame, a binary frame and the server's close on each; then, in a
    second scope (a connection ends at its first close or read error), a read error on each. A callback
    that traps (also when a host function it calls fails hard), times out or breaks the ABI fails the
    check: the original host only logged it, so nothing else would show it. Error answers are fine."""
    if "WebSocketCallback" not in source.manifest.capabilities:
        pytest.skip("the plugin does not declare WebSocketCallback")
    plugin: Plugin = request.getfixturevalue("plugin")
    if not _drive_own_connections(scope, plugin, ("text", "binary", "close")):
        pytest.skip("the plugin opened no WebSocket connection while initialising: none of its own to drive")
    failures, _ = scope.env.callback_failures.take()
    with wasm_host.scope(config=scope.config, host_options=canned_options(), clock_driven=True) as other:
        _drive_own_connections(other, other.plugin(plugin_path, init=False), ("error",))
        failures += other.env.callback_failures.take()[0]
    if failures:
        pytest.fail(
            "WebSocket callbacks failed on the plugin's own connections:\n"
            + "\n".join(f"  {failure}" for failure, _ in failures),
            pytrace=False,
        )
