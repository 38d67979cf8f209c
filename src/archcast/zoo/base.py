"""Model-family generators: sample an architecture variant from (family, seed), build it in plain
torch, export weight-free ONNX.

A family is a :class:`Family` subclass registered in :data:`FAMILIES`. Same family + seed ->
same config -> same graph fingerprint (the RNG is seeded from a stable hash of the family name and
the seed, never from Python's salted ``hash``).
"""

from __future__ import annotations

import importlib
import json
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from archcast.registry import Registry

INPUT_KINDS = ("image", "tokens", "graph")


@dataclass(frozen=True)
class ZooSample:
    """One sampled architecture: enough to rebuild its ONNX exactly.

    Attributes:
        family: registered family name.
        seed: the sampling seed.
        config: the generator config (JSON scalars/lists only), e.g. per-stage channels.
        generator_version: the family's ``version`` when sampled (a bump means configs changed).
    """

    family: str
    seed: int
    config: dict[str, Any] = field(hash=False)
    generator_version: str = "1"

    def config_json(self) -> str:
        return json.dumps(self.config, sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        return f"{self.family}/{self.seed}"


class Family(ABC):
    """A model family. Subclasses set ``name``, ``input_kind``, ``version`` and implement
    :meth:`sample_config` (draw a config from ``rng``) and :meth:`build` (config -> module and
    example inputs, batch 1 unless ``batch_size`` says otherwise)."""

    name: ClassVar[str] = ""
    input_kind: ClassVar[str] = "image"
    version: ClassVar[str] = "1"
    description: ClassVar[str] = ""

    @abstractmethod
    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        """A random but valid config (JSON scalars/lists)."""

    @abstractmethod
    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        """``(torch.nn.Module, example_inputs)`` for ``config``."""

    def rng(self, seed: int) -> np.random.Generator:
        """The family's random stream for ``seed`` (seeded by family name and seed)."""
        return np.random.default_rng([zlib.crc32(self.name.encode()), int(seed)])

    def versions(self) -> tuple[str, ...]:
        """Generator versions :meth:`sample` can reproduce (the current one last)."""
        return (str(self.version),)

    def sample(self, seed: int, version: str | None = None) -> ZooSample:
        """The config of ``seed`` as generator ``version`` (default: the current one) draws it."""
        self._check_version(version)
        return ZooSample(self.name, int(seed), self.sample_config(self.rng(seed)), str(self.version))

    def _check_version(self, version: str | None) -> None:
        if version is not None and str(version) not in self.versions():
            from archcast.errors import InvalidInputError

            raise InvalidInputError(f"family {self.name!r} cannot sample generator version {version!r}; it has "
                                    f"{', '.join(self.versions())}")


FAMILIES: Registry[type[Family]] = Registry("model family")

# one module per kind of network; importing one registers its families (and imports torch)
BUILTIN_MODULES = ("cnn", "mobile", "nb201", "convnext", "vision_transformer", "ssm", "norm_act_cnn", "graph_nets",
                   "grouped_cnn", "densenet", "ghostnet", "repvgg", "convmixer", "hybrid", "dense_prediction",
                   "recurrent", "text_transformer", "nfnet")


def load_builtin_families() -> None:
    """Import the built-in family modules (``archcast.zoo.<name>``) so they register (idempotent).
    A missing built-in module is an error, never a silently smaller zoo."""
    for mod in BUILTIN_MODULES:
        importlib.import_module(f"archcast.zoo.{mod}")


def get_family(name: str) -> Family:
    """An instance of the family registered as ``name`` (error lists valid families)."""
    load_builtin_families()
    return FAMILIES.get(name)()


def export_sample(sample: ZooSample, *, batch_size: int = 1, weight_free: bool = True) -> bytes:
    """ONNX bytes of ``sample`` (weights stripped unless ``weight_free=False``)."""
    import onnx
    import torch

    from archcast.frontends.onnx import strip_weights
    from archcast.frontends.torch import export_onnx_bytes

    from archcast._torch import torch_threads

    fam = get_family(sample.family)
    # one thread: export is 3-4x slower with two threads when the other core is busy
    with torch_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        module, inputs = fam.build(sample.config, batch_size=batch_size)
        data = export_onnx_bytes(module, inputs)
    if weight_free:
        data = strip_weights(onnx.load_from_string(data)).SerializeToString()
    return data
