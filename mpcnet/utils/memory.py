"""How much memory the machine can still give: the per-file memory check of ``mpcnet restore``."""
from __future__ import annotations

import os


def format_bytes(n: int) -> str:
    """``n`` bytes in MiB below a GiB, else in GiB, one decimal."""
    return f"{n / 2 ** 20:.1f} MiB" if n < 2 ** 30 else f"{n / 2 ** 30:.1f} GiB"


def available_bytes() -> int | None:
    """Memory a new allocation can get without swapping: Linux's ``MemAvailable`` (free memory plus
    reclaimable cache), else the free physical pages; None where neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
