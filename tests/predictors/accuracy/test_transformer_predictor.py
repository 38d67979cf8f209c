"""Transformer predictors on tiny NB201 data: fit, checkpoint round trip and refusal, features."""

import json

import numpy as np
import pytest

from archcast.errors import CheckpointError, InvalidInputError, NotFittedError
from archcast.frontends.cells import nb201_graph, nb201_string
from archcast.predictors import create_predictor
from archcast.predictors.accuracy.transformer import TransformerPredictor
from archcast.tokenizer.cell_features import cell_tokens, live_nodes, relabel
from archcast.tokenizer.cell import cell_arrays

TINY = dict(epochs=3, width=16, n_blocks=2, ffn_groups=4, fc_hidden=16, batch_size=16, ensemble=2)


def _cells(n, seed=0):
    rng = np.random.default_rng(seed)
    tuples = [tuple(int(v) for v in rng.integers(0, 5, 6)) for _ in range(n)]
    graphs = [nb201_graph(t) for t in tuples]
    # synthetic accuracy: convs on live edges help
    y = np.array([60 + 4 * nb201_string(t).count("nor_conv_3x3") + rng.normal(0, 0.5) for t in tuples])
    return graphs, y


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    g, y = _cells(120)
    p = create_predictor("archcast", seed=0, **TINY).fit(g[:80], y[:80], g[80:100], y[80:100])
    return p, g, y


def test_fit_predict_and_ensemble_shape(fitted):
    p, g, _ = fitted
    members = p.predict_members(g[100:])
    assert members.shape == (2, 20)
    assert np.isfinite(members).all()
    np.testing.assert_allclose(p.predict(g[100:]), members.mean(0))


def test_checkpoint_round_trip(fitted, tmp_path):
    p, g, _ = fitted
    p.save(tmp_path / "ck")
    q = TransformerPredictor.load(tmp_path / "ck")
    np.testing.assert_allclose(p.predict(g[100:]), q.predict(g[100:]), rtol=1e-6)
    assert (tmp_path / "ck" / "model.safetensors").exists()


def test_checkpoint_from_other_tokenizer_version_is_refused(fitted, tmp_path):
    p, _, _ = fitted
    p.save(tmp_path / "ck")
    cfg_path = tmp_path / "ck" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["tokenizer_version"] = "cell-0"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="tokenizer_version='cell-0'.*'cell-1'"):
        TransformerPredictor.load(tmp_path / "ck")


def test_missing_or_corrupt_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="config.json.* does not exist"):
        TransformerPredictor.load(tmp_path)


def test_unfitted_and_bad_hparams():
    g, y = _cells(10)
    with pytest.raises(NotFittedError):
        create_predictor("narformer-v2").predict(g)
    with pytest.raises(InvalidInputError, match="unknown hyper-parameter"):
        create_predictor("archcast", widht=3).fit(g[:6], y[:6], g[6:], y[6:])


def test_narformer_v2_preset_trains(fitted):
    g, y = _cells(60, seed=1)
    p = create_predictor("narformer-v2", seed=1, epochs=2, width=16, ffn_groups=4, fc_hidden=16,
                      n_blocks=2, batch_size=8).fit(g[:40], y[:40], g[40:50], y[40:50])
    out = p.predict(g[50:])
    assert out.shape == (10,) and np.all(out > 0)


def test_live_nodes_and_relabel():
    # only edge 3<-0 is a conv, everything else none: live = input, that op, output
    g = nb201_graph("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    arr = cell_arrays([g])
    live = live_nodes(arr)[0]
    assert live.tolist() == [True, False, False, False, True, False, False, True]
    tw = relabel(arr, np.random.default_rng(0))
    assert sorted(tw.op_ids[0].tolist()) == sorted(arr.op_ids[0].tolist())
    assert tw.op_ids[0, 0] == arr.op_ids[0, 0] and tw.op_ids[0, -1] == arr.op_ids[0, -1]
    assert tw.adj.sum() == arr.adj.sum()
    assert np.all(np.triu(tw.adj[0], 1) == tw.adj[0])  # still topologically listed
    for style in ("reference", "archcast"):
        tok = cell_tokens(arr, style)
        assert tok.shape[:2] == (1, 8) and np.isfinite(tok).all()
