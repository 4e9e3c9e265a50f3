"""pytest entry point (``pytest11: wasmhost``).

Thin wiring only: options, fixtures and the conformance suite arrive with the pytest-plugin issue.
Registering the plugin now means ``pip install pytest-wasmhost`` already shows up in ``pytest --version``
plugin lists without doing any work at import time.
"""

from __future__ import annotations
