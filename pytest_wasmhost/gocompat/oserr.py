"""OS error texts as Go prints them (``syscall.Errno.Error()``, ``*fs.PathError``)."""

from __future__ import annotations

import errno
import os

__all__ = ["errno_text", "path_error"]


def errno_text(exc: OSError) -> str:
    """Go's text for an OS error: the C library's message with a lower-case first letter.

    Go's table is keyed by errno; without one (or for a resolver's negative code) the exception's own
    text stands in.
    """
    code = exc.errno
    text = os.strerror(code) if isinstance(code, int) and code > 0 else ""
    text = text or exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def path_error(op: str, path: str, exc: OSError) -> str:
    """An OSError as Go's ``*PathError``: ``open /x: no such file or directory``."""
    if exc.errno == errno.EISDIR and op == "open":
        op = "read"  # Go opens directories fine; the read fails
    return f"{op} {path}: {errno_text(exc)}"
