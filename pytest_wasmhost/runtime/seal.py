"""The seal beside a disk-cache artifact: proof it was verified, and what the module looks like.

A verified artifact gets ``<artifact>.seal``: a header line with the checksum of a small JSON body
holding the artifact's identity as the filesystem reported it right after verification (device,
inode, size, change time) and the module's imports and exports. A later load whose ``fstat`` still
shows that identity skips re-hashing the artifact (about 5 ms for a Go plugin, more than the rest of a
warm start) and skips describing the module (about 1 ms through wasmtime-py's type objects).

Why the identity is enough: nothing writes an artifact in place (writers rename new files in), and any
write, truncation, rename over it or metadata change moves the inode's change time, which no user can
set back. What a seal cannot see is a change below the filesystem (a bad disk); the hash never guarded
against an attacker who can write the folder either. A missing, unreadable or mismatching seal just
means "verify again": it is rewritten after the next successful hash check.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from pytest_wasmhost.runtime.instance import Description, ExportInfo, ImportInfo

__all__ = ["SEAL_SUFFIX", "Seal", "encode_seal", "read_seal", "seal_path"]

SEAL_SUFFIX: Final = ".seal"
# A header line, then the JSON body it checksums: one parse of the body, read on every warm start.
_HEADER: Final = b"wasmhost-seal 2 "


# Filesystems stamp change times from a coarse clock (a kernel tick; 2 s on FAT): a write in the same
# tick as the change time the seal recorded would leave it unchanged. A seal made at least this long
# after the artifact's last change is safe from that, since any later write gets a later stamp.
_STAMP_GRANULARITY_NS: Final = 2_000_000_000


@dataclass(frozen=True, slots=True)
class Seal:
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_ctime_ns of the verified artifact
    verified_at_ns: int  # wall-clock time when the verification began
    description: Description

    def vouches_for(self, st: os.stat_result) -> bool:
        """Whether the artifact behind ``st`` is the very file that was verified, unchanged since."""
        return (
            self.identity == _identity(st) and self.verified_at_ns - st.st_ctime_ns >= _STAMP_GRANULARITY_NS
        )


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_ctime_ns)


def seal_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + SEAL_SUFFIX)


def read_seal(artifact: Path) -> Seal | None:
    """The artifact's seal, or None when there is none or it is not one of ours (never raises).

    The body carries its own sha256: the description decides how exports are called through the
    unchecked C API, so a seal damaged on disk must read as no seal, never as a wrong signature.
    """
    try:
        header, _, body = seal_path(artifact).read_bytes().partition(b"\n")
        if header != _HEADER + hashlib.sha256(body).hexdigest().encode():
            return None
        fields = json.loads(body)
        dev, ino, size, ctime_ns = (int(x) for x in fields["identity"])
        imports = tuple(ImportInfo(m, n, k, tuple(p), tuple(r)) for m, n, k, p, r in fields["imports"])
        exports = tuple(ExportInfo(n, k, tuple(p), tuple(r)) for n, k, p, r in fields["exports"])
        return Seal((dev, ino, size, ctime_ns), int(fields["verified_at_ns"]), (imports, exports))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def encode_seal(st: os.stat_result, verified_at_ns: int, description: Description) -> bytes:
    """The seal for an artifact whose content was verified (or written by us) starting at
    ``verified_at_ns`` and whose identity since is ``st`` (the disk cache writes it beside it)."""
    imports, exports = description
    body = json.dumps(
        {
            "identity": list(_identity(st)),
            "verified_at_ns": verified_at_ns,
            "imports": [[i.module, i.name, i.kind, list(i.params), list(i.results)] for i in imports],
            "exports": [[e.name, e.kind, list(e.params), list(e.results)] for e in exports],
        },
        separators=(",", ":"),
    ).encode()
    return _HEADER + hashlib.sha256(body).hexdigest().encode() + b"\n" + body
