"""Human-readable and JSON summaries of a :class:`NetGraph` (what ``archcast inspect`` prints)."""

from __future__ import annotations

from typing import Any

from archcast.graph.ir import NetGraph
from archcast.graph.ops import cost_unknown


SHAPE_PATH_TEXT = {
    "onnx": "onnx (ONNX shape inference)",
    "folded": "folded (ONNX inference + archcast's folding of shape sub-graphs)",
    "onnxruntime": "onnxruntime (one run on random inputs in a guarded child process)",
}


def unknown_ops(graph: NetGraph) -> dict[str, int]:
    """``{op_type: count}`` of nodes whose cost is unknown: costed only by the generic fallback, or
    control flow whose work sits in a sub-graph (most frequent first).

    Empty for ``kind="cell"`` graphs, whose op types are search-space names, not ONNX ops.
    """
    if graph.kind != "network":
        return {}
    return {op: k for op, k in graph.op_counts().items() if cost_unknown(op)}


def summary_dict(graph: NetGraph) -> dict[str, Any]:
    """:meth:`NetGraph.summary` plus ``unknown_ops`` (for ``archcast inspect --format json``)."""
    return {**graph.summary(), "unknown_ops": unknown_ops(graph), "shape_path": graph.meta.get("shape_path")}


def format_summary(graph: NetGraph) -> str:
    """Multi-line text: name, sizes, inputs, totals (GFLOPs, M params, MB = 10^6 bytes), op table."""
    n = len(graph.nodes)
    src = graph.meta.get("source")
    inputs = ", ".join(f"{k} {'x'.join(map(str, v))}" for k, v in graph.inputs.items()) or "-"
    lines = [
        f"graph        {graph.name or '(unnamed)'}  ({graph.kind}{', from ' + str(src) if src else ''})",
        f"nodes        {n}    edges {len(graph.edges)}",
        f"inputs       {inputs}",
        f"FLOPs        {graph.flops / 1e9:.3f} G",
        f"params       {graph.params / 1e6:.3f} M",
        f"memory       {graph.memory_bytes / 1e6:.2f} MB (outputs + parameters)",
        f"fingerprint  {graph.fingerprint()}",
        *([f"shapes       {SHAPE_PATH_TEXT.get(str(graph.meta['shape_path']), graph.meta['shape_path'])}"]
          if "shape_path" in graph.meta else []),
        "",
    ]
    flops_by: dict[str, int] = {}
    for node in graph.nodes:
        flops_by[node.op_type] = flops_by.get(node.op_type, 0) + node.flops
    width = max([len("op type")] + [len(op) for op in flops_by])
    total = graph.flops or 1
    lines.append(f"{'op type':<{width}}  {'count':>6}  {'GFLOPs':>9}  {'FLOPs %':>7}")
    for op, k in graph.op_counts().items():
        mark = "  (unknown)" if graph.kind == "network" and cost_unknown(op) else ""
        lines.append(f"{op:<{width}}  {k:>6}  {flops_by[op] / 1e9:>9.4f}  {100 * flops_by[op] / total:>6.1f}%{mark}")
    unknown = unknown_ops(graph)
    if unknown:
        k = sum(unknown.values())
        listed = ", ".join(f"{op} x{c}" for op, c in unknown.items())
        lines += ["", f"unknown ops  {k} of {n} nodes ({100 * k / n:.1f} %), costed by the generic fallback or in sub-graphs: {listed}"]
    elif graph.kind == "network":
        lines += ["", "unknown ops  none"]
    return "\n".join(lines)


__all__ = ["format_summary", "summary_dict", "unknown_ops"]
