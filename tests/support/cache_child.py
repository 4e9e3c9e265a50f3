"""A child process for the cache attack tests: one Runtime on a cache folder, one call, a JSON report.

``python tests/support/cache_child.py CACHE_DIR PLUGIN_DIR`` loads the plugin through the disk cache
under ``CACHE_DIR``, calls ``get_artist_mbid`` once, and prints ``{"mbid", "error", "signature",
"warnings", "logged"}`` as the last line of stdout (``signature``: the params and results the host
believes ``metadata_agent_get_artist_mbid`` has, which decide how it is called). The attack runs in
the child so that a hang is ended by the parent's timeout and a crash (the forged seal once ended in
SIGILL) shows up as an exit code instead of killing the test run. Only the public Runtime API is
used, so the same script judges any version.
"""

from __future__ import annotations

import json
import logging
import sys
import warnings
from pathlib import Path


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def main() -> int:
    cache_dir, plugin_dir = Path(sys.argv[1]), Path(sys.argv[2])
    logged = _Collect()
    logging.getLogger("pytest_wasmhost").addHandler(logged)
    mbid: str | None = None
    error: str | None = None
    signature: list[list[str]] | None = None
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        from pytest_wasmhost.runtime.runtime import Runtime, RuntimeSettings

        with Runtime(RuntimeSettings(cache_dir=cache_dir)) as runtime:
            plugin = runtime.plugin(plugin_dir)
            export = plugin.linked.export_map.get("metadata_agent_get_artist_mbid")
            if export is not None:
                signature = [list(export.params), list(export.results)]
            try:
                mbid = plugin.metadata_agent.get_artist_mbid(name="x").mbid  # type: ignore[attr-defined]
            except Exception as exc:  # the report says what failed; the parent judges it
                error = f"{type(exc).__name__}: {exc}"
    report = {
        "mbid": mbid,
        "error": error,
        "signature": signature,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in record],
        "logged": logged.messages,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
