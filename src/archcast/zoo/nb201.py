"""The NAS-Bench-201 network and its cell strings (``nb201`` family, 32x32 input, 10 classes)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from archcast.errors import InvalidInputError
from archcast.zoo.base import FAMILIES
from archcast.zoo.layers import head, image_input
from archcast.zoo.sampling import ReferenceFamily, pick, randint

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NB201_IMAGE_SIZE = 32
NB201_CLASSES = 10


class NB201Cell(nn.Module):
    """NAS-Bench-201 cell: node j = sum over i < j of op_(j,i)(node i); output = node 3.

    ``none`` edges are left out (they add zero); a node no live edge reaches is absent, and a
    cell whose output is absent returns ``x * 0`` as NAS-Bench-201's Zero op does.
    """

    def __init__(self, c: int, ops: list[list[str]]) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        for j, row in enumerate(ops, start=1):
            for i, op in enumerate(row):
                if op == "none":
                    continue
                if op == "skip_connect":
                    mod: nn.Module = nn.Identity()
                elif op == "avg_pool_3x3":
                    mod = nn.AvgPool2d(3, 1, 1, count_include_pad=False)
                else:  # nor_conv_kxk = ReLU -> Conv -> BN
                    k = 3 if op == "nor_conv_3x3" else 1
                    mod = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, k, 1, k // 2, bias=False), nn.BatchNorm2d(c))
                self.edges[f"{j}_{i}"] = mod

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x]
        for j in range(1, 4):
            terms = [self.edges[f"{j}_{i}"](nodes[i]) for i in range(j)
                     if f"{j}_{i}" in self.edges and nodes[i] is not None]
            total = None
            for t in terms:
                total = t if total is None else total + t
            nodes.append(total)
        return nodes[3] if nodes[3] is not None else x * 0.0


class NB201Reduction(nn.Module):
    """NAS-Bench-201's residual reduction block: ReLUConvBN(3x3, s2) -> ReLUConvBN(3x3) plus
    AvgPool(2, s2) -> Conv1x1 on the shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv_a = nn.Sequential(nn.ReLU(), nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout))
        self.conv_b = nn.Sequential(nn.ReLU(), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(cin, cout, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.shortcut(x)


def nb201_arch_str(ops: Sequence[Sequence[str]]) -> str:
    """The NAS-Bench-201 string of a cell: ``ops[j-1][i]`` is the op on edge i -> j (j = 1..3),
    e.g. ``|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...~0|...~1|...~2|``."""
    return "+".join("|" + "|".join(f"{op}~{i}" for i, op in enumerate(row)) + "|" for row in ops)


def nb201_parse_arch(arch: str) -> list[list[str]]:
    """Inverse of :func:`nb201_arch_str`; raises ``InvalidInputError`` on a malformed string."""
    rows = []
    for j, part in enumerate(arch.split("+"), start=1):
        items = [t for t in part.split("|") if t]
        row = []
        for i, item in enumerate(items):
            op, _, src = item.partition("~")
            if op not in NB201_OPS or src != str(i):
                raise InvalidInputError(
                    f"bad NB201 arch {arch!r}: edge {item!r} into node {j}; expected '<op>~{i}' with op in {NB201_OPS}"
                )
            row.append(op)
        if len(row) != j:
            raise InvalidInputError(f"bad NB201 arch {arch!r}: node {j} has {len(row)} edges, expected {j}")
        rows.append(row)
    if len(rows) != 3:
        raise InvalidInputError(f"bad NB201 arch {arch!r}: {len(rows)} nodes, expected 3")
    return rows


@FAMILIES.register("nb201")
class NB201Family(ReferenceFamily):
    """The NAS-Bench-201 network: stem conv3x3 (C channels) -> N cells -> reduction -> N cells (2C)
    -> reduction -> N cells (4C) -> BN-ReLU -> global pool -> linear (10). Samples C in {8,16,32,64},
    N in 1..5 and the cell (six edges, ops uniform over the five NB201 ops); input 32x32."""

    name = "nb201"
    description = "NAS-Bench-201 cell network (sampled cell, C in 8..64, N in 1..5 cells per stage), 32x32 input"
    required_keys = ("arch", "C", "N")

    def sample_config(self, rng: np.random.Generator) -> dict[str, Any]:
        ops = [[pick(rng, NB201_OPS) for _ in range(j)] for j in range(1, 4)]
        return {"arch": nb201_arch_str(ops), "C": pick(rng, [8, 16, 32, 64]), "N": randint(rng, 1, 5),
                "num_classes": NB201_CLASSES}

    def build(self, config: dict[str, Any], batch_size: int = 1) -> tuple[Any, tuple[Any, ...]]:
        self.check(config)
        ops, c, n = nb201_parse_arch(config["arch"]), config["C"], config["N"]
        layers = [nn.Conv2d(3, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c)]
        for stage in range(3):
            if stage > 0:
                layers.append(NB201Reduction(c, 2 * c))
                c *= 2
            layers += [NB201Cell(c, ops) for _ in range(n)]
        layers += [nn.BatchNorm2d(c), nn.ReLU(), head(c, config.get("num_classes", NB201_CLASSES))]
        return nn.Sequential(*layers), (image_input(batch_size, NB201_IMAGE_SIZE),)


__all__ = ["NB201Cell", "NB201Family", "NB201Reduction", "NB201_OPS", "nb201_arch_str", "nb201_parse_arch"]
