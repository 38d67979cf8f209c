"""Checkpoints: ``model.safetensors`` (weights) + ``config.json`` (everything needed to rebuild and
to refuse an incompatible load). Loading never unpickles."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from archcast.errors import CheckpointError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT_VERSION = 1


def save_checkpoint(directory: str | Path, tensors: dict[str, Any], config: dict[str, Any]) -> Path:
    """Write ``tensors`` (name -> torch tensor) and ``config`` (JSON-able) into ``directory``."""
    from safetensors.torch import save_file

    from archcast._version import __version__

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cfg = dict(config)
    cfg.setdefault("archcast_version", __version__)
    cfg.setdefault("created_unix", int(time.time()))
    cfg["format_version"] = FORMAT_VERSION
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(d / WEIGHTS))
    (d / CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return d


def read_config(directory: str | Path) -> dict[str, Any]:
    d = Path(directory)
    path = d / CONFIG
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(d)!r} has no {CONFIG}")
    try:
        cfg = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"checkpoint config {str(path)!r} is not valid JSON: {e}") from None
    if cfg.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(d)!r} has format_version {cfg.get('format_version')!r}; this archcast reads {FORMAT_VERSION}"
        )
    return cfg


def load_checkpoint(directory: str | Path, *, expect: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(tensors, config)``. ``expect`` maps config keys to required values (e.g. the
    tokenizer version and vocabulary fingerprint); a mismatch raises :class:`CheckpointError`
    naming both values."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    cfg = read_config(d)
    for key, want in (expect or {}).items():
        if cfg.get(key) != want:
            raise CheckpointError(
                f"checkpoint {str(d)!r} was saved with {key}={cfg.get(key)!r}, but this archcast has {key}={want!r}"
            )
    try:
        tensors = load_file(str(d / WEIGHTS))
    except (FileNotFoundError, SafetensorError, OSError) as e:
        raise CheckpointError(f"checkpoint weights {str(d / WEIGHTS)!r} cannot be read: {e}") from None
    return tensors, cfg
