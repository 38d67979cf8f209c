"""Check that a latency data set regenerates: family + seed -> the stored config and fingerprint."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from archcast.data.latency_dataset import LatencyDataset, as_dataset, pick_regenerable
from archcast.errors import ArchcastError


@dataclass(frozen=True)
class RegenerationMismatch:
    """A model that does not come back from family + seed as stored.

    ``field`` is one of ``family`` (not registered here), ``generator_version``, ``config`` (the
    stored config is not what the family samples for the seed), ``export`` (building or
    exporting failed), ``fingerprint`` (the regenerated graph differs) or ``graph_cache`` (the
    graph in ``graphs.jsonl.xz`` differs from the fingerprint).
    """

    fingerprint: str
    family: str
    seed: int
    field: str
    expected: str
    got: str

    def line(self) -> str:
        return f"{self.family}/{self.seed} ({self.fingerprint}): {self.field}: stored {self.expected}, got {self.got}"


def verify_regeneration(data: str | Path | LatencyDataset, count: int = 20, seed: int = 0, *,
                        progress: bool = False) -> list[RegenerationMismatch]:
    """Regenerate ``count`` random models from family + seed and compare with the data set.

    For each: the family must sample ``generator_version`` (its current or an older one), a fresh
    ``sample(seed, version)`` must give the stored config, its weight-free ONNX must read as a graph with the stored fingerprint,
    and the cached graph must have that fingerprint too. Returns the mismatches (empty: all good).
    """
    from archcast.frontends.onnx import load_onnx
    from archcast.zoo import export_sample, get_family

    ds = as_dataset(data)
    picked = pick_regenerable(ds, count, seed, "verify")
    graphs = ds.graphs()
    out: list[RegenerationMismatch] = []
    items: Iterable[int] = picked
    if progress:
        from tqdm import tqdm

        items = tqdm(picked, desc="verify", unit="model")
    for i in items:
        r = ds.records[i]

        def miss(field: str, expected: Any, got: Any) -> None:
            out.append(RegenerationMismatch(r.fingerprint, r.family, int(r.seed), field, str(expected), str(got)))

        cached = graphs[i].fingerprint()
        if cached != r.fingerprint:
            miss("graph_cache", r.fingerprint, cached)
        try:
            fam = get_family(r.family)
        except ArchcastError as e:
            miss("family", r.family, f"not registered ({e})")
            continue
        if str(r.generator_version) not in fam.versions():
            miss("generator_version", r.generator_version, ", ".join(fam.versions()))
            continue
        fresh = fam.sample(int(r.seed), str(r.generator_version))
        stored_cfg = json.dumps(json.loads(r.generator_config), sort_keys=True, separators=(",", ":"))
        if fresh.config_json() != stored_cfg:
            miss("config", stored_cfg, fresh.config_json())
        try:
            got = load_onnx(export_sample(fresh, batch_size=ds.batch_size, weight_free=True)).fingerprint()
        except Exception as e:  # noqa: BLE001 - a family's build/export may raise anything: report it
            miss("export", "a graph", f"{type(e).__name__}: {e}")
            continue
        if got != r.fingerprint:
            miss("fingerprint", r.fingerprint, got)
    return out


__all__ = ["RegenerationMismatch", "verify_regeneration"]
