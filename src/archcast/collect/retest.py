"""The noise floor of a latency data set: re-measure random models in fresh processes, compare."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archcast.collect.dataset_files import iso_utc, write_csv, write_json
from archcast.collect.labels import ape_stats, median_or_none, rounded
from archcast.data.latency_dataset import (
    DEFAULT_MEASURE_KW,
    NOISE_FILE,
    PLATFORM_FILE,
    RETEST_COLUMNS,
    RETEST_FILE,
    LatencyDataset,
    LatencyRecord,
    as_dataset,
    model_order,
    num_cell,
    pick_regenerable,
)
from archcast.errors import ArchcastError, InvalidInputError

if TYPE_CHECKING:
    from archcast.profile.platform import Platform
    from archcast.store.store import MeasurementRecord


def _platform_here(ds: LatencyDataset) -> Platform:
    """The data set's Platform, after checking that this machine is that platform."""
    from archcast.profile.backend import get_backend
    from archcast.profile.platform import Platform

    where = ds.path / PLATFORM_FILE
    try:
        p = Platform.from_dict(ds.platform)
    except (ArchcastError, TypeError) as e:
        raise InvalidInputError(f"{where}: not a valid platform: {e}") from None
    if p.platform_id != ds.platform.get("platform_id"):
        raise InvalidInputError(f"{where}: its fields give platform id {p.platform_id}, not the recorded "
                                f"{ds.platform.get('platform_id')} (edited?)")
    try:
        get_backend(p.backend).check_available(p)
    except ArchcastError as e:
        raise InvalidInputError(
            f"cannot retest {ds.path} here: its platform {p.name} ({p.platform_id}: {p.device}, {p.runtime} "
            f"{p.runtime_version}, {p.threads} thread(s)) is not this machine: {e}") from None
    return p








def retest_latency(data: str | Path | LatencyDataset, count: int = 300, seed: int = 0, workers: int = 2,
                   db: str | Path | None = None, *, measure_kw: dict[str, Any] | None = None,
                   timeout_s: float = 600.0, progress: bool = False) -> dict[str, Any]:
    """Measure ``count`` random models of the data set again and compare with the recorded numbers.

    The models are regenerated from their stored config and measured by the profile runner
    (``workers >= 1``: fresh worker processes; 0: this process) on the data set's platform, which
    must be this machine. Results go to ``db`` (resumable; it must not be the store the data set
    came from) or a temporary store. ``measure_kw`` defaults to the protocol in the manifest,
    else :data:`DEFAULT_MEASURE_KW`.

    Writes ``retest.csv`` and ``noise_floor.json`` into the data set directory and returns the
    latter's content: ``n`` pairs, median CV (whole data set, retested subset first/retest),
    test-retest relative errors of the median and min latency (``mape``, ``median_ape``,
    ``p90_ape``, ``max_ape``: fractions), ``drift`` (geometric-mean retest/first ratio - 1),
    ``retest_as_predictor`` (:func:`archcast.metrics.all_metrics` of retest vs first: the best a
    predictor can score against these labels) and ``per_family``.

    Raises:
        InvalidInputError: this machine is not the data set's platform, or bad arguments.
    """
    import tempfile

    from archcast import metrics
    from archcast.collect.runner import profile_samples
    from archcast.store import Store

    ds = as_dataset(data)
    platform = _platform_here(ds)
    picked = pick_regenerable(ds, count, seed, "retest")
    kw = dict(measure_kw or ds.manifest.get("measure_kw") or DEFAULT_MEASURE_KW)
    samples = [ds.records[i].sample() for i in picked]

    with tempfile.TemporaryDirectory(prefix="archcast-retest-") as tmp:
        store = Store(db if db is not None else Path(tmp) / "retest.db")
        try:
            report = profile_samples(samples, store, platform, batch_size=ds.batch_size, workers=workers,
                                     progress=progress, measure_kw=kw, timeout_s=timeout_s)
            rows = store.measurements(platform.platform_id, batch_size=ds.batch_size)
        finally:
            store.close()
    by_fp = {r.fingerprint: r for r in rows}
    by_sample = {(r.family, r.seed): r for r in rows}

    pairs: list[tuple[LatencyRecord, MeasurementRecord]] = []
    table = []
    for i in sorted(picked, key=lambda k: model_order(ds.records[k].family, ds.records[k].seed,
                                                        ds.records[k].fingerprint)):
        r = ds.records[i]
        m = by_fp.get(r.fingerprint)
        status, error = "ok", ""
        if m is None or m.status != "ok":
            other = m or by_sample.get((r.family, r.seed))
            if other is None:
                status, error = "missing", "no retest measurement"
            elif other.status != "ok":
                status, error = "failed", other.error or ""
            else:
                status, error = "mismatch", f"regenerated as graph {other.fingerprint}"
            m = None
        elif iso_utc(m.measured_at) == r.measured_at and m.latency_ms_median is not None \
                and num_cell(m.latency_ms_median) == num_cell(r.latency_ms_median):
            raise InvalidInputError(f"store {store.location} holds the data set's own measurement of {r.fingerprint}; "
                                    "retest into a separate --db (or none: a temporary store)")
        else:
            pairs.append((r, m))
        table.append((r.fingerprint, r.family, r.seed, status, num_cell(r.latency_ms_median),
                      num_cell(m.latency_ms_median) if m else "", num_cell(r.latency_ms_min),
                      num_cell(m.latency_ms_min) if m else "", num_cell(r.latency_cv), num_cell(m.latency_cv) if m else "",
                      " ".join(error.split())))
    write_csv(ds.path / RETEST_FILE, RETEST_COLUMNS, table)

    result: dict[str, Any] = {
        "n": len(pairs), "n_requested": count, "n_picked": len(picked), "n_not_paired": len(picked) - len(pairs),
        "not_paired": [f"{t[1]}/{t[2]}: {t[3]} {t[10]}".strip() for t in table if t[3] != "ok"][:20],
        "dataset_fingerprint": ds.fingerprint, "platform_id": platform.platform_id, "measure_kw": kw,
        "workers": workers, "seed": seed, "retested_at": iso_utc(datetime.now(UTC).replace(tzinfo=None)),
        "retest_wall_s": round(report.wall_s, 1),
        "median_cv_all": median_or_none(r.latency_cv for r in ds.records),
        "median_cv_subset_first": median_or_none(r.latency_cv for r, _ in pairs),
        "median_cv_subset_retest": median_or_none(m.latency_cv for _, m in pairs),
    }
    if pairs:
        first = np.array([r.latency_ms_median for r, _ in pairs])
        again = np.array([m.latency_ms_median for _, m in pairs])
        result["median_latency"] = ape_stats(first, again)
        result["drift"] = float(np.exp(np.mean(np.log(again / first))) - 1.0)
        mins = [(r.latency_ms_min, m.latency_ms_min) for r, m in pairs
                if r.latency_ms_min is not None and m.latency_ms_min is not None]
        if mins:
            result["min_latency"] = ape_stats(np.array([a for a, _ in mins]), np.array([b for _, b in mins]))
        if len(pairs) >= 2 and np.ptp(first) > 0 and np.ptp(again) > 0:
            result["retest_as_predictor"] = metrics.all_metrics(first, again)
        per_family: dict[str, Any] = {}
        for fam in sorted({r.family for r, _ in pairs}):
            sub = [(r, m) for r, m in pairs if r.family == fam]
            f = np.array([r.latency_ms_median for r, _ in sub])
            a = np.array([m.latency_ms_median for _, m in sub])
            s = ape_stats(f, a)
            per_family[fam] = {"n": len(sub), "mape": s["mape"], "median_ape": s["median_ape"],
                               "median_cv_first": median_or_none(r.latency_cv for r, _ in sub),
                               "median_cv_retest": median_or_none(m.latency_cv for _, m in sub)}
        result["per_family"] = per_family
    result = rounded(result)
    write_json(ds.path / NOISE_FILE, result)
    return result


__all__ = ["retest_latency"]
