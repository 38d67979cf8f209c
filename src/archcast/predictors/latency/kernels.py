"""``kernels`` / ``kernels-prior``: latency as the sum of the kernels the runtime executes.

The input is the graph the platform's runtime runs (for onnxruntime CPU its optimised graph:
fused NCHWc convolutions, fused Gemm/MatMul, layout reorders; docs/design.md §6), one node per
kernel, and every kernel is a label (its profiled time). The model, bottom up:

1. **Analytic prior** per kernel: ``t = a + b * MFLOPs + c * MB moved`` with ``a, b, c >= 0`` (so
   monotone in work), fitted to relative error by non-negative least squares, hierarchically: one
   fit per coarse class (:func:`~archcast.tokenizer.kernel_table.kernel_class`), then per kernel
   kind (op type + variant: depthwise / grouped / pointwise conv, GEMV) its own fit where its
   training kernels span ``full_fit_decades`` of FLOPs, else one scale on the class fit
   (see :meth:`KernelLatency._fit_prior`); a class never seen shares one global fit.
2. **Bounded correction** (``kernels`` only): LightGBM on the log ratio of measured to prior
   time, from the kernel's geometry (:data:`~archcast.tokenizer.kernel_table.KERNEL_COLUMNS`), op
   type and class, clipped to ``+- clip`` in log space; kernels weighted by ``time ** weight_power``
   so the ones that carry the latency count. Its blend weight ``w`` (``t = prior * exp(w * c)``)
   is chosen on the validation networks only, from ``blend_grid`` (0 included: the model cannot
   do worse than its own prior on validation data).
3. **Network latency** from the kernel sum ``S`` of a graph of ``n`` kernels: the profiler adds
   ~2-3 µs to every kernel event, so on small networks of many kernels the profiled kernel sum
   overshoots the un-profiled run by up to 30 %. A per-kernel overhead ``delta`` is fitted on the
   training networks (their *measured* kernel sums against their latencies), then a four-term map
   in log space, ``log y = m0 + m1 log(S - delta n) + m2 log n + m3 delta n / S``, on the training
   networks' *predicted* sums (it absorbs the per-run overhead and what ``delta`` misses).
4. **Adaptation** to another machine (:meth:`KernelLatency.adapt`): a multiplier per kernel class
   (and op type) on the kernel predictions, shrunk toward one global multiplier, and the network
   map's intercept (or intercept and slope) refitted, from a few networks measured there.

Training needs per-kernel times: ``fit(graphs, y, val_graphs, val_y, kernel_times=[{kernel name:
µs}, ...])`` in the order of ``graphs``. ``graphs`` (and ``predict``'s) are runtime graphs;
:func:`archcast.profile.runtime_graph.runtime_graph` makes one from an ONNX model, and the v2
data set ships them (``LatencyDataset.optimized_graphs``).
"""

from __future__ import annotations

import copy
import math
from typing import Any, ClassVar, Mapping, Sequence

import numpy as np

from archcast.errors import InvalidInputError, NotFittedError
from archcast.graph import NetGraph
from archcast.predictors.base import register_predictor
from archcast.predictors.latency.network import LatencyPredictor
from archcast.tokenizer.batching import graph_memo
from archcast.tokenizer.kernel_table import KERNEL_COLUMNS, kernel_class, kernel_table

CLASSES = ("attention", "conv", "elementwise", "gemm", "matmul", "move", "norm", "pool", "reorder", "rnn", "view")
_C = {c: i for i, c in enumerate(KERNEL_COLUMNS)}
MIN_US = 0.5  # a kernel's predicted time never drops below this (the profiler's resolution is 1 µs)
MIN_ADAPT = 3  # networks adapt() needs (leave-one-out needs two to fit on)
ADAPT_SHRINK = (0.0, 0.25, 1.0, 4.0, 16.0, 64.0, math.inf)  # prior counts (networks) toward the global scale
ADAPT_SLOPE_MIN = 30  # networks from which adapt() may refit the map's slope too (below: intercept only)


def _table(g: NetGraph) -> tuple[list[str], list[str], np.ndarray]:
    memo = graph_memo(g)
    got = memo.get("kernel_table")
    if got is None:
        got = memo["kernel_table"] = kernel_table(g)
    return got


def _prior_x(rows: np.ndarray) -> np.ndarray:
    """The prior's design matrix: 1, MFLOPs, MB moved (read + written)."""
    return np.stack([np.ones(len(rows)), rows[:, _C["flops"]] / 1e6,
                     (rows[:, _C["bytes_in"]] + rows[:, _C["bytes_out"]]) / 1e6], 1)


def _nnls_rel(x: np.ndarray, t: np.ndarray, power: float = 0.0) -> np.ndarray:
    """Non-negative ``coef`` minimising ``sum(w * (x @ coef / t - 1) ** 2)``, ``w = t ** (2 * power)``."""
    from scipy.optimize import nnls

    w = t ** power
    return nnls(x / t[:, None] * w[:, None], w)[0]


class _Flat:
    """Every kernel of a list of runtime graphs as flat arrays (rows, op types, graph index)."""

    def __init__(self, graphs: Sequence[NetGraph], kernel_times: Sequence[Mapping[str, float]] | None = None):
        names, ops, rows, gid, t = [], [], [], [], []
        for i, g in enumerate(graphs):
            n, o, r = _table(g)
            names += n
            ops += o
            rows.append(r)
            gid.append(np.full(len(n), i))
            if kernel_times is not None:
                lab = kernel_times[i]
                t.append(np.array([float(lab.get(k, math.nan)) for k in n], dtype=np.float64))
        self.n_graphs = len(graphs)
        self.ops = np.array(ops, dtype=object)
        self.rows = np.concatenate(rows) if rows else np.zeros((0, len(KERNEL_COLUMNS)))
        self.gid = np.concatenate(gid).astype(np.int64) if gid else np.zeros(0, np.int64)
        self.cls = np.array([CLASSES.index(kernel_class(o)) for o in ops], dtype=np.int64)
        self.t = np.concatenate(t) if t else None
        self.n_kernels = np.bincount(self.gid, minlength=self.n_graphs).astype(np.float64)

    def labelled(self) -> np.ndarray:
        assert self.t is not None
        return np.isfinite(self.t) & (self.t > 0)

    def per_graph(self, k: np.ndarray) -> np.ndarray:
        return np.bincount(self.gid, weights=k, minlength=self.n_graphs)


@register_predictor("latency", "kernels")
class KernelLatency(LatencyPredictor):
    name = "kernels"
    RUNTIME_GRAPHS: ClassVar[bool] = True  # graphs are runtime (optimised) graphs; fit needs kernel_times
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "correction": True, "n_estimators": 200, "learning_rate": 0.05, "num_leaves": 15,
        "min_child_samples": 200, "clip": 1.0, "weight_power": 0.5, "min_kernels": 30, "max_rows": 200000,
        "blend_grid": "0,0.25,0.5,0.75,1", "full_fit_decades": 3.0}

    def fit(self, graphs, y, val_graphs, val_y, *, init_from=None,
            kernel_times: Sequence[Mapping[str, float]] | None = None) -> "KernelLatency":
        """As :meth:`LatencyPredictor.fit`, plus ``kernel_times``: per training graph, the measured
        time (µs per run) of each kernel by name (kernels without one are simply not labels)."""
        graphs = list(graphs)
        self._resolve_hparams()  # a bad knob is named before anything else
        if kernel_times is None:
            raise InvalidInputError(f"predictor {self.name!r} learns from kernel times: pass kernel_times= "
                                    "(a data set of format 2 has them)")
        kernel_times = list(kernel_times)
        if len(kernel_times) != len(graphs):
            raise InvalidInputError(f"kernel_times has {len(kernel_times)} entries for {len(graphs)} graphs")
        self._kernel_times = kernel_times
        try:
            return super().fit(graphs, y, val_graphs, val_y, init_from=init_from)  # type: ignore[return-value]
        finally:
            del self._kernel_times

    # ----------------------------------------------------------------------------- fitting
    def _fit(self, graphs, y, val_graphs, val_y, init_from):
        hp = self.hp
        flat = _Flat(graphs, self._kernel_times)
        ok = flat.labelled()
        if ok.sum() < 3:
            raise InvalidInputError(f"predictor {self.name!r}: the training graphs have {int(ok.sum())} labelled "
                                    "kernels (kernel names must match the graphs' node names)")
        self.op_coef_, self.class_coef_, self.global_coef_ = self._fit_prior(flat, ok, hp["min_kernels"])
        self.class_scale_, self.op_scale_ = None, {}  # a fresh fit is nobody's adaptation
        # per-kernel profiling overhead: measured kernel sum - latency ~ delta * n_kernels (relative LS)
        ksum = flat.per_graph(np.where(ok, flat.t, 0.0)) / 1000.0
        a, b = flat.n_kernels / y, ksum / y - 1.0
        self.delta_ms_ = float(max((a * b).sum() / max((a * a).sum(), 1e-12), 0.0))
        self.blend_ = 0.0
        self.op_vocab_ = sorted(set(flat.ops[ok].tolist()))
        prior = self._prior(flat)
        self.map_ = self._fit_map(flat, prior, y)
        if self._correction_on(hp):
            self.gbm_ = self._fit_correction(flat, ok, hp)
            grid = self._grid(hp["blend_grid"])
            vflat = _Flat(val_graphs)
            vprior = self._prior(vflat)
            corr, vcorr = self._corr(flat, prior), self._corr(vflat, vprior)
            errs, maps = [], []
            for w in grid:  # the network map is refitted on the training networks for every weight
                maps.append(self._fit_map(flat, prior * np.exp(w * corr), y))
                self.map_ = maps[-1]
                errs.append(float(np.mean(np.abs(self._network(vflat, vprior * np.exp(w * vcorr)) / val_y - 1.0))))
            best = int(np.argmin(errs))
            self.blend_, self.map_ = float(grid[best]), maps[best]
            self.val_mape_by_blend_ = dict(zip(grid, errs))

    @staticmethod
    def _correction_on(hp: Mapping[str, Any]) -> bool:
        return bool(hp["correction"])

    @staticmethod
    def _grid(spec: str) -> list[float]:
        try:
            grid = sorted({float(v) for v in str(spec).split(",") if v.strip()})
        except ValueError:
            raise InvalidInputError(f"blend_grid={spec!r} must be comma-separated numbers in [0, 1]") from None
        if not grid or any(not 0.0 <= w <= 1.0 for w in grid):
            raise InvalidInputError(f"blend_grid={spec!r} must be comma-separated numbers in [0, 1]")
        return grid

    def _fit_prior(self, flat: _Flat, ok: np.ndarray, min_kernels: int):
        """Hierarchical: one fit per kernel class; a kernel kind (op type + variant) gets its own
        three coefficients only when its training kernels span ``full_fit_decades`` of FLOPs (else
        the roofline's shape is not identified: a GEMV's FLOPs and bytes are collinear), otherwise
        one scale on its class's fit; too few kernels of a kind: the scale of its op type, else
        the class's fit, else a global one."""
        x = _prior_x(flat.rows)
        idx = np.flatnonzero(ok)
        if len(idx) > 50000:  # the global fallback needs no more
            idx = np.random.default_rng(self.seed).choice(idx, 50000, replace=False)
        global_coef = _nnls_rel(x[idx], flat.t[idx])
        class_coef: dict[str, np.ndarray] = {}
        for ci, cls in enumerate(CLASSES):
            m = ok & (flat.cls == ci)
            if m.sum() >= min_kernels:
                class_coef[cls] = _nnls_rel(x[m], flat.t[m])
        base = np.stack([class_coef.get(CLASSES[c], global_coef) for c in flat.cls]) if len(flat.cls) else x
        base_t = np.maximum((x * base).sum(1), MIN_US)

        def scaled(m: np.ndarray) -> np.ndarray:  # one relative-LS scale on the class prior
            r = base_t[m] / flat.t[m]
            return base[np.flatnonzero(m)[0]] * float(r.sum() / max((r * r).sum(), 1e-300))

        keys = self._keys(flat)
        op_coef = {op: scaled(m) for op in sorted(set(flat.ops[ok].tolist()))
                   if (m := ok & (flat.ops == op)).sum() >= min_kernels}
        key_coef: dict[str, np.ndarray] = {}
        decades = float(self.hp["full_fit_decades"])
        for key in sorted(set(keys[ok].tolist())):
            m = ok & (keys == key)
            if m.sum() < min_kernels:
                continue
            fl = flat.rows[m, _C["flops"]] + 1.0
            key_coef[key] = _nnls_rel(x[m], flat.t[m]) if math.log10(fl.max() / fl.min()) >= decades else scaled(m)
        self.key_coef_ = key_coef
        return op_coef, class_coef, global_coef

    @staticmethod
    def _keys(flat: _Flat) -> np.ndarray:
        """Kernel kind: op type + variant (``|dw`` depthwise, ``|grp`` grouped, ``|1x1`` pointwise
        convolutions; ``|gemv`` a Gemm/MatMul with at most 8 rows)."""
        r, out = flat.rows, flat.ops.astype(object).copy()
        conv, gemm = flat.cls == CLASSES.index("conv"), np.isin(flat.cls, [CLASSES.index("gemm"), CLASSES.index("matmul")])
        dw = conv & (r[:, _C["depthwise"]] > 0)
        grp = conv & ~dw & (r[:, _C["group"]] > 1)
        pw = conv & ~dw & ~grp & (r[:, _C["window"]] == 1)
        for m, suffix in ((dw, "|dw"), (grp, "|grp"), (pw, "|1x1"), (gemm & (r[:, _C["gemm_m"]] <= 8), "|gemv")):
            out[m] = out[m] + suffix
        return out

    def _features(self, flat: _Flat, prior: np.ndarray) -> np.ndarray:
        op_id = {o: i for i, o in enumerate(self.op_vocab_)}
        ops = np.array([op_id.get(o, -1) for o in flat.ops], dtype=np.float64)
        ops[ops < 0] = np.nan  # an op type never seen in training: LightGBM's missing branch
        return np.column_stack([np.log1p(flat.rows), flat.cls.astype(np.float64), ops, np.log(prior)])

    def _fit_correction(self, flat: _Flat, ok: np.ndarray, hp: Mapping[str, Any]):
        import lightgbm as lgb

        prior = self._prior(flat)
        idx = np.flatnonzero(ok)
        if len(idx) > hp["max_rows"]:
            idx = np.sort(np.random.default_rng(self.seed).choice(idx, hp["max_rows"], replace=False))
        x = self._features(flat, prior)[idx]
        target = np.clip(np.log(flat.t[idx] / prior[idx]), -hp["clip"], hp["clip"])
        n = len(KERNEL_COLUMNS)
        model = lgb.LGBMRegressor(
            n_estimators=hp["n_estimators"], learning_rate=hp["learning_rate"], num_leaves=hp["num_leaves"],
            min_child_samples=hp["min_child_samples"], subsample=0.7, subsample_freq=1, colsample_bytree=0.8,
            reg_lambda=1.0, random_state=self.seed, n_jobs=1, verbose=-1)
        model.fit(x, target, sample_weight=flat.t[idx] ** hp["weight_power"], categorical_feature=[n, n + 1])
        return model.booster_

    # ----------------------------------------------------------------------------- prediction
    def _coef(self, flat: _Flat) -> np.ndarray:
        out = np.empty((len(flat.ops), 3))
        for i, (key, op, ci) in enumerate(zip(self._keys(flat), flat.ops, flat.cls)):
            c = self.key_coef_.get(key)
            if c is None:
                c = self.op_coef_.get(op)
            out[i] = c if c is not None else self.class_coef_.get(CLASSES[ci], self.global_coef_)
        return out

    def _prior(self, flat: _Flat) -> np.ndarray:
        return np.maximum((_prior_x(flat.rows) * self._coef(flat)).sum(1), MIN_US)

    def _corr(self, flat: _Flat, prior: np.ndarray) -> np.ndarray:
        """The clipped log correction of every kernel (0 without a correction model)."""
        gbm = getattr(self, "gbm_", None)
        if gbm is None or not len(flat.ops):
            return np.zeros(len(flat.ops))
        clip = self.hp["clip"]
        return np.clip(gbm.predict(self._features(flat, prior)), -clip, clip)

    def _kernels(self, flat: _Flat) -> np.ndarray:
        """Every kernel's predicted time (µs): the prior times its blended correction (times its
        class's multiplier on an adapted predictor)."""
        prior = self._prior(flat)
        k = prior * np.exp(self.blend_ * self._corr(flat, prior))
        return k * self._adapt_multiplier(flat)

    def _adapt_multiplier(self, flat: _Flat) -> np.ndarray | float:
        """Every kernel's multiplier from :meth:`adapt` (its op type's, else its class's; 1 unadapted)."""
        scale = getattr(self, "class_scale_", None)
        if scale is None:
            return 1.0
        out = scale[flat.cls]
        for op, s in (getattr(self, "op_scale_", None) or {}).items():
            out[flat.ops == op] = s
        return out

    def predict_with_kernels(self, graphs: Sequence[NetGraph]) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(network ms, per graph the kernel µs in node order)`` from one pass over the kernels."""
        flat = _Flat(list(graphs))
        k = self._kernels(flat)
        return self._network(flat, k), [k[flat.gid == i] for i in range(flat.n_graphs)]

    def kernel_us(self, graphs: Sequence[NetGraph]) -> list[np.ndarray]:
        """Predicted time (µs per run, profiler's view) of every kernel of every graph, in node order."""
        return self.predict_with_kernels(graphs)[1]

    def _map_x(self, flat: _Flat, k: np.ndarray) -> np.ndarray:
        return self._map_design(flat.per_graph(k) / 1000.0, flat.n_kernels, self.delta_ms_)

    @staticmethod
    def _map_design(s: np.ndarray, n: np.ndarray, delta: float) -> np.ndarray:
        """The network map's design from kernel sums ``s`` (ms) of ``n`` kernels: 1,
        log(s - delta * n), log n, delta * n / s."""
        over = delta * n
        return np.column_stack([np.ones(len(s)), np.log(np.maximum(s - over, 0.05 * s)),
                                np.log(np.maximum(n, 1.0)), over / s])

    def _fit_map(self, flat: _Flat, k: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Least squares in log space of the network latency on :meth:`_map_x` (training networks)."""
        return np.linalg.lstsq(self._map_x(flat, k), np.log(y), rcond=None)[0]

    def _network(self, flat: _Flat, k: np.ndarray) -> np.ndarray:
        return np.exp(self._map_x(flat, k) @ self.map_)

    def _predict(self, graphs):
        flat = _Flat(list(graphs))
        return self._network(flat, self._kernels(flat))

    # ----------------------------------------------------------------------------- adaptation
    def adapt(self, graphs: Sequence[NetGraph], y: Any, *, kernel_times: Sequence[Mapping[str, float]] | None = None,
              seed: int = 0) -> "KernelLatency":
        """A copy adapted to a few networks measured on another machine (``self`` is unchanged).

        Every kernel's prediction gets a multiplier ``exp(g + u_class + u_op)``: ``g`` one global
        log scale, ``u_class`` / ``u_op`` the class's / op type's deviations, shrunk toward 0 with a
        prior count ``lam`` (networks). With ``kernel_times`` (per graph ``{kernel name: µs}``) a
        deviation is ``sum w r / (sum w + lam)`` over networks, ``r`` the residual log ratio of
        measured to predicted time, ``w`` the group's share of the network's kernel time. Without,
        one multiplier per class: non-negative least squares of each network's implied kernel sum
        (the base's map inverted at ``y``) on its predicted class sums, ridge ``lam`` toward ``g``.
        Then the map's intercept (median log residual; from ``ADAPT_SLOPE_MIN`` networks on, maybe
        the slope too) is refitted and ``delta`` scaled by ``exp(g)`` (v2 -> v2-rt1: 0.72x where
        the kernels moved 0.56x; refitting it from 20 networks lost on held-out models).

        ``lam``, the level (class, class + op type) and the map mode are chosen by leave-one-out
        MAPE on the adaptation networks against the base times one global scale (the median ratio
        of ``y`` to its predictions), which is kept unless the best beats it by more than one
        standard error of the paired LOO gain: never worse than the global scale on that error.
        ``adapt_info_`` says what was chosen; deterministic (``seed`` is only recorded)."""
        if not self.is_fitted():
            raise NotFittedError(f"predictor {self.name!r} is not fitted: fit or load it before adapting")
        graphs = list(graphs)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        kernel_times = None if kernel_times is None else list(kernel_times)
        for bad, msg in ((len(y) != len(graphs), f"adapt() got {len(y)} latencies for {len(graphs)} graphs"),
                         (len(graphs) < MIN_ADAPT, f"adapt() needs at least {MIN_ADAPT} networks, got {len(graphs)}"),
                         (not np.all(np.isfinite(y) & (y > 0)), "adapt() latencies must be positive milliseconds"),
                         (kernel_times is not None and len(kernel_times) != len(graphs),
                          f"kernel_times has {len(kernel_times or [])} entries for {len(graphs)} graphs")):
            if bad:
                raise InvalidInputError(msg)
        flat = _Flat(graphs, kernel_times)
        k = self._kernels(flat)
        ops = sorted(set(flat.ops.tolist()))
        op_idx = np.array([ops.index(o) for o in flat.ops], dtype=np.int64)
        op_cls = np.array([CLASSES.index(kernel_class(o)) for o in ops], dtype=np.int64)
        cell, size = flat.gid * len(ops) + op_idx, flat.n_graphs * len(ops)

        def per_op(w: np.ndarray) -> np.ndarray:  # [network, op type] sums
            return np.bincount(cell, weights=w, minlength=size).reshape(flat.n_graphs, len(ops))

        stats = {"K": per_op(k), "n": flat.n_kernels}
        use_kernels = False
        if kernel_times is not None:
            ok = flat.labelled()
            stats["KL"], stats["T"] = per_op(np.where(ok, k, 0.0)), per_op(np.where(ok, flat.t, 0.0))
            use_kernels = bool(((stats["KL"].sum(1) > 0) & (stats["T"].sum(1) > 0)).sum() >= MIN_ADAPT)
        if not use_kernels:  # the kernel sum that would give y under the base's map
            stats["S"] = self._implied_sum(stats["K"].sum(1) / 1000.0, stats["n"], y)
        levels = ("class", "class+op") if use_kernels else ("class",)
        modes = ("intercept", "slope") if len(y) >= ADAPT_SLOPE_MIN else ("intercept",)
        glob = ("global", None, "intercept", "base")
        configs = [glob] + [(lv, lam, mode, "scaled") for lv in levels for lam in ADAPT_SHRINK for mode in modes
                            if not (lv == "class+op" and not 1.0 <= lam < math.inf)]  # op level: shrunk, never free
        loo: dict[tuple, float] = {}
        errs: dict[tuple, np.ndarray] = {}
        for cfg in configs:
            pred = np.empty(len(y))
            for i in range(len(y)):
                keep = np.arange(len(y)) != i
                col, _, _, delta, m = self._adapt_fit({a: v[keep] for a, v in stats.items()}, y[keep], cfg,
                                                      use_kernels, op_cls)
                pred[i] = self._map_eval((stats["K"][i:i + 1] * col).sum(1) / 1000.0, stats["n"][i:i + 1], delta, m)[0]
            errs[cfg] = np.abs(pred / y - 1.0)
            loo[cfg] = float(errs[cfg].mean())
        best = min(loo, key=lambda c: (loo[c], c[0] != "global"))  # ties go to the global scale
        gain = errs[glob] - errs[best]  # the best of many candidates looks better than it is: demand
        if gain.mean() <= gain.std() / math.sqrt(len(y)):  # one standard error of the paired LOO gain
            best = glob
        _, cls_scale, op_scale, delta, m = self._adapt_fit(stats, y, best, use_kernels, op_cls)
        out = copy.copy(self)  # shares the (read-only) prior coefficients and correction trees
        prev_cls, prev_op = getattr(self, "class_scale_", None), getattr(self, "op_scale_", None) or {}
        prev_cls = np.ones(len(CLASSES)) if prev_cls is None else prev_cls
        new_op = {o: float(s) for o, s in zip(ops, op_scale)} if op_scale is not None else {}
        of = {o: CLASSES.index(kernel_class(o)) for o in set(new_op) | set(prev_op)}  # adapting an adapted model
        out.class_scale_, out.delta_ms_, out.map_ = cls_scale * prev_cls, delta, m
        out.op_scale_ = {o: new_op.get(o, float(cls_scale[c])) * prev_op.get(o, float(prev_cls[c]))
                         for o, c in sorted(of.items())}
        out.adapt_info_ = {
            "n_networks": int(len(y)), "from_kernel_times": use_kernels, "seed": int(seed),
            "chosen": {"level": best[0], "map": best[2], "delta": best[3],  # shrink: a prior count, JSON-safe
                       "shrink": None if best[1] is None else float(best[1]) if math.isfinite(best[1]) else "inf"},
            "loo_mape": {"|".join(map(str, c)): v for c, v in loo.items()},
            "loo_mape_global": loo[glob], "loo_mape_chosen": loo[best]}
        return out

    def _implied_sum(self, s_ms: np.ndarray, n: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per network the kernel sum (ms) ``a * s_ms`` that the base's map takes to ``y``
        (bisection on ``log a``; the map increases with the kernel sum where it was fitted)."""
        lo, hi = np.full(len(y), -8.0), np.full(len(y), 8.0)
        for _ in range(60):
            mid = (lo + hi) / 2
            up = self._map_eval(s_ms * np.exp(mid), n, self.delta_ms_, self.map_) > y
            hi, lo = np.where(up, mid, hi), np.where(up, lo, mid)
        return s_ms * np.exp((lo + hi) / 2)

    def _map_eval(self, s_ms: np.ndarray, n: np.ndarray, delta: float, m: np.ndarray) -> np.ndarray:
        return np.exp(self._map_design(s_ms, n, delta) @ m)

    def _adapt_scales(self, st: Mapping[str, np.ndarray], level: str, lam: float | None, use_kernels: bool,
                      op_cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float]:
        """``(multiplier per op column, per class, per op type or None, the global one)``."""
        n_cls = len(CLASSES)
        if lam is None:  # the base as it is
            return np.ones(len(op_cls)), np.ones(n_cls), None, 1.0
        onehot = np.eye(n_cls)[op_cls]  # [op, class]
        if use_kernels:
            kl, t = st["KL"], st["T"]
            net = (kl.sum(1) > 0) & (t.sum(1) > 0)
            g = float(np.mean(np.log(t[net].sum(1) / kl[net].sum(1))))
            total = np.maximum(t.sum(1, keepdims=True), 1e-300)

            def shrunk(pred: np.ndarray, meas: np.ndarray, offset: np.ndarray) -> np.ndarray:
                both = (pred > 0) & (meas > 0)
                w = np.where(both, meas, 0.0) / total
                r = np.where(both, np.log(np.where(both, meas, 1.0) / np.where(both, pred, 1.0)) - offset, 0.0)
                return (w * r).sum(0) / np.maximum(w.sum(0) + lam, 1e-12)

            u_cls = np.zeros(n_cls) if math.isinf(lam) else shrunk(kl @ onehot, t @ onehot, np.full(n_cls, g))
            u_op = (shrunk(kl, t, g + u_cls[op_cls]) if level == "class+op" else np.zeros(len(op_cls)))
            col = np.exp(g + u_cls[op_cls] + u_op)
            return col, np.exp(g + u_cls), (col if level == "class+op" else None), math.exp(g)
        from scipy.optimize import nnls

        K, s = st["K"] @ onehot, st["S"] * 1000.0  # [network, class] µs, implied sums in µs
        g = math.exp(float(np.mean(np.log(s / K.sum(1)))))
        if math.isinf(lam):
            cls = np.full(n_cls, g)
        else:
            a, b = K / s[:, None], np.ones(len(s))
            if lam > 0:
                a = np.vstack([a, np.eye(n_cls) * math.sqrt(lam) / g])
                b = np.concatenate([b, np.full(n_cls, math.sqrt(lam))])
            cls = nnls(a, b)[0]
            cls[K.sum(0) <= 0] = g  # a class the networks lack keeps the global scale
            cls = np.maximum(cls, 1e-3 * g)  # a zero multiplier would make a kernel free
        return cls[op_cls], cls, None, g

    def _adapt_fit(self, st: Mapping[str, np.ndarray], y: np.ndarray, cfg: tuple, use_kernels: bool,
                   op_cls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, float, np.ndarray]:
        """One configuration ``(level, shrink, map mode, delta mode)`` fitted: ``(multiplier per op
        column, per class, per op type or None, delta, network map)``; delta mode ``scaled``: the
        base's ``delta`` times the global multiplier."""
        col, cls, op, g = self._adapt_scales(st, cfg[0], cfg[1], use_kernels, op_cls)
        delta = self.delta_ms_ * (g if cfg[3] == "scaled" else 1.0)
        x = self._map_design((st["K"] * col).sum(1) / 1000.0, st["n"], delta)
        m = np.array(self.map_, dtype=np.float64)
        if cfg[2] == "intercept":  # the median: MAPE-like, and robust with a handful of networks
            m[0] += float(np.median(np.log(y) - x @ m))
        else:  # intercept and slope on log(S - delta n); the other two terms as the base has them
            m[:2] = np.linalg.lstsq(x[:, :2], np.log(y) - x[:, 2:] @ m[2:], rcond=None)[0]
        return col, cls, op, delta, m

    # ----------------------------------------------------------------------------- checkpoints
    GBM_FILE: ClassVar[str] = "correction.lgbm.txt"
    TREES_FILE: ClassVar[str] = "correction.trees.json"  # the same trees for NumPy (no LightGBM import)

    def config(self) -> dict[str, Any]:
        """Everything but the correction model, JSON-able (``checkpoint``'s ``config.json``)."""
        return {"predictor": self.name, "task": "latency", "seed": int(self.seed), "hparams": dict(self.hp),
                "kernel_columns": list(KERNEL_COLUMNS), "classes": list(CLASSES),
                "key_coef": {k: [float(x) for x in v] for k, v in self.key_coef_.items()},
                "op_coef": {k: [float(x) for x in v] for k, v in self.op_coef_.items()},
                "class_coef": {k: [float(x) for x in v] for k, v in self.class_coef_.items()},
                "global_coef": [float(x) for x in self.global_coef_], "delta_ms": self.delta_ms_,
                "map": [float(x) for x in self.map_], "blend": self.blend_, "op_vocab": list(self.op_vocab_),
                "correction_file": self.GBM_FILE if getattr(self, "gbm_", None) is not None else None,
                "correction_trees": self.TREES_FILE if getattr(self, "gbm_", None) is not None else None,
                # adapt(): per class multipliers on the kernel predictions (absent before adaptation)
                **({"class_scale": [float(x) for x in scale], "op_scale": dict(getattr(self, "op_scale_", None) or {}),
                    "adapt_info": getattr(self, "adapt_info_", None)}
                   if (scale := getattr(self, "class_scale_", None)) is not None else {})}

    def save(self, directory: Any, extra: dict[str, Any] | None = None) -> Any:
        """``config.json`` (coefficients, map, blend; ``extra`` merged in: platform, interval...) and
        the correction as NumPy trees (JSON) and LightGBM text. A predictor loaded with NumPy trees
        (and adapted copies of it) saves them from their spec; its LightGBM file is copied from the
        checkpoint it was loaded from when that is still there, else ``correction_file`` is None.
        Loading needs NumPy only (LightGBM for a checkpoint without the trees file)."""
        import json
        import time
        from pathlib import Path

        from archcast._version import __version__
        from archcast.train.checkpoint import CONFIG, FORMAT_VERSION

        if not self.is_fitted():
            raise InvalidInputError(f"predictor {self.name!r} is not fitted: nothing to save")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        gbm, gbm_file = getattr(self, "gbm_", None), None
        if gbm is not None:
            from archcast.predictors.latency.trees import write_correction

            src_dir, src_file = getattr(self, "checkpoint_dir_", None), getattr(self, "checkpoint_config_", {}).get(
                "correction_file")
            gbm_file = write_correction(gbm, d, self.GBM_FILE, self.TREES_FILE,
                                        Path(src_dir) / src_file if src_dir and src_file else None)
        cfg = {**self.config(), "correction_file": gbm_file, **(extra or {}), "archcast_version": __version__,
               "created_unix": int(time.time()), "format_version": FORMAT_VERSION}
        (d / CONFIG).write_text(json.dumps(cfg, indent=2, sort_keys=True))
        return d

    @classmethod
    def load(cls, directory: Any) -> "KernelLatency":
        """Rebuild from :meth:`save`; a checkpoint of another predictor or feature layout is refused."""
        from pathlib import Path

        from archcast.errors import CheckpointError
        from archcast.train.checkpoint import read_config

        cfg = read_config(directory)
        if cfg.get("predictor") not in ("kernels", "kernels-prior") or cfg.get("task") != "latency":
            raise CheckpointError(f"checkpoint {str(directory)!r} holds {cfg.get('task')!r} predictor "
                                  f"{cfg.get('predictor')!r}, not a kernel-level latency predictor")
        if cfg.get("kernel_columns") != list(KERNEL_COLUMNS) or cfg.get("classes") != list(CLASSES):
            raise CheckpointError(f"checkpoint {str(directory)!r} was written with another kernel feature layout")
        klass = KernelPriorLatency if cfg["predictor"] == "kernels-prior" else KernelLatency
        try:
            self = klass(seed=int(cfg.get("seed", 0)), **{k: v for k, v in cfg["hparams"].items() if k in klass.DEFAULTS})
            self.hparams_ = {**KernelLatency.DEFAULTS, **cfg["hparams"]}
            self.key_coef_ = {k: np.asarray(v, dtype=np.float64) for k, v in cfg["key_coef"].items()}
            self.op_coef_ = {k: np.asarray(v, dtype=np.float64) for k, v in cfg["op_coef"].items()}
            self.class_coef_ = {k: np.asarray(v, dtype=np.float64) for k, v in cfg["class_coef"].items()}
            self.global_coef_ = np.asarray(cfg["global_coef"], dtype=np.float64)
            self.delta_ms_, self.blend_ = float(cfg["delta_ms"]), float(cfg["blend"])
            self.map_ = np.asarray(cfg["map"], dtype=np.float64)
            self.op_vocab_ = [str(o) for o in cfg["op_vocab"]]
            scale = cfg.get("class_scale")  # older checkpoints: not adapted
            self.class_scale_ = None if scale is None else np.asarray(scale, dtype=np.float64).reshape(len(CLASSES))
            self.op_scale_ = {str(o): float(v) for o, v in (cfg.get("op_scale") or {}).items()}
            if cfg.get("adapt_info") is not None:
                self.adapt_info_ = cfg["adapt_info"]
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"checkpoint {str(directory)!r} is incomplete or damaged: {e!r}") from None
        from archcast.predictors.latency.trees import read_correction

        gbm = read_correction(Path(directory), cfg.get("correction_trees"), cfg.get("correction_file"))
        if gbm is not None:
            self.gbm_ = gbm
        self.checkpoint_dir_ = str(directory)  # save() copies the LightGBM file from here
        self.checkpoint_config_ = cfg
        return self


@register_predictor("latency", "kernels-prior")
class KernelPriorLatency(KernelLatency):
    """The analytic prior of ``kernels`` alone (no learned correction): what the correction must beat."""

    name = "kernels-prior"
    DEFAULTS: ClassVar[dict[str, Any]] = {"min_kernels": 30, "full_fit_decades": 3.0}

    @staticmethod
    def _correction_on(hp: Mapping[str, Any]) -> bool:
        return False

    @property
    def hp(self) -> dict[str, Any]:
        return {**KernelLatency.DEFAULTS, **super().hp, "correction": False}


__all__ = ["CLASSES", "KernelLatency", "KernelPriorLatency"]
