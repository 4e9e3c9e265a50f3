"""The wasmhost command against the bundled samples (run in-process through main())."""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from pytest_wasmhost.cli import EXIT_LOAD, EXIT_NO_RESULT, EXIT_OK, EXIT_PLUGIN_ERROR, main
from tests.support.plugins import write_plugin


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
    assert main(["inspect", str(folder), "--json"]) == EXIT_PLUGIN_ERROR
    info = json.loads(capsys.readouterr().out)
    assert info["env_imports"] == [{"name": "get_plugin_config", "service": "config", "granted": False}]
    assert "does not grant the 'config' permission" in info["load"]


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
