"""The NNLQP latency data set format: ``<root>/gt.txt`` next to (weight-free) ONNX files.

Each non-empty line of ``gt.txt`` holds whitespace-separated fields::

    GraphID OnnxPath BatchSize Latency_ms ModelType PlatformId [train|test]

``OnnxPath`` is relative to ``root``; the split column is optional.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

from archcast.errors import InvalidInputError

if TYPE_CHECKING:
    from archcast.graph import NetGraph

GT_FILE = "gt.txt"
SPLITS = ("train", "test")
_FORMAT = "GraphID OnnxPath BatchSize Latency_ms ModelType PlatformId [train|test]"


@dataclass
class NnlqpRecord:
    """One measured model.

    Attributes:
        graph_id: the data set's id of the graph (an integer in NNLQP).
        onnx_path: absolute path (resolved against the data set root when read).
        batch_size: batch size the latency was measured at.
        latency_ms: measured latency, milliseconds.
        model_type: model family (e.g. ``resnet18``).
        platform_id: the data set's platform id (an integer in NNLQP).
        split: ``"train"``, ``"test"`` or None when the line has no split column.
    """

    graph_id: int
    onnx_path: Path
    batch_size: int
    latency_ms: float
    model_type: str
    platform_id: int
    split: str | None = None


def _parse_line(text: str, root: Path, where: str) -> NnlqpRecord:
    f = text.split()
    if len(f) not in (6, 7):
        raise InvalidInputError(f"{where}: {len(f)} fields in {text.strip()!r}; expected 6 or 7: {_FORMAT}")
    try:
        gid, bs, lat, plat = int(f[0]), int(f[2]), float(f[3]), int(f[5])
    except ValueError:
        raise InvalidInputError(
            f"{where}: GraphID, BatchSize, PlatformId must be integers and Latency_ms a number in {text.strip()!r} ({_FORMAT})"
        ) from None
    if bs <= 0 or not lat > 0:  # also rejects NaN
        raise InvalidInputError(f"{where}: BatchSize must be >= 1 and Latency_ms > 0 in {text.strip()!r}")
    split = f[6] if len(f) == 7 else None
    if split is not None and split not in SPLITS:
        raise InvalidInputError(f"{where}: split {split!r} in {text.strip()!r}; valid: {', '.join(SPLITS)}")
    return NnlqpRecord(gid, (root / f[1]).resolve(), bs, lat, f[4], plat, split)


def read_nnlqp(root: str | Path) -> list[NnlqpRecord]:
    """Records of ``<root>/gt.txt`` (``root`` may also be the gt.txt file itself)."""
    root = Path(root)
    gt = root if root.is_file() else root / GT_FILE
    if not gt.is_file():
        raise InvalidInputError(f"NNLQP data set has no {GT_FILE}: {gt} does not exist")
    base = gt.parent
    with open(gt, encoding="utf-8") as fh:
        return [_parse_line(line, base, f"{gt}:{no}") for no, line in enumerate(fh, start=1) if line.strip()]


def write_nnlqp(root: str | Path, records: Iterable[NnlqpRecord]) -> Path:
    """Write ``<root>/gt.txt`` (paths made relative to ``root`` when inside it). Returns its path."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    lines = []
    for r in records:
        p = Path(r.onnx_path)
        p = p.resolve().relative_to(base) if p.is_absolute() and p.resolve().is_relative_to(base) else p
        if any(c.isspace() for c in str(p)) or any(c.isspace() for c in r.model_type):
            raise InvalidInputError(f"NNLQP fields cannot hold whitespace: onnx_path {str(p)!r}, model_type {r.model_type!r}")
        if r.split is not None and r.split not in SPLITS:
            raise InvalidInputError(f"NNLQP split {r.split!r}; valid: {', '.join(SPLITS)} or None")
        fields = [str(int(r.graph_id)), p.as_posix(), str(int(r.batch_size)), repr(float(r.latency_ms)),
                  r.model_type, str(int(r.platform_id))] + ([r.split] if r.split else [])
        lines.append(" ".join(fields))
    gt = root / GT_FILE
    gt.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return gt


def iter_nnlqp_graphs(root: str | Path) -> Iterator[tuple[NnlqpRecord, "NetGraph"]]:
    """Yield ``(record, graph)`` with each ONNX file read by :func:`archcast.frontends.onnx.load_onnx`."""
    from archcast.frontends.onnx import load_onnx  # lazy: onnx is heavy and optional here

    for r in read_nnlqp(root):
        yield r, load_onnx(r.onnx_path)
