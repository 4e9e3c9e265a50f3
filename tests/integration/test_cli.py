"""The wasmhost command against the bundled samples (run in-process through main())."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from pytest_wasmhost.cli import (
    EXIT_LOAD,
    EXIT_NO_RESULT,
    EXIT_OK,
    EXIT_PLUGIN_ERROR,
    STDERR_TAIL_CHARS,
    _stderr_tail,
    main,
)
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module, packed


@pytest.fixture
def go_agent(samples_dir: Path) -> str:
    return str(samples_dir / "go" / "fake_artist_agent")


@pytest.fixture
def c_agent(samples_dir: Path) -> str:
    return str(samples_dir / "c" / "config_agent")


def test_call_prints_the_response_as_json(go_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["call", go_agent, "metadata_agent_get_artist_mbid", '{"id": "a1", "name": "Test Artist"}'])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert json.loads(out) == {"mbid": "1234567890"}


def test_call_with_repeated_messages(go_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["call", go_agent, "metadata_agent_get_similar_artists", '{"name": "X", "limit": 1}'])
    assert code == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {
        "artists": [
            {"name": "Similar Artist 1", "mbid": "mbid1"},
            {"name": "Similar Artist 2", "mbid": "mbid2"},
        ]
    }


def test_call_not_implemented_method_exits_3_with_one_line(
    go_agent: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["call", go_agent, "metadata_agent_get_album_info", '{"name": "A", "artist": "B"}'])
    captured = capsys.readouterr()
    assert code == EXIT_NO_RESULT
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert "plugin:not_implemented" in captured.err
    assert "fake_artist_agent" in captured.err


def test_call_not_found_exits_3(go_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", go_agent, "metadata_agent_get_artist_mbid", '{"name": ""}']) == EXIT_NO_RESULT
    assert "plugin:not_found" in capsys.readouterr().err


def test_call_passes_config_to_the_host_service(c_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["call", c_agent, "metadata_agent_get_artist_biography", '{"name": "Ann"}', "--config", "greeting=Hi"]
    )
    assert code == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"biography": "Hi, Ann"}


def test_call_plain_plugin_error_exits_1(c_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", c_agent, "metadata_agent_get_artist_url", '{"name": "Ann"}']) == EXIT_PLUGIN_ERROR
    assert "config_agent: no url for Ann" in capsys.readouterr().err


def test_call_with_bad_json_names_the_message(go_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", go_agent, "metadata_agent_get_artist_mbid", '{"nmae": "x"}']) == EXIT_LOAD
    err = capsys.readouterr().err
    assert "api.ArtistMBIDRequest" in err
    assert "id, name" in err


def test_call_unknown_export(go_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", go_agent, "metadata_agent_get_everything"]) == EXIT_LOAD
    assert "is not a capability method export" in capsys.readouterr().err


def test_call_missing_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["call", str(tmp_path / "nope"), "metadata_agent_get_artist_mbid"]) == EXIT_LOAD
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert err.count("\n") == 1


def test_inspect_shows_imports_exports_and_grants(c_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", c_agent]) == EXIT_OK
    out = capsys.readouterr().out
    assert "config_agent" in out
    size = (Path(c_agent) / "plugin.wasm").stat().st_size
    assert f"plugin.wasm {size / 1000:.1f} kB)" in out  # sizes for people: humanize, decimal units
    assert "MetadataAgent" in out
    assert "8 method exports  ok" in out
    assert "env.get_plugin_config" in out
    assert "granted" in out
    assert "load     ok" in out


def test_inspect_json_reports_an_ungranted_import(
    c_agent: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wasm = (Path(c_agent) / "plugin.wasm").read_bytes()
    folder = write_plugin(tmp_path, wasm, plugin_id="no_config", permissions={})
    assert main(["inspect", str(folder), "--json"]) == EXIT_LOAD
    info = json.loads(capsys.readouterr().out)
    assert info["env_imports"] == [{"name": "get_plugin_config", "service": "config", "granted": False}]
    assert info["load"].startswith("FAILED (every call): ")
    assert "does not grant the 'config' permission" in info["load"]


def get_only_http_agent(samples_dir: Path, root: Path) -> Path:
    """The http_agent sample (it imports env.get and env.post) with patterns that allow only GET."""
    sample = samples_dir / "go" / "http_agent"
    permissions = json.loads((sample / "manifest.json").read_text())["permissions"]
    permissions["http"]["allowedUrls"] = {"https://api.example.com/*": ["GET"]}
    wasm = (sample / "plugin.wasm").read_bytes()
    return write_plugin(root, wasm, plugin_id="get_only", permissions=permissions)


def test_inspect_warns_of_an_imported_method_no_pattern_allows(
    samples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = get_only_http_agent(samples_dir, tmp_path)
    assert main(["inspect", str(folder)]) == EXIT_OK  # a warning, not a load failure
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("warning")] == [
        "warning  env.post is imported, but no pattern in permissions.http.allowedUrls lists POST "
        '(or "*"), so every POST request the plugin makes is refused; add "POST" to the methods of the '
        "patterns it sends them to."
    ]
    assert main(["inspect", str(folder), "--json"]) == EXIT_OK
    warned = json.loads(capsys.readouterr().out)["warnings"]
    assert [w.split(" is imported")[0] for w in warned] == ["env.post"]


def test_inspect_does_not_warn_when_every_imported_method_is_allowed(
    samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(samples_dir / "go" / "http_agent"), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["warnings"] == []


def test_inspect_go_sample_lists_every_capability_export(
    go_agent: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", go_agent, "--json"]) == EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert info["capabilities"] == [
        {"name": "MetadataAgent", "version_export": True, "methods": 8, "missing": []}
    ]
    # Go plugins export every capability (the glue's exports are linker roots); only declared ones are called.
    assert info["undeclared_capability_exports"] == [
        "Scrobbler",
        "SchedulerCallback",
        "LifecycleManagement",
        "WebSocketCallback",
    ]
    assert info["env_imports"] == []


def test_console_script_entry_point_is_main() -> None:
    (script,) = entry_points(group="console_scripts", name="wasmhost")
    assert script.load() is main


def test_check_runs_the_conformance_suite(go_agent: str, tmp_path: Path) -> None:
    from pytest_wasmhost.cli import main as cli_main

    junit = tmp_path / "report.xml"
    code = cli_main(["check", go_agent, "--junitxml", str(junit), "--cache-dir", str(tmp_path / "c"), "-q"])
    assert code == 0
    assert 'tests="48"' in junit.read_text()


def test_check_fails_on_a_broken_plugin(c_agent: str, tmp_path: Path) -> None:
    from pytest_wasmhost.cli import main as cli_main

    wasm = (Path(c_agent) / "plugin.wasm").read_bytes()
    folder = write_plugin(tmp_path, wasm, plugin_id="no_config", permissions={})
    code = cli_main(["check", str(folder), "-k", "imports_are", "--cache-dir", str(tmp_path / "c"), "-q"])
    assert code == 1


# -- issue 14 point 7 ------------------------------------------------------------------------------


def test_inspect_passes_config_to_on_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # OnInit answers InitResponse{error: "need config"} unless its request (the config map) is non-empty.
    need_config = packed(256, 13)
    wasm = metadata_module(
        capabilities=("LifecycleManagement",),
        data=b"\x0a\x0bneed config",
        results={
            "lifecycle_management_on_init": (
                f"(if (result i64) (i32.eqz (local.get 1)) (then {need_config}) (else (i64.const 0)))"
            )
        },
    )
    folder = str(write_plugin(tmp_path, wasm, plugin_id="needs_config", capabilities=["LifecycleManagement"]))
    assert main(["inspect", folder]) == EXIT_PLUGIN_ERROR
    assert "need config" in capsys.readouterr().out
    assert main(["inspect", folder, "--config", "url=wss://x.example", "--config", "a=b"]) == EXIT_OK
    assert "load     ok" in capsys.readouterr().out


def test_inspect_config_is_parsed_like_calls(c_agent: str, capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["inspect", c_agent], ["call", c_agent, "metadata_agent_get_artist_url"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--config", "no-equals-sign"])
        assert exit_info.value.code == EXIT_LOAD
        assert "--config takes KEY=VALUE, got 'no-equals-sign'" in capsys.readouterr().err


# Writes 25 numbered lines to stderr, reads its config, then fails: answers the error "boom" or traps.
_STDERR_LINES = b"".join(b"stderr line %02d\n" % i for i in range(1, 26))
_NOISY_PRELUDE = (
    f"(i32.store (i32.const 16) (i32.const 512)) (i32.store (i32.const 20) (i32.const {len(_STDERR_LINES)}))"
    " (drop (call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 24)))"
    " (drop (call $cfg (i32.const 0) (i32.const 0)))"
)
_FAILURES = {"error": packed(256, 4, error=True), "trap": "unreachable"}


def _noisy_plugin(root: Path, failure: str = "error") -> str:
    escaped = "".join(f"\\{b:02x}" for b in _STDERR_LINES)
    wasm = metadata_module(
        data=b"boom",
        imports="""
  (import "env" "get_plugin_config" (func $cfg (param i32 i32) (result i64)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
""",
        extra=f'  (data (i32.const 512) "{escaped}")',
        results={"metadata_agent_get_artist_mbid": f"{_NOISY_PRELUDE} {_FAILURES[failure]}"},
    )
    return str(write_plugin(root, wasm, plugin_id="noisy", permissions={"config": {"reason": "r"}}))


@pytest.mark.parametrize(("failure", "says"), [("error", "boom"), ("trap", "the guest trapped")])
def test_failed_call_prints_the_stderr_tail_and_host_calls(
    failure: str, says: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _noisy_plugin(tmp_path, failure)
    assert main(["call", folder, "metadata_agent_get_artist_mbid", '{"name": "x"}']) == EXIT_PLUGIN_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: plugin 'noisy'")
    assert says in err.split("\nplugin stderr")[0]
    tail = err[err.index("plugin stderr (last 20 of 25 lines; --stderr prints all):") :]
    assert "stderr line 06\nstderr line 07" in tail
    assert "stderr line 25" in tail
    assert "stderr line 05" not in tail
    assert "host calls:\n  #1 noisy config.get_plugin_config -> ok" in tail


def test_failed_call_with_stderr_flag_prints_stderr_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _noisy_plugin(tmp_path)
    args = ["call", folder, "metadata_agent_get_artist_mbid", '{"name": "x"}', "--stderr"]
    assert main(args) == EXIT_PLUGIN_ERROR
    err = capsys.readouterr().err
    assert err.count("stderr line 01") == 1  # the full stderr, no tail after it
    assert "plugin stderr (last" not in err
    assert "config.get_plugin_config -> ok" in err


def test_no_result_after_a_denied_request_shows_why(
    samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = str(samples_dir / "go" / "http_agent")
    # An endpoint outside allowedUrls: the host denies the request, no network is used.
    args = ["call", agent, "metadata_agent_get_artist_url", '{"name": "x"}']
    assert main([*args, "--config", "endpoint=https://elsewhere.example.org"]) == EXIT_NO_RESULT
    err = capsys.readouterr().err
    assert err.startswith("plugin 'http_agent', export 'metadata_agent_get_artist_url': the plugin answered")
    assert "plugin stderr:\n" in err
    assert "http_agent: artist lookup: Request blocked by plugin permissions" in err
    assert "http_agent http.get -> denied: Request blocked by plugin permissions" in err


def test_stderr_tail_is_bounded_in_characters() -> None:
    tail = _stderr_tail("A" * 100_000)
    assert tail.startswith("plugin stderr:\n...")
    assert len(tail) < STDERR_TAIL_CHARS + 100


def test_inspect_shows_allowed_urls_and_methods(
    samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agent = str(samples_dir / "go" / "http_agent")
    assert main(["inspect", agent]) == EXIT_OK
    out = capsys.readouterr().out
    assert "allowedUrls  https://api.example.com/*  GET, POST\n" in out
    assert "allowLocalNetwork  false\n" in out
    assert main(["inspect", agent, "--json"]) == EXIT_OK
    (http,) = [p for p in json.loads(capsys.readouterr().out)["permissions"] if p["service"] == "http"]
    assert http["allowed_urls"] == {"https://api.example.com/*": ["GET", "POST"]}
    assert http["allow_local_network"] is False


def test_inspect_shows_websocket_and_subsonic_grants(
    samples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["inspect", str(samples_dir / "go" / "ticker"), "--json"])
    (ws,) = [p for p in json.loads(capsys.readouterr().out)["permissions"] if p["service"] == "websocket"]
    assert ws["allowed_urls"] == ["wss://feed.example.com/*", "ws://127.0.0.1:*"]
    assert main(["inspect", str(samples_dir / "go" / "subsonic_demo")]) == EXIT_OK
    out = capsys.readouterr().out
    assert "allowedUsernames  admin\n" in out
    assert "allowAdmins  true\n" in out


def test_inspect_shows_a_method_list_that_allows_nothing(
    c_agent: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wasm = (Path(c_agent) / "plugin.wasm").read_bytes()
    permissions = {
        "config": {"reason": "r"},
        "http": {"reason": "r", "allowedUrls": {"https://a.example/*": ["*"], "https://b.example/*": []}},
    }
    folder = write_plugin(tmp_path, wasm, plugin_id="odd_http", permissions=permissions)
    main(["inspect", str(folder)])
    out = capsys.readouterr().out
    assert "allowedUrls  https://a.example/*  *\n" in out
    assert "allowedUrls  https://b.example/*  (no method: every request is denied)\n" in out


# check: the README's exit codes (0 ok, 1 a check failed, 2 cannot load / bad command line); 0 and 1
# are pinned above.


def test_check_invalid_manifest_exits_2(c_agent: str, tmp_path: Path) -> None:
    wasm = (Path(c_agent) / "plugin.wasm").read_bytes()
    folder = write_plugin(tmp_path, wasm, plugin_id="bad_manifest", capabilities=["NoSuchCapability"])
    assert main(["check", str(folder), "--cache-dir", str(tmp_path / "c"), "-q"]) == EXIT_LOAD


def test_check_missing_path_exits_2(tmp_path: Path) -> None:
    assert main(["check", str(tmp_path / "nope"), "-q"]) == EXIT_LOAD


def test_check_malformed_config_exits_2(go_agent: str, tmp_path: Path) -> None:
    assert (
        main(["check", go_agent, "--config", "no-id", "--cache-dir", str(tmp_path / "c"), "-q"]) == EXIT_LOAD
    )


def test_check_keyword_matching_nothing_exits_2(
    go_agent: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["check", go_agent, "-k", "no_such_check", "--cache-dir", str(tmp_path / "c"), "-q"]
    assert main(args) == EXIT_LOAD
    assert "error: no conformance check matches -k 'no_such_check'" in capsys.readouterr().err


def test_check_bad_command_line_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["check"])
    assert exit_info.value.code == EXIT_LOAD
