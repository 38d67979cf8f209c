"""The torch-free inference path: parity with the torch model, and the shipped checkpoint loads."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from archcast.predictors.latency.archcast import ArchcastLatency
from archcast.predictors.latency.runtime import LatencyRuntime
from archcast.service.checkpoints import shipped_dir
from tests.conftest import TINY_PREDICTORS


@pytest.fixture(scope="module")
def saved(zoo_latency, tmp_path_factory):
    g, y = zoo_latency
    pred = ArchcastLatency(seed=0, **{**TINY_PREDICTORS[("latency", "archcast")], "n_blocks": 2})
    pred.fit(g[:9], y[:9], g[9:], y[9:])
    return pred, pred.save(tmp_path_factory.mktemp("rt") / "ckpt")


def test_parity_with_the_torch_model(saved, zoo_latency):
    pred, d = saved
    g, _ = zoo_latency
    rt = LatencyRuntime.load(d)
    np.testing.assert_allclose(rt.predict_members(g), pred.predict_members(g), rtol=1e-5)
    order, rows = rt.breakdown(g[0])
    t_order, t_rows = pred.breakdown(g[0])
    assert order == t_order
    np.testing.assert_allclose(rows, t_rows, rtol=1e-5)
    np.testing.assert_allclose(rows.sum(1), rt.predict_members([g[0]])[:, 0], rtol=1e-9)
    np.testing.assert_allclose(rt.embeddings(g), pred.embeddings(g), rtol=1e-4, atol=1e-5)


def test_shipped_checkpoint_parity(zoo_latency):
    d = shipped_dir() / "latency-ort-cpu-1t"
    g, _ = zoo_latency
    np.testing.assert_allclose(LatencyRuntime.load(d).predict_members(g), ArchcastLatency.load(d).predict_members(g),
                               rtol=1e-5)


@pytest.mark.subprocess
def test_predict_never_imports_torch():
    code = ("import sys; from archcast.cli import main; rc = main(['predict', 'src/archcast/examples/resnet18.onnx', "
            "'--no-store', '--format', 'json']); print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "NO-TORCH"


def test_config_schema_names_every_latency_net_field():
    from dataclasses import fields

    from archcast.models.latency_net import LatencyNetConfig
    from archcast.predictors.latency.archcast import _NET_BOUNDS

    assert set(_NET_BOUNDS) == {f.name for f in fields(LatencyNetConfig)}
