import os
import pickle

import numpy as np
import pytest

from archcast.data.nasbench_graph import DATASETS, arch_table, load_nasbench_graph, read_bench
from archcast.errors import InvalidInputError, UnknownNameError


def test_enumeration_matches_the_package_space():
    assert len(arch_table()) == 26206
    assert len(arch_table(proteins=True)) == 2021


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_bench_entry_is_matched(dataset):
    ds = load_nasbench_graph(dataset)
    assert len(ds) == (2021 if dataset == "proteins" else 26206)
    assert len(set(ds.keys)) == len(ds) and ds.space == "nasbench-graph"
    assert np.isfinite(ds.y).all() and 0 < ds.y.min() and ds.y.max() <= 100.0  # percent


def test_known_cora_entry():
    ds = load_nasbench_graph("cora")
    i = ds.keys.index("0,0,0,0|gat,gat,gat,gat")  # hash 0 in cora.bench
    assert ds.y[i] == pytest.approx(79.7)
    assert load_nasbench_graph("cora", "valid_perf").y[i] == pytest.approx(77.33333333)
    assert load_nasbench_graph("cora", "latency").y[i] == pytest.approx(0.005922238)  # seconds
    assert load_nasbench_graph("cora", "para").y[i] == pytest.approx(1.736711)
    g = ds.graphs[i]
    assert [n.op_type for n in g.nodes] == ["input"] + ["gat"] * 4 + ["output"]
    assert g.meta["arch"] == ds.keys[i]


def test_proteins_uses_the_reduced_op_list():
    ds = load_nasbench_graph("proteins")
    ops = {n.op_type for g in ds.graphs[:300] for n in g.nodes[1:-1]}
    assert ops <= {"gcn", "sage", "arma", "fc", "skip"}


def test_bad_names():
    with pytest.raises(UnknownNameError, match="'coraa'; valid: arxiv, citeseer, computers, cora, cs, photo, physics, proteins, pubmed"):
        load_nasbench_graph("coraa")
    with pytest.raises(InvalidInputError, match="unknown NAS-Bench-Graph metric 'acc'; valid: perf"):
        load_nasbench_graph("cora", "acc")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler(tmp_path):
    p = tmp_path / "x.bench"
    p.write_bytes(pickle.dumps({0: _Evil()}))
    with pytest.raises(InvalidInputError, match="refusing to unpickle global"):
        read_bench(p)
    p.write_bytes(pickle.dumps({7: {"valid_perf": np.float64(0.5), "perf": 0.25, "latency": 0.1, "para": 1.0}}))
    assert read_bench(p) == {7: {"valid_perf": 0.5, "perf": 0.25, "latency": 0.1, "para": 1.0}}
