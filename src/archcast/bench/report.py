"""The one report writer of every benchmark: ``<stem>.json`` (the result, machine-readable, with the
environment that makes its numbers meaningful), ``<stem>.md`` (the tables) and the figures (PNG)."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping


def environment() -> dict[str, Any]:
    """Machine and library versions that make a number meaningful."""
    import torch

    from archcast._version import __version__

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return {
        "archcast": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }



def write_report(result: Mapping[str, Any], out_dir: str | Path, stem: str, markdown: str,
                 figures: Mapping[str, Callable[[Path], Any]] | None = None,
                 drop: tuple[str, ...] = ()) -> list[Path]:
    """Write ``<stem>.json`` (``result`` without keys starting with ``_`` or listed in ``drop``),
    ``<stem>.md`` (``markdown``) and one PNG per ``figures`` entry (``suffix -> draw(path)``, the
    file ``<stem><suffix>.png``). Returns the paths written, in that order."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {k: v for k, v in result.items() if not str(k).startswith("_") and k not in drop}
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    paths[0].write_text(json.dumps(data, indent=1, default=_jsonable))
    paths[1].write_text(markdown if markdown.endswith("\n") else markdown + "\n")
    for suffix, draw in (figures or {}).items():
        p = out / f"{stem}{suffix}.png"
        draw(p)
        paths.append(p)
    return paths


def _jsonable(x: Any) -> Any:
    try:
        return float(x)
    except (TypeError, ValueError):
        return str(x)


__all__ = ["environment", "write_report"]
