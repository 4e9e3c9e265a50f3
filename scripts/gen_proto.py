#!/usr/bin/env python3
"""Regenerate (or verify) the committed protobuf gencode in ``pytest_wasmhost/abi/proto``.

Usage::

    python scripts/gen_proto.py           # rewrite *_pb2.py / *_pb2.pyi beside the .proto files
    python scripts/gen_proto.py --check   # exit 1 if any committed file is stale or missing

Only message code is produced (``--python_out`` + mypy-protobuf's ``--mypy_out``); the host never
speaks gRPC, so no service stubs are generated. Output is byte-for-byte deterministic for a given
``grpcio-tools`` / ``mypy-protobuf`` pair, which the ``dev`` extra pins.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Relative to REPO_ROOT; protoc is run with ``-I REPO_ROOT`` so each descriptor's file name is the
# package-qualified path (e.g. ``pytest_wasmhost/abi/proto/http.proto``), which cannot clash with
# another library's ``http.proto`` in the process-wide default descriptor pool.
PROTO_DIR_REL = Path("pytest_wasmhost", "abi", "proto")
PROTO_DIR = REPO_ROOT / PROTO_DIR_REL
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi")
FIX_COMMAND = "python scripts/gen_proto.py"


def _proto_sources() -> list[Path]:
    # Sorted so the protoc argument order (and thus any diagnostics) is stable.
    sources = sorted(PROTO_DIR.glob("*.proto"))
    if not sources:
        raise SystemExit(f"gen_proto: no .proto files found in {PROTO_DIR}")
    return sources


def _mypy_plugin() -> Path:
    # Prefer the plugin installed next to this interpreter (the venv), so the pinned
    # mypy-protobuf is used even when the venv is not activated.
    candidate = Path(sys.executable).parent / "protoc-gen-mypy"
    if candidate.is_file():
        return candidate
    found = shutil.which("protoc-gen-mypy")
    if found is None:
        raise SystemExit("gen_proto: protoc-gen-mypy not found; install the dev extra (mypy-protobuf)")
    return Path(found)


def _generate(out_root: Path) -> dict[str, bytes]:
    """Run protoc into ``out_root`` and return ``{file name: bytes}`` of the generated files."""
    sources = _proto_sources()
    cmd: list[str] = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"--proto_path={REPO_ROOT}",
        f"--plugin=protoc-gen-mypy={_mypy_plugin()}",
        f"--python_out={out_root}",
        f"--mypy_out={out_root}",
        *(str(src.relative_to(REPO_ROOT)) for src in sources),
    ]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"gen_proto: protoc failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    out_dir = out_root / PROTO_DIR_REL
    generated = {
        path.name: path.read_bytes()
        for path in sorted(out_dir.iterdir())
        if path.name.endswith(GENERATED_SUFFIXES)
    }
    # Every .proto must have produced both files; anything else means the toolchain misbehaved.
    expected = {src.stem + suffix for src in sources for suffix in GENERATED_SUFFIXES}
    if set(generated) != expected:
        raise SystemExit(
            f"gen_proto: unexpected protoc output {sorted(generated)}, wanted {sorted(expected)}"
        )
    return generated


def _committed() -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(PROTO_DIR.iterdir())
        if path.is_file() and path.name.endswith(GENERATED_SUFFIXES)
    }


def _rel(name: str) -> str:
    return (PROTO_DIR_REL / name).as_posix()


def check() -> int:
    with tempfile.TemporaryDirectory(prefix="gen_proto_") as tmp:
        fresh = _generate(Path(tmp))
    committed = _committed()
    problems: list[str] = []
    for name, data in fresh.items():
        if name not in committed:
            problems.append(f"missing: {_rel(name)}")
        elif committed[name] != data:
            problems.append(f"stale:   {_rel(name)}")
    # Gencode whose .proto was deleted/renamed would otherwise linger unnoticed.
    problems.extend(f"orphan:  {_rel(name)} (no matching .proto)" for name in committed if name not in fresh)
    if problems:
        print("gen_proto --check: committed protobuf gencode is out of date:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        print(f"Fix with: {FIX_COMMAND}", file=sys.stderr)
        return 1
    print(f"gen_proto --check: {len(fresh)} generated files up to date")
    return 0


def regenerate() -> int:
    # Generate into a temp dir first so a protoc failure never leaves half-written files behind.
    with tempfile.TemporaryDirectory(prefix="gen_proto_") as tmp:
        fresh = _generate(Path(tmp))
    committed = _committed()
    for name, data in fresh.items():
        if committed.get(name) != data:
            # Only touch changed files so mtimes (and editors) are not disturbed needlessly.
            (PROTO_DIR / name).write_bytes(data)
            print(f"wrote   {_rel(name)}")
    for name in committed:
        if name not in fresh:
            (PROTO_DIR / name).unlink()
            print(f"removed {_rel(name)} (no matching .proto)")
    print(f"gen_proto: {len(fresh)} generated files up to date")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check",
        action="store_true",
        help="regenerate into a temp dir and fail if the committed files differ",
    )
    args = parser.parse_args(argv)
    return check() if args.check else regenerate()


if __name__ == "__main__":
    sys.exit(main())
