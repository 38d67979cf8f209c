"""Reading a measured latency data set: a directory of small, diff-friendly files.

Format 1 (``archcast dataset export`` of plain ``archcast profile`` runs)::

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

Format 2 (measured with the protocol of :mod:`archcast.collect`: passes, canaries, kernels) adds
columns to ``measurements.csv`` (``label_ms`` = the label, its ``label_spread`` across passes,
``n_passes``, thread CPU time, canary ``speed_index``, kernel coverage; the manifest's ``label``
says which statistic the label is) and three files::

    passes.csv.xz               every measurement row behind the labels: each pass, the canary rows,
                                rows superseded by an automatic re-measure (kept as history)
    kernels.csv.xz              fingerprint, pass_id, kernel, op_type, kernel_us, kernel_us_min:
                                per-kernel times (median and min over the profiled runs, µs) keyed
                                by model and kernel name
    optimized_graphs.jsonl.xz   the graph onnxruntime executed for each model (archcast IR of its
                                optimised graph; kernel names are its node names), ``null`` if none

Writing (export), verifying, retesting and datasheets live in :mod:`archcast.collect`.
Relative errors (MAPE...) are fractions, not percent; latencies are milliseconds.
"""

from __future__ import annotations

import csv
import hashlib
import json
import lzma
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archcast.errors import ArchcastError, InvalidInputError

if TYPE_CHECKING:
    from archcast.data.dataset import LazyGraphs
    from archcast.graph.ir import NetGraph
    from archcast.zoo.base import ZooSample

FORMAT = "archcast-latency-dataset"
FORMAT_VERSION = 2  # what archcast writes for data sets measured with passes; format 1 is still read
FORMAT_VERSIONS = (1, 2)
MANIFEST_FILE = "manifest.json"
PLATFORM_FILE = "platform.json"
MODELS_FILE = "models.csv"
MEASUREMENTS_FILE = "measurements.csv"
FAILURES_FILE = "failures.csv"
ALIASES_FILE = "aliases.csv"
GRAPHS_FILE = "graphs.jsonl.xz"
PASSES_FILE = "passes.csv.xz"
KERNELS_FILE = "kernels.csv.xz"
OPTIMIZED_GRAPHS_FILE = "optimized_graphs.jsonl.xz"
DATA_FILES = (PLATFORM_FILE, MODELS_FILE, MEASUREMENTS_FILE, FAILURES_FILE, ALIASES_FILE, GRAPHS_FILE)
DATA_FILES_V2 = DATA_FILES + (PASSES_FILE, KERNELS_FILE, OPTIMIZED_GRAPHS_FILE)
RETEST_FILE = "retest.csv"
NOISE_FILE = "noise_floor.json"
DATASHEET_FILE = "DATASHEET.md"
HIST_DIR = "hist"
HIST_GRID_FILE = "latency_hist.png"

# the protocol of the reference data set (archcast profile's own defaults are 50 runs / 0.5 s)
DEFAULT_MEASURE_KW: dict[str, Any] = {"min_runs": 30, "min_time_s": 0.3}
SIG_DIGITS = 5

MODEL_COLUMNS = ("fingerprint", "family", "seed", "generator_version", "generator_config", "n_nodes", "flops",
                 "params", "memory_bytes")
MEASUREMENT_COLUMNS = ("fingerprint", "family", "seed", "batch_size", "latency_ms_min", "latency_ms_median",
                       "latency_ms_mean", "latency_ms_p90", "latency_ms_std", "latency_cv", "n_runs", "warmup_runs",
                       "measured_at", "host")
MEASUREMENT_COLUMNS_V2 = ("label_ms", "label_spread", "n_passes", "cpu_ms_min", "cpu_ms_median", "speed_index",
                          "kernel_coverage", "kernel_sum_ms", "n_kernels")
FAILURE_COLUMNS = ("fingerprint", "family", "seed", "generator_version", "generator_config", "batch_size", "error",
                   "measured_at", "host")
ALIAS_COLUMNS = ("family", "seed", "generator_version", "generator_config", "fingerprint")
RETEST_COLUMNS = ("fingerprint", "family", "seed", "status", "first_median_ms", "retest_median_ms", "first_min_ms",
                  "retest_min_ms", "first_cv", "retest_cv", "error")
PASS_COLUMNS = ("row_id", "fingerprint", "role", "pass_id", "status", "latency_ms_min", "latency_ms_median",
                "latency_cv", "cpu_ms_min", "cpu_ms_median", "cpu_cv", "n_runs", "speed_index", "kernel_sum_us",
                "profile_run_us", "n_kernels", "measured_at", "host", "superseded")
KERNEL_COLUMNS = ("fingerprint", "pass_id", "kernel", "op_type", "kernel_us", "kernel_us_min")
FLOAT_STATS = ("latency_ms_min", "latency_ms_median", "latency_ms_mean", "latency_ms_p90", "latency_ms_std",
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
    # format 2 (protocol of archcast.collect): the label and its evidence; None in format 1
    label_ms: float | None = None
    label_spread: float | None = None
    n_passes: int | None = None
    cpu_ms_min: float | None = None
    cpu_ms_median: float | None = None
    speed_index: float | None = None
    kernel_coverage: float | None = None  # kernel sum / the profiled run (wall), median over passes
    kernel_sum_ms: float | None = None  # sum of the kernels' median times, median over passes
    n_kernels: int | None = None

    @property
    def latency_ms(self) -> float:
        """The label, milliseconds: ``label_ms`` (format 2, see the manifest's ``label``), else the
        median latency (format 1)."""
        return self.label_ms if self.label_ms is not None else self.latency_ms_median

    @property
    def regenerable(self) -> bool:
        return self.seed is not None and self.generator_config is not None and self.generator_version is not None

    def sample(self) -> ZooSample:
        """The zoo sample recorded for this model (its stored config, not a fresh draw)."""
        from archcast.zoo.base import ZooSample

        if not self.regenerable:
            raise InvalidInputError(f"model {self.fingerprint} ({self.family}) has no zoo seed and config")
        return ZooSample(self.family, int(self.seed), json.loads(self.generator_config), str(self.generator_version))


NUMERIC_FIELDS = ("seed", "n_nodes", "flops", "params", "memory_bytes", "batch_size", *FLOAT_STATS, "n_runs",
                  "warmup_runs", "label_ms", "label_spread", "n_passes", "cpu_ms_min", "cpu_ms_median", "speed_index",
                  "kernel_coverage", "kernel_sum_ms", "n_kernels")


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
        self._optimized: LazyGraphs | None = None

    @property
    def format_version(self) -> int:
        return int(self.manifest["format_version"])

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
        """``[n]`` float64 labels, milliseconds (:attr:`LatencyRecord.latency_ms`)."""
        return np.array([r.latency_ms for r in self.records], dtype=np.float64)

    def column(self, name: str) -> np.ndarray:
        """``[n]`` float64 values of a numeric :class:`LatencyRecord` field (NaN where missing)."""
        if name not in NUMERIC_FIELDS:
            raise InvalidInputError(f"column {name!r} is not a numeric field; valid: {', '.join(NUMERIC_FIELDS)}")
        return np.array([np.nan if getattr(r, name) is None else getattr(r, name) for r in self.records],
                        dtype=np.float64)

    def families(self) -> list[str]:
        """The distinct family names, sorted."""
        return sorted({r.family for r in self.records})

    def graphs(self) -> LazyGraphs:
        """The models' :class:`NetGraph` in record order, parsed on first access from ``graphs.jsonl.xz``."""
        if self._graphs is None:
            self._graphs = _lazy_graphs(self.path / GRAPHS_FILE, len(self.records), optional=False)
        return self._graphs

    def optimized_graphs(self) -> LazyGraphs:
        """Format 2: the graph onnxruntime executed for each model (its optimised, fused graph, as
        archcast IR; kernel names = node names), in record order; None where it was not captured."""
        self._require_v2("optimized graphs")
        if self._optimized is None:
            self._optimized = _lazy_graphs(self.path / OPTIMIZED_GRAPHS_FILE, len(self.records), optional=True)
        return self._optimized

    def kernels(self) -> list[KernelTime]:
        """Format 2: every kernel time of every pass (``kernels.csv.xz``), in record order."""
        return list(self.iter_kernels())

    def iter_kernels(self) -> Iterator[KernelTime]:
        """:meth:`kernels` one row at a time (a large data set's table need not fit in memory as
        objects). A damaged file is an :class:`InvalidInputError` when the reading reaches it."""
        self._require_v2("kernel tables")
        path = self.path / KERNELS_FILE
        for i, r in enumerate(_iter_csv(path, KERNEL_COLUMNS, opener=_open_xz)):
            yield KernelTime(r["fingerprint"], r["pass_id"], r["kernel"], r["op_type"],
                             _cell(path, i + 2, r, "kernel_us", float, required=True),
                             _cell(path, i + 2, r, "kernel_us_min", float))

    def kernel_labels(self, passes: Sequence[str] | None = None) -> dict[str, dict[str, float]]:
        """Format 2: per model fingerprint, per kernel name: the median over ``passes`` (default:
        the label passes) of the kernel's per-pass minimum (microseconds per run; the median where
        no minimum was recorded) — the per-kernel labels. The minimum, because on the pilot its
        retest error was 3.6 % (median over kernels) against 15 % for the per-pass median."""
        use = set(passes if passes is not None else self.manifest["label"]["passes"])
        by: dict[str, dict[str, list[float]]] = {}
        for k in self.iter_kernels():
            if k.pass_id in use:
                by.setdefault(k.fingerprint, {}).setdefault(k.kernel, []).append(
                    k.kernel_us_min if k.kernel_us_min is not None else k.kernel_us)
        return {fp: {name: float(np.median(v)) for name, v in ks.items()} for fp, ks in by.items()}

    def passes(self) -> list[dict[str, str]]:
        """Format 2: every measurement row behind the labels (``passes.csv.xz``: all passes, canary
        rows, rows superseded by a re-measure), as dicts of strings."""
        self._require_v2("pass rows")
        return _read_csv(self.path / PASSES_FILE, PASS_COLUMNS, opener=_open_xz)

    def _require_v2(self, what: str) -> None:
        if self.format_version < 2:
            raise InvalidInputError(f"data set {self.path} is format {self.format_version}: it has no {what} "
                                    "(format 2, measured with archcast profile --passes, has them)")


@dataclass(frozen=True)
class KernelTime:
    """One kernel's time in one pass: ``kernel`` names a node of the model's optimised graph;
    ``kernel_us`` is the median over the pass's profiled runs, ``kernel_us_min`` the minimum
    (None where not recorded), microseconds per run."""

    fingerprint: str
    pass_id: str
    kernel: str
    op_type: str
    kernel_us: float
    kernel_us_min: float | None = None


def _open_xz(path: Path) -> Any:
    return lzma.open(path, "rt", encoding="utf-8", newline="")


def _lazy_graphs(path: Path, n: int, *, optional: bool) -> LazyGraphs:
    from archcast.data.dataset import LazyGraphs
    from archcast.graph.ir import NetGraph

    try:
        with lzma.open(path, "rt", encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        raise InvalidInputError(f"{path} does not exist; re-export the data set (archcast dataset export)") from None
    except (lzma.LZMAError, EOFError, UnicodeDecodeError, OSError) as e:
        raise InvalidInputError(f"{path} is not a readable xz file ({e}); re-export the data set") from None
    if len(lines) != n:
        raise InvalidInputError(f"{path} holds {len(lines)} graphs but {MODELS_FILE} lists {n} models; "
                                "re-export the data set")

    def build(item: object) -> NetGraph | None:
        i, text = item  # type: ignore[misc]
        if optional and text == "null":
            return None
        try:
            return NetGraph.from_json(text)
        except (ArchcastError, KeyError, TypeError, ValueError) as e:
            raise InvalidInputError(f"{path}: line {i + 1} is not a graph: {e}") from None

    return LazyGraphs(list(enumerate(lines)), build)


# ---------------------------------------------------------------------------- format helpers
def num_cell(x: Any) -> str:
    """A CSV cell: '' for None/NaN, ints as they are, floats to 5 significant digits."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return ""
    if isinstance(x, float):
        return f"{x:.{SIG_DIGITS}g}"
    return str(x)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file (the manifest's checksums)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def model_order(family: str | None, seed: int | None, fingerprint: str) -> tuple[str, float, str]:
    """Sort key of the files' rows: (family, seed), models without a seed last."""
    return (family or "", float("inf") if seed is None else float(seed), fingerprint)


def files_fingerprint(sums: dict[str, str]) -> str:
    """The data set fingerprint: 16 hex digits of sha256 over the sorted file checksums."""
    return hashlib.sha256("".join(f"{k}:{sums[k]}\n" for k in sorted(sums)).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- load
def _read_csv(path: Path, columns: Sequence[str], opener: Any = None) -> list[dict[str, str]]:
    return list(_iter_csv(path, columns, opener))


def _iter_csv(path: Path, columns: Sequence[str], opener: Any = None) -> Iterator[dict[str, str]]:
    """The rows of a CSV file as dicts, read as they are asked for; errors name the file."""
    try:
        with (opener(path) if opener else open(path, newline="", encoding="utf-8")) as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            lacking = [c for c in columns if c not in header]
            if lacking:
                raise InvalidInputError(f"{path}: missing column(s) {', '.join(lacking)}; expected {', '.join(columns)}")
            yield from reader
    except FileNotFoundError:
        raise InvalidInputError(f"{path} does not exist; re-export the data set (archcast dataset export)") from None
    except (UnicodeDecodeError, csv.Error, lzma.LZMAError, EOFError) as e:
        raise InvalidInputError(f"{path} is not a readable CSV file: {e}") from None


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; errors name the file and the fix."""
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
    manifest = read_json(mpath)
    if manifest.get("format") != FORMAT or manifest.get("format_version") not in FORMAT_VERSIONS:
        raise InvalidInputError(f"{mpath}: format {manifest.get('format')!r} version {manifest.get('format_version')!r}; "
                                f"this archcast reads {FORMAT!r} versions {', '.join(map(str, FORMAT_VERSIONS))}")
    v2 = manifest["format_version"] >= 2
    for key in ("platform_id", "batch_size", "files", "fingerprint"):
        if key not in manifest:
            raise InvalidInputError(f"{mpath}: missing key {key!r}")
    for name in DATA_FILES_V2 if v2 else DATA_FILES:
        p = root / name
        if not p.is_file():
            raise InvalidInputError(f"{p} does not exist; re-export the data set (archcast dataset export)")
        if verify_checksums and sha256_file(p) != manifest["files"].get(name):
            raise InvalidInputError(f"{p} differs from the checksum in {MANIFEST_FILE} (edited or damaged); "
                                    "re-export the data set")

    platform = read_json(root / PLATFORM_FILE)
    if platform.get("platform_id") != manifest["platform_id"]:
        raise InvalidInputError(f"{root / PLATFORM_FILE}: platform_id {platform.get('platform_id')!r} is not the "
                                f"manifest's {manifest['platform_id']!r}")
    mpath_models, mpath_meas = root / MODELS_FILE, root / MEASUREMENTS_FILE
    models = _read_csv(mpath_models, MODEL_COLUMNS)
    meas = _read_csv(mpath_meas, MEASUREMENT_COLUMNS + (MEASUREMENT_COLUMNS_V2 if v2 else ()))
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
            **({k: _cell(mpath_meas, line, m, k, int if k in ("n_passes", "n_kernels") else float,
                         required=k == "label_ms") for k in MEASUREMENT_COLUMNS_V2} if v2 else {}),
        ))
        if not records[-1].latency_ms > 0:
            raise InvalidInputError(f"{mpath_meas}: line {line}: the label must be > 0; got {records[-1].latency_ms}")
    failures = _read_csv(root / FAILURES_FILE, FAILURE_COLUMNS)
    aliases = _read_csv(root / ALIASES_FILE, ALIAS_COLUMNS)
    return LatencyDataset(root, records, platform, manifest, failures, aliases)


def as_dataset(data: str | Path | LatencyDataset) -> LatencyDataset:
    """``data`` itself, or the data set loaded from that directory."""
    return data if isinstance(data, LatencyDataset) else load_latency_dataset(data)


def pick_regenerable(ds: LatencyDataset, count: int, seed: int, what: str) -> list[int]:
    """``count`` random regenerable record indices (all of them when fewer), in random order."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInputError(f"{what} count must be an integer >= 1; got {count!r}")
    pool = [i for i, r in enumerate(ds.records) if r.regenerable]
    if not pool:
        raise InvalidInputError(f"data set {ds.path} has no zoo model (family + seed + config) to {what}")
    rng = np.random.default_rng(seed)
    return [pool[k] for k in rng.choice(len(pool), size=min(count, len(pool)), replace=False)]


__all__ = ["DATA_FILES", "DATA_FILES_V2", "DEFAULT_MEASURE_KW", "FORMAT", "FORMAT_VERSION", "FORMAT_VERSIONS",
           "KernelTime", "LatencyDataset", "LatencyRecord", "as_dataset", "load_latency_dataset",
           "pick_regenerable"]
