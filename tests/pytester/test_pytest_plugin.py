"""The pytest plugin as users run it: pytester sessions with options, ini keys, markers and fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    """An in-process pytest run without faulthandler: its enable/disable pair would unhook wasmtime's
    SIGILL/SIGSEGV trap handlers in this process, and the next wasm trap would kill it."""
    return pytester.runpytest("-p", "no:faulthandler", *args)


@pytest.fixture
def go_agent(samples_dir: Path) -> Path:
    return samples_dir / "go" / "fake_artist_agent"


@pytest.fixture
def c_agent(samples_dir: Path) -> Path:
    return samples_dir / "c" / "config_agent"


def test_missing_plugin_path_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--wasm-plugin", "does/not/exist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--wasm-plugin does/not/exist: no such file or folder*"])


def test_bad_manifest_is_a_usage_error_naming_path_and_rule(
    pytester: pytest.Pytester, go_agent: Path
) -> None:
    bad = pytester.path / "bad"
    bad.mkdir()
    shutil.copy(go_agent / "plugin.wasm", bad / "plugin.wasm")
    (bad / "manifest.json").write_text(json.dumps({"name": "x"}))
    result = run(pytester, "--wasm-plugin", str(bad))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*--wasm-plugin {bad}:*manifest.json*required*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--wasm-call-timeout=-1"], "*--wasm-call-timeout must be positive*"),
        (["--wasm-memory-limit=lots"], "*--wasm-memory-limit: 'lots' is not a size*"),
    ],
)
def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = run(pytester, *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_header_lists_plugins_under_test(
    pytester: pytest.Pytester, go_agent: Path, cache_args: list[str]
) -> None:
    result = run(pytester, "--wasm-plugin", str(go_agent), "--co", *cache_args)
    result.stdout.fnmatch_lines(
        [f"wasmhost: plugins under test: fake_artist_agent ({go_agent}); compile cache: *"]
    )


def test_conformance_suite_runs_on_the_go_sample(
    pytester: pytest.Pytester, go_agent: Path, cache_args: list[str]
) -> None:
    result = run(pytester, "--wasm-plugin", str(go_agent), *cache_args)
    # 5 whole-plugin checks + 4 checks x 8 MetadataAgent exports + load/unload; OnInit and the
    # WebSocket callbacks do not apply.
    result.assert_outcomes(passed=46, skipped=2)
    result.stdout.fnmatch_lines(["SKIPPED * the plugin does not declare LifecycleManagement"])
    result.stdout.fnmatch_lines(["SKIPPED * the plugin does not declare WebSocketCallback"])


def test_no_option_collects_no_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")
    result = run(
        pytester,
    )
    result.assert_outcomes(passed=1)


def test_ini_keys_configure_plugins_and_cache(
    pytester: pytest.Pytester, c_agent: Path, tmp_path: Path
) -> None:
    pytester.makeini(
        f"""
        [pytest]
        wasm_plugins = {c_agent}
        wasm_cache_dir = {tmp_path / "ini-cache"}
        wasm_call_timeout = 5
        wasm_memory_limit = 64MiB
        """
    )
    result = run(pytester, "-k", "typical_request", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=8)
    assert (tmp_path / "ini-cache" / "plugins").is_dir()


def test_plugin_can_be_disabled(pytester: pytest.Pytester) -> None:
    result = run(pytester, "-p", "no:wasmhost", "--wasm-plugin", "x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --wasm-plugin*"])


def test_fixtures_marker_and_transcript(
    pytester: pytest.Pytester, c_agent: Path, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.wasm_plugin({str(c_agent)!r})
        @pytest.mark.wasm_config({{"Greeting": "Hi"}})
        def test_bio(wasm_plugin, wasm_calls):
            assert wasm_plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Hi, Ann"
            wasm_calls.assert_called("config", "get_plugin_config", times=1)

        @pytest.mark.wasm_plugin({str(c_agent)!r})
        def test_config_is_live(wasm_plugin, wasm_config):
            wasm_config["greeting"] = "Yo"
            assert wasm_plugin.metadata_agent.get_artist_biography(name="Ann").biography == "Yo, Ann"
        """
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(passed=2)


def test_failure_report_has_the_transcript_section(
    pytester: pytest.Pytester, c_agent: Path, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.wasm_plugin({str(c_agent)!r})
        def test_fails(wasm_plugin):
            wasm_plugin.metadata_agent.get_artist_biography(name="Ann")
            assert False, "boom"
        """
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- wasmhost -*",
            "plugin: config_agent *",
            "host calls (1):",
            "  #1 config_agent config.get_plugin_config -> ok*",
        ]
    )


def test_wasm_plugin_without_a_plugin_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(wasm_plugin): pass")
    result = run(
        pytester,
    )
    result.stdout.fnmatch_lines(["*uses wasm_plugin but no plugin was given*--wasm-plugin PATH*"])


def test_markers_are_registered(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--markers")
    result.stdout.fnmatch_lines(
        ["@pytest.mark.wasm_plugin(path):*", "@pytest.mark.wasm_config(mapping, plugin_id=None):*"]
    )


def test_conformance_reports_an_ungranted_import(
    pytester: pytest.Pytester, c_agent: Path, cache_args: list[str]
) -> None:
    bad = pytester.path / "no_config"
    bad.mkdir()
    shutil.copy(c_agent / "plugin.wasm", bad / "plugin.wasm")
    manifest = json.loads((c_agent / "manifest.json").read_text())
    manifest["permissions"] = {}
    (bad / "manifest.json").write_text(json.dumps(manifest))
    result = run(pytester, "--wasm-plugin", str(bad), "-k", "imports_are", *cache_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*imports env.get_plugin_config*does not grant the 'config' permission*Fix: add \"config\"*"]
    )


SCHEDULING_PLUGIN = r"""
(module
  (import "env" "schedule_one_time" (func $once (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  ;; ScheduleOneTimeRequest{delay_seconds: 60, payload: "p", schedule_id: "job"}
  (data (i32.const 64) "\08\3c\12\01\70\1a\03\6a\6f\62")
  (func (export "malloc") (param i32) (result i32) (local $p i32)
    (local.set $p (global.get $next)) (global.set $next (i32.add (global.get $next) (local.get 0)))
    (local.get $p))
  (func (export "free") (param i32))
  (func (export "lifecycle_management_api_version") (result i64) (i64.const 1))
  (func (export "lifecycle_management_on_init") (param i32 i32) (result i64)
    (drop (call $once (i32.const 64) (i32.const 10))) (i64.const 0))
  (func (export "scheduler_callback_api_version") (result i64) (i64.const 1))
  (func (export "scheduler_callback_on_scheduler_callback") (param i32 i32) (result i64) (i64.const 0))
)
"""


def test_clock_fixture_fires_a_job_scheduled_in_on_init(
    pytester: pytest.Pytester, cache_args: list[str]
) -> None:
    import wasmtime

    folder = pytester.path / "scheduling"
    folder.mkdir()
    (folder / "plugin.wasm").write_bytes(wasmtime.wat2wasm(SCHEDULING_PLUGIN))
    manifest = {
        "name": "scheduling",
        "author": "t",
        "version": "1",
        "description": "d",
        "website": "https://example.com",
        "capabilities": ["LifecycleManagement", "SchedulerCallback"],
        "permissions": {"scheduler": {"reason": "test"}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wasm_plugin("scheduling")
        def test_fires_once(wasm_plugin, wasm_clock, wasm_scheduler, wasm_calls):
            assert [job.schedule_id for job in wasm_scheduler.jobs()] == ["job"]
            assert wasm_clock.advance(59) == []
            (firing,) = wasm_clock.advance(2)
            assert (firing.schedule_id, firing.payload, firing.is_recurring) == ("job", b"p", False)
            assert wasm_scheduler.jobs() == []
            wasm_calls.assert_called("scheduler", "schedule_one_time", times=1)
            wasm_calls.assert_called("scheduler", "on_scheduler_callback", times=1, verdict="ok")
        """
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(passed=1)


def test_cache_and_subsonic_fixtures_are_the_scope_backends(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_wasmhost.host.subsonicapi import scope_backend

        def test_backends(wasm_cache, wasm_subsonic, wasm_artwork, wasm_runtime):
            wasm_cache.set("p", "k", "v")
            assert wasm_cache.get("p", "k") == "v"
            assert wasm_subsonic is scope_backend(wasm_runtime.env)
            with wasm_runtime.fresh() as other:  # a fresh scope gets a fake of its own
                assert scope_backend(other.env) is not wasm_subsonic
            wasm_artwork["share_url"] = "https://music.example.com"
            assert wasm_artwork.current.share_url == "https://music.example.com"
        """
    )
    result = run(pytester, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_host_options_dicts_and_the_mocks_module_still_work_for_one_release(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_wasmhost import CacheOptions

        def test_a_dict_for_fresh(wasm_runtime):
            with pytest.warns(DeprecationWarning, match="host_options as a dict is deprecated") as caught:
                fresh = wasm_runtime.fresh(host_options={"cache": {"plugin_max_entries": 3}})
            assert caught[0].filename == __file__  # it names the line that passed the dict
            with fresh as scope:
                assert scope.host_options.cache == CacheOptions(plugin_max_entries=3)
                # the services the dict does not name keep this test's doubles, as they did
                assert scope.host_options.http is wasm_runtime.host_options.http
                assert scope.host_options.websocket is wasm_runtime.host_options.websocket

        def test_the_mocks_module(wasm_http):
            with pytest.warns(DeprecationWarning, match="moved to pytest_wasmhost.doubles.http.HttpMock"):
                from pytest_wasmhost.mocks import HttpMock
            assert isinstance(wasm_http, HttpMock)
        """
    )
    result = run(pytester, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)


def test_permissions_marker_narrows_and_the_summary_says_so(
    pytester: pytest.Pytester, c_agent: Path, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_wasmhost import PluginLoadError

        @pytest.mark.wasm_plugin({str(c_agent)!r})
        @pytest.mark.wasm_permissions(
            config=None, cache=True, http={{"reason": "r", "allowedUrls": {{"https://x.example/*": ["GET"]}}}}
        )
        def test_narrowed(wasm_plugin):
            # Without config the env.get_plugin_config import cannot link: it loads, every call fails.
            with pytest.raises(PluginLoadError, match="does not grant the 'config' permission"):
                wasm_plugin.metadata_agent.get_artist_biography(name="Ann")
        """
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*permissions changed by marker in test_permissions_marker_narrows_and_the_summary_says_so.py"
            "::test_narrowed: granted: cache; replaced: http; removed: config",
        ]
    )


def test_summary_lists_exercised_host_functions(
    pytester: pytest.Pytester, c_agent: Path, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.wasm_plugin({str(c_agent)!r})
        def test_bio(wasm_plugin):
            wasm_plugin.metadata_agent.get_artist_biography(name="Ann")
        """
    )
    result = run(pytester, *cache_args, "-n", "2")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["config_agent: host functions exercised: config.get_plugin_config"])


def test_calls_json_lists_host_functions_and_exports_per_test_under_xdist(
    pytester: pytest.Pytester, c_agent: Path, cache_args: list[str], tmp_path: Path
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.wasm_plugin({str(c_agent)!r})
        def test_bio(wasm_plugin):
            wasm_plugin.metadata_agent.get_artist_biography(name="Ann")

        @pytest.mark.wasm_plugin({str(c_agent)!r})
        def test_mbid(wasm_plugin):
            assert wasm_plugin.call("metadata_agent_get_artist_mbid").error_text == "plugin:not_implemented"
        """
    )
    out = tmp_path / "report" / "calls.json"
    result = run(pytester, *cache_args, "-n", "2", f"--wasm-calls-json={out}")
    result.assert_outcomes(passed=2)
    document = json.loads(out.read_text())
    assert document["plugins"] == {
        "config_agent": {
            "host": ["config.get_plugin_config"],
            "exports": ["metadata_agent_get_artist_biography", "metadata_agent_get_artist_mbid"],
        }
    }
    by_test = {nodeid.rpartition("::")[2]: calls for nodeid, calls in document["tests"].items()}
    assert by_test == {
        "test_bio": {
            "config_agent": {
                "host": ["config.get_plugin_config"],
                "exports": ["metadata_agent_get_artist_biography"],
            }
        },
        "test_mbid": {"config_agent": {"host": [], "exports": ["metadata_agent_get_artist_mbid"]}},
    }


def test_our_errors_render_without_harness_frames(
    pytester: pytest.Pytester, go_agent: Path, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.wasm_plugin({str(go_agent)!r})
        def test_album(wasm_plugin):
            wasm_plugin.metadata_agent.get_album_info(name="A", artist="B")
        """
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NotImplementedByPlugin: plugin 'fake_artist_agent', export*"])
    assert (
        "pytest_wasmhost/" not in result.stdout.str().split("short test summary")[0].split("wasmhost ---")[0]
    )


def test_suite_under_xdist_shares_one_disk_cache(
    pytester: pytest.Pytester, go_agent: Path, c_agent: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "shared-cache"
    result = pytester.runpytest_subprocess(
        "--wasm-plugin",
        str(go_agent),
        "--wasm-plugin",
        str(c_agent),
        f"--wasm-cache-dir={cache}",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=46 + 46, skipped=4)
    artifacts = sorted(p.name for p in (cache / "plugins").rglob("*.cwasm"))
    assert len(artifacts) == 2, f"one artifact per module, got {artifacts}"


HTTP_PLUGIN = r"""
(module
  (import "env" "get" (func $get (param i32 i32) (result i64)))
  (memory (export "memory") 1)
  (global $next (mut i32) (i32.const 1024))
  ;; HttpRequest{url: "https://api.example.com/x"}
  (data (i32.const 64) "\0a\19\68\74\74\70\73\3a\2f\2f\61\70\69\2e\65\78\61\6d\70\6c\65\2e\63\6f\6d\2f\78")
  (func (export "malloc") (param i32) (result i32) (local $p i32)
    (local.set $p (global.get $next)) (global.set $next (i32.add (global.get $next) (local.get 0)))
    (local.get $p))
  (func (export "free") (param i32))
  (func (export "metadata_agent_api_version") (result i64) (i64.const 1))
  (func $fetch (param i32 i32) (result i64) (drop (call $get (i32.const 64) (i32.const 27))) (i64.const 0))
  (export "metadata_agent_get_artist_mbid" (func $fetch))
  (export "metadata_agent_get_artist_url" (func $fetch))
  (export "metadata_agent_get_artist_biography" (func $fetch))
  (export "metadata_agent_get_similar_artists" (func $fetch))
  (export "metadata_agent_get_artist_images" (func $fetch))
  (export "metadata_agent_get_artist_top_songs" (func $fetch))
  (export "metadata_agent_get_album_info" (func $fetch))
  (export "metadata_agent_get_album_images" (func $fetch))
)
"""


@pytest.fixture
def http_plugin(pytester: pytest.Pytester) -> Path:
    import wasmtime

    folder = pytester.path / "fetcher"
    folder.mkdir()
    (folder / "plugin.wasm").write_bytes(wasmtime.wat2wasm(HTTP_PLUGIN))
    manifest = {
        "name": "fetcher",
        "author": "t",
        "version": "1",
        "description": "d",
        "website": "https://example.com",
        "capabilities": ["MetadataAgent"],
        "permissions": {"http": {"reason": "t", "allowedUrls": {"https://api.example.com/*": ["GET"]}}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_wasm_http_serves_mocked_responses(
    pytester: pytest.Pytester, http_plugin: Path, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wasm_plugin("fetcher")
        def test_get(wasm_plugin, wasm_http, wasm_calls):
            wasm_http.get("https://api.example.com/x").respond(201, headers={"X-Test": "ok"}, text="hello")
            wasm_plugin.metadata_agent.get_artist_mbid(name="a")
            (call,) = wasm_calls.assert_called("http", "get", verdict="ok")
            response = call.response
            assert (response.status, response.body, response.headers["X-Test"]) == (201, b"hello", "ok")
        """
    )
    run(pytester, *cache_args).assert_outcomes(passed=1)


def test_wasm_http_is_strict_about_unmocked_and_unused_routes(
    pytester: pytest.Pytester, http_plugin: Path, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.wasm_plugin("fetcher")
        def test_unmocked(wasm_plugin, wasm_calls):
            wasm_plugin.metadata_agent.get_artist_mbid(name="a")
            (call,) = wasm_calls("http", "get")
            assert "no wasm_http route matches GET https://api.example.com/x" in call.response.error

        def test_unused(wasm_http):
            wasm_http.get("https://api.example.com/never")

        @pytest.mark.wasm_http(assert_all_mocked=False, assert_all_called=False)
        @pytest.mark.wasm_plugin("fetcher")
        def test_relaxed(wasm_plugin, wasm_http):
            wasm_http.get("https://api.example.com/never")
            wasm_plugin.metadata_agent.get_artist_mbid(name="a")
        """
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(passed=3, errors=2)
    result.stdout.fnmatch_lines(
        [
            "*the plugin made HTTP requests that no wasm_http route matches:*",
            "*wasm_http routes were never requested by the plugin:*",
        ]
    )


def test_wasm_http_side_effects_reach_the_plugin_as_transport_errors(
    pytester: pytest.Pytester, http_plugin: Path, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        """
        import httpx
        import pytest

        @pytest.mark.wasm_plugin("fetcher")
        def test_timeout(wasm_plugin, wasm_http, wasm_calls):
            wasm_http.get("https://api.example.com/x").mock(side_effect=httpx.ConnectTimeout("too slow"))
            wasm_plugin.metadata_agent.get_artist_mbid(name="a")
            (call,) = wasm_calls("http", "get")
            assert call.verdict == "error"
            assert call.response.error.startswith('Get "https://api.example.com/x"')
        """
    )
    run(pytester, *cache_args).assert_outcomes(passed=1)


def _wat_plugin(root: Path, name: str, wasm: bytes) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "plugin.wasm").write_bytes(wasm)
    manifest = {
        "name": name,
        "author": "t",
        "version": "1",
        "description": "d",
        "website": "https://example.com",
        "capabilities": ["MetadataAgent"],
        "permissions": {},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_conformance_names_a_missing_export(pytester: pytest.Pytester, cache_args: list[str]) -> None:
    from tests.support.wat import metadata_module

    folder = _wat_plugin(pytester.path, "missing", metadata_module(omit=("metadata_agent_get_album_images",)))
    result = run(pytester, "--wasm-plugin", str(folder), "-k", "exports_match", *cache_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*MetadataAgent: metadata_agent_get_album_images is not exported*"])


def test_conformance_reports_a_trapping_export(pytester: pytest.Pytester, cache_args: list[str]) -> None:
    from tests.support.wat import metadata_module

    folder = _wat_plugin(pytester.path, "trapper", metadata_module(result="unreachable"))
    result = run(pytester, "--wasm-plugin", str(folder), "-k", "typical_request and artist_mbid", *cache_args)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*PluginTrap on metadata_agent_get_artist_mbid*the guest trapped*", "*unreachable*"]
    )


def test_no_disk_cache_option_writes_nothing(
    pytester: pytest.Pytester, c_agent: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "unused"
    result = run(
        pytester,
        "--wasm-plugin",
        str(c_agent),
        "--wasm-no-disk-cache",
        f"--wasm-cache-dir={cache}",
        "-k",
        "module_compiles",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    assert not cache.exists()


def test_call_timeout_option_reaches_the_runtime(pytester: pytest.Pytester, cache_args: list[str]) -> None:
    from tests.support.wat import metadata_module

    folder = _wat_plugin(pytester.path, "spinner", metadata_module(result="(loop $l (br $l)) (i64.const 0)"))
    result = run(
        pytester,
        "--wasm-plugin",
        str(folder),
        "--wasm-call-timeout=0.2",
        "-k",
        "typical_request and artist_mbid",
        *cache_args,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*PluginTimeout*deadline of 0.2s*"])


def test_wasm_config_option_reaches_on_init_in_the_suite(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    ticker = samples_dir / "go" / "ticker"
    bare = run(pytester, "--wasm-plugin", str(ticker), "-k", "on_init", *cache_args)
    bare.assert_outcomes(failed=1, passed=5)  # test_on_init_succeeds fails; the on_init export checks pass
    bare.stdout.fnmatch_lines(["*Missing 'url' configuration*"])
    configured = run(
        pytester,
        "--wasm-plugin",
        str(ticker),
        "--wasm-config",
        "ticker.url=wss://feed.example.com/ws",
        "--wasm-config",
        "ticker.symbols=BTC",
        *cache_args,
    )
    configured.assert_outcomes(passed=38)  # test_websocket_callbacks included


def test_bad_wasm_config_is_a_usage_error(pytester: pytest.Pytester) -> None:
    result = run(pytester, "--wasm-config", "no-dot-here")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--wasm-config takes ID.KEY=VALUE*"])


GOOD_SAMPLES = {
    "go/fake_artist_agent": [],
    "go/http_agent": [],
    "go/coverart_agent": [],
    "go/scrobbler": [],
    "go/subsonic_demo": [],
    "go/artwork_user": [],
    "go/ticker": [
        "--wasm-config",
        "ticker.url=wss://feed.example.com/ws",
        "--wasm-config",
        "ticker.symbols=BTC",
    ],
    "go/presence": [
        "--wasm-config",
        "presence.clientid=1234567890",
        "--wasm-config",
        "presence.users=user:token",
    ],
    "c/config_agent": [],
}


@pytest.mark.parametrize("sample", sorted(GOOD_SAMPLES))
def test_every_good_sample_passes_the_conformance_suite(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str], sample: str
) -> None:
    result = run(pytester, "--wasm-plugin", str(samples_dir / sample), *GOOD_SAMPLES[sample], *cache_args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes.get("errors", 0) == 0, result.stdout.str()[-3000:]
    assert outcomes.get("passed", 0) >= 10


def test_websocket_fixture_and_fresh_scopes(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    ticker = samples_dir / "go" / "ticker"
    pytester.makepyfile(
        f"""
        import json

        CONFIG = {{"url": "wss://feed.example.com/ws", "symbols": "BTC"}}

        def test_subscribes_on_init(wasm_load, wasm_websocket, wasm_runtime):
            wasm_load({str(ticker)!r}, config=CONFIG)  # OnInit connects and subscribes
            peer = wasm_websocket.peer("ticker")
            assert json.loads(peer.sent[0]) == {{"type": "subscribe", "symbols": ["BTC"]}}
            with wasm_runtime.fresh(config={{"ticker": CONFIG}}) as scope:
                scope.plugin({str(ticker)!r})
                assert len(scope.transcript.calls("websocket", "connect")) == 1
            assert len(wasm_runtime.transcript.calls("websocket", "connect")) == 1
        """
    )
    run(pytester, *cache_args).assert_outcomes(passed=1)


def test_a_plugin_past_a_cap_warns_the_test_and_dropped_calls_still_count_as_exercised(
    pytester: pytest.Pytester, cache_args: list[str]
) -> None:
    from tests.integration.test_attack_host_memory import CACHE_FLOOD, CALL_FLOOD, flood_module
    from tests.support.plugins import write_plugin

    permissions = {"cache": {"reason": "r"}, "scheduler": {"reason": "r"}}
    folder = write_plugin(pytester.path / "plugins", flood_module(), permissions=permissions)
    pytester.makepyfile(
        f"""
        import struct

        from pytest_wasmhost import CacheOptions

        def test_flood(wasm_runtime):
            plugin = wasm_runtime.load({str(folder)!r})
            plugin.call_raw({CACHE_FLOOD!r}, struct.pack("<II", 0, 10))  # ten cache writes, then
            plugin.call_raw({CALL_FLOOD!r}, struct.pack("<II", 0, 20_000))  # enough calls to drop them
            assert wasm_runtime.transcript.dropped == 10
            assert {{c.function for c in wasm_runtime.transcript}} == {{"has"}}
            capped_options = wasm_runtime.host_options.replace(cache=CacheOptions(plugin_max_entries=3))
            with wasm_runtime.fresh(host_options=capped_options) as scope:
                capped = scope.plugin({str(folder)!r})
                data, error = capped.call_raw({CACHE_FLOOD!r}, struct.pack("<II", 0, 5))
            assert error is None
            assert struct.unpack("<II", data) == (2, 3)  # two refused (success=false), three stored
        """
    )
    result = run(pytester, *cache_args)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*HostLimitWarning: plugin 'test_plugin' reached the host's cache cap plugin_max_entries=3 *",
            "test_plugin: host functions exercised: cache.has, cache.set_string;*",
        ]
    )
