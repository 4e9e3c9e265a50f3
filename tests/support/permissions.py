"""Whether this process obeys file permission bits (root does not, unless its capabilities are dropped).

A probe rather than ``geteuid() == 0``: CI runs as root and runs the permission tests a second time
with CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH dropped (``setpriv --bounding-set``), where they apply.
"""

from __future__ import annotations

import os
import tempfile


def ignores_permission_bits() -> bool:
    with tempfile.TemporaryDirectory() as folder:
        probe = os.path.join(folder, "probe")
        with open(probe, "w", encoding="utf-8") as handle:
            handle.write("x")
        os.chmod(probe, 0)
        try:
            with open(probe, encoding="utf-8"):
                return True
        except PermissionError:
            return False


IGNORES_PERMISSION_BITS = ignores_permission_bits()
SKIP_REASON = "this process ignores permission bits (root); CI runs it again without the capability"
