"""ONNX's protobuf classes and its C++ shape inference without importing the ``onnx`` package.

``import onnx`` costs about a second on these machines, nearly all of it in ``ml_dtypes`` (which
``onnx.helper`` pulls in), while reading a model needs only two pieces of the package: the
generated protobuf module ``onnx.onnx_ml_pb2`` (pure Python over ``google.protobuf``) and the
compiled ``onnx.onnx_cpp2py_export`` (shape inference, op schemas). This module loads exactly those
two files from the installed onnx distribution and registers them in ``sys.modules`` under their
real names, so that a later ``import onnx`` in the same process reuses them instead of registering
the protobuf descriptors and the nanobind types a second time (which would fail). When ``onnx`` is
already imported, its own modules are returned.

>>> pb().ModelProto.__name__
'ModelProto'
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType
from typing import Any

import numpy as np

from archcast.errors import InvalidInputError

PB_NAME = "onnx.onnx_ml_pb2"
CPP_NAME = "onnx.onnx_cpp2py_export"

# TensorProto.DataType -> NumPy dtype (the numeric types a model's constants use)
NP_DTYPES: dict[int, Any] = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
                             7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
                             13: np.uint64}
# which repeated field holds the values when raw_data is empty
_FIELD = {1: "float_data", 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data", 6: "int32_data",
          7: "int64_data", 9: "int32_data", 10: "int32_data", 11: "double_data", 12: "uint64_data",
          13: "uint64_data"}


def _onnx_dir() -> str:
    spec = importlib.util.find_spec("onnx")  # finds the package without executing its __init__
    if spec is None or not spec.origin:
        raise InvalidInputError("the onnx package is not installed (pip install onnx)")
    return os.path.dirname(spec.origin)


def pb() -> ModuleType:
    """The ``onnx.onnx_ml_pb2`` module (ModelProto, TensorProto, ...)."""
    mod = sys.modules.get(PB_NAME)
    if mod is not None:
        return mod
    path = os.path.join(_onnx_dir(), "onnx_ml_pb2.py")
    spec = importlib.util.spec_from_file_location(PB_NAME, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[PB_NAME] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(PB_NAME, None)
        raise
    return mod


def cpp() -> ModuleType:
    """The compiled ``onnx.onnx_cpp2py_export`` (``shape_inference``, ``defs``, ``checker``)."""
    mod = sys.modules.get(CPP_NAME)
    if mod is not None:
        return mod
    root = _onnx_dir()
    names = [f for f in os.listdir(root) if f.startswith("onnx_cpp2py_export") and f.endswith((".so", ".pyd"))]
    if not names:
        raise InvalidInputError(f"the onnx installation in {root!r} has no compiled onnx_cpp2py_export module")
    path = os.path.join(root, names[0])
    loader = importlib.machinery.ExtensionFileLoader(CPP_NAME, path)
    spec = importlib.util.spec_from_file_location(CPP_NAME, path, loader=loader)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    sys.modules[CPP_NAME] = mod
    return mod


def parse_model(data: bytes) -> Any:
    """A ``ModelProto`` from serialized bytes; undecodable bytes are an :class:`InvalidInputError`."""
    from google.protobuf.message import DecodeError

    m = pb().ModelProto()
    try:
        m.ParseFromString(bytes(data))
    except (DecodeError, RuntimeError, ValueError) as e:
        raise InvalidInputError(f"not a valid ONNX model (protobuf decoding failed: {e})") from None
    return m


def infer_shapes(model: Any, *, strict: bool = False, data_prop: bool = False) -> Any:
    """``model`` with ONNX's shape inference applied (a new ModelProto; the input is unchanged)."""
    out = cpp().shape_inference.infer_shapes(model.SerializeToString(), False, strict, data_prop)
    return parse_model(out)


def from_array(arr: np.ndarray, name: str = "") -> Any:
    """A TensorProto holding ``arr`` (raw little-endian bytes), as ``onnx.numpy_helper.from_array``."""
    arr = np.asarray(arr)
    codes = {np.dtype(v): k for k, v in NP_DTYPES.items()}
    code = codes.get(arr.dtype)
    if code is None:
        raise InvalidInputError(f"cannot store a {arr.dtype} array as an ONNX tensor")
    t = pb().TensorProto()
    if name:
        t.name = name
    t.data_type = code
    t.dims.extend(int(d) for d in arr.shape)
    t.raw_data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return t


def make_node(op_type: str, inputs: list[str], outputs: list[str], name: str = "", **attrs: Any) -> Any:
    """A NodeProto with attributes of the kinds constant folding writes (tensor, int(s), float(s),
    string), as ``onnx.helper.make_node``."""
    P = pb()
    node = P.NodeProto(op_type=op_type, input=list(inputs), output=list(outputs))
    if name:
        node.name = name
    for key, value in sorted(attrs.items()):
        a = node.attribute.add()
        a.name = key
        if isinstance(value, P.TensorProto):
            a.type = P.AttributeProto.TENSOR
            a.t.CopyFrom(value)
        elif isinstance(value, bool) or isinstance(value, (int, np.integer)):
            a.type, a.i = P.AttributeProto.INT, int(value)
        elif isinstance(value, (float, np.floating)):
            a.type, a.f = P.AttributeProto.FLOAT, float(value)
        elif isinstance(value, (str, bytes)):
            a.type, a.s = P.AttributeProto.STRING, value.encode() if isinstance(value, str) else value
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, np.integer)) for v in value):
            a.type = P.AttributeProto.INTS
            a.ints.extend(int(v) for v in value)
        elif isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, np.number)) for v in value):
            a.type = P.AttributeProto.FLOATS
            a.floats.extend(float(v) for v in value)
        else:
            raise InvalidInputError(f"attribute {key!r} of {op_type}: unsupported value {type(value).__name__}")
    return node


def schema_inputs(op_type: str, opset: int, domain: str = "") -> tuple[str, ...]:
    """The formal input names of ``op_type`` at ``opset`` (ONNX's op schemas, compiled)."""
    return tuple(f.name for f in cpp().defs.get_schema(op_type, opset, domain).inputs)


def opset_version() -> int:
    """The newest default-domain opset this onnx knows."""
    return int(cpp().defs.schema_version_map()[""][1])


def tensor_to_array(t: Any, max_elements: int = 1 << 24) -> np.ndarray:
    """A TensorProto's values as a NumPy array (numeric types; external data is not followed).

    Refuses unknown data types, a value count that does not fit ``dims``, and tensors of more than
    ``max_elements`` values, each with one line naming the tensor."""
    dtype = NP_DTYPES.get(int(t.data_type))
    if dtype is None:
        raise InvalidInputError(f"tensor {t.name!r} has data type {t.data_type}, which archcast does not decode")
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise InvalidInputError(f"tensor {t.name!r} has negative dims {dims}")
    n = int(np.prod(dims, dtype=np.float64)) if dims else 1
    if n > max_elements:
        raise InvalidInputError(f"tensor {t.name!r} has {n} values; at most {max_elements} are decoded")
    if t.data_location == 1:
        raise InvalidInputError(f"tensor {t.name!r} is stored as external data")
    if t.raw_data:
        itemsize = np.dtype(dtype).itemsize
        if len(t.raw_data) != n * itemsize:
            raise InvalidInputError(f"tensor {t.name!r}: raw_data holds {len(t.raw_data)} bytes, dims {dims} "
                                    f"need {n * itemsize}")
        arr = np.frombuffer(t.raw_data, dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    else:
        vals = getattr(t, _FIELD[int(t.data_type)])
        if len(vals) != n:
            raise InvalidInputError(f"tensor {t.name!r} holds {len(vals)} values, dims {dims} need {n}")
        if int(t.data_type) == 10:  # float16 values are stored as their bit patterns in int32_data
            arr = np.asarray(vals, dtype=np.uint16).view(np.float16)
        else:
            arr = np.asarray(vals).astype(dtype)
    return arr.reshape(dims)


__all__ = ["NP_DTYPES", "cpp", "from_array", "infer_shapes", "make_node", "opset_version", "parse_model", "pb",
           "schema_inputs", "tensor_to_array"]
