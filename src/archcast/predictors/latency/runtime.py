"""The shipped latency predictor's inference in NumPy: ``archcast predict`` never imports torch.

:class:`LatencyRuntime` loads an ``archcast`` latency checkpoint (config + safetensors weights read
as NumPy arrays) and runs :class:`~archcast.models.latency_net.LatencyNet`'s forward pass with the
same maths (edge attention, feed-forward blocks, per-operator log-latency head, sum readout). It
answers the inference half of the predictor contract (``predict``, ``predict_members``,
``breakdown``, ``embeddings``); training stays with the torch model. Parity with the torch model
is a test (``tests/predictors/latency/test_runtime.py``, relative error <= 1e-5).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from archcast.errors import CheckpointError, InvalidInputError
from archcast.graph import NetGraph
from archcast.tokenizer import batching as F_

LN_EPS = 1e-5  # torch.nn.LayerNorm's default


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LN_EPS) * w + b


def _scatter_sum(values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n,) + values.shape[1:], dtype=values.dtype)
    np.add.at(out, index, values)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free


class NumpyLatencyNet:
    """LatencyNet's inference on packed NumPy batches (``x``, ``src``, ``dst``, ``graph_index``,
    ``gf``, ``n_graphs`` as :func:`archcast.tokenizer.batching.pack` makes them), float64."""

    def __init__(self, net_cfg: dict[str, Any], state: dict[str, np.ndarray]) -> None:
        self.cfg = net_cfg
        self.p = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
        self.n_blocks = int(net_cfg["n_blocks"])
        self.scale = 1.0 / np.sqrt(float(net_cfg["width"]))

    def _lin(self, name: str, x: np.ndarray, bias: bool = True) -> np.ndarray:
        y = x @ self.p[f"{name}.weight"].T
        return y + self.p[f"{name}.bias"] if bias else y

    def _ln(self, name: str, x: np.ndarray) -> np.ndarray:
        return _layer_norm(x, self.p[f"{name}.weight"], self.p[f"{name}.bias"])

    def node_states(self, x: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        h = self._lin("embed.2", np.maximum(self._lin("embed.0", x), 0.0))
        n = h.shape[0]
        for k in range(self.n_blocks):
            a, f = f"blocks.{2 * k}", f"blocks.{2 * k + 1}"
            z = self._ln(f"{a}.norm", h)
            s = _sigmoid(self._lin(f"{a}.qk", z))
            score = (s[src] * s[dst]).sum(-1) * self.scale
            w = score[:, None]
            pred = _scatter_sum(w * z[src], dst, n) / (_scatter_sum(score, dst, n)[:, None] + 1e-6)
            succ = _scatter_sum(w * z[dst], src, n) / (_scatter_sum(score, src, n)[:, None] + 1e-6)
            h = h + np.maximum(self._lin(f"{a}.w_self", z) + self._lin(f"{a}.w_pred", pred, bias=False)
                               + self._lin(f"{a}.w_succ", succ, bias=False), 0.0)
            z = self._ln(f"{f}.norm", h)
            h = h + self._lin(f"{f}.fc2", np.maximum(self._lin(f"{f}.fc1", z), 0.0))
        return self._ln("norm", h)

    def _gf(self, gf: np.ndarray) -> np.ndarray:
        return np.maximum(self._lin("gf.0", gf), 0.0)

    def node_log_ms(self, b: dict[str, Any]) -> np.ndarray:
        """Per-operator log ms ``[n_nodes]``."""
        h = self.node_states(b["x"], b["src"], b["dst"])
        g = self._gf(b["gf"])[b["graph_index"]]
        z = np.maximum(self._lin("head.0", np.concatenate([h, g], -1)), 0.0)
        return self._lin("head.2", z)[:, 0]

    def forward(self, b: dict[str, Any]) -> np.ndarray:
        """Graph latency, log ms ``[n_graphs]`` (a stable per-graph logsumexp of the node outputs)."""
        s = self.node_log_ms(b)
        n, gi = int(b["n_graphs"]), b["graph_index"]
        m = np.full(n, -np.inf)
        np.maximum.at(m, gi, s)
        m = np.where(np.isfinite(m), m, 0.0)
        return np.log(np.maximum(_scatter_sum(np.exp(s - m[gi]), gi, n), 1e-30)) + m

    def embedding(self, b: dict[str, Any]) -> np.ndarray:
        h = self.node_states(b["x"], b["src"], b["dst"])
        n, gi = int(b["n_graphs"]), b["graph_index"]
        cnt = np.maximum(np.bincount(gi, minlength=n), 1).astype(np.float64)
        return np.concatenate([_scatter_sum(h, gi, n) / cnt[:, None], self._gf(b["gf"])], -1)


class LatencyRuntime:
    """A fitted ``archcast`` latency checkpoint for inference, without torch.

    Attributes: ``members_`` (one :class:`NumpyLatencyNet` per ensemble member), ``hparams_``,
    ``checkpoint_config_``, ``extra_tensors_`` (``x.*`` arrays, e.g. reference embeddings).
    """

    name = "archcast"
    task = "latency"
    tokenizer = "archcast-v1"

    @classmethod
    def load(cls, directory: str | Path) -> "LatencyRuntime":
        """Read ``directory`` as :meth:`ArchcastLatency.load` does, with the same checks."""
        from archcast.predictors.latency.archcast import check_latency_config
        from archcast.tokenizer.network import get_tokenizer
        from archcast.train.checkpoint import load_checkpoint, read_config

        cfg = read_config(directory)
        if cfg.get("predictor") != cls.name or cfg.get("task") != "latency":
            raise CheckpointError(f"checkpoint {str(directory)!r} holds {cfg.get('task')!r} predictor "
                                  f"{cfg.get('predictor')!r}, not the {cls.name!r} latency predictor")
        check_latency_config(cfg, f"checkpoint {str(directory)!r}")
        tok = get_tokenizer(cfg["tokenizer"])
        tensors, cfg = load_checkpoint(directory, backend="numpy",
                                       expect={"tokenizer_version": tok.version,
                                               "tokenizer_fingerprint": tok.fingerprint()})
        self = cls()
        self.tokenizer = cfg["tokenizer"]
        self.hparams_ = dict(cfg["hparams"])
        self.net_cfg_ = dict(cfg["net"])
        self.members_ = []
        for i in range(int(cfg["members"])):
            state = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"m{i}.")}
            missing = [k for k in _expected_keys(self.net_cfg_) if k not in state]
            if missing:
                raise CheckpointError(f"checkpoint {str(directory)!r}: member {i} lacks weights {missing[:3]}")
            self.members_.append(NumpyLatencyNet(self.net_cfg_, state))
        self.checkpoint_config_ = cfg
        self.extra_tensors_ = {k: v for k, v in tensors.items() if k.startswith("x.")}
        return self

    def is_fitted(self) -> bool:
        return bool(getattr(self, "members_", None))

    @property
    def hp(self) -> dict[str, Any]:
        return self.hparams_

    def _batches(self, graphs: Sequence[NetGraph]) -> list[np.ndarray]:
        sizes = np.array([t.n_nodes for t in F_.tokens(graphs, self.tokenizer)])
        return F_.size_batches(sizes, 20000, None, max_graphs=512, by_size=False)

    def _packed(self, graphs: Sequence[NetGraph], idx: np.ndarray) -> dict[str, Any]:
        p = F_.pack([graphs[i] for i in idx], self.tokenizer)
        return {"x": p.x.astype(np.float64), "src": p.src, "dst": p.dst, "graph_index": p.graph_index,
                "gf": p.gf.astype(np.float64), "n_graphs": p.n_graphs}

    def predict_members(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        """``[members, len(graphs)]`` milliseconds."""
        graphs = list(graphs)
        F_.check_networks(graphs)
        out = np.zeros((len(self.members_), len(graphs)))
        for idx in self._batches(graphs):
            b = self._packed(graphs, idx)
            for m, net in enumerate(self.members_):
                out[m, idx] = np.exp(net.forward(b))
        return out

    def predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        out = self.predict_members(graphs).mean(axis=0)
        if not np.all(np.isfinite(out)):
            raise InvalidInputError("the latency predictor produced a non-finite prediction")
        return out

    def breakdown(self, graph: NetGraph) -> tuple[list[int], np.ndarray]:
        """``(node indices in token order, per-operator ms [members, n_nodes])``."""
        b = self._packed([graph], np.array([0]))
        return graph.topological_order(), np.stack([np.exp(net.node_log_ms(b)) for net in self.members_])

    def embeddings(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        """``[len(graphs), 2*width]`` graph vectors of the first member."""
        graphs = list(graphs)
        out = np.zeros((len(graphs), 2 * int(self.net_cfg_["width"])))
        for idx in self._batches(graphs):
            out[idx] = self.members_[0].embedding(self._packed(graphs, idx))
        return out


def _expected_keys(net_cfg: dict[str, Any]) -> list[str]:
    keys = ["embed.0.weight", "embed.0.bias", "embed.2.weight", "embed.2.bias", "gf.0.weight", "gf.0.bias",
            "norm.weight", "norm.bias", "head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"]
    for k in range(int(net_cfg["n_blocks"])):
        a, f = f"blocks.{2 * k}", f"blocks.{2 * k + 1}"
        keys += [f"{a}.{n}" for n in ("norm.weight", "norm.bias", "qk.weight", "qk.bias", "w_self.weight",
                                      "w_self.bias", "w_pred.weight", "w_succ.weight")]
        keys += [f"{f}.{n}" for n in ("norm.weight", "norm.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias")]
    return keys


__all__ = ["LatencyRuntime", "NumpyLatencyNet"]
