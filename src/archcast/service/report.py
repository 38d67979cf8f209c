"""Reports of a latency prediction: the text block ``archcast predict`` prints, the per-operator
bar chart (``--plot``) and, when the store holds the graph's kernel profile, predicted against
measured kernel times (:func:`kernel_comparison`).

The join is by name. A kernel-level prediction (the default for ONNX files on a platform with a
``kernels-<platform>`` checkpoint) lists the kernels of onnxruntime's optimised graph under the
names its profiler reports, which are the profile's (and the data set's ``kernels.csv.xz``) kernel
names: they match one to one, as in training. A network-level prediction lists the model's own
nodes; the runtime fuses and renames most of them, so only the kernels it runs under a node's own
name match (``n_matched`` says how many).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from archcast.errors import InvalidInputError
from archcast.service.predict import LatencyPrediction


def _ms(x: float) -> str:
    """Milliseconds with about three significant digits."""
    a = abs(x)
    return f"{x:.0f}" if a >= 100 else f"{x:.1f}" if a >= 10 else f"{x:.2f}" if a >= 1 else f"{x:.3f}"


def _title(pred: LatencyPrediction) -> str:
    src = pred.graph.get("source")
    name = Path(src).name if src else (pred.graph.get("name") or "(unnamed graph)")
    return name


def kernel_comparison(pred: LatencyPrediction, top: int = 10) -> dict[str, Any] | None:
    """Predicted against measured kernel times, or None when ``pred`` has no kernel profile.

    The ``top`` operators by predicted time are joined by name with the profile's kernels (see the
    module docstring). Returns ``{"join", "measured_kernel_sum_ms", "coverage", "pass_id",
    "n_passes", "source", "n_measured_kernels", "n_matched" (operators with a measured kernel),
    "top": [{"name", "op_type", "predicted_ms", "measured_ms" (None: not in the profile)}],
    "top_matched", "kernel_mape_top"}``; the MAPE (a fraction) is over the top operators with a
    measured time > 0, None when there is none. Predicted times are the breakdown's (they sum to
    the predicted latency); measured ones the profile's per-kernel label statistic.
    """
    prof = pred.kernel_profile
    if not prof:
        return None
    measured = {str(k[0]): float(k[2]) for k in prof["kernels"]}
    ops = sorted(pred.operators, key=lambda o: -o["ms"])[:max(0, top)]
    rows = [{"name": o["name"], "op_type": o["op_type"], "predicted_ms": float(o["ms"]),
             "measured_ms": measured.get(o["name"])} for o in ops]
    pairs = [(r["measured_ms"], r["predicted_ms"]) for r in rows if r["measured_ms"]]
    mape = sum(abs(p - m) / m for m, p in pairs) / len(pairs) if pairs else None
    return {"join": "kernel name" if pred.predictor == "kernels" else "node name = kernel name",
            "measured_kernel_sum_ms": float(prof["kernel_sum_ms"]), "coverage": prof.get("coverage"),
            "pass_id": prof.get("pass_id"), "n_passes": prof.get("n_passes"), "source": prof.get("source"),
            "n_measured_kernels": len(measured),
            "n_matched": sum(1 for o in pred.operators if o["name"] in measured),
            "top": rows, "top_matched": len(pairs), "kernel_mape_top": mape}


def _comparison_line(c: dict[str, Any]) -> str:
    cov = f", coverage {c['coverage']:.2f}" if c.get("coverage") is not None else ""
    where = f", {c['pass_id']}" if c.get("pass_id") else ""
    line = (f"measured kernels in store: {_ms(c['measured_kernel_sum_ms'])} ms over {c['n_measured_kernels']} "
            f"kernels ({c['source']}{where}{cov}); ")
    if c["kernel_mape_top"] is None:
        return line + f"none of the top {len(c['top'])} predicted has a measured kernel of its name"
    return line + (f"top {len(c['top'])} predicted vs measured: MAPE {100 * c['kernel_mape_top']:.1f} % "
                   f"({c['top_matched']} of {len(c['top'])} profiled)")


def format_prediction(pred: LatencyPrediction, top: int = 10) -> str:
    """A readable text block: headline with interval, measured value, top operators and op types,
    unknown ops, warnings."""
    n_m = len(pred.members_ms)
    kernels = pred.predictor == "kernels"
    how = (f"kernel model over the {pred.graph.get('n_kernels', len(pred.operators))} kernels the runtime executes"
           if kernels else f"{n_m}-member ensemble")
    lines = [f"{_title(pred)} on {pred.platform}: {_ms(pred.latency_ms)} ms "
             f"({100 * pred.level:.0f}% interval {_ms(pred.low_ms)}–{_ms(pred.high_ms)} ms, {how})"]
    m = pred.measured
    if m:
        runs = f"median of {m['n_runs']} runs" if m.get("n_runs") else "median"
        lines.append(f"measured in store: {_ms(m['latency_ms'])} ms ({runs}, {str(m['measured_at'])[:10]})")
    comp = kernel_comparison(pred, top)
    if comp is not None:
        lines.append(_comparison_line(comp))
    meas = {str(k[0]): float(k[2]) for k in pred.kernel_profile["kernels"]} if comp is not None else None
    g = pred.graph
    lines.append(f"graph: {g['n_nodes']} nodes, {g['flops'] / 1e9:.3g} GFLOPs, {g['params'] / 1e6:.3g} M params, "
                 f"batch {g['batch_size']}, fingerprint {g['fingerprint']}")
    ops = sorted(pred.operators, key=lambda o: -o["ms"])[:max(0, top)]
    if ops:
        w_name = min(48, max(len("operator"), *(len(o["name"] or "-") for o in ops)))
        w_op = max(len("op type"), *(len(o["op_type"]) for o in ops))
        what = "kernels" if kernels else "operators"
        lines += ["", f"top {len(ops)} of {len(pred.operators)} {what}",
                  f"  {what[:-1]:<{w_name}}  {'op type':<{w_op}}  {'ms':>9}  {'share':>6}"
                  + (f"  {'measured':>9}" if meas is not None else "")
                  + ("  runs (your operators)" if kernels else "")]
        for o in ops:
            nm = o["name"] or "-"
            nm = nm if len(nm) <= w_name else "…" + nm[-(w_name - 1):]
            line = f"  {nm:<{w_name}}  {o['op_type']:<{w_op}}  {o['ms']:>9.4f}  {100 * o['share']:>5.1f}%"
            if meas is not None:
                line += f"  {meas[o['name']]:>9.4f}" if o["name"] in meas else f"  {'-':>9}"
            if kernels:
                origin = o.get("origin") or []
                line += "  " + (", ".join(origin[:3]) + (f" +{len(origin) - 3}" if len(origin) > 3 else "")
                                if origin else "(added by the runtime)")
            lines.append(line)
        types = list(pred.by_op_type.items())[:max(0, top)]
        total = pred.latency_ms or 1.0
        lines += ["", "by op type: " + ", ".join(f"{op} {_ms(ms)} ms ({100 * ms / total:.0f}%)" for op, ms in types)]
    if pred.unknown_ops:
        listed = ", ".join(f"{op} x{c}" for op, c in pred.unknown_ops.items())
        lines.append(f"unknown ops: {100 * pred.unknown_share:.1f} % of nodes ({listed})")
    else:
        lines.append("unknown ops: none")
    if pred.warnings:
        lines += ["", "warnings:"] + [f"  - {w}" for w in pred.warnings]
    lines.append(f"predicted in {pred.predict_s:.3f} s")
    return "\n".join(lines)


def plot_breakdown(pred: LatencyPrediction, path: str | Path, top: int = 15) -> Path:
    """Horizontal bars of the ``top`` slowest operators (ms) to a PNG; the title gives the total
    and the interval. With a kernel profile (``pred.kernel_profile``), predicted and measured bars
    side by side per operator (:func:`kernel_comparison`), and the measured kernel sum and the
    top operators' kernel-time MAPE in the title. Uses a private Figure (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InvalidInputError(f"top must be an integer >= 1; got {top!r}")
    ops = sorted(pred.operators, key=lambda o: -o["ms"])[:top][::-1]  # slowest on top
    comp = kernel_comparison(pred, top)
    what = "kernels" if pred.predictor == "kernels" else "operators"
    labels = [f"{(o['name'] or '-')[-40:]} ({o['op_type'].removeprefix('com.microsoft.')})" for o in ops]
    title = (f"{_title(pred)} on {pred.platform}: {_ms(pred.latency_ms)} ms\n"
             f"({100 * pred.level:.0f}% interval {_ms(pred.low_ms)}–{_ms(pred.high_ms)} ms), "
             f"top {len(ops)} of {len(pred.operators)} {what}")
    fig = Figure(figsize=(8.0, (1.4 + 0.32 * len(ops)) if comp is None else (1.8 + 0.42 * len(ops))))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    y = list(range(len(ops)))
    if comp is None:
        ax.barh(y, [o["ms"] for o in ops], color="#4c72b0")
        ax.set_xlabel("predicted latency (ms)")
    else:
        measured = {r["name"]: r["measured_ms"] for r in comp["top"]}
        ax.barh([i + 0.2 for i in y], [o["ms"] for o in ops], height=0.4, color="#4c72b0", label="predicted")
        got = [(i, measured.get(o["name"])) for i, o in zip(y, ops)]
        ax.barh([i - 0.2 for i, m in got if m is not None], [m for _, m in got if m is not None], height=0.4,
                color="#dd8452", label=f"measured ({comp['source']}{', ' + comp['pass_id'] if comp['pass_id'] else ''})")
        for i, m in got:
            if m is None:
                ax.text(0.0, i - 0.2, " not in the profile", va="center", fontsize=7, color="0.4")
        ax.set_xlabel("kernel time (ms)")
        fig.legend(*ax.get_legend_handles_labels(), loc="lower center", ncol=2, fontsize=8, frameon=False)
        mape = comp["kernel_mape_top"]
        title += (f"\nmeasured kernels: {_ms(comp['measured_kernel_sum_ms'])} ms in all; top {len(ops)} "
                  + (f"MAPE {100 * mape:.1f} % ({comp['top_matched']} profiled)" if mape is not None else
                     "have no measured kernel of their name"))
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    # with a comparison, a strip of 0.3 inch at the bottom holds the legend
    fig.tight_layout(rect=None if comp is None else (0.0, 0.3 / fig.get_figheight(), 1.0, 1.0))
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", dpi=110)
    except OSError as e:
        raise InvalidInputError(f"cannot write the plot to {str(out)!r}: {e.strerror or e}") from None
    return out


__all__ = ["format_prediction", "kernel_comparison", "plot_breakdown"]
