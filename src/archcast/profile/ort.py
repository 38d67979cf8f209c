"""Latency of an ONNX model on this CPU with onnxruntime, measured as docs/design.md §5 says.

Protocol of :func:`measure_onnx`:

1. Weight-free models (initializers with dims but no data, as NNLQP ships and the zoo exports) get
   random weights, on the ``ModelProto`` before the session exists: floating point tensors of rank
   >= 2 ~ N(0, 2 / fan_in), rank <= 1 (biases, norm scales and statistics) ~ U[0.5, 1.5) so that
   variances stay positive; integer tensors are zeros. Values that set shapes (Resize/Upsample
   scales) cannot be invented: such a model raises :class:`MeasurementError`.
2. One session: ``intra_op_num_threads = platform.threads``, ``inter_op_num_threads = 1``,
   sequential execution, the platform's graph-optimisation level, CPU provider only.
3. Random inputs from the graph inputs' shapes and types (a symbolic first dim takes
   ``batch_size``); integer inputs (token ids) are drawn from ``[0, int_high)``, default 100.
4. Warm-up: ``warmup_runs`` runs or ``warmup_s`` seconds, whichever ends first (>= 1 run).
5. Timing: runs until both ``min_runs`` runs and ``min_time_s`` seconds are reached, or the
   ``max_time_s`` cap (>= 3 runs); each run timed alone with ``perf_counter_ns``; Python's garbage
   collector off while timing.
   With one intra-op thread, onnxruntime runs every kernel on the calling thread, so the thread's
   CPU time (``time.thread_time_ns``) is recorded beside each run's wall time.
6. Optionally a second, profiled session gives per-kernel times (ORT profiler JSON, median over
   runs) and saves the optimised graph it executes (:mod:`archcast.profile.kernels`).

A model onnxruntime cannot load, feed or run raises :class:`MeasurementError` with the runtime's
reason (the runner records it as a failed measurement and moves on).
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np
import onnxruntime as ort

from archcast.errors import InvalidInputError
from archcast.frontends import onnx_proto as P
from archcast.frontends.onnx_file import OnnxFile
from archcast.frontends.onnx_proto import AttrType, DataLocation
from archcast.profile.kernels import (
    ORT_ERRORS,
    SHAPE_SETTING_SLOTS,
    annotate_optimized,
    ort_reason,
    parse_ort_profile,
    profile_output_shapes,
    read_profile_events,
)
from archcast.profile.machine import cpu_model, host_name
from archcast.profile.measurement import Measurement, MeasurementError, NodeProfile

if TYPE_CHECKING:
    import onnx

    from archcast.profile.platform import Platform

# an onnx.ModelProto is read as well (by its type name: onnx need not be imported)
ModelSource = Union[bytes, bytearray, str, Path, OnnxFile, "onnx.ModelProto"]

_OPT_LEVELS = {
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
}
_DATA_FIELDS = ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")
# initializer slots whose values set output shapes: random values would build another model
_SHAPE_SETTING_SLOTS = SHAPE_SETTING_SLOTS
_FLOAT_NP = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
_INT_NP = {"tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int16)": np.int16,
           "tensor(int8)": np.int8, "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16,
           "tensor(uint32)": np.uint32, "tensor(uint64)": np.uint64}


_ORT_ERRORS = ORT_ERRORS
_reason = ort_reason


# ---------------------------------------------------------------------------- the model
def _has_data(t: onnx.TensorProto) -> bool:
    if t.data_location == DataLocation.EXTERNAL:
        return False
    n = 1
    for d in t.dims:
        n *= int(d)
    return n == 0 or any(len(getattr(t, f)) for f in _DATA_FIELDS)


def _random_tensor(t: onnx.TensorProto, rng: np.random.Generator) -> np.ndarray:
    dims = tuple(int(d) for d in t.dims)
    try:
        dtype = P.np_dtype(t.data_type)
    except (KeyError, TypeError, ValueError):
        dtype = None
    if dtype is not None and dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        if len(dims) >= 2:
            fan_in = max(1, int(np.prod(dims[1:])))
            values = rng.standard_normal(dims, dtype=np.float32) * np.float32(np.sqrt(2.0 / fan_in))
        else:
            values = rng.uniform(0.5, 1.5, size=dims).astype(np.float32)
        return values.astype(dtype)
    if dtype is not None and dtype.kind in "iub":
        return np.zeros(dims, dtype=dtype)
    raise MeasurementError(
        "load", f"weight-free tensor {t.name!r} has element type "
        f"{_type_name(t.data_type)}, which archcast cannot fill with random values")


def _type_name(code: int) -> str:
    try:
        return P.pb().TensorProto.DataType.Name(code)
    except ValueError:  # a number no ONNX type has
        return str(code)


def fill_weights(model: onnx.ModelProto, seed: int = 0) -> int:
    """Give every data-less initializer (and data-less ``Constant`` tensor) random values, in place.

    Returns the number of tensors filled. Raises :class:`MeasurementError` for a data-less tensor
    whose values set shapes (Resize scales/sizes) or whose type cannot be filled.
    """
    rng = np.random.default_rng(seed)
    g = model.graph
    slot = {(x, (n.op_type, i)) for n in g.node for i, x in enumerate(n.input) if x}
    setting = {x for x, s in slot if s in _SHAPE_SETTING_SLOTS}
    filled = 0
    for t in g.initializer:
        if _has_data(t):
            continue
        if t.name in setting:
            raise MeasurementError(
                "load", f"weight-free initializer {t.name!r} feeds a Resize/Upsample scales or sizes input; "
                "its values set output shapes, so random values would measure a different model")
        new = P.from_array(_random_tensor(t, rng), t.name)
        t.CopyFrom(new)
        filled += 1
    for n in g.node:
        if n.op_type != "Constant":
            continue
        for a in n.attribute:
            if a.type == AttrType.TENSOR and not _has_data(a.t):
                a.t.CopyFrom(P.from_array(_random_tensor(a.t, rng), a.t.name))
                filled += 1
    return filled


def _load_model(source: ModelSource, label: str) -> onnx.ModelProto:
    from google.protobuf.message import DecodeError

    if P.is_model_proto(source):
        return P.copy_model(source)
    if isinstance(source, OnnxFile):
        source = source.data
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InvalidInputError(f"ONNX file {str(path)!r} does not exist")
        source = path.read_bytes()
    if not source:
        raise MeasurementError("load", "empty model (0 bytes)", model=label)
    model = P.pb().ModelProto()
    try:
        model.ParseFromString(bytes(source))  # what onnx.load_model_from_string does
        return model
    except (DecodeError, RuntimeError, ValueError) as e:
        raise MeasurementError("load", f"not a readable ONNX protobuf: {_reason(e)}", model=label) from None


def session_options(platform: Platform) -> ort.SessionOptions:
    """The session settings of ``platform`` (threads, sequential execution, optimisation level)."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = platform.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = _OPT_LEVELS[platform.graph_opt_level]
    so.log_severity_level = 3  # errors only: warnings about unused initializers are noise here
    return so


def _session(data: bytes, platform: Platform, label: str, profile_prefix: str | None = None,
             optimized_path: str | None = None) -> ort.InferenceSession:
    so = session_options(platform)
    if profile_prefix:
        so.enable_profiling = True
        so.profile_file_prefix = profile_prefix
    if optimized_path:
        so.optimized_model_filepath = optimized_path
    try:
        return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    except _ORT_ERRORS as e:
        raise MeasurementError("load", _reason(e), model=label) from None


def index_bounds(proto: onnx.ModelProto) -> dict[str, int]:
    """Graph inputs used as ``Gather`` indices into an initializer (token ids into an embedding
    table), mapped to that table's first dim: random ids must stay below it."""
    inputs = {i.name for i in proto.graph.input}
    rows = {t.name: int(t.dims[0]) for t in proto.graph.initializer if len(t.dims) >= 1 and t.dims[0] > 0}
    bounds: dict[str, int] = {}
    for node in proto.graph.node:
        if node.op_type != "Gather" or len(node.input) < 2 or node.input[1] not in inputs or node.input[0] not in rows:
            continue
        if next((a.i for a in node.attribute if a.name == "axis"), 0) == 0:
            ids, n = node.input[1], rows[node.input[0]]
            bounds[ids] = min(bounds.get(ids, n), n)
    return bounds


def random_inputs(session: ort.InferenceSession, batch_size: int, seed: int = 0, int_high: int = 100,
                  label: str = "model", int_highs: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Random feeds for ``session``'s inputs; a symbolic first dim becomes ``batch_size``.
    Integer inputs are drawn below ``int_high``, or below ``int_highs[name]`` where smaller (see
    :func:`index_bounds`)."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for i in session.get_inputs():
        shape = []
        for k, d in enumerate(i.shape):
            if isinstance(d, int) and d > 0:
                shape.append(d)
            elif k == 0:
                shape.append(batch_size)
            else:
                raise MeasurementError("inputs", f"input {i.name!r} has a dynamic dimension {d!r} at axis {k} "
                                       f"(shape {i.shape}); export it with static shapes", model=label)
        if i.type in _FLOAT_NP:
            feeds[i.name] = rng.standard_normal(shape, dtype=np.float32).astype(_FLOAT_NP[i.type])
        elif i.type in _INT_NP:
            high = min(int_high, (int_highs or {}).get(i.name, int_high), int(np.iinfo(_INT_NP[i.type]).max))
            feeds[i.name] = rng.integers(0, high, size=shape).astype(_INT_NP[i.type])
        elif i.type == "tensor(bool)":
            feeds[i.name] = rng.random(shape) < 0.5
        else:
            raise MeasurementError("inputs", f"input {i.name!r} has type {i.type}, which archcast cannot "
                                   "generate random values for", model=label)
    return feeds


def prepare_model(model: ModelSource, name: str | None, seed: int,
                  before_fill: Callable[[onnx.ModelProto], Any] | None = None) -> tuple[str, bytes, dict[str, int], Any]:
    """``(label, serialized model with weights, embedding-table bounds, before_fill(proto))``: the
    model read once, random weights filled in where it has none (a weight-free zoo model), ready
    for a session; ``before_fill`` sees the model as given (e.g. to keep its graph's skeleton)."""
    path = model.path if isinstance(model, OnnxFile) else model
    label = name or (f"ONNX file {str(path)!r}" if isinstance(path, (str, Path)) else "ONNX model")
    proto = _load_model(model, label)
    int_highs = index_bounds(proto)
    kept = before_fill(proto) if before_fill is not None else None
    try:
        fill_weights(proto, seed=seed)
    except MeasurementError as e:
        raise MeasurementError(e.stage, e.reason, model=label) from None
    return label, proto.SerializeToString(), int_highs, kept


def check_platform(platform: Platform) -> None:
    """The platform must describe this process, else the number would be mislabelled."""
    here = {"backend": "onnxruntime-cpu", "runtime": "onnxruntime", "runtime_version": ort.__version__,
            "device": cpu_model()}
    for k, v in here.items():
        if getattr(platform, k) != v:
            raise InvalidInputError(
                f"platform {platform.name!r} has {k}={getattr(platform, k)!r} but this process has {v!r}; "
                "measure with archcast.profile.default_platform() (or a Platform describing this machine)"
            )


# ---------------------------------------------------------------------------- measuring
def measure_onnx(
    model: ModelSource,
    platform: Platform,
    batch_size: int | None = None,
    *,
    min_runs: int = 50,
    min_time_s: float = 0.5,
    max_time_s: float = 30.0,
    warmup_runs: int = 10,
    warmup_s: float = 0.3,
    profile_nodes: bool = False,
    profile_runs: int = 20,
    profile_max_s: float = 30.0,
    keep_optimized: bool = False,
    int_high: int = 100,
    seed: int = 0,
    name: str | None = None,
) -> Measurement:
    """Latency of ``model`` (ONNX bytes, path or ``ModelProto``; weight-free is fine) on ``platform``
    (e.g. :func:`archcast.profile.default_platform`) — see the module docstring for the protocol.

    ``batch_size`` fills a symbolic first input dim and is recorded; by default it is the first
    input's first dim (1 when symbolic). ``profile_nodes`` adds per-kernel times over
    ``profile_runs`` runs (fewer, but >= 3, once they pass ``profile_max_s`` seconds);
    ``keep_optimized`` adds the runtime's optimised graph to them.

    Raises:
        MeasurementError: onnxruntime cannot load the model, build its inputs, or run it.
        InvalidInputError: bad arguments, or ``platform`` does not describe this machine.
    """
    check_platform(platform)
    if min_runs < 1 or min_time_s < 0 or max_time_s <= 0 or warmup_runs < 0 or profile_runs < 1 \
            or profile_max_s <= 0:
        raise InvalidInputError(
            f"measure_onnx needs min_runs >= 1, min_time_s >= 0, max_time_s > 0, warmup_runs >= 0, "
            f"profile_runs >= 1, profile_max_s > 0; got {min_runs}, {min_time_s}, {max_time_s}, {warmup_runs}, "
            f"{profile_runs}, {profile_max_s}")
    label, data, int_highs, _ = prepare_model(model, name, seed)

    t0 = time.perf_counter()
    sess = _session(data, platform, label)
    session_s = time.perf_counter() - t0
    if batch_size is None:
        first = sess.get_inputs()[0].shape if sess.get_inputs() else [1]
        batch_size = first[0] if first and isinstance(first[0], int) and first[0] > 0 else 1
    if batch_size < 1:
        raise InvalidInputError(f"batch_size must be >= 1; got {batch_size}")
    feeds = random_inputs(sess, batch_size, seed=seed, int_high=int_high, label=label, int_highs=int_highs)
    outputs = [o.name for o in sess.get_outputs()]
    run = sess.run

    t_start = time.perf_counter()
    try:
        n_warm = 0
        while n_warm < max(1, warmup_runs):
            run(outputs, feeds)
            n_warm += 1
            if time.perf_counter() - t_start >= warmup_s:
                break
        times_ns: list[int] = []
        cpu_ns: list[int] = []
        thread_time = time.thread_time_ns if platform.threads == 1 else None
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            t_timed = time.perf_counter_ns()
            cap_ns, min_ns = int(max_time_s * 1e9), int(min_time_s * 1e9)
            while True:
                if thread_time is not None:
                    ca = thread_time()
                    a = time.perf_counter_ns()
                    run(outputs, feeds)
                    b = time.perf_counter_ns()
                    cpu_ns.append(thread_time() - ca)
                else:
                    a = time.perf_counter_ns()
                    run(outputs, feeds)
                    b = time.perf_counter_ns()
                times_ns.append(b - a)
                spent = b - t_timed
                if (len(times_ns) >= min_runs and spent >= min_ns) or (spent >= cap_ns and len(times_ns) >= 3):
                    break
        finally:
            if gc_was_enabled:
                gc.enable()
    except _ORT_ERRORS as e:
        raise MeasurementError("run", _reason(e), model=label) from None
    measure_s = time.perf_counter() - t_start
    del sess

    node_profile = _profile(data, platform, feeds, outputs, profile_runs, label, keep_optimized, profile_max_s) \
        if profile_nodes else None
    return Measurement.from_times(
        np.asarray(times_ns, dtype=np.float64) / 1e6,
        np.asarray(cpu_ns, dtype=np.float64) / 1e6 if cpu_ns else None,
        warmup_runs=n_warm,
        batch_size=int(batch_size),
        input_shapes={k: list(v.shape) for k, v in feeds.items()},
        timestamp=_dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds"),
        host=host_name(),
        session_s=session_s,
        measure_s=measure_s,
        node_profile=node_profile,
    )


def _profile(data: bytes, platform: Platform, feeds: dict[str, np.ndarray], outputs: list[str],
             runs: int, label: str, keep_optimized: bool, max_s: float) -> NodeProfile:
    """Per-kernel times from a profiled session: 2 warm-up runs (dropped) + ``runs`` runs, or
    fewer (>= 3) once they pass ``max_s`` seconds; the same session saves the optimised graph
    when ``keep_optimized``."""
    with tempfile.TemporaryDirectory(prefix="archcast-ort-prof-") as tmp:
        opt_path = os.path.join(tmp, "optimized.onnx") if keep_optimized else None
        sess = _session(data, platform, label, profile_prefix=os.path.join(tmp, "ort"), optimized_path=opt_path)
        try:
            for _ in range(2):
                sess.run(outputs, feeds)
            t0, n = time.perf_counter(), 0
            while n < runs and (n < 3 or time.perf_counter() - t0 < max_s):
                sess.run(outputs, feeds)
                n += 1
        except _ORT_ERRORS as e:
            raise MeasurementError("profile", _reason(e), model=label) from None
        path = sess.end_profiling()
        del sess
        events = read_profile_events(path)
        prof = parse_ort_profile(path, skip_runs=2, events=events)
        if opt_path is not None:  # shapes from the profiler; a session only for what it leaves out
            prof.optimized_onnx = annotate_optimized(opt_path, feeds, session_options(platform), label,
                                                     profiled=profile_output_shapes(events))
        return prof


__all__ = ["check_platform", "fill_weights", "index_bounds", "measure_onnx", "prepare_model", "parse_ort_profile", "random_inputs",
           "session_options"]
