"""What onnxruntime runs: a model's optimised graph as IR, with a map back to the model's nodes
(docs/design.md §6, "Model what runs").

:func:`runtime_graph` builds one onnxruntime CPU session with the platform's (the profiler's)
settings, which saves the graph it executes (``SessionOptions.optimized_model_filepath``);
:func:`archcast.profile.kernels.annotate_optimized` runs that graph once for every tensor's shape
and the ONNX frontend reads it as a :class:`NetGraph` whose node names are the kernel names the
profiler reports. Nothing is timed.

Names. An unnamed model node is ``<op_type>_<k>``, ``k`` its index among the nodes that are not
``Constant`` (onnxruntime's node index, so an unnamed node kept as a kernel has the name the
profiler reports); an unnamed ``Constant`` is ``Constant_c<k>``, ``k`` its index among the
``Constant`` nodes; a name already taken gets ``_<position in the file>``. An unnamed kernel that
is an unnamed model node takes its name; other unnamed kernels (bodies of functions onnxruntime
inlines, e.g. HardSwish) take the profiler's names, from one profiled run made only for them.

The origin map, from tensor names. onnxruntime keeps many tensor names (a fused kernel writes the
tensor of the last node it absorbed) and renames others; the rule reads them back:

1. *Equivalent tensors.* A tensor stands for the model tensor of its name. A NCHWc kernel
   ``<tensor>_nchwc`` (``_bn_nchwc``, ``_mul_nchwc``: a BatchNormalization or Mul made a 1x1 conv)
   writes ``<tensor>`` blocked; with a ``Sum`` input it also absorbed the ``Add`` reading
   ``<tensor>``, with an ``activation`` the activation after it. Inserted layout kernels (NCHWc
   reorders; Reshape, Transpose... named after no model node and writing no tensor of a node of
   their type) pass a tensor through. A kernel that is a model node (by name, or by the type of
   the node whose tensor it writes) reads and writes, position by position, what the node does; a
   NCHWc kernel reads what the first node it runs reads. Model tensors with a counterpart are
   *cut points*; the others vanished inside a kernel.
2. *Eliminated.* Nodes computed from constants and shapes only (``Constant``, weight transposes,
   ``Shape``/``Gather``/``Concat`` arithmetic, anything onnxruntime folded into an initializer),
   nodes that reach no graph output, and ``Identity``/``Dropout`` whose output vanished run in no
   kernel, unless onnxruntime kept one as a kernel.
3. *Seeds.* The writer of a cut point belongs to the kernel writing its counterpart; a kernel
   named after a node (``<name>``, ``fused <name>``, ``<name>/...Fusion``, ``<name>_new_reshape``)
   holds it.
4. *Groups.* Nodes joined by vanished tensors ran in one kernel: a group with one seeded kernel
   goes to it, except members whose data flow the kernels cannot carry (a tensor from kernel J read
   in kernel K needs an edge J -> K, possibly through layout kernels).
5. *The rest*, node by node in topological order, goes to the kernel with the fewest such
   violations, then the fewest vanished tensors between kernels, among its producers' kernels, its
   consumers' and those between; producers first (runtimes fuse an elementwise tail into the op
   before it).

So every model node is in exactly one kernel's origin or in ``eliminated``. Inserted kernels
(layout reorders, the reshapes around a Gemm) have empty origins; a node split over kernels (an
inlined function) belongs to the one writing its output.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from archcast.errors import InvalidInputError
from archcast.frontends import onnx_proto as P
from archcast.frontends.onnx import _topo, load_onnx
from archcast.graph.ir import NetGraph
from archcast.profile.kernels import ORT_ERRORS, annotate_optimized, ort_reason
from archcast.profile.measurement import MeasurementError
from archcast.profile.ort import ModelSource, _session, prepare_model, random_inputs, session_options
from archcast.profile.platform import default_platform

if TYPE_CHECKING:
    import onnx

    from archcast.profile.platform import Platform

_ONNX_DOMAINS = ("", "ai.onnx")
_NCHWC = "com.microsoft.nchwc"
_KERNEL_SUFFIX = "_kernel_time"
# data-movement ops a runtime inserts around the kernels it builds (reshapes around a Gemm...)
_LAYOUT_OPS = {"Reshape", "Squeeze", "Unsqueeze", "Transpose", "Flatten", "Identity", "Cast"}
_REORDER_OPS = {"ReorderInput", "ReorderOutput"}
_ALIAS_OPS = {"Identity", "Dropout"}  # no-ops at inference: the runtime removes them
_SUM_OPS = {"Add", "Sum"}
_FUSION_SUFFIX = re.compile(r"(?:/[A-Za-z0-9]*Fusion/?|_new_reshape|_token_\d+)$")
_NCHWC_NAME = re.compile(r"^(?P<stem>.*)_nchwc(?:_token_\d+)?$")
_NCHWC_EXTRA = ("_bn", "_mul", "_add")
# model ops a NCHWc kernel can start with (a BatchNormalization or a Mul by a constant becomes a 1x1 conv)
_NCHWC_HEADS = {"Conv": {"Conv", "BatchNormalization", "Mul", "Add"}, "Upsample": {"Resize", "Upsample"}}
_SHAPE_OPS = {"Shape", "Size"}  # static when the shapes are: the runtime folds them


@dataclass(frozen=True)
class RuntimeGraph:
    """The graph onnxruntime executes for a model, and where each model node went.

    Attributes:
        graph: the optimised graph as archcast IR; its node names are the kernel names the
            onnxruntime profiler reports (a kernel whose inputs are all constants, which the
            frontend folds, would be missing; onnxruntime folds those itself).
        optimized_onnx: the optimised graph as weight-free ONNX with every tensor's shape in
            ``value_info`` (unnamed kernels carry the names described in the module docstring).
        origin: every kernel name -> the names of the model's nodes it executes, in the model's
            order (empty for kernels the runtime inserted).
        eliminated: the model's nodes no kernel runs, in the model's order.
    """

    graph: NetGraph = field(repr=False, hash=False)
    optimized_onnx: bytes = field(repr=False, hash=False)
    origin: dict[str, tuple[str, ...]] = field(hash=False)
    eliminated: tuple[str, ...] = ()

    @property
    def kernels(self) -> tuple[str, ...]:
        """Kernel names, in the optimised graph's order."""
        return tuple(self.origin)

    def kernel_of(self, node: str) -> str | None:
        """The kernel that executes the model node ``node``; None when it was eliminated.

        Raises:
            InvalidInputError: ``node`` is not a node name of the model.
        """
        for kernel, nodes in self.origin.items():
            if node in nodes:
                return kernel
        if node in self.eliminated:
            return None
        raise InvalidInputError(f"{node!r} is not a node of the model (names as in RuntimeGraph.origin)")

    def summary(self) -> dict[str, int]:
        """Counts: model nodes, kernels, eliminated nodes, kernels with an empty origin."""
        return {"nodes": sum(len(v) for v in self.origin.values()) + len(self.eliminated),
                "kernels": len(self.origin), "eliminated": len(self.eliminated),
                "inserted": sum(1 for v in self.origin.values() if not v)}


# ---------------------------------------------------------------------------- names
def _is_constant(n: onnx.NodeProto) -> bool:
    return n.op_type == "Constant" and n.domain in _ONNX_DOMAINS


def node_names(graph: onnx.GraphProto) -> list[str]:
    """Stable, unique names of ``graph``'s nodes (see the module docstring for unnamed nodes)."""
    names: list[str] = []
    taken: set[str] = set()
    k = c = 0
    for i, n in enumerate(graph.node):
        if _is_constant(n):
            name, c = n.name or f"Constant_c{c}", c + 1
        else:
            name, k = n.name or f"{n.op_type}_{k}", k + 1
        while name in taken:
            name = f"{name}_{i}"
        taken.add(name)
        names.append(name)
    return names


def _profiled_names(path: str | Path, known: set[str]) -> list[tuple[str, str]]:
    """``(op_type, name)`` of the kernels of an onnxruntime profiler file not named in ``known``,
    in execution order."""
    events = json.loads(Path(path).read_text(encoding="utf-8"))
    events = events.get("traceEvents", []) if isinstance(events, dict) else events
    seen: dict[str, str] = {}
    for e in sorted((e for e in events if e.get("cat") == "Node"), key=lambda e: e.get("ts", 0)):
        name = str(e.get("name", ""))[: -len(_KERNEL_SUFFIX)]
        if str(e.get("name", "")).endswith(_KERNEL_SUFFIX) and name not in known:
            seen.setdefault(name, str(e.get("args", {}).get("op_name", "")))
    return [(op, name) for name, op in seen.items()]


def _name_kernels(opt: onnx.ModelProto, original: onnx.GraphProto, profiled: Sequence[tuple[str, str]] | None) -> bool:
    """Give the unnamed nodes of ``opt`` the names onnxruntime reports for them, in place; False
    when some need ``profiled`` (:func:`_profiled_names`) and it is None."""
    kept: dict[tuple[str, str, str], str] = {}  # an unnamed model node's outputs -> <op_type>_<node index>
    k = 0
    for n in original.node:
        if not _is_constant(n):
            kept.update({(n.domain, n.op_type, o): f"{n.op_type}_{k}" for o in n.output if o and not n.name})
            k += 1
    for n in opt.graph.node:
        if not n.name:
            n.name = next((kept[key] for o in n.output if (key := (n.domain, n.op_type, o)) in kept), "")
    rest = [(pos, n) for pos, n in enumerate(opt.graph.node) if not n.name]
    if not rest or profiled is None:
        return not rest
    taken = {n.name for n in opt.graph.node if n.name}
    for pos, n in rest:
        name = next((x for op, x in profiled if op == n.op_type and x not in taken), f"{n.op_type}_{pos}")
        while name in taken:
            name = f"{name}_{pos}"
        n.name = name
        taken.add(name)
    return True


# ---------------------------------------------------------------------------- the origin map
def _index(nodes: Sequence[onnx.NodeProto]) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Tensor -> index of the node writing it, and tensor -> indices of the nodes reading it."""
    producer: dict[str, int] = {}
    consumers: dict[str, list[int]] = {}
    for i, n in enumerate(nodes):
        producer.update((o, i) for o in n.output if o and o not in producer)
        for x in dict.fromkeys(x for x in n.input if x):
            consumers.setdefault(x, []).append(i)
    return producer, consumers


class _Model:
    """The model's graph as tensors and nodes, for tracing."""

    def __init__(self, graph: onnx.GraphProto, runtime: set[str], folded: set[str]) -> None:
        self.nodes = list(graph.node)
        self.names = node_names(graph)
        consts = {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}
        self.inputs = [i.name for i in graph.input if i.name not in consts]
        self.outputs = [o.name for o in graph.output]
        self.producer, self.consumers = _index(self.nodes)
        self.order = _topo(self.nodes, "ONNX model")
        # static: computed from constants and shapes only (the runtime folded it: ``folded``), unless
        # the runtime computes it (``runtime``: written by a kernel)
        static = consts | folded
        for i in self.order:
            n = self.nodes[i]
            if n.op_type in _SHAPE_OPS or all(x in static for x in n.input if x):
                static.update(o for o in n.output if o and o not in runtime)
        self.static = static

    def data_inputs(self, i: int) -> list[str]:
        return [x for x in dict.fromkeys(self.nodes[i].input) if x and x not in self.static]

    def unalias(self, t: str) -> str:
        """``t``, or the tensor an Identity/Dropout chain that writes ``t`` reads."""
        while (i := self.producer.get(t)) is not None and self.nodes[i].op_type in _ALIAS_OPS \
                and self.nodes[i].domain in _ONNX_DOMAINS and len(data := self.data_inputs(i)) == 1:
            t = data[0]
        return t


class _Kernels:
    """The optimised graph: kernels, tensor equivalences with the model, and which kernel feeds which."""

    def __init__(self, graph: onnx.GraphProto, model: _Model) -> None:
        self.nodes = list(graph.node)
        self.names = [n.name for n in self.nodes]
        self.producer, self.consumers = _index(self.nodes)
        model_names = dict(zip(model.names, range(len(model.nodes))))
        self.named = [self._named_node(n.name, model_names) for n in self.nodes]
        # kernels that are one model node (kept, maybe under new tensor names): inputs and outputs match
        self.same = [i is not None and model.names[i] == n.name and model.nodes[i].op_type == n.op_type
                     for n, i in zip(self.nodes, self.named)]
        for j, n in enumerate(self.nodes):
            if self.named[j] is None and n.domain in _ONNX_DOMAINS and n.op_type in _LAYOUT_OPS and n.input:
                # a renamed data-movement node: it reads what a model node of its type reads, whose
                # outputs are gone
                h = next((i for i in model.consumers.get(n.input[0], []) if model.nodes[i].op_type == n.op_type
                          and model.nodes[i].input[:1] == n.input[:1]
                          and not any(o in self.producer for o in model.nodes[i].output)), None)
                if h is not None:
                    self.named[j], self.same[j] = h, True
        self.passthrough = [self._is_passthrough(j, model) for j in range(len(self.nodes))]
        self.eq = self._equivalences(model)
        self._succ: dict[int, set[int]] = {}

    @staticmethod
    def _named_node(name: str, model_names: dict[str, int]) -> int | None:
        """The model node a kernel is named after: the same name, ``fused <name>``, or ``<name>``
        with the suffixes onnxruntime's fusions append (``/MatMulAddFusion``, ``_new_reshape``...)."""
        if name.startswith("fused "):
            name = name[len("fused "):]
        for _ in range(4):
            if name in model_names:
                return model_names[name]
            shorter = _FUSION_SUFFIX.sub("", name)
            if shorter == name or not shorter:
                return None
            name = shorter
        return None

    def _is_passthrough(self, j: int, model: _Model) -> bool:
        """Inserted layout kernels: NCHWc reorders, and data-movement kernels not named after a model
        node whose output is not written by a model node of the same type."""
        n = self.nodes[j]
        if n.domain == _NCHWC and n.op_type in _REORDER_OPS:
            return True
        if n.domain not in _ONNX_DOMAINS or n.op_type not in _LAYOUT_OPS or self.named[j] is not None:
            return False
        writer = model.producer.get(n.output[0]) if n.output else None
        return writer is None or model.nodes[writer].op_type != n.op_type

    def _nchwc(self, j: int, model: _Model) -> tuple[str, int | None] | None:
        """``(model tensor, head node)`` of a NCHWc kernel: the tensor it writes (blocked), read
        from its name and its fused ``Sum`` and ``activation``, and the first model node it runs
        (the node whose data input is the kernel's input 0), when found."""
        n = self.nodes[j]
        m = _NCHWC_NAME.match(n.name)
        if n.domain != _NCHWC or m is None:
            return None
        stem = m.group("stem")
        stem = next((t for t in [stem, *(stem[: -len(e)] for e in _NCHWC_EXTRA if stem.endswith(e))]
                     if t in model.producer), "")
        if not stem:
            return None
        head: int | None = model.producer[stem]
        for _ in range(4):  # back from a fused activation to the op the kernel is
            if head is None or model.nodes[head].op_type in _NCHWC_HEADS.get(n.op_type, {n.op_type}):
                break
            data = model.data_inputs(head)
            head = model.producer.get(data[0]) if len(data) == 1 else None
        else:
            head = None

        def after(t: str, ops: set[str]) -> str:  # the tensor of t's only reader, when of type ``ops``
            users = model.consumers.get(t, [])
            ok = len(users) == 1 and model.nodes[users[0]].op_type in ops and model.nodes[users[0]].output
            return model.nodes[users[0]].output[0] if ok else t

        if n.op_type == "Conv" and len(n.input) > 3 and n.input[3]:  # Sum: an Add after the conv was fused
            stem = after(stem, _SUM_OPS)
        act = next((a.s.decode() for a in n.attribute if a.name == "activation" and a.s), None)
        if act and model.nodes[model.producer[stem]].op_type != act:
            stem = after(stem, {act})
        return stem, head

    def _equivalences(self, model: _Model) -> dict[str, str]:
        """Tensor of the optimised graph -> the model tensor it holds (possibly in another layout)."""
        known = set(model.producer) | set(model.inputs)
        eq = {t: t for t in set(self.producer) | set(self.consumers) if t in known and t not in model.static}
        heads: dict[int, tuple[int, bool]] = {}  # kernel -> (model node it starts with, inputs match by position)
        for j, n in enumerate(self.nodes):
            i = self.named[j]
            if i is not None and self.same[j] and len(model.nodes[i].output) == len(n.output):
                for o, t in zip(n.output, model.nodes[i].output):  # a kept node (maybe on blocked tensors)
                    if o and t and o not in eq and t not in model.static:
                        eq[o] = t
            found = self._nchwc(j, model)
            if found is not None:
                t, head = found
                if n.output and n.output[0] not in eq and t not in model.static:
                    eq[n.output[0]] = t
                if head is not None:
                    heads[j] = (head, False)

        def through_layout() -> None:
            for _ in range(len(self.nodes)):  # both ways, to a fixpoint
                changed = False
                for j, n in enumerate(self.nodes):
                    if not self.passthrough[j] or not n.input or not n.output:
                        continue
                    x, y = n.input[0], n.output[0]
                    if x in eq and y not in eq:
                        eq[y], changed = eq[x], True
                    elif y in eq and x not in eq and x in self.producer:
                        eq[x], changed = eq[y], True
                if not changed:
                    return

        through_layout()
        # a renamed tensor a kernel reads is what the first model node it runs reads; a kernel of
        # the type of the model node whose tensor it writes is that node (kept, maybe renamed)
        for _ in range(len(self.nodes)):
            size = len(eq)
            for j, n in enumerate(self.nodes):
                i = model.producer.get(eq.get(n.output[0], "")) if n.output and not self.passthrough[j] else None
                if j not in heads and i is not None and model.nodes[i].op_type == n.op_type \
                        and model.nodes[i].domain == n.domain and len(model.nodes[i].input) == len(n.input):
                    heads[j] = (i, True)
            for j, (i, by_position) in heads.items():
                n, h = self.nodes[j], model.nodes[i]
                if by_position:
                    pairs = list(zip(n.input, h.input))
                else:
                    data = model.data_inputs(i)
                    pairs = [(n.input[0], data[0] if len(data) == 1 else h.input[0])] if n.input and h.input else []
                for x, t in pairs:
                    if x and t and x not in eq and x in self.producer and t not in model.static:
                        eq[x] = model.unalias(t)
            through_layout()
            if len(eq) == size:
                break
        return eq

    def successors(self, j: int) -> set[int]:
        """Kernels that read what ``j`` writes, directly or through layout kernels."""
        if j not in self._succ:
            self._succ[j] = {c for o in self.nodes[j].output for c in self.consumers.get(o, [])}
            for c in [c for c in self._succ[j] if self.passthrough[c]]:
                self._succ[j] |= self.successors(c)
        return self._succ[j]

    def readers(self, tensor: str) -> set[int]:
        """Kernels that read a graph input ``tensor``, directly or through layout kernels."""
        direct = set(self.consumers.get(tensor, []))
        return direct.union(*(self.successors(c) for c in direct if self.passthrough[c]))


def _root(parent: dict[int, int], i: int) -> int:
    """Union-find: the representative of ``i``'s set (path halving)."""
    while parent.get(i, i) != i:
        parent[i] = parent.get(parent[i], parent[i])
        i = parent[i]
    return i


def trace_origin(original: onnx.GraphProto,
                 optimized: onnx.GraphProto) -> tuple[dict[str, tuple[str, ...]], tuple[str, ...]]:
    """The origin map and the eliminated nodes (see the module docstring) of a model's graph
    ``original`` and the optimised graph ``optimized`` onnxruntime made of it (its nodes named).

    Returns ``(origin, eliminated)``: kernel name -> model node names it executes, and the model
    node names no kernel executes; every model node is in exactly one of them.
    """
    folded = {t.name for t in optimized.initializer}
    model = _Model(original, runtime={o for n in optimized.node for o in n.output if o}, folded=folded)
    ker = _Kernels(optimized, model)
    nodes = model.nodes
    cut = set(ker.eq.values())
    inputs = set(model.inputs)

    # seeds: the writers of cut points, then the nodes kernels are named after
    assign: dict[int, int] = {}
    for j, n in enumerate(ker.nodes):
        if not ker.passthrough[j]:
            for o in n.output:
                t = ker.eq.get(o)
                if t is not None and t in model.producer:
                    assign.setdefault(model.producer[t], j)
    for j, i in enumerate(ker.named):
        if i is not None and not ker.passthrough[j]:
            assign.setdefault(i, j)

    # what no kernel runs: static nodes, nodes that reach no output, removed no-ops
    live: set[int] = set()
    stack = [t for t in model.outputs if t not in model.static]
    seen: set[str] = set()
    while stack:
        t = stack.pop()
        i = model.producer.get(t)
        if t in seen or i is None:
            continue
        seen.add(t)
        live.add(i)
        stack.extend(model.data_inputs(i))
    alias: dict[str, str] = {}  # vanished output of a removed no-op -> the tensor it reads
    for i in model.order:
        n, data = nodes[i], model.data_inputs(i)
        if i not in assign and i in live and n.op_type in _ALIAS_OPS and n.domain in _ONNX_DOMAINS and len(data) == 1 \
                and n.output and n.output[0] not in cut:
            alias[n.output[0]] = alias.get(data[0], data[0])
    active = [i for i in model.order
              if i in assign or (i in live and not (nodes[i].output and nodes[i].output[0] in alias))]
    active_set = set(active)

    ins = {i: list(dict.fromkeys(alias.get(x, x) for x in model.data_inputs(i))) for i in active}
    outs = {i: [o for o in nodes[i].output if o] for i in active}
    users: dict[str, list[int]] = {}  # tensor -> active nodes that read it
    for i in active:
        for x in ins[i]:
            users.setdefault(x, []).append(i)

    def violations(i: int, k: int) -> tuple[int, int]:
        """Data edges of node ``i`` in kernel ``k`` that the kernels cannot carry, and vanished
        tensors that would cross kernels."""
        bad = crossing = 0
        for x in ins[i]:
            p = model.producer.get(x)
            if p is None or p not in active_set:
                bad += x in inputs and k not in ker.readers(x)
            elif p in assign and assign[p] != k:
                bad += k not in ker.successors(assign[p])
                crossing += x not in cut
        for t in outs[i]:
            for c in users.get(t, []):
                if c in assign and assign[c] != k:
                    bad += assign[c] not in ker.successors(k)
                    crossing += t not in cut
        return bad, crossing

    # groups joined by vanished tensors, when they hold one seeded kernel
    parent: dict[int, int] = {}
    for i in active:
        for c in (c for t in outs[i] if t not in cut for c in users.get(t, [])):
            a, b = _root(parent, i), _root(parent, c)
            parent[max(a, b)] = min(a, b)
    group_kernels: dict[int, set[int]] = {}
    for i, j in assign.items():
        group_kernels.setdefault(_root(parent, i), set()).add(j)
    tentative = []
    for i in active:
        ks = group_kernels.get(_root(parent, i), set())
        if i not in assign and len(ks) == 1:
            assign[i] = next(iter(ks))
            tentative.append(i)
    for i in tentative:
        if violations(i, assign[i])[0]:
            del assign[i]

    # the rest, node by node
    while True:
        changed = False
        for i in active:
            if i in assign:
                continue
            before = [assign[p] for x in ins[i] if (p := model.producer.get(x)) is not None and p in assign]
            after = [assign[c] for t in outs[i] for c in users.get(t, []) if c in assign]
            if not before and not after:
                continue
            between = [k for k in sorted(set().union(*(ker.successors(b) for b in before)))
                       if all(a in ker.successors(k) for a in after)] if before and after else []
            candidates = list(dict.fromkeys(before + after + between))
            assign[i] = min(candidates, key=lambda k: (*violations(i, k), candidates.index(k)))
            changed = True
        if not changed:
            break

    origin: dict[str, list[str]] = {name: [] for name in ker.names}  # a repeated kernel name: one entry
    for i in sorted(assign):
        origin[ker.names[assign[i]]].append(model.names[i])
    eliminated = tuple(model.names[i] for i in range(len(nodes)) if i not in assign)
    return {k: tuple(v) for k, v in origin.items()}, eliminated


# ---------------------------------------------------------------------------- the entry point
def _skeleton(graph: onnx.GraphProto) -> onnx.GraphProto:
    """``graph``'s nodes, inputs, outputs and initializer names, without tensor data."""
    pb = P.pb()
    return pb.GraphProto(
        node=graph.node, input=graph.input, output=graph.output,
        initializer=[pb.TensorProto(name=t.name) for t in graph.initializer],
        sparse_initializer=[pb.SparseTensorProto(values=pb.TensorProto(name=t.values.name))
                            for t in graph.sparse_initializer])


def runtime_graph(model: ModelSource, platform: Platform | None = None, *, seed: int = 0, batch_size: int = 1,
                  name: str | None = None) -> RuntimeGraph:
    """The graph onnxruntime's CPU provider executes for ``model`` on ``platform``, as IR, with the
    map from its kernels back to ``model``'s nodes (see the module docstring for the rule).

    Args:
        model: ONNX bytes, a path, an :class:`~archcast.frontends.onnx_file.OnnxFile` or an
            ``onnx.ModelProto`` (not modified); weight-free is fine
            (random weights are filled in first, as :func:`archcast.profile.ort.measure_onnx` does).
        platform: an ``onnxruntime-cpu`` platform (threads, optimisation level); default
            :func:`archcast.profile.default_platform`. The graph is the one this process's
            onnxruntime builds on this CPU (NCHWc block sizes depend on the instruction set).
        seed: seed of the random weights and of the inputs of the one shape-annotation run.
        batch_size: fills a symbolic first input dim.
        name: a label for error messages.

    Raises:
        MeasurementError: onnxruntime cannot load the model, build its inputs, or run it.
        InvalidInputError: bad arguments (a platform of another backend, a missing file...).
    """
    platform = platform or default_platform()
    if platform.backend != "onnxruntime-cpu":
        raise InvalidInputError(f"runtime_graph models onnxruntime's CPU provider; platform {platform.name!r} "
                                f"has backend {platform.backend!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InvalidInputError(f"batch_size must be an integer >= 1; got {batch_size!r}")
    label, data, int_highs, original = prepare_model(model, name, seed, lambda p: _skeleton(p.graph))

    with tempfile.TemporaryDirectory(prefix="archcast-ort-graph-") as tmp:
        opt_path = os.path.join(tmp, "optimized.onnx")
        # profiling is on (free until a run) for the rare kernels only the profiler names
        sess = _session(data, platform, label, profile_prefix=os.path.join(tmp, "ort"), optimized_path=opt_path)
        del data
        profile: str | None = None
        try:
            feeds = random_inputs(sess, batch_size, seed=seed, label=label, int_highs=int_highs)
            annotated = annotate_optimized(opt_path, feeds, session_options(platform), label)
            opt = P.parse_model(annotated)
            renamed = any(not n.name for n in opt.graph.node)
            if not _name_kernels(opt, original, None):
                try:
                    sess.run(None, feeds)
                except ORT_ERRORS as e:
                    raise MeasurementError("run", ort_reason(e), model=label) from None
                profile = sess.end_profiling()
                _name_kernels(opt, original, _profiled_names(profile, {n.name for n in opt.graph.node if n.name}))
        finally:
            if profile is None:
                sess.end_profiling()
            del sess
    if renamed:
        annotated = opt.SerializeToString()
    origin, eliminated = trace_origin(original, opt.graph)
    graph = load_onnx(annotated, input_shapes={k: v.shape for k, v in feeds.items()}, name=name)
    return RuntimeGraph(graph=graph, optimized_onnx=annotated, origin=origin, eliminated=eliminated)


__all__ = ["RuntimeGraph", "node_names", "runtime_graph", "trace_origin"]
