"""External data: read only from inside the model's directory, never for bytes, never the cwd."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.errors import InvalidInputError
from archcast.frontends.onnx import load_onnx


def _reshape_model(location: str, offset: str | None = None) -> onnx.ModelProto:
    """x [1, 2, 4] -> Reshape(x, shape) with ``shape`` (int64 [1, -1]) stored externally."""
    shape = TensorProto(name="shape", data_type=TensorProto.INT64, dims=[2], data_location=TensorProto.EXTERNAL)
    shape.external_data.add(key="location", value=location)
    if offset is not None:
        shape.external_data.add(key="offset", value=offset)
    g = helper.make_graph([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Reshape", ["r", "shape"], ["y"])],
                          "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [shape])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def _leak_model() -> onnx.ModelProto:
    """The audit's leak: ConstantOfShape's value attribute marked external with location leak.bin."""
    value = TensorProto(name="v", data_type=TensorProto.INT64, dims=[1], data_location=TensorProto.EXTERNAL)
    value.external_data.add(key="location", value="leak.bin")
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["c"], value=value),
             helper.make_node("Reshape", ["x", "c"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(np.array([1], np.int64), "s")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_data_next_to_the_model_is_read(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.array([2, -1], np.int64).tobytes())
    path = tmp_path / "m.onnx"
    path.write_bytes(_reshape_model("w.bin").SerializeToString())
    g = load_onnx(path)
    assert g.nodes[-1].output_shapes == [(2, 4)] and g.nodes[-1].attrs["shape"] == (2, -1)


def test_relative_paths_resolve_against_the_model_directory_not_the_cwd(tmp_path, monkeypatch):
    model_dir, cwd = tmp_path / "model", tmp_path / "cwd"
    model_dir.mkdir()
    cwd.mkdir()
    (cwd / "w.bin").write_bytes(np.array([8, 1], np.int64).tobytes())  # a trap in the working directory
    (model_dir / "w.bin").write_bytes(np.array([1, 8], np.int64).tobytes())
    monkeypatch.chdir(cwd)
    (model_dir / "m.onnx").write_bytes(_reshape_model("w.bin").SerializeToString())
    assert load_onnx(model_dir / "m.onnx").nodes[-1].output_shapes == [(1, 8)]


@pytest.mark.parametrize("location, message", [
    ("/etc/passwd", "absolute path"),
    ("../w.bin", r"'\.\.' leaves"),
    ("sub/../../w.bin", r"'\.\.' leaves"),
    ("C:\\w.bin", "absolute path"),
    ("", "non-empty 'location'"),
])
def test_paths_leaving_the_directory_are_refused(tmp_path, location, message):
    (tmp_path / "w.bin").write_bytes(np.array([1, 8], np.int64).tobytes())
    sub = tmp_path / "model"
    sub.mkdir()
    (sub / "m.onnx").write_bytes(_reshape_model(location).SerializeToString())
    with pytest.raises(InvalidInputError, match=message) as e:
        load_onnx(sub / "m.onnx")
    assert "\n" not in str(e.value) and "'shape'" in str(e.value)
    with pytest.raises(InvalidInputError, match=message):  # also for bytes: no location is trusted
        load_onnx((sub / "m.onnx").read_bytes())


def test_symlink_out_of_the_directory_is_refused(tmp_path):
    outside = tmp_path / "secret.bin"
    outside.write_bytes(np.array([1, 8], np.int64).tobytes())
    sub = tmp_path / "model"
    sub.mkdir()
    os.symlink(outside, sub / "w.bin")
    (sub / "m.onnx").write_bytes(_reshape_model("w.bin").SerializeToString())
    with pytest.raises(InvalidInputError, match="resolves outside the model's directory"):
        load_onnx(sub / "m.onnx")


def test_fifo_as_data_file_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "w.bin")
    (tmp_path / "m.onnx").write_bytes(_reshape_model("w.bin").SerializeToString())
    with pytest.raises(InvalidInputError, match="not a regular file"):
        load_onnx(tmp_path / "m.onnx")


def test_fifo_as_model_path_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "m.onnx")
    with pytest.raises(InvalidInputError, match="not a regular file"):
        load_onnx(tmp_path / "m.onnx")


def test_offset_and_length_must_fit_the_file(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.array([1, 8], np.int64).tobytes())
    (tmp_path / "m.onnx").write_bytes(_reshape_model("w.bin", offset="8").SerializeToString())
    with pytest.raises(InvalidInputError, match="does not fit"):
        load_onnx(tmp_path / "m.onnx")


def test_bytes_input_never_reads_the_working_directory(tmp_path, monkeypatch):
    """Regression (audit): a ConstantOfShape value marked external leaked ./leak.bin into shapes."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leak.bin").write_bytes(np.array([8], np.int64).tobytes())
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda p, *a, **k: opened.append(str(p)) or real_open(p, *a, **k))
    with pytest.raises(InvalidInputError) as e:
        load_onnx(_leak_model().SerializeToString())
    assert not any("leak.bin" in p for p in opened)
    assert "8" not in str(e.value).replace("ONNX", "")  # the secret never becomes a dimension
    # bytes input with a weight-free external tensor elsewhere still loads (dims only)
    m = _reshape_model("w.bin")
    m.graph.initializer[0].CopyFrom(numpy_helper.from_array(np.array([1, -1], np.int64), "shape"))
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[8], data_location=TensorProto.EXTERNAL)
    w.external_data.add(key="location", value="weights.bin")
    m.graph.initializer.append(w)
    m.graph.node.append(helper.make_node("Add", ["y", "w"], ["z"]))
    m.graph.output[0].name = "z"
    g = load_onnx(m.SerializeToString())
    assert g.nodes[-1].params == 8 and g.nodes[-1].output_shapes == [(1, 8)]
