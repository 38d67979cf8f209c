"""Kernel profiles for the store: per model, the measured time of every kernel, robust across passes.

A profile combines a model's label passes (``<campaign>/p<k>``; retests never enter) exactly as
the data set's per-kernel labels do (:meth:`~archcast.data.latency_dataset.LatencyDataset.kernel_labels`):
per kernel name, the median over passes of the per-pass minimum over the profiled runs (the
per-pass median where no minimum was recorded), in µs per run; its coverage is the median over
passes of kernel sum (medians) / the profiled run. Two writers:

* the pass protocol (:mod:`archcast.collect.passes`) calls :func:`combine_passes` on the campaign
  journal's lines of a model after each of its label passes and stores the result;
* :func:`import_kernels` (``archcast db import-kernels``) loads a format-2 data set's
  ``kernels.csv.xz`` into a store: the models that have kernels in a label pass, their graphs
  where the store lacks them, on the data set's platform and batch size. Running it again stores
  nothing new.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archcast.errors import InvalidInputError

if TYPE_CHECKING:
    from archcast.data.latency_dataset import KernelTime
    from archcast.store.store import Store

SOURCE_DATASET = "dataset"
_LABEL_PASS = re.compile(r"/p(\d+)$")
_CHUNK = 200  # profiles per transaction of an import


def is_label_pass(pass_id: str, campaign: str | None = None) -> bool:
    """Whether ``pass_id`` is a label pass (``<campaign>/p<k>``), of ``campaign`` when given."""
    return bool(_LABEL_PASS.search(pass_id)) and (campaign is None or pass_id.startswith(campaign + "/"))


def _pass_order(pass_id: str) -> tuple[int, str]:
    m = _LABEL_PASS.search(pass_id)
    return (int(m.group(1)) if m else 10 ** 6, pass_id)


def combine_passes(kernels: Mapping[str, Sequence[Sequence[Any]]],
                   run_us: Mapping[str, float | None] | None = None) -> dict[str, Any] | None:
    """One model's profile from its passes (see the module docstring).

    Args:
        kernels: ``{pass_id: [(kernel, op type, median µs, min µs or None), ...]}``.
        run_us: ``{pass_id: the profiled run, µs}`` for the coverage (None: no coverage).

    Returns ``{"kernels": [(kernel, op type, µs)], "coverage", "pass_id" (the last pass),
    "n_passes"}`` — the keyword arguments of :meth:`Store.put_kernel_profile` — or None when no
    pass has a kernel.
    """
    passes = sorted((p for p, ks in kernels.items() if ks), key=_pass_order)
    if not passes:
        return None
    values: dict[str, list[float]] = {}
    ops: dict[str, str] = {}
    covs: list[float] = []
    for p in passes:
        for k in kernels[p]:
            low = k[3] if len(k) > 3 and k[3] not in (None, "") else k[2]
            values.setdefault(str(k[0]), []).append(float(low))
            ops[str(k[0])] = str(k[1])  # the op type of the latest pass
        total = (run_us or {}).get(p)
        if total:
            covs.append(sum(float(k[2]) for k in kernels[p]) / float(total))
    return {"kernels": [(name, ops[name], float(np.median(v))) for name, v in values.items()],
            "coverage": float(np.median(covs)) if covs else None, "pass_id": passes[-1], "n_passes": len(passes)}


def profiles_from_kernel_times(times: Iterable[KernelTime], passes: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``{fingerprint: combine_passes(...)}`` of a data set's kernel table rows in ``passes``."""
    use = set(passes)
    by: dict[str, dict[str, list[tuple[str, str, float, float | None]]]] = {}
    for k in times:
        if k.pass_id in use:
            by.setdefault(k.fingerprint, {}).setdefault(k.pass_id, []).append(
                (k.kernel, k.op_type, k.kernel_us, k.kernel_us_min))
    out = {}
    for fp, per_pass in by.items():
        prof = combine_passes(per_pass)
        if prof is not None:
            out[fp] = prof
    return out


def import_kernels(store: Store, dataset: str | Path, *, progress: bool = False) -> dict[str, int]:
    """Store the kernel profiles of a format-2 data set (see the module docstring).

    Returns counts: ``models`` (with kernels in a label pass), ``added``, ``replaced``,
    ``unchanged``, ``graphs_added``, ``without_kernels`` (models of the data set without any).

    Raises:
        InvalidInputError: not a data set, format 1, a missing or damaged file (checksums are
            verified), kernels of a model the data set does not list, a graph whose fingerprint
            is not its model's.
    """
    from archcast.data.latency_dataset import KERNELS_FILE, load_latency_dataset
    from archcast.profile.platform import Platform

    ds = load_latency_dataset(dataset)
    if ds.format_version < 2:
        raise InvalidInputError(f"data set {ds.path} is format {ds.format_version}: it has no {KERNELS_FILE} "
                                "(format 2, measured with archcast profile --passes, has one)")
    platform = Platform.from_dict(ds.platform)
    if platform.platform_id != ds.manifest["platform_id"]:
        raise InvalidInputError(f"{ds.path}: the fields of platform.json give platform id {platform.platform_id}, "
                                f"not the manifest's {ds.manifest['platform_id']}; re-export the data set")
    label = ds.manifest.get("label") or {}
    passes = list(label.get("passes") or [])
    if not passes:
        raise InvalidInputError(f"{ds.path}: the manifest names no label passes (label.passes); re-export the data set")
    profiles = profiles_from_kernel_times(ds.iter_kernels(), passes)
    index = {r.fingerprint: i for i, r in enumerate(ds.records)}
    stray = sorted(set(profiles) - set(index))
    if stray:
        raise InvalidInputError(f"{ds.path / KERNELS_FILE} has kernels of {len(stray)} model(s) that models.csv "
                                f"does not list (e.g. {stray[0]}); re-export the data set")
    order = sorted(profiles, key=lambda fp: index[fp])
    known = store.known_graphs(order)
    counts = {"models": len(order), "added": 0, "replaced": 0, "unchanged": 0, "graphs_added": 0,
              "without_kernels": len(ds.records) - len(order)}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(order), desc="import kernels", unit="model")
    try:
        for c in range(0, len(order), _CHUNK):
            items = []
            for fp in order[c:c + _CHUNK]:
                rec = ds.records[index[fp]]
                item = {"fingerprint": fp, **profiles[fp]}
                if rec.kernel_coverage is not None:  # the data set's own value: the same rule, its passes
                    item["coverage"] = rec.kernel_coverage
                if fp not in known:
                    g = ds.graphs()[index[fp]]
                    if g.fingerprint() != fp:
                        raise InvalidInputError(f"{ds.path}: the graph of model {fp} has fingerprint "
                                                f"{g.fingerprint()}; re-export the data set")
                    item["graph"] = g
                    item["provenance"] = {"family": rec.family or None, "seed": rec.seed,
                                          "generator_version": rec.generator_version,
                                          "generator_config": rec.generator_config}
                    counts["graphs_added"] += 1
                items.append(item)
            for status in store.put_kernel_profiles(platform, items, batch_size=ds.batch_size,
                                                    source=SOURCE_DATASET):
                counts[status] += 1
            if bar is not None:
                bar.update(len(items))
    finally:
        if bar is not None:
            bar.close()
    return counts


__all__ = ["SOURCE_DATASET", "combine_passes", "import_kernels", "is_label_pass", "profiles_from_kernel_times"]
