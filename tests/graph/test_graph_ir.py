"""NetGraph invariants: validate() negatives, fingerprint invariances, JSON round trip."""

from __future__ import annotations

import random

import pytest

from archcast.errors import GraphValidationError
from archcast.graph import NetGraph, Node


def _node(name: str, op: str = "Relu", shape: tuple[int, ...] = (1, 8, 4, 4), **attrs) -> Node:
    return Node(name, op, attrs=attrs, input_shapes=[shape], output_shapes=[shape], flops=128, params=0,
                memory_bytes=512)


def _residual() -> NetGraph:
    """conv -> relu -> conv -> add(conv, relu) -> relu: a small DAG with a skip edge."""
    nodes = [_node("c1", "Conv", kernel_shape=(3, 3), pads=(1, 1, 1, 1)), _node("r1"),
             _node("c2", "Conv", kernel_shape=(3, 3), pads=(1, 1, 1, 1)), _node("add", "Add"), _node("r2")]
    return NetGraph(nodes, [(0, 1), (1, 2), (2, 3), (1, 3), (3, 4)], name="res", inputs={"x": (1, 8, 4, 4)},
                    meta={"source": "test"})


BAD_GRAPHS = [
    # (description, nodes, edges, substring the message must quote)
    ("cycle", [_node("a"), _node("b"), _node("c")], [(0, 1), (1, 2), (2, 1)], "'b'"),
    ("edge out of range", [_node("a"), _node("b")], [(0, 5)], "(0, 5)"),
    ("negative index", [_node("a"), _node("b")], [(-1, 1)], "(-1, 1)"),
    ("self loop", [_node("a"), _node("b")], [(0, 1), (1, 1)], "(1, 1)"),
    ("duplicate edge", [_node("a"), _node("b")], [(0, 1), (0, 1)], "(0, 1)"),
    ("empty graph", [], [], "empty"),
    ("missing output shape", [_node("a"), Node("conv7", "Conv", output_shapes=[])], [(0, 1)], "'conv7'"),
    ("unknown output dim", [Node("gemm3", "Gemm", output_shapes=[(1, -1)])], [], "(1, -1)"),
    ("empty op type", [Node("n0", "", output_shapes=[(1,)])], [], "'n0'"),
    ("negative flops", [Node("n0", "Relu", output_shapes=[(1,)], flops=-3)], [], "flops=-3"),
]


@pytest.mark.parametrize("desc,nodes,edges,quoted", BAD_GRAPHS, ids=[b[0] for b in BAD_GRAPHS])
def test_validate_rejects_and_quotes_bad_value(desc, nodes, edges, quoted):
    with pytest.raises(GraphValidationError) as err:
        NetGraph(nodes, edges, name="bad").validate()
    assert quoted in str(err.value), f"{desc}: {err.value}"
    assert "\n" not in str(err.value)


def test_validate_rejects_unknown_kind():
    with pytest.raises(GraphValidationError, match="'tree'"):
        NetGraph([_node("a")], [], kind="tree").validate()


def test_validate_accepts_good_graph_and_returns_self():
    g = _residual()
    assert g.validate() is g
    assert g.topological_order() == [0, 1, 2, 3, 4]


def test_fingerprint_ignores_node_names():
    g = _residual()
    renamed = NetGraph([Node(f"other_{i}", n.op_type, n.attrs, n.input_shapes, n.output_shapes)
                        for i, n in enumerate(g.nodes)], g.edges)
    assert renamed.fingerprint() == g.fingerprint()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fingerprint_ignores_node_order(seed):
    g = _residual()
    perm = list(range(len(g.nodes)))
    random.Random(seed).shuffle(perm)  # perm[new] = old
    pos = {old: new for new, old in enumerate(perm)}
    shuffled = NetGraph([g.nodes[i] for i in perm], [(pos[a], pos[b]) for a, b in reversed(g.edges)])
    assert shuffled.validate().fingerprint() == g.fingerprint()


def test_fingerprint_sees_attribute_edge_and_direction_changes():
    g = _residual()
    base = g.fingerprint()
    changed = _residual()
    changed.nodes[2] = _node("c2", "Conv", kernel_shape=(5, 5), pads=(1, 1, 1, 1))
    assert changed.fingerprint() != base
    rewired = _residual()
    rewired.edges = [(0, 1), (1, 2), (2, 3), (0, 3), (3, 4)]  # skip from c1 instead of r1
    assert rewired.fingerprint() != base
    assert NetGraph([_node("a"), _node("b", "Add")], [(0, 1)]).fingerprint() != \
        NetGraph([_node("a"), _node("b", "Add")], [(1, 0)]).fingerprint()


def test_json_round_trip_is_equal():
    g = _residual()
    g.nodes[0].attrs["mode"] = "constant"
    g.nodes[0].attrs["nested"] = ((1, 2), (3,))
    g.nodes[0].attrs["alpha"] = 0.25
    back = NetGraph.from_json(g.to_json(indent=2))
    assert back == g
    assert back.nodes[0].attrs["kernel_shape"] == (3, 3)  # tuples survive JSON lists
    assert back.fingerprint() == g.fingerprint()


def test_from_json_rejects_garbage_and_other_ir_versions():
    with pytest.raises(GraphValidationError, match="not valid JSON"):
        NetGraph.from_json("{nope")
    d = _residual().to_dict()
    d["ir_version"] = 99
    with pytest.raises(GraphValidationError, match="99"):
        NetGraph.from_dict(d)
