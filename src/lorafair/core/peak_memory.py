"""This process's own peak resident memory, however it was launched.

`getrusage(RUSAGE_SELF).ru_maxrss` is not that on Linux: the kernel carries the high-water mark across
fork + exec, so a compare launched from a Python process holding 3 GB reports 3 GB even if it used 2.
`VmHWM` in `/proc/self/status` belongs to the current address space, which exec replaces, so it is
the process's own peak. Elsewhere (macOS, BSD) `ru_maxrss` is the fallback.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

PROC_STATUS = Path("/proc/self/status")


def peak_rss_bytes(status_file: Path = PROC_STATUS) -> int:
    """Peak resident set size of this process in bytes: `VmHWM`, else `ru_maxrss`."""
    hwm = _vm_hwm_bytes(status_file)
    return hwm if hwm is not None else _ru_maxrss_bytes()


def _vm_hwm_bytes(status_file: Path) -> int | None:
    try:
        text = status_file.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            value, unit = line.split()[1:3]
            return int(value) * {"kB": 1024, "mB": 1024**2}.get(unit, 1024)
    return None


def _ru_maxrss_bytes() -> int:
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, kilobytes elsewhere
