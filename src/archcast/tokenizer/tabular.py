"""Fixed-length tables of whole networks for tree and linear models: log costs, the op-type
histogram, per-op FLOPs shares (one row per graph)."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from archcast.graph import NetGraph
from archcast.tokenizer.batching import check_networks, graph_memo


def _table_vocab() -> tuple[str, ...]:
    from archcast.tokenizer.network import ARCHCAST_VOCABULARY

    return tuple(ARCHCAST_VOCABULARY)

def graph_table(graphs: Sequence[NetGraph], vocabulary: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """``([G, F] float64, column names)``: log10 costs, counts, op histogram, op FLOPs shares.

    Ops outside ``vocabulary`` (default: the archcast-v1 vocabulary) land in ``op:<other>``."""
    check_networks(graphs)
    vocab = tuple(vocabulary or _table_vocab())
    slot = {op: i for i, op in enumerate(vocab)}
    v = len(vocab) + 1
    cols = ["log_flops", "log_params", "log_memory", "log_nodes", "log_edges", "log_batch"]
    cols += [f"op:{o}" for o in vocab] + ["op:<other>"] + [f"flops:{o}" for o in vocab] + ["flops:<other>"]
    rows = np.zeros((len(graphs), len(cols)), dtype=np.float64)
    for r, g in enumerate(graphs):
        memo = graph_memo(g)
        key = ("table", vocab)
        row = memo.get(key)
        if row is None:
            hist = np.zeros(v)
            fl = np.zeros(v)
            for n in g.nodes:
                k = slot.get(n.op_type, v - 1)
                hist[k] += 1
                fl[k] += n.flops
            total = max(1.0, float(g.flops))
            bs = float(g.meta.get("batch_size", 1) or 1)
            head = [math.log10(1 + g.flops), math.log10(1 + g.params), math.log10(1 + g.memory_bytes),
                    math.log10(1 + len(g.nodes)), math.log10(1 + len(g.edges)), math.log10(bs)]
            row = np.concatenate([head, hist, fl / total])
            memo[key] = row
        rows[r] = row
    return rows, cols
