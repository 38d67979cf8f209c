"""Train the shipped latency predictor for a platform from a measured data set.

``train_platform_predictor`` fits :class:`~archcast.predictors.latency.ArchcastLatency` on a random
90 % of the data set (epochs chosen on the other 10 %), then stores beside the weights everything
``archcast predict`` needs: the platform, the interval calibration (``k`` from a latency benchmark's
leave-one-family-out run, i.e. from errors on families the model had not seen), reference
embeddings with a distance threshold (the 99th percentile of validation graphs' nearest-reference
distances) and the op types seen in training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from archcast.errors import InvalidInputError

N_REFERENCE = 1500


def interval_k_from_bench(path: str | Path | None) -> tuple[float, str]:
    """``(k, where it came from)``: the mean over seeds of the LOFO-calibrated ``k_all`` of the
    ``archcast`` predictor in a latency benchmark JSON; 1.645 (Gaussian) without one."""
    if path is None:
        return 1.645, "gaussian default (no benchmark given)"
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        iv = data["protocols"]["lofo"]["archcast"]["interval"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise InvalidInputError(f"{str(p)!r} is not a latency benchmark with an archcast LOFO interval: {e}") from None
    return float(np.mean(iv["k_all"])), f"{p.name}: LOFO-calibrated ({iv.get('ensemble', '')})"


def random_split(indices: np.ndarray, val_frac: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``(train, validation)``: a random ``val_frac`` (at least 2) of ``indices`` validates; both sorted."""
    perm = rng.permutation(indices)
    n_val = max(2, int(round(val_frac * len(perm))))
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def train_platform_predictor(dataset: str | Path, out: str | Path, *, bench: str | Path | None = None,
                             seed: int = 0, val_frac: float = 0.1, progress: bool = True,
                             **hparams: Any) -> dict[str, Any]:
    import torch

    from archcast import metrics
    from archcast.data.latency_dataset import load_latency_dataset
    from archcast.predictors.latency.archcast import ArchcastLatency

    ds = load_latency_dataset(dataset)
    graphs = list(ds.graphs())
    y = np.asarray(ds.latency_ms, dtype=np.float64)
    rng = np.random.default_rng(seed)
    tr, va = random_split(np.arange(len(graphs)), val_frac, rng)
    pred = ArchcastLatency(seed=seed, progress=progress, **hparams)
    t0 = time.perf_counter()
    pred.fit([graphs[i] for i in tr], y[tr], [graphs[i] for i in va], y[va])
    fit_s = time.perf_counter() - t0
    val_pred = pred.predict([graphs[i] for i in va])
    k, k_source = interval_k_from_bench(bench)

    ref_idx = tr if len(tr) <= N_REFERENCE else np.sort(rng.choice(tr, N_REFERENCE, replace=False))
    ref = pred.embeddings([graphs[i] for i in ref_idx])
    val_emb = pred.embeddings([graphs[i] for i in va])
    dist = np.sqrt(((val_emb[:, None, :] - ref[None, :, :]) ** 2).sum(-1)).min(1)
    threshold = float(np.quantile(dist, 0.99))
    train_ops = sorted({n.op_type for i in tr for n in graphs[i].nodes})
    platform = dict(ds.platform)
    extra = {
        "platform": platform,
        "interval": {"level": 0.9, "k": k, "floor": 0.0, "source": k_source},
        "ood": {"threshold": threshold, "reference_size": int(len(ref_idx)),
                "rule": "99th percentile of validation graphs' nearest-reference distance"},
        "train_ops": train_ops,
        "trained_on": {"dataset": Path(dataset).name, "dataset_fingerprint": ds.fingerprint,
                       "n_train": int(len(tr)), "n_val": int(len(va)), "seed": seed,
                       "families": ds.families(), "val_mape": metrics.mape(y[va], val_pred),
                       "val_acc10": metrics.acc_within(y[va], val_pred, 0.10), "fit_s": fit_s},
    }
    pred.save(out, extra=extra, extra_tensors={"x.reference": torch.from_numpy(ref)})
    return extra


def conformal_h_from_bench(path: str | Path | None, predictor: str = "kernels") -> tuple[float | None, str]:
    """``(h, where it came from)``: the split-conformal 90 % half-width (log space) of ``predictor``
    over every leave-one-family-out fold of a latency benchmark (mean over seeds); None without one."""
    if path is None:
        return None, "no benchmark given: no calibrated interval"
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        h = float(data["protocols"]["lofo"][predictor]["conformal"]["h_all"]["mean"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise InvalidInputError(f"{str(p)!r} is not a latency benchmark with a {predictor} LOFO conformal "
                                f"interval: {e!r}") from None
    return h, f"{p.name}: split-conformal on leave-one-family-out errors"


def train_kernel_predictor(dataset: str | Path, out: str | Path, *, bench: str | Path | None = None,
                           seed: int = 0, val_frac: float = 0.1, **hparams: Any) -> dict[str, Any]:
    """Fit :class:`~archcast.predictors.latency.kernels.KernelLatency` on a format-2 data set's
    runtime graphs and kernel times (a random ``1 - val_frac`` trains, the rest chooses the
    correction's blend) and save it to ``out`` with the platform, the op types seen in training and
    the interval half-width from ``bench`` (split-conformal on LOFO errors)."""
    from archcast import metrics
    from archcast.data.latency_dataset import load_latency_dataset
    from archcast.predictors.latency.kernels import KernelLatency

    ds = load_latency_dataset(dataset)
    if ds.format_version < 2:
        raise InvalidInputError(f"{dataset} is a format-{ds.format_version} data set; the kernel predictor "
                                "needs format 2 (optimised graphs + kernel times)")
    graphs = ds.optimized_graphs()
    labels = ds.kernel_labels()
    keep = [i for i in range(len(ds.records)) if graphs[i] is not None]
    y = np.asarray(ds.latency_ms, dtype=np.float64)
    tr, va = random_split(np.asarray(keep), val_frac, np.random.default_rng(seed))
    pred = KernelLatency(seed=seed, **hparams)
    t0 = time.perf_counter()
    pred.fit([graphs[i] for i in tr], y[tr], [graphs[i] for i in va], y[va],
             kernel_times=[labels.get(ds.records[i].fingerprint, {}) for i in tr])
    fit_s = time.perf_counter() - t0
    val_pred = pred.predict([graphs[i] for i in va])
    h, source = conformal_h_from_bench(bench)
    extra = {
        "platform": dict(ds.platform),
        "interval": {"level": 0.9, "k": 0.0, "floor": h if h is not None else 0.0, "source": source},
        "train_ops": sorted({n.op_type for i in tr for n in graphs[i].nodes}),
        "trained_on": {"dataset": Path(dataset).name, "dataset_fingerprint": ds.fingerprint,
                       "n_train": int(len(tr)), "n_val": int(len(va)), "seed": seed, "families": ds.families(),
                       "val_mape": metrics.mape(y[va], val_pred), "val_acc10": metrics.acc_within(y[va], val_pred, 0.10),
                       "fit_s": fit_s, "blend": pred.blend_},
    }
    from archcast.service.calibration import reference_from_dataset

    ref = reference_from_dataset(ds)  # the labels' machine, for archcast calibrate
    if ref:
        extra["reference_canary_ms"] = ref
    pred.save(out, extra=extra)
    return extra


def calibrate_checkpoint(directory: str | Path, bench: str | Path) -> float:
    """Set a saved predictor's interval ``k`` from a latency benchmark's LOFO run (weights
    untouched); returns k."""
    from archcast.train.checkpoint import CONFIG, read_config

    cfg = read_config(directory)
    if cfg.get("task") != "latency":
        raise InvalidInputError(f"{str(directory)!r} is not a latency predictor checkpoint")
    k, source = interval_k_from_bench(bench)
    cfg["interval"] = {**cfg.get("interval", {}), "level": 0.9, "k": k, "floor": 0.0, "source": source}
    (Path(directory) / CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return k
