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
                           seed: int = 0, val_frac: float = 0.1, ood_bench: str | Path | None = None,
                           **hparams: Any) -> dict[str, Any]:
    """Fit :class:`~archcast.predictors.latency.kernels.KernelLatency` on a format-2 data set's
    runtime graphs and kernel times (a random ``1 - val_frac`` trains, the rest chooses the
    correction's blend) and save it to ``out`` with the platform, the op types seen in training,
    the interval half-width from ``bench`` (split-conformal on LOFO errors) and the far-from-training
    reference of the training models (:func:`fit_kernel_reference`; the held-out errors of warned
    models from ``ood_bench``, a ``bench far-from-training`` JSON, when given)."""
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
        "ood": fit_kernel_reference(ds, graphs, tr, out, bench=ood_bench),
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


OOD_K, OOD_Q = 5, 0.95


def kernel_ood_matrix(ds: Any, runtime_graphs: Any, idx: Any) -> np.ndarray:
    """``[len(idx), len(FEATURES)]``: :func:`~archcast.predictors.latency.far.kernel_ood_features` of
    the data set's models ``idx``: FLOPs / memory bytes / params from ``models.csv`` (those of the
    user's graph, :class:`~archcast.graph.NetGraph`'s properties; the graph's own where a column is
    empty), the kernel mix from ``runtime_graphs[i]``."""
    from archcast.predictors.latency.far import FEATURES, kernel_ood_features

    rows, graphs = [], None
    for i in idx:
        r = ds.records[int(i)]
        size = (r.flops, r.memory_bytes, r.params)
        if any(v is None for v in size):
            graphs = graphs if graphs is not None else ds.graphs()
            g = graphs[int(i)]
            size = (g.flops, g.memory_bytes, g.params)
        rows.append(kernel_ood_features(runtime_graphs[int(i)], *size))
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))


def ood_numbers_from_bench(path: str | Path, q: float, predictor: str = "kernels") -> dict[str, Any]:
    """What ``archcast bench far-from-training`` measured at quantile ``q`` for ``predictor``: share of
    held-out models warned, their MAPE and share of errors > 25 % against the unwarned ones."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
        row = data["quantiles"][f"{q:g}"]["predictors"][predictor]
        out = {k: float(row[k]) for k in ("share_warned", "mape_warned", "mape_unwarned", "over25_warned",
                                          "over25_unwarned")}
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise InvalidInputError(f"{str(p)!r} is not a far-from-training benchmark with q={q:g} for {predictor}: "
                                f"{e!r}") from None
    fams = {f: round(float(v[f"share_warned@{q:g}"]), 3) for f, v in (data.get("by_family") or {}).items()
            if float(v.get(f"share_warned@{q:g}", 0.0)) > 0}
    return {**out, "spearman": data.get("spearman", {}).get(predictor), "protocol": data.get("protocol"),
            "dataset": data.get("dataset"), "warned_families": fams, "source": p.name}


def fit_kernel_reference(ds: Any, runtime_graphs: Any, train_idx: Any, out: str | Path, *, k: int = OOD_K,
                         q: float = OOD_Q, bench: str | Path | None = None) -> dict[str, Any]:
    """Fit :class:`~archcast.predictors.latency.far.FarFromTraining` on the training models
    ``train_idx``, save it in ``out`` and return the checkpoint config's ``ood`` entry."""
    from archcast.predictors.latency.far import FarFromTraining

    x = kernel_ood_matrix(ds, runtime_graphs, train_idx)
    ref = FarFromTraining(k=k, q=q).fit(x, [ds.records[int(i)].family for i in train_idx])
    path = ref.save(out)
    entry: dict[str, Any] = {
        "kind": "kernel-mix/size", "file": path.name, "k": int(k), "q": float(q), "threshold": float(ref.threshold_),
        "n_reference": int(len(x)), "n_families": len(ref.families_),
        "rule": f"mean distance to the {k} nearest training models (standardised log sizes + sqrt kernel-class "
                f"shares) above the {q:g} quantile of the training families' inner leave-one-family-out scores"}
    if bench is not None:
        entry["measured"] = ood_numbers_from_bench(bench, q)
    return entry


def add_kernel_reference(directory: str | Path, dataset: str | Path, *, k: int = OOD_K, q: float = OOD_Q,
                         bench: str | Path | None = None, check_val: bool = True) -> dict[str, Any]:
    """Fit the far-from-training reference of an existing kernels checkpoint on the training split
    its config's ``trained_on`` records (data set fingerprint, seed, n_train / n_val: the split of
    :func:`train_kernel_predictor`), save it beside the weights and add the ``ood`` entry to
    ``config.json`` (the weights are not touched). The split is checked against the recorded op types
    and, with ``check_val``, the recorded validation MAPE (the checkpoint predicts its validation
    models again). Returns the ``ood`` entry."""
    from archcast.data.latency_dataset import load_latency_dataset
    from archcast.train.checkpoint import CONFIG, read_config

    d = Path(directory)
    cfg = read_config(d)
    if cfg.get("predictor") not in ("kernels", "kernels-prior") or not isinstance(cfg.get("trained_on"), dict):
        raise InvalidInputError(f"{str(d)!r} is not a kernels checkpoint with a trained_on record")
    t = cfg["trained_on"]
    ds = load_latency_dataset(dataset)
    if ds.fingerprint != t.get("dataset_fingerprint"):
        raise InvalidInputError(f"{str(d)!r} was trained on data set {t.get('dataset')!r} (fingerprint "
                                f"{t.get('dataset_fingerprint')}), not on {str(dataset)!r} ({ds.fingerprint})")
    graphs = ds.optimized_graphs()
    keep = np.asarray([i for i in range(len(ds.records)) if graphs[i] is not None])
    n_train, n_val = int(t["n_train"]), int(t["n_val"])
    tr, va = random_split(keep, n_val / len(keep), np.random.default_rng(int(t["seed"])))
    ops = sorted({n.op_type for i in tr for n in graphs[i].nodes})
    if (len(tr), len(va)) != (n_train, n_val) or ("train_ops" in cfg and ops != cfg["train_ops"]):
        raise InvalidInputError(f"the split of seed {t['seed']} does not reproduce {str(d)!r}'s training set")
    if check_val and "val_mape" in t:
        from archcast import metrics
        from archcast.predictors.latency.kernels import KernelLatency

        y = np.asarray(ds.latency_ms, dtype=np.float64)
        mape = metrics.mape(y[va], KernelLatency.load(d).predict([graphs[i] for i in va]))
        if not np.isclose(mape, float(t["val_mape"]), rtol=1e-6, atol=1e-9):
            raise InvalidInputError(f"{str(d)!r}'s validation MAPE is {mape:.6f} on the reproduced split, not the "
                                    f"recorded {float(t['val_mape']):.6f}: not its training split")
    entry = fit_kernel_reference(ds, graphs, tr, d, k=k, q=q, bench=bench)
    cfg["ood"] = entry
    (d / CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return entry


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
