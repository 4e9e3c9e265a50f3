"""pytest-wasmhost: run Navidrome's legacy WebAssembly plugins under test, exactly as production did."""

from __future__ import annotations
