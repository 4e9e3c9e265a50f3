"""wasm_clock freezes the plugin's time, never pytest's own clock or the host's waits."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.pytester.test_pytest_plugin import run


def test_durations_and_junitxml_times_stay_real_under_wasm_clock(
    pytester: pytest.Pytester, cache_args: list[str]
) -> None:
    pytester.makepyfile(
        """
        import datetime as dt
        import time

        def test_frozen_in_the_past(wasm_clock):
            # The test's own reads stay frozen: only pytest's clock is real.
            assert time.time() == dt.datetime(1990, 1, 1, tzinfo=dt.timezone.utc).timestamp()
            wasm_clock.advance(3600)
            assert time.time() == dt.datetime(1990, 1, 1, 1, tzinfo=dt.timezone.utc).timestamp()

        def test_frozen_now(wasm_clock):
            pass
        """
    )
    # A start far from now: had pytest's clock been frozen, durations would be decades long.
    pytester.makeconftest(
        """
        import pytest
        from pytest_wasmhost.fixtures import WasmClock

        @pytest.fixture
        def wasm_clock(wasm_runtime):
            clock = WasmClock(wasm_runtime, "1990-01-01T00:00:00Z").start()
            yield clock
            clock.stop()
        """
    )
    report = pytester.path / "report.xml"
    result = run(pytester, "--durations=0", "--durations-min=0", f"--junitxml={report}", *cache_args)
    result.assert_outcomes(passed=2)
    durations = [
        float(line.split("s", 1)[0])
        for line in result.stdout.lines
        if line[:1].isdigit() and ("setup" in line or "call" in line or "teardown" in line)
    ]
    assert durations, result.stdout.str()
    assert max(durations) < 60, result.stdout.str()
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    times = [float(case.get("time", "nan")) for case in suite.iter("testcase")]
    assert len(times) == 2
    assert all(0 <= t < 60 for t in times), times
    assert 0 <= float(suite.get("time", "nan")) < 60


def test_the_pool_times_out_under_wasm_clock(
    pytester: pytest.Pytester, samples_dir: Path, cache_args: list[str]
) -> None:
    plugin = samples_dir / "go" / "fake_artist_agent"
    pytester.makepyfile(
        f"""
        import pytest
        from pytest_wasmhost import PoolTimeout
        from pytest_wasmhost.runtime.pool import PoolSettings

        def test_exhausted_pool(wasm_runtime, wasm_clock):
            with wasm_runtime.fresh(pool=PoolSettings(max_live=1, get_timeout=0.2)) as scope:
                plugin = scope.plugin({str(plugin)!r})
                with plugin.pool.lease():
                    with pytest.raises(PoolTimeout):
                        plugin.metadata_agent.get_artist_mbid(name="Test Artist")
        """
    )
    # A subprocess with a hard timeout: a deadline read from a frozen clock would hang forever.
    result = pytester.runpytest_subprocess("-p", "no:faulthandler", *cache_args, timeout=120)
    result.assert_outcomes(passed=1)
