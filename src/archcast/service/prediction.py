"""What a latency prediction is and where its measured twin comes from, shared by the
network-level path (:mod:`archcast.service.predict`) and the kernel-level one
(:mod:`archcast.service.kernel_predict`): :class:`LatencyPrediction`, the interval rule, the
checkpoint's platform, and the measurement-store lookup (query-or-predict).

Nothing here imports torch, onnx or SQLAlchemy at import time.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from archcast.errors import ArchcastError, CheckpointError, InvalidInputError

DEFAULT_LEVEL = 0.9
DEFAULT_K = 1.645  # two-sided 90 % of a normal in log space
DEFAULT_FLOOR = 0.0
DEFAULT_STORE = "default"  # store= value: $ARCHCAST_DB or the per-user database, skipped if absent



@dataclass
class LatencyPrediction:
    """A latency prediction for one graph on one platform (milliseconds throughout).

    ``operators`` lists every node in token order as ``{"index", "name", "op_type", "ms",
    "share"}`` (``index`` into ``graph.nodes``; ``ms`` the ensemble mean, summing to
    ``latency_ms``). ``measured`` is None or ``{"latency_ms" (median), "min_ms", "measured_at",
    "n_runs"}`` from the store. ``unknown_share`` is the share of nodes whose op type is outside
    the tokenizer vocabulary. ``ood_distance`` is the graph's distance to the nearest training
    embedding (``predictor="kernels"``: its mean distance to the 5 nearest training models in
    kernel mix and size, :mod:`archcast.predictors.latency.far`), ``ood_threshold`` the distance
    above which it is warned of (both None without a reference in the checkpoint).
    ``kernel_profile`` is None or the store's measured kernel profile of this graph
    (:meth:`archcast.store.Store.kernel_profile`):
    ``{"kernels": [[kernel, op type, ms], ...] (slowest first), "kernel_sum_ms", "coverage",
    "pass_id", "n_passes", "source", "measured_at"}``.
    """

    latency_ms: float
    low_ms: float
    high_ms: float
    level: float
    members_ms: list[float]
    platform: str
    platform_id: str | None
    operators: list[dict[str, Any]]
    by_op_type: dict[str, float]
    unknown_ops: dict[str, int]
    unknown_share: float
    warnings: list[str]
    measured: dict[str, Any] | None
    graph: dict[str, Any]
    predict_s: float
    ood_distance: float | None = None
    ood_threshold: float | None = None
    predictor: str = "archcast"  # "kernels": operators are the runtime's kernels (each with "origin")
    kernel_profile: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy (plain floats, ints, strings, lists and dicts)."""
        return asdict(self)


# ------------------------------------------------------------------------------ interval
def interval_half_width(members_ms: Sequence[float] | np.ndarray, k: float = DEFAULT_K,
                        floor: float = DEFAULT_FLOOR) -> float:
    """``h`` (log space) of the interval ``point * exp(±h)``: ``sqrt((k*sigma)**2 + floor**2)``
    with ``sigma = std(log(members_ms))`` over members (ddof 0; 0 for a single member)."""
    logs = np.log(np.asarray(members_ms, dtype=np.float64))
    sigma = float(logs.std()) if logs.size > 1 else 0.0
    return math.hypot(k * sigma, floor)


def _interval_config(cfg: Mapping[str, Any], where: str) -> tuple[float, float, float]:
    iv = cfg.get("interval") or {}
    level, k, floor = (float(iv.get("level", DEFAULT_LEVEL)), float(iv.get("k", DEFAULT_K)),
                       float(iv.get("floor", DEFAULT_FLOOR)))
    if not (0.0 < level < 1.0 and k >= 0.0 and floor >= 0.0):
        raise CheckpointError(f"checkpoint {where}: interval needs 0 < level < 1, k >= 0, floor >= 0; "
                              f"got level={level}, k={k}, floor={floor}")
    return level, k, floor



def _platform_of(cfg: Mapping[str, Any], requested: str | None, fallback: str | None) -> tuple[str, str | None]:
    """``(platform name, platform id or None)``; refuses a predictor trained for another platform."""
    p = cfg.get("platform") or {}
    name = p.get("name")
    if requested is not None and name is not None and name != requested:
        raise InvalidInputError(f"the predictor was trained for platform {name!r}, not {requested!r}; "
                                f"drop --platform or pick the predictor of {requested!r}")
    pid = p.get("platform_id")
    if pid is None and name:
        from archcast.profile.platform import Platform

        try:
            pid = Platform.from_dict(p).platform_id
        except ArchcastError:
            pid = None
    return name or fallback or "unknown", pid



_CACHE_SIZE = 4
_loaded: dict[tuple[str, int], Any] = {}  # (directory, config.json mtime) -> predictor; filled on use


def cached_load(directory: Path, load: Callable[[Path], Any]) -> Any:
    """``load(directory)``, kept for the next call (a few, keyed by directory and config.json mtime,
    so repeated predictions do not reload weights); a malformed config or weights file is a
    one-line :class:`CheckpointError`."""
    key = (str(directory), (directory / "config.json").stat().st_mtime_ns)
    pred = _loaded.get(key)
    if pred is None:
        try:
            pred = load(directory)
        except ArchcastError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError) as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise CheckpointError(f"checkpoint {str(directory)!r} cannot be loaded: {type(e).__name__}: {first}") from None
        pred.checkpoint_dir_ = str(directory)
        if len(_loaded) >= _CACHE_SIZE:
            _loaded.pop(next(iter(_loaded)))
        _loaded[key] = pred
    return pred


# ------------------------------------------------------------------------------ store
def _default_store_location() -> str:
    # the rule of archcast.store.default_url, without importing SQLAlchemy (a parity test checks)
    env = os.environ.get("ARCHCAST_DB")
    if env:
        return env
    import platformdirs

    return str(Path(platformdirs.user_data_dir("archcast")) / "archcast.db")


def _sqlite_file(location: str) -> Path | None:
    """The SQLite file a location names (None: not SQLite or in memory)."""
    if "://" not in location:
        return Path(location).expanduser()
    if not location.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    db = make_url(location).database
    return Path(db).expanduser() if db and db != ":memory:" else None


def _open_store(store: Any) -> tuple[Any, bool]:
    """``(Store or None, whether we opened it)``. Never creates a database file: an absent
    default store is skipped; an absent explicit one is an error."""
    if store is None or store is False:
        return None, False
    if not isinstance(store, (str, Path)):
        return store, False  # a Store
    default = isinstance(store, str) and store == DEFAULT_STORE
    location = _default_store_location() if default else str(store)
    f = _sqlite_file(location)
    if f is not None and not f.is_file():
        if default:
            return None, False
        raise InvalidInputError(f"database {location!r} does not exist (give an existing store with --db, "
                                "or --no-store)")
    from archcast.store import Store

    return Store(location, create=False), True


def _store_lookup(store: Any, fingerprint: str, platform_id: str | None, batch_size: int,
                  warnings: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """``(measured, kernel_profile)`` of :class:`LatencyPrediction`, from one opening of the store."""
    if store is None or platform_id is None:
        return None, None
    st, owned = None, False
    try:
        st, owned = _open_store(store)
        if st is None:
            return None, None
        rec = st.current_measurement(fingerprint, platform_id, batch_size)
        prof = st.kernel_profile(fingerprint, platform_id, batch_size)
    except ArchcastError as e:  # a StoreError: the default store may be unreadable; a prediction still helps
        if not (isinstance(store, str) and store == DEFAULT_STORE) or isinstance(e, InvalidInputError):
            raise
        warnings.append(f"measurement store not read: {e}")
        return None, None
    finally:
        if owned and st is not None:
            st.close()
    measured = None
    if rec is not None and rec.latency_ms_median is not None:
        measured = {"latency_ms": float(rec.latency_ms_median),
                    "min_ms": None if rec.latency_ms_min is None else float(rec.latency_ms_min),
                    "measured_at": rec.measured_at.isoformat(), "n_runs": rec.n_runs}
    profile = None
    if prof is not None:
        profile = {"kernels": [[k.kernel, k.op_type, k.kernel_us / 1000.0] for k in prof.kernels],
                   "kernel_sum_ms": prof.kernel_sum_us / 1000.0, "coverage": prof.coverage, "pass_id": prof.pass_id,
                   "n_passes": prof.n_passes, "source": prof.source, "measured_at": prof.measured_at.isoformat()}
    return measured, profile


__all__ = ["DEFAULT_FLOOR", "DEFAULT_K", "DEFAULT_LEVEL", "DEFAULT_STORE", "LatencyPrediction", "interval_half_width"]
