"""Attacks on the disk compile cache by someone who can write its folder but is not this host (issue 15).

Each test primes a cache with a victim plugin, plants what an attacker would (another module's
artifact, a forged seal, a FIFO, a link to ``/dev/zero``, a folder), then runs the victim in a child
process (``tests/support/cache_child.py``) under a hard timeout: a hang fails the test, a crash shows
as an exit code, and the outcome asserted is always the victim's own answer plus one warning.

The attacker knows everything but the per-user key: the folder layout, how to name a file by its
sha256, how a seal of the unkeyed format looks. A seal is forged in the format a host without a key
would accept (header ``wasmhost-seal 2 <sha256 of the body>``), which is the best such an attacker can
do; against a keyed seal it must read as a forgery.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import wasmtime

import pytest_wasmhost
from pytest_wasmhost.abi.capabilities import CAPABILITIES
from pytest_wasmhost.runtime.compile_cache import DiskCache, wasm_digest
from pytest_wasmhost.runtime.engine import EngineSettings, shared_engine
from pytest_wasmhost.runtime.instance import describe_module
from tests.support.plugins import write_plugin
from tests.support.wat import metadata_module, packed

CHILD = Path(__file__).resolve().parents[1] / "support" / "cache_child.py"
REPO = Path(pytest_wasmhost.__file__).resolve().parent.parent
TIMEOUT = 60.0  # a few seconds are enough; on a hang the child is killed and the test fails
MBID = CAPABILITIES["MetadataAgent"].methods[0].export  # metadata_agent_get_artist_mbid


def answering(mbid: bytes) -> bytes:
    """A metadata agent whose get_artist_mbid answers ArtistMBIDResponse{mbid}."""
    return metadata_module(data=b"\x0a" + bytes([len(mbid)]) + mbid, result=packed(256, len(mbid) + 2))


VICTIM = answering(b"victim")
ATTACKER = answering(b"pwned!")
# The export the host calls unchecked takes references here: run with the victim's (i32, i32) -> i64
# description (a forged seal), raw integers become references inside wasmtime, which is what once
# killed the process with SIGILL.
ATTACKER_REFS = metadata_module(
    omit=(MBID,),
    extra=f'  (func (export "{MBID}") (param externref externref) (result i64) (i64.const 0))',
)

# Another module whose get_artist_mbid returns an i32: described so, the host would read half a result.
ATTACKER_I32 = metadata_module(
    omit=(MBID,),
    extra=f'  (func (export "{MBID}") (param i32 i32) (result i32) (i32.const 0))',
)
TRUE_SIGNATURE = [["i32", "i32"], ["i64"]]


def run_child(cache_dir: Path, plugin: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    try:
        done = subprocess.run(
            [sys.executable, str(CHILD), str(cache_dir), str(plugin)],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
            cwd=REPO,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the child hung for {TIMEOUT:.0f} s: {exc.stderr!r}")
    assert done.returncode == 0, f"the child died (exit {done.returncode}): {done.stderr[-3000:]}"
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def cache_warnings(report: dict[str, Any]) -> list[str]:
    return [w for w in report["warnings"] if "cache" in w]


def victim_dir(cache_dir: Path) -> Path:
    settings = EngineSettings()
    disk = DiskCache(cache_dir / "plugins", shared_engine(settings), settings.cache_key())
    return disk.artifact_dir(wasm_digest(VICTIM))


def primed(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A cache holding the victim's artifact: (cache dir, plugin folder, artifact path)."""
    cache_dir, plugin = tmp_path / "cache", write_plugin(tmp_path / "plugins", VICTIM, plugin_id="victim")
    report = run_child(cache_dir, plugin)
    assert (report["mbid"], report["error"], cache_warnings(report)) == ("victim", None, [])
    (artifact,) = victim_dir(cache_dir).glob("*.cwasm")
    return cache_dir, plugin, artifact


def serialized(wasm: bytes) -> bytes:
    return bytes(wasmtime.Module(shared_engine(EngineSettings()), wasm).serialize())


def plant(folder: Path, data: bytes) -> Path:
    """``data`` as the only artifact in ``folder``, named by its sha256 (anyone can compute that)."""
    for old in folder.iterdir():
        old.unlink()
    target = folder / (hashlib.sha256(data).hexdigest() + ".cwasm")
    target.write_bytes(data)
    return target


def forge_seal(artifact: Path, description_of: bytes) -> None:
    """A seal in the unkeyed format claiming ``artifact`` was verified long after it last changed and
    has ``description_of``'s imports and exports."""
    st = artifact.stat()
    imports, exports = describe_module(wasmtime.Module(shared_engine(EngineSettings()), description_of))
    body = json.dumps(
        {
            "identity": [st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns],
            "verified_at_ns": st.st_ctime_ns + 10_000_000_000,
            "imports": [[i.module, i.name, i.kind, list(i.params), list(i.results)] for i in imports],
            "exports": [[e.name, e.kind, list(e.params), list(e.results)] for e in exports],
        },
        separators=(",", ":"),
    ).encode()
    header = b"wasmhost-seal 2 " + hashlib.sha256(body).hexdigest().encode()
    artifact.with_name(artifact.name + ".seal").write_bytes(header + b"\n" + body)


def assert_victim_answered_with_one_warning(report: dict[str, Any], *names: str) -> str:
    assert (report["mbid"], report["error"], report["signature"]) == ("victim", None, TRUE_SIGNATURE), report
    (warning,) = cache_warnings(report)
    assert warning.startswith("CompileCacheWarning: "), warning
    for name in names:
        assert name in warning, warning
    return warning


# -- planted artifacts and forged seals ------------------------------------------------------------


def test_an_artifact_of_another_module_planted_under_the_victims_name_is_not_run(tmp_path: Path) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    planted = plant(artifact.parent, serialized(ATTACKER))

    warning = assert_victim_answered_with_one_warning(run_child(cache_dir, plugin), str(planted))
    assert "does not authenticate" in warning
    assert "recompiling" in warning
    assert not planted.exists()
    # The recompiled artifact is a good one: the next run maps it without a word.
    report = run_child(cache_dir, plugin)
    assert (report["mbid"], cache_warnings(report)) == ("victim", [])


def test_our_own_artifact_of_another_plugin_copied_under_the_victims_name_is_not_run(tmp_path: Path) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    other = write_plugin(tmp_path / "plugins", ATTACKER, plugin_id="other")
    assert run_child(cache_dir, other)["mbid"] == "pwned!"
    settings = EngineSettings()
    disk = DiskCache(cache_dir / "plugins", shared_engine(settings), settings.cache_key())
    (theirs,) = disk.artifact_dir(wasm_digest(ATTACKER)).glob("*.cwasm")
    artifact.unlink()
    artifact.with_name(artifact.name + ".seal").unlink()
    copied = artifact.parent / theirs.name  # a name this host really gave, but to another module
    copied.write_bytes(theirs.read_bytes())

    assert_victim_answered_with_one_warning(
        run_child(cache_dir, plugin), str(copied), "does not authenticate"
    )


def test_a_planted_artifact_with_a_forged_seal_never_reaches_the_unchecked_call(tmp_path: Path) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    planted = plant(artifact.parent, serialized(ATTACKER_REFS))
    forge_seal(planted, description_of=VICTIM)  # says "(i32, i32) -> i64, as you expect"

    report = run_child(cache_dir, plugin)

    assert_victim_answered_with_one_warning(report, str(planted), "does not authenticate")
    assert not planted.exists()
    assert not planted.with_name(planted.name + ".seal").exists()


def test_a_forged_seal_on_the_genuine_artifact_does_not_describe_it(tmp_path: Path) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    # The victim's own artifact, with a seal describing another module's exports: its get_artist_mbid
    # returns an i32 where the victim's returns an i64 (which the unchecked call would believe).
    forge_seal(artifact, description_of=ATTACKER_I32)

    report = run_child(cache_dir, plugin)

    warning = assert_victim_answered_with_one_warning(report, str(artifact) + ".seal")
    assert "does not authenticate" in warning
    assert artifact.exists()  # the artifact itself was fine: only the seal is replaced
    report = run_child(cache_dir, plugin)
    assert (report["mbid"], cache_warnings(report)) == ("victim", [])


# -- the folder -----------------------------------------------------------------------------------


def test_a_world_writable_root_is_not_used(tmp_path: Path) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    root = cache_dir / "plugins"
    root.chmod(0o777)
    planted = plant(artifact.parent, serialized(ATTACKER))

    warning = assert_victim_answered_with_one_warning(run_child(cache_dir, plugin), str(root))
    assert f"chmod 700 {root}" in warning
    assert "--wasm-cache-dir" in warning
    assert "in memory" in warning
    assert planted.exists()  # nothing in a refused folder is read, written or purged
    assert sorted(p.name for p in artifact.parent.iterdir()) == [planted.name]


@pytest.mark.parametrize("mode", [0o770, 0o757])
def test_a_group_or_world_writable_subfolder_is_not_used(tmp_path: Path, mode: int) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    artifact.parent.chmod(mode)
    planted = plant(artifact.parent, serialized(ATTACKER))

    warning = assert_victim_answered_with_one_warning(run_child(cache_dir, plugin), str(artifact.parent))
    assert f"chmod 700 {artifact.parent}" in warning
    assert planted.exists()


def test_a_symlinked_root_is_not_used(tmp_path: Path) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    root = cache_dir / "plugins"
    elsewhere = tmp_path / "attacker-controlled"
    root.rename(elsewhere)
    root.symlink_to(elsewhere, target_is_directory=True)
    planted = plant(elsewhere / artifact.parent.name, serialized(ATTACKER))

    warning = assert_victim_answered_with_one_warning(run_child(cache_dir, plugin), str(root))
    assert "symbolic link" in warning
    assert planted.exists()


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown to another user needs root"
)
@pytest.mark.parametrize("which", ["root", "subfolder"])
def test_a_folder_of_another_user_is_not_used(tmp_path: Path, which: str) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    folder = cache_dir / "plugins" if which == "root" else artifact.parent
    planted = plant(artifact.parent, serialized(ATTACKER))
    os.chown(folder, 65534, 65534)  # nobody

    warning = assert_victim_answered_with_one_warning(run_child(cache_dir, plugin), str(folder))
    assert "another user (uid 65534)" in warning
    os.chown(folder, os.geteuid(), os.getegid())  # to look inside where permission bits apply
    assert planted.exists()


# -- what is not a regular file -------------------------------------------------------------------


def fifo(path: Path) -> None:
    os.mkfifo(path)


def link_to_dev_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def empty_folder(path: Path) -> None:
    path.mkdir()


def folder_with_content(path: Path) -> None:
    path.mkdir()
    (path / "something").write_bytes(b"not ours to judge")


@pytest.mark.parametrize(
    ("make", "says", "then_clean"),
    [
        (fifo, "a FIFO", True),
        (link_to_dev_zero, "symbolic link", True),
        (empty_folder, "a folder", True),
        (folder_with_content, "a folder", False),  # cannot be removed: that entry alone is not cached
    ],
)
def test_what_is_not_a_regular_file_under_an_artifacts_name_is_a_miss(
    tmp_path: Path, make: Any, says: str, then_clean: bool
) -> None:
    cache_dir, plugin, artifact = primed(tmp_path)
    artifact.unlink()
    artifact.with_name(artifact.name + ".seal").unlink()
    make(artifact)

    warning = assert_victim_answered_with_one_warning(run_child(cache_dir, plugin), str(artifact), says)
    assert "recompiling" in warning

    report = run_child(cache_dir, plugin)
    assert report["mbid"] == "victim"
    if then_clean:  # the bad entry was removed and the recompiled artifact took its name
        assert artifact.is_file()
        assert not artifact.is_symlink()
        assert cache_warnings(report) == []
    else:
        assert artifact.is_dir()
        assert len(cache_warnings(report)) == 1
