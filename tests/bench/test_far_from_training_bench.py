"""``archcast bench far-from-training`` on a tiny synthetic format-2 data set and jobs file, and the
far-from-training reference that training (and ``train-latency --ood-only``) puts in a kernels
checkpoint: fitted on the recorded training split, weights untouched."""

from __future__ import annotations

import json
import lzma
from pathlib import Path

import numpy as np
import pytest

from archcast.bench.far_from_training import read_jobs, run_far_bench, write
from archcast.bench.latency import _job_key
from archcast.collect.dataset_files import write_csv, write_json, write_manifest
from archcast.data.latency_dataset import (
    ALIAS_COLUMNS, ALIASES_FILE, DATA_FILES_V2, FAILURE_COLUMNS, FAILURES_FILE, FORMAT, GRAPHS_FILE, KERNEL_COLUMNS,
    KERNELS_FILE, MEASUREMENT_COLUMNS, MEASUREMENT_COLUMNS_V2, MEASUREMENTS_FILE, MODEL_COLUMNS, MODELS_FILE,
    OPTIMIZED_GRAPHS_FILE, PASS_COLUMNS, PASSES_FILE, PLATFORM_FILE, load_latency_dataset)
from archcast.errors import InvalidInputError
from archcast.graph.ir import NetGraph, Node
from archcast.predictors.latency.far import FarFromTraining
from archcast.profile import Platform

PLATFORM = Platform("tiny-far", device="test-device", runtime_version="0")
FAMILIES = ("convs", "gemms", "elems", "mixed")
PER = 6


def _graph(family: str, i: int) -> NetGraph:
    w, nodes = 4 + 2 * i, []
    ops = {"convs": ["Conv", "Relu", "Conv", "Conv"], "gemms": ["Gemm", "Gemm", "Relu", "Gemm", "Gemm"],
           "elems": ["Add", "Mul", "Sigmoid"] * (1 + i % 2), "mixed": ["Conv", "Gemm", "Add", "MaxPool"]}[family]
    for j, op in enumerate(ops):
        flops = (50 if op in ("Conv", "Gemm") else 2) * w * w * (j + 1)
        nodes.append(Node(f"n{j}", op, {}, [(1, w, 8, 8)], [(1, w, 8, 8)], flops=flops,
                          params=9 * w * w if op in ("Conv", "Gemm") else 0, memory_bytes=4 * 64 * w))
    return NetGraph(nodes, [(a, a + 1) for a in range(len(nodes) - 1)], name=f"{family}{i}").validate()


def _kernel_us(node: Node) -> float:
    return 2.0 + node.flops / 500.0


def make_dataset(out: Path) -> Path:
    """Four families of six models; each graph is its own runtime graph; labels = kernel sums."""
    out.mkdir(parents=True, exist_ok=True)
    graphs = [(f, i, _graph(f, i)) for f in FAMILIES for i in range(PER)]
    fps = [g.fingerprint() for _, _, g in graphs]
    write_json(out / PLATFORM_FILE, {**PLATFORM.to_dict(), "created": "2026-01-01T00:00:00Z"})
    write_csv(out / MODELS_FILE, MODEL_COLUMNS, [(fp, f, i, "1", '{"i":%d}' % i, len(g.nodes), g.flops, g.params,
                                                  g.memory_bytes) for fp, (f, i, g) in zip(fps, graphs)])
    meas = []
    for fp, (f, i, g) in zip(fps, graphs):
        ms = sum(_kernel_us(n) for n in g.nodes) / 1000.0
        meas.append((fp, f, i, 1, ms, ms, ms, ms, 0.0, 0.01, 30, 10, "2026-01-01T00:00:00Z", "host", ms, 0.01, 2, ms,
                     ms, 1.0, 1.0, ms, len(g.nodes)))
    write_csv(out / MEASUREMENTS_FILE, MEASUREMENT_COLUMNS + MEASUREMENT_COLUMNS_V2, meas)
    write_csv(out / FAILURES_FILE, FAILURE_COLUMNS, [])
    write_csv(out / ALIASES_FILE, ALIAS_COLUMNS, [])
    for name in (GRAPHS_FILE, OPTIMIZED_GRAPHS_FILE):
        with lzma.open(out / name, "wt", encoding="utf-8") as fh:
            fh.writelines(g.to_json() + "\n" for _, _, g in graphs)
    write_csv(out / PASSES_FILE, PASS_COLUMNS, [], xz=True)
    write_csv(out / KERNELS_FILE, KERNEL_COLUMNS, [(fp, "c/p1", n.name, n.op_type, _kernel_us(n), _kernel_us(n))
                                                   for fp, (_, _, g) in zip(fps, graphs) for n in g.nodes], xz=True)
    write_manifest(out, DATA_FILES_V2, {
        "format": FORMAT, "format_version": 2, "platform_id": PLATFORM.platform_id, "platform_name": PLATFORM.name,
        "batch_size": 1, "campaign": "c", "label": {"stat": "cpu_ms_min", "passes": ["c/p1"]}})
    return out


@pytest.fixture
def no_torch_env(monkeypatch):
    """The report's environment block without importing torch (seconds on a busy machine)."""
    monkeypatch.setattr("archcast.bench.report.environment", lambda: {"cpu": "test", "date_utc": "now"})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("far")
    ds_dir = make_dataset(root / "ds")
    ds = load_latency_dataset(ds_dir)
    y = np.asarray(ds.latency_ms)
    fam = np.array([r.family for r in ds.records])
    # errors: "elems" is predicted badly by both predictors; the rest within a few per cent
    err = np.where(fam == "elems", 0.5, 0.02) + 0.001 * np.arange(len(y))
    lines = []
    for name, scale in (("kernels", 1.0), ("flops-mem-linear", 2.0)):
        for seed in (0, 1):
            for f in FAMILIES:
                test = [int(i) for i in np.flatnonzero(fam == f)]
                job = {"protocol": "lofo", "predictor": name, "seed": seed, "fold": f, "kw": {}, "train_cap": None}
                pred = [float(y[i] * (1 + scale * err[i] * (1 if seed == 0 else 1.0001))) for i in test]
                lines.append(json.dumps({**job, "key": _job_key(job, ds.fingerprint), "test": json.dumps(test),
                                         "pred": pred}))
    jobs = root / "jobs.jsonl"
    jobs.write_text("\n".join(lines) + "\n")
    return {"root": root, "ds": ds_dir, "jobs": jobs, "fam": fam, "y": y}


def test_the_bench_warns_held_out_models_by_each_folds_own_reference(tiny, tmp_path, no_torch_env):
    res = run_far_bench(tiny["ds"], tiny["jobs"], quantiles=[0.5, 0.95], k=2)
    from archcast.service.build import kernel_ood_matrix

    ds = load_latency_dataset(tiny["ds"])
    x = kernel_ood_matrix(ds, ds.optimized_graphs(), range(len(ds.records)))
    fam = tiny["fam"]
    # the fold of "elems" by hand: a reference without it, its threshold at q = 0.5
    ref = FarFromTraining(k=2, q=0.5).fit(x[fam != "elems"], fam[fam != "elems"])
    warned_elems = ref.score(x[fam == "elems"]) > ref.threshold_
    assert res["fold_thresholds"]["elems"]["0.5"] == pytest.approx(ref.threshold_)
    assert res["by_family"]["elems"]["share_warned@0.5"] == pytest.approx(warned_elems.mean())
    row = res["quantiles"]["0.5"]["predictors"]["kernels"]
    warned = res["_score"] > res["_threshold"][0.5]
    err = res["_errors"]["kernels"]
    assert row["n"] == len(fam) and row["n_warned"] == int(warned.sum())
    assert row["mape_warned"] == pytest.approx(err[warned].mean())
    assert row["mape_unwarned"] == pytest.approx(err[~warned].mean())
    assert row["over25_warned"] == pytest.approx(np.mean(err[warned] > 0.25))
    assert err[fam == "elems"].min() > 0.4 and err[fam != "elems"].max() < 0.1  # averaged over the two seeds
    assert set(res["spearman"]) == {"kernels", "flops-mem-linear"} and -1 <= res["spearman"]["kernels"] <= 1
    paths = write(res, tmp_path, "far_tiny", "archcast bench far-from-training ...")
    assert [p.suffix for p in paths] == [".json", ".md", ".png"] and all(p.stat().st_size > 0 for p in paths)
    data = json.loads(paths[0].read_text())
    assert "_score" not in data and data["quantiles"]["0.95"]["predictors"]["flops-mem-linear"]["n"] == len(fam)
    md = paths[1].read_text()
    assert "| 0.5 |" in md and "flops-mem-linear" in md and "Spearman" in md


def test_the_cli_writes_the_report_and_a_jobs_file_of_another_data_set_is_refused(tiny, tmp_path, capsys):
    from archcast.cli import main

    out = tmp_path / "out"
    assert main(["bench", "far-from-training", "--dataset", str(tiny["ds"]), "--jobs-file", str(tiny["jobs"]),
                 "--quantiles", "0.9", "--k", "2", "--out", str(out)]) == 0
    assert (out / "far_from_training_ds.md").is_file() and (out / "far_from_training_ds.png").is_file()
    assert "MAPE warned" in capsys.readouterr().out
    with pytest.raises(InvalidInputError, match="not run on this data set"):
        read_jobs(tiny["jobs"], len(tiny["y"]), fingerprint="0000")
    with pytest.raises(InvalidInputError, match="no 'logo' records"):
        read_jobs(tiny["jobs"], len(tiny["y"]), protocol="logo")


def test_training_ships_the_reference_and_ood_only_refits_it_on_the_recorded_split(tiny, tmp_path, capsys, no_torch_env):
    from archcast.cli import main
    from archcast.service.build import train_kernel_predictor

    res = run_far_bench(tiny["ds"], tiny["jobs"], quantiles=[0.95], k=2)
    far_json = write(res, tmp_path, "far")[0]
    ck = tmp_path / "kernels-tiny"
    info = train_kernel_predictor(tiny["ds"], ck, seed=3, ood_bench=far_json, correction=False, min_kernels=3)
    ood = info["ood"]
    cfg = json.loads((ck / "config.json").read_text())
    assert cfg["ood"] == ood and ood["file"] == "kernel_ood.npz" and (ood["k"], ood["q"]) == (5, 0.95)
    assert ood["n_reference"] == info["trained_on"]["n_train"] and ood["measured"]["source"] == "far.json"
    assert ood["measured"]["mape_warned"] == res["quantiles"]["0.95"]["predictors"]["kernels"]["mape_warned"]
    ref = FarFromTraining.load(ck)
    assert ref.threshold_ == pytest.approx(ood["threshold"]) and ref.reference_.shape == (ood["n_reference"], 15)
    shipped = (ck / "kernel_ood.npz").read_bytes()

    # a checkpoint saved before the reference existed: --ood-only adds it, weights untouched
    (ck / "kernel_ood.npz").unlink()
    del cfg["ood"]
    (ck / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    weights = {p.name: p.read_bytes() for p in ck.iterdir() if p.name != "config.json"}
    assert main(["train-latency", "--predictor", "kernels", "--dataset", str(tiny["ds"]), "--out", str(ck),
                 "--ood-only", "--ood-bench", str(far_json)]) == 0
    assert "weights unchanged" in capsys.readouterr().out
    assert (ck / "kernel_ood.npz").read_bytes() == shipped
    assert json.loads((ck / "config.json").read_text())["ood"] == ood
    kept = {p.name: p.read_bytes() for p in ck.iterdir() if p.name not in ("config.json", "kernel_ood.npz")}
    assert kept == weights

    # a split that does not reproduce the training set, or another data set, is refused
    t = cfg["trained_on"]
    for trained_on, match in (({**t, "n_train": t["n_train"] - 1}, "does not reproduce"),
                              ({**t, "dataset_fingerprint": "0000"}, "was trained on data set")):
        (ck / "config.json").write_text(json.dumps(dict(cfg, trained_on=trained_on)))
        assert main(["train-latency", "--predictor", "kernels", "--dataset", str(tiny["ds"]), "--out", str(ck),
                     "--ood-only"]) != 0
        assert match in capsys.readouterr().err
