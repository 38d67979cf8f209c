"""A tiny synthetic format-2 latency data set (three models, two label passes and a retest), written
with the data set's own columns and manifest rules, for the kernel profile import tests."""

from __future__ import annotations

import lzma
from pathlib import Path

from archcast.collect.dataset_files import write_csv, write_json, write_manifest
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
    MEASUREMENT_COLUMNS,
    MEASUREMENT_COLUMNS_V2,
    MEASUREMENTS_FILE,
    MODEL_COLUMNS,
    MODELS_FILE,
    OPTIMIZED_GRAPHS_FILE,
    PASS_COLUMNS,
    PASSES_FILE,
    PLATFORM_FILE,
)
from archcast.graph.ir import NetGraph, Node
from archcast.profile import Platform

PLATFORM = Platform("tiny-kernels", device="test-device", runtime_version="0")
PASSES = ["camp/p1", "camp/p2"]


def graph(i: int) -> NetGraph:
    w = i + 2
    nodes = [Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 8, 8)], [(1, w, 8, 8)], flops=10 * w, params=27 * w),
             Node("relu", "Relu", {}, [(1, w, 8, 8)], [(1, w, 8, 8)])]
    return NetGraph(nodes, [(0, 1)], name=f"k{i}").validate()


def kernel_rows(fps: list[str]) -> list[tuple]:
    """``KERNEL_COLUMNS`` rows: models 0 and 1 have kernels in both label passes (model 1 without a
    minimum in p1), a retest that must not count; model 2 has none."""
    rows = []
    for i, fp in enumerate(fps[:2]):
        rows += [(fp, "camp/p1", "fused conv", "FusedConv", 100.0 + i, "" if i else 90.0),
                 (fp, "camp/p1", "ReorderOutput", "ReorderOutput", 3.0, 2.5),
                 (fp, "camp/p2", "fused conv", "FusedConv", 110.0, 94.0),
                 (fp, "camp/p2", "ReorderOutput", "ReorderOutput", 3.5, 2.0),
                 (fp, "camp/retest1", "fused conv", "FusedConv", 500.0, 480.0)]
    return rows


def make_kernel_dataset(out: Path, n: int = 3) -> Path:
    """Write the data set into ``out`` (created) and return it."""
    out.mkdir(parents=True, exist_ok=True)
    graphs = [graph(i) for i in range(n)]
    fps = [g.fingerprint() for g in graphs]
    write_json(out / PLATFORM_FILE, {**PLATFORM.to_dict(), "created": "2026-01-01T00:00:00Z"})
    write_csv(out / MODELS_FILE, MODEL_COLUMNS, [
        (fp, "tiny-kernels", i, "1", '{"w":%d}' % (i + 2), len(g.nodes), g.flops, g.params, g.memory_bytes)
        for i, (fp, g) in enumerate(zip(fps, graphs))])
    write_csv(out / MEASUREMENTS_FILE, MEASUREMENT_COLUMNS + MEASUREMENT_COLUMNS_V2, [
        (fp, "tiny-kernels", i, 1, 0.1, 0.11, 0.11, 0.12, 0.01, 0.05, 30, 10, "2026-01-01T00:00:00Z", "test-host",
         0.1, 0.02, 2, 0.1, 0.11, 1.0, 0.95 if i < 2 else "", 0.105 if i < 2 else "", 2 if i < 2 else "")
        for i, fp in enumerate(fps)])
    write_csv(out / FAILURES_FILE, FAILURE_COLUMNS, [])
    write_csv(out / ALIASES_FILE, ALIAS_COLUMNS, [])
    with lzma.open(out / GRAPHS_FILE, "wt", encoding="utf-8") as fh:
        fh.writelines(g.to_json() + "\n" for g in graphs)
    with lzma.open(out / OPTIMIZED_GRAPHS_FILE, "wt", encoding="utf-8") as fh:
        fh.writelines("null\n" for _ in graphs)
    write_csv(out / PASSES_FILE, PASS_COLUMNS, [], xz=True)
    write_csv(out / KERNELS_FILE, KERNEL_COLUMNS, kernel_rows(fps), xz=True)
    write_manifest(out, DATA_FILES_V2, {
        "format": FORMAT, "format_version": 2, "platform_id": PLATFORM.platform_id, "platform_name": PLATFORM.name,
        "batch_size": 1, "campaign": "camp", "label": {"stat": "cpu_ms_min", "passes": PASSES}})
    return out


def rewrite_manifest(out: Path) -> None:
    """Checksums of the files as they are now (a damaged file that the manifest vouches for)."""
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    manifest.pop("files"), manifest.pop("fingerprint")
    write_manifest(out, DATA_FILES_V2, manifest)
