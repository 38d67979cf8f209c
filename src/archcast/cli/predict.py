"""``archcast predict MODEL`` (latency on a platform, with interval and breakdown) and
``archcast predict-cell`` (accuracy of NAS-Bench-201 cells).

``register(subparsers)`` adds the command to the main parser. The import path stays light (the
whole command takes about as long as importing torch): no onnxruntime, LightGBM or
torch-geometric; matplotlib only with ``--plot``; SQLAlchemy only when a store exists (then the
graph's measured latency and kernel profile are read in one opening of it). User
errors raise :class:`~archcast.errors.ArchcastError` subclasses (the main CLI prints one line).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from archcast.cli.options import parse_input_shapes
from archcast.errors import InvalidInputError


def cmd_predict(args: argparse.Namespace) -> int:
    from archcast.service.checkpoints import resolve_predictor_dir
    from archcast.service.predict import DEFAULT_STORE, kernel_route, predict_graph, read_model
    from archcast.service.report import format_prediction, kernel_comparison, plot_breakdown

    if args.top < 1:
        raise InvalidInputError(f"--top must be >= 1; got {args.top}")
    shapes = parse_input_shapes(args.input_shape)
    kdir = None if shapes else kernel_route(args.model, args.predictor, args.platform, network=args.network)
    directory = kdir or resolve_predictor_dir(args.platform, args.predictor)  # a missing predictor fails first
    store = None if args.no_store else (args.db or DEFAULT_STORE)
    if args.db and not args.no_store:  # a missing or damaged --db fails now, not after the prediction
        from archcast.store import Store

        store = Store(args.db, create=False)
    graph, source = read_model(args.model, shapes)  # an ONNX file is read once; its graph is cached
    if kdir is not None:
        from archcast.service.kernel_predict import predict_kernels

        pred = predict_kernels(source, graph, kdir, platform=args.platform, store=store,
                               calibration=not args.no_calibration)
    else:
        pred = predict_graph(graph, directory, platform=args.platform, store=store)
    pred.graph["source"] = args.model
    plot = str(plot_breakdown(pred, args.plot, top=args.top)) if args.plot else None
    if args.format == "json":
        out = pred.to_dict()
        if pred.kernel_profile is not None:  # the store's measured kernels against the top predicted ones
            out["kernel_comparison"] = kernel_comparison(pred, args.top)
        if plot:
            out["plot"] = plot
        print(json.dumps(out, indent=2))
    else:
        print(format_prediction(pred, top=args.top))
        if plot:
            print(f"wrote {plot}")
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    from archcast.profile.platform import Platform
    from archcast.service.calibration import calibrate, calibration_path, load_calibration
    from archcast.service.checkpoints import kernel_predictor_dir
    from archcast.service.kernel_predict import is_kernel_checkpoint, load_kernel_predictor

    kdir = args.predictor or kernel_predictor_dir(args.platform)
    if kdir is None or not is_kernel_checkpoint(kdir):
        raise InvalidInputError(f"{kdir or 'platform ' + (args.platform or 'ort-cpu-1t')} has no kernel-level "
                                "predictor; only those record reference canary times")
    cfg = load_kernel_predictor(kdir).checkpoint_config_
    platform = Platform.from_dict(cfg["platform"])
    path = calibration_path(platform.platform_id)
    if args.clear:
        existed = path.is_file()
        path.unlink(missing_ok=True)
        print(f"{'removed' if existed else 'no calibration at'} {path}")
        return 0
    if args.show:
        cal = load_calibration(platform.platform_id)
        print(json.dumps(cal, indent=1) if cal else f"no calibration for {platform.name} ({path})")
        return 0
    if args.rounds < 1:
        raise InvalidInputError(f"--rounds must be >= 1; got {args.rounds}")
    cal = calibrate(platform, kdir, rounds=args.rounds, progress=args.format == "text", other_cpu=args.other_cpu)
    if args.format == "json":
        print(json.dumps(cal, indent=1))
        return 0
    per = ", ".join(f"{k} x{v:.2f}" for k, v in cal["per_canary"].items())
    print(f"this machine runs x{cal['factor']:.3f} the time of the machine of {cal.get('reference') or 'the labels'} "
          f"({per}); archcast predict now scales by it (wrote {cal['path']}, {cal['wall_s']:.0f} s)")
    return 0


def cmd_predict_cell(args: argparse.Namespace) -> int:
    from archcast.frontends.cells import nb201_graph

    graphs = [nb201_graph(a) for a in args.arch]
    from archcast.service.checkpoints import load_cell_predictor

    pred = load_cell_predictor(args.checkpoint)
    members = pred.predict_members(graphs)
    mean, std = members.mean(0), members.std(0)
    rows = [{"arch": g.meta.get("arch", a), "accuracy_pct": float(m), "ensemble_std_pct": float(s)}
            for a, g, m, s in zip(args.arch, graphs, mean, std)]
    if args.format == "json":
        print(json.dumps({"predictor": pred.name, "space": pred.space_, "predictions": rows}, indent=2))
    else:
        for r in rows:
            print(f"{r['arch']}  predicted CIFAR-10 accuracy {r['accuracy_pct']:.2f} % "
                  f"(± {r['ensemble_std_pct']:.2f} across {members.shape[0]} ensemble members)")
    return 0


def register(subparsers: Any) -> None:
    """Add ``predict`` and ``predict-cell``."""
    s = subparsers.add_parser(
        "predict", help="predict a network's latency on a platform (interval, per-operator breakdown)",
        description="Predict the latency of an ONNX model with the platform's latency predictor; when the "
                    "measurement store holds this very graph on that platform, show the measured number too.")
    s.add_argument("model", help="an .onnx file (or a graph .json)")
    s.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix a dynamic input's shape (repeatable)")
    s.add_argument("--platform", help="platform name (default: ort-cpu-1t; archcast lists those with a predictor "
                                      "when the name has none)")
    s.add_argument("--predictor", metavar="DIR", help="latency checkpoint directory (default: the platform's)")
    s.add_argument("--network", action="store_true",
                   help="use the network-level predictor even when the platform has a kernel-level one")
    s.add_argument("--top", type=int, default=10, help="operators and op types to list (default 10)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.add_argument("--plot", metavar="PNG", help="write a bar chart of the slowest operators (beside the measured "
                                                 "kernel times when the store holds this graph's kernel profile)")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--db", help="measurement store to look the graph up in (default: $ARCHCAST_DB, else the "
                                "per-user store, skipped when absent)")
    g.add_argument("--no-store", action="store_true", help="do not look the graph up in a measurement store")
    s.add_argument("--no-calibration", action="store_true",
                   help="times for the machine the labels came from, not this machine's (archcast calibrate)")
    s.set_defaults(func=cmd_predict)

    s = subparsers.add_parser(
        "calibrate", help="measure this machine's speed with the canaries; predict then scales to it",
        description="Five fixed small networks (the canaries, ~10 s) against the times the predictor's labels "
                    "recorded for them: machines of one platform differ (the VMs here by up to 1.8x).")
    s.add_argument("--platform", help="platform name (default: ort-cpu-1t)")
    s.add_argument("--predictor", metavar="DIR", help="kernel-level checkpoint directory (default: the platform's)")
    s.add_argument("--rounds", type=int, default=3, help="checkpoints of all five canaries (default 3)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    a = s.add_mutually_exclusive_group()
    a.add_argument("--show", action="store_true", help="print the saved calibration")
    a.add_argument("--clear", action="store_true", help="remove the saved calibration")
    a.add_argument("--other-cpu", action="store_true",
                   help="calibrate although this CPU model is not the predictor's (another platform): one factor "
                        "from the canaries, with a warning on every prediction")
    s.set_defaults(func=cmd_calibrate)

    s = subparsers.add_parser("predict-cell", help="predict CIFAR-10 accuracy of NAS-Bench-201 cells")
    s.add_argument("arch", nargs="+", help="NB201 arch string, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'")
    s.add_argument("--checkpoint", help="checkpoint directory (default: the shipped NB201 predictor)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_predict_cell)
