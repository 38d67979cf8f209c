"""The ``archcast`` command line.

Every error a user can cause prints one line (``archcast: error: ...``) and exits non-zero; ``--debug``
shows the traceback instead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from archcast.errors import ArchcastError, InvalidInputError

DEFAULT_CELL_CHECKPOINT = "nb201-accuracy"


def _checkpoint_root() -> Path:
    return Path(__file__).resolve().parent / "checkpoints"


def parse_input_shapes(items: Sequence[str] | None) -> dict[str, tuple[int, ...]] | None:
    """``["input=1,3,224,224"]`` -> ``{"input": (1, 3, 224, 224)}`` with one-line errors."""
    if not items:
        return None
    out: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.partition("=")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not sep or not name or not shape or any(d <= 0 for d in shape):
            raise InvalidInputError(f"--input-shape {item!r} is not NAME=D1,D2,... with positive integers")
        out[name] = shape
    return out


# --------------------------------------------------------------------------- commands
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


def load_cell_predictor(checkpoint: str | None):
    from archcast.predictors import load_builtin_predictors
    from archcast.predictors.transformer import TransformerPredictor

    load_builtin_predictors()
    path = Path(checkpoint) if checkpoint else _checkpoint_root() / DEFAULT_CELL_CHECKPOINT
    if not path.is_dir():
        raise InvalidInputError(f"checkpoint directory {str(path)!r} does not exist")
    return TransformerPredictor.load(path)


def cmd_predict_cell(args: argparse.Namespace) -> int:
    from archcast.frontends.cells import nb201_graph

    graphs = [nb201_graph(a) for a in args.arch]
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


def cmd_train_cell(args: argparse.Namespace) -> int:
    """Train a cell predictor on a standard split and save a checkpoint (validation selection)."""
    from archcast import metrics
    from archcast.data import DATASETS
    from archcast.data.splits import random_split
    from archcast.predictors import get_predictor

    ds = DATASETS.get(args.dataset)()
    tr, va, te = random_split(len(ds), args.train_size, args.val_size, args.seed)
    pred = get_predictor(args.predictor, task="accuracy", seed=args.seed, progress=True)
    if not hasattr(pred, "save"):  # refuse before minutes of training, not after
        raise InvalidInputError(f"predictor {args.predictor!r} cannot be saved as a checkpoint")
    pred.fit([ds.graphs[i] for i in tr], ds.y[tr], [ds.graphs[i] for i in va], ds.y[va])
    p = pred.predict([ds.graphs[i] for i in te])
    m = metrics.all_metrics(ds.y[te], p)
    out = pred.save(args.out)
    info = {"dataset": args.dataset, "train_size": args.train_size, "val_size": args.val_size,
            "seed": args.seed, "test_cells": int(len(te)), "test_metrics": m}
    (Path(out) / "training.json").write_text(json.dumps(info, indent=2))
    print(f"saved {out}; test Kendall tau {m['kendall_tau']:.4f} on {len(te)} cells "
          f"(checkpoint chosen on {len(va)} validation cells)")
    return 0


def cmd_bench_accuracy(args: argparse.Namespace) -> int:
    from archcast.bench.accuracy import AccuracyBenchConfig, run_accuracy_bench, write_results

    if args.space == "nasbench-graph":
        datasets = [f"nasbench-graph:{d}" for d in (args.dataset or ["cora"])]
    else:
        if args.dataset:
            raise InvalidInputError("--dataset applies to --space nasbench-graph only")
        datasets = [args.space]
    from archcast.cli_latency import parse_set

    kw = parse_set(args.set)
    # One thread per process: the stable, fast setting for these small models on 2 cores.
    import torch

    torch.set_num_threads(args.threads)
    kw.setdefault("lgbm", {}).setdefault("n_jobs", args.threads)
    for ds in datasets:
        cfg = AccuracyBenchConfig(dataset=ds, train_sizes=args.train_size, train_fraction=args.train_frac,
                                  val_size=args.val_size, seeds=args.seeds, predictors=args.predictors,
                                  split=args.split, predictor_kw=kw)
        result = run_accuracy_bench(cfg, progress=not args.no_progress)
        stem = f"accuracy_{ds.replace(':', '_')}_{args.split}" + (f"_{args.tag}" if args.tag else "")
        paths = write_results(result, args.out, stem)
        from archcast.bench.accuracy import markdown

        print(markdown(result))
        print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def cmd_bench_speed(args: argparse.Namespace) -> int:
    import torch

    from archcast.bench.accuracy import environment
    from archcast.bench.speed import cell_speed_notes

    torch.set_num_threads(args.threads)
    numbers, notes = cell_speed_notes(args.checkpoint)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    env = environment()
    (out / "speed_nb201.json").write_text(json.dumps({"speed": numbers, "environment": env}, indent=2))
    text = "\n".join(notes + ["", f"Machine: {env['cpu']} ({env['cpu_count']} cores), torch threads "
                                   f"{env['torch_threads']}, {env['date_utc']}."]) + "\n"
    (out / "speed_nb201.md").write_text(text)
    print(text)
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="archcast", description="Predict a network's latency and accuracy from its graph.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action="store_true", help="print the version and exit")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("inspect", help="summarise an ONNX model (ops, FLOPs, params, unknown ops)")
    s.add_argument("model", help="an .onnx file (or graph .json / NB201 cell string)")
    s.add_argument("--input-shape", action="append", metavar="NAME=D1,D2,...",
                   help="fix a dynamic input's shape (repeatable)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_inspect)

    s = sub.add_parser("predict-cell", help="predict CIFAR-10 accuracy of NAS-Bench-201 cells")
    s.add_argument("arch", nargs="+", help="NB201 arch string, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'")
    s.add_argument("--checkpoint", help="checkpoint directory (default: the shipped NB201 predictor)")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_predict_cell)

    s = sub.add_parser("train-cell", help="train a cell accuracy predictor and save a checkpoint")
    s.add_argument("--dataset", default="nb201")
    s.add_argument("--predictor", default="archcast")
    s.add_argument("--train-size", type=int, default=1563)
    s.add_argument("--val-size", type=int, default=200)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="checkpoint directory to write")
    s.set_defaults(func=cmd_train_cell)

    b = sub.add_parser("bench", help="benchmarks (write JSON + Markdown + PNG)")
    bsub = b.add_subparsers(dest="bench", metavar="BENCH")
    s = bsub.add_parser("accuracy", help="accuracy prediction on a NAS space, all predictors side by side")
    s.add_argument("--space", choices=("nb201", "nasbench-graph"), default="nb201")
    s.add_argument("--dataset", nargs="+", help="NAS-Bench-Graph data set(s), e.g. cora pubmed")
    s.add_argument("--train-size", type=int, nargs="+", default=[781, 1563])
    s.add_argument("--train-frac", type=float, help="train on this fraction of the cells instead")
    s.add_argument("--val-size", type=int, default=200)
    s.add_argument("--seeds", type=int, default=5)
    s.add_argument("--predictors", nargs="+", help="subset of registered predictors (default: all)")
    s.add_argument("--split", choices=("random", "iso"), default="random")
    s.add_argument("--set", action="append", metavar="PREDICTOR:KEY=VALUE", help="override a hyper-parameter")
    s.add_argument("--tag", help="suffix for the result file names (e.g. to run train sizes in parallel)")
    s.add_argument("--threads", type=int, default=1, help="torch/LightGBM threads (default 1)")
    s.add_argument("--out", default="benchmarks/results")
    s.add_argument("--no-progress", action="store_true")
    s.set_defaults(func=cmd_bench_accuracy)
    s = bsub.add_parser("speed", help="cell prediction speed and batched-vs-loop narformer-v2 (NB201)")
    s.add_argument("--checkpoint", help="checkpoint directory (default: the shipped NB201 predictor)")
    s.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    s.add_argument("--out", default="benchmarks/results")
    s.set_defaults(func=cmd_bench_speed)
    from archcast import cli_latency

    cli_latency.register_bench(bsub)
    cli_latency.register_train(sub)
    b.set_defaults(func=lambda a: (b.print_help(), 2)[1])

    from archcast import cli_adapt, cli_data, cli_dataset, cli_predict

    cli_data.register(sub)
    cli_dataset.register(sub)
    cli_predict.register(sub)
    cli_adapt.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        import archcast

        print(archcast.__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ArchcastError as e:
        if args.debug:
            raise
        print(f"archcast: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("archcast: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line for users; --debug shows the traceback
        if args.debug:
            raise
        print(f"archcast: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
