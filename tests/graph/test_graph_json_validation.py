"""NetGraph.from_dict / from_json check every field: bad input is one GraphValidationError line."""

from __future__ import annotations

import copy
import json

import pytest

from archcast.errors import GraphValidationError
from archcast.graph import NetGraph, Node

GOOD = {"ir_version": 1, "name": "g", "kind": "network", "inputs": {"x": [1, 3, 8, 8]}, "meta": {"batch_size": 1},
        "nodes": [{"name": "c", "op_type": "Conv", "attrs": {"kernel_shape": [3, 3]}, "input_shapes": [[1, 3, 8, 8]],
                   "output_shapes": [[1, 8, 8, 8]], "flops": 10, "params": 2, "memory_bytes": 3},
                  {"name": "r", "op_type": "Relu", "output_shapes": [[1, 8, 8, 8]]}],
        "edges": [[0, 1]]}


def _with(path: tuple, value) -> dict:
    d = copy.deepcopy(GOOD)
    target = d
    for k in path[:-1]:
        target = target[k]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return d


def test_round_trip_of_a_valid_graph():
    g = NetGraph.from_dict(GOOD).validate()
    assert g.nodes[0].attrs == {"kernel_shape": (3, 3)} and g.edges == [(0, 1)]
    assert NetGraph.from_json(g.to_json()).to_dict() == g.to_dict()


@pytest.mark.parametrize("path, value, match", [
    (("nodes", 0, "op_type"), 5, "'op_type' must be a non-empty string, got int 5"),
    (("nodes", 0, "op_type"), KeyError, "has no 'op_type'"),
    (("nodes", 0, "output_shapes"), [["a", 2]], "dimension str 'a'"),
    (("nodes", 0, "output_shapes"), [[2 ** 300]], "dimension int"),
    (("nodes", 0, "output_shapes"), [[-1]], "integers in 0..2\\^62"),
    (("nodes", 0, "output_shapes"), "x", "must be a list of shapes"),
    (("nodes", 0, "flops"), "x", "'flops' must be an integer"),
    (("nodes", 0, "flops"), -5, "'flops' must be an integer"),
    (("nodes", 0, "params"), 1.5, "'params' must be an integer"),
    (("nodes", 0, "attrs"), [1, 2], "'attrs' must be an object"),
    (("nodes", 0, "attrs"), {"group": None}, "must be a number, a string or a list"),
    (("nodes", 0, "attrs"), {"k": [[[[[[1]]]]]]}, "nests lists deeper"),
    (("nodes", 0, "bogus"), 1, "unknown key 'bogus'"),
    (("nodes", 0), "node", "must be a JSON object"),
    (("meta", "batch_size"), "x", "'batch_size' must be a positive integer"),
    (("meta", "batch_size"), 0, "'batch_size' must be a positive integer"),
    (("meta", "arch"), [1], "must be a JSON scalar"),
    (("meta",), [], "'meta' must be an object"),
    (("nodes",), KeyError, "has no 'nodes' list"),
    (("edges",), KeyError, "has no 'edges' list"),
    (("edges",), {"a": 1}, "'edges' must be a list"),
    (("edges", 0), [0], "must be a pair of node indices"),
    (("edges", 0), ["0", 1], "must be a pair of node indices"),
    (("inputs",), [1], "'inputs' must be an object"),
    (("inputs", "x"), [1, "3"], "dimension str"),
    (("kind",), "tree", "'kind' is str 'tree'"),
    (("name",), 7, "'name' must be a string"),
    (("ir_version",), 2, "ir_version int 2"),
    (("ir_version",), True, "ir_version bool True"),
])
def test_bad_fields_are_named(path, value, match):
    with pytest.raises(GraphValidationError, match=match) as e:
        NetGraph.from_dict(_with(path, value))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text, match", [
    ('{"nodes": [], "edges": [], "meta": {"x": NaN}}', "NaN is not a number"),
    ('{"nodes": [{"op_type": "Relu", "attrs": {"g": Infinity}}], "edges": []}', "Infinity is not a number"),
    ("[" * 100_000, "not valid JSON"),
    ("9" * 5000, "not valid JSON"),
    ("[1, 2]", "must be an object, got list"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_bad_json_text(text, match):
    with pytest.raises(GraphValidationError, match=match):
        NetGraph.from_json(text)


def test_non_text_is_refused():
    with pytest.raises(GraphValidationError, match="must be text, got int"):
        NetGraph.from_json(5)  # type: ignore[arg-type]


def test_validate_still_checks_invariants():
    d = _with(("edges",), [[1, 0], [0, 1]])
    with pytest.raises(GraphValidationError, match="cycle"):
        NetGraph.from_dict(d).validate()
    assert NetGraph.from_dict(_with(("edges",), [])).validate().edges == []


def test_reverse_listed_10000_node_chain_is_fast():
    import time

    n = 10_000
    d = {"nodes": [{"name": f"n{i}", "op_type": "Relu", "output_shapes": [[1, 8]]} for i in range(n)],
         "edges": [[i + 1, i] for i in range(n - 1)]}
    # CPU time, not wall time: a guard against super-linear work that a loaded machine cannot trip
    t0 = time.process_time()
    g = NetGraph.from_json(json.dumps(d)).validate()
    g.fingerprint()
    assert g.topological_order()[0] == n - 1
    assert time.process_time() - t0 < 5
    assert isinstance(g.nodes[0], Node)
