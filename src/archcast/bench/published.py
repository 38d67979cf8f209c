"""Latency on published architectures archcast never trained on: ``archcast bench published``.

The networks are :mod:`archcast.bench.published_nets` (canonical published configurations, mostly
of families the zoo does not have). The bench

1. **measures** each of them here, the way the data set's labels were measured (the data set's
   ``measure_kw``; ``rounds`` interleaved rounds, the label = the median over rounds of the
   per-round thread-CPU minimum), plus one profiled run for its kernel times, and the canaries
   (:func:`archcast.service.calibration.measure_canaries`). Measurements are kept in a JSON file
   (``<stem>_measured.json``) and reused: the bench is resumable and its predictions can be
   recomputed without measuring again;
2. **predicts** them with the kernel-level checkpoint (on its reference machine's scale, no
   calibration) and with the analytic / feature baselines (``flops-linear``, ``flops-mem-linear``,
   ``gbdt``) trained on a data set of the same platform (its ``latency_ms``: a random 90 % to fit,
   10 % to select on);
3. **scores** every predictor after the same one-scale calibration, two ways:
   * ``canaries``: the factor ``archcast calibrate`` would apply (this machine's canaries against
     the checkpoint's reference canary times), so no published network is used;
   * ``k nets``: the geometric-mean ratio measured / predicted on ``k`` random published networks,
     scored on the others, averaged over ``draws`` random draws (the same draws for every predictor);
   and reports MAPE, Acc(10 %), Kendall tau, the coverage of the kernels checkpoint's 90 % interval,
   and the kernel-time agreement of its breakdown with the profiled run (as the latency bench does).

MAPE and shares are fractions in the JSON, percent in the Markdown.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from archcast import metrics
from archcast.errors import InvalidInputError

BASELINES = ("flops-linear", "flops-mem-linear", "gbdt")
STAT = "cpu_ms_min"
MEASURED_FORMAT = "archcast-published-measurements"


# --------------------------------------------------------------------------- measuring
def measure_published(names: Sequence[str], platform: Any, measure_kw: dict[str, Any], *, rounds: int = 3,
                      cache: str | Path | None = None, remeasure: bool = False, progress: bool = True,
                      log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure ``names`` on ``platform`` (this machine); reuse what ``cache`` holds for this platform
    and settings unless ``remeasure``, and write the cache again after every network."""
    from archcast.bench.published_nets import PUBLISHED, export_published
    from archcast.profile.backend import get_backend
    from archcast.profile.machine import cpu_model, host_name
    from archcast.service.calibration import measure_canaries

    if rounds < 1:
        raise InvalidInputError(f"rounds must be >= 1; got {rounds}")
    unknown = [n for n in names if n not in PUBLISHED]
    if unknown:
        raise InvalidInputError(f"unknown published networks {unknown}; known: {', '.join(PUBLISHED)}")
    path = Path(cache) if cache is not None else None
    settings = {"platform_id": platform.platform_id, "measure_kw": measure_kw, "rounds": rounds, "stat": STAT}
    data: dict[str, Any] = {"format": MEASURED_FORMAT, **settings, "nets": {}}
    if path is not None and path.is_file() and not remeasure:
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise InvalidInputError(f"measurement file {path} is damaged ({e}); pass --remeasure to measure again") from None
        if old.get("format") == MEASURED_FORMAT and all(old.get(k) == v for k, v in settings.items()):
            data = old
        else:
            log(f"{path}: measured with other settings or on another platform; measuring again")
    data.update(host=host_name(), cpu=cpu_model())

    def save() -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
            tmp.replace(path)

    backend = get_backend(platform.backend)
    backend.check_available(platform)
    todo = [n for n in names if n not in data["nets"]]
    if todo:
        data["canaries_before_ms"] = measure_canaries(platform, rounds=5)
    onnx: dict[str, bytes] = {}
    for n in todo:
        t0 = time.perf_counter()
        onnx[n] = export_published(n)
        log(f"exported {n} ({len(onnx[n]) // 1024} KB, {time.perf_counter() - t0:.1f} s)")
    per: dict[str, list[float]] = {n: [] for n in todo}
    kernels: dict[str, dict[str, float]] = {}
    for r in range(rounds):  # rounds interleave the networks: a slow spell hits one round of each
        for n in todo:
            m = backend.measure(onnx[n], platform, 1, name=n, **measure_kw,
                                **({"profile_nodes": True, "profile_runs": 10, "profile_max_s": 2.0} if r == 0 else {}))
            v = getattr(m, STAT, None)
            per[n].append(float(v if v is not None and v > 0 else m.latency_ms_min))
            if r == 0 and m.node_profile is not None:
                kernels[n] = {k.node: float(k.dur_us_min if k.dur_us_min is not None else k.dur_us) for k in m.node_profile.nodes}
            if r == rounds - 1:
                v = per[n]
                data["nets"][n] = {"label_ms": float(np.median(v)), "rounds_ms": v,
                                   "spread": float((max(v) - min(v)) / np.median(v)), "kernels_us": kernels.get(n, {}),
                                   "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
                save()
        if progress:
            log(f"round {r + 1}/{rounds} done")
    if todo:
        data["canaries_after_ms"] = measure_canaries(platform, rounds=5)
    save()
    return data


# --------------------------------------------------------------------------- predicting
def predict_published(names: Sequence[str], checkpoint: str | Path, dataset: str | Path,
                      baselines: Sequence[str] = BASELINES, seed: int = 0) -> dict[str, Any]:
    """Per predictor, per network: the prediction on the reference machine's scale (kernels: with
    its 90 % interval and per-kernel times); the baselines fitted on all of ``dataset``."""
    from archcast.bench.published_nets import export_published
    from archcast.data.latency_dataset import load_latency_dataset
    from archcast.frontends.onnx import load_onnx
    from archcast.predictors import create_predictor
    from archcast.service.kernel_predict import cached_runtime_graph, load_kernel_predictor, predict_kernels
    from archcast.profile.platform import Platform

    onnx = {n: export_published(n) for n in names}
    graphs = {n: load_onnx(b, name=n) for n, b in onnx.items()}
    out: dict[str, Any] = {"kernels": {}}
    kp = load_kernel_predictor(checkpoint)
    plat = Platform.from_dict(kp.checkpoint_config_["platform"])
    for n in names:
        p = predict_kernels(onnx[n], graphs[n], checkpoint, calibration=False)
        rg = cached_runtime_graph(onnx[n], plat).graph
        _, per_kernel = kp.predict_with_kernels([rg])
        out["kernels"][n] = {"ms": p.latency_ms, "low_ms": p.low_ms, "high_ms": p.high_ms,
                             "far": p.ood_distance is not None and p.ood_threshold is not None
                             and p.ood_distance > p.ood_threshold,
                             "kernel_names": [k.name for k in rg.nodes], "kernels_us": [float(v) for v in per_kernel[0]]}
    ds = load_latency_dataset(dataset)
    y = np.asarray(ds.latency_ms, dtype=np.float64)
    g = list(ds.graphs())
    order = np.random.default_rng(seed).permutation(len(g))
    va, tr = order[: max(1, len(g) // 10)], order[max(1, len(g) // 10):]  # 10 % to select on, as the benches do
    for b in baselines:
        pred = create_predictor(b, task="latency", seed=seed)
        pred.fit([g[i] for i in tr], y[tr], [g[i] for i in va], y[va])
        vals = pred.predict([graphs[n] for n in names])
        out[b] = {n: {"ms": float(v)} for n, v in zip(names, vals)}
    return out


# --------------------------------------------------------------------------- scoring
def _scores(meas: np.ndarray, pred: np.ndarray, low: np.ndarray | None, high: np.ndarray | None) -> dict[str, float]:
    out = {"mape": metrics.mape(meas, pred), "acc_10pct": metrics.acc_within(meas, pred, 0.10),
           "kendall_tau": metrics.kendall_tau(meas, pred) if len(meas) > 2 else float("nan")}
    if low is not None and high is not None:
        out["coverage_90"] = float(np.mean((meas >= low) & (meas <= high)))
    return out


def score(names: Sequence[str], measured: dict[str, float], predictions: dict[str, dict[str, Any]],
          canary_factor: float | None, *, k: int = 3, draws: int = 200, seed: int = 0) -> dict[str, Any]:
    """The metrics of every predictor under each calibration protocol (module docstring)."""
    names = list(names)
    y = np.array([measured[n] for n in names])
    rng = np.random.default_rng(seed)
    if not 1 <= k < len(names) - 2:
        raise InvalidInputError(f"--calib-nets {k} leaves fewer than 3 of {len(names)} networks to score")
    picks = [np.sort(rng.choice(len(names), size=k, replace=False)) for _ in range(draws)]
    res: dict[str, Any] = {}
    for p, by in predictions.items():
        pr = np.array([by[n]["ms"] for n in names])
        lo = np.array([by[n]["low_ms"] for n in names]) if "low_ms" in by[names[0]] else None
        hi = np.array([by[n]["high_ms"] for n in names]) if "high_ms" in by[names[0]] else None
        row: dict[str, Any] = {"uncalibrated": _scores(y, pr, lo, hi)}
        if canary_factor is not None:
            f = canary_factor
            row["canaries"] = {"factor": f, **_scores(y, pr * f, None if lo is None else lo * f, None if hi is None else hi * f)}
        per_draw = []
        for idx in picks:
            rest = np.setdiff1d(np.arange(len(names)), idx)
            f = float(np.exp(np.mean(np.log(y[idx] / pr[idx]))))
            per_draw.append(_scores(y[rest], pr[rest] * f, None if lo is None else lo[rest] * f,
                                    None if hi is None else hi[rest] * f))
        keys = per_draw[0].keys()
        row[f"{k}_nets"] = {m: float(np.nanmean([d[m] for d in per_draw])) for m in keys}
        row[f"{k}_nets"]["mape_p10_p90"] = [float(np.percentile([d["mape"] for d in per_draw], q)) for q in (10, 90)]
        res[p] = row
    return res


def kernel_agreement_of(names: Sequence[str], measured_kernels: dict[str, dict[str, float]],
                        kernel_pred: dict[str, Any]) -> dict[str, Any]:
    """The breakdown of the kernels checkpoint against the profiled run, per network and pooled."""
    per, vals = {}, []
    for n in names:
        lab = measured_kernels.get(n) or {}
        kp = kernel_pred[n]
        a = metrics.kernel_agreement(np.array(kp["kernels_us"]), np.array([lab.get(k, np.nan) for k in kp["kernel_names"]]))
        if a is not None:
            per[n] = {"kernel_mape": a[0], "wape": a[1], "top5": a[2],
                      "matched": float(np.mean([k in lab for k in kp["kernel_names"]])) if kp["kernel_names"] else 0.0}
            vals.append(a)
    pooled = metrics.kernel_agreement_summary(*(list(v) for v in zip(*vals))) if vals else {}
    return {"per_net": per, **pooled}


def run_published_bench(names: Sequence[str] | None, checkpoint: str | Path, dataset: str | Path, cache: str | Path,
                        *, rounds: int = 3, k: int = 3, draws: int = 200, remeasure: bool = False,
                        baselines: Sequence[str] = BASELINES, progress: bool = True,
                        log: Callable[[str], None] = print) -> dict[str, Any]:
    from archcast.bench.published_nets import PUBLISHED
    from archcast.bench.report import environment
    from archcast.data.latency_dataset import load_latency_dataset
    from archcast.profile.platform import Platform, default_platform
    from archcast.service.calibration import reference_of, speed_factor
    from archcast.service.kernel_predict import load_kernel_predictor

    names = list(names or PUBLISHED)
    cfg = load_kernel_predictor(checkpoint).checkpoint_config_
    base = Platform.from_dict(cfg["platform"])
    here = default_platform(threads=base.threads, graph_opt_level=base.graph_opt_level)
    ds = load_latency_dataset(dataset)
    if ds.platform.get("name") != base.name:
        raise InvalidInputError(f"data set {dataset} is of platform {ds.platform.get('name')!r}, the checkpoint of "
                                f"{base.name!r}")
    measure_kw = dict(ds.manifest.get("measure_kw") or {"min_runs": 30, "min_time_s": 0.3})
    data = measure_published(names, here, measure_kw, rounds=rounds, cache=cache, remeasure=remeasure,
                             progress=progress, log=log)
    measured = {n: data["nets"][n]["label_ms"] for n in names}
    ref = reference_of(cfg)
    canary_factor = None
    if ref is not None and data.get("canaries_before_ms"):
        local = {c: float(np.sqrt(data["canaries_before_ms"][c] * data.get("canaries_after_ms", data["canaries_before_ms"])[c]))
                 for c in data["canaries_before_ms"]}
        canary_factor = speed_factor(local, ref)[0]
    preds = predict_published(names, checkpoint, dataset, baselines)
    scores = score(names, measured, preds, canary_factor, k=k, draws=draws)
    kernels = kernel_agreement_of(names, {n: data["nets"][n].get("kernels_us") or {} for n in names}, preds["kernels"])
    nets = [{"name": n, "kind": PUBLISHED[n].kind, "paper": PUBLISHED[n].paper, "image_size": PUBLISHED[n].image_size,
             "nearest_zoo_family": PUBLISHED[n].nearest_zoo_family, "measured_ms": measured[n],
             "spread": data["nets"][n]["spread"], "far_from_training": bool(preds["kernels"][n]["far"]),
             **{f"{p}_ms": preds[p][n]["ms"] for p in preds}} for n in names]
    ck = Path(checkpoint).resolve()
    try:
        ck = ck.relative_to(Path.cwd())
    except ValueError:
        pass
    return {"bench": "published", "checkpoint": str(ck), "dataset": str(dataset), "platform": base.name,
            "measured_on": {"cpu": data.get("cpu"), "host": data.get("host"), "platform_id": here.platform_id},
            "checkpoint_device": base.device, "rounds": rounds, "calib_nets": k, "draws": draws,
            "canary_factor": canary_factor, "stat": STAT, "measure_kw": measure_kw, "nets": nets,
            "scores": scores, "kernel_agreement": kernels, "environment": environment()}


# --------------------------------------------------------------------------- report
def _pct(x: float | None) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def markdown(res: dict[str, Any], command: str) -> str:
    k = res["calib_nets"]
    L = [f"# Published architectures, {len(res['nets'])} networks ({res['platform']})", "",
         f"Measured on {res['measured_on']['cpu']} (checkpoint trained on {res['checkpoint_device']} data); label: "
         f"median over {res['rounds']} rounds of the per-round thread-CPU minimum. Predictors on the reference scale, "
         f"then one scale factor: `canaries` = this machine's canaries against the checkpoint's reference "
         f"(x{res['canary_factor']:.3f}; no published network used), `{k} nets` = the geometric-mean ratio on {k} "
         f"random networks, scored on the others (mean over {res['draws']} draws).", "",
         "| predictor | protocol | MAPE | Acc(10 %) | Kendall τ | 90 % coverage |", "|---|---|---:|---:|---:|---:|"]
    for p, row in res["scores"].items():
        for proto in ("canaries", f"{k}_nets", "uncalibrated"):
            s = row.get(proto)
            if s:
                L.append(f"| {p} | {proto.replace('_', ' ')} | {_pct(s['mape'])} | {_pct(s['acc_10pct'])} | "
                         f"{s['kendall_tau']:.3f} | {_pct(s.get('coverage_90'))} |")
    ka = res["kernel_agreement"]
    if ka.get("median_kernel_mape") is not None:
        L += ["", f"Breakdown of `kernels` against the profiled run: median kernel MAPE {_pct(ka['median_kernel_mape'])}, "
                  f"WAPE {_pct(ka['mean_wape'])}, top-5 overlap {_pct(ka['top5_overlap'])}, 4 of 5 slowest in common on "
                  f"{_pct(ka['top5_at_least_4'])} of networks."]
    preds = [c[:-3] for c in res["nets"][0] if c.endswith("_ms") and c != "measured_ms"]
    L += ["", "| network | kind | nearest zoo family | measured ms | spread | " + " | ".join(preds) + " |",
          "|---|---|---|---:|---:|" + "---:|" * len(preds)]
    f = res["canary_factor"] or 1.0
    for n in res["nets"]:
        L.append(f"| {n['name']}{' (far)' if n['far_from_training'] else ''} | {n['kind']} | {n['nearest_zoo_family'] or '—'} | "
                 f"{n['measured_ms']:.2f} | {_pct(n['spread'])} | "
                 + " | ".join(f"{n[p + '_ms'] * f:.2f}" for p in preds) + " |")
    L += ["", "Predictions in the table are canary-calibrated. (far) = the far-from-training warning fired.", "",
          "```bash", command, "```"]
    return "\n".join(L) + "\n"


def write(res: dict[str, Any], out: str | Path, stem: str, command: str) -> list[Path]:
    from archcast.bench.report import write_report

    def scatter(path: Path) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        f = res["canary_factor"] or 1.0
        y = np.array([n["measured_ms"] for n in res["nets"]])
        fig, ax = plt.subplots(figsize=(6, 5.5))
        for p, marker in zip(res["scores"], "osv^D"):
            ax.scatter(y, [n[p + "_ms"] * f for n in res["nets"]], label=p, marker=marker, alpha=0.75)
        lim = [y.min() / 1.5, y.max() * 1.5]
        ax.plot(lim, lim, "k-", lw=0.8)
        ax.fill_between(lim, [v / 1.1 for v in lim], [v * 1.1 for v in lim], color="0.85", label="±10 %")
        ax.set(xscale="log", yscale="log", xlim=lim, ylim=lim, xlabel="measured ms", ylabel="predicted ms (canary-calibrated)",
               title=f"published networks ({len(y)}), {res['platform']}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)

    return write_report(res, out, stem, markdown(res, command), {"": scatter})


__all__ = ["BASELINES", "kernel_agreement_of", "markdown", "measure_published", "predict_published",
           "run_published_bench", "score", "write"]
