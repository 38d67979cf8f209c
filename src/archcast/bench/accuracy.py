"""``archcast bench accuracy``: every registered predictor on the same splits, one run.

Protocol (docs/design.md §3): for each training size and seed, ``train`` random cells, 200 validation
cells (the only data used for model selection), test = all remaining cells. ``split="iso"`` keeps
every isomorphism class on one side (NB201 only). Results: JSON (every run + summary +
environment), a Markdown table (mean ± std over seeds) and a predicted-vs-true scatter PNG.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from archcast import metrics
from archcast.bench.report import environment, write_report
from archcast.errors import InvalidInputError

SPLITS = ("random", "iso")

# CPU budget: the faithful narformer-v2 (8.6 M parameters, batch 8) takes ~0.1 s a step here, so the
# reference's 1000 epochs would take days per fit. The benchmark keeps its architecture, tokens,
# losses and optimiser and cuts the epochs; the table says so.
BENCH_DEFAULTS: dict[str, dict[str, Any]] = {"narformer-v2": {"epochs": 10}}
REPORTED = ("kendall_tau", "spearman", "mape", "acc_1pct", "acc_5pct", "acc_10pct")


@dataclass
class AccuracyBenchConfig:
    """What one benchmark run does."""

    dataset: str = "nb201"
    train_sizes: list[int] = field(default_factory=lambda: [781, 1563])
    train_fraction: float | None = None  # overrides train_sizes (e.g. 0.05 for NAS-Bench-Graph)
    val_size: int = 200
    seeds: int = 5
    predictors: list[str] | None = None
    split: str = "random"
    predictor_kw: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise InvalidInputError(f"split {self.split!r} is not one of {SPLITS}")
        if self.seeds < 1:
            raise InvalidInputError(f"seeds must be >= 1, got {self.seeds}")


def run_accuracy_bench(cfg: AccuracyBenchConfig, *, log: Callable[[str], None] = print,
                       progress: bool = True) -> dict[str, Any]:
    """Run the benchmark and return the result dict (see module docstring)."""
    from archcast.data import DATASETS
    from archcast.data.splits import group_split, random_split
    from archcast.predictors import create_predictor, list_predictors, predictor_class

    names = cfg.predictors or list_predictors("accuracy")
    for n in names:
        predictor_class(n, "accuracy")  # fail early with the list of valid names
    ds = DATASETS.get(cfg.dataset)()
    if cfg.split == "iso" and ds.groups is None:
        raise InvalidInputError(f"dataset {cfg.dataset!r} has no isomorphism classes; use split='random'")
    sizes = [int(round(cfg.train_fraction * len(ds)))] if cfg.train_fraction else list(cfg.train_sizes)
    for s in sizes:
        if s + cfg.val_size >= len(ds):
            raise InvalidInputError(f"train size {s} + val {cfg.val_size} leaves no test cells in {len(ds)}")

    kw = {n: {**BENCH_DEFAULTS.get(n, {}), **cfg.predictor_kw.get(n, {})} for n in names}
    runs: list[dict[str, Any]] = []
    scatter: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    jobs = [(s, seed, n) for s in sizes for seed in range(cfg.seeds) for n in names]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(jobs), desc=f"bench {cfg.dataset}", unit="fit")
    for size in sizes:
        for seed in range(cfg.seeds):
            if cfg.split == "iso":
                tr, va, te = group_split(ds.groups, size, cfg.val_size, seed)
            else:
                tr, va, te = random_split(len(ds), size, cfg.val_size, seed)
            g_tr = [ds.graphs[i] for i in tr]
            g_va = [ds.graphs[i] for i in va]
            g_te = [ds.graphs[i] for i in te]
            for name in names:
                pred = create_predictor(name, task="accuracy", seed=seed, **kw[name])
                t0 = time.perf_counter()
                pred.fit(g_tr, ds.y[tr], g_va, ds.y[va])
                fit_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                p = pred.predict(g_te)
                pred_s = time.perf_counter() - t0
                m = metrics.all_metrics(ds.y[te], p)
                runs.append({"predictor": name, "train_size": size, "seed": seed, "n_val": len(va),
                             "n_test": len(te), "fit_s": fit_s, "predict_s": pred_s, **m})
                if seed == 0 and size == max(sizes):
                    scatter[name] = (ds.y[te], p)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(last=f"{name}@{size}/s{seed} tau={m['kendall_tau']:.3f}")
                else:
                    log(f"{name} train={size} seed={seed} tau={m['kendall_tau']:.4f} fit={fit_s:.1f}s")
    if bar is not None:
        bar.close()
    return {
        "benchmark": "accuracy",
        "dataset": cfg.dataset,
        "n_cells": len(ds),
        "split": cfg.split,
        "protocol": (f"train on N cells drawn at random ({cfg.split} split), select checkpoints on "
                     f"{cfg.val_size} validation cells, test on all remaining cells; "
                     + (f"mean ± std over {cfg.seeds} seeds" if cfg.seeds > 1 else "one seed")),
        "config": {**cfg.__dict__, "predictor_kw": kw},
        "environment": environment(),
        "runs": runs,
        "summary": summarize(runs),
        "_scatter": scatter,
    }


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and std per (train_size, predictor)."""
    out = []
    keys = sorted({(r["train_size"], r["predictor"]) for r in runs})
    for size, name in keys:
        rs = [r for r in runs if r["train_size"] == size and r["predictor"] == name]
        row: dict[str, Any] = {"train_size": size, "predictor": name, "seeds": len(rs)}
        for k in REPORTED + ("fit_s", "predict_s"):
            v = np.array([r[k] for r in rs], dtype=float)
            row[k] = float(v.mean())
            row[k + "_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        out.append(row)
    return out


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Accuracy prediction: {result['dataset']} ({result['split']} split)",
        "",
        f"Protocol: {result['protocol']}.",
        f"Cells: {result['n_cells']}. Machine: {result['environment']['cpu']} "
        f"({result['environment']['cpu_count']} cores), torch {result['environment']['torch']}, "
        f"archcast {result['environment']['archcast']}, {result['environment']['date_utc']}.",
        "",
        "| train | predictor | Kendall τ | Spearman | MAPE % | Acc(1%) | Acc(5%) | fit s | predict s |",
        "|---:|---|---|---|---|---|---|---:|---:|",
    ]
    def pm(r: dict[str, Any], k: str, scale: float = 1.0, fmt: str = ".4f") -> str:
        # a single seed has no spread: print the value alone rather than a fake "± 0"
        v = f"{scale * r[k]:{fmt}}"
        return v if r["seeds"] < 2 else f"{v} ± {scale * r[k + '_std']:{fmt}}"

    for r in result["summary"]:
        lines.append(
            f"| {r['train_size']} | {r['predictor']} | {pm(r, 'kendall_tau')} | {pm(r, 'spearman')} "
            f"| {pm(r, 'mape', 100, '.2f')} | {100 * r['acc_1pct']:.1f} | {100 * r['acc_5pct']:.1f} "
            f"| {r['fit_s']:.1f} | {r['predict_s']:.2f} |"
        )
    overrides = {n: k for n, k in result["config"]["predictor_kw"].items() if k}
    if overrides:
        lines += ["", "Hyper-parameters changed from the presets in this run: "
                  + "; ".join(f"`{n}`: " + ", ".join(f"{a}={b}" for a, b in k.items()) for n, k in sorted(overrides.items()))
                  + (" (reference: 1000 epochs)" if "narformer-v2" in overrides else "") + "."]
    for extra in result.get("notes", []):
        lines += ["", extra]
    return "\n".join(lines) + "\n"


def scatter_png(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sc = result["_scatter"]
    n = len(sc)
    cols = min(3, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4 * rows), squeeze=False)
    for ax, (name, (t, p)) in zip(axes.flat, sorted(sc.items())):
        ax.scatter(t, p, s=2, alpha=0.3)
        lo, hi = float(min(t.min(), p.min())), float(max(t.max(), p.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(f"{name}: τ={metrics.kendall_tau(t, p):.3f}")
        ax.set_xlabel("true accuracy (%)")
        ax.set_ylabel("predicted (%)")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    size = max(r["train_size"] for r in result["runs"])
    fig.suptitle(f"{result['dataset']}: predicted vs true, train={size}, seed 0, test cells")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(result: dict[str, Any], out_dir: str | Path, stem: str) -> list[Path]:
    """Write ``<stem>.json``, ``<stem>.md`` and ``<stem>.png`` under ``out_dir``."""
    return write_report(result, out_dir, stem, markdown(result), {"": lambda p: scatter_png(result, p)})