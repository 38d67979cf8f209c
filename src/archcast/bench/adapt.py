"""``archcast bench adapt``: how many measurements a new platform needs.

Given a data set measured on the *new* platform (``archcast dataset export``) and the predictor
of a base platform, hold out a fixed random ``test_frac`` of the new platform's models; the rest
is the pool a user could measure. For each budget n (10/20/50/100) and seed:

* ``fine-tune``: n models chosen from the pool by stratified k-medoids (latency strata of the base
  predictor, the medoid of each in its embedding space: ``archcast adapt --selection k-medoids``),
  base predictor fine-tuned on them for a fixed step budget (:func:`adapt.fine_tune`);
* ``fine-tune (k-center)``: the same with greedy k-center picks (``archcast adapt``'s default);
* ``fine-tune (random)``: the same with n random pool models (must not beat the chosen picks);
* ``scratch``: a fresh predictor trained only on the n k-medoids models;

and, as the reference "trained on all of that platform's data": ``scratch`` and ``fine-tune`` on
the whole pool. The base predictor unadapted is reported too. Test MAPE / Acc(10 %) / Kendall tau
on the held-out models, mean +- std over seeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from archcast import metrics
from archcast.bench.report import write_report
from archcast.errors import InvalidInputError

BUDGETS = (10, 20, 50, 100)


def _score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"mape": metrics.mape(y, p), "acc10": metrics.acc_within(y, p, 0.10), "kendall_tau": metrics.kendall_tau(y, p)}


def _setup(dataset: str | Path, base_dir: str | Path, test_frac: float) -> dict[str, Any]:
    import torch

    from archcast.data.latency_dataset import load_latency_dataset
    from archcast.predictors.latency.archcast import ArchcastLatency

    torch.set_num_threads(1)
    ds = load_latency_dataset(dataset)
    base = ArchcastLatency.load(base_dir)
    graphs = list(ds.graphs())
    y = np.asarray(ds.latency_ms, dtype=np.float64)
    perm = np.random.default_rng(12345).permutation(len(graphs))
    n_test = int(round(test_frac * len(graphs)))
    test, pool = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    return {"ds": ds, "base": base, "graphs": graphs, "y": y, "test": test, "pool": pool}


def _seed_rows(dataset: str, base_dir: str, test_frac: float, seed: int, budgets: Sequence[int],
               sc_hp: dict[str, Any], ft_kw: dict[str, Any]) -> list[dict[str, Any]]:
    """Every method and budget for one seed (runs in a worker process)."""
    from archcast.adapt.run import (
        fine_tune,
        from_scratch,
        select_diverse,
        select_representative,
    )

    d = _setup(dataset, base_dir, test_frac)
    base, graphs, y, test, pool = d["base"], d["graphs"], d["y"], d["test"], d["pool"]
    gt, gp, yp = [graphs[i] for i in test], [graphs[i] for i in pool], y[pool]
    emb = base.embeddings(gp)
    base_ms = base.predict(gp)
    rows: list[dict[str, Any]] = []

    def add(method: str, n: int, make: Callable[[], Any]) -> None:
        t = time.perf_counter()
        model = make()
        fit_s = time.perf_counter() - t
        rows.append({"method": method, "budget": n, "seed": seed, **_score(y[test], model.predict(gt)), "fit_s": fit_s})

    for n in budgets:
        chosen = select_representative(emb, base_ms, n, seed=seed)
        center = select_diverse(emb, n, seed=seed)
        rnd = np.random.default_rng([seed, n]).choice(len(pool), n, replace=False)
        add("fine-tune", n, lambda: fine_tune(base, [gp[i] for i in chosen], yp[chosen], seed=seed, **ft_kw))
        add("fine-tune (k-center)", n, lambda: fine_tune(base, [gp[i] for i in center], yp[center], seed=seed, **ft_kw))
        add("fine-tune (random)", n, lambda: fine_tune(base, [gp[i] for i in rnd], yp[rnd], seed=seed, **ft_kw))
        add("scratch", n, lambda: from_scratch([gp[i] for i in chosen], yp[chosen], seed=seed, template_hparams=sc_hp))
    add("scratch (all pool)", len(pool), lambda: from_scratch(gp, yp, val_frac=0.1, seed=seed, template_hparams=sc_hp))
    add("fine-tune (all pool)", len(pool), lambda: fine_tune(base, gp, yp, val_frac=0.1, seed=seed, **ft_kw))
    return rows


def run_adapt_bench(dataset: str | Path, base_dir: str | Path, *, budgets: Sequence[int] = BUDGETS, seeds: int = 3,
                    test_frac: float = 0.4, scratch_hparams: dict[str, Any] | None = None,
                    fine_tune_kw: dict[str, Any] | None = None, jobs: int = 2,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    d = _setup(dataset, base_dir, test_frac)
    ds, base = d["ds"], d["base"]
    base_platform = base.checkpoint_config_.get("platform", {})
    if base_platform.get("platform_id") == ds.platform.get("platform_id"):
        raise InvalidInputError("the data set was measured on the base predictor's own platform; "
                                "adaptation needs a data set from another platform")
    budgets = [b for b in budgets if b <= len(d["pool"])]
    if not budgets:
        raise InvalidInputError(f"the pool has {len(d['pool'])} models, fewer than every budget")
    base_scores = _score(d["y"][d["test"]], base.predict([d["graphs"][i] for i in d["test"]]))
    log(f"base predictor unadapted on {ds.platform.get('name')}: test MAPE {base_scores['mape'] * 100:.1f} %")
    ft_kw = dict(fine_tune_kw or {})
    sc_hp = dict(scratch_hparams or {})
    args = [(str(dataset), str(base_dir), test_frac, seed, budgets, sc_hp, ft_kw) for seed in range(seeds)]
    rows: list[dict[str, Any]] = []
    if jobs <= 1:
        for a in args:
            rows += _seed_rows(*a)
    else:
        with ProcessPoolExecutor(min(jobs, seeds), mp_context=mp.get_context("spawn")) as ex:
            for r in ex.map(_seed_rows, *zip(*args)):
                rows += r
    for r in rows:
        log(f"  {r['method']:20s} n={r['budget']:4d} seed={r['seed']}: test MAPE {r['mape'] * 100:6.2f} % ({r['fit_s']:.0f} s)")
    summary: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r['method']}@{r['budget']}"
        summary.setdefault(key, {"method": r["method"], "budget": r["budget"], "mape": [], "acc10": [], "kendall_tau": []})
        for k in ("mape", "acc10", "kendall_tau"):
            summary[key][k].append(r[k])
    for v in summary.values():
        for k in ("mape", "acc10", "kendall_tau"):
            a = np.asarray(v[k])
            v[k] = {"mean": float(a.mean()), "std": float(a.std())}
    from archcast.bench.report import environment

    return {"dataset": str(dataset), "platform": ds.platform, "base_platform": base_platform,
            "base_predictor": str(base_dir), "n_models": len(d["graphs"]), "n_test": int(len(d["test"])),
            "n_pool": int(len(d["pool"])), "budgets": list(budgets), "seeds": seeds, "base_unadapted": base_scores,
            "rows": rows, "summary": summary, "wall_s": time.perf_counter() - t0, "environment": environment(),
            "scratch_hparams": sc_hp, "fine_tune_kw": ft_kw}


def markdown(res: dict[str, Any]) -> str:
    s = res["summary"]
    best_all = min((v for v in s.values() if "all pool" in v["method"]), key=lambda v: v["mape"]["mean"])
    lines = [f"# Adapting to a new platform: `{res['base_platform'].get('name')}` → `{res['platform'].get('name')}`", "",
             f"{res['n_models']} models measured on the new platform; a fixed random {res['n_test']} are the test set, "
             f"the other {res['n_pool']} the pool to pick measurements from. {res['seeds']} seeds; MAPE/Acc in % on the "
             "test models. Fine-tuning starts from the base platform's shipped predictor; k-medoids = the medoid of "
             "each latency stratum in its embedding space, k-center = greedy farthest picks (`archcast adapt`'s default).", "",
             f"Base predictor without adaptation: MAPE {res['base_unadapted']['mape'] * 100:.1f} %, "
             f"Kendall τ {res['base_unadapted']['kendall_tau']:.3f}.", "",
             "| measured models | fine-tune (k-medoids) | fine-tune (k-center) | fine-tune (random) | from scratch (k-medoids) |",
             "|---|---|---|---|---|"]
    for n in res["budgets"]:
        cells = []
        for m in ("fine-tune", "fine-tune (k-center)", "fine-tune (random)", "scratch"):
            v = s.get(f"{m}@{n}")
            cells.append(f"{v['mape']['mean'] * 100:.1f} ± {v['mape']['std'] * 100:.1f}" if v else "–")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += ["", "Trained on all of the pool (the reference):", ""]
    for v in s.values():
        if "all pool" in v["method"]:
            lines.append(f"- {v['method']} ({v['budget']} models): MAPE {v['mape']['mean'] * 100:.1f} ± "
                         f"{v['mape']['std'] * 100:.1f} %, Acc(10%) {v['acc10']['mean'] * 100:.1f} %")
    for n in (20, 50):
        ft = s.get(f"fine-tune@{n}")
        if ft:
            ratio = ft["mape"]["mean"] / best_all["mape"]["mean"]
            lines += ["", f"With {n} measurements, fine-tuned MAPE is {ratio:.2f}× the best all-pool predictor's "
                          f"({best_all['method']})."]
    env = res.get("environment", {})
    lines += ["", f"Machine: {env.get('cpu', '?')}, {env.get('date_utc', '')}; wall {res['wall_s'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def plot(res: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    s = res["summary"]
    for m, style in (("fine-tune", "o-"), ("fine-tune (k-center)", "d-."), ("fine-tune (random)", "s--"),
                     ("scratch", "^:")):
        xs = [n for n in res["budgets"] if f"{m}@{n}" in s]
        ax.errorbar(xs, [s[f"{m}@{n}"]["mape"]["mean"] * 100 for n in xs],
                    yerr=[s[f"{m}@{n}"]["mape"]["std"] * 100 for n in xs], fmt=style, label=m, capsize=3)
    for v in s.values():
        if "all pool" in v["method"]:
            ax.axhline(v["mape"]["mean"] * 100, lw=0.8, ls="-." if "scratch" in v["method"] else "-",
                       color="gray", label=f"{v['method']} ({v['budget']})")
    ax.axhline(res["base_unadapted"]["mape"] * 100, color="red", lw=0.8, label="base, unadapted")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("models measured on the new platform")
    ax.set_ylabel("test MAPE (%)")
    ax.set_title(f"{res['base_platform'].get('name')} → {res['platform'].get('name')}", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(res: dict[str, Any], out_dir: str | Path, stem: str) -> list[Path]:
    """``<stem>.json``, ``<stem>.md`` and the error-vs-budget curve ``<stem>.png``."""
    return write_report(res, out_dir, stem, markdown(res), {"": lambda p: plot(res, p)})