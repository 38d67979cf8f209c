"""Writing the files of a latency data set: atomic CSV/JSON (optionally xz), the shared tables.

Used by both exports (:mod:`archcast.collect.export`: format 1, :mod:`archcast.collect.export_campaign`:
format 2) and the retest. Every file is written to a ``.tmp`` sibling and renamed, so a reader never
sees half a file.
"""

from __future__ import annotations

import csv
import json
import lzma
import os
import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archcast.data.latency_dataset import (
    FAILURE_COLUMNS,
    FAILURES_FILE,
    GRAPHS_FILE,
    MANIFEST_FILE,
    files_fingerprint,
    model_order,
    sha256_file,
)

if TYPE_CHECKING:
    from archcast.store.store import Store

XZ_PRESET = 9 | lzma.PRESET_EXTREME  # corpus-wide: ~0.75 KB per graph
_CHUNK = 500  # graphs read from the store per query


def iso_utc(t: datetime | None) -> str:
    """A store time (naive UTC) as the files write it: ISO 8601 seconds + ``Z``."""
    return "" if t is None else t.replace(microsecond=0).isoformat() + "Z"  # the store keeps naive UTC


def replace_file(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)  # a reader never sees half a file


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, xz: bool = False) -> None:
    """Write a CSV file atomically (a reader never sees half a file); ``xz`` compresses it
    reproducibly (no time stamp in the container)."""
    tmp = path.with_name(path.name + ".tmp")
    with (lzma.open(tmp, "wt", encoding="utf-8", newline="", preset=6) if xz else
          open(tmp, "w", newline="", encoding="utf-8")) as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
    replace_file(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Write sorted, indented JSON atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    replace_file(tmp, path)


def platform_info(store: Store, pid: str) -> dict[str, Any]:
    from archcast.store.schema import PlatformRow

    with store._tx("reading the platform", write=False) as s:
        prow = s.get(PlatformRow, pid)
        info = {c.name: getattr(prow, c.name) for c in PlatformRow.__table__.columns}
    info["created"] = iso_utc(info["created"])
    return info


def aliases_of(store: Store, fps: set[str]) -> list[tuple[Any, ...]]:
    from sqlalchemy import select

    from archcast.store.schema import SampleAliasRow

    with store._tx("reading aliases", write=False) as s:
        alias_rows = [a for a in s.scalars(select(SampleAliasRow)).all() if a.graph_fingerprint in fps]
        return sorted(((a.family, int(a.seed), a.generator_version, a.generator_config, a.graph_fingerprint)
                       for a in alias_rows), key=lambda a: model_order(a[0], a[1], a[4]))


def write_graphs(store: Store, out: Path, order: Sequence[str], progress: bool) -> None:
    """``graphs.jsonl.xz``: the stored IR JSON verbatim (one line: to_json has no indent), xz'd."""
    from sqlalchemy import select

    from archcast.store.errors import StoreError
    from archcast.store.schema import GraphRow

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(order), desc="export graphs", unit="graph")
    tmp = out / (GRAPHS_FILE + ".tmp")
    try:
        with lzma.open(tmp, "wb", preset=XZ_PRESET) as xz:
            for i in range(0, len(order), _CHUNK):
                chunk = list(order[i:i + _CHUNK])
                with store._tx("reading graphs", write=False) as s:
                    blobs = dict(s.execute(select(GraphRow.fingerprint, GraphRow.ir_json)
                                           .where(GraphRow.fingerprint.in_(chunk))).all())
                for fp in chunk:
                    if blobs.get(fp) is None:
                        raise StoreError(f"graph {fp} in {store.location} has an ok measurement but no IR")
                    line = zlib.decompress(blobs[fp])
                    if b"\n" in line:
                        raise StoreError(f"graph {fp} in {store.location}: its IR JSON spans several lines")
                    xz.write(line + b"\n")
                if bar is not None:
                    bar.update(len(chunk))
        replace_file(tmp, out / GRAPHS_FILE)
    finally:
        tmp.unlink(missing_ok=True)
        if bar is not None:
            bar.close()


def write_manifest(out: Path, files: Sequence[str], manifest: dict[str, Any]) -> None:
    sums = {name: sha256_file(out / name) for name in files}
    write_json(out / MANIFEST_FILE, {**manifest, "files": sums, "fingerprint": files_fingerprint(sums)})


def family_counts(recs: Iterable[Any]) -> dict[str, int]:
    families: dict[str, int] = {}
    for r in recs:
        families[r.family or ""] = families.get(r.family or "", 0) + 1
    return dict(sorted(families.items()))


def write_failures(out: Path, failed: Sequence[Any]) -> None:
    """``failures.csv`` from failed store rows."""
    write_csv(out / FAILURES_FILE, FAILURE_COLUMNS, (
        (r.fingerprint, r.family or "", r.seed, r.generator_version, r.generator_config, r.batch_size,
         " ".join((r.error or "").split()), iso_utc(r.measured_at), r.host) for r in failed))


__all__ = ["XZ_PRESET", "aliases_of", "family_counts", "iso_utc", "platform_info", "replace_file", "write_csv",
           "write_failures", "write_graphs", "write_json", "write_manifest"]
