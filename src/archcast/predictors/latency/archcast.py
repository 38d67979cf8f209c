"""``archcast``: the default latency predictor (:class:`~archcast.models.latency_net.LatencyNet`).

archcast-v1 tokens, edge-list graph-aided attention, per-operator log-latency, sum readout, graph
features, squared-log-ratio loss, deep ensemble (default 3) for the interval; fine-tunes from a
fitted predictor with ``fit(..., init_from=base)``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Sequence

import numpy as np

from archcast.errors import CheckpointError, InvalidInputError
from archcast.graph import NetGraph
from archcast.predictors.base import register_predictor
from archcast.predictors.latency.network import (
    PackedTorchPredictor,
    threads,
    train_log_latency,
)
from archcast.tokenizer import batching as F_


@register_predictor("latency", "archcast")
class ArchcastLatency(PackedTorchPredictor):
    """The default (see :mod:`archcast.models.latency_net`). ``predict_members`` gives every ensemble
    member's prediction; :meth:`breakdown` the per-operator milliseconds."""

    name = "archcast"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        # chosen on validation models of the in-family seed-0 split (README: how the recipe was picked)
        "width": 64, "n_blocks": 2, "ffn_ratio": 2, "head_hidden": 64, "dropout": 0.0,
        "epochs": 12, "lr": 3e-3, "weight_decay": 1e-4, "warmup": 0.05, "batch_size": 32, "max_nodes": 6000,
        "ensemble": 3, "threads": 1, "progress": False,
    }

    SUPPORTS_INIT = True

    def _fit(self, graphs, y, val_graphs, val_y, init_from):
        """``init_from``: every member starts from that predictor's member, its output bias shifted
        by the median of ``log(y / member prediction)`` on the training graphs (a uniformly 2x slower
        platform is matched before any step); the shifted start is kept as ``start_members_``."""
        with threads(self.hp):
            start = None
            if init_from is not None:
                start = self._shifted_members(init_from, graphs, y)
                self.start_members_ = start
            self._train(graphs, y, val_graphs, val_y, start)

    @staticmethod
    def _shifted_members(base: "ArchcastLatency", graphs, y) -> list:
        import copy

        import torch

        start = []
        for m, pred_ms in enumerate(base.predict_members(graphs)):
            shift = float(np.median(np.log(y) - np.log(pred_ms)))
            member = copy.deepcopy(base.members_[m])
            with torch.no_grad():
                member.head[-1].bias.add_(shift)  # log total = logsumexp(per-op log ms): shifts every graph
            start.append(member.eval())
        return start

    def _new_net(self, d_in: int, g_in: int, init_log_ms: float):
        from archcast.models.latency_net import LatencyNet, LatencyNetConfig

        hp = self.hp
        self.net_cfg_ = LatencyNetConfig(d_in=d_in, g_in=g_in, width=hp["width"], n_blocks=hp["n_blocks"],
                                         ffn_ratio=hp["ffn_ratio"], head_hidden=hp["head_hidden"],
                                         dropout=hp["dropout"], init_log_ms=init_log_ms)
        return LatencyNet(self.net_cfg_)

    def _train(self, graphs, y, val_graphs, val_y, init_members: list | None = None) -> None:
        import torch

        toks = self._tokens(graphs, val_graphs, self.tokenizer)
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
                net, lambda idx, net=net: net(self._packed(graphs, idx)), np.log(y),
                lambda net=net: np.exp(self._infer(net, val_graphs)), val_y, batches,
                epochs=int(self.hp["epochs"]), lr=float(self.hp["lr"]), weight_decay=float(self.hp["weight_decay"]),
                warmup=float(self.hp["warmup"]), seed=self.seed * 1000 + m, progress=bool(self.hp["progress"]))
            self.members_.append(net)
            self.history_.append(hist)

    def predict_members(self, graphs: Sequence[NetGraph], members: Sequence[Any] | None = None) -> np.ndarray:
        """``[members, len(graphs)]`` milliseconds (of ``members``, default the fitted ensemble)."""
        from archcast.errors import NotFittedError

        if members is None and not getattr(self, "members_", None):
            raise NotFittedError(f"predictor {self.name!r} is not fitted: call fit() or load a checkpoint first")
        with threads(self.hp):
            graphs = list(graphs)
            return np.stack([np.exp(self._infer(net, graphs)) for net in (self.members_ if members is None else members)])

    def _predict(self, graphs):
        return self.predict_members(graphs).mean(axis=0)

    def breakdown(self, graph: NetGraph) -> tuple[list[int], np.ndarray]:
        """``(node indices in token order, per-operator ms [members, n_nodes])``; each member's
        row sums to that member's prediction."""
        import torch

        with threads(self.hp), torch.inference_mode():
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
        from archcast.models.latency_net import LatencyNet, LatencyNetConfig
        from archcast.tokenizer.network import get_tokenizer
        from archcast.train.checkpoint import load_checkpoint, read_config

        cfg = read_config(directory)
        if cfg.get("predictor") != cls.name or cfg.get("task") != "latency":
            raise CheckpointError(
                f"checkpoint {str(directory)!r} holds {cfg.get('task')!r} predictor {cfg.get('predictor')!r}, "
                f"not the {cls.name!r} latency predictor")
        check_latency_config(cfg, f"checkpoint {str(directory)!r}")
        tok = get_tokenizer(cfg["tokenizer"])
        tensors, cfg = load_checkpoint(directory, expect={"tokenizer_version": tok.version,
                                                          "tokenizer_fingerprint": tok.fingerprint()})
        hp = {k: v for k, v in cfg["hparams"].items() if k in cls.DEFAULTS}
        self = cls(seed=int(cfg.get("seed", 0)), **hp)
        self.hparams_ = {**cls.DEFAULTS, **hp}
        self.net_cfg_ = LatencyNetConfig(**cfg["net"])
        self.members_ = []
        for i in range(int(cfg["members"])):
            net = LatencyNet(self.net_cfg_)
            state = {k.split(".", 1)[1]: v for k, v in tensors.items() if k.startswith(f"m{i}.")}
            try:
                net.load_state_dict(state)
            except RuntimeError as e:
                first = (str(e).strip().splitlines() or [""])[0]
                raise CheckpointError(f"checkpoint {str(directory)!r}: member {i} weights do not fit its "
                                      f"config: {first}") from None
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
        with threads(self.hp), torch.inference_mode():
            for idx in F_.size_batches(sizes, 20000, None, max_graphs=512, by_size=False):
                out[idx] = self.members_[0].embedding(self._packed(graphs, idx)).numpy()
        return out


# LatencyNetConfig's fields with their bounds (int bounds: an int field), as data, checked without
# importing torch: anything else is refused before a tensor is built
_NET_BOUNDS = {"d_in": (1, 4096), "g_in": (0, 4096), "width": (1, 2048), "n_blocks": (1, 32), "ffn_ratio": (1, 16),
               "head_hidden": (1, 4096), "dropout": (0.0, 1.0), "init_log_ms": (-50.0, 50.0)}


def check_latency_config(cfg: dict, where: str) -> None:
    """Refuse a tampered latency checkpoint config with one line naming the bad key and value."""
    from archcast.train.checkpoint import check_section

    check_section(cfg, {"tokenizer": (str, None, None), "members": (int, 1, 64), "hparams": (dict, None, None),
                        "net": (dict, None, None), "seed": (int, None, None)}, where, allow_extra=True)
    check_section(cfg["net"], {k: ((int,) if isinstance(lo, int) else (int, float), lo, hi)
                               for k, (lo, hi) in _NET_BOUNDS.items()}, f"{where} net")
    hp = check_section(cfg["hparams"], {}, f"{where} hparams", allow_extra=True)
    from archcast.predictors.base import check_hparams

    try:
        check_hparams(ArchcastLatency.name, ArchcastLatency.DEFAULTS,
                      {k: v for k, v in hp.items() if k in ArchcastLatency.DEFAULTS})
    except InvalidInputError as e:
        raise CheckpointError(f"{where} hparams: {e}") from None
    optional = {"interval": {"level": ((int, float), 1e-6, 1 - 1e-6), "k": ((int, float), 0.0, 100.0),
                             "floor": ((int, float), 0.0, 10.0), "source": (str, None, None)},
                "ood": {"threshold": ((int, float, type(None)), 0.0, None), "reference_size": (int, 0, None),
                        "rule": (str, None, None)}}
    for key, schema in optional.items():
        if cfg.get(key) is not None:
            check_section(cfg[key], schema, f"{where} {key}", required=False, allow_extra=True)
    if cfg.get("platform") is not None:
        check_section(cfg["platform"], {"name": (str, None, None)}, f"{where} platform", required=False,
                      allow_extra=True)
    ops = cfg.get("train_ops")
    if ops is not None and not (isinstance(ops, list) and all(isinstance(o, str) for o in ops)):
        raise CheckpointError(f"{where}: train_ops must be a list of op-type names")
