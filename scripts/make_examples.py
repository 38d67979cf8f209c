"""Write the shipped example models (weight-free ONNX) under ``src/archcast/examples/``.

    python scripts/make_examples.py

``resnet18.onnx``: a ResNet-18-shaped CNN (BasicBlock stages 2-2-2-2, widths 64-512, 1000 classes)
in plain torch, input ``input`` 1x3x224x224, exported with opset 17 (Conv+BN fused) and stripped of
weight data (initializers keep their dims): archcast reads the graph; onnxruntime cannot run it.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from torch import nn

from archcast.frontends.onnx import strip_weights
from archcast.frontends.torch import export_onnx_bytes

OUT = Path(__file__).resolve().parents[1] / "src" / "archcast" / "examples"


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN pairs with an identity (or 1x1 strided projection) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.down(x))


class ResNet18(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], 64
        for cout, stride in [(64, 1), (128, 2), (256, 2), (512, 2)]:
            blocks += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = onnx.load_model_from_string(export_onnx_bytes(ResNet18(), torch.zeros(1, 3, 224, 224)))
    model.graph.name = "resnet18"
    path = OUT / "resnet18.onnx"
    path.write_bytes(strip_weights(model).SerializeToString())
    print(f"wrote {path} ({path.stat().st_size / 1e3:.1f} kB)")


if __name__ == "__main__":
    main()
