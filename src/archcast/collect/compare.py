"""Two format-2 data sets of one platform, measured at different times, compared model by model.

The use: a retest at another time (``archcast profile --samples-of DATASET --passes 2 --campaign
DIR``, exported) against the data set it drew from — the noise floor a predictor trained on that
data set meets (issue 10's item 5) — and, before merging two campaigns, how far apart their
labels are once the machine's speed is divided out.

Both data sets carry canary rows (the same fixed zoo models, measured at the start of each pass
and at intervals). Each data set's rows are divided by its own canaries' speed at their time
(:class:`~archcast.collect.labels.SpeedIndex`), both on the base's scale (the base's median canary
times are 1.0): two machines with one host name, even measuring at the same hours, stay apart.
:func:`compare_datasets` reports, over the models in both:

* ``label``: the test-retest error of the label (each data set's own label passes, median over
  passes of its label statistic), raw and canary-normalised, with the drift (geometric-mean ratio
  other/base - 1) and the error left once that one common factor is divided out;
* ``ablation``: the same for every statistic x normalisation x label passes (first pass only, all);
* ``per_family``: raw and normalised MAPE per family;
* ``kernels``: per-kernel labels (median over label passes of the per-pass minimum) of kernels >= 1 % of their model's sum,
  raw and divided by the speed index of their model's pass;
* ``speed``: each data set's median canary speed index on the common scale (their ratio is the
  machine's speed change between the two).

Relative errors are fractions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from archcast.collect.labels import (
    CANARY,
    LABEL_STATS,
    PassRow,
    SpeedIndex,
    ape_stats,
    labels,
    pass_values,
    rounded,
    rows_from_table,
)
from archcast.data.latency_dataset import KernelTime, LatencyDataset, as_dataset
from archcast.errors import InvalidInputError

KERNEL_MIN_SHARE = 0.01


def _checked(base: LatencyDataset, other: LatencyDataset, cross_platform: bool = False) -> None:
    for ds in (base, other):
        if ds.format_version < 2:
            raise InvalidInputError(f"data set {ds.path} is format 1 (no pass rows or canaries); compare needs format 2")
    if base.platform.get("platform_id") != other.platform.get("platform_id") and not cross_platform:
        raise InvalidInputError(
            f"data sets {base.path} and {other.path} are different platforms ({base.platform.get('platform_id')} vs "
            f"{other.platform.get('platform_id')}): their times are not comparable as a retest (add --cross-platform "
            "to see how far one machine's times are from the other's)")
    if base.batch_size != other.batch_size:
        raise InvalidInputError(f"data sets {base.path} and {other.path} differ in batch size "
                                f"({base.batch_size} vs {other.batch_size})")


def _label_passes(ds: LatencyDataset) -> list[str]:
    return list(ds.manifest["label"]["passes"])


def _geo(x: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(x))))


def _pair_stats(a: dict[str, float], b: dict[str, float], common: list[str]) -> dict[str, Any]:
    x = np.array([a[k] for k in common])
    y = np.array([b[k] for k in common])
    drift = _geo(y / x)
    return {"n": len(common), **ape_stats(x, y), "drift": drift - 1.0,
            "mape_drift_removed": float(np.mean(np.abs(y / drift - x) / x))}


def _labels(rows: list[PassRow], stat: str, speed: SpeedIndex | None, passes: list[str]) -> dict[str, float]:
    return {fp: v[0] for fp, v in labels(pass_values(rows, stat, speed, passes=passes)).items()}


def _kernel_labels(kernels: list[KernelTime], passes: list[str],
                   speed_of: dict[tuple[str, str], float] | None) -> dict[tuple[str, str], tuple[str, float]]:
    """(model, kernel) -> (op type, median over the label passes of its time, µs), each pass's time
    divided by the speed index of that model's pass (``speed_of[(model, pass)]``) when given. The
    time is the per-pass minimum where recorded, as in the kernel labels
    (:meth:`~archcast.data.latency_dataset.LatencyDataset.kernel_labels`)."""
    by: dict[tuple[str, str], tuple[str, list[float]]] = {}
    wanted = set(passes)
    for k in kernels:
        t = k.kernel_us_min if k.kernel_us_min is not None else k.kernel_us
        if k.pass_id in wanted and t > 0:
            f = 1.0 if speed_of is None else speed_of.get((k.fingerprint, k.pass_id))
            if f is not None:
                by.setdefault((k.fingerprint, k.kernel), (k.op_type, []))[1].append(t / f)
    return {key: (op, float(np.median(v))) for key, (op, v) in by.items()}


def pass_speeds(rows: list[PassRow], sp: SpeedIndex) -> dict[tuple[str, str], float]:
    """(model, pass) -> the speed index at its accepted (latest ok) row."""
    latest: dict[tuple[str, str], PassRow] = {}
    for r in rows:
        if r.role != CANARY and r.status == "ok":
            key = (r.fingerprint, r.pass_id)
            if key not in latest or r.row_id > latest[key].row_id:
                latest[key] = r
    return {key: sp.at(r.measured_at, r.host) for key, r in latest.items()}


def _kernels(base: tuple[LatencyDataset, list[KernelTime]], other: tuple[LatencyDataset, list[KernelTime]],
             common: set[str],
             speeds: tuple[dict[tuple[str, str], float], dict[tuple[str, str], float]] | None = None
             ) -> dict[str, Any] | None:
    ka = _kernel_labels(base[1], _label_passes(base[0]), speeds[0] if speeds else None)
    kb = _kernel_labels(other[1], _label_passes(other[0]), speeds[1] if speeds else None)
    totals: dict[str, float] = {}
    for (fp, _), (_, v) in ka.items():
        totals[fp] = totals.get(fp, 0.0) + v
    keys = sorted(k for k in ka if k[0] in common and k in kb and ka[k][1] >= KERNEL_MIN_SHARE * totals[k[0]])
    if not keys:
        return None
    x = np.array([ka[k][1] for k in keys])
    y = np.array([kb[k][1] for k in keys])
    ape = np.abs(y - x) / x
    by_op: dict[str, Any] = {}
    ops = np.array([ka[k][0] for k in keys])
    for op in sorted(set(ops), key=lambda o: -float(x[ops == o].sum())):
        m = ops == op
        by_op[op] = {"n": int(m.sum()), "share_of_time": float(x[m].sum() / x.sum()), "mape": float(ape[m].mean()),
                     "drift": _geo(y[m] / x[m]) - 1.0}
    matched = sum(1 for k in ka if k[0] in common and k in kb)
    in_base = sum(1 for k in ka if k[0] in common)
    return {"n_kernels": len(keys), "n_models": len({k[0] for k in keys}), **ape_stats(x, y),
            "drift": _geo(y / x) - 1.0, "kernel_names_matched": matched / in_base if in_base else None,
            "by_op_type": dict(list(by_op.items())[:12])}


def compare_datasets(base: str | Path | LatencyDataset, other: str | Path | LatencyDataset, *,
                     cross_platform: bool = False) -> dict[str, Any]:
    """``other`` against ``base`` over their common models (module docstring); fractions.
    ``cross_platform`` allows two platforms (e.g. two CPU models): then the figures say how far one
    machine's times are from the other's, not a noise floor (``out["cross_platform"]`` is true)."""
    a, b = as_dataset(base), as_dataset(other)
    _checked(a, b, cross_platform)
    stat = a.manifest["label"]["stat"]
    rows_a, rows_b = rows_from_table(a.passes()), rows_from_table(b.passes())
    ca, cb = a.manifest.get("canaries") or {}, b.manifest.get("canaries") or {}
    if ca != cb:
        raise InvalidInputError(f"data sets {a.path} and {b.path} use different canary models; their speed "
                                "indices are not on one scale")
    speeds: dict[str, tuple[SpeedIndex, SpeedIndex]] = {}
    for s in LABEL_STATS:
        try:
            ia = SpeedIndex([r for r in rows_a if r.role == CANARY], s)
            speeds[s] = (ia, SpeedIndex([r for r in rows_b if r.role == CANARY], s, reference_ms=ia.reference_ms))
        except InvalidInputError:
            continue
    pa, pb = _label_passes(a), _label_passes(b)
    fam = {r.fingerprint: r.family for r in a.records}
    raw_a, raw_b = _labels(rows_a, stat, None, pa), _labels(rows_b, stat, None, pb)
    common = sorted(set(raw_a) & set(raw_b))
    if not common:
        raise InvalidInputError(f"data sets {a.path} and {b.path} have no model in common")
    out: dict[str, Any] = {"base": str(a.path), "other": str(b.path), "base_fingerprint": a.fingerprint,
                           "other_fingerprint": b.fingerprint, "stat": stat, "base_passes": pa, "other_passes": pb,
                           "n_common": len(common), "n_other": len(b.records),
                           "cross_platform": a.platform.get("platform_id") != b.platform.get("platform_id"),
                           "platforms": {"base": a.platform.get("device"), "other": b.platform.get("device")}}
    sp = speeds.get(stat)
    label = {"raw": _pair_stats(raw_a, raw_b, common)}
    if sp is not None:
        na, nb = _labels(rows_a, stat, sp[0], pa), _labels(rows_b, stat, sp[1], pb)
        both = [k for k in common if k in na and k in nb]
        label["canary_normalised"] = _pair_stats(na, nb, both)
    out["label"] = label

    ablation = []
    for s in LABEL_STATS:
        for norm in (False, True):
            idx = speeds.get(s) if norm else None
            if norm and idx is None:
                continue
            for n_pass, (qa, qb) in {"1": (pa[:1], pb[:1]), "all": (pa, pb)}.items():
                la = _labels(rows_a, s, idx[0] if idx else None, qa)
                lb = _labels(rows_b, s, idx[1] if idx else None, qb)
                both = [k for k in common if k in la and k in lb]
                if both:
                    ablation.append({"stat": s, "canary_normalised": norm, "label_passes": n_pass,
                                     **_pair_stats(la, lb, both)})
    out["ablation"] = ablation

    per_family: dict[str, Any] = {}
    for f in sorted({fam.get(k, "") for k in common}):
        sub = [k for k in common if fam.get(k, "") == f]
        entry = {"n": len(sub), "mape_raw": _pair_stats(raw_a, raw_b, sub)["mape"]}
        if sp is not None:
            sub_n = [k for k in sub if k in na and k in nb]
            if sub_n:
                entry["mape_normalised"] = _pair_stats(na, nb, sub_n)["mape"]
        per_family[f] = entry
    out["per_family"] = per_family
    ka, kb = (a, a.kernels()), (b, b.kernels())  # read once: the kernel tables are the large files
    out["kernels"] = {"raw": _kernels(ka, kb, set(common))}
    if sp is not None:
        out["kernels"]["canary_normalised"] = _kernels(ka, kb, set(common), (pass_speeds(rows_a, sp[0]),
                                                                          pass_speeds(rows_b, sp[1])))
        out["speed"] = {"base": _speed_summary(sp[0], rows_a), "other": _speed_summary(sp[1], rows_b)}
        mb, mo = out["speed"]["base"]["median"], out["speed"]["other"]["median"]
        out["speed"]["ratio_other_to_base"] = mo / mb if mb and mo else None
    return rounded(out)  # type: ignore[return-value]


def _speed_summary(sp: SpeedIndex, rows: list[PassRow]) -> dict[str, Any]:
    """The common-scale speed index at this data set's canary checkpoints: median, min, max."""
    pts = [sp.at(r.measured_at, r.host) for r in rows if r.role == CANARY and r.status == "ok"]
    pts = [p for p in pts if math.isfinite(p)]
    if not pts:
        return {"checkpoints": 0, "median": None, "min": None, "max": None}
    return {"checkpoints": len(pts), "median": float(np.median(pts)), "min": min(pts), "max": max(pts)}


def render_comparison(c: dict[str, Any]) -> str:
    """A short text report of :func:`compare_datasets`' result."""
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f} %"

    lines = [f"{c['n_common']} models in both ({c['other']} vs {c['base']}), label {c['stat']}, median over passes"]
    if c.get("cross_platform"):
        p = c.get("platforms") or {}
        lines.append(f"  two platforms ({p.get('other')} vs {p.get('base')}): how far apart the machines are, "
                     "not a noise floor")
    for kind, s in c["label"].items():
        lines.append(f"  label {kind:<17} MAPE {pct(s['mape'])}  median {pct(s['median_ape'])}  p90 {pct(s['p90_ape'])}"
                     f"  drift {pct(s['drift'])}  MAPE after one common factor {pct(s['mape_drift_removed'])}")
    for kind, k in (c.get("kernels") or {}).items():
        if k:
            lines.append(f"  kernels {kind:<17} MAPE {pct(k['mape'])}  median {pct(k['median_ape'])}  drift "
                         f"{pct(k['drift'])}  ({k['n_kernels']} kernels >= 1 % of a model, {k['n_models']} models)")
    if c.get("speed"):
        s = c["speed"]
        lines.append(f"  canary speed index: base {s['base']['median']}, other {s['other']['median']} "
                     f"(ratio {s['ratio_other_to_base']})")
    worst = sorted(c["per_family"].items(), key=lambda kv: -(kv[1].get("mape_normalised") or kv[1]["mape_raw"]))[:5]
    lines.append("  worst families (normalised MAPE): " + ", ".join(
        f"{f} {pct(v.get('mape_normalised', v['mape_raw']))}" for f, v in worst))
    return "\n".join(lines)


__all__ = ["compare_datasets", "pass_speeds", "render_comparison"]
