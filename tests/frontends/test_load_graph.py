"""load_graph dispatch: bytes, ModelProto, .onnx, .json, NetGraph, cell strings, errors."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from archcast.errors import InvalidInputError
from archcast.frontends import load_graph
from archcast.graph import NetGraph, Node

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "archcast" / "examples" / "resnet18.onnx"


def test_onnx_sources_agree(tmp_path):
    import onnx

    by_path = load_graph(EXAMPLE)
    by_str = load_graph(str(EXAMPLE))
    by_bytes = load_graph(EXAMPLE.read_bytes())
    by_proto = load_graph(onnx.load(str(EXAMPLE)), name="r18")
    assert len({g.fingerprint() for g in (by_path, by_str, by_bytes, by_proto)}) == 1
    assert by_proto.name == "r18" and by_path.name == "resnet18"


def test_json_round_trip_and_netgraph_passthrough(tmp_path):
    g = load_graph(EXAMPLE)
    p = tmp_path / "g.json"
    p.write_text(g.to_json())
    assert load_graph(p) == g
    assert load_graph(g) is g
    with pytest.raises(InvalidInputError, match="missing.json"):
        load_graph(tmp_path / "missing.json")


def test_cell_strings_go_to_the_cell_frontend(monkeypatch):
    seen = []
    fake = types.ModuleType("archcast.frontends.cells")

    def nb201_graph(s: str) -> NetGraph:
        seen.append(s)
        return NetGraph([Node("in", "input"), Node("out", "output")], [(0, 1)], kind="cell")

    fake.nb201_graph = nb201_graph  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "archcast.frontends.cells", fake)
    cell = "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    assert load_graph(cell).kind == "cell" and seen == [cell]


@pytest.mark.parametrize("source,quoted", [("model.pt", "model.pt"), (3.5, "float"), ("a|b.onnx", "a|b.onnx")])
def test_unreadable_sources(source, quoted):
    with pytest.raises(InvalidInputError, match=quoted.replace("|", r"\|").replace(".", r"\.")):
        load_graph(source)
