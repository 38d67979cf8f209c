"""ONNX's protobuf classes and its C++ shape inference without importing the ``onnx`` package.

``import onnx`` costs about a second on these machines, nearly all of it in ``ml_dtypes`` (which
``onnx.helper`` pulls in), while reading a model needs only two pieces of the package: the
generated protobuf module ``onnx.onnx_ml_pb2`` (pure Python over ``google.protobuf``) and the
compiled ``onnx.onnx_cpp2py_export`` (shape inference, op schemas). This module loads exactly those
two files from the installed onnx distribution and registers them in ``sys.modules`` under their
real names, so that a later ``import onnx`` in the same process reuses them instead of registering
the protobuf descriptors and the nanobind types a second time (which would fail). When ``onnx`` is
already imported, its own modules are returned.

Besides the two modules, this holds what archcast used from ``onnx.helper`` and
``onnx.numpy_helper``, each equal to onnx's own for NumPy's types: the ``TensorProto.DataType`` and
``AttributeProto.AttributeType`` numbers (:class:`DataType`, :class:`AttrType`; the ONNX spec fixes
them), the dtype maps (:func:`np_dtype`, :func:`itemsize`, :func:`tensor_dtype`), :func:`to_array`,
:func:`from_array`, :func:`make_node` and :func:`make_tensor_value_info`. Only the types NumPy lacks
(bfloat16, float8, int4...), which need ``ml_dtypes``, import onnx, and only when such a tensor is
decoded.

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


class DataType:
    """``TensorProto.DataType`` numbers (fixed by the ONNX spec; tests check them against onnx)."""

    UNDEFINED, FLOAT, UINT8, INT8, UINT16, INT16, INT32, INT64, STRING, BOOL = range(10)
    FLOAT16, DOUBLE, UINT32, UINT64, COMPLEX64, COMPLEX128, BFLOAT16 = range(10, 17)


class DataLocation:
    """``TensorProto.DataLocation`` numbers."""

    DEFAULT, EXTERNAL = 0, 1


class AttrType:
    """``AttributeProto.AttributeType`` numbers (fixed by the ONNX spec; tests check them against onnx)."""

    UNDEFINED, FLOAT, INT, STRING, TENSOR, GRAPH, FLOATS, INTS, STRINGS, TENSORS, GRAPHS = range(11)
    SPARSE_TENSOR, SPARSE_TENSORS, TYPE_PROTO, TYPE_PROTOS = range(11, 15)


# TensorProto.DataType -> NumPy dtype (the numeric types a model's constants use)
NP_DTYPES: dict[int, Any] = {1: np.float32, 2: np.uint8, 3: np.int8, 4: np.uint16, 5: np.int16, 6: np.int32,
                             7: np.int64, 9: np.bool_, 10: np.float16, 11: np.float64, 12: np.uint32,
                             13: np.uint64}
# which repeated field holds the values when raw_data is empty
_FIELD = {1: "float_data", 2: "int32_data", 3: "int32_data", 4: "int32_data", 5: "int32_data", 6: "int32_data",
          7: "int64_data", 9: "int32_data", 10: "int32_data", 11: "double_data", 12: "uint64_data",
          13: "uint64_data"}
# every type NumPy itself has: onnx's map without ml_dtypes
_NATIVE: dict[int, np.dtype] = {**{k: np.dtype(v) for k, v in NP_DTYPES.items()}, 8: np.dtype(object),
                                14: np.dtype(np.complex64), 15: np.dtype(np.complex128)}
_CODES: dict[np.dtype, int] = {v: k for k, v in _NATIVE.items()}
# bytes per element of the ml_dtypes types (bfloat16; float8, int4, int2, float6 and float4 take a byte each)
_EXOTIC_ITEMSIZE = {16: 2, **{k: 1 for k in range(17, 29)}}


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


def _onnx_helper() -> ModuleType:
    """``onnx.helper``, imported for the types NumPy lacks (``ml_dtypes``: about a second)."""
    from onnx import helper

    return helper


def np_dtype(code: int) -> np.dtype:
    """The NumPy dtype of a ``TensorProto.DataType`` (``onnx.helper.tensor_dtype_to_np_dtype``).

    Raises KeyError for a number that is no ONNX type, as onnx does."""
    dt = _NATIVE.get(int(code))
    if dt is not None:
        return dt
    if int(code) == DataType.UNDEFINED:
        raise KeyError(0)
    return np.dtype(_onnx_helper().tensor_dtype_to_np_dtype(int(code)))


def itemsize(code: int) -> int:
    """Bytes per element of a ``TensorProto.DataType`` (8 for strings, as NumPy's object dtype).

    Raises KeyError for a number that is no ONNX type."""
    dt = _NATIVE.get(int(code))
    if dt is not None:
        return dt.itemsize
    size = _EXOTIC_ITEMSIZE.get(int(code))
    return size if size is not None else np_dtype(code).itemsize


def is_model_proto(obj: Any) -> bool:
    """Whether ``obj`` is an ``onnx.ModelProto`` (by its type's name: onnx need not be imported)."""
    return type(obj).__name__ == "ModelProto" and hasattr(obj, "SerializeToString")


def copy_model(model: Any) -> Any:
    """A private copy of a ``ModelProto`` as this module's class (any generated class of the message)."""
    out = pb().ModelProto()
    if isinstance(model, type(out)):
        out.CopyFrom(model)
    else:
        out.ParseFromString(model.SerializeToString())
    return out


def tensor_dtype(dtype: Any) -> int:
    """The ``TensorProto.DataType`` of a NumPy dtype (``onnx.helper.np_dtype_to_tensor_dtype``)."""
    code = _CODES.get(np.dtype(dtype))
    return code if code is not None else int(_onnx_helper().np_dtype_to_tensor_dtype(np.dtype(dtype)))


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
    """``model`` with ONNX's shape inference applied (a new ModelProto; the input is unchanged).

    When onnx is imported, this is ``onnx.shape_inference.infer_shapes`` (the same compiled
    inference behind onnx's own wrapper, as :func:`pb` and :func:`cpp` return onnx's modules)."""
    wrapper = sys.modules.get("onnx.shape_inference")
    if wrapper is not None:
        return wrapper.infer_shapes(model, check_type=False, strict_mode=strict, data_prop=data_prop)
    out = cpp().shape_inference.infer_shapes(model.SerializeToString(), False, strict, data_prop)
    return parse_model(out)


def from_array(arr: np.ndarray, name: str = "") -> Any:
    """A TensorProto holding ``arr`` (raw little-endian bytes), as ``onnx.numpy_helper.from_array``."""
    arr = np.asarray(arr)
    code = _CODES.get(arr.dtype)
    if code is None or code in (8, 14, 15):  # strings, complex, ml_dtypes types: onnx's own code
        from onnx import numpy_helper

        return numpy_helper.from_array(arr, name or None)
    t = pb().TensorProto()
    if name:
        t.name = name
    t.data_type = code
    t.dims.extend(int(d) for d in arr.shape)
    t.raw_data = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    return t


def make_tensor_value_info(name: str, elem_type: int, shape: Any) -> Any:
    """A ValueInfoProto of a tensor with static ``shape`` (``onnx.helper.make_tensor_value_info``
    for integer dims; an empty shape is rank 0, not unknown)."""
    vi = pb().ValueInfoProto(name=name)
    tt = vi.type.tensor_type
    tt.elem_type = int(elem_type)
    tt.shape.SetInParent()
    for d in shape:
        tt.shape.dim.add().dim_value = int(d)
    return vi


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
    if t.data_location == DataLocation.EXTERNAL:
        raise InvalidInputError(f"tensor {t.name!r} is stored as external data")
    if t.raw_data:
        size = np.dtype(dtype).itemsize
        if len(t.raw_data) != n * size:
            raise InvalidInputError(f"tensor {t.name!r}: raw_data holds {len(t.raw_data)} bytes, dims {dims} "
                                    f"need {n * size}")
    else:
        vals = getattr(t, _FIELD[int(t.data_type)])
        if len(vals) != n:
            raise InvalidInputError(f"tensor {t.name!r} holds {len(vals)} values, dims {dims} need {n}")
    try:
        return to_array(t)
    except (TypeError, ValueError) as e:
        raise InvalidInputError(f"tensor {t.name!r} cannot be decoded: {e}") from None


def to_array(t: Any) -> np.ndarray:
    """A TensorProto's inline values as a NumPy array, as ``onnx.numpy_helper.to_array`` (the same
    dtypes and values, the same ValueError/TypeError on a value count that does not fit ``dims``);
    external data is not followed. Types NumPy lacks go to onnx's own function."""
    code = int(t.data_type)
    if t.HasField("segment"):
        raise ValueError("Currently not supporting loading segments.")
    if code == DataType.UNDEFINED:
        raise TypeError("The element type in the input tensor is UNDEFINED.")
    dtype = _NATIVE.get(code)
    if dtype is None or code in (DataType.STRING, DataType.COMPLEX64, DataType.COMPLEX128):
        from onnx import numpy_helper

        return numpy_helper.to_array(t)
    dims = tuple(t.dims)
    if t.HasField("raw_data"):
        return np.frombuffer(t.raw_data, dtype=dtype.newbyteorder("<")).astype(dtype, copy=False).reshape(dims)
    if code in (DataType.FLOAT16, DataType.INT16, DataType.UINT16):  # bit patterns in int32_data
        bits = np.array(t.int32_data, dtype=np.int32).view(np.uint32).astype(np.uint16)
        return bits.reshape(dims).view(dtype)
    if code == DataType.BOOL:
        return np.array(t.int32_data, dtype=np.int32).view(np.uint32).astype(np.uint8).view(dtype).reshape(dims)
    storage = {DataType.UINT32: np.uint64, DataType.UINT64: np.uint64, DataType.INT64: np.int64,
               DataType.FLOAT: np.float32, DataType.DOUBLE: np.float64}.get(code, np.int32)
    return np.asarray(getattr(t, _FIELD[code]), dtype=storage).astype(dtype).reshape(dims)


__all__ = ["NP_DTYPES", "AttrType", "DataLocation", "DataType", "copy_model", "cpp", "from_array", "infer_shapes",
           "is_model_proto", "itemsize", "make_node", "make_tensor_value_info", "np_dtype", "opset_version",
           "parse_model", "pb", "schema_inputs", "tensor_dtype", "tensor_to_array", "to_array"]
