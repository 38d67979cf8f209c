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
