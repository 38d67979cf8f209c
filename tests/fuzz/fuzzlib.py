"""Input families and the per-input runner of archcast's fuzz harness.

Every input is a pure function of ``(family, seed, index)`` (:func:`make_input`), so a run can be
split into chunks, resumed, and any finding replayed by its three numbers. :func:`run_one` feeds one
input to archcast and classifies the outcome:

* ``ok``: a result; ``clean``: an :class:`~archcast.errors.ArchcastError` (a one-line message);
* ``uncaught``: any other exception (a bug: its signature is recorded, with the layer it came from).

Hangs, memory blow-ups and native crashes can only be seen from outside the process; the long-run
driver ``scripts/fuzz.py`` runs inputs in guarded worker processes and adds ``hang``, ``memory``
and ``crash``. Families (what a user could feed archcast):

``random_bytes``, ``truncation``, ``bitflip`` (of real ONNX), ``onnx_mutation`` (structurally valid
ONNX with bad semantics: cycles, dangling inputs, missing shapes, 0/negative/2^40 dims, wrong
attribute types, unknown domains, nested sub-graphs, hostile external-data paths, huge constants),
``random_graph`` (random chains of real ONNX ops with random attributes), ``big_graph`` (long chains
listed in reverse, wide fan-out), ``cell_string``, ``graph_json`` (mutated ``NetGraph`` JSON, also
tokenized), ``api_options`` (garbage ``input_shapes``/``name``/sources), ``predict`` (the public
``archcast.predict`` on the above, upper layers included), ``cli`` (garbage ``archcast`` arguments,
subprocess; long runs only).
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import traceback
from pathlib import Path
from typing import Any, Callable

import numpy as np

FAMILIES = ("random_bytes", "truncation", "bitflip", "onnx_mutation", "random_graph", "big_graph", "cell_string",
            "graph_json", "api_options", "predict", "cli")
MY_LAYERS = ("archcast/graph/", "archcast/frontends/", "archcast/tokenizer/", "archcast/errors.py")

_SEEDS: list[bytes] | None = None
BIG_JSON_NODES = (1000, 30000)  # node counts of the big graph-JSON mutations (the short run uses fewer)
_TMP = Path(tempfile.gettempdir()) / f"archcast-fuzz-{os.getpid()}"


# ---------------------------------------------------------------------------- seed models
def _seed_models() -> list[bytes]:
    """Small real-looking ONNX models (no torch needed): conv net, attention, shape arithmetic,
    LSTM, Resize, Einsum, control flow."""
    global _SEEDS
    if _SEEDS is not None:
        return _SEEDS
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def w(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    def i64(name, vals):
        return numpy_helper.from_array(np.asarray(vals, np.int64), name)

    def model(nodes, inits, x, opset=17, name="seed"):
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x))],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)], inits)
        return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()

    seeds = []
    # conv / bn / relu / pool / residual / gemm
    seeds.append(model([
        helper.make_node("Conv", ["x", "w0", "b0"], ["c0"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("BatchNormalization", ["c0", "s", "bb", "m", "v"], ["n0"]),
        helper.make_node("Relu", ["n0"], ["r0"]),
        helper.make_node("Conv", ["r0", "w1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], group=2),
        helper.make_node("Add", ["c1", "r0"], ["a0"]),
        helper.make_node("MaxPool", ["a0"], ["p0"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p0"], ["g0"]),
        helper.make_node("Flatten", ["g0"], ["f0"]),
        helper.make_node("Gemm", ["f0", "wf", "bf"], ["y"], transB=1)],
        [w("w0", 8, 3, 3, 3), w("b0", 8), w("s", 8), w("bb", 8), w("m", 8), w("v", 8), w("w1", 8, 4, 3, 3),
         w("wf", 10, 8), w("bf", 10)], (1, 3, 16, 16)))
    # attention with shape arithmetic
    seeds.append(model([
        helper.make_node("MatMul", ["x", "wq"], ["q"]), helper.make_node("MatMul", ["x", "wk"], ["k"]),
        helper.make_node("Shape", ["q"], ["qs"]), helper.make_node("Gather", ["qs", "one"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["nu"]),
        helper.make_node("Concat", ["one1", "nu", "m1"], ["shp"], axis=0),
        helper.make_node("Reshape", ["q", "shp"], ["q2"]),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q2", "kt"], ["sc"]), helper.make_node("Softmax", ["sc"], ["pr"], axis=-1),
        helper.make_node("MatMul", ["pr", "x"], ["y"])],
        [w("wq", 16, 16), w("wk", 16, 16), i64("one", 1), i64("ax0", [0]), i64("one1", [1]), i64("m1", [-1])],
        (1, 8, 16)))
    # LSTM + Slice with computed ends
    seeds.append(model([
        helper.make_node("LSTM", ["x", "W", "R", "B"], ["ys", "yh"], hidden_size=8),
        helper.make_node("Shape", ["ys"], ["s"]), helper.make_node("Gather", ["s", "three"], ["h"], axis=0),
        helper.make_node("Div", ["h", "two"], ["half"]), helper.make_node("Unsqueeze", ["half", "ax0"], ["hu"]),
        helper.make_node("Slice", ["ys", "z", "hu", "ax3"], ["y"])],
        [w("W", 1, 32, 4), w("R", 1, 32, 8), w("B", 1, 64), i64("three", 3), i64("two", 2), i64("ax0", [0]),
         i64("z", [0]), i64("ax3", [3])], (5, 1, 4)))
    # Resize + ConvTranspose + Pad + Einsum + ReduceSum
    seeds.append(model([
        helper.make_node("Resize", ["x", "", "sc"], ["r"], mode="linear"),
        helper.make_node("ConvTranspose", ["r", "wt"], ["ct"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Pad", ["ct", "pads"], ["pd"]),
        helper.make_node("Einsum", ["pd", "pd"], ["es"], equation="bchw,bchw->bc"),
        helper.make_node("ReduceSum", ["es", "axs"], ["y"], keepdims=1)],
        [numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "sc"), w("wt", 2, 2, 2, 2),
         i64("pads", [0, 0, 1, 1, 0, 0, 1, 1]), i64("axs", [1])], (1, 2, 4, 4), opset=18))
    # If with sub-graphs, Loop
    then_g = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                               [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                               [helper.make_tensor_value_info("e", TensorProto.FLOAT, [1, 4])])
    seeds.append(model([
        helper.make_node("ReduceSum", ["x"], ["sm"], keepdims=0),
        helper.make_node("Greater", ["sm", "zero"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)],
        [numpy_helper.from_array(np.array(0, np.float32), "zero")], (1, 4)))
    # old opset Upsample / Reshape attribute era
    m = onnx.helper.make_model(onnx.helper.make_graph(
        [helper.make_node("Upsample", ["x"], ["u"], scales=[1.0, 1.0, 2.0, 2.0]),
         helper.make_node("Reshape", ["u", "sh"], ["y"])], "old",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [i64("sh", [1, -1])]),
        opset_imports=[helper.make_opsetid("", 7)])
    m.ir_version = 3
    seeds.append(m.SerializeToString())
    _SEEDS = seeds
    return seeds


# ---------------------------------------------------------------------------- mutations
def _mutate_bytes(rng: random.Random, data: bytes, kind: str) -> bytes:
    b = bytearray(data)
    if kind == "truncation":
        return bytes(b[: rng.randrange(len(b))])
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        i = rng.randrange(len(b))
        b[i] ^= 1 << rng.randrange(8)
    return bytes(b)


_WEIRD_INTS = [0, -1, -2, 1, 2, 3, 7, 2**31 - 1, 2**31, 2**40, 2**62, 2**63 - 1, -(2**63)]
_OPS_POOL = ["Conv", "ConvTranspose", "Relu", "Add", "Mul", "MatMul", "Gemm", "Reshape", "Transpose", "Concat",
             "Slice", "Gather", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "Resize", "Pad",
             "Expand", "Tile", "ConstantOfShape", "Range", "Shape", "Size", "Squeeze", "Unsqueeze", "Split",
             "Einsum", "LSTM", "GRU", "RNN", "Attention", "TopK", "ReduceSum", "ReduceMean", "Cast", "Where",
             "Clip", "BatchNormalization", "LayerNormalization", "EyeLike", "NonZero", "OneHot", "Loop", "If",
             "Scan", "CumSum", "Flatten", "Identity", "Dropout", "DepthToSpace", "Upsample", "Trilu", "Unique",
             "RotaryEmbedding", "GroupQueryAttention", "Mod", "Div", "Sub", "Neg", "Sqrt", "Erf", "Gelu"]


def _rand_attr(rng: random.Random, helper: Any, name: str):
    kind = rng.randrange(9)
    if kind == 0:
        return helper.make_attribute(name, rng.choice(_WEIRD_INTS))
    if kind == 1:
        return helper.make_attribute(name, [rng.choice(_WEIRD_INTS) for _ in range(rng.randrange(1, 6))])
    if kind == 2:
        return helper.make_attribute(name, rng.choice([0.0, -1.0, 1e30, float("inf"), float("nan"), 0.5]))
    if kind == 3:
        return helper.make_attribute(name, rng.choice(["", "nearest", "linear", "a...b...,c->", "ij,jk->ik",
                                                        "\xff\xfe", "bidirectional", "x" * 300]))
    if kind == 4:
        return helper.make_attribute(name, [float(rng.choice(_WEIRD_INTS)) for _ in range(rng.randrange(1, 5))])
    if kind == 5:
        import onnx
        t = onnx.TensorProto(name="t", data_type=rng.choice([1, 7, 6, 9, 0, 99, 8]),
                             dims=[rng.choice([0, 1, 2, 2**20, -1])])
        if rng.random() < 0.5:
            t.raw_data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 17)))
        if rng.random() < 0.2:
            t.data_location = 1
            t.external_data.add(key="location", value=rng.choice(["leak.bin", "/etc/passwd", "../x", "a/../../b"]))
        return helper.make_attribute(name, t)
    if kind == 6:
        return helper.make_attribute(name, [rng.choice(["a", "b"]) for _ in range(2)])
    if kind == 7:
        sub = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "sub", [],
                                [helper.make_tensor_value_info("o", 1, None)])
        return helper.make_attribute(name, sub)
    return helper.make_attribute(name, rng.randrange(-3, 5))


_ATTR_NAMES = ["kernel_shape", "strides", "pads", "dilations", "group", "axis", "axes", "perm", "equation", "mode",
               "hidden_size", "direction", "keepdims", "to", "value", "then_branch", "else_branch", "body",
               "num_heads", "q_num_heads", "kv_num_heads", "split", "starts", "ends", "scales", "blocksize",
               "layout", "transA", "transB", "num_outputs", "start", "end", "k"]


def _onnx_mutation(rng: random.Random) -> bytes:
    import onnx

    m = onnx.load_model_from_string(rng.choice(_seed_models()))
    g = m.graph
    for _ in range(rng.randint(1, 4)):
        try:
            _mutate_once(rng, m, g)
        except (IndexError, ValueError, TypeError):  # a mutation that does not apply to this model
            pass
    return m.SerializeToString()


def _mutate_once(rng: random.Random, m: Any, g: Any) -> None:
    import onnx
    from onnx import TensorProto

    if True:
        op = rng.randrange(16)
        nodes = list(g.node)
        n = rng.choice(nodes)
        if op == 0:  # cycle
            a, b = rng.choice(nodes), rng.choice(nodes)
            if b.output and a.input:
                a.input[rng.randrange(len(a.input))] = b.output[0]
        elif op == 1:  # dangling input
            n.input.append(rng.choice(["nowhere", "", "x"]))
        elif op == 2:  # missing / weird input shape
            d = g.input[0].type.tensor_type.shape.dim
            if d:
                k = rng.randrange(len(d))
                if rng.random() < 0.5:
                    d[k].dim_param = "N"
                else:
                    d[k].dim_value = rng.choice([0, 2**40, 2**20, 1, 3])
            else:
                g.input[0].type.tensor_type.ClearField("shape")
        elif op == 3:  # initializer dims
            if g.initializer:
                t = rng.choice(list(g.initializer))
                t.dims[:] = [rng.choice([0, 1, 2, 2**40, 3, 2**31]) for _ in range(rng.randrange(0, 5))]
        elif op == 4:  # wrong attribute types
            name = rng.choice([a.name for a in n.attribute] or _ATTR_NAMES)
            keep = [a for a in n.attribute if a.name != name]
            del n.attribute[:]
            n.attribute.extend(keep + [_rand_attr(rng, onnx.helper, name)])
        elif op == 5:  # unknown domain / op
            if rng.random() < 0.5:
                n.domain = rng.choice(["com.acme", "com.microsoft", "ai.onnx.ml", "\x00"])
            else:
                n.op_type = rng.choice(_OPS_POOL + ["Nope", "", "Conv\xff"])
        elif op == 6:  # data_type / raw_data mismatch
            if g.initializer:
                t = rng.choice(list(g.initializer))
                if rng.random() < 0.5:
                    t.data_type = rng.choice([0, 8, 16, 99, 7, 2])
                else:
                    t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data) + 1)] if t.raw_data else b"\x01\x02\x03"
        elif op == 7:  # external data pointing outside
            if g.initializer:
                t = rng.choice(list(g.initializer))
                t.ClearField("raw_data")
                t.data_location = TensorProto.EXTERNAL
                del t.external_data[:]
                t.external_data.add(key="location", value=rng.choice(
                    ["leak.bin", "/etc/passwd", "../../etc/passwd", "sub/../../x", "C:\\x", "", "a\x00b", "/dev/zero"]))
                if rng.random() < 0.5:
                    t.external_data.add(key="offset", value=rng.choice(["0", "-5", "x", str(2**62)]))
        elif op == 8:  # huge constants
            big = rng.choice([2**26, 2**30, 2**40, 2**20])
            kind = rng.randrange(3)
            if kind == 0:
                nodes.insert(0, onnx.helper.make_node("ConstantOfShape", ["bigshape"], ["bigc"]))
                g.initializer.append(onnx.numpy_helper.from_array(np.array([big, 4], np.int64), "bigshape"))
                nodes.append(onnx.helper.make_node("Add", [nodes[-1].output[0], "bigc"], ["y2"]))
            elif kind == 1:
                g.initializer.extend([onnx.numpy_helper.from_array(np.array(v, np.int64), k)
                                      for k, v in (("r0", 0), ("r1", big), ("r2", 1))])
                nodes.insert(0, onnx.helper.make_node("Range", ["r0", "r1", "r2"], ["rg"]))
                nodes.append(onnx.helper.make_node("Cast", ["rg"], ["y2"], to=1))
            else:
                g.initializer.append(onnx.numpy_helper.from_array(np.array([big], np.int64), "es"))
                nodes.append(onnx.helper.make_node("Expand", [nodes[-1].output[0], "es"], ["y2"]))
            del g.node[:]
            g.node.extend(nodes)
            g.output[0].name = "y2"
        elif op == 9:  # nested sub-graphs
            inner = g
            for _ in range(rng.randint(1, 30)):
                sub = onnx.helper.make_graph([onnx.helper.make_node("Identity", ["x"], ["o"])], "s", [],
                                             [onnx.helper.make_tensor_value_info("o", 1, None)])
                inner.node.append(onnx.helper.make_node("If", ["x"], [f"if{rng.randrange(99)}"], then_branch=sub,
                                                        else_branch=sub))
                inner = sub
        elif op == 10:  # delete a node / an initializer
            if len(nodes) > 1:
                g.node.remove(n)
            elif g.initializer:
                g.initializer.remove(rng.choice(list(g.initializer)))
        elif op == 11:  # duplicate outputs
            if len(nodes) > 1:
                rng.choice(nodes).output[0] = rng.choice(nodes).output[0]
        elif op == 12:  # opset
            m.opset_import[0].version = rng.choice([1, 6, 7, 11, 13, 18, 21, 22, 23, 30, 0, -1, 2**40])
        elif op == 13:  # Einsum / EyeLike / Clip hostile nodes (native-crash shapes of the audit)
            extra = rng.choice([
                onnx.helper.make_node("Einsum", [nodes[-1].output[0]], ["y2"], equation=rng.choice(
                    ["a...b...,c->", "...,...->...", "ab->", "a" * 60 + "->", "ij,jk", "", "->", "...a"])),
                onnx.helper.make_node("EyeLike", [nodes[-1].output[0]], ["y2"], k=rng.choice(_WEIRD_INTS)),
                onnx.helper.make_node("Clip", [nodes[-1].output[0], "x", "x"], ["y2"]),
                onnx.helper.make_node("RotaryEmbedding", [nodes[-1].output[0], "x", "x", "x"], ["y2"]),
                onnx.helper.make_node("GRU", [nodes[-1].output[0], "x", "x"], ["y2"], hidden_size=rng.choice(_WEIRD_INTS)),
            ])
            g.node.append(extra)
            g.output[0].name = "y2"
        elif op == 14:  # remove the graph output / inputs
            if rng.random() < 0.5:
                del g.output[:]
            else:
                del g.input[:]
        else:  # shuffle node order
            rng.shuffle(nodes)
            del g.node[:]
            g.node.extend(nodes)


def _random_graph(rng: random.Random) -> bytes:
    import onnx
    from onnx import TensorProto, helper

    rank = rng.choice([2, 3, 4, 4, 4])
    x = [rng.choice([1, 1, 2, 3, 4, 8]) for _ in range(rank)]
    vals = ["x"]
    nodes, inits = [], []
    for i in range(rng.randint(1, 12)):
        op = rng.choice(_OPS_POOL)
        k = rng.randint(1, 3)
        ins = [rng.choice(vals) for _ in range(k)]
        if rng.random() < 0.4:
            name = f"c{i}"
            shape = [rng.choice([1, 2, 3, 4]) for _ in range(rng.randrange(0, 5))]
            if rng.random() < 0.5:
                inits.append(onnx.numpy_helper.from_array(np.asarray(
                    [rng.choice([-1, 0, 1, 2, 3, 2**40]) for _ in range(int(np.prod(shape)) or 1)][: int(np.prod(shape))],
                    dtype=np.int64).reshape(shape), name))
            else:
                inits.append(onnx.numpy_helper.from_array(np.random.default_rng(i).standard_normal(shape)
                                                          .astype(np.float32), name))
            ins.append(name)
        attrs = [_rand_attr(rng, helper, rng.choice(_ATTR_NAMES)) for _ in range(rng.randrange(0, 3))]
        seen, uniq = set(), []
        for a in attrs:
            if a.name not in seen:
                seen.add(a.name)
                uniq.append(a)
        node = helper.make_node(op, ins, [f"v{i}"])
        node.attribute.extend(uniq)
        nodes.append(node)
        vals.append(f"v{i}")
    g = helper.make_graph(nodes, "rand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)],
                          [helper.make_tensor_value_info(vals[-1], TensorProto.FLOAT, None)], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", rng.choice([13, 17, 18, 21, 23]))]) \
        .SerializeToString()


def _big_graph(rng: random.Random) -> bytes:
    from onnx import TensorProto, helper

    n = rng.choice([2000, 10000, 30000])
    nodes = [helper.make_node("Relu", [f"t{i}" if i else "x"], [f"t{i + 1}"]) for i in range(n)]
    if rng.random() < 0.5:
        nodes.reverse()
    g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info(f"t{n}", TensorProto.FLOAT, None)])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


_CELL = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
_CELL_ALPHABET = "|+~0123456789abcdefghijklmnopqrstuvwxyz_ \n\t\x00²٣é"


def _cell_string(rng: random.Random) -> str:
    s = list(_CELL)
    if rng.random() < 0.02:
        return "|" * rng.randint(1, 100_000)
    for _ in range(rng.randint(1, 5)):
        p = rng.randrange(len(s) + 1)
        r = rng.random()
        if r < 0.3 and s:
            s[min(p, len(s) - 1)] = rng.choice(_CELL_ALPHABET)
        elif r < 0.6:
            s.insert(p, rng.choice(_CELL_ALPHABET))
        elif s:
            del s[min(p, len(s) - 1)]
    return "".join(s)


def _graph_json(rng: random.Random) -> str:
    base = {"ir_version": 1, "name": "g", "kind": "network", "inputs": {"x": [1, 3, 8, 8]},
            "meta": {"source": "onnx", "batch_size": 1},
            "nodes": [{"name": "c", "op_type": "Conv", "attrs": {"kernel_shape": [3, 3], "group": 1},
                       "input_shapes": [[1, 3, 8, 8]], "output_shapes": [[1, 8, 8, 8]], "flops": 3000, "params": 216,
                       "memory_bytes": 3000},
                      {"name": "r", "op_type": "Relu", "attrs": {}, "input_shapes": [[1, 8, 8, 8]],
                       "output_shapes": [[1, 8, 8, 8]], "flops": 512, "params": 0, "memory_bytes": 2048}],
            "edges": [[0, 1]]}
    weird: list[Any] = [None, "x", -1, 0, 2**300, 1.5, float("inf"), [], {}, [1, "a"], True, [[1, 2]], 2**62, -2**63]
    for _ in range(rng.randint(1, 4)):
        r = rng.randrange(8)
        if r == 0:
            base[rng.choice(list(base))] = rng.choice(weird)
        elif r == 1:
            node = rng.choice(base["nodes"]) if isinstance(base.get("nodes"), list) and base["nodes"] else {}
            if isinstance(node, dict) and node:
                node[rng.choice(list(node))] = rng.choice(weird)
        elif r == 2:
            base.pop(rng.choice(list(base)), None)
        elif r == 3 and isinstance(base.get("meta"), dict):
            base["meta"][rng.choice(["batch_size", "flops", "x"])] = rng.choice(weird)
        elif r == 4 and isinstance(base.get("edges"), list):
            base["edges"].append(rng.choice([[1, 0], [0, 0], [0, 5], [0], "e", [0, 1]]))
        elif r == 5 and isinstance(base.get("nodes"), list) and base["nodes"] and isinstance(base["nodes"][0], dict):
            base["nodes"][0]["attrs"] = rng.choice([[1, 2], {"group": float("inf")}, {"kernel_shape": [2**62] * 3},
                                                    {"group": 0}, {"k": [[[[[1]]]]]}, "x"])
        elif r == 6:
            n = rng.choice(BIG_JSON_NODES)
            base["nodes"] = [{"name": f"n{i}", "op_type": "Relu", "output_shapes": [[1, 8]]} for i in range(n)]
            base["edges"] = [[i + 1, i] for i in range(n - 1)]
        else:
            text = json.dumps(base)
            k = rng.randrange(len(text))
            return text[:k] + rng.choice(["", "]", "{", "NaN", "Infinity", "\x00", "\"", "9" * 5000]) + text[k + 1:]
    try:
        return json.dumps(base)
    except (ValueError, TypeError):
        return "{}"


def make_input(family: str, seed: int, index: int) -> Any:
    """The input number ``index`` of ``family`` for ``seed`` (deterministic)."""
    rng = random.Random(f"{family}:{seed}:{index}")
    if family == "random_bytes":
        n = rng.choice([0, 1, 2, 8, 64, 1024, 65536])
        return bytes(rng.randrange(256) for _ in range(min(n, 4096))) + (b"\x08" * max(0, n - 4096))
    if family in ("truncation", "bitflip"):
        return _mutate_bytes(rng, rng.choice(_seed_models()), family)
    if family == "onnx_mutation":
        return _onnx_mutation(rng)
    if family == "random_graph":
        return _random_graph(rng)
    if family == "big_graph":
        return _big_graph(rng)
    if family == "cell_string":
        return _cell_string(rng)
    if family == "graph_json":
        return _graph_json(rng)
    if family == "api_options":
        return _api_options(rng)
    if family == "predict":
        sub = rng.choice(["onnx_mutation", "random_graph", "cell_string", "truncation"])
        return (sub, make_input(sub, seed, index))
    if family == "cli":
        return _cli_args(rng)
    raise KeyError(family)


def _api_options(rng: random.Random) -> dict[str, Any]:
    source = rng.choice([rng.choice(_seed_models()), "x" * rng.choice([10, 300, 5000, 100_000]), "/dev/zero",
                         "/proc/self/mem", "missing.onnx", "a.json", 5, None, 1.5, [1, 2], "|x|", b"", "/", "\x00.onnx"])
    kw = {}
    if rng.random() < 0.7:
        kw["input_shapes"] = rng.choice([5, "1,3", {"x": "a,b"}, {"x": [1, -3]}, {"x": [2**62]}, {"nope": [1]},
                                         {"x": []}, {"x": [1.5]}, {"x": [float("inf")]}, [1, 2], {"x": "1x3x16x16"},
                                         {"x": [1] * 100}, {5: [1]}, {"x": None}])
    if rng.random() < 0.3:
        kw["name"] = rng.choice([5, "", "n" * 10000, None, b"x"])
    return {"source": source, "kw": kw}


def _cli_args(rng: random.Random) -> list[str]:
    cmd = rng.choice([["inspect"], ["predict"], ["predict-cell"]])
    model = rng.choice(["MODEL", "missing.onnx", "x" * 5000, "/dev/null", "|bad|", ""])
    args = cmd + [model]
    for _ in range(rng.randint(0, 3)):
        flag = rng.choice(["--input-shape", "--batch", "--platform", "--set", "--top", "--format"])
        val = rng.choice(["input=1,3,?,?", "x=1,3", "=", "-1", "0", "1e308", "nope", "a:b=c", "archcast:readout=max",
                          "99999999999999999999", "", "json", "\x01"])
        args += [flag, val]
    return args


# ---------------------------------------------------------------------------- running one input
def _layer_of(tb: traceback.StackSummary) -> tuple[str, str]:
    """(where: file:line of the innermost archcast frame, layer: 'mine' | 'upper' | 'external')."""
    frames = [f for f in tb if "/archcast/" in f.filename]
    if not frames:
        return (f"{Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else "?"), "external"
    f = frames[-1]
    rel = f.filename[f.filename.index("/archcast/") + 1:]
    layer = "mine" if any(rel.startswith(p) for p in MY_LAYERS) else "upper"
    return f"{rel}:{f.lineno}", layer


def _call(family: str, value: Any) -> Any:
    from archcast.frontends import load_graph
    from archcast.graph import NetGraph

    if family in ("random_bytes", "truncation", "bitflip", "onnx_mutation", "random_graph", "big_graph"):
        g = load_graph(value)
        return _tokenize(g)
    if family == "cell_string":
        return load_graph(value)
    if family == "graph_json":
        g = NetGraph.from_json(value).validate()
        if g.kind == "network":
            _tokenize(g)
        return g
    if family == "api_options":
        return load_graph(value["source"], **value["kw"])
    if family == "predict":
        import archcast

        sub, inner = value
        return archcast.predict(inner)
    raise KeyError(family)


def _tokenize(g: Any) -> Any:
    from archcast.tokenizer import get_tokenizer

    if g.kind == "network":
        return get_tokenizer("archcast-v1").encode(g)
    return g


def run_one(family: str, seed: int, index: int) -> dict[str, Any]:
    """Feed input ``(family, seed, index)`` to archcast; ``{"outcome": ok|clean|uncaught, ...}``."""
    from archcast.errors import ArchcastError

    value = make_input(family, seed, index)
    if family == "cli":
        return _run_cli(value)
    try:
        _call(family, value)
        return {"outcome": "ok"}
    except ArchcastError as e:
        msg = str(e)
        return {"outcome": "clean", "multiline": "\n" in msg}
    except MemoryError:
        return {"outcome": "memory", "signature": "MemoryError"}
    except RecursionError as e:
        where, layer = _layer_of(traceback.extract_tb(e.__traceback__))
        return {"outcome": "uncaught", "signature": f"RecursionError @ {where}", "layer": layer}
    except Exception as e:  # noqa: BLE001 - classifying is the point
        where, layer = _layer_of(traceback.extract_tb(e.__traceback__))
        return {"outcome": "uncaught", "signature": f"{type(e).__name__} @ {where}: {str(e)[:100]}", "layer": layer}


def _run_cli(args: list[str]) -> dict[str, Any]:
    import subprocess
    import sys

    _TMP.mkdir(parents=True, exist_ok=True)
    model = _TMP / "m.onnx"
    if not model.exists():
        model.write_bytes(_seed_models()[0])
    args = [str(model) if a == "MODEL" else a for a in args]
    exe = Path(sys.executable).with_name("archcast")
    try:
        p = subprocess.run([str(exe), *args], capture_output=True, timeout=45, cwd=str(_TMP))
    except subprocess.TimeoutExpired:
        return {"outcome": "hang", "signature": "cli timeout: " + " ".join(a[:20] for a in args), "layer": "upper"}
    err = p.stderr.decode("utf-8", "replace").strip().splitlines()
    if p.returncode < 0:
        return {"outcome": "crash", "signature": f"cli signal {-p.returncode}: {' '.join(a[:20] for a in args)}",
                "layer": "upper"}
    if p.returncode == 0:
        return {"outcome": "ok"}
    bad = len(err) > 3 or any("Traceback" in line for line in err) or any("internal error" in line for line in err)
    if bad:
        return {"outcome": "uncaught", "signature": f"cli: {(err[-1] if err else '')[:100]}", "layer": "upper",
                "lines": len(err)}
    return {"outcome": "clean"}


def run_batch(family: str, seed: int, start: int, count: int, on_result: Callable[[int, dict], None]) -> None:
    for i in range(start, start + count):
        on_result(i, run_one(family, seed, i))


__all__ = ["FAMILIES", "make_input", "run_batch", "run_one"]
