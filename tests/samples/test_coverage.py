"""Do the good samples under sample_plugins/go/ cover the whole legacy ABI?

Every host function of the spec must be imported by at least one sample, and every capability export
must be implemented by at least one sample (the capability is declared in its manifest and the export is
present); the binaries' import and export sections are read without compiling them. Beyond the binaries,
the sample tests must exercise them: every host function appears in the transcript of at least one test
under tests/samples/, and every capability method export is called by one. That half is judged at the
end of the run the sample tests belong to, from their own transcripts (tests/support/sample_coverage.py),
not by running them again. The lists below are written out from the spec (``services/*.md``, ``abi.md``)
rather than taken from the host, so a host that drops a function cannot shrink them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pytest_wasmhost.abi.capabilities import CAPABILITIES
from tests.support.wasm_sections import read_imports_and_exports

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
GO_SAMPLES = REPO / "sample_plugins" / "go"

# service -> its host functions (module "env"), as the spec lists them.
HOST_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "config": ("get_plugin_config",),
    "scheduler": ("schedule_one_time", "schedule_recurring", "cancel_schedule", "time_now"),
    "cache": (
        "set_string",
        "get_string",
        "set_int",
        "get_int",
        "set_float",
        "get_float",
        "set_bytes",
        "get_bytes",
        "remove",
        "has",
    ),
    "artwork": ("get_artist_url", "get_album_url", "get_track_url"),
    "http": ("get", "post", "put", "delete", "patch", "head", "options"),
    "websocket": ("connect", "send_text", "send_binary", "close"),
    "subsonicapi": ("call",),
}

# capability -> its exports: the version export first, then the method exports.
CAPABILITY_EXPORTS: dict[str, tuple[str, ...]] = {
    "MetadataAgent": (
        "metadata_agent_api_version",
        "metadata_agent_get_artist_mbid",
        "metadata_agent_get_artist_url",
        "metadata_agent_get_artist_biography",
        "metadata_agent_get_similar_artists",
        "metadata_agent_get_artist_images",
        "metadata_agent_get_artist_top_songs",
        "metadata_agent_get_album_info",
        "metadata_agent_get_album_images",
    ),
    "Scrobbler": (
        "scrobbler_api_version",
        "scrobbler_is_authorized",
        "scrobbler_now_playing",
        "scrobbler_scrobble",
    ),
    "SchedulerCallback": ("scheduler_callback_api_version", "scheduler_callback_on_scheduler_callback"),
    "LifecycleManagement": ("lifecycle_management_api_version", "lifecycle_management_on_init"),
    "WebSocketCallback": (
        "web_socket_callback_api_version",
        "web_socket_callback_on_text_message",
        "web_socket_callback_on_binary_message",
        "web_socket_callback_on_error",
        "web_socket_callback_on_close",
    ),
}


def samples() -> list[Path]:
    """Every built Go plugin folder (the pdk is a library, not a plugin)."""
    return sorted(
        p for p in GO_SAMPLES.iterdir() if (p / "manifest.json").is_file() and (p / "plugin.wasm").is_file()
    )


@cache
def described(folder: Path) -> tuple[frozenset[str], frozenset[str], tuple[str, ...]]:
    """(imported env functions, exported functions, declared capabilities) of one sample."""
    imports, exports = read_imports_and_exports(folder / "plugin.wasm")
    env_imports = frozenset(i.name for i in imports if i.module == "env" and i.kind == "func")
    funcs = frozenset(e.name for e in exports if e.kind == "func")
    capabilities = tuple(json.loads((folder / "manifest.json").read_text())["capabilities"])
    return env_imports, funcs, capabilities


def host_function_owners() -> dict[str, list[str]]:
    """'service.function' -> the samples importing it. Import names are unique across services."""
    owners: dict[str, list[str]] = {f"{s}.{f}": [] for s, fs in HOST_FUNCTIONS.items() for f in fs}
    for folder in samples():
        env_imports, _, _ = described(folder)
        for service, functions in HOST_FUNCTIONS.items():
            for function in functions:
                if function in env_imports:
                    owners[f"{service}.{function}"].append(folder.name)
    return owners


def missing_host_functions() -> list[str]:
    return sorted(name for name, users in host_function_owners().items() if not users)


def test_the_lists_match_the_host() -> None:
    # The spec-derived capability lists agree with the host's table (names and export names).
    assert {
        name: (cap.version_export, *(m.export for m in cap.methods)) for name, cap in CAPABILITIES.items()
    } == CAPABILITY_EXPORTS
    names = [f for fs in HOST_FUNCTIONS.values() for f in fs]
    assert len(names) == len(set(names)) == 30


def test_there_are_go_samples() -> None:
    assert len(samples()) >= 7, [p.name for p in samples()]


def test_samples_import_only_spec_host_functions() -> None:
    known = {f for fs in HOST_FUNCTIONS.values() for f in fs}
    unknown = {
        folder.name: sorted(described(folder)[0] - known)
        for folder in samples()
        if described(folder)[0] - known
    }
    assert not unknown, f"samples import env functions the spec does not define: {unknown}"


def test_every_capability_export_is_implemented() -> None:
    missing: list[str] = []
    for capability, exports in CAPABILITY_EXPORTS.items():
        for export in exports:
            if not any(
                capability in described(folder)[2] and export in described(folder)[1] for folder in samples()
            ):
                missing.append(f"{capability}: {export}")
    assert not missing, (
        "capability exports no sample implements (declared capability + export): " + ", ".join(missing)
    )


def test_every_host_function_is_imported() -> None:
    missing = missing_host_functions()
    assert not missing, "host functions imported by no good sample under sample_plugins/go/: " + ", ".join(
        missing
    )
