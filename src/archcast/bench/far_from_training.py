"""``archcast bench far-from-training``: does the kernel predictor's far-from-training warning
pick out the models it predicts badly?

Protocol. The predictions are those of a committed ``bench latency`` run (its jobs file): every
leave-one-family-out fold's held-out models, per predictor and seed. A model's error is
``|pred / measured - 1|`` averaged over the seeds. For each fold, a
:class:`~archcast.predictors.latency.far.FarFromTraining` reference is fitted on the fold's
training families alone (features of :func:`~archcast.service.build.kernel_ood_matrix`; its
threshold from an inner leave-one-family-out over those families, so the held-out family takes no
part in it) and scores the held-out models; a model is *warned* when its score exceeds the fold's
threshold at quantile ``q``. Reported per ``q`` and predictor: the share of models warned, the MAPE
of warned and unwarned models and their shares of errors above 25 %; and Spearman's rank
correlation of score and error over all held-out models.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from archcast import metrics
from archcast.bench.report import write_report
from archcast.errors import InvalidInputError

QUANTILES = (0.8, 0.9, 0.95)
BAD = 0.25  # an error above this is "bad"
PLOT_PREDICTORS = ("kernels", "flops-mem-linear")


def read_jobs(path: str | Path, n_models: int, protocol: str = "lofo", fingerprint: str | None = None
              ) -> dict[str, dict[str, Any]]:
    """``{predictor: {"seeds": [...], "pred": [seed, model] (NaN: not predicted), "fold": [model]}}``
    from a ``bench latency`` jobs file (fields ``test`` / ``pred`` may be JSON strings); with
    ``fingerprint``, every record's key must be that of the data set (same protocol and options)."""
    from archcast.bench.latency import _job_key

    p = Path(path)
    by: dict[str, dict[int, dict[int, float]]] = {}
    folds: dict[str, dict[int, str]] = {}
    try:
        lines = p.read_text().splitlines()
    except OSError as e:
        raise InvalidInputError(f"cannot read the jobs file {str(p)!r}: {e.strerror or e}") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
            if r.get("protocol") != protocol:
                continue
            test = json.loads(r["test"]) if isinstance(r["test"], str) else r["test"]
            pred = json.loads(r["pred"]) if isinstance(r["pred"], str) else r["pred"]
            name, seed, fold = str(r["predictor"]), int(r["seed"]), str(r["fold"])
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidInputError(f"{str(p)!r} line {n} is not a latency bench job record: {e!r}") from None
        if fingerprint is not None:
            job = {k: r.get(k) for k in ("protocol", "predictor", "seed", "fold", "kw", "train_cap")}
            if r.get("key") != _job_key(job, fingerprint):
                raise InvalidInputError(f"{str(p)!r} line {n} was not run on this data set (fingerprint {fingerprint})")
        if len(test) != len(pred) or any(not 0 <= int(i) < n_models for i in test):
            raise InvalidInputError(f"{str(p)!r} line {n}: test indices outside the data set's {n_models} models")
        d = by.setdefault(name, {}).setdefault(seed, {})
        for i, v in zip(test, pred):
            d[int(i)] = float(v)
            folds.setdefault(name, {})[int(i)] = fold
    out = {}
    for name, seeds in sorted(by.items()):
        arr = np.full((len(seeds), n_models), np.nan)
        for j, s in enumerate(sorted(seeds)):
            for i, v in seeds[s].items():
                arr[j, i] = v
        fold = np.array([folds[name].get(i, "") for i in range(n_models)], dtype=object)
        out[name] = {"seeds": sorted(seeds), "pred": arr, "fold": fold}
    if not out:
        raise InvalidInputError(f"{str(p)!r} has no {protocol!r} records")
    return out


def fold_scores(x: np.ndarray, families: np.ndarray, folds: Sequence[str], quantiles: Sequence[float], k: int = 5
                ) -> tuple[np.ndarray, dict[float, np.ndarray], dict[str, dict[str, float]]]:
    """``(score [n], {q: fold threshold of each model [n]}, {fold: {q: threshold}})``: each fold's
    held-out family scored by a reference fitted without it (NaN outside ``folds``)."""
    from archcast.predictors.latency.far import FarFromTraining

    score = np.full(len(x), np.nan)
    thr = {q: np.full(len(x), np.nan) for q in quantiles}
    per_fold: dict[str, dict[str, float]] = {}
    for f in folds:
        te, tr = families == f, families != f
        if not te.any() or tr.sum() < 2:
            continue
        ref = FarFromTraining(k=k, q=max(quantiles)).fit(x[tr], families[tr])
        score[te] = ref.score(x[te])
        per_fold[f] = {}
        for q in quantiles:
            thr[q][te] = per_fold[f][f"{q:g}"] = ref.threshold_at(q)
    return score, thr, per_fold


def _share(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


def _stats(err: np.ndarray, warned: np.ndarray) -> dict[str, Any]:
    w, u = err[warned], err[~warned]
    return {"n": int(len(err)), "n_warned": int(warned.sum()), "share_warned": _share(warned),
            "mape_warned": float(w.mean()) if w.size else float("nan"),
            "mape_unwarned": float(u.mean()) if u.size else float("nan"),
            "over25_warned": _share(w > BAD), "over25_unwarned": _share(u > BAD)}


def run_far_bench(dataset: str | Path, jobs_file: str | Path, *, quantiles: Sequence[float] = QUANTILES, k: int = 5,
                  predictors: Sequence[str] | None = None, protocol: str = "lofo") -> dict[str, Any]:
    from archcast.bench.report import environment
    from archcast.data.latency_dataset import load_latency_dataset
    from archcast.predictors.latency.far import FEATURES, FarFromTraining
    from archcast.service.build import kernel_ood_matrix

    t0 = time.perf_counter()
    quantiles = sorted(float(q) for q in quantiles)
    if not quantiles or not all(0.0 < q < 1.0 for q in quantiles):
        raise InvalidInputError(f"quantiles must lie in (0, 1); got {quantiles}")
    ds = load_latency_dataset(dataset)
    if ds.format_version < 2:
        raise InvalidInputError(f"{dataset} is a format-{ds.format_version} data set; the kernel-mix features "
                                "need format 2 (optimised graphs)")
    runtime = ds.optimized_graphs()
    n = len(ds.records)
    ok = np.array([runtime[i] is not None for i in range(n)])
    x = np.zeros((n, len(FEATURES)))
    x[ok] = kernel_ood_matrix(ds, runtime, np.flatnonzero(ok))
    fam = np.array([r.family for r in ds.records])
    y = np.asarray(ds.latency_ms, dtype=np.float64)
    jobs = read_jobs(jobs_file, n, protocol, ds.fingerprint)
    if predictors:
        missing = sorted(set(predictors) - set(jobs))
        if missing:
            raise InvalidInputError(f"predictors {missing} have no {protocol} records in {jobs_file}; it has "
                                    f"{', '.join(jobs)}")
        jobs = {p: jobs[p] for p in predictors}
    folds = sorted({f for j in jobs.values() for f in j["fold"] if f})
    if protocol == "lofo":
        bad = sorted({f for j in jobs.values() for i, f in enumerate(j["fold"]) if f and f != fam[i]})
        if bad:
            raise InvalidInputError(f"{jobs_file}: folds {bad[:5]} hold out models of other families")
    score, thr, per_fold = fold_scores(x[ok], fam[ok], folds, quantiles, k)
    score_all = np.full(n, np.nan)
    score_all[ok] = score
    thr_all = {q: np.full(n, np.nan) for q in quantiles}
    for q in quantiles:
        thr_all[q][ok] = thr[q]

    errors, res_q = {}, {f"{q:g}": {"predictors": {}} for q in quantiles}
    spear = {}
    for name, j in jobs.items():
        e = np.abs(j["pred"] / y[None, :] - 1.0)  # [seed, model], NaN where a seed did not predict it
        seen = np.isfinite(e).sum(0)
        err = np.where(seen > 0, np.where(np.isfinite(e), e, 0.0).sum(0) / np.maximum(seen, 1), np.nan)
        have = np.isfinite(err) & np.isfinite(score_all)
        errors[name] = err
        for q in quantiles:
            res_q[f"{q:g}"]["predictors"][name] = _stats(err[have], (score_all > thr_all[q])[have])
        spear[name] = metrics.spearman(score_all[have], err[have]) if have.sum() > 2 else float("nan")
    by_family = {}
    qmax = max(quantiles)
    for f in folds:
        m = (fam == f) & np.isfinite(score_all)
        row = {"n": int(m.sum()), "score_median": float(np.median(score_all[m])) if m.any() else float("nan"),
               f"threshold@{qmax:g}": per_fold.get(f, {}).get(f"{qmax:g}", float("nan")),
               **{f"share_warned@{q:g}": _share((score_all > thr_all[q])[m]) for q in quantiles}}
        for name in jobs:
            e = errors[name][m]
            row[f"mape_{name}"] = float(e[np.isfinite(e)].mean()) if np.isfinite(e).any() else float("nan")
        by_family[f] = row
    for q in quantiles:
        t = np.asarray([v[f"{q:g}"] for v in per_fold.values()])
        res_q[f"{q:g}"]["threshold"] = {"mean": float(t.mean()), "min": float(t.min()), "max": float(t.max())}
    full = FarFromTraining(k=k, q=qmax).fit(x[ok], fam[ok])  # the reference a checkpoint on all models ships
    return {"dataset": str(dataset), "dataset_fingerprint": ds.fingerprint, "jobs_file": str(jobs_file),
            "protocol": protocol, "k": k, "quantiles": res_q, "q_list": quantiles, "features": list(FEATURES),
            "n_models": int(ok.sum()), "n_folds": len(per_fold), "seeds": {p: j["seeds"] for p, j in jobs.items()},
            "spearman": spear, "by_family": by_family, "fold_thresholds": per_fold,
            "all_models_threshold": {f"{q:g}": full.threshold_at(q) for q in quantiles},
            "error": "per model |pred / measured - 1|, averaged over seeds", "bad_error": BAD,
            "wall_s": time.perf_counter() - t0, "environment": environment(),
            "_score": score_all, "_threshold": thr_all, "_errors": errors, "_family": fam}


def _pct(v: float) -> str:
    return "–" if not np.isfinite(v) else f"{100 * v:.1f}"


def markdown(res: dict[str, Any], command: str = "") -> str:
    name = Path(res["dataset"]).name
    preds = list(res["seeds"])
    lines = [f"# Far from the training data: the kernel-mix/size warning on `{name}` ({res['protocol']})", "",
             f"{res['n_models']} held-out models in {res['n_folds']} folds; predictions from "
             f"`{Path(res['jobs_file']).name}` "
             f"({', '.join(f'{p}: {len(s)} seeds' for p, s in res['seeds'].items())}); a model's error is "
             f"|pred / measured − 1| averaged over seeds. Score: mean distance to the {res['k']} nearest training "
             "models in standardised log FLOPs / memory / params / kernel count and √(kernel-class shares); "
             "each fold's threshold is the q quantile of an inner leave-one-family-out over its training "
             "families only (the held-out family takes no part).", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += ["| q | warned | threshold (mean over folds) | predictor | MAPE warned | MAPE unwarned | "
              f"error > {100 * res['bad_error']:.0f} % warned | error > {100 * res['bad_error']:.0f} % unwarned |",
              "|---|---|---|---|---|---|---|---|"]
    for q in res["q_list"]:
        r = res["quantiles"][f"{q:g}"]
        for j, p in enumerate(preds):
            s = r["predictors"][p]
            head = (f"| {q:g} | {_pct(s['share_warned'])} % ({s['n_warned']}) | {r['threshold']['mean']:.2f} "
                    f"({r['threshold']['min']:.2f}–{r['threshold']['max']:.2f}) |") if j == 0 else "| | | |"
            lines.append(f"{head} {p} | {_pct(s['mape_warned'])} % | {_pct(s['mape_unwarned'])} % | "
                         f"{_pct(s['over25_warned'])} % | {_pct(s['over25_unwarned'])} % |")
    rho = ", ".join(f"{p} {v:.2f}" for p, v in res["spearman"].items())
    lines += ["", f"Spearman ρ(score, error): {rho}.", ""]
    lines += ["Where the warned models are (family: share of it warned, its `kernels` MAPE):", ""]
    for q in res["q_list"]:
        key = f"share_warned@{q:g}"
        fams = sorted(((f, v) for f, v in res["by_family"].items() if v[key] > 0), key=lambda kv: -kv[1][key])
        shown = ", ".join(f"{f} {_pct(v[key])} % ({_pct(v.get('mape_kernels', float('nan')))} %)" for f, v in fams[:10])
        lines.append(f"- q = {q:g}: {len(fams)} families; " + (shown or "none")
                     + (f", and {len(fams) - 10} more" if len(fams) > 10 else "") + ".")
    lines.append("")
    thr = res["all_models_threshold"]
    lines += ["Fitted on all models (what a checkpoint trained on the whole data set would ship): threshold "
              + ", ".join(f"{v:.2f} at q = {q}" for q, v in thr.items()) + ".", ""]
    env = res.get("environment", {})
    lines += [f"Machine: {env.get('cpu', '?')}, {env.get('date_utc', '')}; wall {res['wall_s']:.0f} s.", ""]
    return "\n".join(lines)


def plot(res: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    qmax = max(res["q_list"])
    score, thr = res["_score"], res["_threshold"][qmax]
    names = [p for p in PLOT_PREDICTORS if p in res["_errors"]] or list(res["_errors"])[:2]
    fig = Figure(figsize=(5.2 * len(names), 4.2))
    FigureCanvasAgg(fig)
    for j, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), j + 1)
        err = res["_errors"][name]
        m = np.isfinite(err) & np.isfinite(score) & np.isfinite(thr)
        rel = score[m] / thr[m]
        far = rel > 1
        ax.scatter(rel[~far], 100 * np.maximum(err[m][~far], 1e-4), s=5, alpha=0.35, color="tab:blue", label="unwarned")
        ax.scatter(rel[far], 100 * np.maximum(err[m][far], 1e-4), s=8, alpha=0.7, color="tab:red", label="warned")
        ax.axvline(1.0, color="k", lw=0.9, ls="--", label=f"threshold (q = {qmax:g})")
        ax.axhline(100 * res["bad_error"], color="gray", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_yscale("log")
        s = res["quantiles"][f"{qmax:g}"]["predictors"][name]
        ax.set_title(f"{name}: MAPE warned {_pct(s['mape_warned'])} % vs {_pct(s['mape_unwarned'])} % "
                     f"(ρ {res['spearman'][name]:.2f})", fontsize=9)
        ax.set_xlabel("score / the fold's threshold")
        ax.set_ylabel("|pred / measured − 1| (%, mean over seeds)")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(res: dict[str, Any], out_dir: str | Path, stem: str, command: str = "") -> list[Path]:
    """``<stem>.json``, ``<stem>.md`` and the error-vs-score scatter ``<stem>.png``."""
    return write_report(res, out_dir, stem, markdown(res, command), {"": lambda p: plot(res, p)})


__all__ = ["QUANTILES", "fold_scores", "markdown", "plot", "read_jobs", "run_far_bench", "write"]
