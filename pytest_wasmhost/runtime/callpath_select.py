"""Which :mod:`.callpath` implementation a runtime uses: the C-API fast path, or the public-API one.

An explicit choice wins, else ``$WASMHOST_FASTPATH`` (``0`` / ``1``), else the fast path when the
installed wasmtime is a version we test, the public path (with one warning) when it is not. Its own
module, above both implementations: ``callpath`` is the interface ``capi`` implements, so the choice
between them belongs to neither.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Mapping
from typing import Final

from pytest_wasmhost.runtime.callpath import CallPath, PublicCallPath
from pytest_wasmhost.runtime.engine import wasmtime_version

__all__ = ["FASTPATH_ENV", "TESTED_WASMTIME", "select_call_path", "wasmtime_is_tested"]

FASTPATH_ENV: Final = "WASMHOST_FASTPATH"
#: The wasmtime-py releases the fast path is tested with: CI runs the core tests on 50.0.1 (the floor,
#: the dev group's pin) and on the newest the registry serves (51.0.0). A release outside this range
#: takes the public path with one warning (pyproject sets only the floor).
TESTED_WASMTIME: Final = ((50, 0, 1), (52, 0, 0))

_choice_lock = threading.Lock()
_auto_choice: CallPath | None = None  # decided once per process: the installed wasmtime cannot change


def _parse_version(text: str) -> tuple[int, ...]:
    """The leading numeric release of a version string: "50.0.1" -> (50, 0, 1), "51.0.0rc1" -> (51, 0, 0)."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def wasmtime_is_tested(version: str) -> bool:
    """Whether ``version`` of wasmtime-py lies in the range the fast path is tested with."""
    low, high = TESTED_WASMTIME
    return low <= _parse_version(version) < high


def _env_choice(environ: Mapping[str, str]) -> bool | None:
    raw = environ.get(FASTPATH_ENV, "").strip().lower()
    if raw in ("", "auto"):
        return None
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"${FASTPATH_ENV} must be 0 or 1 (or auto), not {raw!r}")


def _fast() -> CallPath:
    from pytest_wasmhost.runtime import capi  # ctypes declarations load only when the fast path is used

    return capi.FastCallPath()


def select_call_path(fastpath: bool | None = None, *, environ: Mapping[str, str] | None = None) -> CallPath:
    """The call path to use: ``fastpath`` if given, else ``$WASMHOST_FASTPATH``, else by wasmtime version.

    A forced fast path on an untested wasmtime is honoured (the caller asked for it); the automatic
    choice falls back to the public path with one warning per process.
    """
    choice = fastpath if fastpath is not None else _env_choice(os.environ if environ is None else environ)
    if choice is True:
        return _fast()
    if choice is False:
        return PublicCallPath()
    global _auto_choice
    with _choice_lock:
        if _auto_choice is None:
            _auto_choice = _automatic()
        return _auto_choice


def _automatic() -> CallPath:
    version = wasmtime_version()
    if wasmtime_is_tested(version):
        try:
            return _fast()
        except (AttributeError, OSError) as exc:  # a symbol missing from this build of the library
            reason = f"its C API bindings failed to load ({exc})"
    else:
        low, high = (".".join(map(str, v)) for v in TESTED_WASMTIME)
        reason = f"wasmtime {version} is outside the tested range >={low},<{high}"
    warnings.warn(
        f"pytest-wasmhost: using the slower public-API call path because {reason}; "
        f"set {FASTPATH_ENV}=1 to force the fast path.",
        RuntimeWarning,
        stacklevel=3,
    )
    return PublicCallPath()
