"""The import and export names of a wasm binary, read from its sections without compiling it.

Compiling a Go sample takes about a second; the coverage gate only needs names, which the binary's
import (id 2) and export (id 7) sections spell out (WebAssembly core spec, 5.5). Only what the gate
reads is decoded: an import's module, name and kind, an export's name and kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAGIC = b"\0asm\x01\0\0\0"
KINDS = ("func", "table", "memory", "global", "tag")
IMPORT_SECTION, EXPORT_SECTION = 2, 7


@dataclass(frozen=True)
class Entry:
    module: str  # "" for an export
    name: str
    kind: str


class _Reader:
    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data, self.pos, self.end = data, pos, len(data) if end is None else end

    def byte(self) -> int:
        if self.pos >= self.end:
            raise ValueError(f"wasm binary ends inside a section at byte {self.pos}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uleb(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if b < 0x80:
                return result
            shift += 7

    def name(self) -> str:
        size = self.uleb()
        raw = self.data[self.pos : self.pos + size]
        self.pos += size
        return raw.decode("utf-8")

    def skip_limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 1:
            self.uleb()

    def import_desc(self, kind: int) -> None:
        if kind == 0:  # func: type index
            self.uleb()
        elif kind == 1:  # table: reftype, limits
            self.byte()
            self.skip_limits()
        elif kind == 2:  # memory: limits
            self.skip_limits()
        elif kind == 3:  # global: valtype, mutability
            self.byte()
            self.byte()
        elif kind == 4:  # tag: attribute, type index
            self.byte()
            self.uleb()
        else:
            raise ValueError(f"unknown import kind {kind:#x}")


def imports_and_exports(binary: bytes) -> tuple[list[Entry], list[Entry]]:
    """(imports, exports) of ``binary``, in section order."""
    if not binary.startswith(MAGIC):
        raise ValueError("not a wasm binary (bad magic or version)")
    reader = _Reader(binary, len(MAGIC))
    imports: list[Entry] = []
    exports: list[Entry] = []
    while reader.pos < reader.end:
        section_id = reader.byte()
        size = reader.uleb()
        start = reader.pos
        if start + size > reader.end:
            raise ValueError(f"wasm binary ends inside a section at byte {reader.end}")
        if section_id == IMPORT_SECTION:
            body = _Reader(binary, start, start + size)
            for _ in range(body.uleb()):
                module, name, kind = body.name(), body.name(), body.byte()
                body.import_desc(kind)
                imports.append(Entry(module, name, KINDS[kind]))
        elif section_id == EXPORT_SECTION:
            body = _Reader(binary, start, start + size)
            for _ in range(body.uleb()):
                name, kind = body.name(), body.byte()
                body.uleb()
                exports.append(Entry("", name, KINDS[kind]))
        reader.pos = start + size
    return imports, exports


def read_imports_and_exports(path: Path) -> tuple[list[Entry], list[Entry]]:
    return imports_and_exports(path.read_bytes())
