"""bench published: the one-scale calibration protocols and the breakdown agreement, on synthetic numbers."""

from __future__ import annotations

import numpy as np
import pytest

from archcast.bench.published import kernel_agreement_of, score
from archcast.errors import InvalidInputError

NAMES = [f"n{i}" for i in range(8)]


def test_a_predictor_off_by_one_scale_is_exact_after_either_calibration():
    y = {n: 2.0 ** i for i, n in enumerate(NAMES)}
    preds = {"kernels": {n: {"ms": y[n] / 3.0, "low_ms": y[n] / 3.3, "high_ms": y[n] / 2.9} for n in NAMES},
             "flops-linear": {n: {"ms": y[n] * (1.5 if i % 2 else 0.75)} for i, n in enumerate(NAMES)}}
    res = score(NAMES, y, preds, canary_factor=3.0, k=3, draws=50)
    k = res["kernels"]
    assert k["uncalibrated"]["mape"] == pytest.approx(2 / 3) and k["uncalibrated"]["coverage_90"] == 0.0
    assert k["canaries"]["mape"] == pytest.approx(0.0, abs=1e-12) and k["canaries"]["coverage_90"] == 1.0
    assert k["3_nets"]["mape"] == pytest.approx(0.0, abs=1e-12) and k["3_nets"]["kendall_tau"] == pytest.approx(1.0)
    f = res["flops-linear"]
    assert "coverage_90" not in f["canaries"] and f["3_nets"]["mape"] > 0.2  # a shape error no scale removes
    lo, hi = f["3_nets"]["mape_p10_p90"]
    assert lo <= f["3_nets"]["mape"] <= hi
    with pytest.raises(InvalidInputError, match="fewer than 3"):
        score(NAMES, y, preds, None, k=6)


def test_kernel_agreement_against_the_profiled_run():
    pred = {"a": {"kernel_names": ["c1", "c2", "c3"], "kernels_us": [10.0, 20.0, 5.0]}}
    measured = {"a": {"c1": 10.0, "c2": 25.0}}  # c3 was not profiled: not a label
    out = kernel_agreement_of(["a"], measured, pred)
    assert out["per_net"]["a"]["kernel_mape"] == pytest.approx(0.1)
    assert out["per_net"]["a"]["matched"] == pytest.approx(2 / 3)
    assert out["median_kernel_mape"] == pytest.approx(0.1) and out["top5_overlap"] == 1.0
    assert kernel_agreement_of(["a"], {}, pred) == {"per_net": {}}
