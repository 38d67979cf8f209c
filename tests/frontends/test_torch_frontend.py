"""PyTorch frontend: export in memory, read back as a NetGraph."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from archcast.errors import InvalidInputError  # noqa: E402
from archcast.frontends import load_graph  # noqa: E402
from archcast.frontends.torch import load_torch  # noqa: E402


class Residual(nn.Module):
    """relu(bn(conv(relu(bn(conv(x))))) + x)"""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


def test_residual_module_ops_and_edges():
    m = Residual().train()
    g = load_torch(m, torch.randn(2, 8, 8, 8))
    assert m.training  # the caller's mode is restored
    assert [n.op_type for n in g.nodes] == ["Conv", "Relu", "Conv", "Add", "Relu"]
    # x is a graph input, not a node: the skip adds no edge; the chain has 4.
    assert g.edges == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert g.nodes[3].input_shapes == [(2, 8, 8, 8), (2, 8, 8, 8)]
    assert g.name == "Residual" and g.inputs == {"input": (2, 8, 8, 8)}
    assert g.meta["source"] == "torch" and g.meta["batch_size"] == 2 and g.meta["opset"] == 17
    assert g.params == 2 * (8 * 8 * 9 + 8)  # BN fused: each conv gains a bias


def test_skip_between_operators_is_an_edge_and_multiple_inputs():
    class TwoIn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(6, 6)

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            h = torch.sigmoid(a)
            return self.fc(h) * h + b

    g = load_graph(TwoIn(), example_input=(torch.randn(3, 6), torch.randn(3, 6)), name="two")
    assert [n.op_type for n in g.nodes] == ["Sigmoid", "Gemm", "Mul", "Add"]
    assert g.edges == [(0, 1), (0, 2), (1, 2), (2, 3)]
    assert g.name == "two" and set(g.inputs) == {"input0", "input1"}


def test_bad_example_input():
    with pytest.raises(InvalidInputError, match="list"):
        load_torch(Residual(), [[1, 2]])
    with pytest.raises(InvalidInputError, match="int"):
        load_torch(3, torch.randn(1))  # type: ignore[arg-type]


def test_a_forward_that_fails_is_an_archcast_error():
    import torch

    from archcast.errors import InvalidInputError
    from archcast.frontends.torch import load_torch

    class Bad(torch.nn.Module):
        def forward(self, x):
            return x @ torch.ones(3, 3)  # shape mismatch for a (1, 2) input

    with pytest.raises(InvalidInputError, match="cannot export Bad to ONNX.*RuntimeError"):
        load_torch(Bad(), torch.ones(1, 2))
