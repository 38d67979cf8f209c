"""How still the labels of a format-2 data set hold: pass agreement, retest, ablation, kernels.

Everything here is computed from the data set's own files (``passes.csv.xz``, ``kernels.csv.xz``),
so anyone can recompute it: :func:`campaign_noise` returns the figures that
``archcast dataset datasheet`` prints and writes to ``noise_floor.json``.

* **between passes**: the first two label passes of each campaign against each other (minutes
  apart, new processes), per statistic, with and without canary normalisation;
* **retest**: the label against a later retest pass (``<campaign>/retest<k>``), for every protocol
  variant (:func:`archcast.collect.labels.ablation`), per family for the label as built;
* **kernels**: per-kernel times of the retest against the label passes (kernels >= 1 % of a run);
* **kernel agreement**: the same per-model figures the latency bench gives a predictor's kernel
  times (median kernel MAPE, WAPE, top-5 overlap; :func:`archcast.metrics.kernel_agreement`), for
  the second label pass against the first and for the retest against the label: how well a
  *measurement* agrees with the kernel labels, the floor for a predictor's kernel figures.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from archcast.collect.labels import (
    CANARY,
    LABEL_STATS,
    SpeedIndex,
    ablation,
    ape_stats,
    labels,
    pass_values,
    retest_error,
    rounded,
    rows_from_table,
)
from archcast.data.latency_dataset import LatencyDataset
from archcast.errors import InvalidInputError
from archcast.metrics import kernel_agreement, kernel_agreement_summary


def campaign_noise(ds: LatencyDataset) -> dict[str, Any]:
    """The noise figures of a format-2 data set (module docstring); fractions, not percent."""
    if ds.format_version < 2:
        raise InvalidInputError(f"data set {ds.path} is format 1; its noise floor comes from archcast dataset retest")
    rows = rows_from_table(ds.passes())
    lab = ds.manifest["label"]
    passes, stat, norm = list(lab["passes"]), lab["stat"], bool(lab["canary_normalised"])
    retests = list(ds.manifest.get("retest_passes") or [])
    canaries = [r for r in rows if r.role == CANARY]
    # the label's reference host (a merge of campaigns names the first one's), else the default
    ref = lab.get("reference_host") if lab.get("reference_host") in {r.host for r in canaries} else None
    speeds = {}
    for s in LABEL_STATS:
        try:
            speeds[s] = SpeedIndex(canaries, s, reference_host=ref)
        except InvalidInputError:
            continue
    out: dict[str, Any] = {"label": lab, "n_models": len(ds), "retest_passes": retests}

    spreads = np.array([r.label_spread for r in ds.records if r.label_spread is not None])
    if spreads.size:
        out["label_spread"] = {"median": float(np.median(spreads)), "p90": float(np.percentile(spreads, 90)),
                               "share_over_5pct": float(np.mean(spreads > 0.05))}
    # the first two label passes of each campaign (a merged data set lists several campaigns')
    by_campaign: dict[str, list[str]] = {}
    for p in passes:
        by_campaign.setdefault(p.rsplit("/", 1)[0], []).append(p)
    pairs = [(ps[0], ps[1]) for ps in by_campaign.values() if len(ps) >= 2]
    if pairs:
        between = []
        for s in LABEL_STATS:
            for use in (False, True):
                sp = speeds.get(s) if use else None
                if use and sp is None:
                    continue
                a, b = {}, {}
                for p1, p2 in pairs:
                    for fp, v in pass_values(rows, s, sp, passes=[p1, p2]).items():
                        if p1 in v and p2 in v:
                            a[fp], b[fp] = v[p1], v[p2]
                tr = retest_error(a, b)
                if tr:
                    between.append({"stat": s, "canary_normalised": use, **tr})
        out["between_passes"] = between
    agreement = _kernel_agreement(ds, pairs, passes, retests[-1] if retests else None)
    if agreement:
        out["kernel_agreement"] = agreement
    if retests:
        rt = retests[-1]
        out["retest_pass"] = rt
        out["ablation"] = ablation(rows, passes, rt)
        sp = speeds.get(stat) if norm else None
        label = {fp: x[0] for fp, x in labels(pass_values(rows, stat, sp, passes=passes)).items()}
        again = {fp: v[rt] for fp, v in pass_values(rows, stat, sp, passes=[rt]).items()}
        fam = {r.fingerprint: r.family for r in ds.records}
        per_family: dict[str, Any] = {}
        for f in sorted({fam[fp] for fp in again if fp in fam}):
            sub = [fp for fp in again if fam.get(fp) == f and fp in label]
            if sub:
                st = ape_stats(np.array([label[k] for k in sub]), np.array([again[k] for k in sub]))
                per_family[f] = {"n": len(sub), "mape": st["mape"], "median_ape": st["median_ape"]}
        out["retest_per_family"] = per_family
        out["kernels"] = _kernel_retest(ds, passes, rt, "kernel_us")
        out["kernels_min"] = _kernel_retest(ds, passes, rt, "kernel_us_min")
    machines = []
    for h, sp in ((h, speeds.get(stat)) for h in sorted({r.host for r in rows})):
        pts = [i for _, i in sp.checkpoints(h)] if sp is not None and h in sp.hosts() else []
        machines.append({"host": h, "checkpoints": len(pts), "speed_index_median": float(np.median(pts)) if pts else None,
                         "speed_index_min": min(pts) if pts else None, "speed_index_max": max(pts) if pts else None})
    out["machines"] = machines
    return rounded(out)  # type: ignore[return-value]


def _kernel_retest(ds: LatencyDataset, passes: list[str], retest: str, stat: str) -> dict[str, Any] | None:
    """Per-kernel test-retest of ``stat`` (``kernel_us`` or ``kernel_us_min``): the median over
    label passes of each kernel's time against the retest pass's, for kernels taking >= 1 % of
    their model's kernel sum."""
    by: dict[tuple[str, str], dict[str, float]] = {}
    for k in ds.kernels():
        v = getattr(k, stat)
        if v is not None:
            by.setdefault((k.fingerprint, k.kernel), {})[k.pass_id] = v
    totals: dict[str, float] = {}
    label: dict[tuple[str, str], float] = {}
    again: dict[tuple[str, str], float] = {}
    for key, per in by.items():
        lv = [per[p] for p in passes if p in per]
        if lv and retest in per:
            label[key], again[key] = float(np.median(lv)), per[retest]
            totals[key[0]] = totals.get(key[0], 0.0) + label[key]
    keys = [k for k in label if label[k] > 0 and label[k] >= 0.01 * totals[k[0]]]
    if not keys:
        return None
    st = ape_stats(np.array([label[k] for k in keys]), np.array([again[k] for k in keys]))
    return {"n_kernels": len(keys), "n_models": len({k[0] for k in keys}), **st}


def _kernel_agreement(ds: LatencyDataset, pairs: list[tuple[str, str]], passes: list[str],
                      retest: str | None) -> dict[str, Any]:
    """:func:`kernel_agreement` of one measurement against another, per model, pooled like the
    latency bench pools a predictor's (``kernel_summary``): ``between_passes`` = the second label
    pass of each campaign against its first, ``retest`` = the retest pass against the label (the
    median over label passes, as :meth:`LatencyDataset.kernel_labels` builds it). Kernel times are
    the per-pass minimum, as in the labels. Empty where the data set has no kernel tables."""
    want = set(passes) | ({retest} if retest else set())
    by: dict[str, dict[str, dict[str, float]]] = {}
    for k in ds.iter_kernels():
        if k.pass_id in want:
            by.setdefault(k.fingerprint, {}).setdefault(k.pass_id, {})[k.kernel] = (
                k.kernel_us_min if k.kernel_us_min is not None else k.kernel_us)

    def pooled(compare: list[tuple[dict[str, float], dict[str, float]]]) -> dict[str, Any] | None:
        vals = []
        for again, label in compare:
            names = sorted(set(again) & set(label))
            a = kernel_agreement(np.array([again[n] for n in names]), np.array([label[n] for n in names])) if names else None
            if a is not None:
                vals.append(a)
        if not vals:
            return None
        return {"n_models": len(vals), **kernel_agreement_summary(*(list(v) for v in zip(*vals)))}

    out: dict[str, Any] = {}
    between = pooled([(per[p2], per[p1]) for per in by.values() for p1, p2 in pairs if p1 in per and p2 in per])
    if between:
        out["between_passes"] = between
    if retest:
        compare = []
        for per in by.values():
            lab = [per[p] for p in passes if p in per]
            if retest in per and lab:
                names = set().union(*lab)
                compare.append((per[retest], {n: float(np.median([x[n] for x in lab if n in x])) for n in names}))
        rt = pooled(compare)
        if rt:
            out["retest"] = rt
    return out


__all__ = ["campaign_noise"]
