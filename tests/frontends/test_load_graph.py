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


# ---------------------------------------------------------------------------- audit regressions
@pytest.mark.parametrize("source", ["x" * 5000, "|" * 100_000, "|nor_conv_3x3~0|" * 400, "a\x00b.onnx", "a\x00|b"])
def test_long_strings_and_nul_are_never_tried_as_paths(source):
    with pytest.raises(InvalidInputError) as e:
        load_graph(source)
    assert "\n" not in str(e.value) and len(str(e.value)) < 400


def test_fifo_json_is_refused_without_blocking(tmp_path):
    import os

    os.mkfifo(tmp_path / "g.json")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        load_graph(tmp_path / "g.json")


def test_non_utf8_json_file(tmp_path):
    (tmp_path / "g.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        load_graph(tmp_path / "g.json")


def test_module_without_example_input_says_what_to_pass():
    torch = pytest.importorskip("torch")
    with pytest.raises(InvalidInputError, match="needs example_input="):
        load_graph(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("shapes, match", [
    (5, "input_shapes must be a mapping"), ([1, 3, 224, 224], "input_shapes must be a mapping"),
    ({"input": "a,b"}, "must be integers"), ({"input": [1.5, 3, 224, 224]}, "must be integers"),
    ({"input": [float("inf"), 3, 224, 224]}, "must be integers"), ({"input": [1, 3, 2 ** 41, 2]}, "over 2\\^40"),
])
def test_bad_input_shapes_are_named(shapes, match):
    with pytest.raises(InvalidInputError, match=match):
        load_graph(EXAMPLE, input_shapes=shapes)


def test_bad_name_type():
    with pytest.raises(InvalidInputError, match="name must be a string"):
        load_graph(EXAMPLE, name=5)


def test_dynamic_shape_hint_is_accepted_by_the_parser(tmp_path):
    """The hint used to suggest 'input=1,3,?,?', which the parser rejects."""
    import re

    import onnx

    m = onnx.load(str(EXAMPLE))
    for d in m.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.dim_param = "H"
    with pytest.raises(InvalidInputError) as e:
        load_graph(m.SerializeToString())
    hint = re.search(r"--input-shape (\S+)=(\S+)", str(e.value))
    assert hint and "?" not in hint.group(2)
    g = load_graph(m.SerializeToString(), input_shapes={hint.group(1): hint.group(2)})
    assert g.inputs[hint.group(1)] == (1, 3, 224, 224)
