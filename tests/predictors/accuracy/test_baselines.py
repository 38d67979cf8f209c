"""The cell baselines (mlp, gcn, lgbm, nnlp) on synthetic NAS-Bench-201-shaped cells."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import kendalltau

from archcast.errors import InvalidInputError, NotFittedError, UnknownNameError
from archcast.graph import NetGraph, Node
from archcast.predictors import create_predictor, list_predictors

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (dst j, src i), NB201 string order


def nb201_cell(ops: tuple[str, ...], name: str = "") -> NetGraph:
    """The op graph of an NB201 cell: [input, the six edge-ops, output]."""
    edges = []
    for k, (_, i) in enumerate(NB201_EDGES, start=1):
        edges += [(0, k)] if i == 0 else [(m, k) for m, (j2, _) in enumerate(NB201_EDGES, start=1) if j2 == i]
    edges += [(k, 7) for k, (j, _) in enumerate(NB201_EDGES, start=1) if j == 3]
    nodes = [Node("in", "input")] + [Node(f"e{k}", op) for k, op in enumerate(ops)] + [Node("out", "output")]
    return NetGraph(nodes, edges, name=name, kind="cell", meta={"space": "nb201"}).validate()


def live_nodes(g: NetGraph) -> set[int]:
    """Op nodes on some input->output path that avoids 'none' ops."""
    ok = [n.op_type != "none" for n in g.nodes]
    succ, pred = g.successors(), g.predecessors()

    def reach(start: int, nbrs: list[list[int]]) -> set[int]:
        seen, stack = {start}, [start]
        while stack:
            for m in nbrs[stack.pop()]:
                if ok[m] and m not in seen:
                    seen.add(m)
                    stack.append(m)
        return seen

    last = len(g.nodes) - 1
    return (reach(0, succ) & reach(last, pred)) - {0, last}


def synthetic_cells(n: int, seed: int) -> tuple[list[NetGraph], np.ndarray]:
    """Random NB201 cells; accuracy = 80 + 3·#live conv3x3 + 1·#live conv1x1 + noise (10 if dead)."""
    rng = np.random.default_rng(seed)
    graphs, y = [], []
    for c in range(n):
        g = nb201_cell(tuple(NB201_OPS[i] for i in rng.integers(0, 5, size=6)), name=f"c{c}")
        live = [g.nodes[i].op_type for i in live_nodes(g)]
        acc = 80 + 3 * live.count("nor_conv_3x3") + live.count("nor_conv_1x1") if live else 10.0
        graphs.append(g)
        y.append(acc + rng.normal(0, 0.3))
    return graphs, np.asarray(y)


def nb101_cell(rng: np.random.Generator, name: str) -> NetGraph:
    """A random NB101-style DAG: input, 2-5 ops, output; node k reads from a random earlier node."""
    k = int(rng.integers(2, 6))
    ops = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
    nodes = [Node("in", "input")] + [Node(f"n{i}", ops[int(rng.integers(0, 3))]) for i in range(k)] + [Node("out", "output")]
    edges = {(int(rng.integers(0, i)), i) for i in range(1, k + 1)} | {(k, k + 1)}
    edges |= {(0, k + 1)} if rng.random() < 0.5 else set()
    return NetGraph(nodes, sorted(edges), name=name, kind="cell", meta={"space": "nb101"}).validate()


# small budgets keep each case within a few seconds; one thread, because two spinning OpenMP threads
# slow down 10x or more when another process shares the 2 cores
FAST = {
    "mlp": {"epochs": 40, "patience": 10, "threads": 1},
    "gcn": {"epochs": 40, "patience": 10, "lr": 2e-3, "threads": 1},
    "nnlp": {"epochs": 25, "patience": 8, "hidden": 64, "threads": 1},
    "lgbm": {"n_estimators": 300, "early_stopping_rounds": 30, "n_jobs": 1},
}
NAMES = sorted(FAST)


@pytest.fixture(scope="module")
def data() -> dict[str, tuple[list[NetGraph], np.ndarray]]:
    graphs, y = synthetic_cells(600, seed=1)
    return {"train": (graphs[:300], y[:300]), "val": (graphs[300:400], y[300:400]), "test": (graphs[400:], y[400:])}


@pytest.mark.parametrize("name", NAMES)
def test_baseline_learns_and_is_deterministic(name: str, data) -> None:
    (tg, ty), (vg, vy), (sg, sy) = data["train"], data["val"], data["test"]
    p = create_predictor(name, seed=3, **FAST[name])
    with pytest.raises(NotFittedError):
        p.predict(sg)
    assert p.fit(tg, ty, vg, vy) is p
    pred = p.predict(sg)
    assert pred.shape == (len(sg),) and np.all(np.isfinite(pred))
    tau = kendalltau(sy, pred).statistic
    assert tau > 0.5, f"{name}: held-out Kendall tau {tau:.3f}"
    again = create_predictor(name, seed=3, **FAST[name]).fit(tg, ty, vg, vy).predict(sg)
    np.testing.assert_array_equal(pred, again)


@pytest.mark.parametrize("name", NAMES)
def test_baseline_other_space_and_checks(name: str) -> None:
    rng = np.random.default_rng(0)
    cells = [nb101_cell(rng, f"c{i}") for i in range(60)]
    y = np.array([len(c.nodes) + 0.1 * rng.normal() for c in cells])
    hp = FAST[name] if name == "lgbm" else {**FAST[name], "epochs": 3}
    p = create_predictor(name, seed=0, **hp)
    pred = p.fit(cells[:40], y[:40], cells[40:50], y[40:50]).predict(cells[50:])
    assert pred.shape == (10,) and np.all(np.isfinite(pred))
    with pytest.raises(InvalidInputError, match="fitted on space 'nb101'"):
        p.predict([nb201_cell(("none",) * 6)])
    with pytest.raises(InvalidInputError, match="unknown hyper-parameter"):
        create_predictor(name, bogus=1).fit(cells[:40], y[:40], cells[40:50], y[40:50])
    with pytest.raises(InvalidInputError, match="validation"):
        create_predictor(name).fit(cells[:40], y[:40], cells[40:41], y[40:41])


def test_registry_and_hparam_errors() -> None:
    assert set(NAMES) <= set(list_predictors("accuracy"))
    with pytest.raises(UnknownNameError, match="valid: .*gcn.*lgbm.*mlp.*nnlp"):
        create_predictor("no-such-model")
    graphs, y = synthetic_cells(20, seed=0)
    with pytest.raises(InvalidInputError, match="select='auc' is not one of"):
        create_predictor("mlp", select="auc").fit(graphs[:10], y[:10], graphs[10:], y[10:])
    with pytest.raises(InvalidInputError, match="epochs=0 must be"):
        create_predictor("gcn", epochs=0).fit(graphs[:10], y[:10], graphs[10:], y[10:])


def test_torch_fit_leaves_global_state_alone() -> None:
    import torch

    graphs, y = synthetic_cells(40, seed=0)
    threads, rng_state = torch.get_num_threads(), torch.random.get_rng_state()
    create_predictor("mlp", epochs=2, threads=1).fit(graphs[:30], y[:30], graphs[30:], y[30:])
    assert torch.get_num_threads() == threads
    assert torch.equal(torch.random.get_rng_state(), rng_state)


def test_path_encoding_counts_nb201_paths() -> None:
    from archcast.tokenizer.cell_features import encode_cells
    from archcast.predictors.accuracy.lgbm import cell_paths, path_encoding

    g = nb201_cell(("nor_conv_3x3", "skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "nor_conv_3x3"))
    (paths,) = cell_paths(encode_cells([g]))
    # four input->output paths: 0->3 (e4), 0->1->3 (e1,e5), 0->2->3 (e2,e6), 0->1->2->3 (e1,e3,e6)
    assert paths == Counter({
        ("avg_pool_3x3",): 1,
        ("nor_conv_3x3", "nor_conv_1x1"): 1,
        ("skip_connect", "nor_conv_3x3"): 1,
        ("nor_conv_3x3", "none", "nor_conv_3x3"): 1,
    })
    enc = path_encoding([paths], [("avg_pool_3x3",), ("unseen",)])
    np.testing.assert_array_equal(enc, [[1.0, 0.0]])
