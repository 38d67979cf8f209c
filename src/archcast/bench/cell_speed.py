"""Speed measurements for cell prediction (reported inside the accuracy benchmark).

* cells/s of the shipped default predictor over the whole NB201 space (featurisation + forward,
  graphs already built; graph building timed separately);
* batched vs one-graph-at-a-time ``narformer-v2`` (same weights): inference and a training step.
Timings are medians of repeats in one process.
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def _median_time(fn: Callable[[], Any], repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def batched_vs_loop(graphs, *, repeats: int = 3, n_loop: int = 300) -> dict[str, float]:
    """Forward time of the faithful ``narformer-v2`` net on padded batches vs a per-graph loop
    (each graph unpadded, batch of one), on the same weights; also checks they agree."""
    import torch

    from archcast.models.narformer import NARFormerNet, NetConfig
    from archcast.predictors.accuracy.transformer import PRESETS, cell_tokens
    from archcast.tokenizer.cell import cell_arrays

    preset = PRESETS["narformer-v2"]["cell"]
    arr = cell_arrays(graphs)
    x = torch.from_numpy(cell_tokens(arr, preset["style"]))
    adj, mask = torch.from_numpy(arr.adj), torch.from_numpy(arr.mask)
    torch.manual_seed(0)
    net = NARFormerNet(NetConfig(d_in=x.shape[-1], **preset["net"])).eval()
    n = min(n_loop, len(graphs))
    with torch.inference_mode():
        t_batch = _median_time(lambda: net(x[:n], adj[:n], mask[:n]), repeats)

        def loop() -> list[torch.Tensor]:
            outs = []
            for i in range(n):
                m = int(mask[i].sum())
                outs.append(net(x[i:i + 1, :m], adj[i:i + 1, :m, :m], mask[i:i + 1, :m]))
            return outs

        t_loop = _median_time(loop, repeats)
        diff = float((torch.cat(loop()) - net(x[:n], adj[:n], mask[:n])).abs().max())
    return {"graphs": n, "batched_s": t_batch, "loop_s": t_loop, "speedup": t_loop / t_batch,
            "max_abs_diff": diff}


def cell_speed_notes(checkpoint: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Measure, and return ``(numbers, markdown lines)``."""
    from archcast.data import DATASETS
    from archcast.service.checkpoints import load_cell_predictor

    t0 = time.perf_counter()
    ds = DATASETS.get("nb201")()
    t_load = time.perf_counter() - t0
    import torch

    torch_threads = torch.get_num_threads()
    pred = load_cell_predictor(checkpoint)
    pred.hparams["threads"] = torch_threads  # predict with the thread count the caller chose
    pred.predict(ds.graphs[:64])  # warm-up
    t_all = _median_time(lambda: pred.predict(ds.graphs), 3)
    bl = batched_vs_loop(ds.graphs)
    numbers = {
        "nb201_cells": len(ds),
        "dataset_load_s": t_load,
        "predict_all_s": t_all,
        "cells_per_s": len(ds) / t_all,
        "predictor": pred.name,
        "members": len(pred.members_),
        "narformer_v2_batched_vs_loop": bl,
    }
    notes = [
        "## Speed (this machine, medians of 3)",
        "",
        f"- Shipped `{pred.name}` predictor ({len(pred.members_)} ensemble members"
        f"{', test-time averaging over a relabelled copy' if pred.tta_ else ''}, {torch_threads} torch thread(s)): all {len(ds)} NB201 cells in {t_all:.2f} s = {len(ds) / t_all:,.0f} cells/s "
        f"(graphs prebuilt; loading + building all graphs took {t_load:.2f} s).",
        f"- `narformer-v2` (faithful, 6 blocks × 512) on {bl['graphs']} cells: padded batch {bl['batched_s'] * 1e3:.1f} ms vs "
        f"one-graph-at-a-time loop {bl['loop_s'] * 1e3:.1f} ms → **{bl['speedup']:.1f}× faster batched** "
        f"(max |difference| {bl['max_abs_diff']:.2e}).",
    ]
    return numbers, notes
