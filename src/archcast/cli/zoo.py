"""``archcast zoo list|sample``: the model-family generators."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from archcast.cli.options import help_of, positive


def cmd_zoo_list(args: argparse.Namespace) -> int:
    from archcast.zoo import FAMILIES, load_builtin_families

    load_builtin_families()
    names = FAMILIES.names()
    if args.format == "json":
        print(json.dumps([{"name": n, "input_kind": FAMILIES.get(n).input_kind, "version": FAMILIES.get(n).version,
                           "description": FAMILIES.get(n).description} for n in names], indent=2))
        return 0
    if not names:
        print("no model families are registered")
        return 0
    width = max(len(n) for n in names)
    for n in names:
        fam = FAMILIES.get(n)
        print(f"{n:<{width}}  {fam.input_kind:<6}  v{fam.version:<3}  {fam.description}")
    return 0

def cmd_zoo_sample(args: argparse.Namespace) -> int:
    from archcast.zoo import get_family

    positive("--count", args.count)
    positive("--batch-size", args.batch_size)
    fam = get_family(args.family)  # unknown names: the error lists the valid families
    samples = [fam.sample(seed) for seed in range(args.start_seed, args.start_seed + args.count)]
    if args.out is None:
        for s in samples:
            print(json.dumps({"family": s.family, "seed": s.seed, "generator_version": s.generator_version,
                              "config": s.config}, sort_keys=True))
        return 0
    from archcast._version import __version__
    from archcast.frontends.onnx import load_onnx
    from archcast.zoo import export_sample

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for s in samples:
        data = export_sample(s, batch_size=args.batch_size, weight_free=True)
        path = out / f"{s.family}-{s.seed}.onnx"
        path.write_bytes(data)
        g = load_onnx(data, name=s.key)
        entries.append({"seed": s.seed, "file": path.name, "config": s.config, "fingerprint": g.fingerprint(),
                        "n_nodes": len(g), "flops": g.flops, "params": g.params, "memory_bytes": g.memory_bytes})
    manifest = {"archcast_version": __version__, "family": fam.name, "generator_version": fam.version,
                "input_kind": fam.input_kind, "batch_size": args.batch_size, "weight_free": True, "samples": entries}
    mpath = out / "manifest.json"
    mpath.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    print(f"wrote {len(entries)} weight-free ONNX files and {mpath}")
    return 0


def register(subparsers: Any) -> None:
    z = subparsers.add_parser("zoo", help="model-family generators: list families, sample architectures")
    zsub = z.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")
    s = zsub.add_parser("list", help="list the model families")
    s.add_argument("--format", choices=("text", "json"), default="text")
    s.set_defaults(func=cmd_zoo_list)
    s = zsub.add_parser("sample", help="sample architectures; with --out, write weight-free ONNX + manifest.json")
    s.add_argument("--family", required=True, help="a family name (archcast zoo list)")
    s.add_argument("--count", type=int, required=True, help="number of samples (seeds start-seed..)")
    s.add_argument("--start-seed", type=int, default=0)
    s.add_argument("--batch-size", type=int, default=1)
    s.add_argument("--out", help="directory for the ONNX files and manifest.json (default: print the configs)")
    s.set_defaults(func=cmd_zoo_sample)
    z.set_defaults(func=help_of(z))

