"""The kernel-level latency predictors (``kernels``, ``kernels-prior``) and the kernel table they read:
NCHWc work counted right, kernel supervision recovering a known law, prior monotone in work, the
profiling overhead taken off, the correction's blend chosen on validation, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from archcast.errors import InvalidInputError
from archcast.graph import NetGraph, Node
from archcast.predictors import create_predictor
from archcast.tokenizer.kernel_table import KERNEL_COLUMNS, conv_window, kernel_class, kernel_flops, kernel_row

COL = {c: i for i, c in enumerate(KERNEL_COLUMNS)}


def nchwc_conv(cin=64, cout=64, hw=14, k=3, group=1, kernel_shape=True, fused_sum=False, act=True, name="c"):
    attrs = {"group": group, "strides": (1, 1)}
    if kernel_shape:
        attrs["kernel_shape"] = (k, k)
    if act:
        attrs["activation"] = "Relu"
    params = cout * (cin // group) * k * k + cout
    ins = [(1, cin, hw, hw)] + ([(1, cout, hw, hw)] if fused_sum else [])
    return Node(name, "com.microsoft.nchwc.Conv", attrs, ins, [(1, cout, hw, hw)], flops=cout * hw * hw, params=params)


def test_nchwc_conv_work_is_counted_from_shapes_not_the_stored_element_count():
    n = nchwc_conv()
    macs = 64 * 14 * 14 * 64 * 9
    assert kernel_flops(n) == 2 * macs + 2 * 64 * 14 * 14  # + bias + fused Relu
    assert kernel_row(n)[COL["window"]] == 9 and kernel_class(n.op_type) == "conv"


def test_folded_batchnorm_conv_without_kernel_shape_reads_its_window_off_the_parameters():
    # onnxruntime folds BatchNormalization into a 1x1 depthwise NCHWc conv with no kernel_shape; a
    # fused residual input must not be read as a weight (it once gave a 14x14 "window")
    n = nchwc_conv(cin=256, cout=256, k=1, group=256, kernel_shape=False, fused_sum=True, act=False)
    assert conv_window(n) == 1
    assert kernel_flops(n) == 2 * 256 * 14 * 14 + 2 * 256 * 14 * 14  # 1 MAC per output, + bias + sum
    assert kernel_row(n)[COL["depthwise"]] == 1.0


def _kernel_graphs(n: int, seed: int = 0):
    """Runtime-like graphs: convs and Gemm-free elementwise kernels of random sizes, with kernel times
    that follow a known law, and network latencies = kernel sum - 2 µs per kernel."""
    rng = np.random.default_rng(seed)
    graphs, times, y = [], [], []
    for i in range(n):
        nodes = []
        for j in range(int(rng.integers(3, 9))):
            c, hw = int(rng.choice([16, 32, 64, 128])), int(rng.choice([7, 14, 28]))
            if rng.random() < 0.6:
                nodes.append(nchwc_conv(cin=c, cout=c, hw=hw, name=f"k{j}"))
            else:
                nodes.append(Node(f"k{j}", "Add", {}, [(1, c, hw, hw)] * 2, [(1, c, hw, hw)], flops=c * hw * hw))
        g = NetGraph(nodes=nodes, edges=[(a, a + 1) for a in range(len(nodes) - 1)], inputs={"x": (1, 16, 28, 28)},
                     name=f"g{i}")
        law = {}
        for nd in nodes:
            row = kernel_row(nd)
            mb = (row[COL["bytes_in"]] + row[COL["bytes_out"]]) / 1e6
            law[nd.name] = (4.0 + 10.0 * row[COL["flops"]] / 1e6) if nd.op_type != "Add" else 3.0 + 50.0 * mb
        graphs.append(g)
        times.append(law)
        y.append((sum(law.values()) - 2.0 * len(nodes)) / 1000.0)
    return graphs, times, np.array(y)


def test_kernel_supervision_recovers_a_known_per_kernel_law():
    g, t, y = _kernel_graphs(80)
    p = create_predictor("kernels-prior", task="latency", min_kernels=5).fit(g[:60], y[:60], g[60:70], y[60:70], kernel_times=t[:60])
    np.testing.assert_allclose(p.key_coef_["com.microsoft.nchwc.Conv"][[0, 1]], [4.0, 10.0], rtol=1e-3)
    assert p.delta_ms_ * 1000 == pytest.approx(2.0, rel=1e-3)
    np.testing.assert_allclose(p.predict(g[70:]), y[70:], rtol=1e-3)
    for got, law in zip(p.kernel_us(g[70:]), t[70:]):
        np.testing.assert_allclose(got, list(law.values()), rtol=1e-3)


def test_prior_is_monotone_in_work():
    g, t, y = _kernel_graphs(40, seed=1)
    p = create_predictor("kernels-prior", task="latency", min_kernels=5).fit(g[:30], y[:30], g[30:], y[30:], kernel_times=t[:30])
    small, big = nchwc_conv(cin=32, cout=32, hw=14), nchwc_conv(cin=64, cout=64, hw=28)
    wide = NetGraph(nodes=[small, big], edges=[(0, 1)], inputs={"x": (1, 32, 14, 14)}, name="m")
    ks = p.kernel_us([wide])[0]
    assert ks[1] > ks[0]
    for coef in [*p.key_coef_.values(), *p.op_coef_.values(), *p.class_coef_.values(), p.global_coef_]:
        assert np.all(coef >= 0)


def test_correction_blend_is_chosen_on_validation_and_never_loses_to_the_prior_there():
    g, t, y = _kernel_graphs(120, seed=2)
    # a context effect the prior cannot express: Add kernels after a big conv run 40 % slower
    noisy = [dict(d) for d in t]
    for d, gg in zip(noisy, g):
        for a, b in zip(gg.nodes, gg.nodes[1:]):
            if b.op_type == "Add" and a.op_type != "Add":
                d[b.name] *= 1.4
    y2 = np.array([(sum(d.values()) - 2.0 * len(gg.nodes)) / 1000 for d, gg in zip(noisy, g)])
    p = create_predictor("kernels", task="latency", n_estimators=60, min_child_samples=5, min_kernels=5).fit(
        g[:80], y2[:80], g[80:100], y2[80:100], kernel_times=noisy[:80])
    errs = p.val_mape_by_blend_
    assert p.blend_ in errs and errs[p.blend_] == min(errs.values()) and errs[p.blend_] <= errs[0.0]


def test_kernel_predictors_need_kernel_times_and_say_so():
    g, t, y = _kernel_graphs(12)
    with pytest.raises(InvalidInputError, match="kernel_times"):
        create_predictor("kernels", task="latency").fit(g[:8], y[:8], g[8:], y[8:])
    with pytest.raises(InvalidInputError, match="4 entries for 8 graphs"):
        create_predictor("kernels", task="latency").fit(g[:8], y[:8], g[8:], y[8:], kernel_times=t[:4])
    with pytest.raises(InvalidInputError, match="labelled kernels"):
        create_predictor("kernels-prior", task="latency").fit(g[:8], y[:8], g[8:], y[8:], kernel_times=[{}] * 8)
    with pytest.raises(InvalidInputError, match="blend_grid"):
        create_predictor("kernels", task="latency", blend_grid="0,2").fit(g[:8], y[:8], g[8:], y[8:], kernel_times=t[:8])


def test_numpy_trees_match_lightgbm_with_missing_values_and_categories():
    import lightgbm as lgb

    from archcast.predictors.latency.trees import NumpyTrees, trees_from_booster

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 4))
    x[:, 3] = rng.integers(0, 12, 3000)
    y = np.sin(x[:, 0]) + (x[:, 3] % 3) - 0.5 * np.nan_to_num(x[:, 1])
    x[rng.random(x.shape) < 0.08] = np.nan
    x[rng.random(x.shape) < 0.05] = 0.0
    b = lgb.LGBMRegressor(n_estimators=40, num_leaves=15, min_child_samples=5, verbose=-1).fit(
        x, y, categorical_feature=[3]).booster_
    test = rng.normal(size=(2000, 4))
    test[:, 3] = rng.integers(-2, 15, 2000)  # negative and unseen categories go right
    test[rng.random(test.shape) < 0.1] = np.nan
    test[rng.random(test.shape) < 0.05] = 0.0
    np.testing.assert_allclose(NumpyTrees(trees_from_booster(b)).predict(test), b.predict(test), rtol=1e-12, atol=1e-12)


def test_a_saved_kernel_predictor_loads_without_lightgbm(tmp_path):
    import subprocess
    import sys

    g, t, y = _kernel_graphs(60, seed=3)
    p = create_predictor("kernels", task="latency", n_estimators=20, min_child_samples=5, min_kernels=5).fit(
        g[:40], y[:40], g[40:50], y[40:50], kernel_times=t[:40])
    p.save(tmp_path / "k")
    code = ("import sys; from archcast.predictors.latency.kernels import KernelLatency; "
            f"KernelLatency.load({str(tmp_path / 'k')!r}); print('lightgbm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
