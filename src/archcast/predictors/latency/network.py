"""What every whole-network latency predictor shares: input checks (positive milliseconds, network
graphs), the log-space training adapter on :func:`archcast.train.loop.fit_loop`, and packed
archcast-v1 token batches for the torch models."""

from __future__ import annotations

from typing import Any, Callable, ClassVar, Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph
from archcast.predictors.base import Predictor
from archcast.tokenizer import batching as F_


def threads(hp: dict) -> Any:
    """torch intra-op threads while fitting/predicting (``threads`` knob, default 1)."""
    from archcast._torch import torch_threads

    return torch_threads(hp.get("threads", 1))


class LatencyPredictor(Predictor):
    """Base: validates inputs, resolves hyper-parameters against ``DEFAULTS``."""

    task: ClassVar[str] = "latency"
    DEFAULTS: ClassVar[dict[str, Any]] = {}

    @property
    def hp(self) -> dict[str, Any]:
        """The validated hyper-parameters of a fitted predictor (the defaults merged with the given)."""
        return getattr(self, "hparams_", None) or {**self.DEFAULTS, **self.hparams}

    def fit(self, graphs, y, val_graphs, val_y, *, init_from=None) -> "LatencyPredictor":
        """As :meth:`Predictor.fit`; targets are positive milliseconds, graphs whole networks."""
        F_.check_networks(list(graphs) + list(val_graphs), "training data")
        y, val_y = np.asarray(y, dtype=np.float64).reshape(-1), np.asarray(val_y, dtype=np.float64).reshape(-1)
        if np.any(y <= 0) or np.any(val_y <= 0):
            raise InvalidInputError("latency targets must be positive milliseconds")
        return super().fit(graphs, y, val_graphs, val_y, init_from=init_from)

    def _tokens(self, graphs, val_graphs, tokenizer: str) -> list:
        """Training tokens; validation graphs are tokenized too (memoised), so epochs only pack."""
        progress = bool(self.hp.get("progress", False))
        toks = F_.tokens(graphs, tokenizer, progress=progress)
        F_.tokens(val_graphs, tokenizer, progress=progress)
        return toks

def train_log_latency(
    net: Any,
    forward: Callable[[np.ndarray], Any],
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
    """The latency recipe on :func:`~archcast.train.loop.fit_loop`: AdamW, warm-up + linear decay to
    2 % of ``lr``, gradient norm clipped at 5, validation MAPE after every epoch, best epoch kept.

    ``forward(idx)`` returns the model output for training graphs ``idx``: log ms for
    ``loss="log_mse"`` (squared log ratio), or ms / ``y_scale`` for ``"rel_mse"`` (the
    reference's ``(p/y - 1)^2``). ``predict_val()`` returns validation predictions in ms.
    Returns ``best_epoch``, ``best_val_mape``, ``val_mape`` (per epoch) and ``steps``."""
    import torch

    from archcast import metrics
    from archcast.train.loop import LoopConfig, fit_loop

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    ly = torch.as_tensor(log_y, dtype=torch.float32)
    yt = torch.exp(ly) / y_scale

    def loss_of(idx: np.ndarray) -> Any:
        out, t = forward(idx), torch.as_tensor(idx)
        if loss == "log_mse":
            return ((out - ly[t]) ** 2).mean()
        return ((out / yt[t] - 1.0) ** 2).mean()

    cfg = LoopConfig(epochs=epochs, lr=lr, weight_decay=weight_decay, optimizer="adamw", warmup=warmup,
                     lr_floor=0.02, clip_grad_norm=5.0, steps_per_epoch=len(batches(np.random.default_rng(0))))
    hist = fit_loop(net, lambda _e: batches(rng), loss_of, lambda: -metrics.mape(val_y, predict_val()), cfg,
                    progress=progress)
    return {"best_epoch": hist.best_epoch, "best_val_mape": -hist.best_score,
            "val_mape": [-s for _, s in hist.scores], "steps": hist.steps}
class PackedTorchPredictor(LatencyPredictor):
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
