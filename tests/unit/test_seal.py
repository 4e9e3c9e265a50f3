"""A seal's own rules: what it vouches for, what it belongs to, what a seal file may be (issue 15.8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pytest_wasmhost.runtime.seal import Seal, encode_seal, read_seal, seal_path

KEY = b"k" * 32
GRANULARITY_NS = 2_000_000_000


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "abc.cwasm"
    path.write_bytes(b"artifact")
    return path


def sealed(artifact: Path, *, verified_after_ctime_ns: int) -> Seal:
    st = artifact.stat()
    data = encode_seal(KEY, artifact, "digest", st, st.st_ctime_ns + verified_after_ctime_ns, ((), ()))
    seal_path(artifact).write_bytes(data)
    found = read_seal(artifact, KEY).seal
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("after_ns", "vouches"),
    [(GRANULARITY_NS - 1_000_000, False), (GRANULARITY_NS, True), (GRANULARITY_NS + 1_000_000, True)],
    ids=["1.999s", "2s", "2.001s"],
)
def test_a_seal_vouches_only_when_made_a_stamp_tick_after_the_last_change(
    artifact: Path, after_ns: int, vouches: bool
) -> None:
    assert sealed(artifact, verified_after_ctime_ns=after_ns).vouches_for(artifact.stat()) is vouches


def test_a_changed_artifact_is_not_vouched_for(artifact: Path) -> None:
    seal = sealed(artifact, verified_after_ctime_ns=GRANULARITY_NS)
    artifact.write_bytes(b"artifact, changed")
    assert not seal.vouches_for(artifact.stat())


def test_a_seal_belongs_to_its_artifact_and_digest_only(artifact: Path) -> None:
    seal = sealed(artifact, verified_after_ctime_ns=GRANULARITY_NS)
    assert seal.belongs_to(artifact, "digest")
    assert not seal.belongs_to(artifact, "other digest")
    assert not seal.belongs_to(artifact.with_name("other.cwasm"), "digest")


def test_a_seal_file_is_read_up_to_16_mib(artifact: Path) -> None:
    path = seal_path(artifact)
    with path.open("wb") as handle:
        handle.truncate(16 * 1024 * 1024)  # sparse: the limit itself is read (and does not authenticate)
    assert read_seal(artifact, KEY).problem == "does not authenticate (damaged, or not written by this host)"
    with path.open("r+b") as handle:
        handle.truncate(16 * 1024 * 1024 + 1)
    assert read_seal(artifact, KEY).problem == f"is too large ({16 * 1024 * 1024 + 1} bytes)"


def test_reading_a_seal_leaves_no_file_open(artifact: Path) -> None:
    sealed(artifact, verified_after_ctime_ns=GRANULARITY_NS)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        assert read_seal(artifact, KEY).seal is not None
    assert len(os.listdir("/proc/self/fd")) == before
