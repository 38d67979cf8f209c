"""Facts about ONNX ``TensorProto`` objects that several frontend modules need (no onnx import)."""

from __future__ import annotations

import math

EXTERNAL = 1  # TensorProto.EXTERNAL
DATA_FIELDS = ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def has_data(t) -> bool:  # noqa: ANN001 - an onnx.TensorProto
    """The tensor carries its values inline (an external or weight-free tensor does not)."""
    if t.data_location == EXTERNAL:
        return False
    return math.prod(int(d) for d in t.dims) == 0 or any(len(getattr(t, f)) for f in DATA_FIELDS)


__all__ = ["DATA_FIELDS", "EXTERNAL", "has_data"]
