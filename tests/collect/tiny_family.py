"""A tiny zoo family for the collection tests (importable by spawned workers and subprocesses).

``{"crash_once": PATH}`` kills the building process the first time (when PATH does not exist yet),
as a segfaulting exporter would; the retry builds normally.
"""

from __future__ import annotations

import os
from pathlib import Path

from archcast.zoo.base import FAMILIES, Family

NAME = "tiny-collect-test"


class TinyCollectFamily(Family):
    name = NAME
    description = "test family of tests/collect"

    def sample_config(self, rng):
        return {"channels": int(rng.integers(2, 24)), "depth": int(rng.integers(1, 3)),
                "size": int(rng.choice([8, 12]))}

    def build(self, config, batch_size=1):
        import torch

        marker = config.get("crash_once")
        if marker and not Path(marker).exists():
            Path(marker).write_text("crashed once")
            os._exit(3)
        layers, c = [], 3
        for _ in range(config["depth"]):
            layers += [torch.nn.Conv2d(c, config["channels"], 3, padding=1), torch.nn.ReLU()]
            c = config["channels"]
        return torch.nn.Sequential(*layers), (torch.randn(batch_size, 3, config["size"], config["size"]),)


if NAME not in FAMILIES:
    FAMILIES.register(NAME, TinyCollectFamily)
