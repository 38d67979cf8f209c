import itertools
from collections import Counter

import numpy as np
import pytest

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph, Node
from archcast.frontends.cells import (
    nasbench_graph_graph,
    nb101_graph,
    nb201_graph,
    nb201_iso_key,
    nb201_relabel,
    nb201_string,
    nb201_tuple,
)

ARCH = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
NO_PATH = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_CELLS = [nb201_string(t) for t in itertools.product(range(5), repeat=6)]


def test_tuple_positions_2_and_3_are_swapped_against_string_order():
    # tuple edges (1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2); ints 0 skip, 1 none, 2 conv3, 3 conv1, 4 pool
    assert nb201_tuple(ARCH) == (2, 1, 0, 4, 3, 1)
    assert nb201_string((2, 1, 0, 4, 3, 1)) == ARCH
    assert nb201_string((0, 1, 2, 3, 4, 0)) == "|skip_connect~0|+|none~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|skip_connect~2|"
    assert all(nb201_string(nb201_tuple(s)) == s for s in ALL_CELLS[::97])
    assert nb201_string(np.array([2, 1, 0, 4, 3, 1])) == ARCH


def test_graph_structure_of_a_known_cell():
    g = nb201_graph(ARCH)
    assert [n.op_type for n in g.nodes] == [
        "input", "nor_conv_3x3", "none", "avg_pool_3x3", "skip_connect", "nor_conv_1x1", "none", "output"
    ]
    assert [n.attrs.get("edge") for n in g.nodes[1:7]] == [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]
    # 1<-0, 2<-0, 3<-0 read input; 2<-1 and 3<-1 read node 1 (edge-op 1); 3<-2 reads ops 2, 3; output 4, 5, 6
    assert sorted(g.edges) == [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)]
    assert g.kind == "cell" and g.meta == {"space": "nb201", "arch": ARCH}
    assert nb201_graph(nb201_tuple(ARCH)).to_dict() == g.to_dict()


@pytest.mark.parametrize(
    "arch, message",
    [
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown NB201 op 'conv'.*valid: none, skip_connect"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|", "has 5 edges.*6 edges"),
        ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|none~3|", "has 7 edges"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "malformed"),
        ("|none~0|none~1|+|none~0|+|none~0|none~1|none~2|", "malformed.*\\(2, 1, 3\\)"),
        ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "malformed NB201 edge 'none0'"),
        ("|none~0|+|none~0|none~x|+|none~0|none~1|none~2|", "malformed NB201 edge"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "bad node index"),
        ("|none~0|+|none~0|none~2|+|none~0|none~1|none~2|", "bad node index"),
        ("", "malformed"),
        ((0, 1, 2), "has 3 edges; 6 op ints"),
        ((0, 1, 2, 3, 4, 5), "holds 5; op ints are 0 skip_connect"),
        (12, "must be a string or a 6-int tuple"),
    ],
)
def test_bad_nb201_specs_raise_one_line_errors(arch, message):
    with pytest.raises(InvalidInputError, match=message) as e:
        nb201_graph(arch)
    assert "\n" not in str(e.value)


def test_relabel_swaps_inner_nodes_when_the_2_1_edge_is_none():
    a = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    assert nb201_relabel(a) == "|avg_pool_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|"
    assert nb201_relabel(ARCH) == ARCH  # 2<-1 is avg_pool: node order forced, cell returned as is
    changed = 0
    for s in ALL_CELLS:
        r = nb201_relabel(s)
        assert nb201_relabel(r) == s and nb201_iso_key(r) == nb201_iso_key(s)
        changed += r != s
    assert changed == 3000  # 5**5 cells with 2<-1 = none, minus 125 symmetric ones


def _without_none(g: NetGraph) -> NetGraph:
    """The op graph with 'none' nodes (zero outputs) and the edge attrs removed."""
    keep = [i for i, n in enumerate(g.nodes) if n.op_type != "none"]
    pos = {old: new for new, old in enumerate(keep)}
    nodes = [Node(g.nodes[i].name, g.nodes[i].op_type) for i in keep]
    return NetGraph(nodes, [(pos[a], pos[b]) for a, b in g.edges if a in pos and b in pos], kind="cell")


def test_relabelled_graph_is_isomorphic_once_none_ops_are_dropped():
    a = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    g, h = nb201_graph(a), nb201_graph(nb201_relabel(a))
    assert g.fingerprint() != h.fingerprint()  # the kept 'none' node moves: op graphs differ
    assert _without_none(g).fingerprint() == _without_none(h).fingerprint()


def test_iso_key_pruning_rules():
    # 3<-0 conv alone: everything else is cut off (1<-0 none makes node 1 unreachable)
    a = "|none~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert nb201_iso_key(a) == "|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|"
    # node 2 reaches nothing: its incoming edges are dead
    b = "|skip_connect~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|none~0|skip_connect~1|none~2|"
    b_pruned = "|skip_connect~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|"
    assert nb201_iso_key(b) == min(b_pruned, nb201_relabel(b_pruned))  # min over the 1/2 swap
    assert nb201_iso_key(b) == "|none~0|+|skip_connect~0|none~1|+|none~0|none~1|skip_connect~2|"
    assert nb201_iso_key(NO_PATH) == NO_PATH
    assert nb201_iso_key("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|") == NO_PATH
    # skip is not none: a skip-only path keeps the cell out of the no-path class
    assert nb201_iso_key("|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|") != NO_PATH


def test_iso_classes_of_the_whole_space():
    keys = Counter(nb201_iso_key(s) for s in ALL_CELLS)
    sizes = Counter(keys.values())
    assert len(keys) == 8765  # docs/design.md: 15,625 cells compute 8,765 distinct functions
    assert keys[NO_PATH] == 341
    assert sizes[2] == 600  # pairs that differ only by swapping the inner nodes
    assert sizes == {1: 8080, 2: 600, 58: 80, 341: 5}


def test_nb101_graph_prunes_and_validates():
    m = [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]
    g = nb101_graph(m, ops)  # node 2 -> 3 is a dead end: 2 and 3 are pruned
    assert [n.op_type for n in g.nodes] == ["input", "conv3x3-bn-relu", "output"]
    assert g.edges == [(0, 1), (1, 2)] and g.meta["space"] == "nb101"
    assert nb101_graph(np.array([[0, 1], [0, 0]]), ["input", "output"]).edges == [(0, 1)]


@pytest.mark.parametrize(
    "matrix, ops, message",
    [
        ([[0, 1, 0], [0, 0, 1]], ["input", "conv3x3-bn-relu", "output"], "square"),
        ([[0, 1, 0], [1, 0, 1], [0, 0, 0]], ["input", "conv3x3-bn-relu", "output"], "upper-triangular.*\\[1\\]\\[0\\]"),
        ([[0, 2], [0, 0]], ["input", "output"], "0 or 1"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"], "unknown NB101 op 'conv5x5'"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["conv3x3-bn-relu", "conv3x3-bn-relu", "output"], "start with 'input'"),
        ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "output"], "3 matrix rows but 2 ops"),
        ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", "maxpool3x3", "output"], "no input->output path"),
        (np.triu(np.ones((8, 8), int), 1) * np.eye(8, k=1, dtype=int), ["input"] + ["maxpool3x3"] * 6 + ["output"], "8 nodes"),
        (np.triu(np.ones((6, 6), int), 1), ["input"] + ["maxpool3x3"] * 4 + ["output"], "15 edges"),
    ],
)
def test_bad_nb101_specs(matrix, ops, message):
    with pytest.raises(InvalidInputError, match=message):
        nb101_graph(matrix, ops)


def test_nasbench_graph_graph():
    g = nasbench_graph_graph([0, 0, 1, 2], ["gcn", "gat", "skip", "fc"])
    assert [n.op_type for n in g.nodes] == ["input", "gcn", "gat", "skip", "fc", "output"]
    # op3 reads op1, op4 reads op2; op3 and op4 are read by nobody -> output
    assert sorted(g.edges) == [(0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 5)]
    assert g.meta == {"space": "nasbench-graph", "arch": "0,0,1,2|gcn,gat,skip,fc"}
    with pytest.raises(InvalidInputError, match="op 2 reads 2"):
        nasbench_graph_graph([0, 2, 1, 2], ["gcn"] * 4)
    with pytest.raises(InvalidInputError, match="unknown NAS-Bench-Graph op 'gnn'.*gat, gcn"):
        nasbench_graph_graph([0, 0, 0, 0], ["gnn"] * 4)
    with pytest.raises(InvalidInputError, match="4 links and 4 ops"):
        nasbench_graph_graph([0, 0, 0], ["gcn"] * 3)
