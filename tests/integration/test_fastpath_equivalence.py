"""The C-API fast path and the public-API path behave identically (issue 9).

Every export of every sample plugin, and WAT modules for the ABI's edge cases, run through both paths
with the same hypothesis-generated payloads: the results must be equal, and so must every exception
(type and message), the instance's fate (dead or reusable) and the host-call transcript.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_wasmhost.abi.capabilities import CAPABILITIES
from pytest_wasmhost.abi.memory import CallOutcome, call_method
from pytest_wasmhost.conformance.suite import canned_options
from pytest_wasmhost.errors import PluginLoadError
from pytest_wasmhost.host.base import Transcript
from pytest_wasmhost.host.config import ConfigService
from pytest_wasmhost.host.registry import IMPLEMENTED, bind
from pytest_wasmhost.runtime.engine import shared_engine
from pytest_wasmhost.runtime.instance import InstanceLimits, LinkedPlugin, PluginInstance, compile_module
from pytest_wasmhost.runtime.plugin import Plugin
from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings, ScopedRuntime
from tests.support.wat import metadata_module, packed

REPO = Path(__file__).resolve().parents[2]
GO_SAMPLE = REPO / "sample_plugins" / "go" / "fake_artist_agent" / "plugin.wasm"
C_SAMPLE = REPO / "sample_plugins" / "c" / "config_agent" / "plugin.wasm"
METHOD_EXPORTS = [m.export for cap in CAPABILITIES.values() for m in cap.methods]
VERSION_EXPORTS = [cap.version_export for cap in CAPABILITIES.values()]
CONFIG = {"greeting": "Hi", "long": "v" * 300}

# -- the edge-case module ----------------------------------------------------------------------------

ECHO = "(i64.or (i64.shl (i64.extend_i32_u (local.get 0)) (i64.const 32)) (i64.extend_i32_u (local.get 1)))"
# ptr = memory size - 10, len 100: whatever the memory has grown to, the result ends outside it.
PAST_END = (
    "(i64.or (i64.shl (i64.extend_i32_u (i32.sub (i32.shl (memory.size) (i32.const 16)) (i32.const 10)))"
    " (i64.const 32)) (i64.const 100))"
)
GROW_UNTIL_FULL = (
    "(block $full (loop $grow (br_if $full (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))"
    " (br $grow))) unreachable"
)
EDGE_RESULTS = {
    "metadata_agent_get_artist_mbid": ECHO,  # the request comes back: payload bytes through memory twice
    "metadata_agent_get_artist_url": f"(i64.or {ECHO} (i64.const 0x80000000))",  # ... as an error string
    "metadata_agent_get_artist_biography": PAST_END,
    "metadata_agent_get_similar_artists": packed(0, 5),  # null pointer with a size
    "metadata_agent_get_artist_images": "unreachable",
    # The payload as a config request: random bytes fail to decode (a host hard error).
    "metadata_agent_get_artist_top_songs": "(call $cfg (local.get 0) (local.get 1))",
    "metadata_agent_get_album_info": "(call $cfg (i32.const 0x7ffffff0) (i32.const 64))",  # outside memory
    "metadata_agent_get_album_images": GROW_UNTIL_FULL,
    # WASI shims: stderr gets the payload then the guest traps; the fake clock's value is returned.
    "scrobbler_is_authorized": (
        "(i32.store (i32.const 16) (local.get 0)) (i32.store (i32.const 20) (local.get 1))"
        " (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24))) unreachable"
    ),
    "scrobbler_now_playing": "(drop (call $clock (i32.const 0) (i64.const 1) (i32.const 32)))"
    f" {packed(32, 8)}",
    "scrobbler_scrobble": "(call $exit (i32.const 3)) (i64.const 0)",
}
EDGE_IMPORTS = """
  (import "env" "get_plugin_config" (func $cfg (param i32 i32) (result i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
"""
EDGE_EXTRA = """
  (func (export "multi") (result i32 i32) (i32.const 1) (i32.const 2))
  (func (export "floaty") (param f32) (result f32) (local.get 0))
  (func (export "neg32") (result i32) (i32.const -5))
  (func (export "big64") (result i64) (i64.const -9223372036854775807))
"""


# A bump allocator that starts over when it reaches the end, so long runs keep succeeding.
WRAPPING_MALLOC = (
    "(if (i32.gt_u (i32.add (global.get $next) (local.get 0)) (i32.shl (memory.size) (i32.const 16)))"
    " (then (global.set $next (i32.const 1024))))"
    " (local.set $p (global.get $next)) (global.set $next (i32.add (global.get $next) (local.get 0)))"
    " (local.get $p)"
)


def edge_module(**overrides: Any) -> bytes:
    options: dict[str, Any] = {
        "malloc_body": WRAPPING_MALLOC,
        "capabilities": ("MetadataAgent", "Scrobbler"),
        "results": EDGE_RESULTS,
        "imports": EDGE_IMPORTS,
        "extra": EDGE_EXTRA,
        "pages": 4,
    }
    options.update(overrides)
    return metadata_module(**options)


@functools.cache
def broken_malloc_module(malloc_body: str) -> bytes:
    return edge_module(malloc_body=malloc_body)


# -- running one operation on both paths --------------------------------------------------------------


@dataclass
class Side:
    """One path's linked plugin and its current instance (replaced after any failure)."""

    linked: LinkedPlugin
    limits: InstanceLimits
    transcript: Transcript = field(default_factory=Transcript)
    instance: PluginInstance | None = None

    def current(self) -> PluginInstance:
        if self.instance is None:
            binding = bind(self.linked.plugin_id, [ConfigService(lambda: dict(CONFIG))], self.transcript)
            self.instance = self.linked.instantiate(binding, self.limits)
        return self.instance

    def drop(self) -> None:
        if self.instance is not None:
            self.instance.close()
            self.instance = None


def outcome(side: Side, operation: Callable[[PluginInstance], object]) -> tuple[Any, ...]:
    inst = side.current()
    try:
        value = operation(inst)
    except Exception as exc:
        side.drop()
        details: tuple[Any, ...] = (type(exc), str(exc), getattr(exc, "backtrace", None), inst.dead)
        return ("raised", *details)
    return ("returned", value, inst.dead)


class Pair:
    """The same module linked twice, once per path, with the same grants, limits and host services."""

    def __init__(
        self, wasm: bytes, *, granted: tuple[str, ...] = ("config",), limits: InstanceLimits
    ) -> None:
        engine = shared_engine()
        module = compile_module(engine, wasm, plugin_id="equiv")
        self.sides = {
            path: Side(
                LinkedPlugin(
                    plugin_id="equiv",
                    engine=engine,
                    module=module,
                    granted=granted,
                    implemented=IMPLEMENTED,
                    fastpath=path == "fast",
                ),
                limits,
            )
            for path in ("fast", "public")
        }
        assert self.sides["fast"].linked.call_path.name == "fast"
        assert self.sides["public"].linked.call_path.name == "public"

    def same(self, operation: Callable[[PluginInstance], object]) -> tuple[Any, ...]:
        fast = outcome(self.sides["fast"], operation)
        public = outcome(self.sides["public"], operation)
        assert fast == public
        return fast

    def transcripts(self) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, str]]]:
        def rows(side: Side) -> list[tuple[str, str, str]]:
            return [(c.function, c.verdict, c.detail) for c in side.transcript]

        return rows(self.sides["fast"]), rows(self.sides["public"])

    def close(self) -> None:
        for side in self.sides.values():
            side.drop()


def round_trip(inst: PluginInstance, export: str, payload: bytes) -> CallOutcome:
    """A method round trip as ``MethodRunner.run`` runs it: the fast backend's fused ``method_call``, the
    public path's ``abi.memory.call_method``."""
    return inst.method_call(export, payload) or call_method(inst, export, payload)


def method_call(export: str, payload: bytes) -> Callable[[PluginInstance], object]:
    def run(inst: PluginInstance) -> object:
        with inst.activate(export):
            result = round_trip(inst, export, payload)
        return (result.data, result.error_text, inst.memory_size())

    return run


def export_call(export: str, args: tuple[int, ...] = ()) -> Callable[[PluginInstance], object]:
    def run(inst: PluginInstance) -> object:
        with inst.activate(export):
            return inst.call_export(export, args)

    return run


# -- payloads -------------------------------------------------------------------------------------------

KIB64 = 64 * 1024
payloads = st.one_of(
    st.just(b""),
    st.binary(min_size=1, max_size=1),
    st.binary(max_size=512),
    st.builds(lambda seed: random.Random(seed).randbytes(KIB64), st.integers(0, 2**32)),
    st.builds(lambda text: b"\x12" + bytes([len(text)]) + text, st.binary(max_size=120)),  # field 2 = name
)
SLOW = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module")
def go_pair() -> Iterator[Pair]:
    pair = Pair(GO_SAMPLE.read_bytes(), granted=(), limits=InstanceLimits())
    yield pair
    pair.close()


@pytest.fixture(scope="module")
def c_pair() -> Iterator[Pair]:
    pair = Pair(C_SAMPLE.read_bytes(), limits=InstanceLimits())
    yield pair
    pair.close()


@pytest.fixture(scope="module")
def edge_pair() -> Iterator[Pair]:
    pair = Pair(edge_module(), limits=InstanceLimits(call_timeout=5.0, memory_limit=1024 * 1024))
    yield pair
    pair.close()


@SLOW
@given(payload=payloads)
def test_go_sample_every_export_same_on_both_paths(go_pair: Pair, payload: bytes) -> None:
    for export in VERSION_EXPORTS:
        go_pair.same(export_call(export))
    for export in METHOD_EXPORTS:
        go_pair.same(method_call(export, payload))


@SLOW
@given(payload=payloads)
def test_c_sample_every_export_same_on_both_paths(c_pair: Pair, payload: bytes) -> None:
    for export in VERSION_EXPORTS:
        c_pair.same(export_call(export))
    for export in METHOD_EXPORTS:
        c_pair.same(method_call(export, payload))
    fast, public = c_pair.transcripts()
    assert fast == public


@SLOW
@given(payload=payloads)
def test_abi_edge_cases_same_on_both_paths(edge_pair: Pair, payload: bytes) -> None:
    for export in METHOD_EXPORTS:
        edge_pair.same(method_call(export, payload))
    fast, public = edge_pair.transcripts()
    assert fast == public


def test_the_edge_cases_hit_what_they_aim_at(edge_pair: Pair) -> None:
    """Guard the equivalence test itself: each edge export fails (or not) the way it is meant to."""
    expected = {
        "metadata_agent_get_artist_mbid": "returned",
        "metadata_agent_get_artist_biography": "AbiError",
        "metadata_agent_get_similar_artists": "AbiError",
        "metadata_agent_get_artist_images": "PluginTrap",
        "metadata_agent_get_artist_top_songs": "PluginTrap",
        "metadata_agent_get_album_info": "PluginTrap",
        "metadata_agent_get_album_images": "PluginMemoryError",
        "scrobbler_is_authorized": "PluginTrap",
        "scrobbler_now_playing": "returned",
        "scrobbler_scrobble": "PluginTrap",
    }
    for export, kind in expected.items():
        result = edge_pair.same(method_call(export, b"\xff\xfe payload"))
        assert (result[0] if result[0] == "returned" else result[1].__name__) == kind, export
    top_songs = edge_pair.same(method_call("metadata_agent_get_artist_top_songs", b"\xff\xfe payload"))
    assert "env.get_plugin_config" in top_songs[2]
    url = edge_pair.same(method_call("metadata_agent_get_artist_url", b"oops"))
    assert url[1] == (b"", "oops", 4 * 65536)


@pytest.mark.parametrize(
    ("export", "args"),
    [
        ("neg32", ()),
        ("big64", ()),
        ("multi", ()),  # two results: not one integer
        ("floaty", (1,)),  # an f32 parameter: wasmtime-py's conversion refuses an int
        ("malloc", ()),  # too few arguments
        ("malloc", (1, 2)),  # too many
        ("free", (0xFFFF_FFFF,)),  # an i32 argument past 2**31 wraps the same way
        ("nothing_here", ()),
    ],
)
def test_export_calls_same_on_both_paths(edge_pair: Pair, export: str, args: tuple[int, ...]) -> None:
    edge_pair.same(export_call(export, args))


@pytest.mark.parametrize(
    "malloc_body",
    [
        "(i32.const 0)",  # malloc returning 0
        "(i32.const 0x7fff0000)",  # a pointer outside memory
        "(i32.const 262140)",  # inside, but the buffer runs past the end
        "unreachable",  # malloc traps
    ],
)
@settings(max_examples=10, deadline=None)
@given(payload=payloads)
def test_broken_malloc_same_on_both_paths(malloc_body: str, payload: bytes) -> None:
    pair = Pair(broken_malloc_module(malloc_body), limits=InstanceLimits())
    try:
        pair.same(method_call("metadata_agent_get_artist_mbid", payload))
        # The host allocates its response through the same malloc.
        pair.same(method_call("metadata_agent_get_artist_top_songs", b""))
    finally:
        pair.close()


def test_deadline_same_on_both_paths() -> None:
    spin = edge_module(results={"metadata_agent_get_artist_mbid": "(loop $spin (br $spin)) (i64.const 0)"})
    pair = Pair(spin, limits=InstanceLimits(call_timeout=0.05))
    try:
        result = pair.same(method_call("metadata_agent_get_artist_mbid", b""))
        assert result[1].__name__ == "PluginTimeout"
    finally:
        pair.close()


def test_load_failures_same_on_both_paths() -> None:
    """A start that traps or exits, and no exported memory: the same PluginLoadError on both paths."""
    cases = [
        metadata_module(extra="(func $boom unreachable) (start $boom)"),
        metadata_module(
            imports='(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))',
            extra='(func (export "_initialize") (call $exit (i32.const 7)))',
        ),
        wasmtime.wat2wasm('(module (func (export "malloc") (param i32) (result i32) (i32.const 8)))'),
    ]
    for wasm in cases:
        pair = Pair(bytes(wasm), granted=(), limits=InstanceLimits())
        failures = []
        for side in pair.sides.values():
            with pytest.raises(PluginLoadError) as info:
                side.current()
            failures.append((type(info.value), str(info.value)))
        assert failures[0] == failures[1]


@pytest.mark.parametrize("fastpath", [True, False])
def test_runtime_settings_choose_the_path(fastpath: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """``RuntimeSettings.fastpath`` wins over ``$WASMHOST_FASTPATH``; both paths serve a whole plugin."""
    monkeypatch.setenv("WASMHOST_FASTPATH", "0" if fastpath else "1")
    settings = RuntimeSettings(disk_cache=False, fastpath=fastpath)
    with Runtime(settings) as runtime:
        plugin = runtime.plugin(REPO / "sample_plugins" / "c" / "config_agent", config={"greeting": "Hey"})
        assert plugin.linked.call_path.name == ("fast" if fastpath else "public")
        assert plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hey, Ann"
        assert [(c.service, c.function, c.verdict) for c in plugin.transcript] == [
            ("config", "get_plugin_config", "ok")
        ]


# -- every sample plugin, with its own host services --------------------------------------------------

SAMPLE_FOLDERS = sorted(
    folder
    for language in ("go", "c")
    for folder in (REPO / "sample_plugins" / language).iterdir()
    if (folder / "manifest.json").is_file() and (folder / "plugin.wasm").is_file()
)


@pytest.fixture(scope="module")
def sample_scopes() -> Iterator[dict[str, ScopedRuntime]]:
    runtimes = {path: Runtime(RuntimeSettings(fastpath=path == "fast")) for path in ("fast", "public")}
    scopes = {path: rt.scope(host_options=canned_options()) for path, rt in runtimes.items()}
    yield scopes
    for path, scope in scopes.items():
        scope.close()
        runtimes[path].close()


def on_plugin(plugin: Plugin, export: str, payload: bytes) -> tuple[Any, ...]:
    inst = plugin.pool.get()
    try:
        with inst.activate(export):
            result = round_trip(inst, export, payload)
    except Exception as exc:
        plugin.pool.discard(inst)
        return ("raised", type(exc), str(exc))
    plugin.pool.put(inst)
    return ("returned", result)


@pytest.mark.parametrize("folder", SAMPLE_FOLDERS, ids=[f"{f.parent.name}/{f.name}" for f in SAMPLE_FOLDERS])
def test_every_sample_plugins_exports_same_on_both_paths(
    sample_scopes: dict[str, ScopedRuntime], folder: Path
) -> None:
    """Each sample in its own scope per path (the suite's canned HTTP and in-memory WebSockets): every
    declared method export, hypothesis payloads, the same results, exceptions and host calls."""
    plugins = {path: scope.plugin(folder, init=False) for path, scope in sample_scopes.items()}
    declared = plugins["fast"].manifest.capabilities
    exports = [m.export for name in declared for m in CAPABILITIES[name].methods]

    @SLOW
    @given(payload=payloads)
    def same(payload: bytes) -> None:
        for export in exports:
            marks = {path: len(scope.transcript) for path, scope in sample_scopes.items()}
            fast = on_plugin(plugins["fast"], export, payload)
            public = on_plugin(plugins["public"], export, payload)
            assert fast == public, export
            rows = {
                path: [(c.service, c.function, c.verdict, c.detail) for c in scope.transcript][marks[path] :]
                for path, scope in sample_scopes.items()
            }
            assert rows["fast"] == rows["public"], export

    same()
