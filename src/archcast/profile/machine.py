"""What machine a number was measured on: CPU model, CPU signature, host (a leaf: imports nothing of archcast).

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


@lru_cache(maxsize=1)
def cpu_signature() -> str:
    """``f<family>m<model>s<stepping>`` of the first CPU in /proc/cpuinfo, "" where unknown.

    Cloud VMs report one generic model name ("AMD EPYC") for CPUs of different generations: on
    two machines both named ``vm`` with that model name, family 26 ran the v2 retest models 1.8x
    faster than the machine of v2, and not by one factor (GRU +31 %, Softmax +38 %, Conv -2 %
    after the canaries divided the speed out). The signature tells such machines apart."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            return signature_of(fh.read())
    except OSError:
        return ""


def signature_of(cpuinfo: str) -> str:
    """:func:`cpu_signature` of the text of a /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            if fields:
                break  # the first processor's block is enough
            continue
        fields.setdefault(key.strip(), value.strip())
    parts = [(p, fields.get(k, "")) for p, k in (("f", "cpu family"), ("m", "model"), ("s", "stepping"))]
    return "".join(f"{p}{v}" for p, v in parts if v.isdigit())


@lru_cache(maxsize=1)
def boot_id() -> str:
    """The first 8 hex digits of the kernel's boot id: one per VM instance and boot, "" elsewhere."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii", errors="replace") as fh:
            return "".join(c for c in fh.read() if c in "0123456789abcdef")[:8]
    except OSError:
        return ""


def host_name() -> str:
    """This machine as recorded with every measurement: ``<host>#<cpu signature>#<boot id>``
    (e.g. ``vm#f26m2s1#b13b05cb``; parts that cannot be read are left out). Every VM here is
    called ``vm``: the signature and boot id keep two of them, or one before and after a
    reboot, apart, so each gets its own canary speed series."""
    return "#".join(p for p in (socket.gethostname(), cpu_signature(), boot_id()) if p)


__all__ = ["boot_id", "cpu_model", "cpu_signature", "host_name", "signature_of"]
