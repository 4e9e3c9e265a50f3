"""``pytest --wasm-plugin`` on each hostile sample: the suite fails the check the sample breaks, by name.

Each row says which conformance check must fail and what its report must say; the samples that misbehave
within the rules (garbage in an error string, a flood of stderr) must pass the whole suite. Small limits
(0.3 s per call, 32 MiB of memory) keep the runaway samples quick.
"""

from __future__ import annotations

from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.pytester.test_pytest_plugin import run

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")

LIMITS = ["--wasm-call-timeout=0.3", "--wasm-memory-limit=32MiB"]

# sample -> (the check that must fail, a line of its short summary)
BROKEN: dict[str, tuple[str, str]] = {
    "infinite_loop": (
        "test_typical_request[infinite_loop-metadata_agent_get_artist_mbid]",
        "*PluginTimeout on metadata_agent_get_artist_mbid*ran past its deadline of 0.3s*",
    ),
    "memory_hog": (
        "test_typical_request[memory_hog-metadata_agent_get_artist_mbid]",
        "*PluginMemoryError on metadata_agent_get_artist_mbid*ran out of linear memory at the cap of 32 MiB*",
    ),
    "trap": (
        "test_typical_request[trap-metadata_agent_get_artist_mbid]",
        "*PluginTrap on metadata_agent_get_artist_mbid*the guest trapped*",
    ),
    "oob_result": (
        "test_typical_request[oob_result-metadata_agent_get_artist_mbid]",
        "*AbiError on metadata_agent_get_artist_mbid*the result at 0x1000000 with size 16 lies outside*",
    ),
    "huge_response": (
        "test_typical_request[huge_response-metadata_agent_get_artist_mbid]",
        "*AbiError on metadata_agent_get_artist_mbid*size 2147483647 lies outside*",
    ),
    "no_malloc": (
        "test_exports_match_capabilities[no_malloc]",
        "*does not implement: MetadataAgent: malloc is not exported*",
    ),
    "wrong_api_version": (
        "test_exports_match_capabilities[wrong_api_version]",
        "*does not implement: MetadataAgent: API version mismatch, host: 1, plugin: 2*",
    ),
    "missing_capability": (
        "test_exports_match_capabilities[missing_capability]",
        "*does not implement: Scrobbler: scrobbler_api_version is not exported*",
    ),
    "ungranted_import": (
        "test_imports_are_wasi_or_granted[ungranted_import]",
        "*imports env.get from the 'http' host service*does not grant the 'http' permission*",
    ),
    "reentrant": (
        "test_typical_request[reentrant-metadata_agent_get_artist_mbid]",
        "*PluginTrap on metadata_agent_get_artist_mbid*env.schedule_one_time (scheduler) failed*",
    ),
    "bad_cron_on_close": (
        "test_websocket_callbacks[bad_cron_on_close]",
        "*web_socket_callback_on_close*callback for connection 'feed' failed (PluginTrap)*"
        "env.schedule_recurring (scheduler) failed: failed to schedule recurring job: "
        "expected exactly 5 fields, found 6: [[]*/2 * * * * *[]]*",
    ),
    "leaky": (
        "test_memory_does_not_grow_per_call[leaky-metadata_agent_get_artist_mbid]",
        "*linear memory grew by 6.2 MiB (64.0 KiB per call) over 100 identical calls*",
    ),
}

# Misbehaving within the rules: the suite passes them.
CONTAINED = ["error_garbage", "stderr_flood"]


def test_every_hostile_sample_is_classified(samples_dir: Path) -> None:
    on_disk = sorted(p.name for p in (samples_dir / "hostile").iterdir() if (p / "plugin.wasm").is_file())
    assert on_disk == sorted([*BROKEN, *CONTAINED])


@pytest.mark.parametrize("sample", sorted(BROKEN))
def test_the_suite_fails_the_broken_check_by_name(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str], sample: str
) -> None:
    check, pattern = BROKEN[sample]
    recorder = pytester.inline_run(
        "-p", "no:faulthandler", "--wasm-plugin", str(samples_dir / "hostile" / sample), *LIMITS, *cache_args
    )
    reports = {
        r.nodeid.rpartition("::")[2]: r
        for r in recorder.getreports("pytest_runtest_logreport")
        if r.when == "call" or r.failed
    }
    assert check in reports, f"no check named {check}: {sorted(reports)}"
    assert reports[check].failed, f"{check} did not fail"
    assert fnmatch(reports[check].longreprtext.replace("\n", " "), pattern), reports[check].longreprtext
    passed = {name for name, r in reports.items() if r.passed}
    assert f"test_manifest_is_valid[{sample}]" in passed, "checks the defect does not touch still pass"


@pytest.mark.parametrize("sample", CONTAINED)
def test_the_suite_passes_a_sample_that_misbehaves_within_the_rules(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str], sample: str
) -> None:
    result = run(pytester, "--wasm-plugin", str(samples_dir / "hostile" / sample), *LIMITS, *cache_args)
    # Skipped: OnInit and the WebSocket callbacks (a MetadataAgent declares neither).
    result.assert_outcomes(passed=result.parseoutcomes().get("passed", 0), skipped=2)
    assert result.ret == pytest.ExitCode.OK


def test_an_ungranted_import_is_one_failure_and_reasoned_skips(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    sample = str(samples_dir / "hostile" / "ungranted_import")
    result = run(pytester, "--wasm-plugin", sample, "-rs", *LIMITS, *cache_args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, outcomes
    assert "errors" not in outcomes, outcomes
    result.stdout.fnmatch_lines(
        [
            "*test_imports_are_wasi_or_granted*ungranted_import*",
            "*SKIPPED*every call fails: the module cannot be instantiated (env.get); "
            "see test_imports_are_wasi_or_granted",
        ]
    )
    # The link error is told once, in the one failing check; the skips only point at it.
    assert result.stdout.str().count("does not grant the 'http' permission") == 1


@pytest.mark.parametrize("sample", ["no_malloc", "wrong_api_version", "missing_capability"])
def test_a_capability_failing_its_load_checks_is_one_failure_and_reasoned_skips(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str], sample: str
) -> None:
    plugin = str(samples_dir / "hostile" / sample)
    result = run(pytester, "--wasm-plugin", plugin, "-rfs", *LIMITS, *cache_args)
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed") == 1, outcomes  # test_exports_match_capabilities alone
    result.stdout.fnmatch_lines(
        [
            f"FAILED*test_exports_match_capabilities[[]{sample}[]]*",
            "*SKIPPED*every call of *fails the load checks (*); see test_exports_match_capabilities",
        ]
    )
