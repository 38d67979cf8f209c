"""A measured latency data set as a directory of small, diff-friendly files, and its noise floor.

:func:`export_latency_dataset` writes the current measurements of one (platform, batch size) of a
:class:`~archcast.store.Store`::

    manifest.json        format version, platform id, batch size, protocol (measure_kw), counts,
                         sha256 of every file below, and the data set fingerprint
    platform.json        every field of the platform (+ platform_id, created)
    models.csv           fingerprint, family, seed, generator_version, generator_config (JSON),
                         n_nodes, flops, params, memory_bytes; one row per graph, by (family, seed)
    measurements.csv     the latency statistics (ms, 5 significant digits) in models.csv order
    failures.csv         models whose measurement failed, with the reason (may be header only)
    aliases.csv          zoo samples (family, seed) that build a graph already listed under another
                         seed; the store measures a graph once, so they have no row of their own
    graphs.jsonl.xz      NetGraph JSON of every model, one line each in models.csv order (a cache:
                         family + seed + generator config regenerate each graph exactly)

:func:`load_latency_dataset` reads it back (checksums checked); :func:`verify_regeneration`
rebuilds random models from family + seed and compares fingerprints; :func:`retest_latency`
measures random models again in fresh processes and writes ``retest.csv`` + ``noise_floor.json``;
:func:`write_datasheet` writes ``DATASHEET.md`` with per-family tables and histograms.

Relative errors (MAPE...) are fractions, not percent; latencies are milliseconds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import lzma
import math
import os
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from archcast.errors import ArchcastError, InvalidInputError

if TYPE_CHECKING:
    from archcast.data.dataset import LazyGraphs
    from archcast.profile.platform import Platform
    from archcast.store.store import MeasurementRecord, Store
    from archcast.zoo.base import ZooSample

FORMAT = "archcast-latency-dataset"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
PLATFORM_FILE = "platform.json"
MODELS_FILE = "models.csv"
MEASUREMENTS_FILE = "measurements.csv"
FAILURES_FILE = "failures.csv"
ALIASES_FILE = "aliases.csv"
GRAPHS_FILE = "graphs.jsonl.xz"
DATA_FILES = (PLATFORM_FILE, MODELS_FILE, MEASUREMENTS_FILE, FAILURES_FILE, ALIASES_FILE, GRAPHS_FILE)
RETEST_FILE = "retest.csv"
NOISE_FILE = "noise_floor.json"
DATASHEET_FILE = "DATASHEET.md"
HIST_DIR = "hist"
HIST_GRID_FILE = "latency_hist.png"

# the protocol of the reference data set (archcast profile's own defaults are 50 runs / 0.5 s)
DEFAULT_MEASURE_KW: dict[str, Any] = {"min_runs": 30, "min_time_s": 0.3}
_XZ_PRESET = 9 | lzma.PRESET_EXTREME  # corpus-wide: ~0.75 KB per graph
_SIG_DIGITS = 5
_CHUNK = 500  # graphs read from the store per query

MODEL_COLUMNS = ("fingerprint", "family", "seed", "generator_version", "generator_config", "n_nodes", "flops",
                 "params", "memory_bytes")
MEASUREMENT_COLUMNS = ("fingerprint", "family", "seed", "batch_size", "latency_ms_min", "latency_ms_median",
                       "latency_ms_mean", "latency_ms_p90", "latency_ms_std", "latency_cv", "n_runs", "warmup_runs",
                       "measured_at", "host")
FAILURE_COLUMNS = ("fingerprint", "family", "seed", "generator_version", "generator_config", "batch_size", "error",
                   "measured_at", "host")
ALIAS_COLUMNS = ("family", "seed", "generator_version", "generator_config", "fingerprint")
RETEST_COLUMNS = ("fingerprint", "family", "seed", "status", "first_median_ms", "retest_median_ms", "first_min_ms",
                  "retest_min_ms", "first_cv", "retest_cv", "error")
_FLOAT_STATS = ("latency_ms_min", "latency_ms_median", "latency_ms_mean", "latency_ms_p90", "latency_ms_std",
                "latency_cv")


# ---------------------------------------------------------------------------- records
@dataclass(frozen=True)
class LatencyRecord:
    """One measured model: its provenance, size and latency statistics.

    ``seed``/``generator_*`` are None for graphs that did not come from the zoo (then they cannot be
    regenerated). Latency statistics are milliseconds over the timed runs, None where the source
    gave none (imported data sets carry only the median); ``latency_cv`` = std / mean.
    ``measured_at`` is ISO 8601 UTC.
    """

    fingerprint: str
    family: str
    seed: int | None
    generator_version: str | None
    generator_config: str | None  # JSON, sorted keys
    n_nodes: int | None
    flops: int | None
    params: int | None
    memory_bytes: int | None
    batch_size: int
    latency_ms_min: float | None
    latency_ms_median: float
    latency_ms_mean: float | None
    latency_ms_p90: float | None
    latency_ms_std: float | None
    latency_cv: float | None
    n_runs: int | None
    warmup_runs: int | None
    measured_at: str
    host: str

    @property
    def latency_ms(self) -> float:
        """The label: the median latency, milliseconds."""
        return self.latency_ms_median

    @property
    def regenerable(self) -> bool:
        return self.seed is not None and self.generator_config is not None and self.generator_version is not None

    def sample(self) -> "ZooSample":
        """The zoo sample recorded for this model (its stored config, not a fresh draw)."""
        from archcast.zoo.base import ZooSample

        if not self.regenerable:
            raise InvalidInputError(f"model {self.fingerprint} ({self.family}) has no zoo seed and config")
        return ZooSample(self.family, int(self.seed), json.loads(self.generator_config), str(self.generator_version))


NUMERIC_FIELDS = ("seed", "n_nodes", "flops", "params", "memory_bytes", "batch_size", *_FLOAT_STATS, "n_runs",
                  "warmup_runs")


@dataclass
class LatencyDataset:
    """A loaded latency data set (see the module docstring for the files).

    Attributes:
        path: the data set directory.
        records: one :class:`LatencyRecord` per model, in the files' (family, seed) order.
        platform: the platform's fields (``platform.json``).
        manifest: ``manifest.json`` (format, batch size, protocol, counts, checksums, fingerprint).
        failures: rows of ``failures.csv`` (dicts of strings).
        aliases: rows of ``aliases.csv`` (dicts of strings).
    """

    path: Path
    records: list[LatencyRecord]
    platform: dict[str, Any]
    manifest: dict[str, Any]
    failures: list[dict[str, str]]
    aliases: list[dict[str, str]]

    def __post_init__(self) -> None:
        self._graphs: LazyGraphs | None = None

    def __len__(self) -> int:
        return len(self.records)

    @property
    def batch_size(self) -> int:
        return int(self.manifest["batch_size"])

    @property
    def fingerprint(self) -> str:
        """Hash of the data files (changes with any measurement, graph or platform field)."""
        return str(self.manifest["fingerprint"])

    @property
    def latency_ms(self) -> np.ndarray:
        """``[n]`` float64 median latencies, milliseconds (the label)."""
        return np.array([r.latency_ms_median for r in self.records], dtype=np.float64)

    def column(self, name: str) -> np.ndarray:
        """``[n]`` float64 values of a numeric :class:`LatencyRecord` field (NaN where missing)."""
        if name not in NUMERIC_FIELDS:
            raise InvalidInputError(f"column {name!r} is not a numeric field; valid: {', '.join(NUMERIC_FIELDS)}")
        return np.array([np.nan if getattr(r, name) is None else getattr(r, name) for r in self.records],
                        dtype=np.float64)

    def families(self) -> list[str]:
        """The distinct family names, sorted."""
        return sorted({r.family for r in self.records})

    def graphs(self) -> "LazyGraphs":
        """The models' :class:`NetGraph` in record order, parsed on first access from ``graphs.jsonl.xz``."""
        if self._graphs is None:
            from archcast.data.dataset import LazyGraphs
            from archcast.graph.ir import NetGraph

            path = self.path / GRAPHS_FILE
            try:
                with lzma.open(path, "rt", encoding="utf-8") as fh:
                    lines = fh.read().splitlines()
            except FileNotFoundError:
                raise InvalidInputError(f"{path} does not exist; re-export the data set (archcast dataset export)") from None
            except (lzma.LZMAError, EOFError, UnicodeDecodeError, OSError) as e:
                raise InvalidInputError(f"{path} is not a readable xz file ({e}); re-export the data set") from None
            if len(lines) != len(self.records):
                raise InvalidInputError(f"{path} holds {len(lines)} graphs but {MODELS_FILE} lists "
                                        f"{len(self.records)} models; re-export the data set")

            def build(item: object) -> NetGraph:
                i, text = item  # type: ignore[misc]
                try:
                    return NetGraph.from_json(text)
                except (ArchcastError, KeyError, TypeError, ValueError) as e:
                    raise InvalidInputError(f"{path}: line {i + 1} is not a graph: {e}") from None

            self._graphs = LazyGraphs(list(enumerate(lines)), build)
        return self._graphs


# ---------------------------------------------------------------------------- small helpers
def _num(x: Any) -> str:
    """A CSV cell: '' for None/NaN, ints as they are, floats to 5 significant digits."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    if isinstance(x, float):
        return f"{x:.{_SIG_DIGITS}g}"
    return str(x)


def _iso(t: datetime | None) -> str:
    return "" if t is None else t.replace(microsecond=0).isoformat() + "Z"  # the store keeps naive UTC


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _replace(tmp: Path, path: Path) -> None:
    os.replace(tmp, path)  # a reader never sees half a file


def _write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow(["" if v is None else v for v in row])
    _replace(tmp, path)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    _replace(tmp, path)


def _model_order(family: str | None, seed: int | None, fingerprint: str) -> tuple[str, float, str]:
    return (family or "", float("inf") if seed is None else float(seed), fingerprint)


def _files_fingerprint(sums: dict[str, str]) -> str:
    return hashlib.sha256("".join(f"{k}:{sums[k]}\n" for k in sorted(sums)).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- export
def export_latency_dataset(store: "Store", out_dir: str | Path, platform: "str | Platform", batch_size: int = 1, *,
                           measure_kw: dict[str, Any] | None = None, progress: bool = False) -> Path:
    """Write the current measurements of ``platform`` (id, unique name or Platform) at ``batch_size``
    as a latency data set directory (see the module docstring). Returns the directory.

    ``measure_kw`` is the protocol the store was measured with (``min_runs``, ``min_time_s``...);
    the store does not keep it, so it is recorded in the manifest only when given (the retest
    reuses it). A graph measured under several seeds appears once (under the seed the store
    kept); its other seeds are listed in ``aliases.csv``. Files from an earlier export are
    replaced; derived files (retest, datasheet) are left alone.

    Raises:
        StoreError: unknown platform, no current ``ok`` measurement, or a graph without its IR.
    """
    from sqlalchemy import select

    from archcast import __version__
    from archcast.store.errors import StoreError
    from archcast.store.schema import GraphRow, PlatformRow, SampleAliasRow

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    pid = store.resolve_platform(platform)
    recs = store.measurements(pid, batch_size=batch_size)
    ok = sorted((r for r in recs if r.status == "ok"), key=lambda r: _model_order(r.family, r.seed, r.fingerprint))
    failed = sorted((r for r in recs if r.status != "ok"), key=lambda r: _model_order(r.family, r.seed, r.fingerprint))
    if not ok:
        raise StoreError(f"database {store.location} has no current ok measurement on platform {pid} at batch size "
                         f"{batch_size}; nothing to export")
    missing = [r.fingerprint for r in ok if r.latency_ms_median is None]
    if missing:
        raise StoreError(f"{len(missing)} ok measurements have no median latency (first: {missing[0]})")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    with store._tx("reading the platform", write=False) as s:  # noqa: SLF001 - read-only, all columns
        prow = s.get(PlatformRow, pid)
        platform_info = {c.name: getattr(prow, c.name) for c in PlatformRow.__table__.columns}
        fps = {r.fingerprint for r in ok}
        alias_rows = [a for a in s.scalars(select(SampleAliasRow)).all() if a.graph_fingerprint in fps]
        aliases = sorted(((a.family, int(a.seed), a.generator_version, a.generator_config, a.graph_fingerprint)
                          for a in alias_rows), key=lambda a: _model_order(a[0], a[1], a[4]))
    platform_info["created"] = _iso(platform_info["created"])
    _write_json(out / PLATFORM_FILE, platform_info)

    _write_csv(out / MODELS_FILE, MODEL_COLUMNS, (
        (r.fingerprint, r.family or "", r.seed, r.generator_version, r.generator_config, r.n_nodes, r.flops, r.params,
         r.memory_bytes) for r in ok))
    _write_csv(out / MEASUREMENTS_FILE, MEASUREMENT_COLUMNS, (
        (r.fingerprint, r.family or "", r.seed, r.batch_size, *(_num(getattr(r, k)) for k in _FLOAT_STATS),
         r.n_runs, r.warmup_runs, _iso(r.measured_at), r.host) for r in ok))
    _write_csv(out / FAILURES_FILE, FAILURE_COLUMNS, (
        (r.fingerprint, r.family or "", r.seed, r.generator_version, r.generator_config, r.batch_size,
         " ".join((r.error or "").split()), _iso(r.measured_at), r.host) for r in failed))
    _write_csv(out / ALIASES_FILE, ALIAS_COLUMNS, aliases)

    # graphs: the stored IR JSON verbatim (one line: to_json has no indent), the whole file xz'd
    order = [r.fingerprint for r in ok]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(order), desc="export graphs", unit="graph")
    tmp = out / (GRAPHS_FILE + ".tmp")
    try:
        with lzma.open(tmp, "wb", preset=_XZ_PRESET) as xz:
            for i in range(0, len(order), _CHUNK):
                chunk = order[i:i + _CHUNK]
                with store._tx("reading graphs", write=False) as s:  # noqa: SLF001 - raw IR, no re-serialising
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
        _replace(tmp, out / GRAPHS_FILE)
    finally:
        tmp.unlink(missing_ok=True)
        if bar is not None:
            bar.close()

    sums = {name: _sha256(out / name) for name in DATA_FILES}
    families: dict[str, int] = {}
    for r in ok:
        families[r.family or ""] = families.get(r.family or "", 0) + 1
    manifest = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "archcast_version": __version__,
        "platform_id": pid, "platform_name": platform_info["name"], "batch_size": batch_size,
        "latency_stat": "latency_ms_median", "time_zone": "UTC", "float_significant_digits": _SIG_DIGITS,
        "measure_kw": dict(measure_kw) if measure_kw else None,
        "counts": {"models": len(ok), "failures": len(failed), "aliases": len(aliases)},
        "families": dict(sorted(families.items())),
        "files": sums, "fingerprint": _files_fingerprint(sums),
    }
    _write_json(out / MANIFEST_FILE, manifest)
    return out


# ---------------------------------------------------------------------------- load
def _read_csv(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            lacking = [c for c in columns if c not in header]
            if lacking:
                raise InvalidInputError(f"{path}: missing column(s) {', '.join(lacking)}; expected {', '.join(columns)}")
            return list(reader)
    except FileNotFoundError:
        raise InvalidInputError(f"{path} does not exist; re-export the data set (archcast dataset export)") from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise InvalidInputError(f"{path} is not a readable CSV file: {e}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(f"{path} does not exist; re-export the data set (archcast dataset export)") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInputError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path} must hold a JSON object; got {type(data).__name__}")
    return data


def _cell(path: Path, line: int, row: dict[str, str], col: str, kind: type, required: bool = False) -> Any:
    text = (row.get(col) or "").strip()
    if not text:
        if required:
            raise InvalidInputError(f"{path}: line {line}: column {col} is empty")
        return None
    try:
        value = kind(text)
    except ValueError:
        raise InvalidInputError(f"{path}: line {line}: column {col} = {text!r} is not a {kind.__name__}") from None
    if kind is float and not math.isfinite(value):
        raise InvalidInputError(f"{path}: line {line}: column {col} = {text!r} is not finite")
    return value


def load_latency_dataset(path: str | Path, *, verify_checksums: bool = True) -> LatencyDataset:
    """Read a data set written by :func:`export_latency_dataset`.

    With ``verify_checksums`` every data file must match the sha256 in ``manifest.json`` (an
    edited or damaged file is refused, naming it). Graphs are read on first
    :meth:`LatencyDataset.graphs` call.

    Raises:
        InvalidInputError: missing directory or file, wrong format, bad values, checksum mismatch.
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidInputError(f"latency data set {str(root)!r} is not a directory; create one with "
                                "archcast dataset export --db DB --platform NAME --out DIR")
    mpath = root / MANIFEST_FILE
    if not mpath.is_file():
        raise InvalidInputError(f"{root} is not a latency data set: {MANIFEST_FILE} is missing "
                                "(create one with archcast dataset export)")
    manifest = _read_json(mpath)
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise InvalidInputError(f"{mpath}: format {manifest.get('format')!r} version {manifest.get('format_version')!r}; "
                                f"this archcast reads {FORMAT!r} version {FORMAT_VERSION}")
    for key in ("platform_id", "batch_size", "files", "fingerprint"):
        if key not in manifest:
            raise InvalidInputError(f"{mpath}: missing key {key!r}")
    for name in DATA_FILES:
        p = root / name
        if not p.is_file():
            raise InvalidInputError(f"{p} does not exist; re-export the data set (archcast dataset export)")
        if verify_checksums and _sha256(p) != manifest["files"].get(name):
            raise InvalidInputError(f"{p} differs from the checksum in {MANIFEST_FILE} (edited or damaged); "
                                    "re-export the data set")

    platform = _read_json(root / PLATFORM_FILE)
    if platform.get("platform_id") != manifest["platform_id"]:
        raise InvalidInputError(f"{root / PLATFORM_FILE}: platform_id {platform.get('platform_id')!r} is not the "
                                f"manifest's {manifest['platform_id']!r}")
    mpath_models, mpath_meas = root / MODELS_FILE, root / MEASUREMENTS_FILE
    models = _read_csv(mpath_models, MODEL_COLUMNS)
    meas = _read_csv(mpath_meas, MEASUREMENT_COLUMNS)
    if len(models) != len(meas):
        raise InvalidInputError(f"{mpath_meas} has {len(meas)} rows but {mpath_models} has {len(models)}; "
                                "re-export the data set")
    records = []
    for i, (g, m) in enumerate(zip(models, meas)):
        line = i + 2  # header is line 1
        if g["fingerprint"] != m["fingerprint"]:
            raise InvalidInputError(f"{mpath_meas}: line {line} is graph {m['fingerprint']!r} but line {line} of "
                                    f"{MODELS_FILE} is {g['fingerprint']!r}; the files must list models in one order")
        records.append(LatencyRecord(
            fingerprint=g["fingerprint"], family=g["family"], seed=_cell(mpath_models, line, g, "seed", int),
            generator_version=g["generator_version"] or None, generator_config=g["generator_config"] or None,
            n_nodes=_cell(mpath_models, line, g, "n_nodes", int), flops=_cell(mpath_models, line, g, "flops", int),
            params=_cell(mpath_models, line, g, "params", int),
            memory_bytes=_cell(mpath_models, line, g, "memory_bytes", int),
            batch_size=_cell(mpath_meas, line, m, "batch_size", int, required=True),
            latency_ms_min=_cell(mpath_meas, line, m, "latency_ms_min", float),
            latency_ms_median=_cell(mpath_meas, line, m, "latency_ms_median", float, required=True),
            latency_ms_mean=_cell(mpath_meas, line, m, "latency_ms_mean", float),
            latency_ms_p90=_cell(mpath_meas, line, m, "latency_ms_p90", float),
            latency_ms_std=_cell(mpath_meas, line, m, "latency_ms_std", float),
            latency_cv=_cell(mpath_meas, line, m, "latency_cv", float),
            n_runs=_cell(mpath_meas, line, m, "n_runs", int), warmup_runs=_cell(mpath_meas, line, m, "warmup_runs", int),
            measured_at=m["measured_at"], host=m["host"],
        ))
        if not records[-1].latency_ms_median > 0:
            raise InvalidInputError(f"{mpath_meas}: line {line}: latency_ms_median must be > 0; "
                                    f"got {records[-1].latency_ms_median}")
    failures = _read_csv(root / FAILURES_FILE, FAILURE_COLUMNS)
    aliases = _read_csv(root / ALIASES_FILE, ALIAS_COLUMNS)
    return LatencyDataset(root, records, platform, manifest, failures, aliases)


def _as_dataset(data: str | Path | LatencyDataset) -> LatencyDataset:
    return data if isinstance(data, LatencyDataset) else load_latency_dataset(data)


def _pick(ds: LatencyDataset, count: int, seed: int, what: str) -> list[int]:
    """``count`` random regenerable record indices (all of them when fewer), in random order."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInputError(f"{what} count must be an integer >= 1; got {count!r}")
    pool = [i for i, r in enumerate(ds.records) if r.regenerable]
    if not pool:
        raise InvalidInputError(f"data set {ds.path} has no zoo model (family + seed + config) to {what}")
    rng = np.random.default_rng(seed)
    return [pool[k] for k in rng.choice(len(pool), size=min(count, len(pool)), replace=False)]


# ---------------------------------------------------------------------------- verify
@dataclass(frozen=True)
class RegenerationMismatch:
    """A model that does not come back from family + seed as stored.

    ``field`` is one of ``family`` (not registered here), ``generator_version``, ``config`` (the
    stored config is not what the family samples for the seed), ``export`` (building or
    exporting failed), ``fingerprint`` (the regenerated graph differs) or ``graph_cache`` (the
    graph in ``graphs.jsonl.xz`` differs from the fingerprint).
    """

    fingerprint: str
    family: str
    seed: int
    field: str
    expected: str
    got: str

    def line(self) -> str:
        return f"{self.family}/{self.seed} ({self.fingerprint}): {self.field}: stored {self.expected}, got {self.got}"


def verify_regeneration(data: str | Path | LatencyDataset, count: int = 20, seed: int = 0, *,
                        progress: bool = False) -> list[RegenerationMismatch]:
    """Regenerate ``count`` random models from family + seed and compare with the data set.

    For each: the family's version must equal ``generator_version``, a fresh ``sample(seed)`` must
    give the stored config, its weight-free ONNX must read as a graph with the stored fingerprint,
    and the cached graph must have that fingerprint too. Returns the mismatches (empty: all good).
    """
    from archcast.frontends.onnx import load_onnx
    from archcast.zoo import export_sample, get_family

    ds = _as_dataset(data)
    picked = _pick(ds, count, seed, "verify")
    graphs = ds.graphs()
    out: list[RegenerationMismatch] = []
    items: Iterable[int] = picked
    if progress:
        from tqdm import tqdm

        items = tqdm(picked, desc="verify", unit="model")
    for i in items:
        r = ds.records[i]

        def miss(field: str, expected: Any, got: Any) -> None:
            out.append(RegenerationMismatch(r.fingerprint, r.family, int(r.seed), field, str(expected), str(got)))

        cached = graphs[i].fingerprint()
        if cached != r.fingerprint:
            miss("graph_cache", r.fingerprint, cached)
        try:
            fam = get_family(r.family)
        except ArchcastError as e:
            miss("family", r.family, f"not registered ({e})")
            continue
        if str(fam.version) != str(r.generator_version):
            miss("generator_version", r.generator_version, fam.version)
            continue
        fresh = fam.sample(int(r.seed))
        stored_cfg = json.dumps(json.loads(r.generator_config), sort_keys=True, separators=(",", ":"))
        if fresh.config_json() != stored_cfg:
            miss("config", stored_cfg, fresh.config_json())
        try:
            got = load_onnx(export_sample(fresh, batch_size=ds.batch_size, weight_free=True)).fingerprint()
        except Exception as e:  # noqa: BLE001 - a family's build/export may raise anything: report it
            miss("export", "a graph", f"{type(e).__name__}: {e}")
            continue
        if got != r.fingerprint:
            miss("fingerprint", r.fingerprint, got)
    return out


# ---------------------------------------------------------------------------- noise floor
def _platform_here(ds: LatencyDataset) -> "Platform":
    """The data set's Platform, after checking that this machine is that platform."""
    from archcast.profile.platform import Platform, get_backend

    where = ds.path / PLATFORM_FILE
    try:
        p = Platform.from_dict(ds.platform)
    except (ArchcastError, TypeError) as e:
        raise InvalidInputError(f"{where}: not a valid platform: {e}") from None
    if p.platform_id != ds.platform.get("platform_id"):
        raise InvalidInputError(f"{where}: its fields give platform id {p.platform_id}, not the recorded "
                                f"{ds.platform.get('platform_id')} (edited?)")
    try:
        get_backend(p.backend).check_available(p)
    except ArchcastError as e:
        raise InvalidInputError(
            f"cannot retest {ds.path} here: its platform {p.name} ({p.platform_id}: {p.device}, {p.runtime} "
            f"{p.runtime_version}, {p.threads} thread(s)) is not this machine: {e}") from None
    return p


def _median(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None and math.isfinite(x)]
    return float(np.median(v)) if v else None


def _rounded(obj: Any) -> Any:
    """``obj`` with every float rounded to 5 significant digits (readable JSON; noise is larger)."""
    if isinstance(obj, float):
        return float(f"{obj:.{_SIG_DIGITS}g}") if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v) for v in obj]
    return obj


def _ape_stats(first: np.ndarray, again: np.ndarray) -> dict[str, float]:
    ape = np.abs(again - first) / first
    return {"mape": float(ape.mean()), "median_ape": float(np.median(ape)), "p90_ape": float(np.percentile(ape, 90)),
            "max_ape": float(ape.max())}


def retest_latency(data: str | Path | LatencyDataset, count: int = 300, seed: int = 0, workers: int = 2,
                   db: str | Path | None = None, *, measure_kw: dict[str, Any] | None = None,
                   timeout_s: float = 600.0, progress: bool = False) -> dict[str, Any]:
    """Measure ``count`` random models of the data set again and compare with the recorded numbers.

    The models are regenerated from their stored config and measured by the profile runner
    (``workers >= 1``: fresh worker processes; 0: this process) on the data set's platform, which
    must be this machine. Results go to ``db`` (resumable; it must not be the store the data set
    came from) or a temporary store. ``measure_kw`` defaults to the protocol in the manifest,
    else :data:`DEFAULT_MEASURE_KW`.

    Writes ``retest.csv`` and ``noise_floor.json`` into the data set directory and returns the
    latter's content: ``n`` pairs, median CV (whole data set, retested subset first/retest),
    test-retest relative errors of the median and min latency (``mape``, ``median_ape``,
    ``p90_ape``, ``max_ape``: fractions), ``drift`` (geometric-mean retest/first ratio - 1),
    ``retest_as_predictor`` (:func:`archcast.metrics.all_metrics` of retest vs first: the best a
    predictor can score against these labels) and ``per_family``.

    Raises:
        InvalidInputError: this machine is not the data set's platform, or bad arguments.
    """
    import tempfile

    from archcast import metrics
    from archcast.profile.runner import profile_samples
    from archcast.store import Store

    ds = _as_dataset(data)
    platform = _platform_here(ds)
    picked = _pick(ds, count, seed, "retest")
    kw = dict(measure_kw or ds.manifest.get("measure_kw") or DEFAULT_MEASURE_KW)
    samples = [ds.records[i].sample() for i in picked]

    with tempfile.TemporaryDirectory(prefix="archcast-retest-") as tmp:
        store = Store(db if db is not None else Path(tmp) / "retest.db")
        try:
            report = profile_samples(samples, store, platform, batch_size=ds.batch_size, workers=workers,
                                     progress=progress, measure_kw=kw, timeout_s=timeout_s)
            rows = store.measurements(platform.platform_id, batch_size=ds.batch_size)
        finally:
            store.close()
    by_fp = {r.fingerprint: r for r in rows}
    by_sample = {(r.family, r.seed): r for r in rows}

    pairs: list[tuple[LatencyRecord, MeasurementRecord]] = []
    table = []
    for i in sorted(picked, key=lambda k: _model_order(ds.records[k].family, ds.records[k].seed,
                                                        ds.records[k].fingerprint)):
        r = ds.records[i]
        m = by_fp.get(r.fingerprint)
        status, error = "ok", ""
        if m is None or m.status != "ok":
            other = m or by_sample.get((r.family, r.seed))
            if other is None:
                status, error = "missing", "no retest measurement"
            elif other.status != "ok":
                status, error = "failed", other.error or ""
            else:
                status, error = "mismatch", f"regenerated as graph {other.fingerprint}"
            m = None
        elif _iso(m.measured_at) == r.measured_at and m.latency_ms_median is not None \
                and _num(m.latency_ms_median) == _num(r.latency_ms_median):
            raise InvalidInputError(f"store {store.location} holds the data set's own measurement of {r.fingerprint}; "
                                    "retest into a separate --db (or none: a temporary store)")
        else:
            pairs.append((r, m))
        table.append((r.fingerprint, r.family, r.seed, status, _num(r.latency_ms_median),
                      _num(m.latency_ms_median) if m else "", _num(r.latency_ms_min),
                      _num(m.latency_ms_min) if m else "", _num(r.latency_cv), _num(m.latency_cv) if m else "",
                      " ".join(error.split())))
    _write_csv(ds.path / RETEST_FILE, RETEST_COLUMNS, table)

    result: dict[str, Any] = {
        "n": len(pairs), "n_requested": count, "n_picked": len(picked), "n_not_paired": len(picked) - len(pairs),
        "not_paired": [f"{t[1]}/{t[2]}: {t[3]} {t[10]}".strip() for t in table if t[3] != "ok"][:20],
        "dataset_fingerprint": ds.fingerprint, "platform_id": platform.platform_id, "measure_kw": kw,
        "workers": workers, "seed": seed, "retested_at": _iso(datetime.now(timezone.utc).replace(tzinfo=None)),
        "retest_wall_s": round(report.wall_s, 1),
        "median_cv_all": _median(r.latency_cv for r in ds.records),
        "median_cv_subset_first": _median(r.latency_cv for r, _ in pairs),
        "median_cv_subset_retest": _median(m.latency_cv for _, m in pairs),
    }
    if pairs:
        first = np.array([r.latency_ms_median for r, _ in pairs])
        again = np.array([m.latency_ms_median for _, m in pairs])
        result["median_latency"] = _ape_stats(first, again)
        result["drift"] = float(np.exp(np.mean(np.log(again / first))) - 1.0)
        mins = [(r.latency_ms_min, m.latency_ms_min) for r, m in pairs
                if r.latency_ms_min is not None and m.latency_ms_min is not None]
        if mins:
            result["min_latency"] = _ape_stats(np.array([a for a, _ in mins]), np.array([b for _, b in mins]))
        if len(pairs) >= 2 and np.ptp(first) > 0 and np.ptp(again) > 0:
            result["retest_as_predictor"] = metrics.all_metrics(first, again)
        per_family: dict[str, Any] = {}
        for fam in sorted({r.family for r, _ in pairs}):
            sub = [(r, m) for r, m in pairs if r.family == fam]
            f = np.array([r.latency_ms_median for r, _ in sub])
            a = np.array([m.latency_ms_median for _, m in sub])
            s = _ape_stats(f, a)
            per_family[fam] = {"n": len(sub), "mape": s["mape"], "median_ape": s["median_ape"],
                               "median_cv_first": _median(r.latency_cv for r, _ in sub),
                               "median_cv_retest": _median(m.latency_cv for _, m in sub)}
        result["per_family"] = per_family
    result = _rounded(result)
    _write_json(ds.path / NOISE_FILE, result)
    return result


# ---------------------------------------------------------------------------- datasheet
def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:,.0f}"


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f} %"


def _range(values: Sequence[float | None], digits: int = 3) -> str:
    v = [x for x in values if x is not None]
    return "–" if not v else f"{_fmt(min(v), digits)}–{_fmt(max(v), digits)}"


def _family_row(name: str, recs: Sequence[LatencyRecord]) -> str:
    lat = np.array([r.latency_ms_median for r in recs])
    gflops = [r.flops / 1e9 if r.flops is not None else None for r in recs]
    return (f"| {name} | {len(recs)} | {_range([r.n_nodes for r in recs], 6)} | {_range(gflops)} | "
            f"{_fmt(lat.min())} | {_fmt(float(np.median(lat)))} | {_fmt(lat.max())} | {_fmt(lat.max() / lat.min())} | "
            f"{_pct(_median(r.latency_cv for r in recs))} |")


def _hist_figures(ds: LatencyDataset) -> list[Path]:
    """``hist/<family>.png`` per family and ``latency_hist.png`` with all families on one log-x scale."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state
    from matplotlib.ticker import MaxNLocator

    fams = ds.families()
    lat = ds.latency_ms
    lo, hi = float(lat.min()), float(lat.max())
    if hi <= lo * 1.01:
        lo, hi = lo / 1.1, hi * 1.1
    bins = np.geomspace(lo, hi, 41)
    hist_dir = ds.path / HIST_DIR
    hist_dir.mkdir(exist_ok=True)
    paths = []

    def draw(ax: Any, fam: str, fam_bins: np.ndarray) -> None:
        x = np.array([r.latency_ms_median for r in ds.records if r.family == fam])
        ax.hist(x, bins=fam_bins, color="#3b6ea8", edgecolor="white", linewidth=0.3)
        ax.set_xscale("log")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{fam} (n={x.size}, median {_fmt(float(np.median(x)))} ms)", fontsize=9)
        ax.tick_params(labelsize=7)

    for fam in fams:
        x = np.array([r.latency_ms_median for r in ds.records if r.family == fam])
        a, b = float(x.min()), float(x.max())
        if b <= a * 1.01:
            a, b = a / 1.1, b * 1.1
        fig = Figure(figsize=(5, 3.2))
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        draw(ax, fam, np.geomspace(a, b, 26))
        ax.set_xlabel("median latency (ms, log scale)")
        ax.set_ylabel("models")
        fig.tight_layout()
        path = hist_dir / f"{fam.replace('/', '_')}.png"
        fig.savefig(path, dpi=100)
        paths.append(path)

    cols = min(5, len(fams))
    rows = -(-len(fams) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, fam in zip(axes.flat, fams):
        draw(ax, fam, bins)
    for ax in list(axes.flat)[len(fams):]:
        ax.axis("off")
    fig.supxlabel("median latency (ms, log scale, same axis for all families)", fontsize=9)
    fig.suptitle(f"{len(ds)} models on {ds.platform.get('name')} ({ds.platform.get('device')})", fontsize=10)
    fig.tight_layout()
    path = ds.path / HIST_GRID_FILE
    fig.savefig(path, dpi=90)
    paths.append(path)
    return paths


def write_datasheet(data: str | Path | LatencyDataset) -> Path:
    """Write ``DATASHEET.md`` (what, platform, protocol, per-family table, noise floor, how to
    reproduce) and the histograms ``hist/<family>.png`` + ``latency_hist.png``. Returns the path."""
    ds = _as_dataset(data)
    p, man = ds.platform, ds.manifest
    kw = man.get("measure_kw")
    fams = ds.families()
    recs = ds.records
    seeds = [r.seed for r in recs if r.seed is not None] + [int(f["seed"]) for f in ds.failures if f.get("seed")]
    times = sorted(r.measured_at for r in recs if r.measured_at)
    hosts = sorted({r.host for r in recs if r.host})
    runs = [r.n_runs for r in recs if r.n_runs is not None]
    warm = [r.warmup_runs for r in recs if r.warmup_runs is not None]
    _hist_figures(ds)

    L: list[str] = [
        f"# Latency data set: {len(ds)} models, {len(fams)} families, {p.get('name')}",
        "",
        f"Measured inference latency (milliseconds, batch size {ds.batch_size}) of {len(ds)} distinct networks "
        f"sampled from {len(fams)} archcast zoo families, run by {p.get('runtime')} with {p.get('threads')} intra-op "
        f"thread(s) on {p.get('device')}. Every model is a "
        "(family, seed) pair: the family's generator turns the seed into a config, the config into a weight-free "
        "ONNX graph; `models.csv` keeps the config and generator version, so each graph can be rebuilt exactly "
        "(`archcast dataset verify`). The label is the median latency; min, mean, p90, std and CV are given too.",
        "",
        f"Data set fingerprint `{ds.fingerprint}` (sha256 of the data files, see `{MANIFEST_FILE}`); "
        f"archcast {man.get('archcast_version')}.",
        "",
        "## Files",
        "",
        "| file | content |",
        "|---|---|",
        f"| `{MODELS_FILE}` | fingerprint, family, seed, generator version and config (JSON), nodes, FLOPs, params, "
        "memory bytes; sorted by (family, seed) |",
        f"| `{MEASUREMENTS_FILE}` | latency min / median / mean / p90 / std (ms), CV, timed runs, warm-up runs, time "
        "(UTC), host; same order; floats to 5 significant digits |",
        f"| `{GRAPHS_FILE}` | the graphs (archcast NetGraph JSON), one line per model in the same order: a cache for "
        "training without ONNX export |",
        f"| `{FAILURES_FILE}` | {len(ds.failures)} models that could not be exported or run, with the reason |",
        f"| `{ALIASES_FILE}` | {len(ds.aliases)} (family, seed) samples that build a graph already listed under "
        "another seed (measured once) |",
        f"| `{PLATFORM_FILE}`, `{MANIFEST_FILE}` | platform fields; format, protocol, counts, checksums |",
        "",
        "## Platform",
        "",
        "| field | value |",
        "|---|---|",
    ]
    for k in ("name", "platform_id", "device", "backend", "runtime", "runtime_version", "threads", "precision",
              "graph_opt_level"):
        L.append(f"| {k} | {p.get(k)} |")
    L.append(f"| host(s) | {', '.join(hosts) or '–'} |")
    L += ["", "## Protocol", ""]
    has_proto = bool(kw) and "min_runs" in kw and "min_time_s" in kw
    warm_kw = (kw or {}).get("warmup_runs", 10), (kw or {}).get("warmup_s", 0.3)  # measure_onnx's defaults
    timing = (f"runs continue until at least {kw['min_runs']} runs and {kw['min_time_s']} s are reached"
              if has_proto else
              "protocol not recorded at export (pass --min-runs/--min-time to `archcast dataset export`)")
    L += [
        f"- onnxruntime session with {p.get('threads')} intra-op thread(s), 1 inter-op thread, sequential execution, "
        f"graph optimisation level `{p.get('graph_opt_level')}`, CPU execution provider only; one model measured at "
        "a time per worker process.",
        "- Weight-free graphs get random weights (N(0, 2/fan_in); norm scales and biases U[0.5, 1.5)) and random "
        "inputs before the session is built.",
        f"- Warm-up: {warm_kw[0]} runs or {warm_kw[1]} s, whichever ends first (observed: "
        f"{_range(warm, 6)} runs).",
        f"- Timing: each run timed alone; {timing} (observed: {_range(runs, 6)} runs, median "
        f"{_fmt(_median(runs), 6)}).",
        "- Label: the median of the timed runs, milliseconds.",
        f"- Measured {times[0] if times else '?'} to {times[-1] if times else '?'} (UTC).",
        "",
        "## Families",
        "",
        "| family | models | nodes | GFLOPs | latency ms min | median | max | span max/min | median CV |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for fam in fams:
        L.append(_family_row(fam, [r for r in recs if r.family == fam]))
    L.append(_family_row("**all**", recs))
    L += ["", f"Histograms: `{HIST_GRID_FILE}` (all families, one log axis) and `{HIST_DIR}/<family>.png`.", "",
          f"![latency histograms]({HIST_GRID_FILE})", ""]
    if ds.failures:
        reasons: dict[str, int] = {}
        for f in ds.failures:
            key = (f.get("error") or "?").split(":")[0]
            reasons[key] = reasons.get(key, 0) + 1
        L += [f"{len(ds.failures)} models failed: "
              + ", ".join(f"{n} at {k}" for k, n in sorted(reasons.items(), key=lambda kv: -kv[1]))
              + f" (see `{FAILURES_FILE}`).", ""]

    L += ["## Noise floor", ""]
    nf_path = ds.path / NOISE_FILE
    if nf_path.is_file():
        nf = _read_json(nf_path)
        med, mn = nf.get("median_latency", {}), nf.get("min_latency", {})
        stale = nf.get("dataset_fingerprint") != ds.fingerprint
        L += [
            f"{nf.get('n')} random models re-measured "
            + (f"in new worker processes ({nf.get('workers')} workers, " if nf.get("workers") else "(in one process, ")
            + f"same platform, protocol {json.dumps(nf.get('measure_kw'))}) on {nf.get('retested_at')}"
            + (" — on an earlier version of this data set (fingerprint "
               f"{nf.get('dataset_fingerprint')})" if stale else "") + f"; pairs in `{RETEST_FILE}`.",
            "",
            "| | value |",
            "|---|---:|",
            f"| median within-run CV, whole data set | {_pct(nf.get('median_cv_all'))} |",
            f"| median within-run CV, retested models (first / retest) | {_pct(nf.get('median_cv_subset_first'))} / "
            f"{_pct(nf.get('median_cv_subset_retest'))} |",
            f"| test-retest MAPE, median latency | {_pct(med.get('mape'))} |",
            f"| median / p90 / max abs. relative difference, median latency | {_pct(med.get('median_ape'))} / "
            f"{_pct(med.get('p90_ape'))} / {_pct(med.get('max_ape'))} |",
            f"| test-retest MAPE, min latency | {_pct(mn.get('mape'))} |",
            f"| drift (geometric mean retest/first − 1) | {_pct(nf.get('drift'))} |",
        ]
        pred = nf.get("retest_as_predictor")
        if pred:
            L.append(f"| retest as a predictor of the labels: Kendall τ / Acc(5 %) / Acc(10 %) | "
                     f"{pred['kendall_tau']:.4f} / {_pct(pred['acc_5pct'])} / {_pct(pred['acc_10pct'])} |")
        L += ["", "A latency predictor cannot be expected to beat these numbers against these labels.", ""]
        if nf.get("per_family"):
            L += ["| family | n | MAPE | median abs. rel. diff. | median CV |", "|---|---:|---:|---:|---:|"]
            for fam, s in nf["per_family"].items():
                L.append(f"| {fam} | {s['n']} | {_pct(s['mape'])} | {_pct(s['median_ape'])} | "
                         f"{_pct(s['median_cv_first'])} |")
            L.append("")
    else:
        L += [f"Not measured yet: `archcast dataset retest {ds.path.name} --count 300 --workers 2` writes "
              f"`{NOISE_FILE}`; then rerun `archcast dataset datasheet`.", ""]

    start = min(seeds) if seeds else 0
    n_seeds = (max(seeds) - start + 1) if seeds else 0
    proto = f" --min-runs {kw['min_runs']} --min-time {kw['min_time_s']}" if has_proto else ""
    opt = "" if p.get("graph_opt_level") == "all" else f" --graph-opt-level {p.get('graph_opt_level')}"
    L += [
        "## Reproduce",
        "",
        f"On a machine with the same CPU model ({p.get('device')}) and onnxruntime {p.get('runtime_version')}:",
        "",
        "```sh",
        f"archcast profile --family {' '.join(fams)} --count {n_seeds} --start-seed {start} "
        f"--batch-size {ds.batch_size} --threads {p.get('threads')}{opt}{proto} --workers 2 --db archcast.db",
        f"archcast dataset export --db archcast.db --platform {p.get('name')} --batch-size {ds.batch_size}"
        f"{proto} --out {ds.path.name}",
        f"archcast dataset verify {ds.path.name} --count 20",
        f"archcast dataset retest {ds.path.name} --count 300 --workers 2",
        f"archcast dataset datasheet {ds.path.name}",
        "```",
        "",
        "Keep `--workers` × threads within the free CPU cores: concurrent measurements disturb each other.",
        "",
    ]
    path = ds.path / DATASHEET_FILE
    path.write_text("\n".join(L), encoding="utf-8")
    return path


__all__ = ["DEFAULT_MEASURE_KW", "LatencyDataset", "LatencyRecord", "RegenerationMismatch", "export_latency_dataset",
           "load_latency_dataset", "retest_latency", "verify_regeneration", "write_datasheet"]
