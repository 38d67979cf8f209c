"""One network's latency on one platform: the number, its interval, where the time goes.

:func:`predict` (also ``archcast.predict``) reads a model (an ``.onnx`` path, ONNX bytes, a
:class:`~archcast.graph.NetGraph`, or a ``torch.nn.Module`` with an example input), loads the
platform's :class:`~archcast.predictors.latency.ArchcastLatency` checkpoint and returns a
:class:`LatencyPrediction`: the ensemble mean, an interval, per-operator milliseconds that sum to
the total, warnings when the graph is unlike the training data, and, when a measurement store
holds a current measurement of this very graph (fingerprint) on the predictor's platform and
batch size, the measured number beside the prediction (query-or-predict).

What the checkpoint's ``config.json`` supplies (a missing key falls back as noted):

``platform``    Platform fields (``name``, ``platform_id``, ...). Missing: the requested
                platform name, no store lookup.
``interval``    ``{"level", "k", "floor"}``: ``point * exp(±h)``, ``h = sqrt((k*sigma)**2 +
                floor**2)``, ``sigma`` the standard deviation (ddof 0) over ensemble members of
                ``log(member ms)`` (:func:`interval_half_width`). Missing: level 0.9, k 1.645,
                floor 0.
``ood``         ``{"threshold"}`` with the tensor ``x.reference`` ``[K, D]`` (training-graph
                embeddings): the graph's nearest-reference Euclidean distance above the threshold
                is a warning. Missing: no check.
``train_ops``   op types seen in training; others are a warning. Missing: no check.

Nothing here imports torch, onnx or SQLAlchemy at import time.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from archcast.errors import (
    CheckpointError,
    InvalidInputError,
    NotFittedError,
)
from archcast.graph.ir import NetGraph
from archcast.service import checkpoints as P
from archcast.service.prediction import (  # noqa: F401  (re-exported: the public names live here too)
    DEFAULT_FLOOR,
    DEFAULT_K,
    DEFAULT_LEVEL,
    DEFAULT_STORE,
    LatencyPrediction,
    _default_store_location,
    _interval_config,
    _store_lookup,
    _platform_of,
    cached_load,
    interval_half_width,
)

# ------------------------------------------------------------------------------ predictors


def load_predictor(platform: str | None = None, path: str | Path | None = None):
    """The latency predictor of ``platform`` (default ort-cpu-1t) or of the checkpoint ``path``.

    Loaded checkpoints are kept (a few, keyed by directory and config.json mtime), so repeated
    :func:`predict` calls do not reload the weights.

    Raises:
        InvalidInputError: no predictor for that platform (lists the platforms that have one).
        CheckpointError: the checkpoint is unreadable or was made for another tokenizer/version.
    """
    from archcast.predictors.latency.runtime import LatencyRuntime

    # NumPy inference: predicting never imports torch
    return cached_load(P.resolve_predictor_dir(platform, path).resolve(), LatencyRuntime.load)


def _resolve(predictor: Any, platform: str | None) -> tuple[Any, str | None]:
    """``(predictor object, fallback platform name)`` for a predictor, a directory, or None."""
    if predictor is None:
        return load_predictor(platform), platform or P.DEFAULT_PLATFORM
    if isinstance(predictor, (str, Path)):
        name = Path(predictor).name
        fallback = name[len(P.PREFIX):] if name.startswith(P.PREFIX) else None
        return load_predictor(path=predictor), platform or fallback
    if not (hasattr(predictor, "breakdown") and hasattr(predictor, "tokenizer")):
        raise InvalidInputError(f"predictor must be an ArchcastLatency, a checkpoint directory or None; "
                                f"got {type(predictor).__name__}")
    return predictor, platform


# ------------------------------------------------------------------------------ prediction
def _checks(pred: Any, cfg: Mapping[str, Any], graph: NetGraph,
            where: str) -> tuple[float | None, float | None, list[str]]:
    """OOD distance/threshold and the warnings for ops never seen in training."""
    out: list[str] = []
    dist = thr = None
    ood = cfg.get("ood") or {}
    ref = (getattr(pred, "extra_tensors_", None) or {}).get("x.reference")
    if ood.get("threshold") is not None and ref is not None:
        thr = float(ood["threshold"])
        ref = np.asarray(ref.detach().cpu().numpy() if hasattr(ref, "detach") else ref, dtype=np.float64)
        emb = np.asarray(pred.embeddings([graph])[0], dtype=np.float64)
        if ref.ndim != 2 or ref.shape[1] != emb.shape[0] or ref.shape[0] == 0:
            raise CheckpointError(f"checkpoint {where}: x.reference has shape {tuple(ref.shape)}; expected "
                                  f"[K >= 1, {emb.shape[0]}] (the predictor's embedding size)")
        dist = float(np.sqrt(((ref - emb) ** 2).sum(1)).min())
        if dist > thr:
            out.append(f"far from the training data: embedding distance {dist:.3g} to the nearest training "
                       f"graph exceeds the threshold {thr:.3g}; the prediction and its interval may be off")
    train_ops = cfg.get("train_ops")
    if train_ops is not None:
        from archcast.graph.ops import is_shape_only

        seen = set(train_ops)  # shape-only ops (Shape, Cast, Squeeze...) cost nothing: never "unseen"
        new = {op: k for op, k in graph.op_counts().items() if op not in seen and not is_shape_only(op)}
        if new:
            listed = ", ".join(f"{op} x{k}" for op, k in new.items())
            out.append(f"op types never seen in training: {listed}")
    return dist, thr, out


def predict_graph(graph: NetGraph, predictor: Any = None, *, platform: str | None = None,
                  store: Any = None) -> LatencyPrediction:
    """Predict ``graph``'s latency (see the module docstring).

    Args:
        graph: a ``kind="network"`` graph.
        predictor: an :class:`ArchcastLatency`, a checkpoint directory, or None (the predictor of
            ``platform``).
        platform: platform name (default ort-cpu-1t); with an explicit predictor it must match
            the checkpoint's platform.
        store: None (no lookup), ``"default"`` ($ARCHCAST_DB or the per-user store; skipped when
            absent or unreadable), a Store, or a database path/URL (must exist).
    """
    from archcast.tokenizer import batching as F_

    pred, fallback = _resolve(predictor, platform)
    if not pred.is_fitted():
        raise NotFittedError("the latency predictor is not fitted: fit() it or load a checkpoint")
    cfg = getattr(pred, "checkpoint_config_", None) or {}
    where = repr(getattr(pred, "checkpoint_dir_", "(in memory)"))
    pname, pid = _platform_of(cfg, platform, fallback)
    level, k, floor = _interval_config(cfg, where)

    t0 = time.perf_counter()
    tok = F_.tokens([graph], pred.tokenizer)[0]
    order, rows = pred.breakdown(graph)  # [members, n_nodes] ms
    dist, thr, check_warnings = _checks(pred, cfg, graph, where)
    predict_s = time.perf_counter() - t0

    rows = np.asarray(rows, dtype=np.float64)
    if not np.all(np.isfinite(rows)):
        raise CheckpointError(f"the predictor {where} produced a non-finite latency for {graph.name or 'the graph'!r} "
                              "(corrupt weights, or an input far outside its range)")
    members = rows.sum(axis=1)
    op_ms = rows.mean(axis=0)
    point = float(members.mean())
    h = interval_half_width(members, k, floor)
    operators = [{"index": int(i), "name": graph.nodes[i].name, "op_type": graph.nodes[i].op_type,
                  "ms": float(m), "share": float(m / point) if point > 0 else 0.0}
                 for i, m in zip(order, op_ms)]
    by_op: dict[str, float] = {}
    for o in operators:
        by_op[o["op_type"]] = by_op.get(o["op_type"], 0.0) + o["ms"]

    n = len(graph.nodes)
    unknown = {str(op): int(c) for op, c in sorted(tok.unknown_ops.items(), key=lambda kv: -kv[1])}
    n_unknown = sum(unknown.values())
    warnings: list[str] = []
    if unknown:
        listed = ", ".join(f"{op} x{c}" for op, c in unknown.items())
        warnings.append(f"{n_unknown} of {n} nodes ({100 * n_unknown / n:.1f} %) have op types outside the "
                        f"{pred.tokenizer} vocabulary ({listed}); their latency is a guess from shapes and costs")
    warnings += check_warnings

    fp = graph.fingerprint()
    batch = int(graph.meta.get("batch_size", 1) or 1)
    measured, kernel_profile = _store_lookup(store, fp, pid, batch, warnings)
    return LatencyPrediction(
        latency_ms=point, low_ms=point * math.exp(-h), high_ms=point * math.exp(h), level=level,
        members_ms=[float(m) for m in members], platform=pname, platform_id=pid, operators=operators,
        by_op_type=dict(sorted(by_op.items(), key=lambda kv: -kv[1])), unknown_ops=unknown,
        unknown_share=n_unknown / n if n else 0.0, warnings=warnings, measured=measured,
        graph={"name": graph.name, "n_nodes": n, "flops": int(graph.flops), "params": int(graph.params),
               "batch_size": batch, "fingerprint": fp},
        predict_s=predict_s, ood_distance=dist, ood_threshold=thr, kernel_profile=kernel_profile)


def predict_graphs(graphs: Sequence[NetGraph], predictor: Any = None, *, platform: str | None = None) -> np.ndarray:
    """Ensemble-mean latency ``[len(graphs)]`` ms of many graphs in batches (no breakdown, no checks)."""
    pred, _ = _resolve(predictor, platform)
    return np.asarray(pred.predict(list(graphs)), dtype=np.float64)


def kernel_route(model: Any, predictor: Any, platform: str | None, network: bool = False) -> Path | None:
    """The kernel-level checkpoint to predict ``model`` with, or None for the network-level path.

    An explicit ``predictor`` directory holding a kernel checkpoint is used (the model must then be
    ONNX); with no predictor, the platform's ``kernels-<platform>`` checkpoint is used for ONNX
    models when it exists (``network=True`` opts out)."""
    from archcast.service.kernel_predict import is_kernel_checkpoint
    from archcast.service.model_cache import model_source

    if isinstance(predictor, (str, Path)) and is_kernel_checkpoint(predictor):
        if model_source(model) is None:
            raise InvalidInputError(f"the kernel-level predictor {str(predictor)!r} reads the graph the runtime "
                                    "executes, so it needs an ONNX model (a .onnx path or bytes)")
        return Path(predictor)
    if predictor is not None or network or model_source(model) is None:
        return None
    return P.kernel_predictor_dir(platform)


def read_model(model: Any, input_shapes: Mapping[str, Sequence[int]] | None = None) -> tuple[NetGraph, Any]:
    """``(graph, source)``: ``model``'s validated graph and what the runtime graph is built from.

    An ONNX model (an ``.onnx`` path, bytes, a ModelProto) is read and hashed once
    (:class:`~archcast.service.model_cache.ModelBytes`, the ``source``: the runtime-graph cache
    reuses its bytes and hash) and its graph comes from the on-disk graph cache
    (:func:`~archcast.service.model_cache.cached_graph`); anything else goes to
    :func:`~archcast.frontends.load_graph` and is its own source.
    """
    from archcast.service.model_cache import ModelBytes, cached_graph, model_source

    if model_source(model) is None:
        from archcast.frontends import load_graph

        return load_graph(model, input_shapes=input_shapes), model
    source = ModelBytes.read(model)
    return cached_graph(source, input_shapes), source


def _is_module(obj: Any) -> bool:
    nn = sys.modules.get("torch.nn")
    return nn is not None and isinstance(obj, nn.Module)


def predict(model: Any, example_input: Any = None, *, platform: str | None = None,
            input_shapes: Mapping[str, Sequence[int]] | None = None, predictor: Any = None,
            db: Any = None) -> LatencyPrediction:
    """Predict the latency of ``model`` on ``platform`` (default ort-cpu-1t).

    Args:
        model: a path to an ``.onnx`` (or graph ``.json``) file, ONNX bytes, a NetGraph, or a
            ``torch.nn.Module`` (exported to ONNX with ``example_input``).
        example_input: a tensor or tuple of tensors (torch modules only).
        input_shapes: ``{input name: shape}`` for ONNX inputs with dynamic dimensions.
        predictor: an ArchcastLatency or a checkpoint directory (default: the platform's).
        db: measurement store to look the graph up in: None (none), ``"default"``, a Store, or a
            database path/URL; a current measurement appears as ``measured``.

    >>> archcast.predict("resnet18.onnx").latency_ms            # doctest: +SKIP
    """
    from archcast.frontends import load_graph

    if platform is not None and not isinstance(platform, str):
        raise InvalidInputError(f"platform must be a platform name (str) or None; got {type(platform).__name__}")
    if input_shapes is not None and not isinstance(input_shapes, Mapping):
        raise InvalidInputError("input_shapes must be a mapping {input name: shape}, e.g. {'input': (1, 3, 224, 224)}; "
                                f"got {type(input_shapes).__name__}")
    if _is_module(model):
        if example_input is None:
            raise InvalidInputError("a torch.nn.Module needs example_input (a tensor or a tuple of tensors)")
        if input_shapes is not None:
            raise InvalidInputError("input_shapes applies to ONNX models; a torch module takes its shapes "
                                    "from example_input")
        graph, source = load_graph(model, example_input=example_input), model
    else:
        if example_input is not None:
            raise InvalidInputError(f"example_input applies to torch.nn.Module models only; got a "
                                    f"{type(model).__name__}")
        if isinstance(model, NetGraph) and input_shapes is not None:
            raise InvalidInputError("input_shapes applies to ONNX models; a NetGraph has fixed shapes")
        graph, source = read_model(model, input_shapes)  # an ONNX model: read once, its graph cached
    # dynamic input shapes pinned by the caller: the runtime optimiser would see the unpinned model
    kdir = kernel_route(model, predictor, platform) if input_shapes is None else None
    if kdir is not None:
        from archcast.service.kernel_predict import predict_kernels

        out = predict_kernels(source, graph, kdir, platform=platform, store=db)
    else:
        out = predict_graph(graph, predictor, platform=platform, store=db)
    if isinstance(model, (str, Path)):
        out.graph["source"] = str(model)
    return out


__all__ = ["DEFAULT_STORE", "LatencyPrediction", "interval_half_width", "kernel_route", "load_predictor",
           "predict", "predict_graph", "predict_graphs", "read_model"]
