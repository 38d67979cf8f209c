"""Adapt the kernel-level predictor of one platform to another from a few measured models.

``archcast adapt --platform ort-cpu-2t`` (the default where the base platform has a ``kernels``
checkpoint; :func:`adapt_kernels`):

1. **pool** (:func:`~archcast.adapt.run.candidate_pool`): zoo samples of every family, from the
   store or exported;
2. **runtime graphs** for the *new* platform (its threads and graph optimisation level decide
   what onnxruntime executes): :func:`~archcast.service.kernel_predict.cached_runtime_graph`, the
   function and on-disk cache ``archcast predict`` uses, so the adapted model is fitted on the
   graphs it will later be asked about; candidates onnxruntime cannot build are left out;
3. **picks** (:func:`~archcast.adapt.kernel_pick.pick_for_kernels`): latency strata x kernel-mix
   cells in the base's view of the candidates;
4. **measurement** of the picks on the new platform into the store, resumably (a model measured
   there before is not measured again);
5. **adaptation** from latencies alone (:meth:`KernelLatency.adapt` without kernel times;
   ``archcast bench adapt-kernels``: as good as with kernel times), labelled with the statistic the
   shipped checkpoint was trained on where the store has it (:func:`label_of`);
6. **save** as ``kernels-<platform>`` in the user predictor directory
   (:func:`~archcast.service.checkpoints.kernel_predictor_dir`), which ``archcast predict
   --platform <platform>`` then uses for ONNX models, with a far-from-training reference: the
   base's where onnxruntime builds the same runtime graphs here, else one fitted on the pool's
   runtime graphs on the new platform (:func:`_far_reference`).

Latencies are milliseconds; MAPE values are fractions, not percent.
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from archcast.adapt import DEFAULT_KERNEL_BUDGET, DEFAULT_POOL_PER_FAMILY, DEFAULT_START_SEED, MIN_BUDGET
from archcast.errors import ArchcastError, InvalidInputError
from archcast.service.checkpoints import DEFAULT_PLATFORM

if TYPE_CHECKING:
    from archcast.collect.runner import ProfileReport
    from archcast.graph import NetGraph
    from archcast.profile.platform import Platform
    from archcast.store.records import MeasurementRecord
    from archcast.store.store import Store
    from archcast.zoo.base import ZooSample

# The shipped kernels-ort-cpu-1t was trained on datasets/ort-cpu-1t-v2, whose label is the median
# over passes of the per-pass thread-CPU minimum (collect.passes.Protocol.label_stat, docs/data.md).
# One adapt() measurement is one pass: its cpu_ms_min on a 1-thread platform (the runtime runs every
# kernel on the calling thread); with more threads the thread's CPU time is not the latency, so the
# wall-clock minimum; the median for rows written without either.
MIN_POOL_REFERENCE = 10  # pool models with a runtime graph below which no far-from-training reference is fitted
LABEL_STATS = ("cpu_ms_min", "latency_ms_min", "latency_ms_median")


def label_of(row: "MeasurementRecord", threads: int) -> tuple[float | None, str | None]:
    """``(ms, statistic)``: the label of a store row for a platform of ``threads`` threads
    (see :data:`LABEL_STATS`); ``(None, None)`` when the row has no positive value."""
    for stat in LABEL_STATS:
        if stat == "cpu_ms_min" and threads != 1:
            continue
        v = getattr(row, stat, None)
        if v is not None and v > 0:
            return float(v), stat
    return None, None


def _runtime_graphs(pool: Sequence[tuple["ZooSample", "NetGraph"]], platform: "Platform",
                    onnx: dict[str, bytes], progress: bool) -> list["NetGraph | None"]:
    """Per pool entry the graph onnxruntime executes for it on ``platform`` (None: it failed; a
    warning counts those)."""
    from archcast.service.kernel_predict import cached_runtime_graph
    from archcast.zoo import export_sample

    out: list["NetGraph | None"] = []
    failed: list[str] = []
    bar = None
    if progress and pool:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pool), desc=f"runtime graphs ({platform.name})", unit="model", dynamic_ncols=True)
    for s, _ in pool:
        try:
            data = onnx.pop(s.key, None) or export_sample(s, batch_size=1, weight_free=True)
            out.append(cached_runtime_graph(data, platform).graph)
        except Exception as e:  # noqa: BLE001 - onnxruntime or a family's build may raise anything: leave it out
            out.append(None)
            failed.append(f"{s.key} ({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]})")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if failed:
        warnings.warn(f"{len(failed)} candidate(s) have no runtime graph on {platform.name} and were left out: "
                      + "; ".join(failed[:3]) + (" ..." if len(failed) > 3 else ""), RuntimeWarning, stacklevel=3)
    return out


def _same_runtime_graphs(base_platform: dict[str, Any], platform: "Platform") -> bool:
    """Whether onnxruntime builds the same runtime graphs here as for the base's training models:
    the same runtime version and optimisation level (threads and CPU model do not change them)."""
    return all(base_platform.get(k) == getattr(platform, k) for k in ("runtime", "runtime_version", "graph_opt_level"))


def _far_reference(base_cfg: dict[str, Any], base_path: Path, platform: "Platform",
                   pool: Sequence[tuple["ZooSample", "NetGraph"]], runtime: Sequence["NetGraph | None"],
                   have: Sequence[int], out_dir: Path) -> dict[str, Any] | None:
    """The adapted checkpoint's far-from-training reference (its config's ``ood`` entry; the file
    is written into ``out_dir``). Where the runtime graphs are the base's, the base's reference (its
    training models, the threshold and the held-out evidence) is copied. Otherwise the kernel mix
    differs, and a reference is fitted on the candidate pool's runtime graphs on this platform (the
    zoo families the base was trained on), with the base's k and q; its threshold comes from the
    pool's inner leave-one-family-out, and the base's held-out evidence does not carry over."""
    from archcast.predictors.latency.far import FILE, FarFromTraining, kernel_ood_features

    ood = base_cfg.get("ood") if isinstance(base_cfg.get("ood"), dict) else None
    src = base_path / str(ood["file"]) if ood and ood.get("file") and Path(str(ood["file"])).name == ood["file"] else None
    if src is not None and src.is_file() and _same_runtime_graphs(base_cfg.get("platform") or {}, platform):
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, out_dir / src.name)
        return {**ood, "source": f"the base checkpoint's training models ({base_path.name}): onnxruntime builds the "
                                 f"same runtime graphs on {platform.name}"}
    fams = [pool[i][0].family for i in have]
    if len(set(fams)) < 2 or len(have) < MIN_POOL_REFERENCE:
        return None
    k = int(ood.get("k", 5)) if ood else 5
    q = float(ood.get("q", 0.95)) if ood else 0.95
    x = [kernel_ood_features(runtime[i], pool[i][1].flops, pool[i][1].memory_bytes, pool[i][1].params) for i in have]
    ref = FarFromTraining(k=k, q=q).fit(x, fams)
    path = ref.save(out_dir, FILE)
    return {"kind": "kernel-mix/size", "file": path.name, "k": k, "q": q, "threshold": float(ref.threshold_),
            "n_reference": len(x), "n_families": len(ref.families_),
            "rule": f"mean distance to the {k} nearest pool models (standardised log sizes + sqrt kernel-class shares) "
                    f"above the {q:g} quantile of the pool families' inner leave-one-family-out scores",
            "source": f"the adapt pool's runtime graphs on {platform.name} ({len(x)} models of {len(ref.families_)} "
                      "families): this platform's kernel mix differs from the base's"}


@dataclass
class KernelAdaptReport:
    """What :func:`adapt_kernels` did.

    Attributes:
        platform: the new platform; base_platform / base_dir: what was adapted from.
        budget: models asked for; pool_size: candidates built; n_runtime: those with a runtime graph.
        selected / fingerprints: the picked zoo samples and their graphs, in pick order.
        latency_ms: each pick's label (None: its measurement failed); label_stat: the statistic of
            each label (:data:`LABEL_STATS`).
        profile: the profiling run (``skipped`` = measured before: a resumed run).
        adapt_info: :meth:`KernelLatency.adapt`'s ``adapt_info_`` (chosen level / shrink / map,
            leave-one-out MAPE of every variant, of the chosen one and of the base times one scale).
        base_mape: the unadapted base's MAPE on the measured picks.
        saved_to: the checkpoint directory.
    """

    platform: "Platform"
    base_platform: str
    base_dir: Path
    budget: int
    pool_size: int
    n_runtime: int
    selected: list["ZooSample"]
    fingerprints: list[str]
    latency_ms: list[float | None]
    label_stat: list[str | None]
    profile: "ProfileReport"
    adapt_info: dict[str, Any]
    base_mape: float
    saved_to: Path

    @property
    def labels(self) -> str:
        """The label statistics used, e.g. ``cpu_ms_min`` (several joined by ``+`` when rows differ)."""
        return "+".join(sorted({s for s in self.label_stat if s})) or "none"

    def to_dict(self) -> dict[str, Any]:
        info = self.adapt_info
        return {
            "predictor": "kernels", "platform": self.platform.to_dict(), "base_platform": self.base_platform,
            "base_dir": str(self.base_dir), "budget": self.budget, "pool_size": self.pool_size,
            "n_runtime_graphs": self.n_runtime,
            "selected": [{"family": s.family, "seed": s.seed, "fingerprint": fp, "latency_ms": y, "label": st}
                         for s, fp, y, st in zip(self.selected, self.fingerprints, self.latency_ms, self.label_stat)],
            "label": self.labels,
            "profiled": {"ok": self.profile.ok, "failed": self.profile.failed, "skipped": self.profile.skipped,
                         "duplicates": self.profile.duplicates, "wall_s": self.profile.wall_s},
            "n_adapted": info["n_networks"], "chosen": info["chosen"], "loo_mape_chosen": info["loo_mape_chosen"],
            "loo_mape_global": info["loo_mape_global"], "base_mape": self.base_mape, "adapt_info": info,
            "saved_to": str(self.saved_to),
        }

    def lines(self) -> list[str]:
        measured = [y for y in self.latency_ms if y is not None]
        fams = sorted({s.family for s in self.selected})
        info, ch = self.adapt_info, self.adapt_info["chosen"]
        shrink = "" if ch["shrink"] is None else f", shrink {ch['shrink']}"
        return [
            f"picked {len(self.selected)} of {self.pool_size} candidates ({self.n_runtime} with a runtime graph on "
            f"{self.platform.name}; {len(fams)} families: {', '.join(fams)})",
            f"measured on {self.platform.name} ({self.platform.platform_id}): {len(measured)} ok "
            f"({self.profile.skipped} from an earlier run), {len(self.latency_ms) - len(measured)} failed"
            + (f"; {min(measured):.3g}-{max(measured):.3g} ms ({self.labels})" if measured else ""),
            f"adapted kernels from {self.base_platform} on {info['n_networks']} networks (latencies only): "
            f"{ch['level']} multipliers{shrink}, map {ch['map']}; leave-one-out MAPE {info['loo_mape_chosen']:.1%} "
            f"(base x one scale: {info['loo_mape_global']:.1%}; base unadapted: {self.base_mape:.1%})",
            f"saved {self.saved_to}",
        ]


def _load_base(base_platform: str, base_dir: str | Path | None) -> tuple[Any, Path]:
    from archcast.predictors.latency.kernels import KernelLatency
    from archcast.service.checkpoints import kernel_predictor_dir

    d = Path(base_dir) if base_dir is not None else kernel_predictor_dir(base_platform)
    if d is None:
        raise InvalidInputError(
            f"no kernel-level predictor (kernels-{base_platform}) for the base platform {base_platform!r} to adapt "
            "from; pass --base-dir, another --base-platform, or --predictor archcast")
    return KernelLatency.load(d), d


def _other_cpu(base: Any) -> bool:
    """Whether this machine's CPU model is not the one ``base`` was trained on: then the platform
    of the same name is another platform here, and adapting to it is what the user needs."""
    from archcast.service.calibration import other_cpu_of

    return other_cpu_of(getattr(base, "checkpoint_config_", None)) is not None


def adapt_kernels(
    platform_name: str,
    budget: int = DEFAULT_KERNEL_BUDGET,
    *,
    base_platform: str = DEFAULT_PLATFORM,
    base_dir: str | Path | None = None,
    families: Sequence[str] | None = None,
    pool_per_family: int = DEFAULT_POOL_PER_FAMILY,
    start_seed: int = DEFAULT_START_SEED,
    workers: int = 1,
    db: "str | Path | Store | None" = None,
    out: str | Path | None = None,
    seed: int = 0,
    measure_kw: dict[str, Any] | None = None,
    progress: bool = True,
) -> KernelAdaptReport:
    """Make the kernel-level predictor of ``platform_name`` (see the module docstring for the steps).

    ``base_platform``'s ``kernels`` checkpoint (or the one in ``base_dir``) is adapted; ``db`` is
    the store measurements go to (default: the user's store); ``measure_kw`` the measurement
    protocol (default: the reference data set's, 30 runs / 0.3 s); ``out`` the checkpoint directory
    (default: ``kernels-<platform_name>`` in the user predictor directory, which ``archcast
    predict --platform <platform_name>`` then finds). ``seed`` breaks the picker's rounding ties.

    Raises:
        InvalidInputError: a budget below ``MIN_BUDGET``, an unknown platform name, the base
            platform itself on the CPU model it was trained on (on another CPU model the same name is
            another platform and is adapted to), or no kernels checkpoint to adapt from.
        ArchcastError: fewer than three picks could be measured.
    """
    from archcast.adapt.kernel_pick import pick_for_kernels
    from archcast.adapt.run import candidate_pool, platform_from_name
    from archcast.collect.runner import profile_samples
    from archcast.predictors.latency.kernels import MIN_ADAPT
    from archcast.profile.backend import get_backend
    from archcast.service.checkpoints import kernel_predictor_dir
    from archcast.store.store import Store

    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_BUDGET:
        raise InvalidInputError(f"budget must be an integer >= {MIN_BUDGET} (models to measure); got {budget!r}")
    base, base_path = _load_base(base_platform, base_dir)
    if platform_name == base_platform and not _other_cpu(base):
        raise InvalidInputError(
            f"--platform {platform_name!r} is the base platform: its predictor needs no adapting; "
            "name another platform, e.g. ort-cpu-2t or ort-cpu-1t-disable")
    platform = platform_from_name(platform_name)  # this machine's: on another CPU model, another platform id
    get_backend(platform.backend).check_available(platform)  # before minutes of exporting
    out_dir = Path(out) if out is not None else kernel_predictor_dir(platform_name, user=True)
    if measure_kw is None:
        from archcast.data.latency_dataset import DEFAULT_MEASURE_KW

        measure_kw = dict(DEFAULT_MEASURE_KW)
    store = db if isinstance(db, Store) else Store(db)

    onnx: dict[str, bytes] = {}
    pool = candidate_pool(families, pool_per_family, start_seed, store, progress=progress, onnx_out=onnx)
    runtime = _runtime_graphs(pool, platform, onnx, progress)
    have = [i for i, g in enumerate(runtime) if g is not None]
    if len(have) < MIN_ADAPT:
        raise ArchcastError(f"only {len(have)} of {len(pool)} candidates have a runtime graph on {platform.name}; "
                            f"need at least {MIN_ADAPT}")
    n = budget
    if n > len(have):
        warnings.warn(f"budget {budget} exceeds the {len(have)} candidates; measuring all of them", RuntimeWarning,
                      stacklevel=2)
        n = len(have)
    picks = [have[int(j)] for j in pick_for_kernels(base, [runtime[i] for i in have], n, seed=seed)]
    samples = [pool[i][0] for i in picks]
    fps = [pool[i][1].fingerprint() for i in picks]
    prof = profile_samples(samples, store, platform, batch_size=1, workers=workers, progress=progress,
                           measure_kw=measure_kw)
    rows = {r.fingerprint: r for r in store.measurements(platform=platform, status="ok", batch_size=1)}
    labelled = [label_of(rows[fp], platform.threads) if fp in rows else (None, None) for fp in fps]
    lat, stats = [v for v, _ in labelled], [s for _, s in labelled]
    ok = [k for k, v in enumerate(lat) if v is not None]
    if len(ok) < MIN_ADAPT:
        reasons = "; ".join(f"{k}: {r}" for k, r in prof.failures[:3]) or "see archcast db export --format csv"
        raise ArchcastError(f"only {len(ok)} of {len(picks)} picked models were measured on {platform.name}; "
                            f"need at least {MIN_ADAPT} ({reasons})")
    if len(ok) < len(picks):
        warnings.warn(f"{len(picks) - len(ok)} picked model(s) failed to measure; adapting on {len(ok)}",
                      RuntimeWarning, stacklevel=2)
    graphs, y = [runtime[picks[k]] for k in ok], np.array([lat[k] for k in ok], dtype=np.float64)
    adapted = base.adapt(graphs, y, seed=seed)
    base_mape = float(np.mean(np.abs(base.predict(graphs) / y - 1.0)))

    base_cfg = getattr(base, "checkpoint_config_", {})
    extra: dict[str, Any] = {
        "platform": platform.to_dict(),  # includes platform_id; predict builds runtime graphs for it
        "adapted_from": base_platform,
        "adapted_from_platform_id": (base_cfg.get("platform") or {}).get("platform_id"),
        "budget": budget,
        "adapt": {
            "method": "KernelLatency.adapt (latencies only)", "base_dir": str(base_path), "pool_size": len(pool),
            "n_runtime_graphs": len(have), "pool_per_family": pool_per_family, "start_seed": start_seed,
            "seed": seed, "measure_kw": measure_kw, "base_mape": base_mape,
            "samples": [{"family": samples[k].family, "seed": samples[k].seed, "fingerprint": fps[k],
                         "latency_ms": lat[k], "label": stats[k]} for k in ok],
        },
    }
    # the interval and the op types seen in training carry over; the base's reference canary times
    # do not (they are the base machine's: `archcast calibrate` would rescale an adapted model again)
    for key in ("interval", "train_ops"):
        if key in base_cfg:
            extra[key] = base_cfg[key]
    ood = _far_reference(base_cfg, base_path, platform, pool, runtime, have, out_dir)
    if ood is not None:
        extra["ood"] = ood
    saved = Path(adapted.save(out_dir, extra=extra))
    return KernelAdaptReport(
        platform=platform, base_platform=base_platform, base_dir=base_path, budget=budget, pool_size=len(pool),
        n_runtime=len(have), selected=samples, fingerprints=fps, latency_ms=lat, label_stat=stats, profile=prof,
        adapt_info=dict(adapted.adapt_info_), base_mape=base_mape, saved_to=saved)


__all__ = ["KernelAdaptReport", "LABEL_STATS", "adapt_kernels", "label_of"]
