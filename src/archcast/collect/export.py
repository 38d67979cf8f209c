"""Write a latency data set (the files of :mod:`archcast.data.latency_dataset`) from a store.

:func:`export_latency_dataset` writes format 1 from the current rows of one (platform, batch size);
given the campaign directory of a measurement with passes (:mod:`archcast.collect.passes`) it
writes format 2: labels robust across passes, every pass row, kernel tables and optimised graphs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from archcast.collect.dataset_files import (
    aliases_of,
    family_counts,
    iso_utc,
    platform_info,
    write_csv,
    write_failures,
    write_graphs,
    write_json,
    write_manifest,
)
from archcast.data.latency_dataset import (
    ALIAS_COLUMNS,
    ALIASES_FILE,
    DATA_FILES,
    FLOAT_STATS,
    FORMAT,
    MEASUREMENT_COLUMNS,
    MEASUREMENTS_FILE,
    MODEL_COLUMNS,
    MODELS_FILE,
    PLATFORM_FILE,
    SIG_DIGITS,
    model_order,
    num_cell,
)
from archcast.errors import InvalidInputError

if TYPE_CHECKING:
    from archcast.profile.platform import Platform
    from archcast.store.store import Store


# ---------------------------------------------------------------------------- export
def export_latency_dataset(store: Store, out_dir: str | Path, platform: str | Platform, batch_size: int = 1, *,
                           measure_kw: dict[str, Any] | None = None, progress: bool = False,
                           campaign: str | Path | None = None, label_stat: str | None = None,
                           normalise: bool | None = None) -> Path:
    """Write the measurements of ``platform`` (id, unique name or Platform) at ``batch_size`` as a
    latency data set directory (see :mod:`archcast.data.latency_dataset`). Returns the directory.

    Without ``campaign``: format 1 from the current rows. ``measure_kw`` is the protocol the store
    was measured with (``min_runs``, ``min_time_s``...); the store does not keep it, so it is
    recorded in the manifest only when given (the retest reuses it). A graph measured under several
    seeds appears once (under the seed the store kept); its other seeds are listed in
    ``aliases.csv``. Files from an earlier export are replaced; derived files (retest, datasheet)
    are left alone.

    With ``campaign`` (the directory of :func:`archcast.collect.passes.collect_samples`): format 2,
    see :func:`archcast.collect.export_campaign.export_campaign`; ``label_stat`` and ``normalise``
    default to the campaign's protocol.

    Raises:
        StoreError: unknown platform, no current ``ok`` measurement, or a graph without its IR.
    """
    from archcast._version import __version__
    from archcast.store.errors import StoreError

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    pid = store.resolve_platform(platform)
    if campaign is not None:
        from archcast.collect.export_campaign import export_campaign

        return export_campaign(store, Path(out_dir), pid, batch_size, Path(campaign), label_stat=label_stat,
                               normalise=normalise, progress=progress)
    recs = [r for r in store.measurements(pid, batch_size=batch_size) if r.role != "canary"]
    ok = sorted((r for r in recs if r.status == "ok"), key=lambda r: model_order(r.family, r.seed, r.fingerprint))
    failed = sorted((r for r in recs if r.status != "ok"), key=lambda r: model_order(r.family, r.seed, r.fingerprint))
    if not ok:
        raise StoreError(f"database {store.location} has no current ok measurement on platform {pid} at batch size "
                         f"{batch_size}; nothing to export")
    missing = [r.fingerprint for r in ok if r.latency_ms_median is None]
    if missing:
        raise StoreError(f"{len(missing)} ok measurements have no median latency (first: {missing[0]})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    info = platform_info(store, pid)
    aliases = aliases_of(store, {r.fingerprint for r in ok})
    write_json(out / PLATFORM_FILE, info)
    write_csv(out / MODELS_FILE, MODEL_COLUMNS, (
        (r.fingerprint, r.family or "", r.seed, r.generator_version, r.generator_config, r.n_nodes, r.flops, r.params,
         r.memory_bytes) for r in ok))
    write_csv(out / MEASUREMENTS_FILE, MEASUREMENT_COLUMNS, (
        (r.fingerprint, r.family or "", r.seed, r.batch_size, *(num_cell(getattr(r, k)) for k in FLOAT_STATS),
         r.n_runs, r.warmup_runs, iso_utc(r.measured_at), r.host) for r in ok))
    write_failures(out, failed)
    write_csv(out / ALIASES_FILE, ALIAS_COLUMNS, aliases)
    write_graphs(store, out, [r.fingerprint for r in ok], progress)
    write_manifest(out, DATA_FILES, {
        "format": FORMAT, "format_version": 1, "archcast_version": __version__,
        "platform_id": pid, "platform_name": info["name"], "batch_size": batch_size,
        "latency_stat": "latency_ms_median", "time_zone": "UTC", "float_significant_digits": SIG_DIGITS,
        "measure_kw": dict(measure_kw) if measure_kw else None,
        "counts": {"models": len(ok), "failures": len(failed), "aliases": len(aliases)},
        "families": family_counts(ok),
    })
    return out


__all__ = ["export_latency_dataset"]
