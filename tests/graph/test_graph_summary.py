"""inspect helpers: text summary, unknown-op coverage."""

from __future__ import annotations

import json

from archcast.graph import NetGraph, Node
from archcast.graph.summary import format_summary, summary_dict, unknown_ops


def _graph() -> NetGraph:
    nodes = [Node("c", "Conv", output_shapes=[(1, 8, 4, 4)], flops=2_000_000_000, params=3_000_000,
                  memory_bytes=5_000_000),
             Node("s1", "DFT", output_shapes=[(1, 8, 4, 4)], flops=128),
             Node("s2", "DFT", output_shapes=[(1, 8, 4, 4)], flops=128),
             Node("m", "com.acme.Magic", output_shapes=[(1, 8, 4, 4)])]
    return NetGraph(nodes, [(0, 1), (1, 2), (2, 3)], name="toy", inputs={"x": (1, 3, 8, 8)}, meta={"source": "onnx"})


def test_unknown_ops_counts_generic_only():
    g = _graph()
    assert unknown_ops(g) == {"DFT": 2, "com.acme.Magic": 1}
    assert unknown_ops(NetGraph([Node("a", "nor_conv_3x3")], [], kind="cell")) == {}


def test_format_summary_text():
    text = format_summary(_graph())
    assert "toy" in text and "nodes        4    edges 3" in text and "x 1x3x8x8" in text
    assert "2.000 G" in text and "3.000 M" in text and "5.00 MB" in text
    assert "3 of 4 nodes (75.0 %)" in text and "DFT x2" in text and "com.acme.Magic x1" in text
    ok = NetGraph([Node("c", "Conv", output_shapes=[(1,)])], [])
    assert "unknown ops  none" in format_summary(ok)


def test_summary_dict_is_json():
    d = summary_dict(_graph())
    assert d["unknown_ops"] == {"DFT": 2, "com.acme.Magic": 1} and d["nodes"] == 4
    assert json.loads(json.dumps(d)) == d
