"""Child process of :func:`archcast.frontends.shapes.runtime_shapes`: run an ONNX model once with
onnxruntime and print the shape of every output.

Run as a script (``python -I _ort_worker.py``), never imported by archcast: it imports only numpy
and onnxruntime (not onnx: its import alone costs ~1 s). Protocol: stdin holds an 8-byte
little-endian header length, a JSON header ``{"inputs": {name: [dims]}, "threads": 1}`` and the
model bytes, whose graph outputs already list every value to measure. Inputs get random values
(floats ~ N(0, 0.1); integers and booleans 0). stdout receives one JSON line: ``{"ok": true,
"shapes": {name: [dims]}, "dtypes": {name: numpy dtype name}}`` or ``{"ok": false, "error": ...}``.
Resource limits (time, address space) are set by the parent.
"""

from __future__ import annotations

import json
import struct
import sys

_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
          "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(int16)": "int16", "tensor(int8)": "int8",
          "tensor(uint8)": "uint8", "tensor(uint16)": "uint16", "tensor(uint32)": "uint32",
          "tensor(uint64)": "uint64", "tensor(bool)": "bool"}


def main() -> int:
    import numpy as np
    import onnxruntime as ort

    data = sys.stdin.buffer.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode())
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = so.inter_op_num_threads = int(header.get("threads", 1))
    so.enable_cpu_mem_arena = False
    so.log_severity_level = 4
    sess = ort.InferenceSession(data[8 + n:], so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        dt = _TYPES.get(i.type)
        if dt is None:
            raise ValueError(f"input {i.name!r} has type {i.type}, which archcast cannot feed")
        shape = tuple(int(d) for d in header["inputs"][i.name])
        if np.dtype(dt).kind == "f":
            feeds[i.name] = (rng.standard_normal(shape, dtype=np.float32) * 0.1).astype(dt)
        else:
            feeds[i.name] = np.zeros(shape, dtype=dt)
    names = [o.name for o in sess.get_outputs()]
    values = sess.run(names, feeds)
    shapes, dtypes = {}, {}
    for name, v in zip(names, values):
        if isinstance(v, np.ndarray):
            shapes[name] = [int(d) for d in v.shape]
            dtypes[name] = v.dtype.name
    sys.stdout.write(json.dumps({"ok": True, "shapes": shapes, "dtypes": dtypes}) + "\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MemoryError:
        sys.stdout.write(json.dumps({"ok": False, "error": "out of memory"}) + "\n")
        sys.exit(3)
    except Exception as e:  # noqa: BLE001 - reported to the parent as one line
        msg = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        sys.stdout.write(json.dumps({"ok": False, "error": f"{type(e).__name__}: {msg}"}) + "\n")
        sys.exit(2)
