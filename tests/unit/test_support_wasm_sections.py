"""The section reader the coverage gate uses agrees with wasmtime on what a module imports and exports."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from tests.support.sample_coverage import missing
from tests.support.wasm_sections import Entry, imports_and_exports

EVERY_KIND = """
(module
  (import "env" "f" (func (param i32) (result i64)))
  (import "env" "t" (table 2 10 funcref))
  (import "env" "m" (memory 1 (pagelimit 5)))
  (import "wasi_snapshot_preview1" "g" (global (mut i32)))
  (func (export "run") (result i32) i32.const 0)
  (table (export "tab") 1 funcref)
  (global (export "glob") i32 (i32.const 7))
  (export "mem" (memory 0))
)
""".replace("(pagelimit 5)", "5")


def wasmtime_names(binary: bytes) -> tuple[list[Entry], list[Entry]]:
    module = wasmtime.Module(wasmtime.Engine(), binary)

    def kind(ty: object) -> str:
        return {
            wasmtime.FuncType: "func",
            wasmtime.TableType: "table",
            wasmtime.MemoryType: "memory",
            wasmtime.GlobalType: "global",
        }[type(ty)]

    imports = [Entry(i.module, i.name or "", kind(i.type)) for i in module.imports]
    exports = [Entry("", e.name, kind(e.type)) for e in module.exports]
    return imports, exports


def test_every_kind_of_import_and_export_is_read_as_wasmtime_reads_it() -> None:
    binary = wasmtime.wat2wasm(EVERY_KIND)
    assert imports_and_exports(binary) == wasmtime_names(binary)
    imports, exports = imports_and_exports(binary)
    assert [e.kind for e in imports] == ["func", "table", "memory", "global"]
    assert [e.name for e in exports] == ["run", "tab", "glob", "mem"]


@pytest.mark.parametrize("sample", sorted(Path("sample_plugins/c").glob("*/plugin.wasm")), ids=str)
def test_a_real_plugin_is_read_as_wasmtime_reads_it(sample: Path) -> None:
    binary = sample.read_bytes()
    assert imports_and_exports(binary) == wasmtime_names(binary)


def test_what_is_not_wasm_is_refused() -> None:
    with pytest.raises(ValueError, match="not a wasm binary"):
        imports_and_exports(b"\0asm\x02\0\0\0")
    with pytest.raises(ValueError, match="ends inside a section"):
        imports_and_exports(wasmtime.wat2wasm(EVERY_KIND)[:-3])


def test_the_gate_names_host_functions_and_method_exports_no_test_saw() -> None:
    hosts = {"cache": ("get", "set"), "config": ("get_plugin_config",)}
    exports = {"Scrobbler": ("scrobbler_api_version", "scrobbler_scrobble", "scrobbler_now_playing")}
    seen = ["cache.get", "config.get_plugin_config", "scrobbler_scrobble"]
    # The version export is not a method: no test needs to call it.
    assert missing(seen, hosts, exports) == ["cache.set", "scrobbler_now_playing"]
    assert missing([*seen, "cache.set", "scrobbler_now_playing"], hosts, exports) == []
