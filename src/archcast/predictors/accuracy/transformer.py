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

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from archcast.errors import CheckpointError, InvalidInputError
from archcast.graph import NetGraph
from archcast.graph.spaces import SPACES
from archcast.predictors.base import Predictor, check_hparams, register_predictor
from archcast.tokenizer.cell import cell_arrays, space_of
from archcast.tokenizer.cell_features import (
    CELL_TOKENIZER_VERSION,
    cell_tokens,
    relabel,
    vocabulary_fingerprint,
)

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


# --------------------------------------------------------------------------- predictor
LOSSES = ("rel_mse", "mse")
RANK_LOSSES = ("sr", "logistic")
SELECT = ("kendall_tau", "mape")


@dataclass
class TrainConfig:
    """The cell transformers' optimisation recipe (saved in checkpoints as ``train``).

    Attributes:
        epochs: passes over the training set.
        batch_size: graphs per step.
        lr: peak Adam learning rate (linear warm-up over ``warmup`` of the steps, then linear decay).
        weight_decay: AdamW decoupled weight decay (0 = plain Adam, as the reference).
        loss: ``rel_mse`` (``(p/y-1)^2``, reference) or ``mse`` (on standardised targets).
        lambda_rank, rank_loss: weight and kind of the ranking term (``sr``: reference pairwise L1;
            ``logistic``: all-pairs logistic).
        lambda_cons: weight of the consistency L1 between a cell and its relabelled copy.
        eval_every: validate every this many epochs (and after the last).
        select: validation metric that picks the kept weights.
    """

    epochs: int = 200
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup: float = 0.1
    loss: str = "rel_mse"
    lambda_rank: float = 0.0
    rank_loss: str = "sr"
    lambda_cons: float = 0.0
    eval_every: int = 1
    select: str = "kendall_tau"

    def __post_init__(self) -> None:
        for name, val, allowed in (("loss", self.loss, LOSSES), ("rank_loss", self.rank_loss, RANK_LOSSES),
                                   ("select", self.select, SELECT)):
            if val not in allowed:
                raise InvalidInputError(f"{name}={val!r} is not one of {allowed}")
        for name in ("epochs", "batch_size", "eval_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InvalidInputError(f"{name}={v!r} must be an integer >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


def _forward(net: Any, d: dict[str, Any], idx: Any, prefix: str = "") -> Any:
    return net(d[prefix + "x"][idx], d[prefix + "adj"][idx], d[prefix + "mask"][idx], None)


def predict_batched(net: Any, d: dict[str, Any], batch_size: int = 1024) -> np.ndarray:
    """Model outputs for every sample of ``d`` (eval mode), as float64 numpy."""
    import torch

    was = net.training
    net.eval()
    with torch.inference_mode():
        out = [_forward(net, d, slice(i, i + batch_size)) for i in range(0, d["x"].shape[0], batch_size)]
    net.train(was)
    return torch.cat(out).double().numpy()


def train_cells(net: Any, tr: dict[str, Any], va: dict[str, Any], cfg: TrainConfig, *, seed: int,
                to_target: Any, progress: bool = False) -> dict[str, Any]:
    """Train ``net`` on padded cell batches with :func:`archcast.train.loop.fit_loop`: the base loss,
    the ranking and consistency terms; keep the epoch with the best validation score."""
    import torch

    from archcast import metrics
    from archcast.train import losses
    from archcast.train.loop import LoopConfig, fit_loop

    gen = torch.Generator().manual_seed(seed)
    n = tr["x"].shape[0]
    steps = max(1, math.ceil(n / cfg.batch_size))
    base = losses.relative_mse if cfg.loss == "rel_mse" else (lambda p, t: ((p - t) ** 2).mean())
    has_twin = "twin_x" in tr and cfg.lambda_cons > 0
    y_val = va["y"].double().numpy()

    def batches(_epoch: int):
        perm = torch.randperm(n, generator=gen)
        for s in range(steps):
            idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
            if idx.numel() >= 2:
                yield idx

    def loss(idx):
        y, p = tr["y"][idx], _forward(net, tr, idx)
        value = base(p, y)
        if cfg.lambda_rank:
            rank = losses.pairwise_rank_l1(p, y, gen) if cfg.rank_loss == "sr" else losses.pairwise_logistic(p, y)
            value = value + cfg.lambda_rank * rank
        if has_twin:
            value = value + cfg.lambda_cons * losses.consistency_l1(p, _forward(net, tr, idx, "twin_"))
        return value

    def evaluate() -> float:
        p = to_target(predict_batched(net, va))
        return metrics.kendall_tau(y_val, p) if cfg.select == "kendall_tau" else -metrics.mape(y_val, p)

    loop = LoopConfig(epochs=cfg.epochs, lr=cfg.lr, weight_decay=cfg.weight_decay,
                      optimizer="adamw" if cfg.weight_decay else "adam", warmup=cfg.warmup,
                      eval_every=cfg.eval_every, steps_per_epoch=steps)
    return fit_loop(net, batches, loss, evaluate, loop, progress=progress).to_dict()


class TransformerPredictor(Predictor):
    """Shared implementation; subclasses fix ``name`` (the preset).

    Hyper-parameters: ``epochs``, ``batch_size``, ``lr``, ... override the preset's TrainConfig;
    ``width``, ``n_blocks``, ... override its NetConfig; ``ensemble``, ``tta``, ``threads`` and
    ``progress`` too.
    """

    name: ClassVar[str] = ""
    OTHER_KNOBS: ClassVar[dict[str, Any]] = {"ensemble": 1, "tta": False, "threads": 1, "progress": False}

    # -- config
    def _preset(self, kind: str) -> dict[str, Any]:
        from archcast.models.narformer import NetConfig

        try:
            p = PRESETS[self.name][kind]
        except KeyError:
            raise InvalidInputError(f"predictor {self.name!r} has no preset for {kind!r} graphs") from None
        net_keys = set(NetConfig.__dataclass_fields__) - {"d_in"}
        train_keys = set(TrainConfig.__dataclass_fields__)
        defaults = {**{k: None for k in net_keys}, **p["net"], **TrainConfig().to_dict(),
                    **p["train"], **self.OTHER_KNOBS, "ensemble": p["ensemble"], "tta": p["tta"]}
        hp = check_hparams(self.name, {k: v for k, v in defaults.items() if v is not None},
                           {k: v for k, v in self.hparams.items() if k not in defaults or defaults[k] is not None},
                           {"loss": LOSSES, "rank_loss": RANK_LOSSES, "select": SELECT})
        hp.update({k: v for k, v in self.hparams.items() if k in defaults and defaults[k] is None})
        net = {**p["net"], **{k: v for k, v in self.hparams.items() if k in net_keys}}
        tr = TrainConfig(**{**p["train"], **{k: v for k, v in self.hparams.items() if k in train_keys}})
        return {"style": p["style"], "net": net, "train": tr, "ensemble": int(hp["ensemble"]),
                "tta": bool(hp["tta"]), "threads": hp["threads"], "progress": bool(hp["progress"])}

    def _resolve_hparams(self) -> dict[str, Any]:
        return dict(self.hparams)  # checked per graph kind in _preset (the preset holds the defaults)

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
    def _fit(self, graphs, y, val_graphs, val_y, init_from) -> None:
        import torch

        from archcast._torch import torch_threads
        from archcast.models.narformer import NARFormerNet, NetConfig

        preset = self._preset(graphs[0].kind)
        with torch_threads(preset["threads"]):
            self.space_ = space_of(list(graphs) + list(val_graphs)).name
            self.style_ = preset["style"]
            self.train_cfg_ = preset["train"]
            self.tta_ = preset["tta"]
            self.threads_ = preset["threads"]
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
            members, history = [], []
            for m in range(preset["ensemble"]):
                torch.manual_seed(self.seed * 1000 + m)
                net = NARFormerNet(self.net_cfg_)
                if init_from is not None:
                    net.load_state_dict(init_from.members_[m % len(init_from.members_)].state_dict())
                history.append(train_cells(net, tr, va, self.train_cfg_, seed=self.seed * 1000 + m,
                                           to_target=self._to_target, progress=preset["progress"]))
                members.append(net)
            self.members_, self.history_ = members, history

    def predict_members(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        """``[members, len(graphs)]`` predictions in target units (with test-time averaging over
        the relabelled copy when the preset uses it)."""
        from archcast._torch import torch_threads
        from archcast.errors import NotFittedError

        if not self.is_fitted():
            raise NotFittedError(f"predictor {self.name!r} is not fitted: call fit() or load a checkpoint first")
        with torch_threads(getattr(self, "threads_", 1)):
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

        from archcast.models.narformer import NARFormerNet, NetConfig
        from archcast.train.checkpoint import load_checkpoint, read_config

        cfg = read_config(directory)
        name = cfg.get("predictor")
        klass = {"narformer-v2": NARFormerV2Predictor, "archcast": ArchcastPredictor}.get(name)
        if klass is None or cfg.get("task", "accuracy") != "accuracy":
            raise CheckpointError(f"checkpoint {str(directory)!r} holds predictor {name!r}, not a transformer predictor")
        _check_cell_config(cfg, f"checkpoint {str(directory)!r}")
        style = cfg["tokenizer"].split(":", 1)[1]
        tensors, cfg = load_checkpoint(directory, expect={
            "tokenizer_version": CELL_TOKENIZER_VERSION,
            "vocabulary_fingerprint": vocabulary_fingerprint(cfg["space"], style),
        })
        self = klass(seed=cfg["seed"])
        self.space_, self.style_, self.tta_ = cfg["space"], style, cfg["tta"]
        try:
            self.train_cfg_ = TrainConfig(**cfg["train"])
            self.net_cfg_ = NetConfig(**cfg["net"])
        except (InvalidInputError, TypeError) as e:
            raise CheckpointError(f"checkpoint {str(directory)!r}: {e}") from None
        self.y_mean_, self.y_scale_ = cfg["y_mean"], cfg["y_scale"]
        self.members_ = []
        for i in range(cfg["members"]):
            net = NARFormerNet(self.net_cfg_)
            sd = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"m{i}.")}
            try:
                net.load_state_dict(sd)
            except RuntimeError as e:
                first = (str(e).strip().splitlines() or [""])[0]
                raise CheckpointError(f"checkpoint {str(directory)!r}: member {i} weights do not fit: {first}") from None
            net.eval()
            self.members_.append(net)
        return self


@register_predictor("accuracy", "narformer-v2")
class NARFormerV2Predictor(TransformerPredictor):
    """The faithful NAR-Former V2 configuration (docs/design.md §2)."""

    name = "narformer-v2"


@register_predictor("accuracy", "archcast")
class ArchcastPredictor(TransformerPredictor):
    """archcast's default: bidirectional, live-path aware, ranking-trained small ensemble."""

    name = "archcast"


_CELL_NET_BOUNDS = {"d_in": (1, 4096), "width": (1, 2048), "n_blocks": (1, 32), "ffn_ratio": (1, 16),
                    "ffn_groups": (1, 64), "graph_features": (0, 4096), "fc_hidden": (1, 4096), "dropout": (0.0, 1.0),
                    "layer_scale_init": (0.0, 10.0)}


def _check_cell_config(cfg: dict, where: str) -> None:
    """Refuse a tampered cell checkpoint config with one line naming the bad key and value."""
    from archcast.models.narformer import NetConfig
    from archcast.train.checkpoint import check_section, dataclass_schema

    check_section(cfg, {"space": (str, None, None), "tokenizer": (str, None, None), "net": (dict, None, None),
                        "train": (dict, None, None), "members": (int, 1, 64), "tta": (bool, None, None),
                        "y_mean": ((int, float), None, None), "y_scale": ((int, float), 1e-12, None),
                        "seed": (int, None, None)}, where, allow_extra=True)
    if ":" not in cfg["tokenizer"] or cfg["space"] not in SPACES:
        raise CheckpointError(f"{where}: tokenizer {cfg['tokenizer']!r} / space {cfg['space']!r} is not a cell "
                              f"tokenizer of a known space ({', '.join(SPACES.names())})")
    check_section(cfg["net"], dataclass_schema(NetConfig, _CELL_NET_BOUNDS), f"{where} net", required=False)
