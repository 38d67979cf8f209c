"""Shape recovery for ONNX graphs: a static shape for every value an operator reads or writes.

:func:`recover_shapes` tries three paths in order and reports which one gave the shapes (it is
stored as ``NetGraph.meta["shape_path"]`` by the ONNX frontend):

1. ``"onnx"``: ONNX shape inference, **without** data propagation. Most exported graphs need
   nothing more; this is the only step on the common path (in process).
2. ``"folded"``: archcast's own budgeted folding of shape sub-graphs, alternated with shape
   inference: a ``Shape``/``Size`` of a value whose shape is now static becomes a constant, then
   every op of :data:`archcast.frontends.folding.FOLDERS` whose inputs are all constant is
   evaluated in numpy (``Gather`` → ``Concat`` → ``Reshape`` targets, ``Slice`` ends, ``Pad`` pads,
   ``Range`` limits...), and inference runs again, until every value is static or nothing changes.
   Runs in process, pure Python, every folded tensor capped at ``FOLD_BUDGET`` elements before it
   is allocated, a bounded number of rounds.
3. ``"onnxruntime"``: run the graph once with onnxruntime in a child process with every value
   exposed as a graph output, and read the shapes. Weight-free initializers become random inputs
   (floats) or zeros (integers); initializers that carry data are kept as they are, so shape-setting
   tensors (Reshape targets, Resize scales/sizes, Slice/Pad/Expand/Tile parameters) are never
   randomised, and a shape-setting input without data is refused before anything runs. The child
   has a wall-clock limit and an address-space limit: a crash, a hang or a blow-up becomes an
   :class:`~archcast.errors.InvalidInputError`, never a dead or stuck archcast.

Why these and not others. Evidence: the 18 dynamic-axes exports of the test corpus
(``tests/frontends/corpus.py``) with their input shapes fixed, onnx 1.23.2, onnxruntime 1.32:

* onnx's data propagation (``infer_shapes(data_prop=True)``, what archcast used before) made all
  shapes static for 9 of 18; on crafted files it segfaults, aborts or never returns in native
  code (an ``EyeLike``→``Einsum`` graph, a ``Clamp`` graph, a 99-byte ``Einsum`` graph), which no
  ``try`` can catch in process. It is not used at all any more.
* onnxruntime's basic-level optimizer (then ONNX inference on its optimized model) got 18 of 18,
  as does archcast's folding (step 2). The optimizer rewrites the graph (fuses, renames) and runs
  native code in process on an untrusted file; the folding keeps every node, runs in Python with
  a size budget, and costs milliseconds. onnxruntime is kept for step 3, in a child process.
* onnx's ``ReferenceEvaluator`` (used before for constant-only ops) costs ~0.2 ms per node to set
  up, materialises whatever an op asks for before any size check (``Range 0..2^26``), and resolved
  a ``ConstantOfShape`` value stored as external data against the working directory (a file
  leak). The numpy folders check output sizes first and never open a file.
* onnxsim/onnxslim: extra native dependencies that run onnxruntime in process; nothing they add
  over steps 2-3 for shapes.
* ONNX inference itself is native code too: with an ``Einsum`` whose term holds two ellipses it
  never returns even without data propagation. Einsum equations are checked against the ONNX
  grammar first, and graphs with ops of :data:`RISKY_OPS`, sub-graphs or an unknown opset are
  inferred in a forked child with a time and memory limit (ONNX's inference is already loaded:
  a fork costs tens of milliseconds); ordinary graphs are inferred in process (ResNet-50,
  weight-free: ~13 ms for the whole load; with weights 0.13 s, mostly reading the 100 MB file).
* Step 3 costs a process start (~0.2 s: numpy + onnxruntime, onnx is not imported in the child)
  plus one run on random data; a 2,000-node graph takes ~0.5 s. It is taken only when steps 1-2
  leave a value unknown (data-dependent shapes: ``NonZero``, ``Unique``...).
"""

from __future__ import annotations

import json
import math
import os
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from archcast.errors import InvalidInputError
from archcast.frontends import onnx_proto as P
from archcast.frontends.folding import FOLD_BUDGET, fold_node
from archcast.frontends.onnx_proto import AttrType, DataLocation
from archcast.frontends.tensors import has_data

if TYPE_CHECKING:
    import onnx

SHAPE_PATHS = ("onnx", "folded", "onnxruntime")
META_KEY = "shape_path"
MAX_FOLD_ROUNDS = 64
RUNTIME_TIMEOUT_S = 10.0
RUNTIME_MEMORY_BYTES = 4 << 30  # address space of the onnxruntime child
RUNTIME_TENSOR_BYTES = 2 << 30  # weights + inputs the child would have to allocate
_WORKER = Path(__file__).with_name("_ort_worker.py")

#: ONNX input positions whose values set an output shape: never randomised (see step 3).
SHAPE_SETTING_INPUTS: dict[str, tuple[int, ...]] = {
    "Reshape": (1,), "Resize": (1, 2, 3), "Upsample": (1,), "Slice": (1, 2, 3, 4), "Pad": (1, 2, 3),
    "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,), "Range": (0, 1, 2), "Squeeze": (1,),
    "Unsqueeze": (1,), "Split": (1,), "TopK": (1,), "OneHot": (1,), "ReduceSum": (1,), "ReduceMean": (1,),
    "ReduceMax": (1,), "ReduceMin": (1,), "ReduceProd": (1,), "ReduceL2": (1,), "ReduceSumSquare": (1,),
    "CenterCropPad": (1,), "Col2Im": (1, 2), "NonMaxSuppression": (2,),
}  # fmt: skip


@dataclass
class ShapeFacts:
    """Static shapes (``None``: unknown) and ONNX element types of the graph's values."""

    shape: dict[str, tuple[int, ...] | None] = field(default_factory=dict)
    elem: dict[str, int] = field(default_factory=dict)
    path: str = "onnx"


# ---------------------------------------------------------------------------- step 1
#: Ops whose onnx shape-inference functions have hung or crashed the process on crafted input
#: (Einsum with two ellipses in a term loops forever even without data propagation); graphs with
#: them, with sub-graphs, or with an opset onnx does not know are inferred in a guarded child.
RISKY_OPS = frozenset({"Einsum", "EyeLike", "Loop", "Scan", "If", "SequenceMap", "ConcatFromSequence",
                       "SplitToSequence", "Optional"})
INFER_TIMEOUT_S = 8.0
INFER_EXTRA_BYTES = 2 << 30  # address space the guarded child may add to the parent's


def _risky(model: onnx.ModelProto) -> str | None:
    """Why ``model`` must be inferred in a guarded child, or None for the common in-process path."""
    latest = P.opset_version()
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and not 1 <= o.version <= latest:
            return f"opset {o.version}"
    for n in model.graph.node:
        if n.op_type in RISKY_OPS and n.domain in ("", "ai.onnx"):
            return n.op_type
        if any(a.type in (AttrType.GRAPH, AttrType.GRAPHS) for a in n.attribute):
            return "a sub-graph"
    return None


def _infer_in_process(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    try:
        return P.infer_shapes(model, strict=False, data_prop=False)
    except Exception as e:  # noqa: BLE001 - onnx raises C++ errors as ValueError/IndexError/TypeError/RuntimeError
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise InvalidInputError(f"{label}: ONNX shape inference failed: {reason}") from None


def _vm_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _infer_guarded(model: onnx.ModelProto, label: str, why: str) -> onnx.ModelProto:
    """ONNX inference in a forked child (inference is already loaded: no start-up cost) with a time
    and address-space limit; a crash, hang or blow-up becomes an :class:`InvalidInputError`."""
    import resource
    import select
    import time

    if not hasattr(os, "fork"):
        return _infer_in_process(model, label)
    limit = _vm_bytes() + INFER_EXTRA_BYTES
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        code = 1
        try:
            os.close(r)
            try:
                resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
                resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            except (ValueError, OSError):
                pass
            try:
                blob = b"K" + _infer_in_process(model, label).SerializeToString()
            except InvalidInputError as e:
                blob = b"E" + str(e).encode("utf-8", "replace")
            except MemoryError:
                blob = b"E" + f"{label}: ONNX shape inference ran out of memory".encode()
            view = memoryview(struct.pack("<Q", len(blob)) + blob)
            while view:
                view = view[os.write(w, view):]
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    chunks: list[bytes] = []
    deadline = time.monotonic() + INFER_TIMEOUT_S
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([r], [], [], left)
            if not ready:
                continue
            data = os.read(r, 1 << 20)
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
        if timed_out:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        _, status = os.waitpid(pid, 0)
    if timed_out:
        raise InvalidInputError(
            f"{label}: ONNX shape inference did not finish in {INFER_TIMEOUT_S:.0f} s (graph with {why}); refused")
    raw = b"".join(chunks)
    if os.WIFSIGNALED(status) or len(raw) < 9:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        name = signal.Signals(sig).name if sig in signal.valid_signals() else f"status {status}"
        raise InvalidInputError(f"{label}: ONNX shape inference crashed ({name}) on this graph (with {why}); refused")
    blob = raw[8:8 + struct.unpack("<Q", raw[:8])[0]]
    if blob[:1] == b"E":
        raise InvalidInputError(blob[1:].decode("utf-8", "replace"))
    out = P.pb().ModelProto()
    out.ParseFromString(blob[1:])
    return out


def infer(model: onnx.ModelProto, label: str) -> onnx.ModelProto:
    """ONNX shape inference without data propagation; any onnx failure is an InvalidInputError.

    In process for ordinary graphs; in a guarded child (:func:`_infer_guarded`) for graphs with an
    op of :data:`RISKY_OPS`, a sub-graph, or an unknown opset.
    """
    _check_einsum(model, label)
    why = _risky(model)
    return _infer_in_process(model, label) if why is None else _infer_guarded(model, label, why)


def _check_einsum(model: onnx.ModelProto, label: str) -> None:
    """Refuse Einsum equations outside the ONNX grammar before any native code reads them."""
    import re

    term = r"(?:[A-Za-z]*(?:\.\.\.)?[A-Za-z]*)"
    grammar = re.compile(rf"{term}(?:,{term})*(?:->{term})?")
    for n in model.graph.node:
        if n.op_type != "Einsum" or n.domain not in ("", "ai.onnx"):
            continue
        eq = next((a.s for a in n.attribute if a.name == "equation" and a.type == AttrType.STRING), None)
        text = eq.decode("utf-8", "replace").replace(" ", "") if eq is not None else None
        if text is None or len(text) > 512 or not grammar.fullmatch(text):
            shown = "missing" if text is None else repr(text[:60])
            raise InvalidInputError(
                f"{label}: node {n.name or 'Einsum'!r}: Einsum equation {shown} is not valid (letters, at most one "
                "'...' per term, one optional '->'; e.g. 'bij,bjk->bik')"
            )


def _dims(tp: onnx.TypeProto) -> tuple[int, ...] | None:
    if tp.WhichOneof("value") != "tensor_type" or not tp.tensor_type.HasField("shape"):
        return None
    dims = tp.tensor_type.shape.dim
    return tuple(d.dim_value if d.WhichOneof("value") == "dim_value" else -1 for d in dims)


def _facts(inferred: onnx.ModelProto, inputs: Mapping[str, tuple[int, ...]]) -> ShapeFacts:
    f = ShapeFacts()
    g = inferred.graph
    for vi in list(g.value_info) + list(g.output) + list(g.input):
        f.shape[vi.name] = _dims(vi.type)
        f.elem[vi.name] = vi.type.tensor_type.elem_type
    f.shape.update(inputs)
    for t in g.initializer:
        f.shape[t.name], f.elem[t.name] = tuple(int(d) for d in t.dims), t.data_type
    for st in g.sparse_initializer:
        f.shape[st.values.name], f.elem[st.values.name] = tuple(int(d) for d in st.dims), st.values.data_type
    return f


def _static(s: tuple[int, ...] | None) -> bool:
    return s is not None and all(d >= 0 for d in s)


def needed(model: onnx.ModelProto) -> list[str]:
    """Values that must get a static shape: operator outputs that something reads or the graph returns."""
    g = model.graph
    consumed = {x for n in g.node for x in n.input if x} | {o.name for o in g.output}
    return [o for n in g.node for o in n.output if o and o in consumed]


def _missing(model: onnx.ModelProto, facts: ShapeFacts) -> list[str]:
    return [o for o in needed(model) if not _static(facts.shape.get(o))]


# ---------------------------------------------------------------------------- step 2
UNREADABLE = object()  # a tensor attribute whose value folding must not guess


def fold_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    """Attributes for :func:`fold_node`: scalars, tuples, inline tensors as arrays (never external)."""
    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == AttrType.INT:
            out[a.name] = int(a.i)
        elif a.type == AttrType.FLOAT:
            out[a.name] = float(a.f)
        elif a.type == AttrType.INTS:
            out[a.name] = tuple(int(v) for v in a.ints)
        elif a.type == AttrType.FLOATS:
            out[a.name] = tuple(float(v) for v in a.floats)
        elif a.type == AttrType.TENSOR:
            out[a.name] = UNREADABLE  # external, too big or undecodable: blocks folding of this op
            if a.t.data_location == DataLocation.EXTERNAL:
                continue
            try:
                if math.prod(int(d) for d in a.t.dims) <= FOLD_BUDGET and all(d >= 0 for d in a.t.dims):
                    out[a.name] = P.to_array(a.t)
            except Exception:  # noqa: BLE001 - an undecodable tensor attribute just blocks folding
                pass
    return out


def _foldable_node(n: onnx.NodeProto) -> bool:
    return n.domain in ("", "ai.onnx") and not any(
        a.type in (AttrType.GRAPH, AttrType.GRAPHS) for a in n.attribute)


def _fold_round(work: onnx.ModelProto, facts: ShapeFacts, known: dict[str, np.ndarray], opset: int) -> bool:
    """One pass over ``work``: Shape/Size of static values and foldable ops on constants become
    ``Constant`` nodes (in place). Returns True when something changed."""
    changed = False
    out_nodes: list[onnx.NodeProto] = []
    for n in work.graph.node:
        outs: list[np.ndarray] | None = None
        present = [x for x in n.input if x]
        if n.op_type == "Constant" or not _foldable_node(n):
            pass
        elif n.op_type in ("Shape", "Size") and present:
            s = facts.shape.get(present[0])
            if _static(s):
                dims = tuple(s)  # type: ignore[arg-type]
                at = fold_attrs(n)
                start, end = at.get("start", 0), at.get("end")
                if n.op_type == "Size":
                    size = math.prod(dims)
                    outs = [np.array(size, dtype=np.int64)] if size < 2 ** 62 else None
                elif isinstance(start, int) and (end is None or isinstance(end, int)):
                    outs = [np.array(dims[start:end], dtype=np.int64)]
        elif present and all(x in known for x in present):
            outs = fold_node(n.op_type, [known[x] if x else None for x in n.input], fold_attrs(n), opset, len(n.output))
        if outs is None or len(outs) != len(n.output):
            out_nodes.append(n)
            continue
        changed = True
        for o, v in zip(n.output, outs):
            if o:
                known[o] = v
                out_nodes.append(P.make_node("Constant", [], [o], value=P.from_array(v, o)))
    if changed:
        del work.graph.node[:]
        work.graph.node.extend(out_nodes)
    return changed


# ---------------------------------------------------------------------------- step 3
def _runtime_model(work: onnx.ModelProto, label: str, facts: ShapeFacts,
                   inputs: Mapping[str, tuple[int, ...]]) -> tuple[bytes, dict[str, list[int]], list[str]]:
    """The model the child runs: weight-free initializers turned into graph inputs, subgraph-free
    external references cleared. Refuses a shape-setting input without data and oversized runs."""
    m = P.pb().ModelProto()
    m.CopyFrom(work)
    g = m.graph
    shape_setting: dict[str, str] = {}
    for n in g.node:
        for pos in SHAPE_SETTING_INPUTS.get(n.op_type, ()):
            if pos < len(n.input) and n.input[pos]:
                shape_setting.setdefault(n.input[pos], n.op_type)
    feeds: dict[str, list[int]] = {k: list(v) for k, v in inputs.items()}
    total = 0
    keep = []
    for t in g.initializer:
        dims = [int(d) for d in t.dims]
        size = math.prod(dims)
        total += size * 8
        if has_data(t):
            keep.append(t)
            continue
        if t.name in shape_setting:
            raise InvalidInputError(
                f"{label}: {shape_setting[t.name]} reads its shape setting {t.name!r} from an initializer that "
                "carries no data (weight-free or external); archcast cannot recover the shapes it sets"
            )
        vi = P.make_tensor_value_info(t.name, t.data_type, dims)
        g.input.append(vi)
        feeds[t.name] = dims
    for name, dims in inputs.items():
        total += math.prod(dims) * 8
    if total > RUNTIME_TENSOR_BYTES:
        raise InvalidInputError(
            f"{label}: shapes are not static and running the graph to recover them would need "
            f"{total / 2**30:.1f} GiB of tensors (limit {RUNTIME_TENSOR_BYTES / 2**30:.0f} GiB)"
        )
    del g.initializer[:]
    g.initializer.extend(keep)
    for n in g.node:  # external tensors in attributes would be resolved against the child's cwd
        for a in n.attribute:
            if a.type == AttrType.TENSOR and a.t.data_location == DataLocation.EXTERNAL:
                raise InvalidInputError(
                    f"{label}: node {n.name or n.op_type!r} holds an external-data tensor attribute whose value is "
                    "unknown; archcast cannot run the graph to recover its shapes"
                )
    have = {o.name for o in g.output}
    for n in g.node:
        for o in n.output:
            if o and o not in have:
                g.output.add().name = o
                have.add(o)
    return m.SerializeToString(), feeds, sorted(have)


def _limits() -> None:  # runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (RUNTIME_MEMORY_BYTES, RUNTIME_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    cpu = int(RUNTIME_TIMEOUT_S * 3)  # orphaned children (a killed parent) still end
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    os.setsid()


def runtime_shapes(work: onnx.ModelProto, label: str, facts: ShapeFacts,
                   inputs: Mapping[str, tuple[int, ...]]) -> ShapeFacts:
    """Step 3: shapes of every value from one onnxruntime run in a guarded child process."""
    blob, feeds, outputs = _runtime_model(work, label, facts, inputs)
    header = json.dumps({"inputs": feeds, "threads": 1}).encode()
    payload = struct.pack("<Q", len(header)) + header + blob
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
    env["OMP_NUM_THREADS"] = "1"
    try:
        proc = subprocess.Popen([sys.executable, "-I", str(_WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, preexec_fn=_limits, env=env, cwd=str(_WORKER.parent))
    except OSError as e:
        raise InvalidInputError(f"{label}: cannot start onnxruntime to recover shapes: {e}") from None
    try:
        out, _ = proc.communicate(payload, timeout=RUNTIME_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            proc.kill()
        proc.communicate()
        raise InvalidInputError(
            f"{label}: shapes are not static and running the graph with onnxruntime to recover them took over "
            f"{RUNTIME_TIMEOUT_S:.0f} s; refused"
        ) from None
    except BrokenPipeError:
        out = b""
        proc.wait()
    rc = proc.returncode
    try:
        reply = json.loads(out.decode("utf-8", "replace").strip().splitlines()[-1]) if out.strip() else {}
    except (json.JSONDecodeError, IndexError):
        reply = {}
    if not reply.get("ok"):
        if rc is not None and rc < 0:
            why = f"onnxruntime died with signal {signal.Signals(-rc).name if -rc in signal.valid_signals() else -rc}"
        else:
            why = reply.get("error") or f"onnxruntime exited with status {rc}"
        if "out of memory" in why or "bad_alloc" in why or "std::bad_alloc" in why:
            why += f" (limit {RUNTIME_MEMORY_BYTES >> 30} GiB)"
        raise InvalidInputError(f"{label}: shapes are not static and running the graph to recover them failed: {why}")
    new = ShapeFacts(dict(facts.shape), dict(facts.elem), "onnxruntime")
    for name, dims in reply.get("shapes", {}).items():
        new.shape[name] = tuple(int(d) for d in dims)
    for name, dt in reply.get("dtypes", {}).items():
        try:
            if not new.elem.get(name):
                new.elem[name] = P.tensor_dtype(dt)
        except (KeyError, TypeError, ValueError):
            pass
    return new


# ---------------------------------------------------------------------------- orchestration
def recover_shapes(model: onnx.ModelProto, label: str, inputs: Mapping[str, tuple[int, ...]],
                   known: Mapping[str, np.ndarray], opset: int, *, allow_runtime: bool = True) -> ShapeFacts:
    """Shapes and element types of every value of ``model`` (not modified); see the module docstring.

    Args:
        model: topologically sorted model whose graph inputs have static dims.
        label: names the model in messages.
        inputs: static shape of every graph input.
        known: values of small constant tensors (initializers with data, Constant outputs).
        opset: default-domain opset.
        allow_runtime: permit step 3 (onnxruntime in a child process).

    Raises:
        InvalidInputError: naming the first value whose shape no step could recover.
    """
    inferred = infer(model, label)
    facts = _facts(inferred, inputs)
    miss = _missing(model, facts)
    if not miss:
        return facts
    work = P.pb().ModelProto()
    work.CopyFrom(model)
    values = dict(known)
    for _ in range(MAX_FOLD_ROUNDS):
        if not _fold_round(work, facts, values, opset):
            break
        facts = _facts(infer(work, label), inputs)
        facts.path = "folded"
        miss = _missing(model, facts)
        if not miss:
            return facts
    if allow_runtime:
        facts = runtime_shapes(model, label, facts, inputs)
        miss = _missing(model, facts)
        if not miss:
            return facts
    facts.path = "unresolved"
    first = miss[0]
    producer = next((n for n in model.graph.node if first in n.output), None)
    what = f"node {producer.name or producer.op_type!r} ({producer.op_type})" if producer is not None else "a node"
    raise InvalidInputError(
        f"{label}: {what}: cannot determine the shape of output {first!r} (ONNX inference, shape folding"
        + (" and an onnxruntime run" if allow_runtime else "") + " all failed); archcast needs static shapes"
    )


__all__ = ["META_KEY", "SHAPE_PATHS", "SHAPE_SETTING_INPUTS", "ShapeFacts", "infer", "needed", "recover_shapes",
           "runtime_shapes"]
