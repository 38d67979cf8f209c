"""The Mamba-style SSM (archcast.zoo.ssm): the chunked closed-form scan and causality."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from archcast.zoo import get_family  # noqa: E402
from archcast.zoo.ssm import chunked_scan  # noqa: E402


def _sequential_scan(x, log_a, b_in, c_out):
    """Reference: h_t = exp(log_a_t)·h_{t−1} + B_t ⊗ x_t, y_t = C_tᵀ h_t, one step at a time."""
    bsz, seq, heads, p = x.shape
    h = torch.zeros(bsz, heads, b_in.shape[-1], p, dtype=x.dtype)
    ys = []
    for t in range(seq):
        h = torch.exp(log_a[:, t])[..., None, None] * h + b_in[:, t, None, :, None] * x[:, t, :, None, :]
        ys.append((c_out[:, t, None, :, None] * h).sum(-2))
    return torch.stack(ys, 1)


@pytest.mark.parametrize("chunk", [1, 4, 6, 24])
def test_chunked_scan_matches_sequential(chunk):
    g = torch.Generator().manual_seed(chunk)
    bsz, seq, heads, p, n = 2, 24, 3, 4, 5
    x = torch.randn(bsz, seq, heads, p, generator=g, dtype=torch.float64)
    log_a = -torch.rand(bsz, seq, heads, generator=g, dtype=torch.float64)
    b_in = torch.randn(bsz, seq, n, generator=g, dtype=torch.float64)
    c_out = torch.randn(bsz, seq, n, generator=g, dtype=torch.float64)
    masks = [torch.ones(t, t, dtype=torch.bool).triu(1) for t in (chunk, seq // chunk + 1)]
    y = chunked_scan(x, log_a, b_in, c_out, *masks)
    torch.testing.assert_close(y, _sequential_scan(x, log_a, b_in, c_out))


def test_mamba_is_causal():
    fam = get_family("mamba")
    torch.manual_seed(0)
    model, (ids,) = fam.build(fam.tiny_config())
    changed = ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % fam.tiny_config()["vocab_size"]
    with torch.no_grad():
        a, b = model.eval()(ids), model(changed)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])
