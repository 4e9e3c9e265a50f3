"""Attacks on isolation: a plugin checked as one user and served as another, a package extracted
through links an attacker left in the extraction folder.

Each test builds the attack and asserts the outcome; each one got through before issue 15.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from pytest_wasmhost.abi.proto import subsonicapi_pb2
from pytest_wasmhost.doubles.subsonic import FakeSubsonic
from pytest_wasmhost.errors import ManifestError
from pytest_wasmhost.host.base import Denied
from pytest_wasmhost.host.subsonicapi import SubsonicApiService
from pytest_wasmhost.manifest import SubsonicApiPermission
from pytest_wasmhost.package import extract_package

# --------------------------------------------------------------------------------------------------
# subsonicapi: the user checked is the user served
# --------------------------------------------------------------------------------------------------

REPEATED = "repeated parameter 'u' (username) is not allowed"


def subsonic(permission: SubsonicApiPermission) -> tuple[SubsonicApiService, FakeSubsonic]:
    fake = FakeSubsonic(users={"alice": False, "admin": True})
    return SubsonicApiService(plugin_id="p", backend=fake, permission=permission), fake


def denial(service: SubsonicApiService, url: str) -> Denied:
    with pytest.raises(Denied) as info:
        service.call(subsonicapi_pb2.CallRequest(url=url))
    return info.value


@pytest.mark.parametrize(
    "query",
    [
        "u=alice&u=admin",
        "u=alice&id=1&u=admin",
        "u=alice&%75=admin",  # the same key, escaped
        "u=alice&u=alice",  # harmless, but the backend would still see two users
    ],
)
def test_a_repeated_u_is_refused_under_allowed_usernames(query: str) -> None:
    service, fake = subsonic(SubsonicApiPermission(reason="r", allowed_usernames=("alice",)))
    refused = denial(service, f"/rest/getUser?{query}")
    assert refused.rule == "u"
    assert isinstance(refused.response, subsonicapi_pb2.CallResponse)
    assert refused.response.error == REPEATED
    assert fake.requests == []  # nothing reached the backend
    # one u is served as before, as that user
    service.call(subsonicapi_pb2.CallRequest(url="/rest/getUser?u=alice"))
    assert [(r.username, r.get_all("u")) for r in fake.requests] == [("alice", ["alice"])]


def test_a_repeated_u_is_refused_before_the_admin_check_looks_anyone_up() -> None:
    service, fake = subsonic(SubsonicApiPermission(reason="r", allow_admins=False))
    refused = denial(service, "/rest/ping?u=alice&u=admin")
    assert (refused.rule, refused.reason) == ("u", REPEATED)
    assert fake.lookups == []
    assert fake.requests == []


# --------------------------------------------------------------------------------------------------
# extract_package: links already in the extraction folder are refused, never written through
# --------------------------------------------------------------------------------------------------

WASM = b"\x00asm\x01\x00\x00\x00"


def package(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the extraction folder that the attacker wants overwritten."""
    path = tmp_path / "outside" / "victim"
    path.parent.mkdir()
    path.write_bytes(b"precious")
    return path


def refused_link(ndp: Path, target: Path) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        extract_package(ndp, target)
    err = info.value
    assert err.rule == "zip-link"
    assert "symbolic link" in err.problem
    return err


def test_a_file_link_in_the_extraction_folder_is_not_followed(tmp_path: Path, victim: Path) -> None:
    target = tmp_path / "plugins" / "p"
    target.mkdir(parents=True)
    (target / "plugin.wasm").symlink_to(victim)
    err = refused_link(package(tmp_path / "p.ndp", {"plugin.wasm": WASM}), target)
    assert str(target / "plugin.wasm") in err.problem
    assert victim.read_bytes() == b"precious"
    assert (target / "plugin.wasm").is_symlink()  # left for the user to look at


def test_a_dangling_link_does_not_create_its_target(tmp_path: Path) -> None:
    target = tmp_path / "p"
    target.mkdir()
    planted = tmp_path / "outside-new"
    (target / "manifest.json").symlink_to(planted)
    refused_link(package(tmp_path / "p.ndp", {"manifest.json": b"{}"}), target)
    assert not planted.exists()


def test_a_folder_link_in_the_extraction_folder_is_not_followed(tmp_path: Path, victim: Path) -> None:
    target = tmp_path / "p"
    target.mkdir()
    (target / "docs").symlink_to(victim.parent, target_is_directory=True)
    err = refused_link(package(tmp_path / "p.ndp", {"docs/victim": b"evil", "docs/new.md": b"x"}), target)
    assert str(target / "docs") in err.problem
    assert victim.read_bytes() == b"precious"
    assert sorted(os.listdir(victim.parent)) == ["victim"]


def test_a_deeper_folder_link_is_not_followed(tmp_path: Path, victim: Path) -> None:
    target = tmp_path / "p"
    (target / "a").mkdir(parents=True)
    (target / "a" / "b").symlink_to(victim.parent, target_is_directory=True)
    refused_link(package(tmp_path / "p.ndp", {"a/b/victim": b"evil"}), target)
    assert victim.read_bytes() == b"precious"


def test_a_hard_link_is_replaced_not_written_through(tmp_path: Path, victim: Path) -> None:
    target = tmp_path / "p"
    target.mkdir()
    os.link(victim, target / "plugin.wasm")
    (target / "manifest.json").write_bytes(b"old")  # an earlier extraction: overwritten as before
    extract_package(package(tmp_path / "p.ndp", {"plugin.wasm": WASM, "manifest.json": b"{}"}), target)
    assert (target / "plugin.wasm").read_bytes() == WASM
    assert (target / "manifest.json").read_bytes() == b"{}"
    assert victim.read_bytes() == b"precious"
    assert os.stat(victim).st_nlink == 1
