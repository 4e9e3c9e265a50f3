#!/usr/bin/env python3
"""Single-token mutation testing of one module against a small pytest selection (issue 15.8).

Usage::

    python scripts/mutate.py --module pytest_wasmhost/runtime/pool.py \\
        --tests "tests/unit/test_pool.py tests/unit/test_pool_state_machine.py"
    python scripts/mutate.py --module M --tests T --limit 40 --seed 3   # a random sample of 40
    python scripts/mutate.py --module M --tests T --only 12,57           # re-run mutants by id
    python scripts/mutate.py --module M --list                           # print the mutants, run nothing

Each mutant changes one token of the module: a comparison made off by one or negated (``<`` <-> ``<=``,
``>`` <-> ``>=``, ``==`` <-> ``!=``, ``is`` <-> ``is not``, ``in`` <-> ``not in``), ``+`` <-> ``-`` (also
``+=``/``-=``), ``and`` <-> ``or``, ``True`` <-> ``False``, a small int literal (``0`` <-> ``1``,
``n`` -> ``n+1``), ``return x`` -> ``return None`` in a function typed ``... | None``, or a call statement
(``notify()``) dropped (``log.*`` calls are not: nothing tests log lines for their own sake). A line with
``# pragma: no mutate`` is left alone. The tests run with ``-x -q -p no:cacheprovider`` on the mutated
file in place, one mutant at a time; a failing test, an error (a mutant that breaks the import or the
collection: pytest's own exit code says which) or a timeout (``--timeout``, 60 s) kills it. Hypothesis
runs derandomised (a fixed seed), so the same mutant gets the same verdict in every run.
The file is always restored (``finally``, also on Ctrl-C or SIGTERM), and the script refuses to start on a
file with uncommitted changes or a selection that fails unmutated. Not part of CI: a full run of
``runtime/pool.py`` takes ~15 minutes on one core.
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import random
import shlex
import signal
import subprocess
import sys
import time
import tokenize
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

# Hypothesis draws from a fixed seed: a property test must not kill a mutant in one run and let it live in
# the next (or kill the unmutated baseline by chance).
PYTEST_ARGS = ("-x", "-q", "-p", "no:cacheprovider", "--hypothesis-seed=0")
# pytest's exit codes (ExitCode): anything but "tests failed" is not a verdict on the mutant's behaviour.
PYTEST_VERDICTS = {0: "passed", 1: "failed", 2: "interrupted", 3: "internal error", 4: "usage error",
                   5: "no tests collected"}  # fmt: skip
SWAPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==", "is": "is not",
         "is not": "is", "in": "not in", "not in": "in", "+": "-", "-": "+", "+=": "-=", "-=": "+=",
         "and": "or", "or": "and"}  # fmt: skip
SKIPPED_CALLERS = {"log", "logger"}


@dataclass(frozen=True, slots=True)
class Mutant:
    start: int  # character offsets into the source
    end: int
    line: int
    old: str
    new: str

    def apply(self, source: str) -> str:
        return source[: self.start] + self.new + source[self.end :]

    def describe(self) -> str:
        old = " ".join(self.old.split())
        return f"`{old if len(old) <= 50 else old[:47] + '...'}` -> `{self.new}`"


class _Finder(ast.NodeVisitor):
    """Walks the tree and records each mutation as a span of the source and its replacement."""

    def __init__(self, source: str, max_int: int) -> None:
        self.source, self.max_int = source, max_int
        lines = source.splitlines(keepends=True)
        self.lines = lines
        self.line_start = [0]
        for text in lines:
            self.line_start.append(self.line_start[-1] + len(text))
        # (offset, end offset, text) of every operator / keyword token, for the gaps between operands.
        self.tokens = [
            (self._offset(*tok.start, chars=True), self._offset(*tok.end, chars=True), tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(source).readline)
            if tok.type in (tokenize.OP, tokenize.NAME) and tok.string not in ("(", ")")
        ]
        self.mutants: list[Mutant] = []
        self.returns_optional: list[bool] = [False]

    def _offset(self, line: int, col: int, *, chars: bool = False) -> int:
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        if not chars:  # ast columns count UTF-8 bytes
            col = len(text.encode()[:col].decode(errors="ignore"))
        return self.line_start[line - 1] + col

    def _span(self, node: ast.expr | ast.stmt) -> tuple[int, int]:
        assert node.end_lineno is not None
        assert node.end_col_offset is not None
        return self._offset(node.lineno, node.col_offset), self._offset(node.end_lineno, node.end_col_offset)

    def _add(self, start: int, end: int, new: str) -> None:
        line = self.source.count("\n", 0, start) + 1
        if "pragma: no mutate" not in self.lines[line - 1]:
            self.mutants.append(Mutant(start, end, line, self.source[start:end], new))

    def _between(self, left: ast.expr, right: ast.expr) -> None:
        """Swap the operator token(s) between two operands (``is not`` and ``not in`` are two)."""
        begin, end = self._span(left)[1], self._span(right)[0]
        found = [tok for tok in self.tokens if begin <= tok[0] and tok[1] <= end]
        if found and (op := " ".join(tok[2] for tok in found)) in SWAPS:
            self._add(found[0][0], found[-1][1], SWAPS[op])

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # f-string internals: text, not logic (and 3.11's positions in them are unreliable)

    def visit_Compare(self, node: ast.Compare) -> None:
        for left, right in zip([node.left, *node.comparators], node.comparators, strict=False):
            self._between(left, right)
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Add | ast.Sub):
            self._between(node.left, node.right)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Add | ast.Sub):
            self._between(node.target, node.value)
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        for left, right in zip(node.values, node.values[1:], strict=False):
            self._between(left, right)
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self._add(*self._span(node), str(not value))
        elif isinstance(value, int) and 0 <= value <= self.max_int:
            self._add(*self._span(node), {0: "1", 1: "0"}.get(value, str(value + 1)))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        returns = "" if node.returns is None else ast.unparse(node.returns)
        optional = "None |" in returns or "| None" in returns or returns.startswith("Optional[")
        self.returns_optional.append(optional)
        for statement in node.body:  # not decorators / defaults / annotations: declarations, not logic
            self.visit(statement)
        self.returns_optional.pop()

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 (NodeVisitor's naming)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for statement in node.body:  # not decorators (``@dataclass(frozen=True)``) or bases
            self.visit(statement)

    def visit_Return(self, node: ast.Return) -> None:
        value = node.value
        is_none = isinstance(value, ast.Constant) and value.value is None
        if self.returns_optional[-1] and value is not None and not is_none:
            self._add(*self._span(value), "None")
        self.generic_visit(node)

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value
        if isinstance(call, ast.Call):
            func = call.func
            caller = func.value if isinstance(func, ast.Attribute) else None
            if not (isinstance(caller, ast.Name) and caller.id in SKIPPED_CALLERS):
                self._add(*self._span(node), "pass")
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:  # the annotation is a type, not logic
            self.visit(node.value)


def find_mutants(source: str, max_int: int = 100) -> list[Mutant]:
    finder = _Finder(source, max_int)
    finder.visit(ast.parse(source))
    valid = []
    for mutant in sorted(set(finder.mutants), key=lambda m: (m.start, m.end, m.new)):
        try:
            compile(mutant.apply(source), "<mutant>", "exec")
        except SyntaxError:
            continue
        valid.append(mutant)
    return valid


def run_tests(root: Path, tests: list[str], timeout: float) -> tuple[str, float]:
    """``passed``, ``failed``, ``timeout`` or pytest's name for another exit code, and the seconds it took."""
    paths = [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # never leave a mutant's bytecode behind
    started = time.monotonic()
    # A session of its own, so a timeout kills the tests' own subprocesses too.
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *PYTEST_ARGS, *tests],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return "timeout", time.monotonic() - started
    except BaseException:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    return PYTEST_VERDICTS.get(code, f"exit {code}"), time.monotonic() - started


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the ``finally`` that restores the module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--module", required=True, type=Path, help="the .py file to mutate")
    parser.add_argument("--tests", default="", help="the pytest selection, one shell-quoted string")
    parser.add_argument("--limit", type=int, help="run a random sample of this many mutants")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (with --limit)")
    parser.add_argument("--only", help="comma-separated mutant ids (as --list prints them)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per mutant; a timeout kills")
    parser.add_argument("--max-int", type=int, default=100, help="largest int literal that is mutated")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    args = parser.parse_args(argv)

    module = args.module.resolve()
    root = Path(_git(module.parent, "rev-parse", "--show-toplevel").strip())
    shown = module.relative_to(root)
    original = module.read_bytes()
    source = original.decode()
    mutants = list(enumerate(find_mutants(source, args.max_int)))
    if args.only:
        wanted = {int(part) for part in args.only.split(",")}
        mutants = [(i, m) for i, m in mutants if i in wanted]
    elif args.limit is not None and args.limit < len(mutants):
        mutants = sorted(random.Random(args.seed).sample(mutants, args.limit))
    if args.list:
        for i, mutant in mutants:
            print(f"{i:4d} {shown}:{mutant.line}: {mutant.describe()}")
        return 0
    tests = shlex.split(args.tests)
    if not tests:
        parser.error("--tests is required unless --list")
    if _git(root, "status", "--porcelain", "--", str(shown)).strip():
        print(f"refusing: {shown} has uncommitted changes (commit or stash them first)", file=sys.stderr)
        return 2
    outcome, took = run_tests(root, tests, args.timeout)
    if outcome != "passed":
        print(f"refusing: the selection does not pass on the unmutated {shown} ({outcome})", file=sys.stderr)
        return 2
    print(f"baseline: {took:.1f}s; {len(mutants)} mutants of {shown}", file=sys.stderr)

    stat = module.stat()
    survivors: list[tuple[int, Mutant]] = []
    timeouts = errors = 0
    previous = signal.signal(signal.SIGTERM, _raise_exit)
    try:
        for n, (i, mutant) in enumerate(mutants, 1):
            module.write_text(mutant.apply(source), encoding="utf-8")
            # A mutant as long as the original written within the same second would match its .pyc.
            os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns + (n + 1) * 10**9))
            outcome, took = run_tests(root, tests, args.timeout)
            timeouts += outcome == "timeout"
            errors += outcome not in ("passed", "failed", "timeout")
            if outcome == "passed":
                survivors.append((i, mutant))
            verdict = "SURVIVED" if outcome == "passed" else f"killed ({outcome})"
            where = f"#{i} {shown}:{mutant.line} {mutant.describe()}"
            print(f"[{n}/{len(mutants)}] {where}: {verdict} {took:.1f}s", file=sys.stderr, flush=True)
    finally:
        module.write_bytes(original)
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        signal.signal(signal.SIGTERM, previous)

    total = len(mutants)
    killed = total - len(survivors)
    score = 100.0 * killed / total if total else 100.0
    print(
        f"{shown}: {total} mutants, {killed} killed ({timeouts} by timeout, {errors} by an error), "
        f"{len(survivors)} survived, score {score:.1f}%"
    )
    for i, mutant in survivors:
        print(f"  survived #{i} {shown}:{mutant.line}: {mutant.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
