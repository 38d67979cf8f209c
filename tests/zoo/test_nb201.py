"""The NAS-Bench-201 family (archcast.zoo.nb201): cell strings and degenerate cells."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from archcast.errors import InvalidInputError  # noqa: E402
from archcast.frontends.torch import load_torch  # noqa: E402
from archcast.zoo import get_family  # noqa: E402
from archcast.zoo import nb201  # noqa: E402


def test_nb201_arch_string_round_trip_and_config():
    ops = [["nor_conv_3x3"], ["skip_connect", "none"], ["avg_pool_3x3", "nor_conv_1x1", "skip_connect"]]
    arch = nb201.nb201_arch_str(ops)
    assert arch == "|nor_conv_3x3~0|+|skip_connect~0|none~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|"
    assert nb201.nb201_parse_arch(arch) == ops
    for seed in range(20):
        cfg = get_family("nb201").sample(seed).config
        assert cfg["C"] in (8, 16, 32, 64) and 1 <= cfg["N"] <= 5
        assert all(op in nb201.NB201_OPS for row in nb201.nb201_parse_arch(cfg["arch"]) for op in row)


@pytest.mark.parametrize("bad", ["", "|nor_conv_3x3~0|", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
                                 "|none~0|+|none~0|+|none~0|none~1|none~2|"])
def test_nb201_bad_arch_strings(bad):
    with pytest.raises(InvalidInputError, match="NB201 arch"):
        nb201.nb201_parse_arch(bad)


def test_nb201_cell_without_path_still_builds():
    # no edge reaches the cell output: the cell returns x * 0, as NAS-Bench-201's Zero op does
    dead = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|"
    module, inputs = get_family("nb201").build({"arch": dead, "C": 8, "N": 1})
    g = load_torch(module, inputs)
    assert g.op_counts().get("Mul", 0) == 3  # one per stage
    with torch.no_grad():
        assert torch.isfinite(module.eval()(*inputs)).all()
