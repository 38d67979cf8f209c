"""``DATASHEET.md`` of a format-2 latency data set: protocol, label, machines, kernels, noise floor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from archcast.collect.noise_floor import campaign_noise
from archcast.data.latency_dataset import (
    DATASHEET_FILE,
    HIST_DIR,
    HIST_GRID_FILE,
    KERNELS_FILE,
    MEASUREMENTS_FILE,
    MODELS_FILE,
    NOISE_FILE,
    OPTIMIZED_GRAPHS_FILE,
    PASSES_FILE,
    LatencyDataset,
)

NOTE_FILE = "NOTE.md"  # free text about the conditions (e.g. "a busy machine"), kept by the datasheet

_STAT_WORDS = {"cpu_ms_min": "thread CPU time, minimum over the pass's timed runs",
               "cpu_ms_median": "thread CPU time, median over the pass's timed runs",
               "latency_ms_min": "wall-clock time, minimum over the pass's timed runs",
               "latency_ms_median": "wall-clock time, median over the pass's timed runs"}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def _f(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}g}"


def _passes_words(passes: list[str]) -> str:
    """How many label passes each model had: ``3``, or ``2-3`` (per campaign) for a merged data set."""
    per: dict[str, int] = {}
    for p in passes:
        per[p.rsplit("/", 1)[0]] = per.get(p.rsplit("/", 1)[0], 0) + 1
    lo, hi = min(per.values(), default=0), max(per.values(), default=0)
    return str(hi) if lo == hi else f"{lo}-{hi}"


def write_campaign_datasheet(ds: LatencyDataset, family_rows: list[str], note: str | None = None) -> Path:
    """Write ``DATASHEET.md`` and ``noise_floor.json`` of a format-2 data set; ``family_rows`` are
    the per-family table lines (shared with format 1). ``note`` replaces ``NOTE.md``."""
    from archcast.collect.dataset_files import write_json

    man, p = ds.manifest, ds.platform
    proto, lab, counts = man.get("protocol") or {}, man["label"], man["counts"]
    if note is not None:
        (ds.path / NOTE_FILE).write_text(note.strip() + "\n", encoding="utf-8")
    note_text = (ds.path / NOTE_FILE).read_text(encoding="utf-8").strip() if (ds.path / NOTE_FILE).is_file() else ""
    nf = campaign_noise(ds)
    write_json(ds.path / NOISE_FILE, nf)
    times = sorted(r["measured_at"] for r in ds.passes() if r["measured_at"])  # every pass, canaries, retests
    cov = np.array([r.kernel_coverage for r in ds.records if r.kernel_coverage is not None])
    ratio = np.array([r.kernel_sum_ms / r.latency_ms for r in ds.records if r.kernel_sum_ms is not None])
    nk = [r.n_kernels for r in ds.records if r.n_kernels is not None]

    L = [f"# Latency data set (format 2): {len(ds)} models, {len(ds.families())} families, {p.get('name')}", ""]
    L += [f"Inference latency (milliseconds, batch size {ds.batch_size}) of {len(ds)} distinct networks from "
          f"{len(ds.families())} archcast zoo families, run by {p.get('runtime')} {p.get('runtime_version')} with "
          f"{p.get('threads')} intra-op thread(s) on {p.get('device')}, measured with the protocol of "
          "`archcast.collect.passes` (campaign `" + str(man.get("campaign")) + "`): every model in "
          f"{_passes_words(lab['passes'])} label passes in separate worker processes, canary checkpoints giving a "
          "machine speed index, automatic re-measures of drifting windows, kernel profiles with the graph the "
          "runtime ran.",
          "", f"**Label** (`label_ms`): the median over the label passes of the per-pass {_STAT_WORDS[lab['stat']]}"
          + (", each divided by the canary speed index at its time" if lab["canary_normalised"] else "")
          + "; `label_spread` = (max − min) / label over the passes.", ""]
    if man.get("sources"):  # archcast dataset merge
        L += ["**Merged** (`archcast dataset merge`) from " + "; ".join(
              f"`{x['path']}` (campaign `{x['campaign']}`, fingerprint `{x['fingerprint']}`, {x['models_kept']} of "
              f"{x['models']} models kept, host `{x['host']}`, speed index median {_f(x['speed_index_median'], 4)})"
              for x in man["sources"]) + f": hosts renamed HOST@CAMPAIGN, labels and kernel times on the canary scale "
              f"of `{lab.get('reference_host')}`, {counts.get('duplicates_dropped', 0)} models found in an earlier "
              "source dropped.", ""]
    if note_text:
        L += ["**Conditions.** " + note_text, ""]
    L += [f"Data set fingerprint `{ds.fingerprint}`; archcast {man.get('archcast_version')}; measured "
          f"{times[0] if times else '?'} to {times[-1] if times else '?'} (UTC).", "",
          "## Files", "", "| file | content |", "|---|---|",
          f"| `{MODELS_FILE}`, `graphs.jsonl.xz` | as in format 1: provenance, size, the exported graph (IR) |",
          f"| `{MEASUREMENTS_FILE}` | per model: `label_ms`, `label_spread`, `n_passes`, thread CPU min/median, canary "
          "`speed_index`, `kernel_coverage`, `n_kernels`, and the format-1 wall statistics (median over passes) |",
          f"| `{PASSES_FILE}` | every row behind the labels: {counts.get('rows')} model rows (label and retest passes; "
          f"{counts.get('superseded_rows')} superseded by a re-measure, kept), {counts.get('canary_rows')} canary rows |",
          f"| `{KERNELS_FILE}` | per (model, pass, kernel): the kernel's median time over the profiled runs, µs |",
          f"| `{OPTIMIZED_GRAPHS_FILE}` | the graph onnxruntime executed per model (IR; kernel names = node names) |",
          f"| `{NOISE_FILE}` | the figures of the noise-floor section below |", ""]
    L += ["## Protocol", ""]
    mk = proto.get("measure_kw") or {}
    ck = proto.get("canary_kw") or {}
    L += [f"- Passes: {proto.get('passes')} label passes, each by new worker processes; blocks of "
          f"{proto.get('block')} models go through all passes before the next block. A model whose passes spread by "
          f"more than {_pct(proto.get('disagree_threshold'))} gets up to {proto.get('extra_passes')} further pass(es); "
          f"label passes here: {', '.join(f'`{x}`' for x in lab['passes'])}.",
          f"- Timing per pass: warm-up {mk.get('warmup_runs')} runs or {mk.get('warmup_s')} s; at least "
          f"{mk.get('min_runs')} runs and {mk.get('min_time_s')} s"
          + (f", or >= 3 runs once past {mk['max_time_s']} s" if mk.get("max_time_s") else "")
          + "; wall time (`perf_counter_ns`) and the thread's CPU time (`thread_time_ns`) of every run.",
          f"- Kernel profile per pass: {proto.get('profile_runs')} profiled runs"
          + (f" (>= 3 once past {proto['profile_max_s']} s)" if proto.get("profile_max_s") else "")
          + " after 2 dropped ones; a kernel's time "
          "is its median over the runs; the first pass saves the optimised graph "
          "(`SessionOptions.optimized_model_filepath`, shapes from one run with every tensor as an output).",
          f"- Canaries ({', '.join(proto.get('canaries') or [])}): measured at every worker start and after every "
          f"{proto.get('canary_every')} models ({ck.get('min_runs')} runs / {ck.get('min_time_s')} s each). Speed index "
          "= geometric mean over canaries of time / reference time (per canary, interpolated in time); a window "
          f"whose closing checkpoint differs from its opening one by more than {_pct(proto.get('drift_threshold'))} is "
          f"measured again (at most {proto.get('max_remeasures')} time(s) per model and pass); old rows stay.",
          f"- Reference: host `{lab.get('reference_host')}`, canary reference times (ms): "
          + ", ".join(f"{_f(v, 4)}" for v in (lab.get("reference_canary_ms") or {}).values()) + ".", ""]
    L += ["## Machines", "", "| host | rows | canary checkpoints | speed index median | min | max |",
          "|---|---:|---:|---:|---:|---:|"]
    rows_by_host = {m["host"]: m for m in man.get("machines") or []}
    for m in nf.get("machines", []):
        L.append(f"| {m['host']} | {rows_by_host.get(m['host'], {}).get('rows', '–')} | {m['checkpoints']} | "
                 f"{_f(m['speed_index_median'], 4)} | {_f(m['speed_index_min'], 4)} | {_f(m['speed_index_max'], 4)} |")
    L += ["", "## Families", "",
          "| family | models | nodes | GFLOPs | label ms min | median | max | span max/min | median CV |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|", *family_rows, "",
          f"Histograms of the label: `{HIST_GRID_FILE}` and `{HIST_DIR}/<family>.png`.", "",
          f"![label histograms]({HIST_GRID_FILE})", ""]
    L += ["## Kernel profiles", ""]
    if cov.size:
        L += [f"{counts.get('with_kernels')} of {len(ds)} models have kernel tables "
              f"({_pct(counts.get('with_kernels', 0) / max(1, len(ds)))}), {counts.get('with_optimized_graph')} their "
              f"optimised graph. Kernels per model: median {int(np.median(nk)) if nk else '–'}, range "
              f"{min(nk) if nk else '–'}–{max(nk) if nk else '–'}. Coverage (kernel sum / profiled run, median over "
              f"passes): median {_pct(float(np.median(cov)))}, p10 {_pct(float(np.percentile(cov, 10)))}, p90 "
              f"{_pct(float(np.percentile(cov, 90)))}. Kernel sum / label: median {_f(float(np.median(ratio)))}, "
              f"p10 {_f(float(np.percentile(ratio, 10)))}, p90 {_f(float(np.percentile(ratio, 90)))} (kernel times are "
              "wall-clock medians; on a time-shared machine the profiled run's wall time also holds the gaps where "
              "the thread was not running, so the coverage of the run understates what the kernels explain).", ""]
    else:
        L += ["No kernel profiles (measured with --no-kernels).", ""]
    L += _noise_lines(nf)
    L += ["## Reproduce", "", "```sh",
          f"archcast profile --family {' '.join(ds.families())} --count N --passes {proto.get('passes')} "
          f"--campaign CAMPAIGN_DIR --db DB --workers 2",
          "archcast profile --campaign CAMPAIGN_DIR --db DB --retest 100 --workers 2   # later: the noise floor",
          f"archcast dataset export --db DB --platform {p.get('name')} --campaign CAMPAIGN_DIR --out "
          + ("SOURCE_DIR   # each source" if man.get("sources") else ds.path.name),
          *([f"archcast dataset merge {' '.join(x['path'] for x in man['sources'])} --out {ds.path.name}"]
            if man.get("sources") else []),
          f"archcast dataset datasheet {ds.path.name}", "```", ""]
    path = ds.path / DATASHEET_FILE
    path.write_text("\n".join(L), encoding="utf-8")
    return path


def _kernel_agreement_lines(nf: dict[str, Any]) -> list[str]:
    L = []
    for key, what in (("between_passes", "the second label pass against the first"),
                      ("retest", "the retest pass against the label")):
        a = (nf.get("kernel_agreement") or {}).get(key)
        if a:
            L += [f"Kernel times as the latency bench scores a predictor's, {what} ({a['n_models']} models): "
                  f"median kernel MAPE {_pct(a['median_kernel_mape'])}, WAPE {_pct(a['mean_wape'])}, top-5 overlap "
                  f"{_pct(a['top5_overlap'])}, at least 4 of the 5 slowest in common on {_pct(a['top5_at_least_4'])} "
                  "of models.", ""]
    return L


def _noise_lines(nf: dict[str, Any]) -> list[str]:
    L = ["## Noise floor", ""]
    sp = nf.get("label_spread")
    if sp:
        L += [f"Spread of the label passes: median {_pct(sp['median'])}, p90 {_pct(sp['p90'])}; "
              f"{_pct(sp['share_over_5pct'])} of the models over 5 %.", ""]
    if nf.get("between_passes"):
        L += ["Between the first two label passes (same models, minutes apart, new processes):", "",
              "| statistic | canary-normalised | MAPE | median | p90 |", "|---|---|---:|---:|---:|"]
        for b in nf["between_passes"]:
            L.append(f"| {b['stat']} | {'yes' if b['canary_normalised'] else 'no'} | {_pct(b['mape'])} | "
                     f"{_pct(b['median_ape'])} | {_pct(b['p90_ape'])} |")
        L.append("")
    L += _kernel_agreement_lines(nf)
    if not nf.get("ablation"):
        return L + ["No retest pass yet: `archcast profile --campaign DIR --db DB --retest 100`, then export again.", ""]
    lab = nf["label"]
    L += [f"Retest: the label against `{nf['retest_pass']}`, a later pass over random models of the data set. "
          "Ablation: each protocol piece on and off (test-retest of the label so built).", "",
          "| variant | statistic | normalised | label passes | re-measure | n | MAPE | median | p90 |",
          "|---|---|---|---|---|---:|---:|---:|---:|"]
    full = {"stat": lab["stat"], "canary_normalised": bool(lab["canary_normalised"]), "label_passes": "all",
            "remeasure": True}
    named = [("**as built**", {}), ("wall clock instead of CPU time", {"stat": lab["stat"].replace("cpu_ms", "latency_ms")}),
             ("median instead of min", {"stat": lab["stat"].replace("_min", "_median")}),
             (("no canary normalisation", {"canary_normalised": False}) if full["canary_normalised"] else
              ("with canary normalisation", {"canary_normalised": True})), ("first pass only", {"label_passes": "1"}),
             ("no further pass", {"label_passes": "2"}), ("no drift re-measure", {"remeasure": False}),
             ("format-1 protocol (wall median, 1 pass, raw)", {"stat": "latency_ms_median", "canary_normalised": False,
                                                               "label_passes": "1", "remeasure": False})]
    for title, change in named:
        want = {**full, **change}
        hit = next((a for a in nf["ablation"] if all(a[k] == v for k, v in want.items())), None)
        if hit is not None:
            L.append(f"| {title} | {hit['stat']} | {'yes' if hit['canary_normalised'] else 'no'} | "
                     f"{hit['label_passes']} | {'on' if hit['remeasure'] else 'off'} | {hit['n']} | {_pct(hit['mape'])} | "
                     f"{_pct(hit['median_ape'])} | {_pct(hit['p90_ape'])} |")
    best = min(nf["ablation"], key=lambda a: a["mape"])
    L += ["", f"Lowest retest MAPE of all {len(nf['ablation'])} variants in `{NOISE_FILE}`: {_pct(best['mape'])} "
          f"({best['stat']}, normalised {best['canary_normalised']}, passes {best['label_passes']}, re-measure "
          f"{best['remeasure']}).", ""]
    if nf.get("retest_per_family"):
        L += ["| family | n | retest MAPE | median |", "|---|---:|---:|---:|"]
        for f, s in nf["retest_per_family"].items():
            L.append(f"| {f} | {s['n']} | {_pct(s['mape'])} | {_pct(s['median_ape'])} |")
        L.append("")
    for key, what in (("kernels", "median over profiled runs"), ("kernels_min", "minimum over profiled runs")):
        k = nf.get(key)
        if k:
            L += [f"Kernel times, {what} (kernels >= 1 % of their model, {k['n_kernels']} kernels of "
                  f"{k['n_models']} models), retest against the label passes: MAPE {_pct(k['mape'])}, median "
                  f"{_pct(k['median_ape'])}, p90 {_pct(k['p90_ape'])}.", ""]
    L += ["A latency predictor cannot be expected to beat these numbers against these labels.", ""]
    return L


__all__ = ["NOTE_FILE", "write_campaign_datasheet"]
