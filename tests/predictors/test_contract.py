"""One contract, every registered predictor of both tasks (README, "Where things live"): the
constructor only stores, ``predict`` refuses an unfitted predictor, ``fit`` learns and returns
``self``, the same seed gives the same predictions, a bad knob is named in a one-line error, and
checkpoints round-trip where the predictor supports them."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau

from archcast.errors import InvalidInputError, NotFittedError, UnknownNameError
from archcast.predictors import TASKS, create_predictor, list_predictors
from tests.conftest import TINY_PREDICTORS, synthetic_kernel_times

ALL = sorted(TINY_PREDICTORS)


def test_the_tiny_table_covers_every_registered_predictor():
    registered = {(t, n) for t in TASKS for n in list_predictors(t)}
    assert registered == set(TINY_PREDICTORS)


def _kw(p, graphs) -> dict:
    """Predictors that read what runs (``RUNTIME_GRAPHS``) learn from kernel times too."""
    return {"kernel_times": synthetic_kernel_times(graphs)} if getattr(p, "RUNTIME_GRAPHS", False) else {}


def _data(task, zoo_latency, nb201_accuracy):
    if task == "latency":
        g, y = zoo_latency
        return (g[:9], y[:9]), (g[9:], y[9:]), (g, y)
    g, y = nb201_accuracy
    return (g[:200], y[:200]), (g[200:240], y[200:240]), (g[240:], y[240:])


@pytest.mark.parametrize("task,name", ALL)
def test_contract(task, name, zoo_latency, nb201_accuracy, torch_one_thread, tmp_path):
    (tg, ty), (vg, vy), (sg, sy) = _data(task, zoo_latency, nb201_accuracy)
    hp = TINY_PREDICTORS[(task, name)]
    p = create_predictor(name, task=task, seed=1, **hp)
    assert p.task == task and p.name == name and not p.is_fitted()
    with pytest.raises(NotFittedError):
        p.predict(sg)
    assert p.fit(tg, ty, vg, vy, **_kw(p, tg)) is p and p.is_fitted()
    out = p.predict(sg)
    assert out.shape == (len(sg),) and np.all(np.isfinite(out))
    if task == "latency":
        assert np.all(out > 0)
    again = create_predictor(name, task=task, seed=1, **hp).fit(tg, ty, vg, vy, **_kw(p, tg)).predict(sg)
    np.testing.assert_allclose(again, out, rtol=1e-5, atol=1e-6)
    if hasattr(p, "save") and hasattr(type(p), "load"):
        type(p).load(p.save(tmp_path / "ckpt"))
        np.testing.assert_allclose(type(p).load(tmp_path / "ckpt").predict(sg), out, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("task,name", ALL)
def test_bad_knob_is_named_at_fit_not_at_construction(task, name, zoo_latency, nb201_accuracy):
    (tg, ty), (vg, vy), _ = _data(task, zoo_latency, nb201_accuracy)
    p = create_predictor(name, task=task, widht=3)  # only stores
    with pytest.raises(InvalidInputError, match="widht") as e:
        p.fit(tg, ty, vg, vy, **_kw(p, tg))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("task,name", [("accuracy", "archcast"), ("latency", "archcast"), ("accuracy", "mlp")])
def test_bad_knob_value_is_named(task, name, zoo_latency, nb201_accuracy):
    (tg, ty), (vg, vy), _ = _data(task, zoo_latency, nb201_accuracy)
    with pytest.raises(InvalidInputError, match="epochs"):
        create_predictor(name, task=task, epochs=-1).fit(tg, ty, vg, vy)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="valid: .*flops-linear"):
        create_predictor("no-such", task="latency")
    with pytest.raises(InvalidInputError, match="task"):
        create_predictor("archcast", task="speed")


@pytest.mark.slow
def test_default_accuracy_predictor_learns(nb201_accuracy, torch_one_thread):
    """The shipped recipe (only shortened) ranks held-out cells of a learnable synthetic target
    far better than chance, and better than its own untrained start."""
    g, y = nb201_accuracy
    p = create_predictor("archcast", task="accuracy", seed=0, epochs=40, ensemble=1)
    p.fit(g[:200], y[:200], g[200:240], y[200:240])
    tau = kendalltau(y[240:], p.predict(g[240:])).statistic
    assert tau > 0.6, tau
    assert p.history_[0]["best_score"] > p.history_[0]["scores"][0][1] - 1e-9


def test_fine_tuning_is_part_of_the_contract(zoo_latency, torch_one_thread):
    g, y = zoo_latency
    hp = TINY_PREDICTORS[("latency", "archcast")]
    base = create_predictor("archcast", task="latency", seed=0, **hp).fit(g[:9], y[:9], g[9:], y[9:])
    slower = 2.0 * y
    tuned = create_predictor("archcast", task="latency", seed=0, **hp).fit(g[:9], slower[:9], g[9:], slower[9:],
                                                                           init_from=base)
    # the shifted start alone already matches a uniformly 2x slower platform closely
    start = tuned.predict_members(g, members=tuned.start_members_).mean(0)
    np.testing.assert_allclose(np.median(start / base.predict(g)), 2.0, rtol=0.05)
    with pytest.raises(InvalidInputError, match="cannot fine-tune"):
        create_predictor("gbdt", task="latency").fit(g[:9], y[:9], g[9:], y[9:], init_from=base)
    with pytest.raises(InvalidInputError, match="fitted"):
        create_predictor("archcast", task="latency", **hp).fit(
            g[:9], y[:9], g[9:], y[9:], init_from=create_predictor("archcast", task="latency"))
