"""ONNX protobuf + C++ shape inference without the onnx package: same results as onnx itself, and a
later ``import onnx`` in the same process still works."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from archcast.errors import InvalidInputError
from archcast.frontends import onnx_proto

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "archcast" / "examples" / "resnet18.onnx"


@pytest.mark.subprocess
def test_lite_path_then_real_onnx_in_one_process():
    code = f"""
import sys
from archcast.frontends import onnx_proto as P
m = P.parse_model(open({str(EXAMPLE)!r}, 'rb').read())
lite = P.infer_shapes(m)
assert 'onnx' not in sys.modules and 'ml_dtypes' not in sys.modules
import onnx
real = onnx.shape_inference.infer_shapes(onnx.load({str(EXAMPLE)!r}))
assert [v.name for v in lite.graph.value_info] == [v.name for v in real.graph.value_info]
assert lite.graph.value_info == real.graph.value_info
from onnx import helper, numpy_helper
t = numpy_helper.from_array(__import__('numpy').arange(6, dtype='float32').reshape(2, 3), 'x')
assert (P.tensor_to_array(t) == numpy_helper.to_array(t)).all()
print('ok', len(lite.graph.value_info))
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok ") and int(p.stdout.split()[1]) > 40


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_, np.float64])
def test_tensor_to_array_matches_numpy_helper(dtype):
    from onnx import numpy_helper

    a = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    t = numpy_helper.from_array(a, "t")
    np.testing.assert_array_equal(onnx_proto.tensor_to_array(t), a)
    # the same values through the typed fields instead of raw_data
    from onnx import helper

    if dtype not in (np.float16, np.bool_):
        t2 = helper.make_tensor("t2", t.data_type, a.shape, a.flatten().tolist())
        np.testing.assert_array_equal(onnx_proto.tensor_to_array(t2), a)


def test_tensor_to_array_refuses_bad_tensors():
    from onnx import TensorProto, helper

    bad_size = helper.make_tensor("b", TensorProto.FLOAT, [3], b"\x00" * 12, raw=True)
    bad_size.dims[:] = [4]
    with pytest.raises(InvalidInputError, match="raw_data holds 12 bytes"):
        onnx_proto.tensor_to_array(bad_size)
    wrong_count = helper.make_tensor("c", TensorProto.INT64, [2], [1, 2])
    wrong_count.dims[:] = [3]
    with pytest.raises(InvalidInputError, match="holds 2 values"):
        onnx_proto.tensor_to_array(wrong_count)
    t = helper.make_tensor("d", TensorProto.FLOAT, [2], [1.0, 2.0])
    t.data_type = 99
    with pytest.raises(InvalidInputError, match="data type 99"):
        onnx_proto.tensor_to_array(t)
    huge = helper.make_tensor("e", TensorProto.FLOAT, [1], [0.0])
    huge.dims[:] = [1 << 20, 1 << 20]
    with pytest.raises(InvalidInputError, match="at most"):
        onnx_proto.tensor_to_array(huge)


def test_parse_model_refuses_garbage():
    with pytest.raises(InvalidInputError, match="not a valid ONNX model"):
        onnx_proto.parse_model(b"\xff\xff\xff\xff garbage")


def test_builders_match_onnx_helpers():
    import onnx
    from onnx import helper, numpy_helper

    for a in (np.arange(6, dtype=np.int64).reshape(2, 3), np.linspace(0, 1, 4, dtype=np.float32), np.array(True)):
        assert onnx_proto.from_array(a, "t") == numpy_helper.from_array(a, "t")
    value = numpy_helper.from_array(np.arange(3, dtype=np.int64), "y")
    assert onnx_proto.make_node("Constant", [], ["y"], name="c", value=value) == helper.make_node(
        "Constant", [], ["y"], name="c", value=value)
    assert onnx_proto.make_node("Foo", ["a"], ["b"], axes=[0, 2], alpha=0.5, mode="x", keep=1) == helper.make_node(
        "Foo", ["a"], ["b"], axes=[0, 2], alpha=0.5, mode="x", keep=1)
    assert onnx_proto.schema_inputs("Conv", 17) == ("X", "W", "B")
    assert onnx_proto.opset_version() == onnx.defs.onnx_opset_version()
    with pytest.raises(InvalidInputError, match="unsupported value"):
        onnx_proto.make_node("Foo", [], ["b"], bad={"x": 1})


# ---------------------------------------------------------------------------- what replaced onnx.helper
def test_type_numbers_are_onnx_s():
    from onnx import AttributeProto, TensorProto

    for name, value in TensorProto.DataType.items():
        if hasattr(onnx_proto.DataType, name):
            assert getattr(onnx_proto.DataType, name) == value, name
    for name, value in AttributeProto.AttributeType.items():
        assert getattr(onnx_proto.AttrType, name) == value, name
    assert (onnx_proto.DataLocation.DEFAULT, onnx_proto.DataLocation.EXTERNAL) == (TensorProto.DEFAULT,
                                                                                    TensorProto.EXTERNAL)


def test_dtype_maps_are_onnx_s_for_every_type():
    from onnx import TensorProto, helper

    for code in [*TensorProto.DataType.values(), 99]:
        try:
            want = np.dtype(helper.tensor_dtype_to_np_dtype(code))
        except KeyError:
            with pytest.raises(KeyError):
                onnx_proto.np_dtype(code)
            with pytest.raises(KeyError):
                onnx_proto.itemsize(code)
            continue
        assert onnx_proto.np_dtype(code) == want, code
        assert onnx_proto.itemsize(code) == want.itemsize, code
        if want.kind in "iufbcO":
            assert onnx_proto.tensor_dtype(want) == helper.np_dtype_to_tensor_dtype(want), code


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int8, np.uint8, np.int16, np.uint16,
                                   np.int32, np.uint32, np.int64, np.uint64, np.bool_])
@pytest.mark.parametrize("shape", [(2, 3), (), (0, 4)])
def test_to_array_is_numpy_helper_s(dtype, shape):
    from onnx import helper, numpy_helper

    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    values = np.arange(int(np.prod(shape))).reshape(shape) % 3
    if info is not None:  # the extremes, through the typed fields' bit patterns
        values = values * (int(info.max) // 3) + int(info.min)
    a = values.astype(dtype)
    code = helper.np_dtype_to_tensor_dtype(a.dtype)
    typed = helper.make_tensor("t", code, a.shape, a.flatten().tolist())
    for t in (numpy_helper.from_array(a, "t"), typed):
        got, want = onnx_proto.to_array(t), numpy_helper.to_array(t)
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    typed.dims[:] = [7]
    with pytest.raises(ValueError):  # a count that does not fit the dims: onnx's error type
        onnx_proto.to_array(typed)


def test_value_info_is_helper_s():
    from onnx import TensorProto, helper

    for shape in ([1, 3, 8, 8], [], (2,)):
        assert onnx_proto.make_tensor_value_info("v", TensorProto.INT64, shape) == helper.make_tensor_value_info(
            "v", TensorProto.INT64, shape)
    scalar = onnx_proto.make_tensor_value_info("s", TensorProto.FLOAT, [])
    assert scalar.type.tensor_type.HasField("shape")  # rank 0, not an unknown shape


def test_from_array_of_a_type_numpy_lacks_is_onnx_s():
    from onnx import numpy_helper

    for a in (np.array(["ab", "c"], dtype=object), np.array([1 + 2j], dtype=np.complex64)):
        assert onnx_proto.from_array(a, "t") == numpy_helper.from_array(a, "t")
