"""``archcast bench latency``: every latency predictor side by side on a measured data set.

Protocols (docs/design.md §3):

* ``in-family``: inside every family a random 80 / 20 split (per seed); one model is trained on
  the pooled 80 % parts (10 % of them held out for validation), and scored per family on its 20 %.
* ``lofo`` (leave-one-family-out): for each family, train on all other families (10 % of them for
  validation), test on every model of the held-out family ("unseen structure").
* ``logo`` (leave-one-group-out): the same with groups of families (CNNs / vision Transformers and
  hybrids / sequence models / graph models, :data:`archcast.data.splits.FAMILY_GROUPS`) held out
  whole: the hardest split, a kind of network never seen.

Per (protocol, predictor, seed, fold) one *job*; jobs run in ``jobs`` worker processes (one torch
thread each) and every finished job is appended to a JSON-lines cache next to the results, so an
interrupted run resumes where it stopped. Metrics per family (MAPE, Acc(5 %), Acc(10 %), Kendall
tau-b), their average over families, mean +- std over seeds. For ``archcast`` the ensemble's
90 % interval is calibrated by nested leave-one-family-out (the scale for family f comes only from
the other families' held-out errors) and its coverage is reported.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from archcast import metrics
from archcast.bench import DEFAULT_LATENCY_PREDICTORS as DEFAULT_PREDICTORS
from archcast.bench import LATENCY_PROTOCOLS as PROTOCOLS
from archcast.bench.report import write_report
from archcast.data.splits import (
    cap_per_family,
    family_groups,
    in_family_split,
    lofo_split,
    logo_split,
)
from archcast.errors import InvalidInputError

LEVEL = 0.9


@dataclass
class LatencyBenchConfig:
    dataset: str
    protocols: Sequence[str] = PROTOCOLS
    predictors: Sequence[str] = DEFAULT_PREDICTORS
    seeds: int = 3
    val_frac: float = 0.1
    test_frac: float = 0.2
    families: Sequence[str] | None = None  # LOFO folds (default: every family)
    train_cap: int | None = None  # at most this many training models per family (CPU budget)
    predictor_kw: dict[str, dict[str, Any]] = field(default_factory=dict)
    jobs: int = 2

    def __post_init__(self) -> None:
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad:
            raise InvalidInputError(f"unknown protocol(s) {bad}; valid: {', '.join(PROTOCOLS)}")
        if self.seeds < 1 or self.jobs < 1:
            raise InvalidInputError(f"--seeds and --jobs must be >= 1; got {self.seeds}, {self.jobs}")
        from archcast.predictors import predictor_class

        for p in self.predictors:
            predictor_class(p, task="latency")  # unknown name -> error listing the valid ones
        for p in self.predictor_kw:
            if p not in self.predictors:
                raise InvalidInputError(f"--set names predictor {p!r}, which is not in this run: {list(self.predictors)}")


# ------------------------------------------------------------------------------ workers
_DATA: dict[str, Any] = {}


def _load(dataset: str) -> dict[str, Any]:
    if _DATA.get("path") != dataset:
        from archcast.data.latency_dataset import load_latency_dataset

        ds = load_latency_dataset(dataset)
        _DATA.clear()
        # graphs parse on first access (LazyGraphs caches them): only job workers touch them
        _DATA.update(path=dataset, graphs=ds.graphs(), y=np.asarray(ds.latency_ms, dtype=np.float64),
                     families=np.array([r.family for r in ds.records]), fingerprint=ds.fingerprint, ds=ds)
    return _DATA


def _runtime_data(d: dict[str, Any]) -> tuple[Any, list[dict[str, float]]]:
    """The runtime (optimised) graphs and per-kernel labels of the loaded data set, for predictors
    that read what runs (``RUNTIME_GRAPHS``); loaded on first use (the kernel table is large)."""
    if "runtime" not in d:
        ds = d["ds"]
        if ds.format_version < 2:
            raise InvalidInputError(f"{d['path']} is a format-{ds.format_version} data set: predictors that read "
                                    "kernels need format 2 (optimised graphs + kernel times)")
        labels = ds.kernel_labels()
        d["runtime"] = (ds.optimized_graphs(), [labels.get(r.fingerprint, {}) for r in ds.records])
    return d["runtime"]


def _job_splits(job: dict[str, Any], families: np.ndarray, cfg: dict[str, Any]) -> tuple[np.ndarray, ...]:
    if job["protocol"] == "in-family":
        tr, va, te = in_family_split(families, job["seed"], cfg["test_frac"], cfg["val_frac"])
    elif job["protocol"] == "logo":
        tr, va, te = logo_split(families, job["fold"], job["seed"], cfg["val_frac"])
    else:
        tr, va, te = lofo_split(families, job["fold"], job["seed"], cfg["val_frac"])
    cap = cfg.get("train_cap")
    if cap:
        tr = cap_per_family(tr, families, cap, job["seed"])
        va = cap_per_family(va, families, max(2, int(round(cap * cfg["val_frac"]))), job["seed"])
    return tr, va, te


def run_job(job: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """Fit one predictor on one split; return predictions for the split's test models."""
    import torch

    from archcast.predictors import create_predictor

    torch.set_num_threads(1)
    d = _load(cfg["dataset"])
    g, y = d["graphs"], d["y"]
    tr, va, te = _job_splits(job, d["families"], cfg)
    pred = create_predictor(job["predictor"], task="latency", seed=job["seed"], **job["kw"])
    fit_kw: dict[str, Any] = {}
    if getattr(pred, "RUNTIME_GRAPHS", False):
        g, kernel_times = _runtime_data(d)
        missing = [i for i in np.concatenate([tr, va, te]) if g[i] is None]
        if missing:
            raise InvalidInputError(f"{len(missing)} models of {cfg['dataset']} have no optimised graph")
        fit_kw["kernel_times"] = [kernel_times[i] for i in tr]
    t0 = time.perf_counter()
    pred.fit([g[i] for i in tr], y[tr], [g[i] for i in va], y[va], **fit_kw)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    test_graphs = [g[i] for i in te]
    out: dict[str, Any] = {**job, "n_train": int(len(tr)), "n_val": int(len(va)), "test": te.tolist()}
    if hasattr(pred, "predict_members"):
        members = pred.predict_members(test_graphs)
        out["members"] = [[float(f"{v:.5g}") for v in row] for row in members]
        p = members.mean(0)
    elif "kernel_times" in fit_kw:
        p, kernel_pred = pred.predict_with_kernels(test_graphs)
    else:
        p = pred.predict(test_graphs)
    out["predict_s"] = time.perf_counter() - t1
    out["fit_s"] = fit_s
    if "kernel_times" in fit_kw:
        out["kernels"] = kernel_agreement(kernel_pred, test_graphs, [_runtime_data(d)[1][i] for i in te])
    out["pred"] = [float(f"{v:.5g}") for v in p]
    hist = getattr(pred, "history_", None)
    if isinstance(hist, dict):
        out["best_epoch"] = hist.get("best_epoch")
    elif isinstance(hist, list) and hist and isinstance(hist[0], dict):
        out["best_epoch"] = [h.get("best_epoch") for h in hist]
    return out


def kernel_agreement(pred_us: list[np.ndarray], graphs: list[Any], measured: list[dict[str, float]],
                     top: int = 5) -> dict[str, list[float]]:
    """Per test model, predicted against profiled kernel times (:func:`archcast.metrics.kernel_agreement`):
    ``mape`` over its labelled kernels, ``wape`` and ``top5``."""
    mape, wape, overlap = [], [], []
    for p, g, lab in zip(pred_us, graphs, measured):
        a = metrics.kernel_agreement(np.asarray(p), np.array([lab.get(n.name, np.nan) for n in g.nodes]), top)
        if a is not None:
            mape.append(a[0])
            wape.append(a[1])
            overlap.append(a[2])
    return {"mape": [round(v, 5) for v in mape], "wape": [round(v, 5) for v in wape],
            "top5": [round(v, 4) for v in overlap]}


def kernel_summary(runs: list[dict[str, Any]], seeds: int) -> dict[str, dict[str, float]]:
    """Mean +- std over seeds of :func:`archcast.metrics.kernel_agreement_summary` pooled over a
    protocol's test models."""
    per_seed = [metrics.kernel_agreement_summary(*([v for r in runs if r["seed"] == s for v in r["kernels"][f]]
                                                    for f in ("mape", "wape", "top5"))) for s in range(seeds)]
    return {k: _mean_std([ps[k] for ps in per_seed]) for k in per_seed[0]}


def _job_key(job: dict[str, Any], fingerprint: str) -> str:
    blob = json.dumps({**job, "data": fingerprint}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:16]


def plan_jobs(cfg: LatencyBenchConfig, families: Sequence[str]) -> list[dict[str, Any]]:
    jobs = []
    for proto in cfg.protocols:
        if proto == "in-family":
            folds = ["all"]
        elif proto == "logo":
            folds = sorted(set(family_groups(np.asarray(list(families))).tolist()))
        else:
            folds = list(cfg.families or families)
        for p in cfg.predictors:
            for seed in range(cfg.seeds):
                for fold in folds:
                    jobs.append({"protocol": proto, "predictor": p, "seed": seed, "fold": fold,
                                 "kw": dict(cfg.predictor_kw.get(p, {})), "train_cap": cfg.train_cap})
    cost = {"narformer-v2": 4, "archcast": 3, "nnlp": 2}
    jobs.sort(key=lambda j: -cost.get(j["predictor"], 0))  # long jobs first
    return jobs


def run_latency_bench(cfg: LatencyBenchConfig, cache: str | Path, *, progress: bool = True,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run (or resume) every job of ``cfg``; returns the aggregated result dict."""
    d = _load(cfg.dataset)
    fams = sorted(set(d["families"].tolist()))
    if cfg.families:
        missing = sorted(set(cfg.families) - set(fams))
        if missing:
            raise InvalidInputError(f"families {missing} are not in the data set; it has: {', '.join(fams)}")
    jobs = plan_jobs(cfg, fams)
    cache = Path(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    done: dict[str, dict[str, Any]] = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                done[r["key"]] = r
    todo = []
    for j in jobs:
        j["key"] = _job_key({k: j[k] for k in ("protocol", "predictor", "seed", "fold", "kw", "train_cap")},
                            d["fingerprint"])
        if j["key"] not in done:
            todo.append(j)
    log(f"latency bench: {len(jobs)} jobs, {len(jobs) - len(todo)} cached in {cache}, {len(todo)} to run "
        f"on {cfg.jobs} process(es)")
    ccfg = {"dataset": cfg.dataset, "val_frac": cfg.val_frac, "test_frac": cfg.test_frac, "train_cap": cfg.train_cap}
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="bench latency", unit="job")
    t0 = time.perf_counter()
    with cache.open("a") as fh:
        def finish(r: dict[str, Any]) -> None:
            done[r["key"]] = r
            fh.write(json.dumps(r) + "\n")
            fh.flush()
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{r['predictor']} {r['protocol']} {r['fold']} s{r['seed']} {r['fit_s']:.0f}s")

        if cfg.jobs == 1:
            for j in todo:
                finish(run_job(j, ccfg))
        elif todo:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(cfg.jobs, mp_context=ctx) as ex:
                pending = {ex.submit(run_job, j, ccfg) for j in todo}
                while pending:
                    fin, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for f in fin:
                        finish(f.result())
    if bar is not None:
        bar.close()
    results = [done[j["key"]] for j in jobs]
    return aggregate(cfg, results, d, wall_s=time.perf_counter() - t0)


# ------------------------------------------------------------------------------ aggregation
def _metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"mape": metrics.mape(y, p), "acc5": metrics.acc_within(y, p, 0.05),
            "acc10": metrics.acc_within(y, p, 0.10),
            "kendall_tau": metrics.kendall_tau(y, p) if len(y) > 2 else float("nan"), "n": int(len(y))}


def _mean_std(xs: Sequence[float]) -> dict[str, float]:
    a = np.asarray([x for x in xs if x is not None and np.isfinite(x)], dtype=np.float64)
    return {"mean": float(a.mean()) if a.size else float("nan"), "std": float(a.std()) if a.size else float("nan")}


def calibrate_k(ratio: np.ndarray, level: float = LEVEL) -> float:
    """Smallest k with ``level`` of ``|log(y/p)| <= k * sigma``, from ``ratio = |log(y/p)| / sigma``."""
    ratio = ratio[np.isfinite(ratio)]
    return float(np.quantile(ratio, level)) if ratio.size else 1.645


def aggregate(cfg: LatencyBenchConfig, results: list[dict[str, Any]], d: dict[str, Any], wall_s: float = 0.0) -> dict[str, Any]:
    y, fam = d["y"], d["families"]
    out: dict[str, Any] = {"config": {**asdict(cfg)}, "dataset_fingerprint": d["fingerprint"],
                           "n_models": int(len(y)), "families": sorted(set(fam.tolist())), "protocols": {}}
    for proto in cfg.protocols:
        pr = {}
        for p in cfg.predictors:
            runs = [r for r in results if r["protocol"] == proto and r["predictor"] == p]
            per_seed = []
            for seed in range(cfg.seeds):
                rs = [r for r in runs if r["seed"] == seed]
                idx = np.concatenate([np.asarray(r["test"], dtype=np.int64) for r in rs])
                pred = np.concatenate([np.asarray(r["pred"]) for r in rs])
                fams = {}
                for f in sorted(set(fam[idx].tolist())):
                    m = fam[idx] == f
                    fams[f] = _metrics(y[idx][m], pred[m])
                avg = {k: float(np.mean([v[k] for v in fams.values()])) for k in ("mape", "acc5", "acc10")}
                taus = [v["kendall_tau"] for v in fams.values() if np.isfinite(v["kendall_tau"])]
                avg["kendall_tau"] = float(np.mean(taus)) if taus else float("nan")
                avg["worst_mape"] = float(max(v["mape"] for v in fams.values()))
                pooled = _metrics(y[idx], pred)
                per_seed.append({"seed": seed, "families": fams, "average": avg, "pooled": pooled,
                                 "fit_s": float(np.mean([r["fit_s"] for r in rs])),
                                 "predict_s": float(np.sum([r["predict_s"] for r in rs])),
                                 "n_test": int(len(idx))})
            summary = {k: _mean_std([s["average"][k] for s in per_seed])
                       for k in ("mape", "acc5", "acc10", "kendall_tau", "worst_mape")}
            summary["pooled_mape"] = _mean_std([s["pooled"]["mape"] for s in per_seed])
            summary["fit_s"] = _mean_std([s["fit_s"] for s in per_seed])
            fam_mape = {f: _mean_std([s["families"][f]["mape"] for s in per_seed if f in s["families"]])
                        for f in per_seed[0]["families"]}
            entry = {"summary": summary, "per_family_mape": fam_mape, "seeds": per_seed}
            if proto in ("lofo", "logo") and runs:
                entry["conformal"] = conformal_coverage(runs, y, cfg.seeds)
            if runs and all("kernels" in r for r in runs):
                entry["kernels"] = kernel_summary(runs, cfg.seeds)
            if proto in ("lofo", "logo") and runs and "members" in runs[0] and (len(runs[0]["members"]) > 1 or cfg.seeds > 1):
                entry["interval"] = interval_coverage(runs, y, fam, cfg.seeds)
            pr[p] = entry
        out["protocols"][proto] = pr
    # scatter data: seed 0 of every predictor (test predictions)
    out["scatter"] = {proto: {p: _scatter_points(results, proto, p) for p in cfg.predictors} for proto in cfg.protocols}
    out["wall_s_this_run"] = wall_s
    from archcast.bench.report import environment

    out["environment"] = environment()
    return out


def _scatter_points(results: list[dict[str, Any]], proto: str, p: str) -> dict[str, list]:
    rs = [r for r in results if r["protocol"] == proto and r["predictor"] == p and r["seed"] == 0]
    return {"index": [i for r in rs for i in r["test"]], "pred": [v for r in rs for v in r["pred"]]}


def _coverage(by_f: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], res: dict[str, Any]) -> None:
    raw_cov, nested_cov, fam_cov = [], [], {}
    for f, (err, sigma, _) in by_f.items():
        raw_cov.append(float(np.mean(err <= 1.645 * sigma)))
        others = np.concatenate([e / s for g, (e, s, _) in by_f.items() if g != f])
        k = calibrate_k(others)
        fam_cov[f] = float(np.mean(err <= k * sigma))
        nested_cov.append(fam_cov[f])
    res["raw"].append(float(np.mean(raw_cov)))
    res["nested"].append(float(np.mean(nested_cov)))
    res["k_all"].append(calibrate_k(np.concatenate([e / s for e, s, _ in by_f.values()])))
    res["nested_per_family"].append(fam_cov)


def conformal_quantile(scores: np.ndarray, level: float = LEVEL) -> float:
    """Split-conformal half-width: the ``ceil((n + 1) level) / n`` empirical quantile of ``scores``."""
    scores = np.sort(scores[np.isfinite(scores)])
    if not scores.size:
        return float("inf")
    rank = min(int(math.ceil((scores.size + 1) * level)), scores.size)
    return float(scores[rank - 1])


def conformal_coverage(runs: list[dict[str, Any]], y: np.ndarray, seeds: int, level: float = LEVEL) -> dict[str, Any]:
    """A 90 % interval for any predictor, calibrated on held-out *folds*: for fold f (a family in
    LOFO, a group in LOGO) the interval is ``p * exp(+-h_f)`` with ``h_f`` the split-conformal
    quantile of ``|log(y/p)|`` over the other folds' test models (same seed, never f). Reports the
    coverage on f averaged over folds (and per fold, seed 0), the median interval factor exp(h), and
    ``h_all``, the quantile over all folds together."""
    cov, width, h_all, per_fold = [], [], [], {}
    for seed in range(seeds):
        rs = {r["fold"]: r for r in runs if r["seed"] == seed}
        if len(rs) < 2:
            continue
        err = {f: np.abs(np.log(y[np.asarray(r["test"], dtype=np.int64)] / np.maximum(np.asarray(r["pred"]), 1e-12)))
               for f, r in rs.items()}
        fold_cov, hs = {}, []
        for f, e in err.items():
            h = conformal_quantile(np.concatenate([v for g, v in err.items() if g != f]), level)
            fold_cov[f] = float(np.mean(e <= h))
            hs.append(h)
        cov.append(float(np.mean(list(fold_cov.values()))))
        width.append(float(np.exp(np.median(hs))))
        h_all.append(conformal_quantile(np.concatenate(list(err.values())), level))
        if seed == 0:
            per_fold = fold_cov
    # h_all: the quantile over every fold, the half-width a predictor trained on all families ships with
    return {"level": level, "coverage": _mean_std(cov), "factor": _mean_std(width), "h_all": _mean_std(h_all),
            "per_fold": per_fold}


def interval_coverage(runs: list[dict[str, Any]], y: np.ndarray, fam: np.ndarray, seeds: int) -> dict[str, Any]:
    """Coverage of the ensemble's 90 % interval on held-out families.

    The ensemble is each run's members when it has several, else the runs of all seeds of a fold
    (independent initialisations, data orders and validation splits: a deep ensemble).
    ``raw``: ``point * exp(±1.645 sigma)`` (Gaussian, uncalibrated), sigma = std of the members'
    log predictions. ``nested``: k for family f is calibrated on the other families' held-out ratios
    ``|log(y/p)| / sigma`` (never on f). ``ensemble_metrics``: the ensemble's point predictions."""
    res: dict[str, Any] = {"level": LEVEL, "raw": [], "nested": [], "k_all": [], "nested_per_family": []}

    def entry(te: np.ndarray, mem: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        point = mem.mean(0)
        sigma = np.log(np.maximum(mem, 1e-9)).std(0) + 1e-9
        return np.abs(np.log(y[te] / point)), sigma, point

    if len(runs[0]["members"]) > 1:
        res["ensemble"] = "members of each run"
        for seed in range(seeds):
            by_f = {r["fold"]: entry(np.asarray(r["test"], dtype=np.int64), np.asarray(r["members"], dtype=np.float64))
                    for r in runs if r["seed"] == seed}
            _coverage(by_f, res)
    else:
        res["ensemble"] = f"the {seeds} seeds' runs of each fold"
        by_f, fams = {}, {}
        for f in sorted({r["fold"] for r in runs}):
            rs = sorted((r for r in runs if r["fold"] == f), key=lambda r: r["seed"])
            te = np.asarray(rs[0]["test"], dtype=np.int64)
            by_f[f] = entry(te, np.asarray([r["pred"] for r in rs], dtype=np.float64))
            fams[f] = _metrics(y[te], by_f[f][2])
        _coverage(by_f, res)
        res["ensemble_metrics"] = {
            "average": {k: float(np.mean([v[k] for v in fams.values() if np.isfinite(v[k])] or [np.nan]))
                        for k in ("mape", "acc5", "acc10", "kendall_tau")},
            "worst_mape": float(max(v["mape"] for v in fams.values())),
            "per_family_mape": {f: v["mape"] for f, v in fams.items()},
        }
    return res


# ------------------------------------------------------------------------------ writing
def _pm(s: dict[str, float], scale: float = 100.0, digits: int = 1) -> str:
    if not np.isfinite(s["mean"]):
        return "–"
    return f"{s['mean'] * scale:.{digits}f} ± {s['std'] * scale:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    cfg = result["config"]
    lines = [f"# Latency prediction benchmark — `{Path(cfg['dataset']).name}`", "",
             f"{result['n_models']} measured models, {len(result['families'])} families; "
             f"{cfg['seeds']} seeds (mean ± std over seeds of the per-family average); "
             f"checkpoints/epochs chosen on a validation split of the training families only "
             f"({cfg['val_frac']:.0%} of the training models). MAPE and Acc in %."
             + (f" Training sets capped at {cfg['train_cap']} models per family (CPU budget)." if cfg.get("train_cap") else "")
             + (" Hyper-parameter overrides: " + json.dumps(cfg["predictor_kw"]) + "." if cfg.get("predictor_kw") else ""),
             ""]
    for proto, preds in result["protocols"].items():
        title = {"in-family": "In-family: random 80/20 inside every family, one model trained on all families' 80 %",
                 "lofo": "Leave-one-family-out: train on the other families, test on the held-out one",
                 "logo": "Leave-one-group-out: train on the other groups of families (CNN / vision Transformer and "
                         "hybrid / sequence / graph), test on every family of the held-out group"}[proto]
        lines += [f"## {title}", "",
                  "| predictor | MAPE | Acc(5%) | Acc(10%) | Kendall τ | worst family MAPE | fit s |",
                  "|---|---|---|---|---|---|---|"]
        for p, e in preds.items():
            s = e["summary"]
            lines.append(f"| {p} | {_pm(s['mape'])} | {_pm(s['acc5'])} | {_pm(s['acc10'])} | "
                         f"{_pm(s['kendall_tau'], 1, 3)} | {_pm(s['worst_mape'])} | {s['fit_s']['mean']:.0f} |")
        lines += ["", "Per-family MAPE (%), mean over seeds:", ""]
        names = list(preds)
        lines += ["| family | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for f in result["families"]:
            if f not in preds[names[0]]["per_family_mape"]:
                continue
            cells = []
            for p in names:
                m = preds[p]["per_family_mape"].get(f)
                cells.append(f"{m['mean'] * 100:.1f}" if m else "–")
            lines.append(f"| {f} | " + " | ".join(cells) + " |")
        kern = {p: e["kernels"] for p, e in preds.items() if e.get("kernels")}
        if kern:
            lines += ["", "Kernels of the test models, predicted against profiled (per model; mean ± std over seeds): "
                          "median over models of the kernel-time MAPE, mean WAPE (sum |p - t| / sum t), mean overlap "
                          "of the predicted and profiled top-5 kernels, share of models with >= 4 of 5 in common:", "",
                      "| predictor | kernel MAPE | WAPE | top-5 overlap | >= 4 of top 5 |", "|---|---|---|---|---|"]
            for p, k in kern.items():
                lines.append(f"| {p} | {_pm(k['median_kernel_mape'])} | {_pm(k['mean_wape'])} | "
                             f"{_pm(k['top5_overlap'])} | {_pm(k['top5_at_least_4'])} |")
        conf = {p: e["conformal"] for p, e in preds.items() if e.get("conformal", {}).get("per_fold")}
        if conf:
            lines += ["", "90 % split-conformal interval (`p × exp(±h)`, h calibrated on the *other* held-out "
                          "folds' errors, never on the fold scored): coverage on held-out folds and the median "
                          "interval factor exp(h):", "",
                      "| predictor | coverage % | factor | folds under 80 % |", "|---|---|---|---|"]
            for p, c in conf.items():
                low = sorted(f for f, v in c["per_fold"].items() if v < 0.8)
                lines.append(f"| {p} | {_pm(c['coverage'])} | ×{c['factor']['mean']:.2f} | "
                             f"{', '.join(low) if low else '–'} |")
        for p, e in preds.items():
            iv = e.get("interval")
            if iv:
                lines += ["", f"**{p} 90 % interval on held-out families** (ensemble = {iv['ensemble']}): coverage "
                              f"{np.mean(iv['nested']) * 100:.1f} % with the ensemble spread scaled by k calibrated on the "
                              f"other families (nested LOFO; k over all families = {np.mean(iv['k_all']):.2f}); "
                              f"uncalibrated ±1.645σ covers {np.mean(iv['raw']) * 100:.1f} %."]
                em = iv.get("ensemble_metrics")
                if em:
                    lines.append(f"The ensemble's own point prediction: average MAPE {em['average']['mape'] * 100:.1f} %, "
                                 f"Acc(10%) {em['average']['acc10'] * 100:.1f} %, worst family {em['worst_mape'] * 100:.1f} %.")
        lines.append("")
    env = result.get("environment", {})
    lines += [f"Machine: {env.get('cpu', '?')} ({env.get('cpu_count', '?')} cores), {env.get('date_utc', '')}.", ""]
    return "\n".join(lines)


def scatter_png(result: dict[str, Any], y: np.ndarray, families: np.ndarray, path: Path, proto: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    preds = result["scatter"][proto]
    names = list(preds)
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig = Figure(figsize=(4.2 * cols, 4.0 * rows))
    FigureCanvasAgg(fig)
    fams = sorted(set(families.tolist()))
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    lo, hi = float(y.min()) * 0.7, float(y.max()) * 1.4
    for k, p in enumerate(names):
        ax = fig.add_subplot(rows, cols, k + 1)
        idx = np.asarray(preds[p]["index"], dtype=np.int64)
        pv = np.asarray(preds[p]["pred"])
        for c, f in enumerate(fams):
            m = families[idx] == f
            if m.any():
                ax.scatter(y[idx][m], pv[m], s=3, alpha=0.5, color=cmap(c % 20), label=f)
        ax.plot([lo, hi], [lo, hi], "k-", lw=0.6)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        mape = result["protocols"][proto][p]["summary"]["mape"]["mean"] * 100
        ax.set_title(f"{p}: MAPE {mape:.1f} %", fontsize=9)
        ax.set_xlabel("measured (ms)", fontsize=8)
        ax.set_ylabel("predicted (ms)", fontsize=8)
    handles, labels = fig.axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(10, len(labels)), fontsize=7, markerscale=3)
    fig.suptitle(f"latency, {proto} (seed 0)", fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 0.96))
    fig.savefig(path, dpi=110)


def write_results(result: dict[str, Any], out_dir: str | Path, stem: str) -> list[Path]:
    """``<stem>.json``, ``<stem>.md`` and one log-log scatter ``<stem>_<protocol>.png`` per protocol."""
    d = _load(result["config"]["dataset"])
    figures = {f"_{proto}": (lambda path, proto=proto: scatter_png(result, d["y"], d["families"], path, proto))
               for proto in result["protocols"]}
    return write_report(result, out_dir, stem, markdown(result), figures, drop=("scatter",))