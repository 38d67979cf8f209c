"""Reports of a latency prediction: the text block ``archcast predict`` prints and the per-operator
bar chart (``--plot``)."""

from __future__ import annotations

from pathlib import Path

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
                  + ("  runs (your operators)" if kernels else "")]
        for o in ops:
            nm = o["name"] or "-"
            nm = nm if len(nm) <= w_name else "…" + nm[-(w_name - 1):]
            line = f"  {nm:<{w_name}}  {o['op_type']:<{w_op}}  {o['ms']:>9.4f}  {100 * o['share']:>5.1f}%"
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
    and the interval. Uses a private Figure (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise InvalidInputError(f"top must be an integer >= 1; got {top!r}")
    ops = sorted(pred.operators, key=lambda o: -o["ms"])[:top][::-1]  # slowest on top
    what = "kernels" if pred.predictor == "kernels" else "operators"
    labels = [f"{(o['name'] or '-')[-40:]} ({o['op_type'].removeprefix('com.microsoft.')})" for o in ops]
    fig = Figure(figsize=(8.0, 1.4 + 0.32 * len(ops)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(range(len(ops)), [o["ms"] for o in ops], color="#4c72b0")
    ax.set_yticks(range(len(ops)), labels, fontsize=8)
    ax.set_xlabel("predicted latency (ms)")
    ax.set_title(f"{_title(pred)} on {pred.platform}: {_ms(pred.latency_ms)} ms\n"
                 f"({100 * pred.level:.0f}% interval {_ms(pred.low_ms)}–{_ms(pred.high_ms)} ms), "
                 f"top {len(ops)} of {len(pred.operators)} {what}", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png", dpi=110)
    except OSError as e:
        raise InvalidInputError(f"cannot write the plot to {str(out)!r}: {e.strerror or e}") from None
    return out




__all__ = ["format_prediction", "plot_breakdown"]
