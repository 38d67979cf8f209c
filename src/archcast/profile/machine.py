"""What machine a number was measured on: CPU model and host name (a leaf: imports nothing of archcast).

Two machines with the same CPU model are the same *platform* but not the same speed (docs/design.md §5):
the host is recorded with every measurement and the canary speed index tells them apart.
"""

from __future__ import annotations

import platform as _pyplatform
import socket
from functools import lru_cache


@lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU model (``model name`` in /proc/cpuinfo), else ``platform.processor()``/machine."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, sep, value = line.partition(":")
                if sep and key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return _pyplatform.processor() or _pyplatform.machine() or "unknown-cpu"


def host_name() -> str:
    """This machine's host name (recorded with every measurement)."""
    return socket.gethostname()


__all__ = ["cpu_model", "host_name"]
