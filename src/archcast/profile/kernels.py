"""Kernel profiles: what onnxruntime executed and how long each kernel took (docs/design.md §6).

onnxruntime does not run the exported graph: its CPU provider fuses and re-lays it out. The
session option ``optimized_model_filepath`` saves the graph it executes; its profiler's
``<node>_kernel_time`` events name that graph's nodes one to one. This module

* reads the profiler's JSON into per-kernel times (:func:`parse_ort_profile`, a median over runs),
* turns the saved optimised model into a weight-free ONNX model whose every tensor has its shape
  in ``value_info`` (:func:`annotate_optimized`): ONNX shape inference knows no contrib ops
  (``com.microsoft.nchwc.Conv``...), so the shapes come from the profiler itself (each kernel
  event lists its outputs' types and shapes: :func:`profile_output_shapes`), or, where it leaves a
  tensor out, from running the optimised graph once with every intermediate tensor as an output.
  The ONNX frontend reads the result as archcast IR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from archcast.frontends import onnx_proto as P
from archcast.frontends.onnx_proto import DataLocation, DataType
from archcast.profile.measurement import MeasurementError, NodeProfile, NodeTime

if TYPE_CHECKING:
    import onnx

_KERNEL_SUFFIX = "_kernel_time"
_FLOAT_TYPES = {DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16}
# initializer slots whose values set output shapes: kept when weights are stripped
SHAPE_SETTING_SLOTS = {("Resize", 1), ("Resize", 2), ("Upsample", 1)}


def _ort_errors() -> tuple[type[BaseException], ...]:
    """onnxruntime's exception types (they derive from Exception directly), plus RuntimeError."""
    from onnxruntime.capi import onnxruntime_pybind11_state as st

    found = [getattr(st, n) for n in dir(st)]
    return tuple(o for o in found if isinstance(o, type) and issubclass(o, Exception)) + (RuntimeError,)


ORT_ERRORS = _ort_errors()


def ort_reason(e: BaseException) -> str:
    """The first line of an onnxruntime error, without its ``[ONNXRuntimeError] : 2 : ...`` prefix."""
    text = str(e).strip()
    if text.startswith("[ONNXRuntimeError]"):
        text = text.split(" : ", 3)[-1]
    line = text.splitlines()[0] if text else type(e).__name__
    return line[:500]


def read_profile_events(path: str | Path) -> list[dict[str, Any]]:
    """The events of an onnxruntime profiler JSON file."""
    events = json.loads(Path(path).read_text(encoding="utf-8"))
    if isinstance(events, dict):  # some versions wrap the list
        events = events.get("traceEvents", [])
    return list(events)


def parse_ort_profile(path: str | Path, skip_runs: int = 0, events: list[dict[str, Any]] | None = None) -> NodeProfile:
    """Per-kernel times from an onnxruntime profiler JSON file (or its already read ``events``).

    Runs are the ``model_run`` events; the first ``skip_runs`` are dropped with the kernel events
    inside them. A kernel's time is the median over runs of its summed ``_kernel_time`` events in
    each run (0 in a run where it did not execute), with its minimum too; ``run_us`` is the median run.
    """
    if events is None:
        events = read_profile_events(path)
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: e["ts"])[skip_runs:]
    if not runs:
        raise MeasurementError("profile", f"profiler file {str(path)!r} holds no model_run events")
    starts = np.array([e["ts"] for e in runs], dtype=np.float64)
    ends = starts + np.array([e["dur"] for e in runs], dtype=np.float64)
    per_run: dict[tuple[str, str], np.ndarray] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith(_KERNEL_SUFFIX):
            continue
        k = int(np.searchsorted(starts, float(e["ts"]), side="right")) - 1
        if k < 0 or e["ts"] > ends[k]:
            continue  # a warm-up run or between runs
        key = (name[: -len(_KERNEL_SUFFIX)], str(e.get("args", {}).get("op_name", "?")))
        per_run.setdefault(key, np.zeros(len(runs)))[k] += float(e["dur"])
    nodes = sorted((NodeTime(k[0], k[1], float(np.median(v)), float(v.min())) for k, v in per_run.items()),
                   key=lambda t: -t.dur_us)
    return NodeProfile(nodes=nodes, runs=len(runs), run_us=float(np.median(ends - starts)))


# the element type names of the profiler's ``output_type_shape`` (onnxruntime's C++ type names)
_PROFILE_TYPES = {"float": DataType.FLOAT, "double": DataType.DOUBLE, "float16": DataType.FLOAT16,
                  "bfloat16": DataType.BFLOAT16, "int8": DataType.INT8, "int16": DataType.INT16,
                  "int32": DataType.INT32, "int64": DataType.INT64, "uint8": DataType.UINT8,
                  "uint16": DataType.UINT16, "uint32": DataType.UINT32, "uint64": DataType.UINT64,
                  "bool": DataType.BOOL}


def profile_output_shapes(events: list[dict[str, Any]]) -> dict[str, list[tuple[int, list[int]]]]:
    """Per kernel (node name): its outputs' ``(ONNX element type, shape)`` as the profiler lists
    them (``args.output_type_shape`` of the node's first ``_kernel_time`` event; the outputs that
    hold a tensor, in order). A node whose list has a type this table does not know is left out."""
    out: dict[str, list[tuple[int, list[int]]]] = {}
    for e in events:
        name = str(e.get("name", ""))
        if e.get("cat") != "Node" or not name.endswith(_KERNEL_SUFFIX):
            continue
        node = name[: -len(_KERNEL_SUFFIX)]
        if node in out:
            continue
        shapes = []
        for entry in (e.get("args") or {}).get("output_type_shape") or []:
            if not isinstance(entry, dict) or len(entry) != 1:
                break
            (tname, dims), = entry.items()
            if tname not in _PROFILE_TYPES or not isinstance(dims, list):
                break
            shapes.append((_PROFILE_TYPES[tname], [int(d) for d in dims]))
        else:
            out[node] = shapes
    return out


def _shapes_of(g: Any, names: list[str], profiled: dict[str, list[tuple[int, list[int]]]]) -> dict[str, tuple[int, list[int]]] | None:
    """``names``' types and shapes from the profiler's lists, or None if any is missing: a node's
    non-empty outputs must match its list one to one (the profiler skips outputs holding no tensor)."""
    want, got = set(names), {}
    for n in g.node:
        outs = [o for o in n.output if o]
        if not want.intersection(outs):
            continue
        lst = profiled.get(n.name)
        if lst is None or len(lst) != len(outs):
            return None
        got.update(zip(outs, lst))
    return got if want <= set(got) else None


def _shape_setting(model: onnx.ModelProto) -> set[str]:
    return {x for n in model.graph.node for i, x in enumerate(n.input) if x and (n.op_type, i) in SHAPE_SETTING_SLOTS}


def strip_kernel_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """Weight-free copy of an optimised model, in place: floating point initializers lose their
    data but keep dims and type, except those whose values set shapes (Resize scales)."""
    keep = _shape_setting(model)
    for t in model.graph.initializer:
        if t.data_type in _FLOAT_TYPES and t.name not in keep:
            for f in ("raw_data", "float_data", "double_data", "int32_data"):
                t.ClearField(f)
            t.ClearField("external_data")
            t.data_location = DataLocation.DEFAULT
    return model


def annotate_optimized(path: str | Path, feeds: dict[str, np.ndarray], session_options: Any,
                       label: str = "model", profiled: dict[str, list[tuple[int, list[int]]]] | None = None) -> bytes:
    """The optimised model saved at ``path`` as weight-free ONNX bytes with every intermediate
    tensor's shape and element type in ``value_info`` (see the module docstring).

    ``profiled``: :func:`profile_output_shapes` of a profiled run of this graph; when it covers
    every intermediate tensor, no session is needed. Otherwise ``session_options`` (a fresh
    ``onnxruntime.SessionOptions`` of the platform: threads...) runs the graph once with every
    tensor as an output, its optimisation level turned off, since the graph is already optimised.
    """
    model = P.parse_model(Path(path).read_bytes())  # onnxruntime saves the weights inline
    g = model.graph
    have = {o.name for o in g.output} | {i.name for i in g.input} | {t.name for t in g.initializer}
    names = list(dict.fromkeys(o for n in g.node for o in n.output if o and o not in have))
    known = _shapes_of(g, names, profiled) if profiled is not None else None
    if known is not None:
        for x in names:
            elem, dims = known[x]
            g.value_info.append(P.make_tensor_value_info(x, elem, dims))
        return strip_kernel_weights(model).SerializeToString()
    import onnxruntime as ort

    work = P.pb().ModelProto()
    work.CopyFrom(model)
    work.graph.output.extend(P.pb().ValueInfoProto(name=x) for x in names)
    session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        sess = ort.InferenceSession(work.SerializeToString(), session_options, providers=["CPUExecutionProvider"])
        values = sess.run(names, feeds) if names else []
    except ORT_ERRORS as e:
        raise MeasurementError("profile", f"the optimised graph does not run with all tensors as outputs: "
                               f"{ort_reason(e)}", model=label) from None
    del work, sess
    for x, v in zip(names, values):
        v = np.asarray(v)
        g.value_info.append(P.make_tensor_value_info(x, P.tensor_dtype(v.dtype), v.shape))
    return strip_kernel_weights(model).SerializeToString()


__all__ = ["ORT_ERRORS", "SHAPE_SETTING_SLOTS", "annotate_optimized", "ort_reason", "parse_ort_profile",
           "profile_output_shapes", "read_profile_events", "strip_kernel_weights"]
