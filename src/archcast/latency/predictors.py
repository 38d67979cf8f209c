"""Latency predictors for whole networks, in their own registry :data:`LATENCY_PREDICTORS`.

All follow :class:`archcast.predictors.base.Predictor` (``fit(graphs, y, val_graphs, val_y)`` in
milliseconds, ``predict(graphs)`` in milliseconds; epochs chosen on the validation graphs only).

==================  ==========================================================================
``archcast``        :class:`~archcast.latency.model.LatencyNet`: archcast-v1 tokens, edge-list
                    graph-aided attention, per-operator log-latency, sum readout, graph features,
                    squared-log-ratio loss, deep ensemble (default 3) for the interval.
``narformer-v2``    the reference network as published: narformer-v2 tokens, dense graph-aided
                    attention, 2 blocks x 512, sum readout + graph features, softplus output,
                    relative MSE, Adam 1e-3, 10 % warm-up + linear decay, batch 16, 50 epochs.
``nnlp``            NNLP-style: two torch-geometric ``SAGEConv`` layers over archcast-v1 tokens,
                    sum pooling, MLP head, log-MSE.
``gbdt``            LightGBM on :func:`~archcast.latency.features.graph_table` (log costs, op
                    histogram, per-op FLOPs shares), target log latency.
``flops-linear``    ``log y = a + b log FLOPs`` (least squares).
``flops-mem-linear``  ``y = a + b FLOPs + c memory`` (non-negative, fitted to relative error).
==================  ==========================================================================
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph
from archcast.latency import features as F_
from archcast.predictors.base import Predictor, check_xy
from archcast.registry import Registry

LATENCY_PREDICTORS: Registry[type["LatencyPredictor"]] = Registry("latency predictor")


def get_latency_predictor(name: str, seed: int = 0, **hparams: Any) -> "LatencyPredictor":
    return LATENCY_PREDICTORS.get(name)(seed=seed, **hparams)


class LatencyPredictor(Predictor):
    """Base: validates inputs, resolves hyper-parameters against ``DEFAULTS``."""

    DEFAULTS: ClassVar[dict[str, Any]] = {}

    def __init__(self, *, seed: int = 0, task: str = "latency", **hparams: Any) -> None:
        super().__init__(task="latency", seed=seed, **hparams)
        unknown = sorted(set(hparams) - set(self.DEFAULTS))
        if unknown:
            raise InvalidInputError(
                f"unknown hyper-parameter(s) {unknown} for latency predictor {self.name!r}; "
                f"valid: {sorted(self.DEFAULTS)}")
        self.hp = {**self.DEFAULTS, **hparams}

    def _check(self, graphs, y, val_graphs, val_y) -> tuple[np.ndarray, np.ndarray]:
        y = check_xy(graphs, y)
        val_y = check_xy(val_graphs, val_y, "validation")
        F_.check_networks(list(graphs) + list(val_graphs), "training data")
        if np.any(y <= 0) or np.any(val_y <= 0):
            raise InvalidInputError("latency targets must be positive milliseconds")
        return y, val_y

    def _prepare(self, graphs, y, val_graphs, val_y, tokenizer: str) -> tuple:
        """Validated ``(graphs, y, val_graphs, val_y, training tokens)``; validation graphs are
        tokenized too (memoised), so epochs only pack."""
        graphs, val_graphs = list(graphs), list(val_graphs)
        y, val_y = self._check(graphs, y, val_graphs, val_y)
        progress = bool(self.hp.get("progress", False))
        toks = F_.tokens(graphs, tokenizer, progress=progress)
        F_.tokens(val_graphs, tokenizer, progress=progress)
        return graphs, y, val_graphs, val_y, toks


# ------------------------------------------------------------------------------ simple baselines
@LATENCY_PREDICTORS.register("flops-linear")
class FlopsLinear(LatencyPredictor):
    name = "flops-linear"

    def fit(self, graphs, y, val_graphs, val_y):
        y, _ = self._check(graphs, y, val_graphs, val_y)
        x = np.log10(1.0 + np.array([g.flops for g in graphs], dtype=np.float64))
        a = np.stack([np.ones_like(x), x], 1)
        self.coef_ = np.linalg.lstsq(a, np.log(y), rcond=None)[0]
        return self

    def _predict(self, graphs):
        F_.check_networks(graphs)
        x = np.log10(1.0 + np.array([g.flops for g in graphs], dtype=np.float64))
        return np.exp(self.coef_[0] + self.coef_[1] * x)


@LATENCY_PREDICTORS.register("flops-mem-linear")
class FlopsMemLinear(LatencyPredictor):
    name = "flops-mem-linear"

    @staticmethod
    def _x(graphs) -> np.ndarray:
        return np.array([[1.0, g.flops / 1e9, g.memory_bytes / 1e6] for g in graphs], dtype=np.float64)

    def fit(self, graphs, y, val_graphs, val_y):
        from scipy.optimize import nnls

        y, _ = self._check(graphs, y, val_graphs, val_y)
        x = self._x(graphs)
        self.coef_ = nnls(x / y[:, None], np.ones_like(y))[0]  # minimises sum((p/y - 1)^2)
        return self

    def _predict(self, graphs):
        F_.check_networks(graphs)
        return np.maximum(self._x(graphs) @ self.coef_, 1e-6)


@LATENCY_PREDICTORS.register("gbdt")
class GBDTLatency(LatencyPredictor):
    name = "gbdt"
    DEFAULTS: ClassVar[dict[str, Any]] = {"n_estimators": 2000, "learning_rate": 0.03, "num_leaves": 31,
                                          "min_child_samples": 10, "early_stopping": 100}

    def fit(self, graphs, y, val_graphs, val_y):
        import lightgbm as lgb

        y, val_y = self._check(graphs, y, val_graphs, val_y)
        x, self.columns_ = F_.graph_table(graphs)
        xv, _ = F_.graph_table(val_graphs)
        hp = self.hp
        self.model_ = lgb.LGBMRegressor(
            n_estimators=hp["n_estimators"], learning_rate=hp["learning_rate"], num_leaves=hp["num_leaves"],
            min_child_samples=hp["min_child_samples"], subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
            random_state=self.seed, n_jobs=1, verbose=-1)
        import inspect

        # lightgbm >= 4.7 names the validation data eval_X/eval_y (eval_set is deprecated there)
        if "eval_X" in inspect.signature(self.model_.fit).parameters:
            evals: dict[str, Any] = {"eval_X": (xv,), "eval_y": (np.log(val_y),)}
        else:
            evals = {"eval_set": [(xv, np.log(val_y))]}
        self.model_.fit(x, np.log(y), callbacks=[lgb.early_stopping(hp["early_stopping"], verbose=False)], **evals)
        return self

    def _predict(self, graphs):
        x, _ = F_.graph_table(graphs)
        return np.exp(self.model_.predict(x))


# ------------------------------------------------------------------------------ torch training
def _threads(hp: dict) -> Any:
    from archcast.train.loop import torch_threads

    return torch_threads(hp.get("threads", 1))


def train_log_latency(
    net: Any,
    forward: Callable[[np.ndarray, bool], Any],
    n_train: int,
    log_y: np.ndarray,
    predict_val: Callable[[], np.ndarray],
    val_y: np.ndarray,
    batches: Callable[[np.random.Generator], list[np.ndarray]],
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    warmup: float,
    seed: int,
    loss: str = "log_mse",
    y_scale: float = 1.0,
    progress: bool = False,
) -> dict:
    """Shared loop: AdamW, warm-up + linear decay, validation MAPE after every epoch, best kept.

    ``forward(idx, train)`` returns the model output for training graphs ``idx``: log ms for
    ``loss="log_mse"`` (squared log ratio), or ms / ``y_scale`` for ``"rel_mse"`` (the
    reference's ``(p/y - 1)^2``). ``predict_val()`` returns validation predictions in ms."""
    import torch

    from archcast import metrics

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    n_steps = max(1, epochs * len(batches(np.random.default_rng(0))))
    warm = max(1, int(warmup * n_steps))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / warm if s < warm else max(0.02, (n_steps - s) / max(1, n_steps - warm)))
    ly = torch.as_tensor(log_y, dtype=torch.float32)
    yt = torch.exp(ly) / y_scale
    best = (math.inf, -1, None)
    hist = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="train", unit="epoch", leave=False)
    for epoch in range(epochs):
        net.train()
        for idx in batches(rng):
            out = forward(idx, True)
            t = torch.as_tensor(idx)
            if loss == "log_mse":
                lval = ((out - ly[t]) ** 2).mean()
            else:
                lval = ((out / yt[t] - 1.0) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            lval.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
            opt.step()
            sched.step()
        net.eval()
        score = metrics.mape(val_y, predict_val())
        hist.append(score)
        if score < best[0]:
            best = (score, epoch, copy.deepcopy(net.state_dict()))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(val_mape=f"{best[0]:.4f}")
    if bar is not None:
        bar.close()
    if best[2] is not None:
        net.load_state_dict(best[2])
    net.eval()
    return {"best_epoch": best[1], "best_val_mape": best[0], "val_mape": hist}


class _PackedTorchPredictor(LatencyPredictor):
    """Shared pieces for models that read packed archcast-v1 token batches."""

    tokenizer: ClassVar[str] = "archcast-v1"

    def _packed(self, graphs: Sequence[NetGraph], idx: np.ndarray) -> dict:
        return F_.pack([graphs[i] for i in idx], self.tokenizer).torch()

    def _batches(self, graphs: Sequence[NetGraph]) -> Callable[[np.random.Generator], list[np.ndarray]]:
        sizes = np.array([t.n_nodes for t in F_.tokens(graphs, self.tokenizer)])
        hp = self.hp
        return lambda rng: F_.size_batches(sizes, hp["max_nodes"], rng, max_graphs=hp["batch_size"], by_size=False)

    def _infer(self, net: Any, graphs: Sequence[NetGraph]) -> np.ndarray:
        """Log ms per graph."""
        import torch

        sizes = np.array([t.n_nodes for t in F_.tokens(graphs, self.tokenizer)])
        out = np.zeros(len(graphs))
        with torch.inference_mode():
            for idx in F_.size_batches(sizes, 20000, None, max_graphs=512, by_size=False):
                out[idx] = net(self._packed(graphs, idx)).double().numpy()
        return out


@LATENCY_PREDICTORS.register("archcast")
class ArchcastLatency(_PackedTorchPredictor):
    """The default (see :mod:`archcast.latency.model`). ``predict_members`` gives every ensemble
    member's prediction; :meth:`breakdown` the per-operator milliseconds."""

    name = "archcast"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        # chosen on validation models of the in-family seed-0 split (README: how the recipe was picked)
        "width": 64, "n_blocks": 2, "ffn_ratio": 2, "head_hidden": 64, "dropout": 0.0,
        "epochs": 12, "lr": 3e-3, "weight_decay": 1e-4, "warmup": 0.05, "batch_size": 32, "max_nodes": 6000,
        "ensemble": 3, "threads": 1, "progress": False,
    }

    def fit(self, graphs, y, val_graphs, val_y):
        with _threads(self.hp):
            return self._fit(graphs, y, val_graphs, val_y)

    def _new_net(self, d_in: int, g_in: int, init_log_ms: float):
        from archcast.latency.model import LatencyNet, LatencyNetConfig

        hp = self.hp
        self.net_cfg_ = LatencyNetConfig(d_in=d_in, g_in=g_in, width=hp["width"], n_blocks=hp["n_blocks"],
                                         ffn_ratio=hp["ffn_ratio"], head_hidden=hp["head_hidden"],
                                         dropout=hp["dropout"], init_log_ms=init_log_ms)
        return LatencyNet(self.net_cfg_)

    def _fit(self, graphs, y, val_graphs, val_y, init_members: list | None = None):
        import torch

        graphs, y, val_graphs, val_y, toks = self._prepare(graphs, y, val_graphs, val_y, self.tokenizer)
        sizes = np.array([t.n_nodes for t in toks])
        init = float(np.median(np.log(y) - np.log(sizes)))
        batches = self._batches(graphs)
        self.members_, self.history_ = [], []
        n_members = len(init_members) if init_members else int(self.hp["ensemble"])
        for m in range(n_members):
            torch.manual_seed(self.seed * 1000 + m)
            net = self._new_net(toks[0].tokens.shape[1], toks[0].graph_features.shape[0], init)
            if init_members:
                net.load_state_dict(init_members[m].state_dict())
            hist = train_log_latency(
                net, lambda idx, _tr, net=net: net(self._packed(graphs, idx)), len(graphs), np.log(y),
                lambda net=net: np.exp(self._infer(net, val_graphs)), val_y, batches,
                epochs=int(self.hp["epochs"]), lr=float(self.hp["lr"]), weight_decay=float(self.hp["weight_decay"]),
                warmup=float(self.hp["warmup"]), seed=self.seed * 1000 + m, progress=bool(self.hp["progress"]))
            self.members_.append(net)
            self.history_.append(hist)
        return self

    def predict_members(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        """``[members, len(graphs)]`` milliseconds."""
        with _threads(self.hp):
            graphs = list(graphs)
            return np.stack([np.exp(self._infer(net, graphs)) for net in self.members_])

    def _predict(self, graphs):
        return self.predict_members(graphs).mean(axis=0)

    def breakdown(self, graph: NetGraph) -> tuple[list[int], np.ndarray]:
        """``(node indices in token order, per-operator ms [members, n_nodes])``; each member's
        row sums to that member's prediction."""
        import torch

        with _threads(self.hp), torch.inference_mode():
            b = self._packed([graph], np.array([0]))
            rows = [torch.exp(net.node_log_ms(b)[0]).double().numpy() for net in self.members_]
        return graph.topological_order(), np.stack(rows)

    # -- persistence
    def config(self) -> dict[str, Any]:
        from archcast.tokenizer.network import get_tokenizer

        tok = get_tokenizer(self.tokenizer)
        return {
            "predictor": self.name, "task": "latency", "seed": self.seed,
            "tokenizer": self.tokenizer, "tokenizer_version": tok.version,
            "tokenizer_fingerprint": tok.fingerprint(),
            "net": self.net_cfg_.to_dict(), "hparams": self.hp, "members": len(self.members_),
            "history": [{"best_epoch": h["best_epoch"], "best_val_mape": h["best_val_mape"]}
                        for h in getattr(self, "history_", [])],
        }

    def save(self, directory: Any, extra: dict[str, Any] | None = None,
             extra_tensors: dict[str, Any] | None = None) -> Any:
        """Weights (safetensors) + config.json; ``extra`` (platform, interval calibration, ...) is
        stored in the config, ``extra_tensors`` (names starting with ``x.``, e.g. reference
        embeddings) beside the weights."""
        from archcast.train.checkpoint import save_checkpoint

        tensors = {f"m{i}.{k}": v for i, net in enumerate(self.members_) for k, v in net.state_dict().items()}
        for k, v in (extra_tensors or {}).items():
            if not k.startswith("x."):
                raise InvalidInputError(f"extra tensor names must start with 'x.'; got {k!r}")
            tensors[k] = v
        return save_checkpoint(directory, tensors, {**self.config(), **(extra or {})})

    @classmethod
    def load(cls, directory: Any) -> "ArchcastLatency":
        """Rebuild from :meth:`save`; refuses a checkpoint written with another tokenizer version
        or vocabulary (names both). The config is kept as ``checkpoint_config_``."""
        from archcast.errors import CheckpointError
        from archcast.latency.model import LatencyNet, LatencyNetConfig
        from archcast.tokenizer.network import get_tokenizer
        from archcast.train.checkpoint import load_checkpoint, read_config

        cfg = read_config(directory)
        if cfg.get("predictor") != cls.name or cfg.get("task") != "latency":
            raise CheckpointError(
                f"checkpoint {str(directory)!r} holds {cfg.get('task')!r} predictor {cfg.get('predictor')!r}, "
                f"not the {cls.name!r} latency predictor")
        tok = get_tokenizer(cfg.get("tokenizer", cls.tokenizer))
        tensors, cfg = load_checkpoint(directory, expect={"tokenizer_version": tok.version,
                                                          "tokenizer_fingerprint": tok.fingerprint()})
        hp = {k: v for k, v in cfg["hparams"].items() if k in cls.DEFAULTS}
        self = cls(seed=int(cfg.get("seed", 0)), **hp)
        self.net_cfg_ = LatencyNetConfig(**cfg["net"])
        self.members_ = []
        for i in range(int(cfg["members"])):
            net = LatencyNet(self.net_cfg_)
            net.load_state_dict({k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"m{i}.")})
            net.eval()
            self.members_.append(net)
        self.checkpoint_config_ = cfg
        self.extra_tensors_ = {k: v for k, v in tensors.items() if k.startswith("x.")}
        return self

    def embeddings(self, graphs: Sequence[NetGraph]) -> np.ndarray:
        """``[len(graphs), 2*width]`` graph vectors of the first member (for diversity/distance)."""
        import torch

        graphs = list(graphs)
        sizes = np.array([t.n_nodes for t in F_.tokens(graphs, self.tokenizer)])
        out = np.zeros((len(graphs), 2 * self.net_cfg_.width), dtype=np.float32)
        with _threads(self.hp), torch.inference_mode():
            for idx in F_.size_batches(sizes, 20000, None, max_graphs=512, by_size=False):
                out[idx] = self.members_[0].embedding(self._packed(graphs, idx)).numpy()
        return out


@LATENCY_PREDICTORS.register("nnlp")
class NNLPLatency(_PackedTorchPredictor):
    """Two GraphSAGE layers (torch-geometric) over archcast-v1 tokens, sum pooling, log-MSE."""

    name = "nnlp"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "hidden": 128, "epochs": 12, "lr": 3e-3, "weight_decay": 1e-4, "warmup": 0.05, "batch_size": 32,
        "max_nodes": 6000, "threads": 1, "progress": False,
    }

    def _build(self, d_in: int, init: float):
        import torch
        from torch import nn
        from torch_geometric.nn import SAGEConv, global_add_pool

        hidden = int(self.hp["hidden"])

        class _Net(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.c1, self.c2 = SAGEConv(d_in, hidden), SAGEConv(hidden, hidden)
                self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
                with torch.no_grad():
                    self.head[-1].bias.fill_(init)

            def forward(self, b: dict) -> torch.Tensor:
                ei = torch.cat([torch.stack([b["src"], b["dst"]]), torch.stack([b["dst"], b["src"]])], 1)
                h = torch.relu(self.c1(b["x"], ei))
                h = torch.relu(self.c2(h, ei))
                pooled = global_add_pool(h, b["graph_index"], size=b["n_graphs"])
                return self.head(torch.log1p(pooled.clamp_min(0))).squeeze(-1)

        return _Net()

    def fit(self, graphs, y, val_graphs, val_y):
        with _threads(self.hp):
            graphs, y, val_graphs, val_y, toks = self._prepare(graphs, y, val_graphs, val_y, self.tokenizer)
            import torch

            torch.manual_seed(self.seed)
            self.net_ = self._build(toks[0].tokens.shape[1], float(np.mean(np.log(y))))
            self.history_ = train_log_latency(
                self.net_, lambda idx, _tr: self.net_(self._packed(graphs, idx)), len(graphs), np.log(y),
                lambda: np.exp(self._infer(self.net_, val_graphs)), val_y, self._batches(graphs),
                epochs=int(self.hp["epochs"]), lr=float(self.hp["lr"]), weight_decay=float(self.hp["weight_decay"]),
                warmup=float(self.hp["warmup"]), seed=self.seed, progress=bool(self.hp["progress"]))
        return self

    def _predict(self, graphs):
        with _threads(self.hp):
            return np.exp(self._infer(self.net_, list(graphs)))


@LATENCY_PREDICTORS.register("narformer-v2")
class NARFormerV2Latency(LatencyPredictor):
    """The reference latency model (design.md §2), dense padded batches of similar size."""

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

    def fit(self, graphs, y, val_graphs, val_y):
        import torch

        from archcast.models.narformer import NARFormerNet, NetConfig

        with _threads(self.hp):
            graphs, y, val_graphs, val_y, toks = self._prepare(graphs, y, val_graphs, val_y, self.tokenizer)
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
                self.net_, lambda idx, _tr: self.net_(*self._dense(graphs, idx)), len(graphs), np.log(y),
                lambda: self._infer(val_graphs), val_y, batches, epochs=int(hp["epochs"]), lr=float(hp["lr"]),
                weight_decay=0.0, warmup=float(hp["warmup"]), seed=self.seed, loss="rel_mse",
                y_scale=self.y_scale_, progress=bool(hp["progress"]))
        return self

    def _predict(self, graphs):
        with _threads(self.hp):
            return self._infer(list(graphs))
