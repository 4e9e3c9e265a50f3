"""Every code block of README.md runs: the Python ones as test files, the shell and CI ones as commands.

Paths in the README are the ones a user of this repository types (``sample_plugins/...``) or a placeholder
(``path/to/my-plugin``); here they become absolute paths to the samples.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.pytester.test_pytest_plugin import run

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_plugins"
MY_PLUGIN = SAMPLES / "c" / "config_agent"  # what path/to/my-plugin stands for


@dataclass(frozen=True)
class Block:
    language: str
    heading: str
    text: str

    @property
    def id(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.heading.lower()).strip("-")


def readme_blocks() -> list[Block]:
    blocks, heading, fence, lines = [], "", None, []
    for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines():
        if fence is None and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif fence is None and line.startswith("```"):
            fence, lines = line[3:].strip(), []
        elif fence is not None and line.startswith("```"):
            blocks.append(Block(fence, heading, "\n".join(lines) + "\n"))
            fence = None
        elif fence is not None:
            lines.append(line)
    return blocks


def localised(text: str) -> str:
    return text.replace("sample_plugins/", f"{SAMPLES}/").replace("path/to/my-plugin", str(MY_PLUGIN))


BLOCKS = readme_blocks()
PYTHON = [pytest.param(b, id=f"{b.id}-{i}") for i, b in enumerate(BLOCKS) if b.language == "python"]
# The first block holds the install commands .ci/run itself runs from this README (its main job and tests).
SHELL = [
    pytest.param(b, line, id=f"{b.id}-{shlex.split(line)[1]}")
    for b in [b for b in BLOCKS if b.language == "bash"][1:]
    for line in b.text.splitlines()
    if line.strip()
]


def test_every_block_is_run_by_a_test_here_or_by_ci() -> None:
    assert {b.language for b in BLOCKS} <= {"python", "bash", "yaml"}, "a block of a kind no test runs"
    first = next(b for b in BLOCKS if b.language == "bash")
    assert [line.split(" && ")[0] for line in first.text.splitlines()] == ["python3 -m venv .venv"] * 2
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "README main-job command" in ci
    assert "README test command" in ci


@pytest.mark.parametrize("block", PYTHON)
def test_a_python_block_passes_as_a_test_file(
    pytester: pytest.Pytester, tmp_path: Path, block: Block
) -> None:
    pytester.makepyfile(test_readme_block=localised(block.text))
    result = run(pytester, f"--wasm-cache-dir={tmp_path / 'cache'}", "-p", "no:cacheprovider", "-W", "error")
    expected = block.text.count("\ndef test_") + block.text.startswith("def test_")
    result.assert_outcomes(passed=expected)


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``command`` in bash, in ``cwd``, with this venv's commands first and the run's compile cache."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    child = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert child.returncode == 0, f"{command}\n{child.stdout[-3000:]}\n{child.stderr[-2000:]}"
    return child


@pytest.mark.parametrize(("block", "line"), SHELL)
def test_a_shell_command_of_the_readme_succeeds(tmp_path: Path, block: Block, line: str) -> None:
    command = localised(line.split("  #", 1)[0].strip())
    child = shell(command, tmp_path)
    if " call " in command:  # the README says what it prints
        readme = (REPO / "README.md").read_text(encoding="utf-8")
        said = re.search(r"The second prints `([^`]*)`", readme)
        assert said is not None
        assert json.loads(child.stdout) == json.loads(said.group(1))


def test_the_ci_workflow_runs_its_commands(tmp_path: Path) -> None:
    (workflow,) = [b for b in BLOCKS if b.language == "yaml"]
    runs = [line.split("- run:", 1)[1].strip() for line in workflow.text.splitlines() if "- run:" in line]
    install, test = runs
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert install == "pip install pytest-wasmhost pytest-xdist"
    assert 'name = "pytest-wasmhost"' in pyproject
    assert "pytest-xdist" in pyproject
    command = test.replace("${{ matrix.plugin }}", str(SAMPLES / "go" / "fake_artist_agent")).replace(
        "${{ strategy.job-index }}", "0"
    )
    shell(command, tmp_path)
    assert (tmp_path / "report-0.xml").is_file()
