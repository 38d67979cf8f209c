"""Transformer predictors: ``narformer-v2`` (the faithful reference) and ``archcast`` (default).

Both run :class:`~archcast.models.narformer.NARFormerNet` on padded batches. They differ in the
token features, attention direction, width, loss and recipe (see :data:`PRESETS`).

Cells (``kind="cell"``):
  * ``narformer-v2``: token = NeRF code of the op id (64) || NeRF code of the node index (64),
    directed adjacency as given, 6 blocks of width 512, layer-fusion mean readout, loss =
    relative MSE + 0.1 pairwise-rank L1 + 0.5 consistency L1 against a relabelled isomorphic copy,
    Adam 1e-4, batch 8, warm-up 10 % + linear decay.
  * ``archcast``: token = op one-hot || node-index one-hot || "on a live input->output path" flag,
    linear embedding, bidirectional attention with a residual and no L2 normalisation, width 64,
    3 blocks, standardised targets with MSE + 0.2 all-pairs logistic ranking, batch 128, 300 epochs,
    a deep ensemble of 3 (spread = uncertainty). Consistency loss and test-time averaging over a
    relabelled copy are available (``lambda_cons``, ``tta``) but off by default (not part of the
    tuned recipe).
Networks (``kind="network"``) use the network tokenizers (``narformer-v2`` / ``archcast-v1``) and
sum readout with graph-level features.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from archcast.errors import CheckpointError, InvalidInputError
from archcast.graph import NetGraph
from archcast.graph.spaces import SPACES
from archcast.predictors.base import PREDICTORS, Predictor, check_xy
from archcast.tokenizer.cell import CellArrays, cell_arrays, space_of
from archcast.tokenizer.encoding import nerf_code

CELL_TOKENIZER_VERSION = "cell-1"

# name -> (token style, NetConfig overrides, TrainConfig overrides, ensemble size, tta)
PRESETS: dict[str, dict[str, Any]] = {
    "narformer-v2": {
        "cell": {
            "style": "reference",
            "net": dict(width=512, n_blocks=6, readout="layer_fusion", fc_hidden=512, degree_gate=True),
            "train": dict(epochs=1000, batch_size=8, lr=1e-4, warmup=0.1, loss="rel_mse",
                          lambda_rank=0.1, rank_loss="sr", lambda_cons=0.5),
            "ensemble": 1,
            "tta": False,
        },
    },
    "archcast": {
        "cell": {
            "style": "archcast",
            "net": dict(width=64, n_blocks=3, readout="layer_fusion", fc_hidden=64, degree_gate=True,
                        bidirectional=True, positive_output=False, dropout=0.1, ffn_ratio=2,
                        pre_embed=True, attn_residual=True, l2norm=False),
            "train": dict(epochs=300, batch_size=128, lr=3e-3, weight_decay=1e-4, warmup=0.05, loss="mse",
                          lambda_rank=0.2, rank_loss="logistic", lambda_cons=0.0, eval_every=1),
            "ensemble": 3,
            "tta": False,
        },
    },
}


# --------------------------------------------------------------------------- cell features
def _reach(adj: np.ndarray) -> np.ndarray:
    """Transitive closure with self: ``[B, N, N]`` bool, r[b,i,j] = j reachable from i."""
    n = adj.shape[-1]
    r = np.broadcast_to(np.eye(n, dtype=bool), adj.shape).copy()
    a = adj > 0
    for _ in range(n):
        nxt = r | (np.einsum("bij,bjk->bik", r.astype(np.float32), a.astype(np.float32)) > 0)
        if np.array_equal(nxt, r):
            break
        r = nxt
    return r


def live_nodes(arr: CellArrays) -> np.ndarray:
    """``[B, N]`` bool: node lies on an input->output path (``none`` ops block the path)."""
    voc = arr.space.vocabulary
    adj = arr.adj.copy()
    if "none" in voc:
        dead = arr.op_ids == voc.index("none") + 1
        adj[dead, :] = 0.0
        adj = np.where(dead[:, None, :], 0.0, adj)
    r = _reach(adj)
    inp = arr.op_ids == voc.index("input") + 1
    out = arr.op_ids == voc.index("output") + 1
    from_in = np.einsum("bi,bij->bj", inp.astype(np.float32), r.astype(np.float32)) > 0
    to_out = np.einsum("bij,bj->bi", r.astype(np.float32), out.astype(np.float32)) > 0
    return from_in & to_out & arr.mask


def relabel(arr: CellArrays, rng: np.random.Generator) -> CellArrays:
    """An isomorphic copy of every cell: nodes re-listed in another random topological order
    (input stays first, output last). Same graph, different node indices."""
    b, n = arr.op_ids.shape
    ops = np.zeros_like(arr.op_ids)
    adj = np.zeros_like(arr.adj)
    for k in range(b):
        m = int(arr.mask[k].sum())
        a = arr.adj[k, :m, :m] > 0
        indeg = a.sum(0).astype(int)
        ready = [i for i in range(m) if indeg[i] == 0]
        order: list[int] = []
        while ready:
            # keep the output (last listed node) for last when something else is ready
            cand = [i for i in ready if i != m - 1] or ready
            i = cand[int(rng.integers(len(cand)))]
            ready.remove(i)
            order.append(i)
            for j in np.nonzero(a[i])[0]:
                indeg[j] -= 1
                if indeg[j] == 0:
                    ready.append(int(j))
        perm = np.asarray(order)
        ops[k, :m] = arr.op_ids[k, perm]
        adj[k, :m, :m] = arr.adj[k][np.ix_(perm, perm)]
    return CellArrays(ops, adj, arr.mask.copy(), arr.space)


def cell_tokens(arr: CellArrays, style: str) -> np.ndarray:
    """Token features ``[B, N, d]`` float32 (zeros on padding)."""
    b, n = arr.op_ids.shape
    pos = np.broadcast_to(np.arange(n), (b, n))
    if style == "reference":
        tok = np.concatenate([nerf_code(arr.op_ids - 1, 32), nerf_code(pos, 32)], axis=-1)
    elif style == "archcast":
        v = len(arr.space.vocabulary)
        tok = np.concatenate(
            [arr.one_hot(), np.eye(n, dtype=np.float32)[pos], live_nodes(arr)[..., None].astype(np.float32)],
            axis=-1,
        )
        assert tok.shape[-1] == v + n + 1
    else:
        raise InvalidInputError(f"cell token style {style!r} is not one of ('reference', 'archcast')")
    return (tok * arr.mask[..., None]).astype(np.float32)


# --------------------------------------------------------------------------- predictor
class TransformerPredictor(Predictor):
    """Shared implementation; subclasses fix ``name`` (the preset).

    Hyper-parameters: ``epochs``, ``batch_size``, ``lr``, ... override the preset's TrainConfig;
    ``width``, ``n_blocks``, ... override its NetConfig; ``ensemble`` and ``tta`` too.
    """

    name: ClassVar[str] = ""

    # -- config
    def _preset(self, kind: str) -> dict[str, Any]:
        from archcast.models.narformer import NetConfig
        from archcast.train.loop import TrainConfig

        try:
            p = PRESETS[self.name][kind]
        except KeyError:
            raise InvalidInputError(f"predictor {self.name!r} has no preset for {kind!r} graphs") from None
        net_keys = set(NetConfig.__dataclass_fields__) - {"d_in"}
        train_keys = set(TrainConfig.__dataclass_fields__)
        unknown = set(self.hparams) - net_keys - train_keys - {"ensemble", "tta", "progress", "threads"}
        if unknown:
            raise InvalidInputError(
                f"unknown hyper-parameter(s) {sorted(unknown)} for {self.name!r}; valid: {sorted(net_keys | train_keys | {'ensemble', 'tta'})}"
            )
        net = {**p["net"], **{k: v for k, v in self.hparams.items() if k in net_keys}}
        tr = TrainConfig(**{**p["train"], **{k: v for k, v in self.hparams.items() if k in train_keys}})
        return {"style": p["style"], "net": net, "train": tr,
                "ensemble": int(self.hparams.get("ensemble", p["ensemble"])),
                "tta": bool(self.hparams.get("tta", p["tta"]))}

    # -- featurisation
    def _featurize(self, graphs: Sequence[NetGraph], *, twin: bool = False, seed: int = 0) -> dict[str, Any]:
        import torch

        kinds = {g.kind for g in graphs}
        if kinds != {"cell"}:
            raise InvalidInputError(
                f"{self.name!r} accuracy prediction needs cell graphs; got kinds {sorted(kinds)}"
            )
        arr = cell_arrays(graphs, SPACES.get(self.space_) if hasattr(self, "space_") else None)
        d = {"x": torch.from_numpy(cell_tokens(arr, self.style_)),
             "adj": torch.from_numpy(arr.adj), "mask": torch.from_numpy(arr.mask)}
        if twin:
            tw = relabel(arr, np.random.default_rng(seed))
            d.update(twin_x=torch.from_numpy(cell_tokens(tw, self.style_)),
                     twin_adj=torch.from_numpy(tw.adj), twin_mask=torch.from_numpy(tw.mask))
        return d

    # -- target transform (model units <-> target units)
    def _to_model(self, y: np.ndarray) -> np.ndarray:
        if self.train_cfg_.loss == "rel_mse":
            return y / self.y_scale_
        return (y - self.y_mean_) / self.y_scale_

    def _to_target(self, p: np.ndarray) -> np.ndarray:
        if self.train_cfg_.loss == "rel_mse":
            return p * self.y_scale_
        return p * self.y_scale_ + self.y_mean_

    # -- API
    def fit(self, graphs, y, val_graphs, val_y) -> "TransformerPredictor":
        from archcast.train.loop import torch_threads

        with torch_threads(self.hparams.get("threads", 1)):
            return self._fit(graphs, y, val_graphs, val_y)

    def _fit(self, graphs, y, val_graphs, val_y) -> "TransformerPredictor":
        import torch

        from archcast.models.narformer import NARFormerNet, NetConfig
        from archcast.train.loop import train

        y = check_xy(graphs, y)
        val_y = check_xy(val_graphs, val_y, "validation")
        preset = self._preset(graphs[0].kind)
        self.space_ = space_of(list(graphs) + list(val_graphs)).name
        self.style_ = preset["style"]
        self.train_cfg_ = preset["train"]
        self.tta_ = preset["tta"]
        if self.train_cfg_.loss == "rel_mse":
            if np.any(y <= 0):
                raise InvalidInputError("relative-error loss needs positive targets")
            self.y_mean_, self.y_scale_ = 0.0, float(np.mean(y))
        else:
            self.y_mean_, self.y_scale_ = float(np.mean(y)), float(np.std(y) or 1.0)
        torch.manual_seed(self.seed)
        tr = self._featurize(graphs, twin=self.train_cfg_.lambda_cons > 0, seed=self.seed)
        tr["y"] = torch.tensor(self._to_model(y), dtype=torch.float32)
        va = self._featurize(val_graphs)
        va["y"] = torch.tensor(val_y, dtype=torch.float32)
        self.net_cfg_ = NetConfig(d_in=tr["x"].shape[-1], **preset["net"])
        self.members_ = []
        self.history_ = []
        for m in range(preset["ensemble"]):
            torch.manual_seed(self.seed * 1000 + m)
            net = NARFormerNet(self.net_cfg_)
            hist = train(net, tr, va, self.train_cfg_, seed=self.seed * 1000 + m,
                         to_target=self._to_target, progress=bool(self.hparams.get("progress", False)))
            self.members_.append(net)
            self.history_.append(hist)
        return self

    def predict_members(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        """``[members, len(graphs)]`` predictions in target units (with test-time averaging over
        the relabelled copy when the preset uses it)."""
        from archcast.train.loop import predict_batched, torch_threads

        with torch_threads(self.hparams.get("threads", 1)):
            views = [self._featurize(graphs)]
            if self.tta_:
                tw = self._featurize(graphs, twin=True, seed=12345)
                views.append({"x": tw["twin_x"], "adj": tw["twin_adj"], "mask": tw["twin_mask"]})
            return np.stack([
                np.mean([self._to_target(predict_batched(net, v)) for v in views], axis=0)
                for net in self.members_
            ])

    def _predict(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        return self.predict_members(graphs).mean(axis=0)

    # -- persistence
    def config(self) -> dict[str, Any]:
        return {
            "predictor": self.name,
            "task": self.task,
            "space": self.space_,
            "tokenizer": f"cell:{self.style_}",
            "tokenizer_version": CELL_TOKENIZER_VERSION,
            "vocabulary_fingerprint": vocabulary_fingerprint(self.space_, self.style_),
            "net": self.net_cfg_.to_dict(),
            "train": self.train_cfg_.to_dict(),
            "members": len(self.members_),
            "tta": self.tta_,
            "y_mean": self.y_mean_,
            "y_scale": self.y_scale_,
            "seed": self.seed,
        }

    def save(self, directory: str | Path) -> Path:
        from archcast.train.checkpoint import save_checkpoint

        tensors = {f"m{i}.{k}": v for i, net in enumerate(self.members_) for k, v in net.state_dict().items()}
        return save_checkpoint(directory, tensors, self.config())

    @classmethod
    def load(cls, directory: str | Path) -> "TransformerPredictor":
        """Rebuild a fitted predictor from a checkpoint; refuses other tokenizer versions."""
        import torch

        from archcast.models.narformer import NARFormerNet, NetConfig
        from archcast.train.checkpoint import load_checkpoint, read_config
        from archcast.train.loop import TrainConfig

        cfg = read_config(directory)
        name = cfg.get("predictor")
        klass = PREDICTORS.get(name) if name in PREDICTORS else None
        if klass is None or not issubclass(klass, TransformerPredictor):
            raise CheckpointError(f"checkpoint {str(directory)!r} holds predictor {name!r}, not a transformer predictor")
        style = cfg["tokenizer"].split(":", 1)[1]
        tensors, cfg = load_checkpoint(directory, expect={
            "tokenizer_version": CELL_TOKENIZER_VERSION,
            "vocabulary_fingerprint": vocabulary_fingerprint(cfg["space"], style),
        })
        self = klass(task=cfg["task"], seed=cfg["seed"])
        self.space_, self.style_, self.tta_ = cfg["space"], style, cfg["tta"]
        self.train_cfg_ = TrainConfig(**cfg["train"])
        self.net_cfg_ = NetConfig(**cfg["net"])
        self.y_mean_, self.y_scale_ = cfg["y_mean"], cfg["y_scale"]
        self.members_ = []
        for i in range(cfg["members"]):
            net = NARFormerNet(self.net_cfg_)
            sd = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"m{i}.")}
            net.load_state_dict(sd)
            net.eval()
            self.members_.append(net)
        return self


def vocabulary_fingerprint(space: str, style: str) -> str:
    import hashlib

    sp = SPACES.get(space)
    blob = json.dumps([CELL_TOKENIZER_VERSION, style, sp.name, list(sp.vocabulary), sp.max_nodes])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@PREDICTORS.register("narformer-v2")
class NARFormerV2Predictor(TransformerPredictor):
    """The faithful NAR-Former V2 configuration (design.md §2)."""

    name = "narformer-v2"


@PREDICTORS.register("archcast")
class ArchcastPredictor(TransformerPredictor):
    """archcast's default: bidirectional, live-path aware, ranking-trained small ensemble."""

    name = "archcast"
