"""Labels that hold still: from every pass of every model to one label with its spread (design.md §5).

A model is measured in several passes, minutes or hours apart, in different worker processes.
Each pass row carries wall-clock and thread-CPU statistics and the machine's canary speed then.
This module turns rows into labels and says how good the labels are:

* :class:`SpeedIndex`: the canary models' times (per canary, per host) interpolated in time and
  divided by each canary's reference (its median on the reference host), geometric mean over
  canaries. 1.0 = the reference speed; 1.1 = the machine runs 10 % slower than the reference.
* :func:`pass_values` / :func:`labels`: per (model, pass) the accepted row (the latest one: a
  re-measured window supersedes its old rows), its statistic, optionally divided by the speed
  index at its time; the label is the median over passes, the spread (max - min) / label.
* :func:`ablation`: test-retest relative error of the label against a later retest pass with each
  protocol piece on and off (statistic, canary normalisation, number of passes, re-measure).

Relative errors are fractions; times are milliseconds; ``measured_at`` is Unix seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC

import numpy as np

from archcast.errors import InvalidInputError

SIG_DIGITS = 5
# per-pass statistics a label can be made of; CPU time exists on 1-thread platforms only
LABEL_STATS = ("cpu_ms_min", "cpu_ms_median", "latency_ms_min", "latency_ms_median")
CANARY = "canary"


@dataclass(frozen=True)
class PassRow:
    """One measurement row of a pass (a model's or a canary's), as the store or ``passes.csv.xz``
    holds it. ``superseded``: a later row of the same (fingerprint, pass) replaced it."""

    row_id: int
    fingerprint: str
    role: str  # "model" | "canary"
    pass_id: str
    status: str
    measured_at: float
    host: str
    latency_ms_min: float | None = None
    latency_ms_median: float | None = None
    latency_cv: float | None = None
    cpu_ms_min: float | None = None
    cpu_ms_median: float | None = None
    cpu_cv: float | None = None
    n_runs: int | None = None
    speed_index: float | None = None
    superseded: bool = False

    def stat(self, name: str) -> float | None:
        if name not in LABEL_STATS:
            raise InvalidInputError(f"label statistic {name!r} is not known; valid: {', '.join(LABEL_STATS)}")
        v = getattr(self, name)
        return v if v is not None and math.isfinite(v) and v > 0 else None


def mark_superseded(rows: Sequence[PassRow]) -> list[PassRow]:
    """``rows`` with ``superseded`` set on every model row but the latest (highest id) of each
    (fingerprint, pass_id); canary rows are never superseded (every canary run is a checkpoint)."""
    latest: dict[tuple[str, str, str], int] = {}
    for r in rows:
        key = (r.fingerprint, r.role, r.pass_id)
        latest[key] = max(latest.get(key, r.row_id), r.row_id)
    return [PassRow(**{**r.__dict__, "superseded": r.role != CANARY and
                       r.row_id != latest[(r.fingerprint, r.role, r.pass_id)]}) for r in rows]


# ---------------------------------------------------------------------------- speed index
class SpeedIndex:
    """Machine speed over time from canary rows (see the module docstring).

    Args:
        canary_rows: ok rows with ``role == "canary"`` (superseded or not: every canary run counts).
        stat: the statistic compared (one of :data:`LABEL_STATS`).
        reference_host: the host whose median canary times are 1.0 (default: the host with the
            most canary rows).
        reference_ms: canary fingerprint -> reference time (ms), instead of the reference host's
            medians: puts another campaign's rows on that campaign's scale (see
            :mod:`archcast.collect.compare`).
    """

    def __init__(self, canary_rows: Iterable[PassRow], stat: str, reference_host: str | None = None,
                 reference_ms: dict[str, float] | None = None) -> None:
        series: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for r in canary_rows:
            v = r.stat(stat) if r.status == "ok" and r.role == CANARY else None
            if v is not None:
                series.setdefault((r.host, r.fingerprint), []).append((r.measured_at, v))
        if not series:
            raise InvalidInputError("no ok canary rows: the speed index needs canaries measured with the models")
        hosts: dict[str, int] = {}
        for (h, _), pts in series.items():
            hosts[h] = hosts.get(h, 0) + len(pts)
        self.reference_host = reference_host or max(sorted(hosts), key=lambda h: hosts[h])
        self.stat = stat
        self._series = {k: (np.array([t for t, _ in sorted(p)]), np.array([v for _, v in sorted(p)]))
                        for k, p in series.items()}
        if reference_ms is not None:
            self.reference_ms = {fp: float(v) for fp, v in reference_ms.items()
                                 if any(f == fp for _, f in self._series) and v > 0}
            if not self.reference_ms:
                raise InvalidInputError("none of the reference canaries was measured in these canary rows")
        else:
            self.reference_ms = {fp: float(np.median(v)) for (h, fp), (_, v) in self._series.items()
                                 if h == self.reference_host}
        if not self.reference_ms:
            raise InvalidInputError(f"reference host {self.reference_host!r} has no canary rows")

    def hosts(self) -> list[str]:
        return sorted({h for h, _ in self._series})

    def at(self, t: float, host: str) -> float:
        """The index on ``host`` at Unix time ``t``: per canary, the time interpolated between its
        measurements (constant beyond the first/last) over its reference; geometric mean."""
        logs = []
        for fp, ref in self.reference_ms.items():
            s = self._series.get((host, fp))
            if s is not None:
                logs.append(math.log(float(np.interp(t, s[0], s[1])) / ref))
        if not logs:
            raise InvalidInputError(f"host {host!r} has no canary rows of the reference canaries")
        return math.exp(sum(logs) / len(logs))

    def checkpoints(self, host: str) -> list[tuple[float, float]]:
        """``(time, index)`` at each canary measurement time on ``host`` (for drift plots/tables)."""
        times = sorted({float(t) for (h, _), (ts, _) in self._series.items() if h == host for t in ts})
        return [(t, self.at(t, host)) for t in times]


# ---------------------------------------------------------------------------- labels
def pass_values(rows: Sequence[PassRow], stat: str, speed: SpeedIndex | None = None, *,
                passes: Sequence[str] | None = None, first_row: bool = False) -> dict[str, dict[str, float]]:
    """Per model fingerprint, per pass id: the pass's value of ``stat`` (ms), divided by the speed
    index at its time when ``speed`` is given. Only model rows with status ok; ``passes`` limits
    the pass ids. The accepted row of a (model, pass) is the latest, or the first one with
    ``first_row`` (what the data set would hold without automatic re-measures)."""
    chosen: dict[tuple[str, str], PassRow] = {}
    for r in rows:
        if r.role == CANARY or r.status != "ok" or (passes is not None and r.pass_id not in passes):
            continue
        key = (r.fingerprint, r.pass_id)
        old = chosen.get(key)
        if old is None or (r.row_id < old.row_id if first_row else r.row_id > old.row_id):
            chosen[key] = r
    out: dict[str, dict[str, float]] = {}
    for (fp, pid), r in chosen.items():
        v = r.stat(stat)
        if v is None:
            continue
        if speed is not None:
            v /= speed.at(r.measured_at, r.host)
        out.setdefault(fp, {})[pid] = v
    return out


def robust_label(values: Sequence[float]) -> tuple[float, float]:
    """``(label, spread)`` of one model's per-pass values: the median over passes and
    (max - min) / median."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise InvalidInputError("a label needs at least one pass value")
    med = float(np.median(v))
    return med, float((v.max() - v.min()) / med) if med > 0 else float("nan")


def labels(values: dict[str, dict[str, float]]) -> dict[str, tuple[float, float, int]]:
    """Per model: ``(label, spread, n_passes)`` from :func:`pass_values`' output."""
    return {fp: (*robust_label(list(per.values())), len(per)) for fp, per in values.items() if per}


def disagreeing(values: dict[str, dict[str, float]], threshold: float) -> list[str]:
    """Models whose passes disagree: spread > ``threshold`` (they get a further pass)."""
    return sorted(fp for fp, (_, spread, n) in labels(values).items() if n >= 2 and spread > threshold)


# ---------------------------------------------------------------------------- noise
def median_or_none(values: Iterable[float | None]) -> float | None:
    """The median of the finite values, None when there are none."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.median(v)) if v else None


def rounded(obj: object) -> object:
    """``obj`` with every float rounded to 5 significant digits (readable JSON; noise is larger)."""
    if isinstance(obj, float):
        return float(f"{obj:.{SIG_DIGITS}g}") if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: rounded(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [rounded(v) for v in obj]
    return obj


def ape_stats(first: np.ndarray, again: np.ndarray) -> dict[str, float]:
    """Absolute relative differences of ``again`` against ``first``: mean (MAPE), median, p90, max."""
    ape = np.abs(again - first) / first
    return {"mape": float(ape.mean()), "median_ape": float(np.median(ape)), "p90_ape": float(np.percentile(ape, 90)),
            "max_ape": float(ape.max())}


def retest_error(a: dict[str, float], b: dict[str, float]) -> dict[str, float] | None:
    """:func:`ape_stats` of ``b`` against ``a`` over their common models (+ ``n``), None if none."""
    common = sorted(set(a) & set(b))
    if not common:
        return None
    return {"n": len(common), **ape_stats(np.array([a[k] for k in common]), np.array([b[k] for k in common]))}


def ablation(rows: Sequence[PassRow], label_passes: Sequence[str], retest_pass: str,
             stats: Sequence[str] = LABEL_STATS) -> list[dict[str, object]]:
    """Test-retest of the label against ``retest_pass`` for each protocol variant.

    Variants: every statistic in ``stats``, × canary normalisation on/off, × the label from the
    first pass only / from the first two passes / from all ``label_passes`` (extra passes on
    disagreement included), × automatic re-measures on/off. Each entry: the variant's settings
    and ``mape``, ``median_ape``, ``p90_ape``, ``n`` (models in both the label and the retest).
    """
    rows = list(rows)
    canaries = [r for r in rows if r.role == CANARY]
    out: list[dict[str, object]] = []
    pass_sets = {"1": list(label_passes[:1]), "2": list(label_passes[:2]), "all": list(label_passes)}
    for stat in stats:
        if not any(r.stat(stat) is not None for r in rows if r.role != CANARY):
            continue
        speed = None
        if canaries:
            try:
                speed = SpeedIndex(canaries, stat)
            except InvalidInputError:
                speed = None
        for norm in (False, True):
            if norm and speed is None:
                continue
            sp = speed if norm else None
            retest = {fp: v[retest_pass] for fp, v in pass_values(rows, stat, sp, passes=[retest_pass]).items()}
            for n_label, ps in pass_sets.items():
                for remeasure in (True, False):
                    lab = {fp: x[0] for fp, x in labels(pass_values(rows, stat, sp, passes=ps,
                                                                    first_row=not remeasure)).items()}
                    tr = retest_error(lab, retest)
                    if tr is not None:
                        out.append({"stat": stat, "canary_normalised": norm, "label_passes": n_label,
                                    "remeasure": remeasure, **tr})
    return out




def rows_from_table(table: Iterable[dict[str, str]]) -> list[PassRow]:
    """:class:`PassRow` of each row of ``passes.csv.xz`` (strings as :meth:`LatencyDataset.passes` gives them)."""
    from datetime import datetime

    def num(text: str, kind: type = float) -> float | int | None:
        return kind(text) if text not in ("", None) else None

    out = []
    for d in table:
        t = datetime.fromisoformat(d["measured_at"].rstrip("Z")).replace(tzinfo=UTC).timestamp()
        out.append(PassRow(row_id=int(d["row_id"]), fingerprint=d["fingerprint"], role=d["role"], pass_id=d["pass_id"],
                           status=d["status"], measured_at=t, host=d["host"], latency_ms_min=num(d["latency_ms_min"]),
                           latency_ms_median=num(d["latency_ms_median"]), latency_cv=num(d["latency_cv"]),
                           cpu_ms_min=num(d["cpu_ms_min"]), cpu_ms_median=num(d["cpu_ms_median"]),
                           cpu_cv=num(d["cpu_cv"]), n_runs=num(d["n_runs"], int), speed_index=num(d["speed_index"]),
                           superseded=d["superseded"] == "1"))
    return out


__all__ = [
    "CANARY",
    "LABEL_STATS",
    "PassRow",
    "SpeedIndex",
    "ablation",
    "ape_stats",
    "disagreeing",
    "labels",
    "mark_superseded",
    "median_or_none",
    "pass_values",
    "retest_error",
    "robust_label",
    "rounded",
]
