"""The kernel floor of the noise figures: a measurement's kernels against the labels, scored as the
latency bench scores a predictor's."""

from __future__ import annotations

import pytest

from archcast.collect.noise_floor import _kernel_agreement
from archcast.data.latency_dataset import KernelTime


class Kernels:
    def __init__(self, rows):
        self.rows = rows

    def iter_kernels(self):
        return iter(self.rows)


def model(fp, pass_id, times, op="Conv"):
    return [KernelTime(fp, pass_id, f"k{i}", op, t * 1.1, t) for i, t in enumerate(times)]


def test_between_passes_and_retest_score_like_the_bench():
    base = [100.0, 80.0, 60.0, 40.0, 20.0, 10.0]
    rows = (model("a", "c/p1", base) + model("a", "c/p2", [t * 1.1 for t in base])  # every kernel 10 % slower
            + model("a", "c/retest1", [t * 1.2 for t in base])
            + model("b", "c/p1", base) + model("b", "c/p2", base[:5] + [200.0]))  # the smallest one swaps in
    out = _kernel_agreement(Kernels(rows), [("c/p1", "c/p2")], ["c/p1", "c/p2"], "c/retest1")
    bp = out["between_passes"]
    assert bp["n_models"] == 2
    assert bp["median_kernel_mape"] == pytest.approx((0.1 + 19 / 6) / 2)  # median of two models
    assert bp["top5_overlap"] == pytest.approx((1.0 + 0.8) / 2) and bp["top5_at_least_4"] == 1.0
    # the retest against the label (the median of the two label passes: 1.05 x base)
    assert out["retest"]["n_models"] == 1
    assert out["retest"]["median_kernel_mape"] == pytest.approx(1.2 / 1.05 - 1)
    assert _kernel_agreement(Kernels([]), [("c/p1", "c/p2")], ["c/p1"], None) == {}
