"""NAS-Bench-101 records from the formats that exist offline.

Two inputs are read (the format is detected from the first bytes):

* **JSON lines** (NASLib-style export), one cell per line::

      {"module_adjacency": [[0,1,...],...], "module_operations": ["input",...,"output"],
       "final_test_accuracy": 0.93, "final_validation_accuracy": 0.92,
       "module_hash": "...", "epochs": 108, ...}      # last keys optional

* the original **TFRecord** (``nasbench_only108.tfrecord`` / ``nasbench_full.tfrecord``): records
  framed as ``uint64 length, uint32 masked-crc32c(length), data, uint32 masked-crc32c(data)``
  (little endian); each data is a JSON list ``[module_hash, epochs, raw_adjacency (n*n digits),
  raw_operations (comma separated), raw_metrics (base64 ModelMetrics protobuf)]``. The protobuf is
  decoded by a minimal wire-format reader; the final evaluation is the last ``evaluation_data``.

Accuracies are fractions in [0, 1] in the files and in :class:`Nb101Record`; the
:class:`CellDataset` from :func:`load_nasbench101` holds percent.
"""

from __future__ import annotations

import base64
import json
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from archcast.data.dataset import CellDataset
from archcast.errors import InvalidInputError
from archcast.frontends.cells import nb101_graph


@dataclass
class Nb101Record:
    """One training run of one cell. Accuracies are fractions in [0, 1]; times in seconds."""

    module_adjacency: list[list[int]]
    module_operations: list[str]
    final_test_accuracy: float
    final_validation_accuracy: float
    module_hash: str | None = None
    epochs: int | None = None
    final_train_accuracy: float | None = None
    final_training_time: float | None = None
    trainable_parameters: int | None = None


_REQUIRED = ("module_adjacency", "module_operations", "final_test_accuracy", "final_validation_accuracy")
METRICS = ("final_test_accuracy", "final_validation_accuracy", "final_train_accuracy")


# ---------------------------------------------------------------------------- CRC32C / TFRecord
def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data`` (pure Python: ~MB/s, used for framing checks)."""
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC: ``rotr15(crc) + 0xa282ead8``."""
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def iter_tfrecord(path: str | Path, verify_data_crc: bool = False) -> Iterator[bytes]:
    """Yield the payloads of a TFRecord file. The length CRC is always checked; the data CRC only
    when ``verify_data_crc`` (pure-Python CRC is slow on the 500 MB original)."""
    with open(path, "rb") as f:
        k = 0
        while True:
            head = f.read(12)
            if not head:
                return
            if len(head) < 12:
                raise InvalidInputError(f"{path}: TFRecord {k} is truncated in its header")
            (length,), (lcrc,) = struct.unpack("<Q", head[:8]), struct.unpack("<I", head[8:])
            if masked_crc32c(head[:8]) != lcrc:
                raise InvalidInputError(f"{path}: TFRecord {k} has a bad length CRC (not a TFRecord file, or corrupt)")
            data = f.read(length)
            tail = f.read(4)
            if len(data) < length or len(tail) < 4:
                raise InvalidInputError(f"{path}: TFRecord {k} is truncated ({len(data)} of {length} bytes)")
            if verify_data_crc and masked_crc32c(data) != struct.unpack("<I", tail)[0]:
                raise InvalidInputError(f"{path}: TFRecord {k} has a bad data CRC")
            yield data
            k += 1


def write_tfrecord(path: str | Path, payloads: Iterable[bytes]) -> None:
    """Write payloads with TFRecord framing (used by tests and exports)."""
    with open(path, "wb") as f:
        for data in payloads:
            head = struct.pack("<Q", len(data))
            f.write(head + struct.pack("<I", masked_crc32c(head)) + data + struct.pack("<I", masked_crc32c(data)))


# ---------------------------------------------------------------------------- protobuf (ModelMetrics)
def _fields(buf: bytes) -> Iterator[tuple[int, Any]]:
    """Minimal protobuf wire reader: yields ``(field_number, value)``; value is int, bytes or float."""
    i, n = 0, len(buf)

    def varint() -> int:
        nonlocal i
        shift = result = 0
        while True:
            if i >= n:
                raise InvalidInputError("truncated protobuf varint in NAS-Bench-101 metrics")
            b = buf[i]
            i += 1
            result |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return result

    while i < n:
        key = varint()
        field, wire = key >> 3, key & 7
        if wire == 0:
            yield field, varint()
        elif wire == 1:
            yield field, struct.unpack("<d", buf[i : i + 8])[0]
            i += 8
        elif wire == 2:
            size = varint()
            yield field, buf[i : i + size]
            i += size
        elif wire == 5:
            yield field, struct.unpack("<f", buf[i : i + 4])[0]
            i += 4
        else:
            raise InvalidInputError(f"unsupported protobuf wire type {wire} in NAS-Bench-101 metrics")


def _decode_metrics(raw: bytes) -> dict[str, Any]:
    """ModelMetrics -> final train/valid/test accuracy, training time, parameter count."""
    evals: list[dict[int, Any]] = []
    out: dict[str, Any] = {}
    for field, v in _fields(raw):
        if field == 1:
            evals.append(dict(_fields(v)))
        elif field == 2:
            out["trainable_parameters"] = int(v)
    if not evals:
        raise InvalidInputError("NAS-Bench-101 metrics hold no evaluation_data")
    last = evals[-1]  # EvaluationData: 2 training_time, 3 train, 4 validation, 5 test accuracy
    out.update(final_training_time=last.get(2), final_train_accuracy=last.get(3),
               final_validation_accuracy=last.get(4), final_test_accuracy=last.get(5))
    return out


# ---------------------------------------------------------------------------- readers
def _record(d: dict[str, Any], where: str) -> Nb101Record:
    missing = [k for k in _REQUIRED if d.get(k) is None]
    if missing:
        raise InvalidInputError(f"{where}: missing {', '.join(missing)}; each record needs {', '.join(_REQUIRED)}")
    known = {k: d.get(k) for k in Nb101Record.__dataclass_fields__}
    rec = Nb101Record(**known)
    for k in METRICS:
        v = getattr(rec, k)
        if v is not None and not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
            raise InvalidInputError(f"{where}: {k}={v!r}; accuracies must be fractions in [0, 1]")
    return rec


def _from_tfrecord_payload(data: bytes, where: str) -> Nb101Record:
    try:
        module_hash, epochs, raw_adj, raw_ops, raw_metrics = json.loads(data.decode("utf-8"))
        dim = int(round(len(raw_adj) ** 0.5))
        if dim * dim != len(raw_adj):
            raise ValueError(f"adjacency string of length {len(raw_adj)} is not square")
        adj = [[int(raw_adj[r * dim + c]) for c in range(dim)] for r in range(dim)]
        metrics = _decode_metrics(base64.b64decode(raw_metrics))
    except (ValueError, TypeError, UnicodeDecodeError) as e:
        raise InvalidInputError(f"{where}: not a NAS-Bench-101 record ({e})") from None
    return _record(
        {"module_adjacency": adj, "module_operations": raw_ops.split(","), "module_hash": module_hash,
         "epochs": int(epochs), **metrics},
        where,
    )


def read_nasbench101(path: str | Path, verify_crc: bool = False) -> list[Nb101Record]:
    """All records of a JSON-lines or TFRecord NAS-Bench-101 file (format detected)."""
    path = Path(path)
    with open(path, "rb") as f:
        start = f.read(64).lstrip()
    if start.startswith(b"{"):
        out = []
        with open(path, encoding="utf-8") as f:
            for no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    d = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InvalidInputError(f"{path}:{no}: not valid JSON ({e.msg}): {line.strip()[:80]!r}") from None
                if not isinstance(d, dict):
                    raise InvalidInputError(f"{path}:{no}: expected a JSON object, got {type(d).__name__}")
                out.append(_record(d, f"{path}:{no}"))
        return out
    return [_from_tfrecord_payload(p, f"{path} record {k}") for k, p in enumerate(iter_tfrecord(path, verify_crc))]


def write_nasbench101_jsonl(path: str | Path, records: Iterable[Nb101Record]) -> None:
    """Write records as JSON lines (None fields omitted)."""
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({k: v for k, v in asdict(r).items() if v is not None}) + "\n")


def load_nasbench101(path: str | Path, metric: str = "final_test_accuracy", epochs: int | None = 108) -> CellDataset:
    """Cells of a NAS-Bench-101 file with the mean of ``metric`` over repeats, in percent.

    Records whose ``epochs`` is set and differs from ``epochs`` are skipped (``epochs=None`` keeps
    all). Repeats are merged by ``module_hash`` when present, else by the pruned cell's arch string;
    ``keys`` are the pruned cells' arch strings (``meta["arch"]``: adjacency bits ``|`` ops).
    """
    if metric not in METRICS:
        raise InvalidInputError(f"unknown NAS-Bench-101 metric {metric!r}; valid: {', '.join(METRICS)}")
    sums: dict[str, list[float]] = {}
    graphs = {}
    for k, r in enumerate(read_nasbench101(path)):
        if epochs is not None and r.epochs is not None and r.epochs != epochs:
            continue
        try:
            g = nb101_graph(r.module_adjacency, r.module_operations)
        except InvalidInputError as e:
            raise InvalidInputError(f"{path} record {k}: {e}") from None
        key = r.module_hash or g.meta["arch"]
        v = getattr(r, metric)
        if v is None:
            raise InvalidInputError(f"{path} record {k}: has no {metric}")
        graphs.setdefault(key, g)
        sums.setdefault(key, []).append(float(v))
    if not sums:
        raise InvalidInputError(f"{path}: no NAS-Bench-101 records" + (f" with epochs={epochs}" if epochs else ""))
    ids = list(sums)
    return CellDataset(
        graphs=[graphs[i] for i in ids],
        y=np.array([100.0 * np.mean(sums[i]) for i in ids]),
        keys=[graphs[i].meta["arch"] for i in ids],
        space="nb101",
        name=f"nb101/{Path(path).name}:{metric}",
        groups=None,
    )
