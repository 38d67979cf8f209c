import numpy as np
import pytest
from scipy import stats

from archcast import metrics
from archcast.errors import InvalidInputError


def test_values_by_hand():
    y = np.array([1.0, 2.0, 4.0, 8.0])
    p = np.array([1.15, 1.95, 4.0, 6.0])
    assert metrics.mape(y, p) == pytest.approx((0.15 + 0.025 + 0 + 0.25) / 4)
    assert metrics.acc_within(y, p, 0.05) == pytest.approx(0.5)
    assert metrics.acc_within(y, p, 0.20) == pytest.approx(0.75)
    assert metrics.kendall_tau(y, p) == pytest.approx(1.0)
    assert metrics.kendall_tau(y, p[::-1]) == pytest.approx(-1.0)


def test_tau_b_with_ties_matches_scipy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 50).astype(float)
    p = y + rng.normal(0, 1, 50)
    assert metrics.kendall_tau(y, p) == pytest.approx(stats.kendalltau(y, p, variant="b").statistic)


def test_length_mismatch():
    with pytest.raises(InvalidInputError, match="3 values but y_pred has 2"):
        metrics.mape([1, 2, 3], [1, 2])


def test_kernel_agreement_by_hand():
    true = np.array([100.0, 50.0, 10.0, 5.0, 1.0, 0.5, np.nan, 0.0])
    pred = np.array([110.0, 45.0, 0.4, 5.0, 1.0, 2.0, 7.0, 3.0])  # the last two have no label
    mape_, wape, top5 = metrics.kernel_agreement(pred, true)
    ape = [0.1, 0.1, 0.96, 0.0, 0.0, 3.0]
    assert mape_ == pytest.approx(np.mean(ape))
    assert wape == pytest.approx((10 + 5 + 9.6 + 0 + 0 + 1.5) / 166.5)
    assert top5 == pytest.approx(4 / 5)  # the 10 us kernel predicted below the 0.5 us one
    assert metrics.kernel_agreement(pred, np.full(8, np.nan)) is None
    s = metrics.kernel_agreement_summary([0.1, 0.3, 0.2], [0.1, 0.2, 0.3], [1.0, 0.6, 0.8])
    assert s == pytest.approx({"median_kernel_mape": 0.2, "mean_wape": 0.2, "top5_overlap": 0.8,
                               "top5_at_least_4": 2 / 3})
