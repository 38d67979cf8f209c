"""A fast cold start: building the parser imports no command's machinery, and ``archcast predict``
of an ONNX file imports neither torch nor onnx (nor ml_dtypes), with a cold or a warm cache."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "archcast" / "examples" / "resnet18.onnx"
HEAVY = ("torch", "onnx", "ml_dtypes", "onnxruntime", "lightgbm", "scipy", "sklearn", "matplotlib", "sqlalchemy",
         "archcast.adapt.run", "archcast.data", "archcast.frontends.onnx", "archcast.profile.runtime_graph")


def _imported_after(code: str, env: dict[str, str] | None = None) -> list[str]:
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300,
                       env={**os.environ, **(env or {})})
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.subprocess
def test_building_the_parser_imports_nothing_heavy():
    assert _imported_after("from archcast.cli import build_parser; build_parser()") == []


def test_adapt_defaults_are_those_of_adapt_run():
    from archcast import adapt
    from archcast.adapt import run
    from archcast.cli import build_parser

    from archcast.adapt import kernels_run

    args = build_parser().parse_args(["adapt", "--platform", "ort-cpu-2t"])
    # no --budget: each predictor's own default (cli/adapt.py), 50 network-level, 20 kernel-level
    assert (args.budget, args.pool_per_family, args.start_seed) == (
        None, adapt.DEFAULT_POOL_PER_FAMILY, adapt.DEFAULT_START_SEED)
    assert inspect.signature(kernels_run.adapt_kernels).parameters["budget"].default == adapt.DEFAULT_KERNEL_BUDGET
    params = inspect.signature(run.adapt).parameters
    assert params["budget"].default == adapt.DEFAULT_BUDGET
    assert params["pool_per_family"].default == adapt.DEFAULT_POOL_PER_FAMILY
    assert params["start_seed"].default == adapt.DEFAULT_START_SEED
    assert run.MIN_BUDGET == adapt.MIN_BUDGET


@pytest.mark.subprocess
def test_predict_imports_neither_torch_nor_onnx_cold_or_warm(tmp_path):
    """Cold (empty cache): the runtime graph needs onnxruntime, nothing else heavy. Warm: the
    graph and the runtime graph come from the cache, and neither the frontend nor onnxruntime loads."""
    run = (f"from archcast.cli import main\n"
           f"assert main(['predict', {str(EXAMPLE)!r}, '--no-store', '--format', 'json']) == 0")
    env = {"ARCHCAST_CACHE": str(tmp_path / "cache")}
    assert _imported_after(run, env) == ["archcast.frontends.onnx", "archcast.profile.runtime_graph", "onnxruntime"]
    assert _imported_after(run, env) == []
