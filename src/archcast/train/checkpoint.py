"""Checkpoints: ``model.safetensors`` (weights) + ``config.json`` (everything needed to rebuild and
to refuse an incompatible load). Loading never unpickles."""

from __future__ import annotations

import json
import math
import os
import stat
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Mapping

from archcast.errors import CheckpointError

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
FORMAT_VERSION = 1
MAX_CONFIG_BYTES = 16 << 20
MAX_WEIGHTS_BYTES = 2 << 30


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


def _regular_file(path: Path, what: str, limit: int) -> int:
    """Size of ``path`` if it is a regular file within ``limit`` bytes (a FIFO or device would block
    or never end), else a :class:`CheckpointError`."""
    try:
        st = os.stat(path)
    except OSError:
        raise CheckpointError(f"checkpoint {what} {str(path)!r} does not exist") from None
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"checkpoint {what} {str(path)!r} is not a regular file")
    if st.st_size > limit:
        raise CheckpointError(f"checkpoint {what} {str(path)!r} is {st.st_size} bytes; at most {limit} are read")
    return st.st_size


def read_config(directory: str | Path) -> dict[str, Any]:
    d = Path(directory)
    path = d / CONFIG
    if not d.is_dir():
        raise CheckpointError(f"checkpoint directory {str(d)!r} does not exist")
    _regular_file(path, "config", MAX_CONFIG_BYTES)
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise CheckpointError(f"checkpoint config {str(path)!r} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise CheckpointError(f"checkpoint config {str(path)!r} must be a JSON object; got {type(cfg).__name__}")
    if cfg.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {str(d)!r} has format_version {cfg.get('format_version')!r}; this archcast reads {FORMAT_VERSION}"
        )
    return cfg


def load_checkpoint(directory: str | Path, *, expect: dict[str, Any] | None = None,
                    backend: str = "torch") -> tuple[dict[str, Any], dict[str, Any]]:
    """Return ``(tensors, config)``: torch tensors, or NumPy arrays with ``backend="numpy"`` (torch
    is then never imported). ``expect`` maps config keys to required values (e.g. the tokenizer
    version and vocabulary fingerprint); a mismatch raises :class:`CheckpointError` naming both
    values. Non-finite weights are refused."""
    from safetensors import SafetensorError

    if backend not in ("torch", "numpy"):
        raise CheckpointError(f"backend {backend!r} is not one of ('torch', 'numpy')")
    d = Path(directory)
    cfg = read_config(d)
    for key, want in (expect or {}).items():
        if cfg.get(key) != want:
            raise CheckpointError(
                f"checkpoint {str(d)!r} was saved with {key}={cfg.get(key)!r}, but this archcast has {key}={want!r}"
            )
    _regular_file(d / WEIGHTS, "weights", MAX_WEIGHTS_BYTES)
    try:
        if backend == "numpy":
            from safetensors.numpy import load_file
        else:
            from safetensors.torch import load_file
        tensors = load_file(str(d / WEIGHTS))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"checkpoint weights {str(d / WEIGHTS)!r} cannot be read: {e}") from None
    bad = sorted(k for k, v in tensors.items() if not _finite(v))
    if bad:
        raise CheckpointError(f"checkpoint weights {str(d / WEIGHTS)!r} hold NaN or infinite values "
                              f"({len(bad)} tensors, e.g. {bad[0]!r})")
    return tensors, cfg


def _finite(v: Any) -> bool:
    if hasattr(v, "is_floating_point"):  # torch
        import torch

        return not v.is_floating_point() or bool(torch.isfinite(v).all())
    import numpy as np

    return not np.issubdtype(v.dtype, np.floating) or bool(np.isfinite(v).all())


# ------------------------------------------------------------------------------ config schemas
def check_section(value: Any, schema: Mapping[str, tuple], where: str, *, required: bool = True,
                  allow_extra: bool = False) -> dict[str, Any]:
    """Validate a JSON object against ``schema``: ``key -> (types, low, high)`` (``low``/``high``
    bound numbers, None for no bound). Names the key, the value and what is allowed."""
    if not isinstance(value, dict):
        raise CheckpointError(f"{where} must be a JSON object; got {type(value).__name__}")
    extra = sorted(set(value) - set(schema))
    if extra and not allow_extra:
        raise CheckpointError(f"{where} has unknown keys {extra}; allowed: {sorted(schema)}")
    for key, (types, low, high) in schema.items():
        if key not in value:
            if required:
                raise CheckpointError(f"{where} is missing {key!r}")
            continue
        v = value[key]
        ok = isinstance(v, types) and not (isinstance(v, bool) and bool not in _as_tuple(types))
        if ok and isinstance(v, (int, float)) and not isinstance(v, bool):
            ok = math.isfinite(v) and (low is None or v >= low) and (high is None or v <= high)
        if not ok:
            bounds = "" if low is None and high is None else f" in [{low}, {high}]"
            raise CheckpointError(f"{where}: {key}={v!r} must be {_type_names(types)}{bounds}")
    return value


def dataclass_schema(cls: type, bounds: Mapping[str, tuple[float | None, float | None]]) -> dict[str, tuple]:
    """A :func:`check_section` schema for a config dataclass: every field, typed by its default."""
    out: dict[str, tuple] = {}
    for f in fields(cls):
        kind = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,)}.get(
            str(f.type).replace("'", ""), (int, float, str, bool))
        low, high = bounds.get(f.name, (None, None))
        out[f.name] = (kind, low, high)
    return out


def _as_tuple(types: Any) -> tuple:
    return types if isinstance(types, tuple) else (types,)


def _type_names(types: Any) -> str:
    return " or ".join(t.__name__ for t in _as_tuple(types))
