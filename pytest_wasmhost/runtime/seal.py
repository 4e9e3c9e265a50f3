"""The seal beside a disk-cache artifact: proof it was verified, and what the module looks like.

A verified artifact gets ``<artifact>.seal``: a header line with an HMAC-SHA256 (the disk cache's
per-user key) of a small JSON body holding the artifact it belongs to (its name, itself a MAC of its
content and module digest, and that digest), the artifact's identity as the filesystem reported it
right after verification (device, inode, size, change time) and the module's imports and exports. A
later load whose ``fstat`` still shows that identity skips re-authenticating the artifact (about 5 ms
for a Go plugin, more than the rest of a warm start) and skips describing the module (about 0.7 ms
through wasmtime-py's type objects, five times the 0.15 ms ``deserialize_file`` takes).

The description decides how exports are called through the unchecked C API (a wrong one crashes the
process), so it is believed only under the key: a seal is written only by a host holding the key, after
it verified the artifact and described the module wasmtime deserialized (or compiled) itself. Checking
the description against the module instead would cost what the seal saves.

Why the identity is enough: nothing writes an artifact in place (writers rename new files in), and any
write, truncation, rename over it or metadata change moves the inode's change time, which no user can
set back. What a seal cannot see is a change below the filesystem (a bad disk). A missing seal, or one
that no longer vouches (the artifact changed), just means "verify again": it is rewritten after the
next successful check. One that does not authenticate, or names another artifact, is reported.
"""

from __future__ import annotations

import hmac
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pytest_wasmhost.runtime.instance import Description, ExportInfo, ImportInfo

__all__ = ["SEAL_SUFFIX", "Seal", "SealRead", "encode_seal", "read_seal", "seal_path"]

SEAL_SUFFIX: Final = ".seal"
# A header line, then the JSON body it authenticates: one parse of the body, read on every warm start.
_HEADER: Final = b"wasmhost-seal 3 "
_MAX_SEAL_BYTES: Final = 16 * 1024 * 1024  # far beyond any module's description; a bound on what we read
_OPEN_FLAGS: Final = (
    os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
)


# Filesystems stamp change times from a coarse clock (a kernel tick; 2 s on FAT): a write in the same
# tick as the change time the seal recorded would leave it unchanged. A seal made at least this long
# after the artifact's last change is safe from that, since any later write gets a later stamp.
_STAMP_GRANULARITY_NS: Final = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Seal:
    artifact: str  # the artifact's file name (its MAC), so a seal cannot be moved to another artifact
    digest: str  # the wasm digest the artifact was compiled from
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_ctime_ns of the verified artifact
    verified_at_ns: int  # wall-clock time when the verification began
    description: Description

    def belongs_to(self, artifact: Path, digest: str) -> bool:
        """Whether this seal was made for ``artifact`` compiled from ``digest``."""
        return self.artifact == artifact.name and self.digest == digest

    def vouches_for(self, st: os.stat_result) -> bool:
        """Whether the artifact behind ``st`` is the very file that was verified, unchanged since."""
        return (
            self.identity == _identity(st) and self.verified_at_ns - st.st_ctime_ns >= _STAMP_GRANULARITY_NS
        )


@dataclass(frozen=True, slots=True)
class SealRead:
    """What reading a seal found: a seal that authenticates, or (for a seal file that exists but cannot
    be believed) the reason, which the disk cache reports."""

    seal: Seal | None = None
    problem: str | None = None


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)


def seal_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + SEAL_SUFFIX)


def _mac(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, "sha256").hexdigest().encode()


def read_seal(artifact: Path, key: bytes) -> SealRead:
    """The artifact's seal if it authenticates under ``key`` (never raises).

    No seal file is a plain ``SealRead()``. A file that is not a regular one, is too large, does not
    authenticate or does not parse is ``SealRead(problem=...)``: never believed, and worth a warning.
    """
    try:
        fd = os.open(seal_path(artifact), _OPEN_FLAGS)  # a link or a FIFO must not be followed or block
    except FileNotFoundError:
        return SealRead()
    except OSError as exc:
        return SealRead(problem=f"cannot be opened ({exc.strerror or exc})")
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return SealRead(problem="is not a regular file")
        if st.st_size > _MAX_SEAL_BYTES:
            return SealRead(problem=f"is too large ({st.st_size} bytes)")
        data = os.read(fd, st.st_size + 1)  # a seal is small: one read (never a 16 MiB buffer)
    except OSError as exc:
        return SealRead(problem=f"cannot be read ({exc.strerror or exc})")
    finally:
        os.close(fd)
    header, _, body = data.partition(b"\n")
    if not hmac.compare_digest(header, _HEADER + _mac(key, body)):
        return SealRead(problem="does not authenticate (damaged, or not written by this host)")
    try:
        fields = json.loads(body)
        dev, ino, size, ctime_ns = (int(x) for x in fields["identity"])
        imports = tuple(ImportInfo(m, n, k, tuple(p), tuple(r)) for m, n, k, p, r in fields["imports"])
        exports = tuple(ExportInfo(n, k, tuple(p), tuple(r)) for n, k, p, r in fields["exports"])
        seal = Seal(
            str(fields["artifact"]),
            str(fields["digest"]),
            (dev, ino, size, ctime_ns),
            int(fields["verified_at_ns"]),
            (imports, exports),
        )
    except (ValueError, TypeError, KeyError, AttributeError):
        return SealRead(problem="authenticates but does not parse")
    return SealRead(seal=seal)


def encode_seal(
    key: bytes,
    artifact: Path,
    digest: str,
    st: os.stat_result,
    verified_at_ns: int,
    description: Description,
) -> bytes:
    """The seal for ``artifact`` (compiled from ``digest``) whose content was verified (or written by
    us) starting at ``verified_at_ns`` and whose identity since is ``st``; ``description`` must come
    from the module wasmtime loaded, never from another seal."""
    imports, exports = description
    body = json.dumps(
        {
            "artifact": artifact.name,
            "digest": digest,
            "identity": list(_identity(st)),
            "verified_at_ns": verified_at_ns,
            "imports": [[i.module, i.name, i.kind, list(i.params), list(i.results)] for i in imports],
            "exports": [[e.name, e.kind, list(e.params), list(e.results)] for e in exports],
        },
        separators=(",", ":"),
    ).encode()
    return _HEADER + _mac(key, body) + b"\n" + body
