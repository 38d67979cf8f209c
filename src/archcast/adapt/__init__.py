"""A latency predictor for a new platform from a few measurements: the network-level
``archcast`` ensemble fine-tuned (:mod:`archcast.adapt.run`) or the kernel-level ``kernels``
predictor rescaled (:mod:`archcast.adapt.kernels_run`, the default where the base has one).

The budget defaults live here, not in ``run``, so that the command line builds its parser without
importing the adaptation machinery (NumPy, data splits).
"""

MIN_BUDGET = 5
DEFAULT_BUDGET = 50
DEFAULT_KERNEL_BUDGET = 20  # the kernels predictor (archcast bench adapt-kernels: 20 models ~ 1.2x the all-data MAPE)
PREDICTORS = ("auto", "archcast", "kernels")  # auto: kernels when the base platform has a kernels checkpoint
DEFAULT_POOL_PER_FAMILY = 10  # 20 built-in families -> 200 candidates for a budget of 50
DEFAULT_START_SEED = 100_000  # far from the seeds data sets are usually sampled from (0, 1, ...)

__all__ = ["DEFAULT_BUDGET", "DEFAULT_KERNEL_BUDGET", "DEFAULT_POOL_PER_FAMILY", "DEFAULT_START_SEED", "MIN_BUDGET",
           "PREDICTORS"]
