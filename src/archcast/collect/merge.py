"""Format-2 data sets of one platform, measured on different machines or days, merged into one.

Two machines of one kind may both call themselves ``vm`` and still run 1.9x apart, so a merge
keeps the machines apart and puts every label on one scale through the canaries alone:

* every host is renamed ``<host>@<campaign>`` (in the pass rows, ``measurements.csv`` and
  ``failures.csv``); row ids are offset so they stay unique; pass ids already name their campaign;
* one :class:`~archcast.collect.labels.SpeedIndex` over the canary rows of all sources, the
  reference being the first source's canary host: each label is recomputed as the median over
  its label passes of the label statistic divided by the index at that row's time and host
  (``label.canary_normalised`` is true even where the sources were raw), ``speed_index`` is the
  median of the model's pass indices on that scale, kernel times (``kernel_us``,
  ``kernel_us_min``) are divided by the index of their (model, pass)'s accepted row;
  the other measurement columns are the source's. The pass rows' own ``speed_index`` column
  keeps what the runner recorded then (each on its own campaign's scale);
* a model (fingerprint) in several sources is kept from the first; the others' rows of it
  (measurements, pass rows, kernels, graphs) are dropped and counted
  (``counts.duplicates_dropped``); a dropped copy drawn from another (family, seed) becomes an
  alias of the kept one. Failures of a model that is in the merged set are left out;
* graphs and optimised graphs are streamed (``heapq.merge`` of the sorted sources) so they stay
  line-aligned with ``models.csv`` in :func:`~archcast.data.latency_dataset.model_order`.

The result is written into a temporary sibling of ``out`` and renamed into place: an interrupted
merge leaves no half data set, and the sources are only read.
"""

from __future__ import annotations

import csv
import heapq
import io
import lzma
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archcast.collect.compare import pass_speeds
from archcast.collect.dataset_files import XZ_PRESET, family_counts, replace_file, write_csv, write_manifest
from archcast.collect.labels import CANARY, PassRow, SpeedIndex, labels, pass_values, rows_from_table
from archcast.data.latency_dataset import (
    ALIAS_COLUMNS,
    ALIASES_FILE,
    DATA_FILES_V2,
    FAILURE_COLUMNS,
    FAILURES_FILE,
    FORMAT,
    GRAPHS_FILE,
    KERNEL_COLUMNS,
    KERNELS_FILE,
    MANIFEST_FILE,
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
    LatencyDataset,
    as_dataset,
    model_order,
    num_cell,
    read_json,
)
from archcast.errors import InvalidInputError

NOTE_FILE = "NOTE.md"  # kept from a previous merge output (free text about the conditions)


# ---------------------------------------------------------------------------- checks
def _check_sources(dss: Sequence[LatencyDataset]) -> None:
    if not dss:
        raise InvalidInputError("merge needs at least one source data set")
    first = dss[0]
    for ds in dss:
        if ds.format_version < 2:
            raise InvalidInputError(f"data set {ds.path} is format {ds.format_version} (no pass rows or canaries); "
                                    "merge needs format 2 (archcast dataset export --campaign)")
    seen: dict[str, Path] = {}
    for ds in dss:
        for what, mine, theirs in (
                ("platform", ds.manifest.get("platform_id"), first.manifest.get("platform_id")),
                ("batch size", ds.batch_size, first.batch_size),
                ("label statistic", ds.manifest["label"]["stat"], first.manifest["label"]["stat"]),
                ("canary models", ds.manifest.get("canaries"), first.manifest.get("canaries"))):
            if mine != theirs:
                raise InvalidInputError(f"data sets {first.path} and {ds.path} differ in {what} ({theirs} vs {mine}); "
                                        "only data sets of one platform, batch size, label stat and canaries merge")
        camp = ds.manifest.get("campaign")
        if not camp:
            raise InvalidInputError(f"data set {ds.path} names no campaign in its manifest; merge needs one per source")
        if camp in seen:
            raise InvalidInputError(f"data sets {seen[camp]} and {ds.path} are both campaign {camp!r}; "
                                    "give each campaign once")
        seen[camp] = ds.path


def _check_out(out: Path, dss: Sequence[LatencyDataset]) -> bool:
    """Refuse an ``out`` that would touch a source or overwrite something else; True when ``out``
    is a previous merge output (replaced as a whole)."""
    o = out.resolve()
    for ds in dss:
        s = ds.path.resolve()
        if o == s or s in o.parents or o in s.parents:
            raise InvalidInputError(f"--out {out} is (or holds, or lies inside) the source {ds.path}; "
                                    "write the merge into a new directory")
    if not out.exists():
        return False
    if not out.is_dir():
        raise InvalidInputError(f"--out {out} exists and is not a directory")
    if not any(out.iterdir()):
        return False
    m = out / MANIFEST_FILE
    manifest = read_json(m) if m.is_file() else {}
    if manifest.get("format") == FORMAT and "sources" in manifest:
        return True
    raise InvalidInputError(f"--out {out} is a non-empty directory that is not a previous merge output; "
                            "give a new or empty directory")


# ---------------------------------------------------------------------------- one source
class _Source:
    """One source data set's rows, host-renamed and id-offset, with the models it keeps."""

    def __init__(self, ds: LatencyDataset, offset: int, taken: dict[str, int], index: int) -> None:
        self.ds, self.index = ds, index
        self.campaign = str(ds.manifest["campaign"])
        # fingerprint -> record index, of the models kept from this source
        self.kept = {r.fingerprint: j for j, r in enumerate(ds.records) if r.fingerprint not in taken}
        self.dropped = [r for r in ds.records if r.fingerprint in taken]
        for fp in self.kept:
            taken[fp] = index
        table = ds.passes()
        self.max_row_id = offset + max((int(d["row_id"]) for d in table), default=0)
        self.table = []
        for d in table:
            self.table.append({**d, "row_id": str(int(d["row_id"]) + offset), "host": self.host(d["host"])})
        self.rows = rows_from_table(self.table)

    def host(self, host: str) -> str:
        return f"{host}@{self.campaign}"

    def excluded(self, fingerprint: str, taken: dict[str, int]) -> bool:
        """A model's rows here belong to a model kept from another source."""
        return taken.get(fingerprint, self.index) != self.index

    def canary_host(self) -> str:
        counts: dict[str, int] = {}
        for r in self.rows:
            if r.role == CANARY and r.status == "ok":
                counts[r.host] = counts.get(r.host, 0) + 1
        if not counts:
            raise InvalidInputError(f"data set {self.ds.path} has no ok canary rows: it cannot be put on a common "
                                    "speed scale")
        return max(sorted(counts), key=lambda h: counts[h])

    def order_keys(self) -> list[tuple[tuple[str, float, str], int, int]]:
        """(model order, source, record index) of the kept models, in file order."""
        return [(model_order(r.family, r.seed, r.fingerprint), self.index, j)
                for j, r in enumerate(self.ds.records) if r.fingerprint in self.kept]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _lines(path: Path) -> Iterator[str]:
    with lzma.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            yield line.rstrip("\n")


def _kernel_rows(path: Path) -> Iterator[list[str]]:
    with lzma.open(path, "rt", encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        if tuple(header) != KERNEL_COLUMNS:
            raise InvalidInputError(f"{path}: columns {', '.join(header)}; expected {', '.join(KERNEL_COLUMNS)}")
        yield from reader


# ---------------------------------------------------------------------------- merge
def merge_datasets(sources: Sequence[str | Path | LatencyDataset], out: str | Path, *,
                   progress: bool = False) -> Path:
    """Merge format-2 data sets of one platform into ``out`` on the first source's canary scale
    (module docstring); returns ``out``.

    Raises:
        InvalidInputError: a format-1 source, sources of different platforms, batch sizes, label
            statistics or canaries, one campaign twice, a source without canary rows, or an
            ``out`` that is a source or a non-empty directory other than a previous merge output.
    """
    from archcast._version import __version__

    out = Path(out)
    dss = [as_dataset(s) for s in sources]
    _check_sources(dss)
    replacing = _check_out(out, dss)
    bar = _bar(progress, len(dss), "merge: read sources", "source")
    taken: dict[str, int] = {}
    srcs: list[_Source] = []
    offset = 0
    for i, ds in enumerate(dss):
        srcs.append(_Source(ds, offset, taken, i))
        offset = srcs[-1].max_row_id
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()

    first = dss[0]
    stat = first.manifest["label"]["stat"]
    rows: list[PassRow] = [r for s in srcs for r in s.rows if r.role == CANARY or not s.excluded(r.fingerprint, taken)]
    ref_host = srcs[0].canary_host()
    for s in srcs[1:]:
        s.canary_host()  # every source needs canaries of its own
    speed = SpeedIndex([r for r in rows if r.role == CANARY], stat, reference_host=ref_host)
    passes = [p for ds in dss for p in ds.manifest["label"]["passes"]]
    labs = labels(pass_values(rows, stat, speed, passes=passes))
    pass_speed = pass_speeds(rows, speed)

    order = list(heapq.merge(*(s.order_keys() for s in srcs)))
    tmp = out.parent / f".{out.name}.merge-tmp"
    if tmp.exists():
        shutil.rmtree(tmp)  # an interrupted merge's leftovers (this name is ours)
    tmp.mkdir(parents=True)
    try:
        shutil.copyfile(first.path / PLATFORM_FILE, tmp / PLATFORM_FILE)
        n_cov = _write_tables(tmp, srcs, order, labs, pass_speed, passes)
        aliases = _write_aliases(tmp, srcs, taken)
        failures = _write_failures(tmp, srcs, taken)
        _write_passes(tmp, srcs, taken)
        n_kernels, k_dropped = _write_kernels(tmp, srcs, taken, pass_speed)
        _write_graph_file(tmp, GRAPHS_FILE, srcs, order, progress, optional=False)
        n_opt = _write_graph_file(tmp, OPTIMIZED_GRAPHS_FILE, srcs, order, progress, optional=True)

        kept_recs = [srcs[i].ds.records[j] for _, i, j in order]
        machines = []
        for h in sorted({r.host for r in rows}):
            pts = [v for _, v in speed.checkpoints(h)] if h in speed.hosts() else []
            machines.append({"host": h, "rows": sum(1 for r in rows if r.host == h), **_index_summary(pts)})
        src_info = []
        for s in srcs:
            hosts = {r.host for r in s.rows if r.role == CANARY}
            pts = [v for h in sorted(hosts & set(speed.hosts())) for _, v in speed.checkpoints(h)]
            src_info.append({"path": str(s.ds.path), "fingerprint": s.ds.fingerprint, "campaign": s.campaign,
                             "models": len(s.ds), "models_kept": len(s.kept), "host": s.canary_host(),
                             **_index_summary(pts)})
        model_rows = [r for r in rows if r.role != CANARY]
        write_manifest(tmp, DATA_FILES_V2, {
            "format": FORMAT, "format_version": 2, "archcast_version": __version__,
            "platform_id": first.manifest["platform_id"], "platform_name": first.manifest.get("platform_name"),
            "batch_size": first.batch_size, "latency_stat": "label_ms", "time_zone": "UTC",
            "float_significant_digits": SIG_DIGITS, "measure_kw": first.manifest.get("measure_kw"),
            "protocol": first.manifest.get("protocol"), "campaign": "+".join(s.campaign for s in srcs),
            "label": {"stat": stat, "canary_normalised": True, "passes": passes,
                      "aggregate": "median over passes", "spread": "(max - min) / label over passes",
                      "reference_host": speed.reference_host, "reference_canary_ms": speed.reference_ms},
            "canaries": first.manifest.get("canaries"), "machines": machines, "sources": src_info,
            "retest_passes": [p for ds in dss for p in ds.manifest.get("retest_passes") or []],
            "counts": {"models": len(order), "failures": failures, "aliases": aliases, "with_kernels": n_cov,
                       "with_optimized_graph": n_opt, "rows": len(model_rows),
                       "canary_rows": len(rows) - len(model_rows),
                       "superseded_rows": sum(1 for r in model_rows if r.superseded),
                       "duplicates_dropped": sum(len(s.dropped) for s in srcs), "kernel_rows": n_kernels,
                       "kernel_rows_without_speed": k_dropped},
            "families": family_counts(kept_recs),
            "exported_at": None,  # as the export: the files do not change when the sources do not
        })
        _swap_into_place(tmp, out, replacing)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _bar(progress: bool, total: int, desc: str, unit: str) -> Any:
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit)


def _index_summary(pts: Sequence[float]) -> dict[str, float | None]:
    return {"speed_index_median": float(np.median(pts)) if pts else None,
            "speed_index_min": min(pts) if pts else None, "speed_index_max": max(pts) if pts else None}


def _swap_into_place(tmp: Path, out: Path, replacing: bool) -> None:
    if not replacing:
        if out.exists():
            out.rmdir()  # empty (checked)
        tmp.rename(out)
        return
    if (out / NOTE_FILE).is_file():
        shutil.copyfile(out / NOTE_FILE, tmp / NOTE_FILE)
    old = out.parent / f".{out.name}.merge-old"
    if old.exists():
        shutil.rmtree(old)
    out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old)


def _write_tables(tmp: Path, srcs: list[_Source], order: list[Any], labs: dict[str, tuple[float, float, int]],
                  pass_speed: dict[tuple[str, str], float], passes: list[str]) -> int:
    """``models.csv`` (verbatim) and ``measurements.csv`` (label, spread, passes, speed index
    recomputed, host renamed); returns the number of models with kernel coverage."""
    models = [_csv_rows(s.ds.path / MODELS_FILE) for s in srcs]
    meas = [_csv_rows(s.ds.path / MEASUREMENTS_FILE) for s in srcs]
    out_models, out_meas, covered = [], [], 0
    for _, i, j in order:
        g, m = models[i][j], dict(meas[i][j])
        fp = g["fingerprint"]
        if fp not in labs:
            raise InvalidInputError(f"model {fp} of {srcs[i].ds.path} has no ok row in its label passes; "
                                    "re-export that data set")
        label, spread, n = labs[fp]
        idx = [pass_speed[(fp, p)] for p in passes if (fp, p) in pass_speed]
        m.update(label_ms=num_cell(label), label_spread=num_cell(spread), n_passes=str(n),
                 speed_index=num_cell(float(np.median(idx))) if idx else "", host=srcs[i].host(m["host"]))
        covered += bool(m.get("kernel_coverage"))
        out_models.append([g[c] for c in MODEL_COLUMNS])
        out_meas.append([m[c] for c in MEASUREMENT_COLUMNS + MEASUREMENT_COLUMNS_V2])
    write_csv(tmp / MODELS_FILE, MODEL_COLUMNS, out_models)
    write_csv(tmp / MEASUREMENTS_FILE, MEASUREMENT_COLUMNS + MEASUREMENT_COLUMNS_V2, out_meas)
    return covered


def _write_aliases(tmp: Path, srcs: list[_Source], taken: dict[str, int]) -> int:
    """The sources' aliases, plus each dropped duplicate drawn from another (family, seed) than
    its kept copy; sorted, each once."""
    rows: dict[tuple[str, ...], None] = {}
    for s in srcs:
        for a in s.ds.aliases:
            rows[tuple(a[c] for c in ALIAS_COLUMNS)] = None
    kept = {fp: srcs[i].ds.records[srcs[i].kept[fp]] for fp, i in taken.items()}
    for s in srcs:
        for r in s.dropped:
            k = kept[r.fingerprint]
            if r.seed is not None and (r.family, r.seed) != (k.family, k.seed):
                rows[(r.family, str(r.seed), r.generator_version or "", r.generator_config or "", r.fingerprint)] = None
    ordered = sorted(rows, key=lambda a: model_order(a[0], int(a[1]) if a[1] else None, a[4]))
    write_csv(tmp / ALIASES_FILE, ALIAS_COLUMNS, ordered)
    return len(ordered)


def _write_failures(tmp: Path, srcs: list[_Source], taken: dict[str, int]) -> int:
    """The sources' failures (hosts renamed), except models the merged set holds; each once."""
    out: dict[str, list[str]] = {}
    for s in srcs:
        for f in s.ds.failures:
            if f["fingerprint"] not in taken and f["fingerprint"] not in out:
                out[f["fingerprint"]] = [s.host(f[c]) if c == "host" else f[c] for c in FAILURE_COLUMNS]
    write_csv(tmp / FAILURES_FILE, FAILURE_COLUMNS, out.values())
    return len(out)


def _write_passes(tmp: Path, srcs: list[_Source], taken: dict[str, int]) -> None:
    write_csv(tmp / PASSES_FILE, PASS_COLUMNS, (
        [d[c] for c in PASS_COLUMNS] for s in srcs for d in s.table
        if d["role"] == CANARY or not s.excluded(d["fingerprint"], taken)), xz=True)


def _write_kernels(tmp: Path, srcs: list[_Source], taken: dict[str, int],
                   pass_speed: dict[tuple[str, str], float]) -> tuple[int, int]:
    """``kernels.csv.xz`` with each time divided by its (model, pass)'s speed index, streamed in
    model order; returns (rows written, rows left out: no ok row of their pass to give an index)."""
    counts = [0, 0]
    keys = {}
    for fp, i in taken.items():
        r = srcs[i].ds.records[srcs[i].kept[fp]]
        keys[fp] = (model_order(r.family, r.seed, fp), i)

    def rows_of(s: _Source) -> Iterator[tuple[Any, list[str]]]:
        for k in _kernel_rows(s.ds.path / KERNELS_FILE):
            fp = k[0]
            if taken.get(fp) != s.index:
                continue
            f = pass_speed.get((fp, k[1]))
            if f is None:
                counts[1] += 1
                continue
            counts[0] += 1
            yield keys[fp], [fp, k[1], k[2], k[3], num_cell(float(k[4]) / f), num_cell(float(k[5]) / f) if k[5] else ""]

    merged = heapq.merge(*(rows_of(s) for s in srcs), key=lambda kv: kv[0])
    write_csv(tmp / KERNELS_FILE, KERNEL_COLUMNS, (row for _, row in merged), xz=True)
    return counts[0], counts[1]


def _write_graph_file(tmp: Path, name: str, srcs: list[_Source], order: list[Any], progress: bool, *,
                      optional: bool) -> int:
    """One graph file of the merged set, line-aligned with ``order``; returns non-null lines."""
    def lines_of(s: _Source) -> Iterator[tuple[Any, str]]:
        n = -1
        for n, line in enumerate(_lines(s.ds.path / name)):
            if n < len(s.ds.records) and s.ds.records[n].fingerprint in s.kept:
                r = s.ds.records[n]
                yield (model_order(r.family, r.seed, r.fingerprint), s.index, n), line
        if n + 1 != len(s.ds.records):
            raise InvalidInputError(f"{s.ds.path / name} holds {n + 1} lines but {MODELS_FILE} lists "
                                    f"{len(s.ds.records)} models; re-export that data set")

    bar = _bar(progress, len(order), f"merge: {name}", "graph")
    path = tmp / name
    part = path.with_name(path.name + ".tmp")
    n_set = n_lines = 0
    with lzma.open(part, "wb", preset=XZ_PRESET) as xz:
        text = io.TextIOWrapper(xz, encoding="utf-8", newline="\n")
        for k, (key, line) in enumerate(heapq.merge(*(lines_of(s) for s in srcs), key=lambda kv: kv[0])):
            if k >= len(order) or key != order[k]:  # cannot happen with sorted sources; never write misaligned lines
                raise InvalidInputError(f"{name}: line {k + 1} would not be models.csv's model {k + 1}")
            if not optional and line == "null":
                raise InvalidInputError(f"{srcs[key[1]].ds.path / name}: line {key[2] + 1} has no graph")
            text.write(line + "\n")
            n_set += line != "null"
            n_lines += 1
            if bar is not None:
                bar.update(1)
        text.flush()
        text.detach()
    if n_lines != len(order):
        part.unlink()
        raise InvalidInputError(f"{name}: {n_lines} graphs for {len(order)} models; re-export the sources")
    if bar is not None:
        bar.close()
    replace_file(part, path)
    return n_set


__all__ = ["merge_datasets"]
