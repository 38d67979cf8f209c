"""Predict from what runs: an ONNX model's latency as the sum of the kernels its runtime executes.

:func:`predict_kernels` asks the platform's runtime for the graph it will execute
(:func:`archcast.profile.runtime_graph.runtime_graph`: onnxruntime's own optimiser, applied offline
to the model with random weights), predicts every kernel with the platform's kernel-level
predictor (:class:`~archcast.predictors.latency.kernels.KernelLatency`, checkpoint
``kernels-<platform>``), and returns a :class:`~archcast.service.prediction.LatencyPrediction` whose
``operators`` are the kernels (each with ``origin``: the user's operators it executes), scaled so
that they sum to the network latency. The interval is ``point * exp(+-h)`` with ``h`` the
split-conformal half-width the checkpoint was calibrated with (leave-one-family-out errors). A
checkpoint with a far-from-training reference (config ``ood``,
:class:`~archcast.predictors.latency.far.FarFromTraining`) sets ``ood_distance`` /
``ood_threshold`` and warns of a model above the threshold, quoting the held-out errors such models
had when the checkpoint records them (``archcast bench far-from-training``).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from archcast.errors import ArchcastError, CheckpointError
from archcast.graph.ir import NetGraph
from archcast.service.model_cache import CACHE_ENV, cache_dir, model_source  # noqa: F401 (the cache's home)


def load_kernel_predictor(directory: str | Path) -> Any:
    """The :class:`KernelLatency` saved in ``directory`` (kept, keyed by directory and mtime)."""
    from archcast.predictors.latency.kernels import KernelLatency
    from archcast.service.prediction import cached_load

    return cached_load(Path(directory).resolve(), KernelLatency.load)


def is_kernel_checkpoint(directory: str | Path) -> bool:
    """Whether ``directory`` holds a kernel-level latency predictor (by its config's ``predictor``)."""
    try:
        cfg = json.loads((Path(directory) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("predictor") in ("kernels", "kernels-prior")


def predict_kernels(model: Any, graph: NetGraph, directory: str | Path, *, platform: str | None = None,
                    store: Any = None, calibration: bool = True) -> Any:
    """Predict ``model`` (an ONNX path, bytes, ModelProto or
    :class:`~archcast.service.model_cache.ModelBytes`; ``graph`` is its archcast IR, for the
    fingerprint, the store lookup and the report) with the kernel predictor in ``directory``;
    scaled to this machine when ``archcast calibrate`` measured it (:mod:`archcast.service.calibration`)
    and ``calibration`` is true."""
    from archcast.profile.platform import Platform, default_platform
    from archcast.service.prediction import LatencyPrediction, _interval_config, _platform_of, _store_lookup

    pred = load_kernel_predictor(directory)
    cfg = pred.checkpoint_config_
    where = repr(str(directory))
    pname, pid = _platform_of(cfg, platform, None)
    level, _k, floor = _interval_config(cfg, where)
    try:
        plat = Platform.from_dict(cfg["platform"]) if cfg.get("platform") else default_platform()
    except (ArchcastError, KeyError, TypeError) as e:
        raise CheckpointError(f"checkpoint {where}: its platform cannot be rebuilt: {e}") from None

    t0 = time.perf_counter()
    rg = cached_runtime_graph(model, plat)
    net, per_graph = pred.predict_with_kernels([rg.graph])
    point, kernels = float(net[0]), per_graph[0]
    predict_s = time.perf_counter() - t0
    if not (math.isfinite(point) and point > 0 and np.all(np.isfinite(kernels))):
        raise CheckpointError(f"the predictor {where} produced a non-finite latency (corrupt checkpoint?)")

    scale = point / max(float(kernels.sum()), 1e-12)  # the profiler's view -> shares of the network latency
    operators = [{"index": i, "name": n.name, "op_type": n.op_type, "ms": float(k * scale),
                  "share": float(k / kernels.sum()) if kernels.sum() > 0 else 0.0,
                  "origin": list(rg.origin.get(n.name, ()))}
                 for i, (n, k) in enumerate(zip(rg.graph.nodes, kernels))]
    by_op: dict[str, float] = {}
    for o in operators:
        by_op[o["op_type"]] = by_op.get(o["op_type"], 0.0) + o["ms"]

    warnings: list[str] = []
    seen = set(cfg.get("train_ops") or [])
    unknown: dict[str, int] = {}
    if seen:
        for n in rg.graph.nodes:
            if n.op_type not in seen:
                unknown[n.op_type] = unknown.get(n.op_type, 0) + 1
    if unknown:
        listed = ", ".join(f"{op} x{c}" for op, c in sorted(unknown.items(), key=lambda kv: -kv[1]))
        warnings.append(f"kernel types never seen in training: {listed}; their time comes from the prior of "
                        "their kernel class")
    dist, thr, far = _far_check(pred, cfg, rg.graph, graph, directory, where)
    if far:
        warnings.append(far)
    if floor <= 0:
        warnings.append("this checkpoint has no calibrated interval (trained without --bench)")
    fp = graph.fingerprint()
    batch = int(graph.meta.get("batch_size", 1) or 1)
    measured, kernel_profile = _store_lookup(store, fp, pid, batch, warnings)
    n = len(rg.graph.nodes)
    n_unknown = sum(unknown.values())
    out = LatencyPrediction(
        latency_ms=point, low_ms=point * math.exp(-floor), high_ms=point * math.exp(floor), level=level,
        members_ms=[point], platform=pname, platform_id=pid, operators=operators,
        by_op_type=dict(sorted(by_op.items(), key=lambda kv: -kv[1])), unknown_ops=unknown,
        unknown_share=n_unknown / n if n else 0.0, warnings=warnings, measured=measured,
        graph={"name": graph.name, "n_nodes": len(graph.nodes), "flops": int(graph.flops), "params": int(graph.params),
               "batch_size": batch, "fingerprint": fp, "n_kernels": n, "eliminated": len(rg.eliminated)},
        predict_s=predict_s, ood_distance=dist, ood_threshold=thr, predictor="kernels", kernel_profile=kernel_profile)
    return _calibrated(out, cfg, pid) if calibration else out


def _far_check(pred: Any, cfg: Any, runtime: NetGraph, graph: NetGraph, directory: str | Path,
               where: str) -> tuple[float | None, float | None, str | None]:
    """``(distance, threshold, warning or None)`` from the checkpoint's far-from-training reference
    (config ``ood``: :class:`~archcast.predictors.latency.far.FarFromTraining` in ``ood.file``; kept
    on the cached predictor); ``(None, None, None)`` for a checkpoint without one."""
    ood = cfg.get("ood")
    if not isinstance(ood, dict) or not ood.get("file"):
        return None, None, None
    from archcast.predictors.latency.far import FarFromTraining, kernel_ood_features

    ref = getattr(pred, "ood_reference_", None)
    if ref is None:
        name = str(ood["file"])
        if Path(name).name != name:
            raise CheckpointError(f"checkpoint {where}: ood.file must be a file name in the checkpoint, got {name!r}")
        ref = FarFromTraining.load(directory, name)
        pred.ood_reference_ = ref
    try:
        thr = float(ood.get("threshold", ref.threshold_))
    except (TypeError, ValueError):
        raise CheckpointError(f"checkpoint {where}: ood.threshold is not a number") from None
    dist = float(ref.score(kernel_ood_features(runtime, graph.flops, graph.memory_bytes, graph.params)))
    if not dist > thr:
        return dist, thr, None
    m = ood.get("measured") if isinstance(ood.get("measured"), dict) else {}
    try:
        evidence = (f"on held-out families such models had {100 * float(m['mape_warned']):.1f} % MAPE vs "
                    f"{100 * float(m['mape_unwarned']):.1f} %")
    except (KeyError, TypeError, ValueError):
        evidence = "the prediction and its interval may be off"
    return dist, thr, (f"far from the training data: kernel-mix/size distance {dist:.3g} > threshold {thr:.3g} "
                       f"({evidence})")


def _calibrated(out: Any, cfg: Any, pid: str | None) -> Any:
    """``out`` scaled by this machine's canary factor against the checkpoint's reference canaries
    (recomputed from the saved canary times, so a calibration fits every checkpoint of the platform)."""
    from archcast.service.calibration import apply_calibration, load_calibration, reference_of, speed_factor

    ref = reference_of(cfg)
    cal = load_calibration(pid) if ref is not None else None
    if cal is None:
        from archcast.profile.machine import cpu_model
        from archcast.service.calibration import other_cpu_of

        device = other_cpu_of(cfg)
        if device and ref is not None:
            out.warnings.append(f"times are for the predictor's machine ({device}), not this CPU ({cpu_model()}): "
                                "archcast calibrate --other-cpu scales them by the canaries")
        return out
    local = cal.get("canary_ms")
    if not isinstance(local, dict):
        return out
    factor, _ = speed_factor({str(k): float(v) for k, v in local.items()}, ref)
    return apply_calibration(out, {**cal, "factor": factor})


@dataclass(frozen=True)
class CachedRuntime:
    """What predicting needs of a :class:`~archcast.profile.runtime_graph.RuntimeGraph`."""

    graph: NetGraph
    origin: dict[str, tuple[str, ...]]
    eliminated: tuple[str, ...]


def _build_runtime_graph(model: Any, platform: Any) -> Any:
    from archcast.profile.runtime_graph import runtime_graph  # onnxruntime: only on a cache miss

    return runtime_graph(model, platform)


def _encode_runtime(rg: Any) -> dict[str, Any]:
    return {"graph": rg.graph.to_dict(), "origin": {k: list(v) for k, v in rg.origin.items()},
            "eliminated": list(rg.eliminated)}


def _decode_runtime(d: Any) -> CachedRuntime:
    return CachedRuntime(NetGraph.from_dict(d["graph"]), {k: tuple(v) for k, v in d["origin"].items()},
                         tuple(d["eliminated"]))


def cached_runtime_graph(model: Any, platform: Any, build: Any = _build_runtime_graph) -> Any:
    """``build(model, platform)``'s runtime graph, cached on disk by the model's bytes, the platform
    and the onnxruntime and archcast versions (the optimiser's output depends on all four): a
    repeated prediction skips the onnxruntime session. ``model`` may be a
    :class:`~archcast.service.model_cache.ModelBytes` (the bytes are then neither read nor hashed
    again). An unreadable cache entry is rebuilt (:func:`~archcast.service.model_cache.cached_json`)."""
    from importlib.metadata import PackageNotFoundError, version

    from archcast._version import __version__
    from archcast.errors import InvalidInputError
    from archcast.service.model_cache import ModelBytes, cached_json

    try:
        ort_version = version("onnxruntime")
    except PackageNotFoundError:
        ort_version = "?"
    try:
        mb = ModelBytes.read(model)
    except InvalidInputError:
        return build(model, platform)  # the builder reports the unreadable file
    key = ("runtime-graph", mb.sha256, str(platform.platform_id), ort_version, __version__)
    return cached_json("runtime-graphs", key, lambda: build(mb.source, platform), _encode_runtime, _decode_runtime)


__all__ = ["CACHE_ENV", "CachedRuntime", "cache_dir", "cached_runtime_graph", "is_kernel_checkpoint", "load_kernel_predictor",
           "model_source", "predict_kernels"]
