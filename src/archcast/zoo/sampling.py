"""How families draw configs: seeded-rng helpers and the two sampling bases.

* :class:`ReferenceFamily` re-samples a reference network (ResNet-18, MobileNetV2...) the way the
  nn-Meter dataset generator does: per-stage multipliers on a grid, a log-uniform global width.
  ``build`` checks the config for the keys it needs (``required_keys``).
* :class:`CostTargetedFamily` draws a *target cost* log-uniformly in ``macs_range``
  (multiply-adds, estimated analytically by :meth:`~CostTargetedFamily.estimate_macs`) and then
  draws configs until one lands within a factor ``TOLERANCE`` of it (the closest one after
  ``MAX_TRIES``). Variants spread evenly over the family's range of cost (hence CPU latency)
  instead of piling up at the median, and the cap bounds the largest variant.

Every value comes from the family's seeded ``rng`` and is a plain Python value (JSON-safe), so a
seed always gives the same config. :func:`pick` and :func:`choice` both draw one option but
consume the rng differently (``rng.choice`` vs ``rng.integers``); each family keeps the one it was
sampled with, because changing it would change every stored config.

Nothing here imports torch.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any, ClassVar, Sequence

import numpy as np

from archcast.errors import InvalidInputError
from archcast.zoo.base import Family, ZooSample

TOLERANCE = 1.25  # accept a draw whose MACs are within this factor of the target
MAX_TRIES = 400


# ---------------------------------------------------------------------------- rng helpers
def pick(rng: np.random.Generator, options: Sequence[Any], p: Sequence[float] | None = None) -> Any:
    """One element of ``options`` (optionally weighted by ``p``), drawn with ``rng.choice``."""
    return options[int(rng.choice(len(options), p=p))]


def choice(rng: np.random.Generator, options: Sequence[Any]) -> Any:
    """One element of ``options``, uniform, drawn with ``rng.integers``; numpy scalars become
    Python values."""
    value = options[int(rng.integers(len(options)))]
    return value.item() if isinstance(value, np.generic) else value


def randint(rng: np.random.Generator, lo: int, hi: int) -> int:
    """An int uniform in ``[lo, hi]`` (both included)."""
    return int(rng.integers(lo, hi + 1))


def grid(rng: np.random.Generator, lo: float, hi: float, step: float = 0.1) -> float:
    """A value uniform on the grid ``lo, lo+step, ..., hi`` (nn-Meter's ``start/end/step``)."""
    n = int(round((hi - lo) / step))
    return round(lo + step * int(rng.integers(0, n + 1)), 4)


def log_grid(rng: np.random.Generator, lo: float, hi: float, step: float = 0.05) -> float:
    """A log-uniform value in ``[lo, hi]`` rounded to the ``step`` grid: every octave of a global
    width or depth multiplier is equally likely, so latency spreads evenly on a log scale instead of
    piling up in the middle of the range."""
    v = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    return round(min(hi, max(lo, round(v / step) * step)), 4)


def conv_macs(res: int, cin: int, cout: int, k: int = 1, groups: int = 1) -> int:
    """Multiply-adds of a ``k×k`` convolution with ``res×res`` outputs."""
    return res * res * (cin // groups) * cout * k * k


def divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to a multiple of ``divisor``, at least ``divisor`` and never below 90 % of
    ``value`` (the MobileNet rule, so hardware-friendly channel counts come out)."""
    out = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return out + divisor if out < 0.9 * value else out


# ---------------------------------------------------------------------------- sampling bases
def _sample_v2(fam: Any, seed: int, version: str | None) -> ZooSample:
    """``fam``'s config of ``seed`` at ``version``: the version-1 draws, then (version 2) the
    family's ``widen`` draws from the same rng, so version 1 still regenerates every measured seed."""
    fam._check_version(version)
    v = str(version or fam.version)
    rng = fam.rng(seed)
    config = fam.sample_config(rng)
    if v == "2":
        fam.widen(rng, config)
    return ZooSample(fam.name, int(seed), config, v)


class ReferenceFamily(Family):
    """An image family re-sampled from a reference network; ``build`` calls :meth:`check` first.

    A family that sets ``image_sizes`` (and ``version = "2"``) is at generator version 2: its version-1 config (224x224
    inputs) plus ``image_size`` drawn uniformly from ``image_sizes`` *after* every version-1 draw,
    so ``sample(seed, "1")`` still gives the version-1 config of every seed measured before. The
    resolution widens the family's cost range: FLOPs grow with its square (96 -> 320: 11x)."""

    input_kind = "image"
    version = "1"
    required_keys: ClassVar[tuple[str, ...]] = ()
    image_sizes: ClassVar[tuple[int, ...]] = ()

    def versions(self) -> tuple[str, ...]:
        return ("1", "2") if self.image_sizes else ("1",)

    def sample(self, seed: int, version: str | None = None) -> ZooSample:
        return _sample_v2(self, seed, version)

    def widen(self, rng: np.random.Generator, config: dict[str, Any]) -> None:
        """Version 2's draws, after every version-1 draw: the input size."""
        config["image_size"] = int(self.image_sizes[int(rng.integers(len(self.image_sizes)))])

    def check(self, config: dict[str, Any]) -> None:
        """Raise ``InvalidInputError`` naming the keys of ``required_keys`` that ``config`` lacks."""
        missing = [k for k in self.required_keys if k not in config]
        if missing:
            raise InvalidInputError(
                f"{self.name} config lacks {', '.join(map(repr, missing))}; got keys {sorted(config)}"
            )


class CostTargetedFamily(Family):
    """A family sampled by cost-targeted rejection (see the module docstring).

    Subclasses implement :meth:`draw` (one unconstrained config), :meth:`estimate_macs` and
    :meth:`tiny_config` (the smallest meaningful config, for fast tests), and set ``macs_range``.
    """

    macs_range: ClassVar[tuple[float, float]] = (1e7, 1e9)
    # families whose biggest variants would export slowly also cap the parameter count
    max_params: ClassVar[float | None] = None
    # Generator version 2 of a family whose space is too small for the data set (swin_large: 148
    # distinct graphs in 239 seeds): the version-1 config with these keys re-drawn, each uniform
    # over its options, in sorted key order, *after* every version-1 draw, so ``sample(seed, "1")``
    # still gives every measured config. Options may only lower the cost (the caps still hold).
    widened: ClassVar[dict[str, tuple[Any, ...]]] = {}

    def versions(self) -> tuple[str, ...]:
        return ("1", "2") if self.widened else ("1",)

    def sample(self, seed: int, version: str | None = None) -> ZooSample:
        return _sample_v2(self, seed, version)

    def widen(self, rng: np.random.Generator, config: dict[str, Any]) -> None:
        """Version 2's draws, after every version-1 draw: the ``widened`` keys."""
        for key in sorted(self.widened):
            config[key] = choice(rng, self.widened[key])

    @abstractmethod
    def draw(self, rng: np.random.Generator) -> dict[str, Any]:
        """One config drawn from the family's space, ignoring cost."""

    @classmethod
    @abstractmethod
    def estimate_macs(cls, config: dict[str, Any]) -> float:
        """Multiply-adds of one forward pass at batch 1 (main terms only: matmuls, convs)."""

    @classmethod
    @abstractmethod
    def tiny_config(cls) -> dict[str, Any]:
        """A very small valid config: builds and exports in well under a second."""

    @classmethod
    def estimate_params(cls, config: dict[str, Any]) -> float:
        """Parameters (main terms); only needed when ``max_params`` is set."""
        raise NotImplementedError(f"{cls.__name__} sets max_params but does not estimate parameters")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        lo, hi = (math.log(v) for v in self.macs_range)
        target = rng.uniform(lo, hi)
        best, best_gap = None, math.inf
        for _ in range(MAX_TRIES):
            config = self.draw(rng)
            macs = self.estimate_macs(config)
            if macs > self.macs_range[1] or (self.max_params and self.estimate_params(config) > self.max_params):
                continue  # never exceed the caps, even as a fallback
            gap = abs(math.log(macs) - target)
            if gap < best_gap:
                best, best_gap = config, gap
            if gap <= math.log(TOLERANCE):
                break
        if best is None:
            raise RuntimeError(f"family {self.name!r}: no draw under macs_range {self.macs_range} "
                               f"in {MAX_TRIES} tries; the space or the cap is wrong")
        return best


class CappedCostFamily(CostTargetedFamily):
    """A cost-targeted family capped in MACs and in parameters, whose one analytic pass
    :meth:`cost` gives both (so the two estimates cannot drift apart)."""

    @classmethod
    @abstractmethod
    def cost(cls, config: dict[str, Any]) -> tuple[float, float]:
        """``(MACs, parameters)`` of one forward pass at batch 1 (main terms)."""

    @classmethod
    def estimate_macs(cls, config: dict[str, Any]) -> float:
        return cls.cost(config)[0]

    @classmethod
    def estimate_params(cls, config: dict[str, Any]) -> float:
        return cls.cost(config)[1]


__all__ = ["CappedCostFamily", "CostTargetedFamily", "MAX_TRIES", "ReferenceFamily", "TOLERANCE", "choice",
           "conv_macs", "divisible", "grid", "log_grid", "pick", "randint"]
