"""``DATASHEET.md`` and latency histograms of a latency data set."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archcast.collect.labels import median_or_none
from archcast.data.latency_dataset import (
    ALIASES_FILE,
    DATASHEET_FILE,
    FAILURES_FILE,
    GRAPHS_FILE,
    HIST_DIR,
    HIST_GRID_FILE,
    MANIFEST_FILE,
    MEASUREMENTS_FILE,
    MODELS_FILE,
    NOISE_FILE,
    PLATFORM_FILE,
    RETEST_FILE,
    LatencyDataset,
    LatencyRecord,
    as_dataset,
    read_json,
)


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:,.0f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def _range(values: Sequence[float | None], digits: int = 3) -> str:
    v = [x for x in values if x is not None]
    return "–" if not v else f"{_fmt(min(v), digits)}–{_fmt(max(v), digits)}"


def _family_row(name: str, recs: Sequence[LatencyRecord]) -> str:
    lat = np.array([r.latency_ms for r in recs])
    gflops = [r.flops / 1e9 if r.flops is not None else None for r in recs]
    return (f"| {name} | {len(recs)} | {_range([r.n_nodes for r in recs], 6)} | {_range(gflops)} | "
            f"{_fmt(lat.min())} | {_fmt(float(np.median(lat)))} | {_fmt(lat.max())} | {_fmt(lat.max() / lat.min())} | "
            f"{_pct(median_or_none(r.latency_cv for r in recs))} |")


def _hist_figures(ds: LatencyDataset) -> list[Path]:
    """``hist/<family>.png`` per family and ``latency_hist.png`` with all families on one log-x scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    from matplotlib.ticker import MaxNLocator

    fams = ds.families()
    lat = ds.latency_ms
    lo, hi = float(lat.min()), float(lat.max())
    if hi <= lo * 1.01:
        lo, hi = lo / 1.1, hi * 1.1
    bins = np.geomspace(lo, hi, 41)
    hist_dir = ds.path / HIST_DIR
    hist_dir.mkdir(exist_ok=True)
    paths = []

    def draw(ax: Any, fam: str, fam_bins: np.ndarray) -> None:
        x = np.array([r.latency_ms for r in ds.records if r.family == fam])
        ax.hist(x, bins=fam_bins, color="#3b6ea8", edgecolor="white", linewidth=0.3)
        ax.set_xscale("log")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{fam} (n={x.size}, median {_fmt(float(np.median(x)))} ms)", fontsize=9)
        ax.tick_params(labelsize=7)

    for fam in fams:
        x = np.array([r.latency_ms for r in ds.records if r.family == fam])
        a, b = float(x.min()), float(x.max())
        if b <= a * 1.01:
            a, b = a / 1.1, b * 1.1
        fig = Figure(figsize=(5, 3.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        draw(ax, fam, np.geomspace(a, b, 26))
        ax.set_xlabel("median latency (ms, log scale)")
        ax.set_ylabel("models")
        fig.tight_layout()
        path = hist_dir / f"{fam.replace('/', '_')}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)

    cols = min(5, len(fams))
    rows = -(-len(fams) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, fam in zip(axes.flat, fams):
        draw(ax, fam, bins)
    for ax in list(axes.flat)[len(fams):]:
        ax.axis("off")
    fig.supxlabel("median latency (ms, log scale, same axis for all families)", fontsize=9)
    fig.suptitle(f"{len(ds)} models on {ds.platform.get('name')} ({ds.platform.get('device')})", fontsize=10)
    fig.tight_layout()
    path = ds.path / HIST_GRID_FILE
    fig.savefig(path, dpi=90)
    paths.append(path)
    return paths


def write_datasheet(data: str | Path | LatencyDataset, note: str | None = None) -> Path:
    """Write ``DATASHEET.md`` (what, platform, protocol, per-family table, noise floor, how to
    reproduce) and the histograms ``hist/<family>.png`` + ``latency_hist.png``. Returns the path.

    Format 2 (:mod:`archcast.collect.datasheet_campaign`) adds protocol, machines, kernels, the
    ablation and ``noise_floor.json``; ``note`` (conditions of the measurement) is kept there."""
    ds = as_dataset(data)
    if ds.format_version >= 2:
        from archcast.collect.datasheet_campaign import write_campaign_datasheet

        _hist_figures(ds)
        fams = ds.families()
        rows = [_family_row(f, [r for r in ds.records if r.family == f]) for f in fams]
        return write_campaign_datasheet(ds, [*rows, _family_row("**all**", ds.records)], note)
    p, man = ds.platform, ds.manifest
    kw = man.get("measure_kw")
    fams = ds.families()
    recs = ds.records
    seeds = [r.seed for r in recs if r.seed is not None] + [int(f["seed"]) for f in ds.failures if f.get("seed")]
    times = sorted(r.measured_at for r in recs if r.measured_at)
    hosts = sorted({r.host for r in recs if r.host})
    runs = [r.n_runs for r in recs if r.n_runs is not None]
    warm = [r.warmup_runs for r in recs if r.warmup_runs is not None]
    _hist_figures(ds)

    L: list[str] = [
        f"# Latency data set: {len(ds)} models, {len(fams)} families, {p.get('name')}",
        "",
        f"Measured inference latency (milliseconds, batch size {ds.batch_size}) of {len(ds)} distinct networks "
        f"sampled from {len(fams)} archcast zoo families, run by {p.get('runtime')} with {p.get('threads')} intra-op "
        f"thread(s) on {p.get('device')}. Every model is a "
        "(family, seed) pair: the family's generator turns the seed into a config, the config into a weight-free "
        "ONNX graph; `models.csv` keeps the config and generator version, so each graph can be rebuilt exactly "
        "(`archcast dataset verify`). The label is the median latency; min, mean, p90, std and CV are given too.",
        "",
        f"Data set fingerprint `{ds.fingerprint}` (sha256 of the data files, see `{MANIFEST_FILE}`); "
        f"archcast {man.get('archcast_version')}.",
        "",
        "## Files",
        "",
        "| file | content |",
        "|---|---|",
        f"| `{MODELS_FILE}` | fingerprint, family, seed, generator version and config (JSON), nodes, FLOPs, params, "
        "memory bytes; sorted by (family, seed) |",
        f"| `{MEASUREMENTS_FILE}` | latency min / median / mean / p90 / std (ms), CV, timed runs, warm-up runs, time "
        "(UTC), host; same order; floats to 5 significant digits |",
        f"| `{GRAPHS_FILE}` | the graphs (archcast NetGraph JSON), one line per model in the same order: a cache for "
        "training without ONNX export |",
        f"| `{FAILURES_FILE}` | {len(ds.failures)} models that could not be exported or run, with the reason |",
        f"| `{ALIASES_FILE}` | {len(ds.aliases)} (family, seed) samples that build a graph already listed under "
        "another seed (measured once) |",
        f"| `{PLATFORM_FILE}`, `{MANIFEST_FILE}` | platform fields; format, protocol, counts, checksums |",
        "",
        "## Platform",
        "",
        "| field | value |",
        "|---|---|",
    ]
    for k in ("name", "platform_id", "device", "backend", "runtime", "runtime_version", "threads", "precision",
              "graph_opt_level"):
        L.append(f"| {k} | {p.get(k)} |")
    L.append(f"| host(s) | {', '.join(hosts) or '–'} |")
    L += ["", "## Protocol", ""]
    has_proto = bool(kw) and "min_runs" in kw and "min_time_s" in kw
    warm_kw = (kw or {}).get("warmup_runs", 10), (kw or {}).get("warmup_s", 0.3)  # measure_onnx's defaults
    timing = (f"runs continue until at least {kw['min_runs']} runs and {kw['min_time_s']} s are reached"
              if has_proto else
              "protocol not recorded at export (pass --min-runs/--min-time to `archcast dataset export`)")
    L += [
        f"- onnxruntime session with {p.get('threads')} intra-op thread(s), 1 inter-op thread, sequential execution, "
        f"graph optimisation level `{p.get('graph_opt_level')}`, CPU execution provider only; one model measured at "
        "a time per worker process.",
        "- Weight-free graphs get random weights (N(0, 2/fan_in); norm scales and biases U[0.5, 1.5)) and random "
        "inputs before the session is built.",
        f"- Warm-up: {warm_kw[0]} runs or {warm_kw[1]} s, whichever ends first (observed: "
        f"{_range(warm, 6)} runs).",
        f"- Timing: each run timed alone; {timing} (observed: {_range(runs, 6)} runs, median "
        f"{_fmt(median_or_none(runs), 6)}).",
        "- Label: the median of the timed runs, milliseconds.",
        f"- Measured {times[0] if times else '?'} to {times[-1] if times else '?'} (UTC).",
        "",
        "## Families",
        "",
        "| family | models | nodes | GFLOPs | latency ms min | median | max | span max/min | median CV |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fam in fams:
        L.append(_family_row(fam, [r for r in recs if r.family == fam]))
    L.append(_family_row("**all**", recs))
    L += ["", f"Histograms: `{HIST_GRID_FILE}` (all families, one log axis) and `{HIST_DIR}/<family>.png`.", "",
          f"![latency histograms]({HIST_GRID_FILE})", ""]
    if ds.failures:
        reasons: dict[str, int] = {}
        for f in ds.failures:
            key = (f.get("error") or "?").split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        L += [f"{len(ds.failures)} models failed: "
              + ", ".join(f"{n} at {k}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
              + f" (see `{FAILURES_FILE}`).", ""]

    L += ["## Noise floor", ""]
    nf_path = ds.path / NOISE_FILE
    if nf_path.is_file():
        nf = read_json(nf_path)
        med, mn = nf.get("median_latency", {}), nf.get("min_latency", {})
        stale = nf.get("dataset_fingerprint") != ds.fingerprint
        L += [
            f"{nf.get('n')} random models re-measured "
            + (f"in new worker processes ({nf.get('workers')} workers, " if nf.get("workers") else "(in one process, ")
            + f"same platform, protocol {json.dumps(nf.get('measure_kw'))}) on {nf.get('retested_at')}"
            + (" — on an earlier version of this data set (fingerprint "
               f"{nf.get('dataset_fingerprint')})" if stale else "") + f"; pairs in `{RETEST_FILE}`.",
            "",
            "| | value |",
            "|---|---:|",
            f"| median within-run CV, whole data set | {_pct(nf.get('median_cv_all'))} |",
            f"| median within-run CV, retested models (first / retest) | {_pct(nf.get('median_cv_subset_first'))} / "
            f"{_pct(nf.get('median_cv_subset_retest'))} |",
            f"| test-retest MAPE, median latency | {_pct(med.get('mape'))} |",
            f"| median / p90 / max abs. relative difference, median latency | {_pct(med.get('median_ape'))} / "
            f"{_pct(med.get('p90_ape'))} / {_pct(med.get('max_ape'))} |",
            f"| test-retest MAPE, min latency | {_pct(mn.get('mape'))} |",
            f"| drift (geometric mean retest/first − 1) | {_pct(nf.get('drift'))} |",
        ]
        pred = nf.get("retest_as_predictor")
        if pred:
            L.append(f"| retest as a predictor of the labels: Kendall τ / Acc(5 %) / Acc(10 %) | "
                     f"{pred['kendall_tau']:.4f} / {_pct(pred['acc_5pct'])} / {_pct(pred['acc_10pct'])} |")
        L += ["", "A latency predictor cannot be expected to beat these numbers against these labels.", ""]
        if nf.get("per_family"):
            L += ["| family | n | MAPE | median abs. rel. diff. | median CV |", "|---|---:|---:|---:|---:|"]
            for fam, s in nf["per_family"].items():
                L.append(f"| {fam} | {s['n']} | {_pct(s['mape'])} | {_pct(s['median_ape'])} | "
                         f"{_pct(s['median_cv_first'])} |")
            L.append("")
    else:
        L += [f"Not measured yet: `archcast dataset retest {ds.path.name} --count 300 --workers 2` writes "
              f"`{NOISE_FILE}`; then rerun `archcast dataset datasheet`.", ""]

    start = min(seeds) if seeds else 0
    n_seeds = (max(seeds) - start + 1) if seeds else 0
    proto = f" --min-runs {kw['min_runs']} --min-time {kw['min_time_s']}" if has_proto else ""
    opt = "" if p.get("graph_opt_level") == "all" else f" --graph-opt-level {p.get('graph_opt_level')}"
    L += [
        "## Reproduce",
        "",
        f"On a machine with the same CPU model ({p.get('device')}) and onnxruntime {p.get('runtime_version')}:",
        "",
        "```sh",
        f"archcast profile --family {' '.join(fams)} --count {n_seeds} --start-seed {start} "
        f"--batch-size {ds.batch_size} --threads {p.get('threads')}{opt}{proto} --workers 2 --db archcast.db",
        f"archcast dataset export --db archcast.db --platform {p.get('name')} --batch-size {ds.batch_size}"
        f"{proto} --out {ds.path.name}",
        f"archcast dataset verify {ds.path.name} --count 20",
        f"archcast dataset retest {ds.path.name} --count 300 --workers 2",
        f"archcast dataset datasheet {ds.path.name}",
        "```",
        "",
        "Keep `--workers` × threads within the free CPU cores: concurrent measurements disturb each other.",
        "",
    ]
    path = ds.path / DATASHEET_FILE
    path.write_text("\n".join(L), encoding="utf-8")
    return path


__all__ = ["write_datasheet"]
