"""The sample coverage gate: did the sample tests of this run exercise every host function and export?

The pytest plugin attaches each test's transcript (host functions and capability exports it saw) to the
test's report; under xdist those reports reach the controller. The gate collects them from the tests
under ``tests/samples/`` as they run and judges at the end of the session, so the coverage check costs
no second run of the sample tests. It only judges a run that included every sample test file and
selected nothing away (no ``-k``, ``-m``, ``--deselect``, ``--lf`` or node ids): a partial run says so
in one line instead. A gap fails the run and names what no test exercised.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

SAMPLE_TESTS = Path(__file__).resolve().parents[1] / "samples"
NOT_SAMPLE_TESTS = frozenset({"test_coverage.py", "test_hostile.py"})


def sample_test_files() -> frozenset[str]:
    return frozenset(p.name for p in SAMPLE_TESTS.glob("test_*.py") if p.name not in NOT_SAMPLE_TESTS)


def missing(
    seen: Iterable[str],
    host_functions: Mapping[str, tuple[str, ...]],
    capability_exports: Mapping[str, tuple[str, ...]],
) -> list[str]:
    """What no test saw: "service.function" host functions, then capability method exports."""
    used = set(seen)
    gaps = [f"{s}.{f}" for s, fs in host_functions.items() for f in fs if f"{s}.{f}" not in used]
    methods = [export for exports in capability_exports.values() for export in exports[1:]]  # not versions
    gaps += [export for export in methods if export not in used]
    return gaps


def _file_of(nodeid: str) -> str | None:
    path, _, _ = nodeid.partition("::")
    parts = Path(path).parts
    if len(parts) >= 2 and parts[-2] == "samples" and parts[-1] not in NOT_SAMPLE_TESTS:
        return parts[-1]
    return None


class SampleCoverageGate:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.files: set[str] = set()
        self.seen: set[str] = set()
        self.verdict: list[str] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = _file_of(report.nodeid)
        if name is not None:
            self.files.add(name)

    def _seen_by_sample_tests(self) -> set[str]:
        # The plugin's own session summary already reads every report's transcript (also xdist workers').
        summary = self.config.pluginmanager.get_plugin("wasmhost-summary")
        by_test: dict[str, dict[str, list[str]]] = getattr(summary, "by_test", {})
        return {
            function
            for nodeid, plugins in by_test.items()
            if _file_of(nodeid) is not None
            for functions in plugins.values()
            for function in functions
        }

    def _partial(self) -> str | None:
        option = self.config.option
        for flag, value in (
            ("-k", getattr(option, "keyword", "")),
            ("-m", getattr(option, "markexpr", "")),
            ("--deselect", getattr(option, "deselect", None)),
            ("--lf", getattr(option, "lf", False)),
        ):
            if value:
                return f"{flag} selects a part of the tests"
        if any("::" in str(arg) for arg in self.config.args):
            return "node ids select a part of the tests"
        absent = sorted(sample_test_files() - self.files)
        if absent:
            return f"{len(absent)} sample test files did not run ({', '.join(absent[:3])}...)"
        return None

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(self.config, "workerinput") or not self.files:
            return  # a worker sees only its own tests; a run without sample tests has nothing to judge
        reason = self._partial()
        if reason is not None:
            self.verdict = [f"sample coverage gate not checked: {reason}"]
            return
        from tests.samples.test_coverage import CAPABILITY_EXPORTS, HOST_FUNCTIONS

        self.seen = self._seen_by_sample_tests()
        gaps = missing(self.seen, HOST_FUNCTIONS, CAPABILITY_EXPORTS)
        if gaps:
            self.verdict = [
                "sample coverage gate FAILED: no test under tests/samples/ exercises " + ", ".join(gaps),
                "Fix: add a sample test that calls them (the transcript of each test is what counts).",
            ]
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        else:
            self.verdict = [
                f"sample coverage gate: every host function and capability export exercised "
                f"({len(self.seen)} names seen by the tests of {len(self.files)} sample test files)"
            ]

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        for line in self.verdict:
            terminalreporter.write_line(line, red="FAILED" in line)
