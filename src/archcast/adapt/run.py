"""Adapt the latency predictor of one platform to another from a small measured budget.

``archcast adapt --platform ort-cpu-2t --predictor archcast --budget 50`` (:func:`adapt`; the
kernel-level predictor, the command's default where the base has one, is
:mod:`archcast.adapt.kernels_run`):

1. **pool** (:func:`candidate_pool`): zoo samples of every family; graphs already in the store are
   read from it, the rest are sampled from seed ``start_seed`` on and exported;
2. **selection** (``selection=``): ``"k-center"`` (default, :func:`select_diverse`): greedy
   farthest points in the base predictor's embedding space; or ``"k-medoids"``
   (:func:`select_representative`): the medoid of each of ``budget`` equal latency strata. On
   ``ort-cpu-1t`` -> ``ort-cpu-1t-disable`` (``docs/benchmarks.md``) k-center was best at 10 and
   20 measurements (21.1 / 22.1 % MAPE against 29.7 / 20.8 % random and 36.4 / 32.6 % k-medoids),
   random at 50 and k-medoids at 100: no pick wins everywhere yet;
3. **measurement** of the selected samples on the new platform into the store, resumably (a sample
   measured there before is not measured again, so a rerun after Ctrl-C continues);
4. **fine-tuning** (:func:`fine_tune`): every ensemble member starts from the base's weights with
   its output shifted by the median log ratio new/base (the platform's overall speed), then trains
   at a lower learning rate for a fixed budget of optimiser steps (however many graphs were
   measured); the epoch is chosen on a held-out part of the budget;
5. **save** as the platform's user predictor (:func:`~archcast.service.checkpoints.predictor_dir_for`).

Latencies are milliseconds; MAPE values are fractions, not percent.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from archcast.adapt import DEFAULT_BUDGET, DEFAULT_POOL_PER_FAMILY, DEFAULT_START_SEED, MIN_BUDGET  # noqa: F401
from archcast.data.splits import split_budget
from archcast.errors import ArchcastError, InvalidInputError, NotFittedError
from archcast.service.checkpoints import DEFAULT_PLATFORM

if TYPE_CHECKING:
    from archcast.collect.runner import ProfileReport
    from archcast.graph import NetGraph
    from archcast.predictors.latency.archcast import ArchcastLatency
    from archcast.profile.platform import Platform
    from archcast.store.store import Store
    from archcast.zoo.base import Family, ZooSample

MIN_VAL = 2  # held-out graphs that choose the fine-tuning epoch
MIN_TRAIN = 2
# Fine-tuning recipe: a quarter of the from-scratch learning rate (2e-3). A budget of 50 (40
# training graphs, 2 batches) took 0.5 s per epoch for the default 3 x 96-wide ensemble on one
# busy core (165 operators per graph on average): 40 epochs stay well under a minute.
FINE_TUNE_LR = 5e-4
FINE_TUNE_EPOCHS = 40
# Fine-tuning by steps, not epochs: 20 measured graphs make one batch per epoch, 100 make four, so a
# fixed epoch count gave small budgets 40 steps and large ones 160. ``steps`` fixes the step count.
FINE_TUNE_STEPS = 200
SELECTIONS = ("k-center", "k-medoids")


# --------------------------------------------------------------------------- platform names
def _ort_cpu(m: re.Match) -> "Platform":
    from archcast.profile.platform import default_platform

    return default_platform(threads=int(m["threads"]), graph_opt_level=m.groupdict().get("level") or "all")


def _torch_cuda(m: re.Match) -> "Platform":
    from archcast.profile.backend import get_backend
    from archcast.profile.measurement import BackendUnavailableError

    get_backend("torch-cuda").check_available()  # no GPU: says so and names the backend to use
    raise BackendUnavailableError(
        f"platform {m.group(0)!r}: profiling backend 'torch-cuda' cannot measure zoo models yet; "
        "adapt to an ort-cpu-<N>t platform instead")


@dataclass(frozen=True)
class PlatformNameForm:
    """One accepted spelling of a platform name and how to build its :class:`Platform`.
    Another backend adds one entry to :data:`PLATFORM_NAME_FORMS`."""

    form: str
    pattern: re.Pattern
    build: Callable[[re.Match], "Platform"]


PLATFORM_NAME_FORMS: tuple[PlatformNameForm, ...] = (
    PlatformNameForm("ort-cpu-<N>t", re.compile(r"ort-cpu-(?P<threads>[1-9][0-9]*)t"), _ort_cpu),
    PlatformNameForm("ort-cpu-<N>t-<level> (level: extended, basic, disable)",
                     re.compile(r"ort-cpu-(?P<threads>[1-9][0-9]*)t-(?P<level>extended|basic|disable)"), _ort_cpu),
    PlatformNameForm("torch-cuda (not measurable yet)", re.compile(r"torch-cuda"), _torch_cuda),
)


def platform_from_name(name: str) -> "Platform":
    """The :class:`~archcast.profile.platform.Platform` of this machine that ``name`` describes:
    ``ort-cpu-2t`` -> onnxruntime CPU, 2 threads, all graph optimisations; ``ort-cpu-1t-disable``
    -> 1 thread, optimisations off.

    Raises:
        InvalidInputError: ``name`` matches no form (the message lists the accepted ones).
        BackendUnavailableError: the form's backend cannot measure on this machine.
    """
    for f in PLATFORM_NAME_FORMS:
        m = f.pattern.fullmatch(str(name))
        if m:
            return f.build(m)
    raise InvalidInputError(
        f"platform name {name!r} is not one of the accepted forms: "
        f"{'; '.join(f.form for f in PLATFORM_NAME_FORMS)} (level 'all' is written without a suffix)")


# --------------------------------------------------------------------------- candidate pool
def _stored_samples(store: "Store", fam: "Family", limit: int) -> list[tuple["ZooSample", str]]:
    """``(sample, fingerprint)`` of the family's batch-1 graphs in ``store`` (with IR, any platform,
    current generator config), lowest seeds first."""
    found: dict[int, tuple["ZooSample", str]] = {}
    for r in store.measurements(family=fam.name, batch_size=1):
        if r.seed is None or r.n_nodes is None or r.generator_version != fam.version or int(r.seed) in found:
            continue
        s = fam.sample(int(r.seed))
        if s.config_json() == r.generator_config:  # the family still builds this graph from the seed
            found[int(r.seed)] = (s, r.fingerprint)
    return [found[k] for k in sorted(found)[:limit]]


def candidate_pool(
    families: Sequence[str] | None = None,
    per_family: int = DEFAULT_POOL_PER_FAMILY,
    start_seed: int = DEFAULT_START_SEED,
    store: "Store | None" = None,
    *,
    progress: bool = False,
    onnx_out: dict[str, bytes] | None = None,
) -> list[tuple["ZooSample", "NetGraph"]]:
    """Up to ``per_family`` ``(sample, batch-1 graph)`` pairs per family, sorted by (family, seed).

    Graphs already in ``store`` (any platform, lowest seeds first) need no export; the rest are
    sampled from seed ``start_seed`` upwards and exported here (a progress bar when ``progress``).
    Samples whose export fails and graphs equal to one already in the pool are left out (a
    warning counts the failures). ``families`` defaults to every registered family. ``onnx_out``,
    when given, receives the weight-free ONNX bytes of every sample exported here, by sample key
    (the kernel adaptation builds runtime graphs from them without exporting again).
    """
    from archcast.frontends.onnx import load_onnx
    from archcast.zoo import FAMILIES, export_sample, get_family, load_builtin_families

    if isinstance(per_family, bool) or not isinstance(per_family, int) or per_family < 1:
        raise InvalidInputError(f"per_family must be an integer >= 1; got {per_family!r}")
    load_builtin_families()
    names = list(families) if families is not None else FAMILIES.names()
    if not names:
        raise InvalidInputError("families is empty; valid: " + ", ".join(FAMILIES.names()))
    fams = [get_family(n) for n in dict.fromkeys(names)]  # unknown names: the error lists the valid ones
    pool: list[tuple["ZooSample", "NetGraph"]] = []
    todo: list["ZooSample"] = []
    for fam in fams:
        stored = _stored_samples(store, fam, per_family) if store is not None else []
        pool += [(s, store.graph(fp)) for s, fp in stored]
        taken, seed = {s.seed for s, _ in stored}, int(start_seed)
        for _ in range(per_family - len(stored)):
            while seed in taken:
                seed += 1
            todo.append(fam.sample(seed))
            seed += 1
    failed = []
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="export pool", unit="model", dynamic_ncols=True)
    for s in todo:
        try:
            data = export_sample(s, batch_size=1, weight_free=True)
            g = load_onnx(data, name=s.key)
        except Exception as e:  # noqa: BLE001 - a family's build may raise anything: leave the sample out
            failed.append(f"{s.key} ({type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]})")
        else:
            g.meta.update(family=s.family, seed=int(s.seed))
            pool.append((s, g))
            if onnx_out is not None:
                onnx_out[s.key] = data
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if failed:
        warnings.warn(f"{len(failed)} pool sample(s) could not be exported and were left out: "
                      + "; ".join(failed[:3]) + (" ..." if len(failed) > 3 else ""), RuntimeWarning, stacklevel=2)
    pool.sort(key=lambda p: (p[0].family, p[0].seed))
    seen, out = set(), []
    for s, g in pool:
        fp = g.fingerprint()
        if fp not in seen:
            seen.add(fp)
            out.append((s, g))
    return out


# --------------------------------------------------------------------------- selection
def _standardised(embeddings: np.ndarray, budget: int) -> tuple[np.ndarray, int]:
    """Checked ``(z-scored embeddings [N, D], budget capped at N)`` (constant dimensions kept)."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise InvalidInputError(f"embeddings must be a non-empty [N, D] array; got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise InvalidInputError("embeddings contain NaN or infinite values")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise InvalidInputError(f"budget must be an integer >= 1; got {budget!r}")
    n = x.shape[0]
    if budget > n:
        warnings.warn(f"budget {budget} exceeds the {n} candidates; selecting all of them", RuntimeWarning,
                      stacklevel=3)
        budget = n
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 1e-12, sd, 1.0), int(budget)


def select_diverse(embeddings: np.ndarray, budget: int, seed: int = 0) -> np.ndarray:
    """Indices of ``budget`` distinct rows of ``embeddings [N, D]`` chosen by greedy k-center.

    Dimensions are standardised first (zero mean, unit variance; constant ones left as they are).
    The first pick is the point nearest the mean, each next one the point farthest from all picked
    so far; ties go to a fixed random order drawn from ``seed``, so the result is deterministic.
    Returns ``min(budget, N)`` indices in selection order (a warning when the pool is smaller).
    """
    z, budget = _standardised(embeddings, budget)
    n = z.shape[0]
    rank = np.random.default_rng(seed).permutation(n)  # tie-break order

    def pick(score: np.ndarray) -> int:
        best = np.flatnonzero(score == score.max())
        return int(best[np.argmin(rank[best])])

    first = pick(-np.einsum("nd,nd->n", z, z))  # nearest the mean (the mean of z is 0)
    chosen = [first]
    dist = np.linalg.norm(z - z[first], axis=1)
    dist[first] = -np.inf
    for _ in range(budget - 1):
        i = pick(dist)
        chosen.append(i)
        dist = np.minimum(dist, np.linalg.norm(z - z[i], axis=1))
        dist[chosen] = -np.inf
    return np.array(chosen, dtype=np.int64)


def select_representative(embeddings: np.ndarray, predicted_ms: np.ndarray, budget: int,
                          seed: int = 0) -> np.ndarray:
    """Indices of ``budget`` rows: the pool sorted by ``predicted_ms`` (log) is cut into ``budget``
    strata of (almost) equal size, and each stratum contributes its medoid, the member with the
    least summed distance to the others in standardised ``embeddings [N, D]`` space. Ties go to a
    fixed random order drawn from ``seed``. Returns ``min(budget, N)`` indices, fastest stratum first.
    """
    lat = np.asarray(predicted_ms, dtype=np.float64).reshape(-1)
    z, budget = _standardised(embeddings, budget)
    n = z.shape[0]
    if lat.shape[0] != n:
        raise InvalidInputError(f"{n} embeddings but {lat.shape[0]} predicted latencies")
    if not (np.all(np.isfinite(lat)) and np.all(lat > 0)):
        raise InvalidInputError("predicted latencies must be finite and > 0")
    rank = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((rank, np.log(lat)))  # by latency, ties by the seeded order
    chosen = []
    for stratum in np.array_split(order, budget):
        d = np.linalg.norm(z[stratum][:, None, :] - z[stratum][None, :, :], axis=-1).sum(1)
        best = np.flatnonzero(d == d.min())
        chosen.append(int(stratum[best[np.argmin(rank[stratum[best]])]]))
    return np.array(chosen, dtype=np.int64)


# --------------------------------------------------------------------------- training

def _check_base(base: Any) -> None:
    from archcast.predictors.latency.archcast import ArchcastLatency

    if not isinstance(base, ArchcastLatency):
        raise InvalidInputError(f"base must be an ArchcastLatency predictor; got {type(base).__name__}")
    if not getattr(base, "members_", None):
        raise NotFittedError("the base predictor is not fitted (no ensemble members); fit or load it first")


def _split_xy(graphs: Sequence["NetGraph"], y_ms: Any, val_frac: float, seed: int) -> tuple:
    graphs = list(graphs)
    y = np.asarray(y_ms, dtype=np.float64).reshape(-1)
    if len(graphs) != y.size:
        raise InvalidInputError(f"{len(graphs)} graphs but {y.size} latencies")
    tr, va = split_budget(len(graphs), val_frac, seed, min_val=MIN_VAL, min_train=MIN_TRAIN)
    return [graphs[i] for i in tr], y[tr], [graphs[i] for i in va], y[va], tr, va


def fine_tune(
    base: "ArchcastLatency",
    graphs: Sequence["NetGraph"],
    y_ms: Any,
    *,
    val_frac: float = 0.2,
    epochs: int | None = None,
    steps: int = FINE_TUNE_STEPS,
    lr: float = FINE_TUNE_LR,
    seed: int = 0,
    progress: bool = False,
) -> "ArchcastLatency":
    """A new predictor for the platform that measured ``y_ms`` (ms, one per graph), started from
    ``base`` (which is left unchanged).

    Hyper-parameters are the base's except ``lr`` and the length: ``steps`` optimiser steps (the
    epochs follow from the number of training batches), or ``epochs`` when given. Each member starts from the
    base member's weights, its output bias shifted by the median of ``log(y / member prediction)``
    on the training part (a uniformly 2x slower platform is then matched before any step). A random
    ``val_frac`` of the graphs (at least 2) chooses the epoch, and whether training beats the
    shifted start at all (if not, the shifted base members are kept). Sets ``val_mape_``,
    ``shift_val_mape_`` (the shifted start's), ``base_val_mape_`` (the unadapted base's) on the
    held-out graphs, ``fine_tuned_`` (False: the shifted start was kept), ``train_idx_``, ``val_idx_``.
    """
    from archcast import metrics
    from archcast.predictors.latency.archcast import ArchcastLatency

    _check_base(base)
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise InvalidInputError(f"epochs must be an integer >= 1; got {epochs!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise InvalidInputError(f"steps must be an integer >= 1; got {steps!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InvalidInputError(f"lr must be a positive number; got {lr!r}")
    gtr, ytr, gva, yva, tr, va = _split_xy(graphs, y_ms, val_frac, seed)
    if epochs is None:
        batches_per_epoch = max(1, math.ceil(len(gtr) / int(base.hp["batch_size"])))
        epochs = max(1, math.ceil(steps / batches_per_epoch))
    model = ArchcastLatency(seed=seed, **{**base.hp, "epochs": int(epochs), "lr": float(lr), "progress": progress})
    model.fit(gtr, ytr, gva, yva, init_from=base)
    start = model.start_members_
    shift_pred = model.predict_members(gva, members=start).mean(axis=0)
    trained = model.predict_members(gva).mean(axis=0)  # may be non-finite when training diverged
    model.val_mape_ = metrics.mape(yva, trained) if np.all(np.isfinite(trained)) else math.inf
    model.shift_val_mape_ = metrics.mape(yva, shift_pred)
    model.fine_tuned_ = model.val_mape_ <= model.shift_val_mape_
    if not model.fine_tuned_:  # training made the held-out graphs worse: keep the shifted start
        model.members_, model.val_mape_ = [net.eval() for net in start], model.shift_val_mape_
    model.base_val_mape_ = metrics.mape(yva, base.predict(gva))
    model.train_idx_, model.val_idx_ = tr, va
    return model


def from_scratch(
    graphs: Sequence["NetGraph"],
    y_ms: Any,
    *,
    val_frac: float = 0.2,
    seed: int = 0,
    template_hparams: dict[str, Any] | None = None,
    progress: bool = False,
) -> "ArchcastLatency":
    """The comparison for :func:`fine_tune`: a predictor trained from random weights on the same
    split (same ``val_frac`` and ``seed``) with ``template_hparams`` (default: the predictor's
    defaults). Sets ``val_mape_``, ``train_idx_``, ``val_idx_``."""
    from archcast import metrics
    from archcast.predictors.latency.archcast import ArchcastLatency

    gtr, ytr, gva, yva, tr, va = _split_xy(graphs, y_ms, val_frac, seed)
    model = ArchcastLatency(seed=seed, **{**(template_hparams or {}), "progress": progress})
    model.fit(gtr, ytr, gva, yva)
    model.val_mape_ = metrics.mape(yva, model.predict(gva))
    model.train_idx_, model.val_idx_ = tr, va
    return model


# --------------------------------------------------------------------------- the whole procedure
@dataclass
class AdaptReport:
    """What :func:`adapt` did.

    Attributes:
        platform: the new platform. base_platform: the name of the one adapted from.
        budget: graphs asked for. pool_size: candidates they were chosen from.
        selected: the chosen zoo samples, in selection order; ``fingerprints`` their graphs.
        latency_ms: measured median latency of each selected sample (``None``: the measurement
            failed; the reason is in ``profile.failures`` or the store).
        profile: the profiling run (``skipped`` = measured before: a resumed run).
        n_train / n_val: measured graphs used to train / to choose the epoch.
        val_mape: the adapted predictor's MAPE on the held-out graphs; shift_val_mape: the base
            shifted by the platform's overall speed ratio; base_val_mape: the unadapted base's.
        fine_tuned: False when training did not beat the shifted base (which was then saved).
        saved_to: the checkpoint directory.
    """

    platform: "Platform"
    base_platform: str
    budget: int
    pool_size: int
    selected: list["ZooSample"]
    fingerprints: list[str]
    latency_ms: list[float | None]
    profile: "ProfileReport"
    n_train: int
    n_val: int
    val_mape: float
    shift_val_mape: float
    base_val_mape: float
    fine_tuned: bool
    saved_to: Path
    history: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "platform": self.platform.to_dict(), "base_platform": self.base_platform, "budget": self.budget,
            "pool_size": self.pool_size,
            "selected": [{"family": s.family, "seed": s.seed, "fingerprint": fp, "latency_ms": y}
                         for s, fp, y in zip(self.selected, self.fingerprints, self.latency_ms)],
            "profiled": {"ok": self.profile.ok, "failed": self.profile.failed, "skipped": self.profile.skipped,
                         "duplicates": self.profile.duplicates, "wall_s": self.profile.wall_s},
            "n_train": self.n_train, "n_val": self.n_val, "val_mape": self.val_mape,
            "shift_val_mape": self.shift_val_mape, "base_val_mape": self.base_val_mape,
            "fine_tuned": self.fine_tuned, "saved_to": str(self.saved_to), "history": self.history,
        }

    def lines(self) -> list[str]:
        measured = [y for y in self.latency_ms if y is not None]
        fams = sorted({s.family for s in self.selected})
        return [
            f"selected {len(self.selected)} of {self.pool_size} candidates ({len(fams)} families: {', '.join(fams)})",
            f"measured on {self.platform.name} ({self.platform.platform_id}): {len(measured)} ok "
            f"({self.profile.skipped} from an earlier run), {len(self.latency_ms) - len(measured)} failed"
            + (f"; {min(measured):.3g}-{max(measured):.3g} ms" if measured else ""),
            f"fine-tuned from {self.base_platform} on {self.n_train} graphs; held-out MAPE on {self.n_val} graphs: "
            f"{self.val_mape:.1%} (base unadapted: {self.base_val_mape:.1%}; base x speed ratio only: "
            f"{self.shift_val_mape:.1%}" + ("" if self.fine_tuned else ", kept: training did not beat it") + ")",
            f"saved {self.saved_to}",
        ]


def _measured_latencies(store: "Store", platform: "Platform", fingerprints: Sequence[str]) -> list[float | None]:
    ok = {r.fingerprint: r.latency_ms_median
          for r in store.measurements(platform=platform, status="ok", batch_size=1)}
    return [ok.get(fp) for fp in fingerprints]


def adapt(
    platform_name: str,
    budget: int = DEFAULT_BUDGET,
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
    epochs: int | None = None,
    steps: int = FINE_TUNE_STEPS,
    lr: float = FINE_TUNE_LR,
    selection: str = "k-center",
    progress: bool = True,
) -> AdaptReport:
    """Make a latency predictor for ``platform_name`` (see the module docstring for the steps).

    ``base_platform``'s predictor (or the checkpoint ``base_dir``) chooses and starts the model;
    ``db`` is the store measurements go to (default: the user's store); ``measure_kw`` the
    measurement protocol (default: the reference data set's, 30 runs / 0.3 s); ``out`` the
    checkpoint directory (default: the platform's user predictor directory, which
    :func:`~archcast.service.checkpoints.load_platform_predictor` then finds).
    """
    from archcast.collect.runner import profile_samples
    from archcast.profile.backend import get_backend
    from archcast.service.checkpoints import (
        available_platforms,
        load_platform_predictor,
        predictor_dir_for,
    )
    from archcast.store.store import Store

    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_BUDGET:
        raise InvalidInputError(f"budget must be an integer >= {MIN_BUDGET} (graphs to measure); got {budget!r}")
    if selection not in SELECTIONS:
        raise InvalidInputError(f"selection {selection!r} is not one of {SELECTIONS}")
    if platform_name == base_platform:
        raise InvalidInputError(
            f"--platform {platform_name!r} is the base platform: its predictor needs no adapting; "
            "name another platform, e.g. ort-cpu-2t or ort-cpu-1t-disable")
    platform = platform_from_name(platform_name)
    get_backend(platform.backend).check_available(platform)  # before minutes of exporting
    out_dir = Path(out) if out is not None else predictor_dir_for(platform_name)
    if measure_kw is None:
        from archcast.data.latency_dataset import DEFAULT_MEASURE_KW

        measure_kw = dict(DEFAULT_MEASURE_KW)
    if base_dir is None and base_platform not in available_platforms():
        raise InvalidInputError(
            f"no latency predictor for the base platform {base_platform!r} to adapt from; platforms with one: "
            f"{', '.join(sorted(available_platforms())) or 'none'} (pick one with --base-platform)")
    base = load_platform_predictor(base_platform, base_dir)
    store = db if isinstance(db, Store) else Store(db)

    pool = candidate_pool(families, pool_per_family, start_seed, store, progress=progress)
    if len(pool) < MIN_VAL + MIN_TRAIN:
        raise ArchcastError(f"only {len(pool)} candidate graphs could be built; need at least {MIN_VAL + MIN_TRAIN}")
    pool_graphs = [g for _, g in pool]
    if selection == "k-center":
        idx = select_diverse(base.embeddings(pool_graphs), budget, seed=seed)
    elif selection == "k-medoids":
        idx = select_representative(base.embeddings(pool_graphs), base.predict(pool_graphs), budget, seed=seed)
    else:  # checked above
        raise AssertionError(selection)
    chosen = [pool[i] for i in idx]
    samples = [s for s, _ in chosen]
    fps = [g.fingerprint() for _, g in chosen]
    prof = profile_samples(samples, store, platform, batch_size=1, workers=workers, progress=progress,
                           measure_kw=measure_kw)
    lat = _measured_latencies(store, platform, fps)
    ok = [i for i, v in enumerate(lat) if v is not None and v > 0]
    if len(ok) < MIN_VAL + MIN_TRAIN:
        reasons = "; ".join(f"{k}: {r}" for k, r in prof.failures[:3]) or "see archcast db export --format csv"
        raise ArchcastError(f"only {len(ok)} of {len(chosen)} selected models were measured on {platform.name}; "
                            f"need at least {MIN_VAL + MIN_TRAIN} ({reasons})")
    if len(ok) < len(chosen):
        warnings.warn(f"{len(chosen) - len(ok)} selected model(s) failed to measure; fine-tuning on {len(ok)}",
                      RuntimeWarning, stacklevel=2)
    model = fine_tune(base, [chosen[i][1] for i in ok], [lat[i] for i in ok], epochs=epochs, steps=steps, lr=lr,
                      seed=seed, progress=progress)

    base_cfg = getattr(base, "checkpoint_config_", {})
    extra: dict[str, Any] = {
        "platform": platform.to_dict(),  # includes platform_id
        "adapted_from": base_platform,
        "adapted_from_platform_id": (base_cfg.get("platform") or {}).get("platform_id"),
        "budget": budget,
        "adapt": {
            "pool_size": len(pool), "pool_per_family": pool_per_family, "start_seed": start_seed, "seed": seed,
            "epochs": epochs, "steps": steps, "lr": lr, "measure_kw": measure_kw, "n_train": int(len(model.train_idx_)),
            "n_val": int(len(model.val_idx_)), "val_mape": model.val_mape_,
            "shift_val_mape": model.shift_val_mape_, "base_val_mape": model.base_val_mape_,
            "fine_tuned": bool(model.fine_tuned_),
            "samples": [{"family": samples[i].family, "seed": samples[i].seed, "fingerprint": fps[i],
                         "latency_ms": lat[i]} for i in ok],
        },
    }
    # The interval scale and the operator list carry over. The OOD reference (reference embeddings
    # and thresholds in the first member's embedding space) carries over only when that space is
    # unchanged (shift kept: the head bias is not part of the embedding); fine-tuned members embed
    # differently, so it is dropped rather than left silently wrong.
    for key in ("interval", "train_ops") + (() if model.fine_tuned_ else ("ood",)):
        if key in base_cfg:
            extra[key] = base_cfg[key]
    tensors = {} if model.fine_tuned_ or "ood" not in base_cfg else dict(getattr(base, "extra_tensors_", {}))
    saved = Path(model.save(out_dir, extra=extra, extra_tensors=tensors))
    return AdaptReport(
        platform=platform, base_platform=base_platform, budget=budget, pool_size=len(pool), selected=samples,
        fingerprints=fps, latency_ms=lat, profile=prof, n_train=int(len(model.train_idx_)),
        n_val=int(len(model.val_idx_)), val_mape=model.val_mape_, shift_val_mape=model.shift_val_mape_,
        base_val_mape=model.base_val_mape_, fine_tuned=bool(model.fine_tuned_), saved_to=saved,
        history=[{"best_epoch": h["best_epoch"], "best_val_mape": h["best_val_mape"]} for h in model.history_])


__all__ = ["AdaptReport", "PLATFORM_NAME_FORMS", "PlatformNameForm", "adapt", "candidate_pool", "fine_tune",
           "from_scratch", "platform_from_name", "select_diverse",
           "select_representative"]
