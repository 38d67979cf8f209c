"""``archcast bench adapt-kernels``: the ``kernels`` predictor on a new machine from a few measurements.

Protocol. The new data set (``--dataset``, measured on the new machine) has a fixed random
``test_frac`` of its models held out as the test set; the rest is the pool a user could measure.
The base predictor is ``kernels`` trained on the base data set (``--base-dataset``) *minus every
model of the new data set* (by fingerprint), so no test architecture was seen by the base; its
validation networks (which choose the correction's blend) come from the base training data only.
For each budget n and seed:

* ``adapt (picked)``: :meth:`KernelLatency.adapt` with kernel times on n pool models chosen by
  :func:`archcast.adapt.kernel_pick.pick_models` (latency strata x equal-size kernel-mix cells,
  each cell's medoid: the same picks for every seed, so its spread over seeds is zero);
* ``adapt (random)``: the same on n random pool models (the picker must not lose to it);
* ``adapt (latency only)``: the picked models, network latencies only (no kernel times);
* ``global scale``: the base times one factor, the median ratio of latency to prediction on the picks;
* ``scratch``: ``kernels`` trained only on the n picked models (20 %, at least 2, validate);
* ``flops-linear`` / ``flops-mem-linear``: the analytic baselines fitted on the same picks (on the
  user's graphs, as ``bench latency`` fits them);

and, once per seed, ``scratch (all pool)``: ``kernels`` trained on the whole pool (10 % validate),
the "all-data" reference, with the analytic baselines on the whole pool beside it. The base unadapted is reported too. Test MAPE / Acc(10 %) / Kendall tau,
mean +- std over seeds, and each method's fit wall time.
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
BASELINES = ("flops-linear", "flops-mem-linear")
METHODS = ("adapt (picked)", "adapt (random)", "adapt (latency only)", "global scale", "scratch", *BASELINES)
TARGET_RATIO = 1.3  # issue 11: 20 measurements -> within 1.3x of the all-data MAPE


def _score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"mape": metrics.mape(y, p), "acc10": metrics.acc_within(y, p, 0.10),
            "kendall_tau": metrics.kendall_tau(y, p)}


def _runtime(path: str | Path) -> tuple[Any, list, list[dict[str, float]], np.ndarray]:
    from archcast.data.latency_dataset import load_latency_dataset

    ds = load_latency_dataset(path)
    if ds.format_version < 2:
        raise InvalidInputError(f"{path} is a format-{ds.format_version} data set; the kernel predictor needs "
                                "format 2 (optimised graphs + kernel times)")
    labels = ds.kernel_labels()
    return ds, list(ds.optimized_graphs()), [labels.get(r.fingerprint, {}) for r in ds.records], \
        np.asarray(ds.latency_ms, dtype=np.float64)


def _canary_calibrated(bds: Any, nds: Any, y: np.ndarray, p: np.ndarray) -> dict[str, Any] | None:
    """The base scaled by ``archcast calibrate``'s factor, with the new machine's canary times taken
    from its data set (no model of the new machine measured): scores + the factor."""
    from archcast.service.calibration import reference_from_dataset, speed_factor

    ref, local = reference_from_dataset(bds), reference_from_dataset(nds)
    if not ref or not local:
        return None
    factor, per = speed_factor(local, ref)
    return {"factor": factor, "per_canary": per, **_score(y, p * factor)}


def _split(idx: np.ndarray, frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    perm = rng.permutation(idx)
    n_val = max(2, int(round(frac * len(perm))))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def run_adapt_kernels_bench(base_dataset: str | Path, dataset: str | Path, *, budgets: Sequence[int] = BUDGETS,
                            seeds: int = 3, test_frac: float = 0.4, split_seed: int = 12345,
                            hparams: dict[str, Any] | None = None,
                            log: Callable[[str], None] = print) -> dict[str, Any]:
    from archcast.adapt.kernel_pick import pick_models, predicted_class_us
    from archcast.bench.report import environment
    from archcast.predictors.latency.kernels import KernelLatency

    t0 = time.perf_counter()
    hp = dict(hparams or {})
    bds, bgraphs, btimes, by = _runtime(base_dataset)
    nds, graphs, times, y = _runtime(dataset)
    new_fp = {r.fingerprint for r in nds.records}
    keep = np.array([i for i, r in enumerate(bds.records) if r.fingerprint not in new_fp and bgraphs[i] is not None])
    ok = np.array([g is not None for g in graphs])
    perm = np.random.default_rng(split_seed).permutation(np.flatnonzero(ok))
    n_test = int(round(test_frac * len(perm)))
    test, pool = np.sort(perm[:n_test]), np.sort(perm[n_test:])
    budgets = [b for b in budgets if b <= len(pool)]
    if not budgets:
        raise InvalidInputError(f"the pool has {len(pool)} models, fewer than every budget")
    log(f"base: {len(keep)} of {len(bds.records)} models of {Path(base_dataset).name} "
        f"({len(bds.records) - len(keep)} are in {Path(dataset).name} and left out)")
    tr, va = _split(keep, 0.1, np.random.default_rng(0))
    t = time.perf_counter()
    base = KernelLatency(seed=0, **hp).fit([bgraphs[i] for i in tr], by[tr], [bgraphs[i] for i in va], by[va],
                                           kernel_times=[btimes[i] for i in tr])
    base_fit_s = time.perf_counter() - t
    gt, yt = [graphs[i] for i in test], y[test]
    base_test = base.predict(gt)
    base_scores = _score(yt, base_test)
    log(f"base fitted in {base_fit_s:.0f} s; unadapted test MAPE {base_scores['mape'] * 100:.1f} %")
    canary = _canary_calibrated(bds, nds, yt, base_test)
    if canary is not None:
        log(f"canary calibration (no model measured): x{canary['factor']:.3f}, test MAPE {canary['mape'] * 100:.1f} %")
    pool_ms, pool_cls = predicted_class_us(base, [graphs[i] for i in pool])

    rows: list[dict[str, Any]] = []

    def add(method: str, n: int, seed: int, make: Callable[[], Any], picks: np.ndarray | None = None) -> Any:
        t = time.perf_counter()
        model = make()
        fit_s = time.perf_counter() - t
        p = model(gt) if callable(model) and not hasattr(model, "predict") else model.predict(gt)
        row = {"method": method, "budget": n, "seed": seed, **_score(yt, p), "fit_s": fit_s}
        info = getattr(model, "adapt_info_", None)
        if info is not None:
            row["chosen"] = info["chosen"]
            row["loo_mape"] = info["loo_mape_chosen"]
            row["loo_mape_global"] = info["loo_mape_global"]
        if picks is not None:
            row["pred_ms_range"] = [float(pool_ms[picks].min()), float(pool_ms[picks].max())]
        rows.append(row)
        log(f"  {method:22s} n={n:4d} seed={seed}: test MAPE {row['mape'] * 100:6.2f} % ({fit_s:.1f} s)")
        return model

    def scratch(idx: np.ndarray, frac: float, seed: int) -> Any:
        a, b = _split(pool[idx], frac, np.random.default_rng(seed))
        return KernelLatency(seed=seed, **hp).fit([graphs[i] for i in a], y[a], [graphs[i] for i in b], y[b],
                                                  kernel_times=[times[i] for i in a])

    user = list(nds.graphs())  # the analytic baselines read the user's graphs, as in bench latency

    class _OnUserGraphs:
        def __init__(self, model: Any) -> None:
            self.model = model

        def predict(self, _runtime_graphs: list) -> np.ndarray:
            return self.model.predict([user[i] for i in test])

    def analytic(name: str, idx: np.ndarray) -> Any:
        from archcast.predictors import create_predictor

        g = [user[i] for i in pool[idx]]
        return _OnUserGraphs(create_predictor(name, task="latency").fit(g, y[pool[idx]], g, y[pool[idx]]))

    def sub(idx: np.ndarray) -> tuple[list, np.ndarray, list]:
        return [graphs[i] for i in pool[idx]], y[pool[idx]], [times[i] for i in pool[idx]]

    for seed in range(seeds):
        for n in budgets:
            chosen = pick_models(np.log(pool_ms), pool_cls, n, seed=seed)
            rnd = np.sort(np.random.default_rng([seed, n]).choice(len(pool), n, replace=False))
            g_c, y_c, k_c = sub(chosen)
            g_r, y_r, k_r = sub(rnd)
            add("adapt (picked)", n, seed, lambda: base.adapt(g_c, y_c, kernel_times=k_c, seed=seed), chosen)
            add("adapt (random)", n, seed, lambda: base.adapt(g_r, y_r, kernel_times=k_r, seed=seed), rnd)
            add("adapt (latency only)", n, seed, lambda: base.adapt(g_c, y_c, seed=seed), chosen)

            def global_scale() -> Callable[[list], np.ndarray]:
                f = float(np.exp(np.median(np.log(y_c / base.predict(g_c)))))
                return lambda gs: base.predict(gs) * f

            add("global scale", n, seed, global_scale, chosen)
            add("scratch", n, seed, lambda: scratch(chosen, 0.2, seed), chosen)
            for b in BASELINES:  # the analytic baselines, fitted on the same picks (the user's graphs)
                add(b, n, seed, lambda: analytic(b, chosen), chosen)
        add("scratch (all pool)", len(pool), seed, lambda: scratch(np.arange(len(pool)), 0.1, seed))
        for b in BASELINES:
            add(f"{b} (all pool)", len(pool), seed, lambda: analytic(b, np.arange(len(pool))))
    summary: dict[str, dict[str, Any]] = {}
    for r in rows:
        key = f"{r['method']}@{r['budget']}"
        summary.setdefault(key, {"method": r["method"], "budget": r["budget"], "mape": [], "acc10": [],
                                 "kendall_tau": [], "fit_s": []})
        for k in ("mape", "acc10", "kendall_tau", "fit_s"):
            summary[key][k].append(r[k])
    for v in summary.values():
        for k in ("mape", "acc10", "kendall_tau", "fit_s"):
            a = np.asarray(v[k])
            v[k] = {"mean": float(a.mean()), "std": float(a.std())}
    return {"base_dataset": str(base_dataset), "dataset": str(dataset), "platform": nds.platform,
            "base_platform": bds.platform, "n_base_train": int(len(tr)), "n_base_val": int(len(va)),
            "n_base_excluded": int(len(bds.records) - len(keep)), "base_fit_s": base_fit_s,
            "n_models": int(ok.sum()), "n_test": int(len(test)), "n_pool": int(len(pool)), "budgets": list(budgets),
            "seeds": seeds, "split_seed": split_seed, "hparams": hp, "base_unadapted": base_scores, "canary_calibrated": canary, "rows": rows,
            "summary": summary,
            "wall_s": time.perf_counter() - t0, "environment": environment()}


def _cell(v: dict[str, Any] | None, key: str, pct: bool = True) -> str:
    if v is None:
        return "–"
    f = 100.0 if pct else 1.0
    return f"{v[key]['mean'] * f:.{1 if pct else 3}f} ± {v[key]['std'] * f:.{1 if pct else 3}f}"


def markdown(res: dict[str, Any], command: str = "") -> str:
    s = res["summary"]
    allp = s.get(f"scratch (all pool)@{res['n_pool']}")
    names = Path(res["base_dataset"]).name, Path(res["dataset"]).name
    lines = [f"# Adapting `kernels` to a new machine: `{names[0]}` → `{names[1]}`",
             "",
             f"{res['n_models']} models measured on the new machine; a fixed random {res['n_test']} are the test set "
             f"(split seed {res.get('split_seed', 12345)}), "
             f"the other {res['n_pool']} the pool to measure from. The base is `kernels` trained on "
             f"{res['n_base_train']} models of the base data set (+ {res['n_base_val']} validation), **without** the "
             f"{res['n_base_excluded']} models the new data set re-measured: every test architecture is unseen by "
             f"the base. {res['seeds']} seeds; MAPE / Acc(10 %) in % on the test models, mean ± std over seeds."
             + (f" Hyper-parameters: `{res['hparams']}`." if res["hparams"] else ""), ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    cc = res.get("canary_calibrated")
    lines += [f"Base unadapted: MAPE {res['base_unadapted']['mape'] * 100:.1f} %, Acc(10 %) "
              f"{res['base_unadapted']['acc10'] * 100:.1f} %, Kendall τ {res['base_unadapted']['kendall_tau']:.3f}.",
              "" if cc is None else
              f"Base scaled by the canaries alone (`archcast calibrate`'s factor x{cc['factor']:.3f}, the new machine's "
              f"median canary times from its data set; no model measured): MAPE {cc['mape'] * 100:.1f} %, Acc(10 %) "
              f"{cc['acc10'] * 100:.1f} %.",
              ""]
    if allp:
        lines += [f"All pool, scratch ({res['n_pool']} models; the all-data reference): MAPE {_cell(allp, 'mape')} %, "
                  f"Acc(10 %) {_cell(allp, 'acc10')} %, Kendall τ {_cell(allp, 'kendall_tau', False)}.", ""]
    for b in BASELINES:
        v = s.get(f"{b} (all pool)@{res['n_pool']}")
        if v:
            lines += [f"All pool, `{b}` (the analytic baseline on the same models): MAPE {_cell(v, 'mape')} %, "
                      f"Acc(10 %) {_cell(v, 'acc10')} %, Kendall τ {_cell(v, 'kendall_tau', False)}.", ""]
    for key, title, pct in (("mape", "Test MAPE (%)", True), ("acc10", "Acc(10 %) (%)", True),
                            ("kendall_tau", "Kendall τ", False)):
        lines += [f"**{title}**", "", "| measured models | " + " | ".join(METHODS) + " |",
                  "|---" * (len(METHODS) + 1) + "|"]
        for n in res["budgets"]:
            lines.append(f"| {n} | " + " | ".join(_cell(s.get(f"{m}@{n}"), key, pct) for m in METHODS) + " |")
        lines.append("")
    lines += ["**Fit wall time (s, mean over seeds)**", "", "| measured models | " + " | ".join(METHODS) + " |",
              "|---" * (len(METHODS) + 1) + "|"]
    for n in res["budgets"]:
        lines.append(f"| {n} | " + " | ".join(f"{s[f'{m}@{n}']['fit_s']['mean']:.1f}" if f"{m}@{n}" in s else "–"
                                              for m in METHODS) + " |")
    lines.append("")
    chosen: dict[str, int] = {}
    for r in res["rows"]:
        if r["method"] == "adapt (picked)" and "chosen" in r:
            c = r["chosen"]
            label = f"n={r['budget']}: {c['level']}" + (f" (shrink {c['shrink']}, map {c['map']})"
                                                          if c["shrink"] is not None else "")
            chosen[label] = chosen.get(label, 0) + 1
    lines += ["`adapt (picked)`, `adapt (latency only)` and `global scale` use the same picks for every seed "
              "(each cell's medoid), so their ± is 0; `adapt (random)`'s is over the seeds' random draws.", "",
              "What leave-one-out chose for `adapt (picked)` (over seeds): "
              + "; ".join(f"{k} ×{v}" for k, v in chosen.items()) + ".", ""]
    if allp:
        for n in res["budgets"]:
            v = s.get(f"adapt (picked)@{n}")
            if v:
                ratio = v["mape"]["mean"] / allp["mape"]["mean"]
                lines.append(f"- n={n}: adapted MAPE is {ratio:.2f}× the all-pool scratch MAPE"
                             + (f" (target ≤ {TARGET_RATIO}×: {'met' if ratio <= TARGET_RATIO else 'missed'})"
                                if n == 20 else "") + ".")
        lines.append("")
    env = res.get("environment", {})
    lines += [f"Machine: {env.get('cpu', '?')}, {env.get('date_utc', '')}; base fit {res['base_fit_s']:.0f} s, "
              f"wall {res['wall_s'] / 60:.1f} min.", ""]
    return "\n".join(lines)


def plot(res: dict[str, Any], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    s = res["summary"]
    for m, style in zip(METHODS, ("o-", "s--", "d-.", "v:", "^:", "x-", "+-")):
        xs = [n for n in res["budgets"] if f"{m}@{n}" in s]
        ax.errorbar(xs, [s[f"{m}@{n}"]["mape"]["mean"] * 100 for n in xs],
                    yerr=[s[f"{m}@{n}"]["mape"]["std"] * 100 for n in xs], fmt=style, label=m, capsize=3)
    allp = s.get(f"scratch (all pool)@{res['n_pool']}")
    if allp:
        ax.axhline(allp["mape"]["mean"] * 100, color="gray", lw=0.8, label=f"scratch, all pool ({res['n_pool']})")
        ax.axhline(allp["mape"]["mean"] * 100 * TARGET_RATIO, color="gray", lw=0.8, ls="--",
                   label=f"{TARGET_RATIO}× all pool")
    ax.set_xscale("log")
    ax.set_xticks(res["budgets"], [str(b) for b in res["budgets"]])
    ax.set_xlabel("models measured on the new machine")
    ax.set_ylabel("test MAPE (%)")
    ax.set_title(f"kernels: {Path(res['base_dataset']).name} → {Path(res['dataset']).name} "
                 f"(unadapted {res['base_unadapted']['mape'] * 100:.0f} %)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write(res: dict[str, Any], out_dir: str | Path, stem: str, command: str = "") -> list[Path]:
    """``<stem>.json``, ``<stem>.md`` and the MAPE-vs-budget curve ``<stem>.png``."""
    return write_report(res, out_dir, stem, markdown(res, command), {"": lambda p: plot(res, p)})


__all__ = ["BUDGETS", "METHODS", "markdown", "plot", "run_adapt_kernels_bench", "write"]
