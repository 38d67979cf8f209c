"""The accuracy benchmark harness runs end to end on tiny data and writes JSON/Markdown/PNG."""

import json

import numpy as np
import pytest

from archcast.bench.accuracy import (
    AccuracyBenchConfig,
    run_accuracy_bench,
    write_results,
)
from archcast.data import DATASETS, CellDataset
from archcast.errors import InvalidInputError
from archcast.frontends.cells import nb201_graph, nb201_string

TINY = {
    "archcast": dict(epochs=2, width=16, n_blocks=1, ffn_groups=4, fc_hidden=16, ensemble=1),
    "narformer-v2": dict(epochs=1, width=16, n_blocks=1, ffn_groups=4, fc_hidden=16),
    "mlp": dict(epochs=2),
}


@pytest.fixture()
def tiny_dataset(monkeypatch):
    rng = np.random.default_rng(0)
    tuples = sorted({tuple(int(v) for v in rng.integers(0, 5, 6)) for _ in range(140)})
    graphs = [nb201_graph(t) for t in tuples]
    y = np.array([70 + 3 * nb201_string(t).count("conv") + rng.normal(0, 0.3) for t in tuples])
    ds = CellDataset(graphs=graphs, y=y, keys=[nb201_string(t) for t in tuples], space="nb201", name="tiny",
                     groups=np.arange(len(graphs)))
    monkeypatch.setitem(DATASETS._items, "tiny", lambda: ds)
    return ds


def test_harness_runs_and_writes(tiny_dataset, tmp_path):
    cfg = AccuracyBenchConfig(dataset="tiny", train_sizes=[40, 60], val_size=20, seeds=2,
                              predictors=list(TINY), predictor_kw=TINY)
    res = run_accuracy_bench(cfg, progress=False, log=lambda s: None)
    assert len(res["runs"]) == 2 * 2 * len(TINY)
    assert {r["n_test"] for r in res["runs"] if r["train_size"] == 40} == {len(tiny_dataset) - 60}
    for row in res["summary"]:
        assert np.isfinite(row["kendall_tau"]) and row["seeds"] == 2
    paths = write_results(res, tmp_path, "tiny")
    data = json.loads(paths[0].read_text())
    assert data["dataset"] == "tiny" and "environment" in data and len(data["runs"]) == len(res["runs"])
    assert "| 60 | archcast |" in paths[1].read_text()
    assert paths[2].stat().st_size > 1000


def test_iso_split_and_bad_sizes(tiny_dataset):
    cfg = AccuracyBenchConfig(dataset="tiny", train_sizes=[40], val_size=20, seeds=1, predictors=["mlp"],
                              predictor_kw=TINY, split="iso")
    assert run_accuracy_bench(cfg, progress=False)["split"] == "iso"
    with pytest.raises(InvalidInputError, match="leaves no test cells"):
        run_accuracy_bench(AccuracyBenchConfig(dataset="tiny", train_sizes=[500], seeds=1, predictors=["mlp"]),
                           progress=False)
    with pytest.raises(InvalidInputError, match="split 'x'"):
        AccuracyBenchConfig(split="x")
