"""How much memory the machine can still give: the per-file memory check of ``mpcnet restore``."""
from __future__ import annotations

import os


def format_bytes(n: int) -> str:
    """``n`` bytes in MiB below a GiB, else in GiB, one decimal."""
    return f"{n / 2 ** 20:.1f} MiB" if n < 2 ** 30 else f"{n / 2 ** 30:.1f} GiB"


def _proc_bytes(path: str, key: str) -> int | None:
    """The ``key:  N kB`` line of a Linux /proc file, in bytes; None where there is none."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def available_bytes() -> int | None:
    """Memory a new allocation can get without swapping: Linux's ``MemAvailable`` (free memory plus
    reclaimable cache), else the free physical pages; None where neither is known."""
    available = _proc_bytes("/proc/meminfo", "MemAvailable")
    if available is not None:
        return available
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def reset_peak_rss() -> bool:
    """Start a new peak of this process's resident memory (Linux: ``/proc/self/clear_refs``);
    False where it cannot be reset (then :func:`peak_rss_bytes` is the process's lifetime peak)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_bytes() -> int:
    """This process's peak resident memory since :func:`reset_peak_rss` (or since it started):
    Linux's ``VmHWM``, else ``getrusage``'s ``ru_maxrss``."""
    peak = _proc_bytes("/proc/self/status", "VmHWM")
    if peak is not None:
        return peak
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere
