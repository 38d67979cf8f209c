"""The CLI on bad input: one line naming the problem, non-zero exit, no traceback."""

import json
import subprocess
import sys

import pytest

from archcast.cli import main
from archcast.cli.options import parse_input_shapes
from archcast.errors import InvalidInputError


def run(*args):
    p = subprocess.run([sys.executable, "-m", "archcast.cli", *args], capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def _one_line_error(rc, err, needle):
    assert rc != 0
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert needle in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["inspect", "/nonexistent/model.onnx"], "does not exist"),
        (["predict-cell", "|nor_conv_3x3~0|+|bogus~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"], "bogus"),
        (["predict-cell", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"], "has 5 edges"),
        (["inspect", "model.txt"], "cannot tell how to read"),
    ],
)
def test_bad_input_one_line(args, needle):
    _one_line_error(*run(*args)[::2], needle)


def test_not_onnx_and_truncated(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("this is not onnx")
    rc, _, err = run("inspect", str(bad))
    _one_line_error(rc, err, "bad.onnx")
    from archcast.frontends.torch import export_onnx_bytes
    import torch

    data = export_onnx_bytes(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()), torch.zeros(1, 3, 8, 8))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    rc, _, err = run("inspect", str(cut))
    _one_line_error(rc, err, "cut.onnx")


def test_cycle_and_empty_graph_json(tmp_path):
    node = {"name": "a", "op_type": "Relu", "output_shapes": [[1, 2]]}
    cyc = {"nodes": [node, {**node, "name": "b"}], "edges": [[0, 1], [1, 0]]}
    (tmp_path / "cyc.json").write_text(json.dumps(cyc))
    rc, _, err = run("inspect", str(tmp_path / "cyc.json"))
    _one_line_error(rc, err, "cycle")
    (tmp_path / "empty.json").write_text(json.dumps({"nodes": [], "edges": []}))
    rc, _, err = run("inspect", str(tmp_path / "empty.json"))
    _one_line_error(rc, err, "empty")


def test_debug_shows_traceback():
    rc, _, err = run("--debug", "inspect", "/nonexistent/model.onnx")
    assert rc != 0 and "Traceback" in err


def test_inspect_shipped_example_json():
    rc, out, err = run("inspect", "src/archcast/examples/resnet18.onnx", "--format", "json")
    assert rc == 0, err
    s = json.loads(out)
    assert s["params"] > 11_000_000 and s["flops"] > 3e9 and s["op_counts"]["Conv"] == 20
    assert s["unknown_ops"] == {}


def test_input_shape_parsing():
    assert parse_input_shapes(["x=1,3,8,8"]) == {"x": (1, 3, 8, 8)}
    for bad in ["x", "x=", "=1,2", "x=1,a", "x=0,3"]:
        with pytest.raises(InvalidInputError, match="--input-shape"):
            parse_input_shapes([bad])


def test_unknown_predictor_lists_valid_names(capsys):
    rc = main(["bench", "accuracy", "--predictors", "nope", "--seeds", "1", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "unknown accuracy predictor 'nope'" in err and "archcast" in err
