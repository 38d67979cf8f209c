"""archcast: predict a neural network's latency and accuracy from its graph alone.

Importing archcast is cheap: torch, onnx and the data sets load only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from archcast.service.predict import LatencyPrediction

from archcast._version import __version__


def predict(model: Any, example_input: Any = None, **kwargs: Any) -> "LatencyPrediction":
    """Predict a model's latency (ms) with interval and per-operator breakdown.

    ``model``: an ``.onnx`` path, ONNX bytes, a NetGraph, or a ``torch.nn.Module`` with
    ``example_input``. Keywords: ``platform``, ``input_shapes``, ``predictor``, ``db``; see
    :func:`archcast.service.predict.predict` (imported on first call, not with archcast).
    """
    from archcast.service.predict import predict as _predict

    return _predict(model, example_input, **kwargs)


__all__ = ["__version__", "predict"]
