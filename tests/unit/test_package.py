"""package.py: plugin folders, .ndp packages (read in memory, under caps) and bare .wasm files."""

from __future__ import annotations

import io
import json
import os
import stat
import struct
import zipfile
from pathlib import Path
from typing import Any

import pytest

from pytest_wasmhost import package
from pytest_wasmhost.errors import ManifestError
from pytest_wasmhost.manifest import MAX_MANIFEST_BYTES
from pytest_wasmhost.package import MAX_FILE_SIZE, PluginSource, extract_package, load_plugin

WASM = b"\x00asm\x01\x00\x00\x00"


def manifest(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": "lastfm",
        "author": "a",
        "version": "1.0.0",
        "description": "d",
        "website": "https://example.com",
        "capabilities": ["MetadataAgent"],
        "permissions": {},
    }
    doc.update(changes)
    return doc


def folder(root: Path, name: str = "lastfm", doc: Any = None, *, wasm: bytes | None = WASM) -> Path:
    path = root / name
    path.mkdir()
    (path / "manifest.json").write_text(json.dumps(manifest() if doc is None else doc))
    if wasm is not None:
        (path / "plugin.wasm").write_bytes(wasm)
    return path


def ndp(
    path: Path,
    files: dict[str, bytes] | None = None,
    *,
    method: int = zipfile.ZIP_DEFLATED,
) -> Path:
    if files is None:
        files = {"manifest.json": json.dumps(manifest()).encode(), "plugin.wasm": WASM}
    with zipfile.ZipFile(path, "w", compression=method) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def patch_entry(data: bytes, name: bytes, **fields: int) -> bytes:
    """Rewrite header fields of one entry (central directory and local header): crc, csize, usize."""
    central = {"crc": 16, "csize": 20, "usize": 24}
    local = {"crc": 14, "csize": 18, "usize": 22}
    out = bytearray(data)
    at = 0
    while (at := out.find(b"PK\x01\x02", at)) >= 0:
        name_len = struct.unpack_from("<H", out, at + 28)[0]
        if bytes(out[at + 46 : at + 46 + name_len]) == name:
            local_at = struct.unpack_from("<I", out, at + 42)[0]
            for key, value in fields.items():
                struct.pack_into("<I", out, at + central[key], value)
                struct.pack_into("<I", out, local_at + local[key], value)
        at += 4
    return bytes(out)


def rejected(path: Path, **kwargs: Any) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        load_plugin(path, **kwargs)
    return info.value


# --------------------------------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------------------------------


def test_folder(tmp_path: Path) -> None:
    path = folder(tmp_path)
    (path / "README.md").write_text("hi")
    (path / "sub").mkdir()
    source = load_plugin(path)
    assert isinstance(source, PluginSource)
    assert (source.plugin_id, source.origin, source.wasm_bytes) == ("lastfm", "folder", WASM)
    assert source.wasm_path == path / "plugin.wasm"
    assert source.manifest.name == "lastfm"
    assert source.docs == ("README.md",)
    assert source.lint == ()


def test_folder_id_is_the_folder_name_not_the_manifest_name(tmp_path: Path) -> None:
    source = load_plugin(folder(tmp_path, "lastfm-custom", manifest(name="lastfm")))
    assert source.plugin_id == "lastfm-custom"


def test_symlinked_folder_keeps_the_links_name(tmp_path: Path) -> None:
    target = folder(tmp_path, "dev-checkout")
    link = tmp_path / "lastfm"
    link.symlink_to(target)
    source = load_plugin(link)
    assert source.plugin_id == "lastfm"
    assert source.wasm_path == target / "plugin.wasm"


def test_plugin_id_override(tmp_path: Path) -> None:
    assert load_plugin(folder(tmp_path), plugin_id="other").plugin_id == "other"


def test_missing_path(tmp_path: Path) -> None:
    err = rejected(tmp_path / "nope")
    assert (err.rule, err.path) == ("not-found", str(tmp_path / "nope"))


def test_missing_wasm(tmp_path: Path) -> None:
    path = folder(tmp_path, wasm=None)
    err = rejected(path)
    assert err.original == f"no plugin.wasm found: stat {path}/plugin.wasm: no such file or directory"
    assert (err.rule, err.plugin_id) == ("missing-wasm", "lastfm")


def test_missing_manifest(tmp_path: Path) -> None:
    path = folder(tmp_path)
    (path / "manifest.json").unlink()
    err = rejected(path)
    assert err.original == (
        f"failed to load manifest: failed to read manifest file: open {path}/manifest.json: "
        "no such file or directory"
    )


def test_invalid_manifest_in_a_folder(tmp_path: Path) -> None:
    path = folder(tmp_path, doc=manifest(name=5))
    err = rejected(path)
    assert err.original == (
        "failed to load manifest: invalid manifest: json: cannot unmarshal number into Go struct field "
        "Plain.name of type string"
    )
    assert (err.path, err.json_path, err.rule) == (f"{path}/manifest.json", "$.name", "type")


def test_no_capabilities(tmp_path: Path) -> None:
    err = rejected(folder(tmp_path, doc=manifest(capabilities=None)))
    assert err.original == "no capabilities found in manifest"
    assert err.rule == "no-capabilities"


def test_hidden_folder_is_rejected(tmp_path: Path) -> None:
    err = rejected(folder(tmp_path, ".lastfm"))
    assert err.rule == "plugin-id"
    assert "starts with '.'" in err.problem


def test_hidden_plugin_id_override_is_rejected(tmp_path: Path) -> None:
    assert rejected(folder(tmp_path), plugin_id=".x").rule == "plugin-id"


def test_colon_in_the_id_is_a_lint_warning(tmp_path: Path) -> None:
    source = load_plugin(folder(tmp_path, "my:plugin"))
    assert len(source.lint) == 1
    assert "WebSocket" in source.lint[0].message


def test_schema_lint_is_collected(tmp_path: Path) -> None:
    source = load_plugin(folder(tmp_path, doc=manifest(website="not a url")))
    assert [w.json_path for w in source.lint] == ["$.website"]


def test_wasm_that_is_a_directory(tmp_path: Path) -> None:
    path = folder(tmp_path, wasm=None)
    (path / "plugin.wasm").mkdir()
    err = rejected(path)  # the original's stat passes; reading fails
    assert err.rule == "io"


def test_unsupported_path(tmp_path: Path) -> None:
    path = tmp_path / "plugin.zip"
    path.write_bytes(b"PK")
    err = rejected(path)
    assert err.original == f"not a valid plugin package: {path} (expected .ndp extension)"


# --------------------------------------------------------------------------------------------------
# Bare .wasm
# --------------------------------------------------------------------------------------------------


def test_bare_plugin_wasm_takes_the_folder_name(tmp_path: Path) -> None:
    path = folder(tmp_path, "discord")
    source = load_plugin(path / "plugin.wasm")
    assert (source.plugin_id, source.origin, source.wasm_path) == ("discord", "wasm", path / "plugin.wasm")


def test_bare_wasm_takes_its_stem(tmp_path: Path) -> None:
    path = folder(tmp_path, "build")
    (path / "discord-rich.wasm").write_bytes(WASM)
    assert load_plugin(path / "discord-rich.wasm").plugin_id == "discord-rich"


def test_bare_wasm_without_a_manifest(tmp_path: Path) -> None:
    (tmp_path / "x.wasm").write_bytes(WASM)
    err = rejected(tmp_path / "x.wasm")
    assert err.original is not None
    assert err.original.startswith("failed to load manifest: failed to read manifest file: open ")


# --------------------------------------------------------------------------------------------------
# .ndp packages
# --------------------------------------------------------------------------------------------------


def test_ndp(tmp_path: Path) -> None:
    files = {
        "manifest.json": json.dumps(manifest(name="lastfm")).encode(),
        "plugin.wasm": WASM,
        "README.md": b"# readme",
        "docs/": b"",
        "docs/guide.md": b"guide",
    }
    path = ndp(tmp_path / "lastfm-1.0.ndp", files)
    before = sorted(os.listdir(tmp_path))
    source = load_plugin(path)
    assert (source.plugin_id, source.origin, source.wasm_path, source.wasm_bytes) == (
        "lastfm",
        "ndp",
        None,
        WASM,
    )
    assert source.docs == ("README.md", "docs/guide.md")
    assert sorted(os.listdir(tmp_path)) == before  # nothing extracted


def test_ndp_names_are_case_insensitive_at_the_root_only(tmp_path: Path) -> None:
    files = {"MANIFEST.JSON": json.dumps(manifest()).encode(), "Plugin.Wasm": WASM}
    assert load_plugin(ndp(tmp_path / "a.ndp", files)).plugin_id == "lastfm"
    nested = {"sub/manifest.json": json.dumps(manifest()).encode(), "plugin.wasm": WASM}
    err = rejected(ndp(tmp_path / "b.ndp", nested))
    assert err.original == "plugin package missing required manifest.json"


def test_ndp_missing_manifest_is_checked_first(tmp_path: Path) -> None:
    err = rejected(ndp(tmp_path / "a.ndp", {"README.md": b"x", "../evil": b"x"}))
    assert (err.original, err.rule) == ("plugin package missing required manifest.json", "missing-manifest")


def test_ndp_missing_wasm(tmp_path: Path) -> None:
    err = rejected(ndp(tmp_path / "a.ndp", {"manifest.json": json.dumps(manifest()).encode()}))
    assert (err.original, err.rule) == ("plugin package missing required plugin.wasm", "missing-wasm")


def test_ndp_invalid_manifest(tmp_path: Path) -> None:
    path = ndp(tmp_path / "a.ndp", {"manifest.json": b'{"name": 1}', "plugin.wasm": WASM})
    err = rejected(path)
    assert err.original == "invalid manifest: field author in PluginManifest: required"
    assert (err.path, err.json_path) == (f"{path}!manifest.json", "$.author")


def test_ndp_without_capabilities(tmp_path: Path) -> None:
    path = ndp(
        tmp_path / "a.ndp",
        {"manifest.json": json.dumps(manifest(capabilities=None)).encode(), "plugin.wasm": WASM},
    )
    assert rejected(path).original == "no capabilities found in manifest"


def test_ndp_null_manifest_has_no_usable_id(tmp_path: Path) -> None:
    # `plugin install` would target the plugins folder itself ("already installed")
    path = ndp(tmp_path / "a.ndp", {"manifest.json": b"null", "plugin.wasm": WASM})
    assert rejected(path).rule == "plugin-id"


@pytest.mark.parametrize("name", ["", ".hidden", "a/b"])
def test_ndp_manifest_name_must_be_a_usable_id(tmp_path: Path, name: str) -> None:
    path = ndp(
        tmp_path / "a.ndp", {"manifest.json": json.dumps(manifest(name=name)).encode(), "plugin.wasm": WASM}
    )
    assert rejected(path).rule == "plugin-id"
    assert load_plugin(path, plugin_id="fine").plugin_id == "fine"


def test_ndp_not_found(tmp_path: Path) -> None:
    err = rejected(tmp_path / "x.ndp")
    assert err.original == f"plugin package not found: {tmp_path}/x.ndp"


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x05\x06" + b"\x00" * 10])
def test_corrupt_zip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.ndp"
    path.write_bytes(content)
    err = rejected(path)
    assert err.original == "error opening .ndp file: zip: not a valid zip file"
    assert (err.rule, err.path) == ("zip", str(path))


def test_zip_directory_with_a_wrong_record_count(tmp_path: Path) -> None:
    data = bytearray(ndp(tmp_path / "a.ndp").read_bytes())
    end = data.rfind(b"PK\x05\x06")
    struct.pack_into("<HH", data, end + 8, 3, 3)  # claims 3 entries, has 2
    (tmp_path / "b.ndp").write_bytes(bytes(data))
    # Go reads a third header from the end record's 22 bytes: a short read
    assert rejected(tmp_path / "b.ndp").original == "error opening .ndp file: unexpected EOF"


@pytest.mark.parametrize("name", ["../evil.txt", "docs/../../evil.txt", "/etc/evil", "notes..txt"])
def test_ndp_illegal_entry_names(tmp_path: Path, name: str) -> None:
    files = {"manifest.json": json.dumps(manifest()).encode(), "plugin.wasm": WASM, name: b"x"}
    err = rejected(ndp(tmp_path / "a.ndp", files))
    assert err.original == f"illegal file path in plugin package: {name}"
    assert err.rule == "zip-path"


def test_zip_bomb_over_the_per_file_cap(tmp_path: Path) -> None:
    files = {"manifest.json": json.dumps(manifest()).encode(), "plugin.wasm": b"\x00" * (MAX_FILE_SIZE + 1)}
    path = ndp(tmp_path / "bomb.ndp", files)
    assert path.stat().st_size < 100_000
    err = rejected(path)
    assert err.original == "error extracting file: size exceeds limit (10485760 bytes) for plugin.wasm"
    assert err.rule == "max-size"


def test_lying_size_header_is_caught_while_streaming(tmp_path: Path) -> None:
    files = {"manifest.json": json.dumps(manifest()).encode(), "plugin.wasm": b"\x00" * (MAX_FILE_SIZE + 1)}
    data = patch_entry(ndp(tmp_path / "bomb.ndp", files).read_bytes(), b"plugin.wasm", usize=100)
    (tmp_path / "liar.ndp").write_bytes(data)
    err = rejected(tmp_path / "liar.ndp")
    # Go's reader fails as soon as an entry yields more than it declared: the cap cannot be bypassed
    assert err.original == "error reading file in plugin package: zip: not a valid zip file"


def test_lying_stored_entry(tmp_path: Path) -> None:
    files = {"manifest.json": json.dumps(manifest()).encode(), "plugin.wasm": b"\x01" * 5000}
    data = patch_entry(
        ndp(tmp_path / "a.ndp", files, method=zipfile.ZIP_STORED).read_bytes(), b"plugin.wasm", usize=10
    )
    (tmp_path / "b.ndp").write_bytes(data)
    assert (
        rejected(tmp_path / "b.ndp").original
        == "error reading file in plugin package: zip: not a valid zip file"
    )


def test_compression_ratio_guard(tmp_path: Path) -> None:
    files = {"manifest.json": json.dumps(manifest()).encode(), "plugin.wasm": b"\x00" * (4 * 1024 * 1024)}
    err = rejected(ndp(tmp_path / "a.ndp", files))
    assert err.rule == "zip-bomb"
    assert err.original is None


def test_too_many_entries(tmp_path: Path) -> None:
    files = {f"doc{i}.txt": b"" for i in range(package.MAX_ENTRIES + 1)}
    assert rejected(ndp(tmp_path / "a.ndp", files, method=zipfile.ZIP_STORED)).rule == "max-entries"


def test_total_size_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(package, "MAX_TOTAL_SIZE", 1000)
    files = {
        "manifest.json": json.dumps(manifest()).encode(),
        "plugin.wasm": os.urandom(600),
        "x": os.urandom(600),
    }
    assert rejected(ndp(tmp_path / "a.ndp", files)).rule == "max-total-size"


def test_manifest_size_cap(tmp_path: Path) -> None:
    files = {"manifest.json": b" " * (MAX_MANIFEST_BYTES + 1) + b"{}", "plugin.wasm": WASM}
    err = rejected(ndp(tmp_path / "a.ndp", files))
    assert (err.rule, err.original) == ("max-size", None)


def test_unsupported_compression(tmp_path: Path) -> None:
    err = rejected(ndp(tmp_path / "a.ndp", method=zipfile.ZIP_BZIP2))
    assert err.original == "error opening file in plugin package: zip: unsupported compression algorithm"


def test_checksum_mismatch(tmp_path: Path) -> None:
    data = patch_entry(ndp(tmp_path / "a.ndp").read_bytes(), b"plugin.wasm", crc=0x12345678)
    (tmp_path / "b.ndp").write_bytes(data)
    assert (
        rejected(tmp_path / "b.ndp").original == "error reading file in plugin package: zip: checksum error"
    )


def test_zero_checksum_is_not_checked(tmp_path: Path) -> None:
    data = patch_entry(ndp(tmp_path / "a.ndp").read_bytes(), b"plugin.wasm", crc=0)
    (tmp_path / "b.ndp").write_bytes(data)
    assert load_plugin(tmp_path / "b.ndp").wasm_bytes == WASM  # Go skipped a zero CRC


def test_corrupt_deflate_data(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("manifest.json", json.dumps(manifest()))
        info = zipfile.ZipInfo("plugin.wasm")
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, b"hello world" * 50)
    data = bytearray(buf.getvalue())
    body = data.find(b"plugin.wasm") + len("plugin.wasm")
    data[body] = 0xFF  # first byte of the deflate stream: an invalid block type
    (tmp_path / "a.ndp").write_bytes(bytes(data))
    assert rejected(tmp_path / "a.ndp").original == (
        "error reading file in plugin package: flate: corrupt input before offset 1"
    )


def test_truncated_archive(tmp_path: Path) -> None:
    data = ndp(tmp_path / "a.ndp").read_bytes()
    (tmp_path / "b.ndp").write_bytes(data[: len(data) // 2])
    assert rejected(tmp_path / "b.ndp").original == "error opening .ndp file: zip: not a valid zip file"


# --------------------------------------------------------------------------------------------------
# extract_package
# --------------------------------------------------------------------------------------------------


def test_extract_package(tmp_path: Path) -> None:
    files = {"manifest.json": b"{}", "plugin.wasm": WASM, "docs/guide.md": b"g"}
    target = tmp_path / "plugins" / "lastfm"
    extract_package(ndp(tmp_path / "a.ndp", files), target)
    assert (target / "plugin.wasm").read_bytes() == WASM
    assert (target / "docs" / "guide.md").read_bytes() == b"g"
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
    assert stat.S_IMODE((target / "docs").stat().st_mode) == 0o700
    assert stat.S_IMODE((target / "manifest.json").stat().st_mode) == 0o600


def test_extract_rejects_traversal(tmp_path: Path) -> None:
    target = tmp_path / "t"
    with pytest.raises(ManifestError) as info:
        extract_package(ndp(tmp_path / "a.ndp", {"ok.txt": b"x", "../evil.txt": b"x"}), target)
    assert info.value.original == "illegal file path in plugin package: ../evil.txt"
    assert not (tmp_path / "evil.txt").exists()


def test_extract_rejects_oversize_instead_of_truncating(tmp_path: Path) -> None:
    target = tmp_path / "t"
    files = {"plugin.wasm": b"\x00" * (MAX_FILE_SIZE + 1)}
    with pytest.raises(ManifestError) as info:
        extract_package(ndp(tmp_path / "a.ndp", files), target)
    assert info.value.original == "error extracting file: size exceeds limit (10485760 bytes) for plugin.wasm"
    assert not (target / "plugin.wasm").exists()


def test_extract_checksum_error_is_worded_as_the_original(tmp_path: Path) -> None:
    data = patch_entry(ndp(tmp_path / "a.ndp").read_bytes(), b"plugin.wasm", crc=1)
    (tmp_path / "b.ndp").write_bytes(data)
    with pytest.raises(ManifestError) as info:
        extract_package(tmp_path / "b.ndp", tmp_path / "t")
    assert info.value.original == "error writing extracted file: zip: checksum error"


def test_extract_corrupt_zip(tmp_path: Path) -> None:
    (tmp_path / "a.ndp").write_bytes(b"junk")
    with pytest.raises(ManifestError) as info:
        extract_package(tmp_path / "a.ndp", tmp_path / "t")
    assert info.value.original == "error opening .ndp file: zip: not a valid zip file"
    assert not (tmp_path / "t").exists()
