"""A measurement campaign's own directory: its settings, cached ONNX, kernel tables, optimised graphs.

The store keeps one row per measurement (with its pass, speed index and role); what is too large
for it stays here until ``archcast dataset export`` writes the data set files::

    campaign.json       name, platform id, batch size, protocol, canary fingerprints, the canary
                        reference times (the first checkpoint), created
    onnx/<fp>.onnx      weight-free ONNX of every measured graph: later passes and retests measure
                        it without exporting again
    kernels.jsonl       one line per (model, pass) measurement: per-kernel times and the profiled run
    optimized.jsonl     one line per model: the runtime's optimised graph as archcast IR

Only the parent process writes, one line at a time (flushed and fsynced), *before* the store row
it belongs to. A process killed mid-line leaves a truncated last line, which readers skip; a line
whose store row never came is superseded by the re-measure's line (the last line of a key wins).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from archcast.errors import InvalidInputError

CAMPAIGN_FILE = "campaign.json"
KERNELS_JOURNAL = "kernels.jsonl"
OPTIMIZED_JOURNAL = "optimized.jsonl"
ONNX_DIR = "onnx"


class Journal:
    """The campaign directory ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / ONNX_DIR).mkdir(exist_ok=True)

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any] | None:
        path = self.root / CAMPAIGN_FILE
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InvalidInputError(f"{path} is not valid JSON ({e}); it holds the campaign's settings") from None

    def save_settings(self, settings: dict[str, Any]) -> None:
        path = self.root / CAMPAIGN_FILE
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(settings, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, path)

    # ------------------------------------------------------------------ ONNX cache
    def onnx_path(self, fingerprint: str) -> Path:
        return self.root / ONNX_DIR / f"{fingerprint}.onnx"

    def keep_onnx(self, fingerprint: str, data: bytes) -> Path:
        path = self.onnx_path(fingerprint)
        if not path.is_file():
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return path

    # ------------------------------------------------------------------ journals
    def _append(self, name: str, record: dict[str, Any]) -> None:
        line = json.dumps(record, separators=(",", ":"), sort_keys=True)
        with open(self.root / name, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def _read(self, name: str) -> Iterator[dict[str, Any]]:
        path = self.root / name
        if not path.is_file():
            return
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if not line.endswith("\n"):
                    break  # a line cut by a kill: its row was never written either
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    continue

    @staticmethod
    def kernels_line(profile: Any) -> dict[str, Any]:
        """``{"kernels", "run_us", "runs"}`` of a :class:`~archcast.profile.measurement.NodeProfile`
        as :meth:`add_kernels` writes them (times rounded to ns)."""
        return {"kernels": [[n.node, n.op_type, round(n.dur_us, 3), round(n.dur_us_min or n.dur_us, 3)]
                            for n in profile.nodes], "run_us": profile.run_us, "runs": profile.runs}

    def add_kernels(self, fingerprint: str, pass_id: str, kernels: list[list[Any]], run_us: float, runs: int) -> None:
        """Per-kernel times of one (model, pass): ``[[kernel name, op type, median us, min us], ...]``."""
        self._append(KERNELS_JOURNAL, {"fp": fingerprint, "pass": pass_id, "kernels": kernels,
                                       "run_us": run_us, "runs": runs, "at": _now()})

    def kernels(self) -> dict[tuple[str, str], dict[str, Any]]:
        """``{(fingerprint, pass_id): line}``, the last line of each key."""
        return {(r["fp"], r["pass"]): r for r in self._read(KERNELS_JOURNAL)}

    def add_optimized(self, fingerprint: str, ir_json: str | None, error: str | None = None) -> None:
        """The optimised graph of a model as NetGraph JSON (or why it could not be read)."""
        self._append(OPTIMIZED_JOURNAL, {"fp": fingerprint, "ir": ir_json, "error": error, "at": _now()})

    def optimized(self) -> dict[str, dict[str, Any]]:
        """``{fingerprint: line}``: the first line with a graph, else the last line, per model."""
        out: dict[str, dict[str, Any]] = {}
        for r in self._read(OPTIMIZED_JOURNAL):
            if r["fp"] not in out or (out[r["fp"]].get("ir") is None and r.get("ir") is not None):
                out[r["fp"]] = r
        return out


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


__all__ = ["CAMPAIGN_FILE", "Journal"]
