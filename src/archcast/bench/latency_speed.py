"""Speed of latency prediction (``archcast bench latency-speed``).

* the whole ``archcast predict`` CLI process on a ResNet-50 ONNX (224 x 224, exported here from
  the zoo's ResNet generator with the ResNet-50 configuration), median of ``repeats`` runs;
* in-process :func:`archcast.service.predict.predict_graph` after the predictor is loaded
  (graph already read; tokenization, ensemble, breakdown and checks included);
* batch prediction of already-tokenized graphs (graphs/s), the shipped ensemble;
* the tokenizer on a 5,000-operator graph.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESNET50 = {"block": "bottleneck", "expansion": 4, "stem_channels": 64, "width_mult": 1.0,
            "width_mults": [1.0] * 4, "widths": [64, 128, 256, 512], "depths": [3, 4, 6, 3], "kernels": [3, 3, 3, 3]}


def resnet50_onnx() -> bytes:
    import torch

    from archcast.frontends.torch import export_onnx_bytes
    from archcast.zoo import get_family

    module, _ = get_family("resnet").build(RESNET50)
    module.eval()
    with torch.no_grad():
        return export_onnx_bytes(module, (torch.randn(1, 3, 224, 224),))


def long_chain_graph(n: int = 5000):
    """A ``n``-operator network: conv/relu/add blocks with skip edges (a deep residual chain)."""
    from archcast.graph.ir import NetGraph, Node

    nodes, edges = [], []
    shape = (1, 16, 8, 8)
    for i in range(n):
        op = ("Conv", "Relu", "Add")[i % 3]
        attrs = {"kernel_shape": (3, 3), "pads": (1, 1, 1, 1), "strides": (1, 1), "group": 1} if op == "Conv" else {}
        nodes.append(Node(name=f"n{i}", op_type=op, attrs=attrs, input_shapes=[shape], output_shapes=[shape],
                          flops=36864 if op == "Conv" else 1024, params=2304 if op == "Conv" else 0, memory_bytes=8192))
        if i:
            edges.append((i - 1, i))
        if op == "Add" and i >= 3:
            edges.append((i - 3, i))
    return NetGraph(name=f"chain{n}", nodes=nodes, edges=edges, kind="network", meta={"batch_size": 1})


def run_speed(predictor_dir: str | Path | None = None, repeats: int = 5, batch_graphs: int = 600) -> dict[str, Any]:
    import torch

    from archcast.frontends.onnx import load_onnx
    from archcast.service import predict as service
    from archcast.service.checkpoints import resolve_predictor_dir
    from archcast.tokenizer import batching as F_
    from archcast.tokenizer.network import get_tokenizer

    torch.set_num_threads(1)
    pdir = resolve_predictor_dir(None, predictor_dir)
    out: dict[str, Any] = {"predictor": str(pdir)}
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "resnet50.onnx"
        model.write_bytes(resnet50_onnx())
        cli = [sys.executable, "-m", "archcast.cli", "predict", str(model), "--predictor", str(pdir), "--no-store"]
        walls = []
        for _ in range(repeats):
            t = time.perf_counter()
            r = subprocess.run(cli, capture_output=True, text=True)
            walls.append(time.perf_counter() - t)
            if r.returncode != 0:
                raise RuntimeError(f"archcast predict failed: {r.stderr.strip()[-500:]}")
        out["cli_wall_s"] = {"median": statistics.median(walls), "all": walls}
        out["cli_output"] = r.stdout
        graph = load_onnx(model.read_bytes(), name="resnet50")
    pred = service.load_predictor(path=pdir)
    service.predict_graph(graph, pred)  # warm
    times = []
    for _ in range(max(5, repeats)):
        graph.__dict__.pop(F_._MEMO_ATTR, None)  # tokenization counted every time
        t = time.perf_counter()
        service.predict_graph(graph, pred)
        times.append(time.perf_counter() - t)
    out["in_process_predict_ms"] = {"median": statistics.median(times) * 1e3, "all_ms": [x * 1e3 for x in times]}
    out["resnet50"] = {"nodes": len(graph.nodes), "gflops": graph.flops / 1e9}

    # batch prediction of tokenized graphs: copies of zoo graphs of several families
    from archcast.zoo import export_sample, get_family

    base = [load_onnx(export_sample(get_family(f).sample(s)), name=f"{f}{s}")
            for f in ("resnet", "mobilenetv2", "vit", "gcn", "convnext", "squeezenet") for s in range(5)]
    graphs = [base[i % len(base)] for i in range(batch_graphs)]
    graphs = [type(g).from_json(g.to_json()) for g in graphs]
    F_.tokens(graphs)
    t = time.perf_counter()
    pred.predict_members(graphs)
    dt = time.perf_counter() - t
    out["batch"] = {"graphs": len(graphs), "mean_nodes": float(np.mean([len(g.nodes) for g in graphs])),
                    "seconds": dt, "graphs_per_s": len(graphs) / dt, "members": len(pred.members_)}

    big = long_chain_graph(5000)
    tok = get_tokenizer("archcast-v1")
    t = time.perf_counter()
    tok.encode(big)
    out["tokenize_5000_ops_s"] = time.perf_counter() - t
    return out


def markdown(res: dict[str, Any]) -> str:
    from archcast.bench.report import environment

    env = environment()
    b = res["batch"]
    return "\n".join([
        "# Latency prediction speed", "",
        f"- `archcast predict` on ResNet-50 ({res['resnet50']['nodes']} operators, {res['resnet50']['gflops']:.1f} GFLOPs, "
        f"224×224) as a whole CLI process: median **{res['cli_wall_s']['median']:.2f} s** over "
        f"{len(res['cli_wall_s']['all'])} runs (target < 3 s).",
        f"- In-process `predict_graph` after the predictor is loaded (tokenize + ensemble + breakdown + checks): "
        f"median **{res['in_process_predict_ms']['median']:.0f} ms** (target < 100 ms).",
        f"- Batch prediction of {b['graphs']} tokenized graphs (mean {b['mean_nodes']:.0f} operators, "
        f"{b['members']}-member ensemble): **{b['graphs_per_s']:.0f} graphs/s** (target ≥ 300).",
        f"- Tokenizer on a 5,000-operator graph: **{res['tokenize_5000_ops_s']:.2f} s** (target < 2 s).", "",
        f"Machine: {env['cpu']} ({env['cpu_count']} cores), one torch thread, {env['date_utc']}.", ""])
