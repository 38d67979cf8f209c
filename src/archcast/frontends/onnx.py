"""ONNX frontend: an ONNX model (file, bytes or ``ModelProto``) → :class:`~archcast.graph.NetGraph`.

Contract of :func:`load_onnx`:

* One node per operator. Initializers and constants (weights, biases, BN statistics) are folded
  into the operator that consumes them, and so is every operator whose inputs are all constant
  (``Constant``, a weight ``Transpose`` or ``DequantizeLinear``...) unless it produces a graph
  output. Edges are the data dependencies between the remaining operators (deduplicated).
* A folded constant input is a *parameter* (counted in ``params`` and ``memory_bytes``) when it is
  floating point and the op's cost spec does not call it a setting (see
  :class:`archcast.graph.ops.OpSpec`); other constants are *settings*. Integer settings with known
  values and at most 16 elements are recorded as attributes under the ONNX input name (Reshape's
  ``shape``, Slice's ``starts``...).
* Weight-free ONNX (initializers with dims but no data, as NNLQP ships) loads: only dims are read.
* Graph inputs must have static shapes, or be given in ``input_shapes``; shapes come from ONNX shape
  inference (:mod:`archcast.frontends.shapes`), after small constant-only ops (integer arithmetic
  on shape tensors that exporters leave behind) have been evaluated in NumPy
  (:mod:`archcast.frontends.folding`). Every operator output that something reads must get a
  static shape, else ``InvalidInputError``.
* Nodes are listed in a topological order (the file order when it already is one); node names are
  the ONNX names, or ``<op_type>_<index>`` when empty. Ops outside the default domain get the op
  type ``<domain>.<op_type>`` and the generic cost.
* Sub-graphs of control-flow ops (If/Loop/Scan) are not expanded; their op is one node.

Importing this module imports neither torch nor onnx: the model is read with onnx's protobuf
classes and C++ shape inference through :mod:`archcast.frontends.onnx_proto` (``import onnx`` costs
about a second); onnx itself is imported only to decode a tensor of a type NumPy lacks (bfloat16,
float8...). A source may be an ``onnx.ModelProto`` all the same.
"""

from __future__ import annotations

import functools
import heapq
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

import numpy as np

from archcast.errors import InvalidInputError
from archcast.frontends import onnx_proto as P
from archcast.frontends.external_data import ExternalData
from archcast.frontends.folding import fold_node
from archcast.frontends.onnx_file import MAX_FILE_BYTES, OnnxFile, read_onnx_file, shorten  # noqa: F401
from archcast.frontends.onnx_proto import AttrType, DataLocation, DataType
from archcast.frontends.shapes import META_KEY, fold_attrs, recover_shapes
from archcast.frontends.tensors import DATA_FIELDS as _DATA_FIELDS
from archcast.frontends.tensors import has_data
from archcast.graph.ir import NetGraph, Node
from archcast.graph.ops import ABSENT, ACTIVATION, CONFIG, PARAM, OpContext, numel, op_cost, spec_for

if TYPE_CHECKING:
    import onnx

OnnxSource = Union[str, Path, bytes, bytearray, OnnxFile, "onnx.ModelProto"]

_FLOAT_TYPES = {DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE, DataType.BFLOAT16}
_INT_TYPES = {DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
              DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64}
_MAX_CONFIG_ELEMS = 16  # integer settings up to this size become attributes
_MAX_EVAL_ELEMS = 4096  # constant sub-graphs are evaluated only on tensors up to this size
MAX_INPUT_DIM = 1 << 40
_NO_EVAL = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


# ---------------------------------------------------------------------------- reading
def _read(source: OnnxSource) -> tuple[onnx.ModelProto, str, str, ExternalData]:
    """The model (a private copy), a label for messages, a default graph name, and where its
    external data may be read from (the file's directory; nowhere for bytes and ModelProto)."""
    base: Path | None = None
    if P.is_model_proto(source):
        model = P.copy_model(source)
        label, default = "ONNX model", source.graph.name or "onnx_model"
    elif isinstance(source, (bytes, bytearray)):
        model, label = _parse(bytes(source), "ONNX bytes"), "ONNX bytes"
        default = model.graph.name or "onnx_model"
    elif isinstance(source, (str, Path, OnnxFile)):
        file = source if isinstance(source, OnnxFile) else read_onnx_file(source)
        label = file.label
        model, default = _parse(file.data, label), file.path.stem
        base = file.path.resolve().parent
    else:
        raise InvalidInputError(
            f"cannot read ONNX from a {type(source).__name__}; expected a path, bytes or onnx.ModelProto"
        )
    if not model.graph.node:
        raise InvalidInputError(f"{label} has no operators (not an ONNX model, or an empty graph)")
    if not model.opset_import:
        raise InvalidInputError(f"{label} has no opset_import (truncated or not an ONNX model)")
    _check_text(model, label)
    ext = ExternalData(base, label)
    ext.check_all(_all_tensors(model.graph))
    return model, label, default, ext


def _check_text(model: onnx.ModelProto, label: str) -> None:
    """Every name archcast reads is UTF-8 text (a bit flip can leave bytes that protobuf hands back
    as ``bytes`` or refuses to decode)."""
    g = model.graph
    try:
        names = [g.name, model.producer_name]
        for n in g.node:
            names += [n.name, n.op_type, n.domain, *n.input, *n.output, *(a.name for a in n.attribute)]
        for coll in (g.input, g.output, g.value_info, g.initializer):
            names += [x.name for x in coll]
        names += [st.values.name for st in g.sparse_initializer]
        names += [o.domain for o in model.opset_import]
    except UnicodeDecodeError:
        raise InvalidInputError(f"{label} holds a name that is not UTF-8 text (a corrupted file)") from None
    if not all(isinstance(x, str) for x in names):
        raise InvalidInputError(f"{label} holds a name that is not UTF-8 text (a corrupted file)")


def _all_tensors(g: onnx.GraphProto, depth: int = 0):  # noqa: ANN202 - yields TensorProto
    """Initializers and tensor attributes of ``g`` and its sub-graphs."""
    yield from g.initializer
    for st in g.sparse_initializer:
        yield st.values
    if depth > 64:
        return
    for n in g.node:
        for a in n.attribute:
            if a.type == AttrType.TENSOR:
                yield a.t
            elif a.type == AttrType.TENSORS:
                yield from a.tensors
            elif a.type == AttrType.GRAPH:
                yield from _all_tensors(a.g, depth + 1)
            elif a.type == AttrType.GRAPHS:
                for sub in a.graphs:
                    yield from _all_tensors(sub, depth + 1)


def _parse(data: bytes, label: str) -> onnx.ModelProto:
    from google.protobuf.message import DecodeError

    if not data:
        raise InvalidInputError(f"{label} is empty (0 bytes)")
    model = P.pb().ModelProto()
    try:
        model.ParseFromString(data)  # what onnx.load_model_from_string does
        return model
    except (DecodeError, RuntimeError, ValueError, TypeError, IndexError, KeyError, OverflowError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InvalidInputError(
            f"{label} is not a readable ONNX model (truncated or another format): {reason}"
        ) from None


# ---------------------------------------------------------------------------- shapes and types
def _dims(tp: onnx.TypeProto) -> tuple[int, ...] | None:
    """Static dims of a tensor type; -1 for an unknown dim; None when the rank is unknown."""
    if tp.WhichOneof("value") != "tensor_type" or not tp.tensor_type.HasField("shape"):
        return None
    return tuple(d.dim_value if d.WhichOneof("value") == "dim_value" else -1 for d in tp.tensor_type.shape.dim)


def _itemsize(elem_type: int) -> int:
    try:
        return P.itemsize(elem_type) or 4
    except (KeyError, TypeError, ValueError):
        return 4




def tensor_value(t: onnx.TensorProto, ext: ExternalData, label: str, limit: int = _MAX_EVAL_ELEMS) -> np.ndarray | None:
    """Values of a numeric tensor of at most ``limit`` elements, or None (too big, weight-free,
    external without a readable file, strings). A tensor whose data contradicts its dims or type
    is an :class:`InvalidInputError`."""
    what = f"{label}: tensor {t.name!r}"
    if any(d < 0 for d in t.dims):
        raise InvalidInputError(f"{what} has negative dims {tuple(t.dims)}")
    n = numel(t.dims)
    if n > limit or t.data_type == DataType.STRING:
        return None
    try:
        dtype = P.np_dtype(t.data_type)
    except (KeyError, TypeError, ValueError):
        raise InvalidInputError(f"{what} has data_type {t.data_type}, which is not an ONNX tensor type") from None
    if dtype.kind not in "iufb":
        return None
    if t.data_location == DataLocation.EXTERNAL:
        return ext.read(t, dtype)
    if not has_data(t):
        return None
    if t.raw_data and len(t.raw_data) != n * dtype.itemsize:
        raise InvalidInputError(
            f"{what} holds {len(t.raw_data)} bytes of raw_data; its dims {tuple(t.dims)} and type need {n * dtype.itemsize}"
        )
    try:
        return P.to_array(t)
    except Exception as e:  # noqa: BLE001 - onnx raises ValueError/TypeError/KeyError on malformed tensors
        raise InvalidInputError(f"{what} cannot be decoded for its dims {tuple(t.dims)}: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}") from None


def _parse_shape(value: Any, name: str) -> tuple[int, ...]:
    if isinstance(value, str):
        value = value.replace("x", ",").split(",")
    try:
        if isinstance(value, (bytes, bytearray)) or len(value) > 64:
            raise TypeError
        dims = tuple(int(d) for d in value)
        if any(isinstance(d, float) and not float(d).is_integer() for d in value):
            raise TypeError
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(
            f"input shape for {name!r} must be integers like (1, 3, 224, 224); got {value!r}"
        ) from None
    if any(d <= 0 for d in dims):
        raise InvalidInputError(f"input shape for {name!r} must be positive; got {dims}")
    if any(d > MAX_INPUT_DIM for d in dims):
        raise InvalidInputError(f"input shape for {name!r} has a dimension over 2^40; got {dims}")
    return dims


def _fix_inputs(
    model: onnx.ModelProto, label: str, input_shapes: Mapping[str, Any] | None
) -> dict[str, tuple[int, ...]]:
    """Apply ``input_shapes`` to the graph inputs, check every input is static; return the shapes."""
    g = model.graph
    consts = {t.name for t in g.initializer} | {t.values.name for t in g.sparse_initializer}
    real = [vi for vi in g.input if vi.name not in consts]
    if input_shapes is not None and not isinstance(input_shapes, Mapping):
        raise InvalidInputError(
            f"input_shapes must be a mapping of input name -> shape, e.g. {{'input': (1, 3, 224, 224)}}; "
            f"got {type(input_shapes).__name__} {shorten(repr(input_shapes), 60)}"
        )
    given = {str(k): v for k, v in (input_shapes or {}).items()}
    unknown = sorted(set(given) - {vi.name for vi in real})
    if unknown:
        raise InvalidInputError(
            f"{label}: input_shapes names {unknown[0]!r}, which is not a graph input; inputs: "
            + ", ".join(repr(vi.name) for vi in real)
        )
    shapes: dict[str, tuple[int, ...]] = {}
    for vi in real:
        dims = _dims(vi.type)
        if vi.name in given:
            new = _parse_shape(given[vi.name], vi.name)
            if dims is not None and len(dims) != len(new):
                raise InvalidInputError(
                    f"{label}: input {vi.name!r} has rank {len(dims)} but input_shapes gives {new} (rank {len(new)})"
                )
            shape = vi.type.tensor_type.shape
            shape.ClearField("dim")
            for d in new:
                shape.dim.add().dim_value = d
            dims = new
        if dims is None or any(d <= 0 for d in dims):
            shown = "?" if dims is None else "(" + ", ".join(_dim_text(d) for d in vi.type.tensor_type.shape.dim) + ")"
            hint = ",".join(str(d) if d > 0 else _example_dim(i, len(dims)) for i, d in enumerate(dims or ()))
            arg = vi.name if vi.name.isprintable() and " " not in vi.name and len(vi.name) <= 80 else "NAME"
            raise InvalidInputError(
                f"{label}: input {shorten(ascii(vi.name), 80)} has a dynamic shape {shorten(shown, 80)}; pass its "
                f"shape, e.g. --input-shape {arg}={hint or '1,3,224,224'} with your sizes (Python: "
                f"input_shapes={{{shorten(repr(vi.name), 80)}: ({(hint or '1,3,224,224').replace(',', ', ')})}})"
            )
        if any(d > MAX_INPUT_DIM for d in dims):
            raise InvalidInputError(f"{label}: input {vi.name!r} declares shape {dims}, a dimension over 2^40")
        shapes[vi.name] = dims
    if not shapes:
        raise InvalidInputError(f"{label} has no graph inputs besides its initializers")
    return shapes


def _example_dim(i: int, rank: int) -> str:
    """A concrete example for an unknown dim in the hint (batch 1; image-like 3 x 224 x 224)."""
    if i == 0:
        return "1"
    if rank == 4:
        return "3" if i == 1 else "224"
    return "128" if i == rank - 1 else "1"


def _dim_text(d: onnx.TensorShapeProto.Dimension) -> str:
    kind = d.WhichOneof("value")
    return d.dim_param if kind == "dim_param" else (str(d.dim_value) if kind == "dim_value" else "?")


# ---------------------------------------------------------------------------- attributes
def _round(x: float) -> float:
    return float(f"{x:.7g}")  # float32 attributes, printed without binary noise


def _decode_attr(a: onnx.AttributeProto) -> Any:
    """Decode one attribute: scalars and tuples as Python values, tensors as their dims tuple."""
    t = a.type
    if t == AttrType.FLOAT:
        return _round(a.f)
    if t == AttrType.INT:
        return int(a.i)
    if t == AttrType.STRING:
        return a.s.decode("utf-8", errors="replace")
    if t == AttrType.TENSOR:
        return tuple(a.t.dims)
    if t == AttrType.SPARSE_TENSOR:
        return tuple(a.sparse_tensor.dims)
    if t == AttrType.GRAPH:
        return f"graph:{a.g.name}"
    if t == AttrType.FLOATS:
        return tuple(_round(v) for v in a.floats)
    if t == AttrType.INTS:
        return tuple(int(v) for v in a.ints)
    if t == AttrType.STRINGS:
        return tuple(s.decode("utf-8", errors="replace") for s in a.strings)
    if t == AttrType.TENSORS:
        return tuple(tuple(x.dims) for x in a.tensors)
    if t == AttrType.GRAPHS:
        return tuple(f"graph:{x.name}" for x in a.graphs)
    return P.pb().AttributeProto.AttributeType.Name(t).lower()  # type protos: the kind is all we keep


def _constant_value(node: onnx.NodeProto, ext: ExternalData, label: str) -> np.ndarray | None:
    """The value of a small ``Constant`` node, or None when it carries no usable data (weight-free)."""
    for a in node.attribute:
        if a.type == AttrType.TENSOR:
            return tensor_value(a.t, ext, label)
        if a.type == AttrType.INT and a.name == "value_int":
            return np.asarray(a.i, dtype=np.int64)
        if a.type == AttrType.INTS and a.name == "value_ints":
            return np.asarray(list(a.ints), dtype=np.int64) if len(a.ints) <= _MAX_EVAL_ELEMS else None
        if a.type == AttrType.FLOAT and a.name == "value_float":
            return np.asarray(a.f, dtype=np.float32)
        if a.type == AttrType.FLOATS and a.name == "value_floats":
            return np.asarray(list(a.floats), dtype=np.float32) if len(a.floats) <= _MAX_EVAL_ELEMS else None
    return None


def _known_constants(model: onnx.ModelProto, ext: ExternalData, label: str) -> dict[str, np.ndarray]:
    """Values of small initializers and ``Constant`` outputs (the seeds of constant folding)."""
    g = model.graph
    known: dict[str, np.ndarray] = {}
    for t in g.initializer:
        v = tensor_value(t, ext, label)
        if v is not None:
            known[t.name] = v
            if t.data_location == DataLocation.EXTERNAL:  # inline it: inference and onnxruntime see it
                t.CopyFrom(P.from_array(v, t.name))
    for n in g.node:
        if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and len(n.output) == 1:
            v = _constant_value(n, ext, label)
            if v is not None:
                known[n.output[0]] = v
    return known


def _drop_large_data(model: onnx.ModelProto) -> None:
    """Clear the values of tensors over ``_MAX_EVAL_ELEMS`` elements (weights), keeping dims and
    type, in place. Nothing downstream reads them (costs come from dims; shape recovery from small
    constants), and shape inference would otherwise serialise every weight (ResNet-50: ~0.4 s)."""
    def strip(t: onnx.TensorProto) -> None:
        if numel(t.dims) > _MAX_EVAL_ELEMS:
            for f in _DATA_FIELDS:
                if len(getattr(t, f)):
                    t.ClearField(f)

    for t in model.graph.initializer:
        strip(t)
    for n in model.graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.type == AttrType.TENSOR:
                    strip(a.t)


def _evaluate_constants(model: onnx.ModelProto, known: dict[str, np.ndarray], opset: int) -> None:
    """Replace small operators whose inputs are all known constants by ``Constant`` nodes, in place.

    Exporters leave integer arithmetic on constants (``Mod``, ``Reshape`` of shape tensors...) that
    ONNX shape inference cannot see through; evaluating it (archcast's budgeted numpy folders,
    :mod:`archcast.frontends.folding`) makes the shapes downstream static. Tensors without data
    (weight-free) or over ``_MAX_EVAL_ELEMS`` are left alone, as are ops without a folder; ``known``
    gains the new values.
    """
    g = model.graph
    out: list[onnx.NodeProto] = []
    changed = False
    for n in g.node:
        ins = [x for x in n.input if x]
        if (n.domain in ("", "ai.onnx") and n.op_type not in _NO_EVAL and n.op_type != "Constant" and ins
                and all(x in known for x in ins)
                and not any(a.type in (AttrType.GRAPH, AttrType.GRAPHS) for a in n.attribute)):
            values = fold_node(n.op_type, [known[x] if x else None for x in n.input], fold_attrs(n), opset,
                               len(n.output), _MAX_EVAL_ELEMS)
            if values is not None and all(n.output):
                changed = True
                for o, v in zip(n.output, values):
                    known[o] = v
                    out.append(P.make_node("Constant", [], [o], name=f"{n.name or n.op_type}/value",
                                           value=P.from_array(v, o)))
                continue
        out.append(n)
    if changed:
        del g.node[:]
        g.node.extend(out)


def _input_names(op_type: str, domain: str, opset: int, n: int) -> list[str]:
    """ONNX formal input names of an op (``data``, ``shape``...); ``input{i}`` when unknown."""
    names = _formal_names(op_type, domain, opset)
    return [names[min(i, len(names) - 1)] if names else f"input{i}" for i in range(n)]


@functools.lru_cache(maxsize=1024)
def _formal_names(op_type: str, domain: str, opset: int) -> tuple[str, ...]:
    try:
        return P.schema_inputs(op_type, opset, domain)
    except Exception:  # noqa: BLE001 - SchemaError, or TypeError for an op type that is not valid text
        return ()


# ---------------------------------------------------------------------------- graph building
def _topo(nodes: Sequence[onnx.NodeProto], label: str) -> list[int]:
    """Indices of ``nodes`` in a topological order, stable with the file order."""
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[x] for x in n.input if x in producer and producer[x] != i} for i, n in enumerate(nodes)]
    users: list[list[int]] = [[] for _ in nodes]
    for i, d in enumerate(deps):
        for j in d:
            users[j].append(i)
    indeg = [len(d) for d in deps]
    heap = [i for i, k in enumerate(indeg) if k == 0]
    order: list[int] = []
    while heap:
        i = heapq.heappop(heap)
        order.append(i)
        for j in users[i]:
            indeg[j] -= 1
            if indeg[j] == 0:
                heapq.heappush(heap, j)
    if len(order) != len(nodes):
        done = set(order)
        stuck = next(nodes[i] for i in range(len(nodes)) if i not in done)
        raise InvalidInputError(f"{label}: the graph has a cycle through node {stuck.name or stuck.op_type!r}")
    return order


def load_onnx(
    source: OnnxSource,
    *,
    input_shapes: Mapping[str, Sequence[int] | str] | None = None,
    name: str | None = None,
) -> NetGraph:
    """Read an ONNX model as a validated ``kind="network"`` :class:`NetGraph` (see module docstring).

    Args:
        source: a path (str/Path), the file's bytes, an :class:`OnnxFile` (a file read once), or
            an ``onnx.ModelProto`` (not modified).
        input_shapes: ``{input name: shape}`` overriding the declared input dims (required for
            inputs with symbolic/0/-1 dims); a shape may also be a string ``"1,3,224,224"``.
        name: graph name; default: the file stem, else the ONNX graph name.

    Raises:
        InvalidInputError: unreadable/not-ONNX/truncated source, dynamic input shapes without an
            override, or an output shape that shape inference cannot determine.
    """
    if name is not None and not isinstance(name, str):
        raise InvalidInputError(f"name must be a string, got {type(name).__name__}")
    model, label, default_name, ext = _read(source)
    inputs = _fix_inputs(model, label, input_shapes)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    order = _topo(model.graph.node, label)
    if order != sorted(order):  # shape inference reads nodes in listing order
        sorted_nodes = [model.graph.node[i] for i in order]
        del model.graph.node[:]
        model.graph.node.extend(sorted_nodes)
    known = _known_constants(model, ext, label)
    _drop_large_data(model)
    _evaluate_constants(model, known, opset)
    facts = recover_shapes(model, label, inputs, known, opset)
    g = model.graph

    # Tensor facts: shape and element size; constant values where known.
    shape, elem = facts.shape, facts.elem
    const: dict[str, np.ndarray | None] = {}  # constant tensor -> value (None: unknown/weight-free)
    for t in g.initializer:
        shape[t.name], elem[t.name] = tuple(t.dims), t.data_type
        const[t.name] = known.get(t.name) if t.data_type in _INT_TYPES else None
    for st in g.sparse_initializer:
        shape[st.values.name], elem[st.values.name] = tuple(st.dims), st.values.data_type
        const[st.values.name] = None

    graph_outputs = {o.name for o in g.output}
    consumed = {x for n in g.node for x in n.input if x}
    nodes: list[Node] = []
    producer: dict[str, int] = {}  # tensor -> index in `nodes`
    edges: set[tuple[int, int]] = set()
    for n in g.node:
        present = [x for x in n.input if x]
        if all(x in const for x in present) and not graph_outputs.intersection(n.output):
            value = known.get(n.output[0]) if n.op_type == "Constant" and n.domain in ("", "ai.onnx") and n.output else None
            for o in n.output:
                const[o] = value if value is not None and len(n.output) == 1 else None
            continue  # folded: its outputs are constants of the consumers

        op_type = n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}"
        node_name = n.name or f"{op_type}_{len(nodes)}"
        where = f"{label}: node {node_name!r} ({op_type})"
        spec = spec_for(op_type)
        attrs = {a.name: _decode_attr(a) for a in n.attribute if not a.ref_attr_name}
        formal = _input_names(n.op_type, n.domain, opset, len(n.input))
        in_shapes: list[tuple[int, ...] | None] = []
        kinds: list[str] = []
        in_size: list[int] = []
        for pos, x in enumerate(n.input):
            s = shape.get(x) if x else None
            if not x:
                kind = ABSENT
            elif s is None or any(d < 0 for d in s):
                raise InvalidInputError(f"{where}: shape of input {x!r} is unknown after shape inference")
            elif x in const:
                is_float = elem.get(x, DataType.FLOAT) in _FLOAT_TYPES
                kind = PARAM if is_float and not spec.is_config(pos, numel(s)) else CONFIG
                v = const[x]
                if kind == CONFIG and v is not None and v.dtype.kind in "iu" and v.size <= _MAX_CONFIG_ELEMS:
                    attrs.setdefault(formal[pos], tuple(int(e) for e in v.reshape(-1)))
            else:
                kind = ACTIVATION
                if x in producer:
                    edges.add((producer[x], len(nodes)))
            in_shapes.append(s)
            kinds.append(kind)
            in_size.append(_itemsize(elem.get(x, 0)) if x else 4)

        out_shapes: list[tuple[int, ...]] = []
        out_size: list[int] = []
        for o in n.output:
            s = shape.get(o) if o else None
            if s is None or any(d < 0 for d in s):
                if o and (o in consumed or o in graph_outputs):
                    raise InvalidInputError(
                        f"{where}: shape inference cannot determine the shape of output {o!r}; "
                        "archcast needs static shapes (pass input_shapes, or export with fixed sizes)"
                    )
                continue  # optional or unused output: nothing reads it
            out_shapes.append(s)
            out_size.append(_itemsize(elem.get(o, 0)))
            producer[o] = len(nodes)
        if not out_shapes:
            raise InvalidInputError(f"{where}: no output has a known shape")
        ctx = OpContext(attrs, tuple(in_shapes), tuple(kinds), tuple(out_shapes), tuple(in_size), tuple(out_size))
        try:
            cost = op_cost(op_type, ctx)
        except (IndexError, KeyError, TypeError, ValueError, ZeroDivisionError) as e:
            raise InvalidInputError(f"{where}: cannot compute its cost from shapes {in_shapes}: {e}") from None
        nodes.append(Node(
            name=node_name, op_type=op_type, attrs=attrs,
            input_shapes=[s for s, k in zip(in_shapes, kinds) if k == ACTIVATION and s is not None],
            output_shapes=out_shapes, flops=cost.flops, params=cost.params, memory_bytes=cost.memory_bytes,
        ))

    first = next(iter(inputs.values()))
    graph = NetGraph(
        nodes=nodes,
        edges=sorted(edges),
        name=name or default_name,
        kind="network",
        inputs=inputs,
        meta={"source": "onnx", "batch_size": int(first[0]) if first else 1, "opset": int(opset),
              "producer": model.producer_name, META_KEY: facts.path},
    )
    return graph.validate()


def strip_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """A weight-free copy: floating-point initializers keep their dims and type but lose their data.

    Integer initializers (shapes, axes, indices) keep their values: shape inference needs them.
    """
    out = P.pb().ModelProto()
    out.CopyFrom(model)
    for t in out.graph.initializer:
        if t.data_type in _FLOAT_TYPES:
            for f in _DATA_FIELDS:
                t.ClearField(f)
            t.ClearField("external_data")
            t.data_location = DataLocation.DEFAULT
    return out


__all__ = ["OnnxFile", "load_onnx", "read_onnx_file", "strip_weights"]
