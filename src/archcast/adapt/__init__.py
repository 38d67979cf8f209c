"""A latency predictor for a new platform from a few measurements (:mod:`archcast.adapt.run`).

The budget defaults live here, not in ``run``, so that the command line builds its parser without
importing the adaptation machinery (NumPy, data splits).
"""

MIN_BUDGET = 5
DEFAULT_BUDGET = 50
DEFAULT_POOL_PER_FAMILY = 10  # 20 built-in families -> 200 candidates for a budget of 50
DEFAULT_START_SEED = 100_000  # far from the seeds data sets are usually sampled from (0, 1, ...)

__all__ = ["DEFAULT_BUDGET", "DEFAULT_POOL_PER_FAMILY", "DEFAULT_START_SEED", "MIN_BUDGET"]
