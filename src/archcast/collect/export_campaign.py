"""Format 2 of the latency data set from a measurement campaign (passes, canaries, kernels).

:func:`export_campaign` reads the campaign's rows from the store (every pass, canary rows and rows
superseded by a re-measure) and its journal (kernel tables, optimised graphs), computes each
model's label (:mod:`archcast.collect.labels`: the median over the label passes of the chosen
statistic, canary-normalised unless told otherwise) and writes the files listed in
:mod:`archcast.data.latency_dataset`. Retest passes are written to ``passes.csv.xz`` but never
enter a label.
"""

from __future__ import annotations

import json
import lzma
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archcast.collect.dataset_files import (
    XZ_PRESET,
    aliases_of,
    family_counts,
    iso_utc,
    platform_info,
    replace_file,
    write_csv,
    write_failures,
    write_graphs,
    write_json,
    write_manifest,
)
from archcast.collect.journal import Journal
from archcast.collect.labels import (
    CANARY,
    LABEL_STATS,
    PassRow,
    SpeedIndex,
    labels,
    mark_superseded,
    pass_values,
)
from archcast.collect.passes import row_of
from archcast.data.latency_dataset import (
    ALIAS_COLUMNS,
    ALIASES_FILE,
    DATA_FILES_V2,
    FLOAT_STATS,
    FORMAT,
    KERNEL_COLUMNS,
    KERNELS_FILE,
    MEASUREMENT_COLUMNS,
    MEASUREMENT_COLUMNS_V2,
    MEASUREMENTS_FILE,
    MODEL_COLUMNS,
    MODELS_FILE,
    OPTIMIZED_GRAPHS_FILE,
    PASS_COLUMNS,
    PASSES_FILE,
    PLATFORM_FILE,
    SIG_DIGITS,
    model_order,
    num_cell,
)
from archcast.errors import InvalidInputError

if TYPE_CHECKING:
    from archcast.store.store import MeasurementRecord, Store

_LABEL_PASS = re.compile(r"/p(\d+)$")


def label_passes(pass_ids: set[str], name: str) -> list[str]:
    """The campaign's label passes (``<name>/p<k>``) in k order; retests excluded."""
    found = [(int(m.group(1)), p) for p in pass_ids if p.startswith(name + "/") and (m := _LABEL_PASS.search(p))]
    return [p for _, p in sorted(found)]


def export_campaign(store: Store, out: Path, pid: str, batch_size: int, campaign: Path, *,
                    label_stat: str | None = None, normalise: bool | None = None, progress: bool = False) -> Path:
    """Write format 2 (see the module docstring) into ``out``; returns ``out``."""
    from archcast._version import __version__
    from archcast.store.errors import StoreError

    journal = Journal(campaign)
    settings = journal.settings()
    if settings is None:
        raise InvalidInputError(f"{campaign} is not a campaign directory (no campaign.json)")
    name, protocol = settings["name"], settings["protocol"]
    stat = label_stat or protocol.get("label_stat", "cpu_ms_min")
    if stat not in LABEL_STATS:
        raise InvalidInputError(f"label statistic {stat!r}; valid: {', '.join(LABEL_STATS)}")
    norm = protocol.get("normalise", True) if normalise is None else normalise
    recs = [r for r in store.measurements(pid, current_only=False)
            if r.pass_id and r.pass_id.startswith(name + "/") and (r.role == CANARY or r.batch_size == batch_size)]
    by_id = {r.id: r for r in recs}
    rows = mark_superseded([row_of(r) for r in recs])
    passes = label_passes({r.pass_id for r in rows}, name)
    if not passes:
        raise StoreError(f"database {store.location} has no rows of campaign {name!r} on platform {pid}")
    speed = _speed(rows, stat) if norm else None
    vals = pass_values(rows, stat, speed, passes=passes)
    labs = labels(vals)
    accepted = _accepted(rows, passes)
    first = {fp: by_id[r.row_id] for (fp, p), r in accepted.items() if p == passes[0]}
    ok = sorted((first[fp] for fp in labs if fp in first), key=lambda r: model_order(r.family, r.seed, r.fingerprint))
    if not ok:
        raise StoreError(f"campaign {name!r} has no model measured ok in {passes[0]} at batch size {batch_size} "
                         "(a campaign measured at another batch size needs --batch-size)")
    failed = sorted((by_id[r.row_id] for r in rows if r.role != CANARY and r.pass_id == passes[0] and
                     r.status != "ok" and not r.superseded and r.fingerprint not in labs),
                    key=lambda r: model_order(r.family, r.seed, r.fingerprint))
    out.mkdir(parents=True, exist_ok=True)
    kern, opt = journal.kernels(), journal.optimized()

    info = platform_info(store, pid)
    write_json(out / PLATFORM_FILE, info)
    aliases = aliases_of(store, {r.fingerprint for r in ok})
    write_csv(out / MODELS_FILE, MODEL_COLUMNS, (
        (r.fingerprint, r.family or "", r.seed, r.generator_version, r.generator_config, r.n_nodes, r.flops, r.params,
         r.memory_bytes) for r in ok))
    covered = 0
    meas = []
    for r in ok:
        mine = [by_id[accepted[(r.fingerprint, p)].row_id] for p in passes if (r.fingerprint, p) in accepted
                and accepted[(r.fingerprint, p)].status == "ok"]
        label, spread, n = labs[r.fingerprint]
        cov = [_coverage(kern.get((r.fingerprint, m.pass_id))) for m in mine]
        cov = [c for c in cov if c is not None]
        ks = [_kernel_sum_ms(kern.get((r.fingerprint, m.pass_id))) for m in mine]
        covered += bool(cov)
        line = kern.get((r.fingerprint, passes[0]))
        idx = [speed.at(accepted[(r.fingerprint, m.pass_id)].measured_at, m.host or "") for m in mine] if speed else \
            [m.speed_index for m in mine if m.speed_index is not None]
        meas.append((r.fingerprint, r.family or "", r.seed, r.batch_size,
                     *(num_cell(_med(getattr(m, k) for m in mine)) for k in FLOAT_STATS),
                     _int_med(m.n_runs for m in mine), _int_med(m.warmup_runs for m in mine), iso_utc(r.measured_at),
                     r.host, num_cell(label), num_cell(spread), n, num_cell(_med(m.cpu_ms_min for m in mine)),
                     num_cell(_med(m.cpu_ms_median for m in mine)), num_cell(_med(idx)),
                     num_cell(_med(cov)), num_cell(_med(ks)), len(line["kernels"]) if line else ""))
    write_csv(out / MEASUREMENTS_FILE, MEASUREMENT_COLUMNS + MEASUREMENT_COLUMNS_V2, meas)
    write_failures(out, failed)
    write_csv(out / ALIASES_FILE, ALIAS_COLUMNS, aliases)
    write_graphs(store, out, [r.fingerprint for r in ok], progress)
    _write_passes(out, rows, by_id, kern)
    write_csv(out / KERNELS_FILE, KERNEL_COLUMNS, (
        (r.fingerprint, p, k[0], k[1], num_cell(float(k[2])), num_cell(float(k[3])) if len(k) > 3 else "")
        for r in ok for p in sorted({q for (fp, q) in kern if fp == r.fingerprint}, key=_pass_order)
        for k in kern[(r.fingerprint, p)]["kernels"]), xz=True)
    n_opt = _write_optimized(out, [r.fingerprint for r in ok], opt)

    hosts = sorted({r.host for r in rows})
    machines = []
    for h in hosts:
        pts = [i for _, i in speed.checkpoints(h)] if speed is not None and h in speed.hosts() else []
        machines.append({"host": h, "rows": sum(1 for r in rows if r.host == h),
                         "speed_index_median": float(np.median(pts)) if pts else None,
                         "speed_index_min": min(pts) if pts else None, "speed_index_max": max(pts) if pts else None})
    write_manifest(out, DATA_FILES_V2, {
        "format": FORMAT, "format_version": 2, "archcast_version": __version__,
        "platform_id": pid, "platform_name": info["name"], "batch_size": batch_size,
        "latency_stat": "label_ms", "time_zone": "UTC", "float_significant_digits": SIG_DIGITS,
        "measure_kw": protocol.get("measure_kw"), "protocol": protocol, "campaign": name,
        "label": {"stat": stat, "canary_normalised": bool(norm and speed is not None), "passes": passes,
                  "aggregate": "median over passes", "spread": "(max - min) / label over passes",
                  "reference_host": speed.reference_host if speed else None,
                  "reference_canary_ms": speed.reference_ms if speed else None},
        "canaries": settings.get("canaries"), "machines": machines,
        "retest_passes": sorted({r.pass_id for r in rows if r.pass_id.startswith(name + "/retest")}),
        "counts": {"models": len(ok), "failures": len(failed), "aliases": len(aliases),
                   "with_kernels": covered, "with_optimized_graph": n_opt,
                   "rows": sum(1 for r in rows if r.role != CANARY), "canary_rows": sum(1 for r in rows if r.role == CANARY),
                   "superseded_rows": sum(1 for r in rows if r.superseded)},
        "families": family_counts(ok),
        "exported_at": None,  # kept None: the files must not change when nothing was measured
    })
    return out


# ---------------------------------------------------------------------------- pieces
def _speed(rows: list[PassRow], stat: str) -> SpeedIndex | None:
    canaries = [r for r in rows if r.role == CANARY]
    try:
        return SpeedIndex(canaries, stat) if canaries else None
    except InvalidInputError:
        return None


def _accepted(rows: list[PassRow], passes: list[str]) -> dict[tuple[str, str], PassRow]:
    return {(r.fingerprint, r.pass_id): r for r in rows
            if r.role != CANARY and r.pass_id in passes and not r.superseded}


def _med(values: Any) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.median(v)) if v else None


def _int_med(values: Any) -> int | str:
    m = _med(values)
    return "" if m is None else round(m)


def _coverage(line: dict[str, Any] | None) -> float | None:
    if not line or not line.get("run_us"):
        return None
    return sum(float(k[2]) for k in line["kernels"]) / float(line["run_us"])


def _kernel_sum_ms(line: dict[str, Any] | None) -> float | None:
    return sum(float(k[2]) for k in line["kernels"]) / 1000.0 if line else None


def _pass_order(pass_id: str) -> tuple[int, str]:
    m = _LABEL_PASS.search(pass_id)
    return (int(m.group(1)), pass_id) if m else (10 ** 6, pass_id)


def _write_passes(out: Path, rows: list[PassRow], by_id: dict[int, MeasurementRecord],
                  kern: dict[tuple[str, str], dict[str, Any]]) -> None:
    def cells(r: PassRow) -> tuple[Any, ...]:
        m = by_id[r.row_id]
        line = kern.get((r.fingerprint, r.pass_id)) if r.role != CANARY and not r.superseded else None
        ksum = sum(float(k[2]) for k in line["kernels"]) if line else None
        return (r.row_id, r.fingerprint, r.role, r.pass_id, r.status, num_cell(m.latency_ms_min),
                num_cell(m.latency_ms_median), num_cell(m.latency_cv), num_cell(m.cpu_ms_min),
                num_cell(m.cpu_ms_median), num_cell(m.cpu_cv), m.n_runs, num_cell(m.speed_index),
                num_cell(ksum), num_cell(float(line["run_us"])) if line else "", len(line["kernels"]) if line else "",
                _iso_ms(r.measured_at), r.host, int(r.superseded))

    write_csv(out / PASSES_FILE, PASS_COLUMNS, (cells(r) for r in sorted(rows, key=lambda r: r.row_id)), xz=True)


def _iso_ms(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def _write_optimized(out: Path, order: list[str], opt: dict[str, dict[str, Any]]) -> int:
    tmp = out / (OPTIMIZED_GRAPHS_FILE + ".tmp")
    n = 0
    with lzma.open(tmp, "wt", encoding="utf-8", preset=XZ_PRESET) as xz:
        for fp in order:
            ir = (opt.get(fp) or {}).get("ir")
            if ir is not None and "\n" in ir:
                ir = json.dumps(json.loads(ir), separators=(",", ":"))
            xz.write((ir if ir is not None else "null") + "\n")
            n += ir is not None
    replace_file(tmp, out / OPTIMIZED_GRAPHS_FILE)
    return n


__all__ = ["export_campaign", "label_passes"]
