"""``narformer-v2``: the reference latency model as published (docs/design.md §2), dense padded batches."""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from archcast.graph import NetGraph
from archcast.predictors.base import register_predictor
from archcast.predictors.latency.network import (
    LatencyPredictor,
    threads,
    train_log_latency,
)
from archcast.tokenizer import batching as F_
from archcast.tokenizer.network import check_dense_budget


@register_predictor("latency", "narformer-v2")
class NARFormerV2Latency(LatencyPredictor):
    """The reference latency model (docs/design.md §2), dense padded batches of similar size."""

    name = "narformer-v2"
    tokenizer: ClassVar[str] = "narformer-v2"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "width": 512, "n_blocks": 2, "fc_hidden": 512, "epochs": 50, "lr": 1e-3, "warmup": 0.1,
        "batch_size": 16, "max_nodes": 100000, "threads": 1, "progress": False,
    }

    def _dense(self, graphs: Sequence[NetGraph], idx: np.ndarray) -> tuple:
        import torch

        toks = F_.tokens([graphs[i] for i in idx], self.tokenizer)
        n = max(t.n_nodes for t in toks)
        d = toks[0].tokens.shape[1]
        check_dense_budget(4 * len(idx) * n * n, f"a padded batch of {len(idx)} graphs of up to {n} nodes")
        x = np.zeros((len(idx), n, d), np.float32)
        adj = np.zeros((len(idx), n, n), np.float32)
        mask = np.zeros((len(idx), n), bool)
        for k, (i, t) in enumerate(zip(idx, toks)):
            x[k, : t.n_nodes] = t.tokens
            adj[k, : t.n_nodes, : t.n_nodes] = F_.dense_adjacency(graphs[i], self.tokenizer)
            mask[k, : t.n_nodes] = True
        gf = np.stack([t.graph_features for t in toks])
        return tuple(torch.from_numpy(a) for a in (x, adj, mask, gf))

    def _infer(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        import torch

        sizes = np.array([t.n_nodes for t in F_.tokens(graphs, self.tokenizer)])
        out = np.zeros(len(graphs))
        with torch.inference_mode():
            for idx in F_.size_batches(sizes, 8000, None, max_graphs=64, by_size=True):
                out[idx] = self.net_(*self._dense(graphs, idx)).double().numpy() * self.y_scale_
        return out

    def _fit(self, graphs, y, val_graphs, val_y, init_from):
        import torch

        from archcast.models.narformer import NARFormerNet, NetConfig

        with threads(self.hp):
            toks = self._tokens(graphs, val_graphs, self.tokenizer)
            hp = self.hp
            self.y_scale_ = float(np.mean(y))
            torch.manual_seed(self.seed)
            self.net_cfg_ = NetConfig(d_in=toks[0].tokens.shape[1], width=hp["width"], n_blocks=hp["n_blocks"],
                                      readout="sum", graph_features=toks[0].graph_features.shape[0],
                                      fc_hidden=hp["fc_hidden"])
            self.net_ = NARFormerNet(self.net_cfg_)
            sizes = np.array([t.n_nodes for t in toks])
            batches = lambda rng: F_.size_batches(sizes, hp["max_nodes"], rng, max_graphs=hp["batch_size"])  # noqa: E731
            self.history_ = train_log_latency(
                self.net_, lambda idx: self.net_(*self._dense(graphs, idx)), np.log(y),
                lambda: self._infer(val_graphs), val_y, batches, epochs=int(hp["epochs"]), lr=float(hp["lr"]),
                weight_decay=0.0, warmup=float(hp["warmup"]), seed=self.seed, loss="rel_mse",
                y_scale=self.y_scale_, progress=bool(hp["progress"]))

    def _predict(self, graphs):
        with threads(self.hp):
            return self._infer(list(graphs))
