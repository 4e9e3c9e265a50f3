"""Tiny hand-written modules for ABI edge cases: each is a few lines of WAT, so what it does is obvious."""

from __future__ import annotations

import wasmtime

from pytest_wasmhost.abi.capabilities import CAPABILITIES


def metadata_module(
    *,
    result: str = "(i64.const 0)",
    malloc_body: str = "(local.set $p (global.get $next)) (global.set $next (i32.add (global.get $next) "
    "(local.get 0))) (local.get $p)",
    data: bytes = b"",
    extra: str = "",
    imports: str = "",
    version: int = 1,
    omit: tuple[str, ...] = (),
    capabilities: tuple[str, ...] = ("MetadataAgent",),
    results: dict[str, str] | None = None,
    pages: int = 1,
) -> bytes:
    """A module exporting ``capabilities`` whose every method returns ``result`` (a WAT i64 expression).

    ``results`` overrides the body per export; ``data`` is placed at address 256 so ``result`` can point
    at it; malloc is a bump allocator from 1024 unless ``malloc_body`` says otherwise; names in ``omit``
    are left out of the exports.
    """
    methods = [m.export for cap in capabilities for m in CAPABILITIES[cap].methods]
    per_export = results or {}
    funcs = "\n".join(
        f'  (func (export "{name}") (param i32 i32) (result i64) {per_export.get(name, result)})'
        for name in methods
        if name not in omit
    )
    escaped = "".join(f"\\{b:02x}" for b in data)
    version_fn = "\n".join(
        f'  (func (export "{CAPABILITIES[cap].version_export}") (result i64) (i64.const {version}))'
        for cap in capabilities
        if CAPABILITIES[cap].version_export not in omit
    )
    malloc = (
        ""
        if "malloc" in omit
        else f'  (func (export "malloc") (param i32) (result i32) (local $p i32) {malloc_body})'
    )
    free = "" if "free" in omit else '  (func (export "free") (param i32))'
    wat = f"""
(module
{imports}
  (memory (export "memory") {pages})
  (global $next (mut i32) (i32.const 1024))
  (data (i32.const 256) "{escaped}")
{malloc}
{free}
{version_fn}
{funcs}
{extra}
)"""
    return wasmtime.wat2wasm(wat)


def packed(ptr: int, size: int, *, error: bool = False) -> str:
    """A WAT i64 constant for ``ptr<<32 | size`` (with the error bit when asked)."""
    value = (ptr << 32) | size | (0x8000_0000 if error else 0)
    if value >= 1 << 63:
        value -= 1 << 64
    return f"(i64.const {value})"
