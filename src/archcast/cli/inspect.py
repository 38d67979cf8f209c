"""``archcast inspect MODEL``: a network's operators, FLOPs, params and unknown ops."""

from __future__ import annotations

import argparse
import json
from typing import Any

from archcast.cli.options import parse_input_shapes


def cmd_inspect(args: argparse.Namespace) -> int:
    from archcast.frontends import load_graph
    from archcast.graph.summary import format_summary, unknown_ops

    g = load_graph(args.model, **({"input_shapes": parse_input_shapes(args.input_shape)} if args.input_shape else {}))
    if args.format == "json":
        s = g.summary()
        s["unknown_ops"] = unknown_ops(g)
        print(json.dumps(s, indent=2))
    else:
        print(format_summary(g))
    return 0


def register(sub: Any) -> None:
    s = sub.add_parser("inspect", help="summarise an ONNX model (ops, FLOPs, params, unknown ops)")
    s.add_argument("model", help="an .onnx file (or graph .json / NB201 cell string)")
    s.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix a dynamic input's shape (repeatable)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_inspect)
