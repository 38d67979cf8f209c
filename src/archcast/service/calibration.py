"""This machine's speed against the machine a predictor's labels came from (``archcast calibrate``).

VMs of one platform differ: every one here reports "AMD EPYC", yet the machine of data set v2 ran
1.8x slower than the machines measured since (``docs/data.md``). A predictor trained on v2 then
over-predicts by 1.8x here. The canaries (:mod:`archcast.collect.canaries`: five fixed small
networks) measure that factor in seconds: the checkpoint records the reference canary times of its
training labels (``reference_canary_ms``: per canary, the median per-pass CPU minimum on the
label's reference machine), :func:`calibrate` measures the canaries here and stores the geometric
mean ratio (``<data dir>/calibration/<platform id>.json``), and ``archcast predict`` multiplies
every time by it (:func:`apply_calibration`), saying so in the output.

Measured (v2 -> the VM of ``datasets/ort-cpu-1t-v2-rt1``, 200 held-out models, ``kernels`` trained
on v2 without them; `archcast bench adapt-kernels`): unadapted MAPE 83.7 %, canary-calibrated 12.3 %, the best one global
scale (the oracle) 11.3 %, 20 measured models with ``KernelLatency.adapt`` 11.6 %.
"""

from __future__ import annotations

import json
import math
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Mapping

from archcast.errors import InvalidInputError

CALIBRATION_ENV = "ARCHCAST_CALIBRATION_DIR"
FORMAT = "archcast-calibration"
STAT = "cpu_ms_min"
ROUNDS = 3  # checkpoints of all canaries; a canary's time is its median over rounds of the per-round minimum
CANARY_KW = {"min_runs": 20, "min_time_s": 0.15, "warmup_runs": 5, "warmup_s": 0.05}  # as the campaigns


def calibration_dir() -> Path:
    """``$ARCHCAST_CALIBRATION_DIR`` or the per-user data directory's ``calibration``."""
    env = os.environ.get(CALIBRATION_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("archcast")) / "calibration"


def calibration_path(platform_id: str) -> Path:
    return calibration_dir() / f"{platform_id}.json"


def reference_of(cfg: Mapping[str, Any]) -> dict[str, float] | None:
    """The checkpoint config's reference canary times ``{canary name: ms}``, None if it has none."""
    ref = cfg.get("reference_canary_ms")
    if not isinstance(ref, Mapping) or not ref:
        return None
    out = {str(k): float(v) for k, v in ref.items() if isinstance(v, (int, float)) and math.isfinite(v) and v > 0}
    return out or None


def measure_canaries(platform: Any, rounds: int = ROUNDS, progress: bool = False) -> dict[str, float]:
    """``{canary name: ms}`` on this machine: per canary the median over ``rounds`` of the per-round
    thread-CPU minimum (rounds interleave the canaries, as a campaign's checkpoints do)."""
    from archcast.collect.canaries import CANARY_NAMES, canary_onnx
    from archcast.profile.backend import get_backend

    backend = get_backend(platform.backend)
    backend.check_available(platform)
    data = {n: canary_onnx(n) for n in CANARY_NAMES}
    times: dict[str, list[float]] = {n: [] for n in CANARY_NAMES}
    for r in range(rounds):
        for n, b in data.items():
            m = backend.measure(b, platform, 1, name=f"canary/{n}", **CANARY_KW)
            v = getattr(m, STAT, None)
            if v is None or not v > 0:
                v = m.latency_ms_min  # platforms without thread CPU time (more than one thread)
            times[n].append(float(v))
        if progress:
            print(f"canaries: round {r + 1}/{rounds}", flush=True)
    return {n: float(sorted(v)[len(v) // 2]) for n, v in times.items()}


def speed_factor(local_ms: Mapping[str, float], reference_ms: Mapping[str, float]) -> tuple[float, dict[str, float]]:
    """``(geometric-mean ratio local/reference over the shared canaries, per-canary ratios)``."""
    ratios = {n: local_ms[n] / reference_ms[n] for n in sorted(set(local_ms) & set(reference_ms))
              if local_ms[n] > 0 and reference_ms[n] > 0}
    if not ratios:
        raise InvalidInputError("the checkpoint's reference canaries and the measured ones have no canary in common")
    return math.exp(sum(math.log(v) for v in ratios.values()) / len(ratios)), ratios


def other_cpu_of(cfg: Mapping[str, Any] | None) -> str | None:
    """The CPU model a checkpoint config's platform was measured on when it is not this machine's
    (another platform: kernel types scale differently between CPU models), else None."""
    from archcast.profile.machine import cpu_model

    device = ((cfg or {}).get("platform") or {}).get("device")
    return device if device and device != cpu_model() else None


def calibrate(platform: Any, checkpoint_dir: str | Path, *, rounds: int = ROUNDS, progress: bool = False,
              other_cpu: bool = False) -> dict[str, Any]:
    """Measure the canaries here against the checkpoint's reference; save and return the calibration.

    ``platform`` is the checkpoint's. On a machine whose CPU model is not the platform's device
    (another platform: kernel types scale differently between CPU models) this refuses unless
    ``other_cpu``: then the canaries are measured on this machine's own platform of the same
    threads and optimisation level, and the calibration says which CPU it bridges to."""
    from archcast.profile.machine import cpu_model, host_name

    cfg_path = Path(checkpoint_dir) / "config.json"
    try:
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InvalidInputError(f"cannot read the predictor's config {cfg_path}: {e}") from None
    ref = reference_of(cfg)
    if ref is None:
        raise InvalidInputError(f"predictor {checkpoint_dir} records no reference canary times "
                                "(reference_canary_ms): it cannot be calibrated to this machine")
    here, device = cpu_model(), getattr(platform, "device", None)
    measure_on, cross = platform, None
    if other_cpu_of({"platform": {"device": device}}):
        if not other_cpu:
            raise InvalidInputError(
                f"this machine's CPU {here!r} is not the predictor's platform ({device!r}): it is another platform, "
                "where kernel types scale differently; archcast calibrate --other-cpu scales by the canaries anyway "
                "(docs/data.md measures the error that leaves)")
        from archcast.profile.platform import default_platform

        measure_on = default_platform(threads=platform.threads, graph_opt_level=platform.graph_opt_level)
        cross = {"from": device, "to": here, "measured_platform_id": measure_on.platform_id}
    t0 = time.perf_counter()
    local = measure_canaries(measure_on, rounds, progress)
    factor, ratios = speed_factor(local, ref)
    out = {"format": FORMAT, "format_version": 1, "platform": platform.name, "platform_id": platform.platform_id,
           **({"other_cpu": cross} if cross else {}),
           "factor": factor, "per_canary": ratios, "canary_ms": local, "reference_canary_ms": ref, "stat": STAT,
           "host": host_name(), "checkpoint": str(checkpoint_dir),
           "reference": cfg.get("trained_on", {}).get("dataset") if isinstance(cfg.get("trained_on"), dict) else None,
           "measured_at": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
           "wall_s": round(time.perf_counter() - t0, 2)}
    path = calibration_path(platform.platform_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    out["path"] = str(path)
    return out


def load_calibration(platform_id: str | None) -> dict[str, Any] | None:
    """The saved calibration of ``platform_id``; None when there is none. A damaged file is an error
    (it names the file and how to redo it), not a silent 1.0."""
    if not platform_id:
        return None
    path = calibration_path(platform_id)
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        factor = float(d["factor"])
        if d.get("format") != FORMAT or not (math.isfinite(factor) and 0.05 < factor < 20):
            raise ValueError("not a calibration, or a factor outside 0.05-20")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InvalidInputError(f"calibration file {path} is damaged ({e}); run archcast calibrate again "
                                "or delete it") from None
    d["path"] = str(path)
    return d


def apply_calibration(pred: Any, cal: Mapping[str, Any]) -> Any:
    """``pred`` (a LatencyPrediction) with every predicted time multiplied by the calibration's
    factor and a warning saying so; a measured latency from the store is left as measured."""
    f = float(cal["factor"])
    pred.latency_ms *= f
    pred.low_ms *= f
    pred.high_ms *= f
    pred.members_ms = [m * f for m in pred.members_ms]
    for o in pred.operators:
        o["ms"] = o["ms"] * f
    pred.by_op_type = {k: v * f for k, v in pred.by_op_type.items()}
    cross = cal.get("other_cpu") if isinstance(cal.get("other_cpu"), dict) else None
    across = f" across CPU models ({cross.get('from')} -> {cross.get('to')}: expect a larger error)" if cross else ""
    pred.warnings.append(f"times scaled x{f:.3f} to this machine by its canaries{across} (archcast calibrate, "
                         f"{cal.get('measured_at', '?')}); archcast predict --no-calibration for the reference machine")
    return pred




def reference_from_dataset(ds: Any) -> dict[str, float] | None:
    """``{canary name: ms}`` of a format-2 data set's labels: per canary the median thread-CPU minimum
    on the label's reference host (the data set's machine for raw labels). None without canaries."""
    from archcast.collect.labels import CANARY, SpeedIndex, rows_from_table

    if getattr(ds, "format_version", 1) < 2:
        return None
    names = {fp: n for n, fp in (ds.manifest.get("canaries") or {}).items()}
    rows = [r for r in rows_from_table(ds.passes()) if r.role == CANARY]
    if not rows or not names:
        return None
    host = (ds.manifest.get("label") or {}).get("reference_host")
    try:
        sp = SpeedIndex(rows, STAT, reference_host=host)
    except InvalidInputError:
        return None
    return {names[fp]: ms for fp, ms in sorted(sp.reference_ms.items()) if fp in names} or None


__all__ = ["apply_calibration", "calibrate", "calibration_dir", "calibration_path", "load_calibration",
           "measure_canaries", "reference_from_dataset", "reference_of", "speed_factor"]
