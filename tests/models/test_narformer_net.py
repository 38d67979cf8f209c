"""NARFormerNet: batched == one graph at a time, gradients reach every parameter, no NaNs."""

import pytest
import torch

from archcast.models.narformer import NARFormerNet, NetConfig


def _random_batch(b=5, n=9, d=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(2, n + 1, (b,), generator=g)
    x = torch.zeros(b, n, d)
    adj = torch.zeros(b, n, n)
    mask = torch.zeros(b, n, dtype=torch.bool)
    for i, m in enumerate(sizes.tolist()):
        x[i, :m] = torch.randn(m, d, generator=g)
        a = (torch.rand(m, m, generator=g) < 0.4).float().triu(1)
        adj[i, :m, :m] = a + a.T
        mask[i, :m] = True
    return x, adj, mask, sizes


@pytest.mark.parametrize("readout", ["sum", "mean", "layer_fusion"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_batched_equals_one_at_a_time(readout, bidirectional):
    torch.manual_seed(0)
    x, adj, mask, sizes = _random_batch()
    gf = torch.randn(x.shape[0], 4)
    cfg = NetConfig(d_in=12, width=16, n_blocks=3, ffn_groups=4, readout=readout, graph_features=4,
                    fc_hidden=8, bidirectional=bidirectional)
    net = NARFormerNet(cfg).eval()
    with torch.no_grad():
        batched = net(x, adj, mask, gf)
        single = torch.cat([
            net(x[i:i + 1, :m], adj[i:i + 1, :m, :m], mask[i:i + 1, :m], gf[i:i + 1])
            for i, m in enumerate(sizes.tolist())
        ])
    assert batched.shape == (x.shape[0],)
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-6)


def test_padding_content_is_ignored():
    x, adj, mask, _ = _random_batch(seed=1)
    net = NARFormerNet(NetConfig(d_in=12, width=16, n_blocks=2, ffn_groups=4, fc_hidden=8)).eval()
    x2 = x.clone()
    x2[~mask] = 123.0  # garbage on padding tokens
    with torch.no_grad():
        torch.testing.assert_close(net(x, adj, mask), net(x2, adj, mask))


def test_gradients_reach_every_parameter_and_output_positive():
    x, adj, mask, _ = _random_batch()
    gf = torch.randn(x.shape[0], 4)
    net = NARFormerNet(NetConfig(d_in=12, width=16, n_blocks=2, ffn_groups=4, readout="layer_fusion",
                                 graph_features=4, fc_hidden=8, bidirectional=True))
    out = net(x, adj, mask, gf)
    assert torch.all(out > 0) and torch.isfinite(out).all()
    out.sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing
    zero = [n for n, p in net.named_parameters() if float(p.grad.abs().sum()) == 0.0]
    assert not zero, zero


def test_reference_preset_size_is_close_to_paper():
    # latency configuration: 2 blocks of width 512, 152-d tokens, 40-d graph features (~2.3 M params)
    net = NARFormerNet(NetConfig(d_in=152, width=512, n_blocks=2, graph_features=40, fc_hidden=512))
    n = sum(p.numel() for p in net.parameters())
    assert 1.5e6 < n < 3.5e6, n


def test_bad_config_names_the_value():
    with pytest.raises(ValueError, match="readout 'max'"):
        NetConfig(d_in=4, readout="max")


def test_group_linear_block_diagonal_path_equals_per_group_product():
    from archcast.models.narformer import GroupLinear

    torch.manual_seed(0)
    small = GroupLinear(64, 128, 8)  # takes the block-diagonal GEMM path
    x = torch.randn(5, 7, 64)
    xg = x.reshape(5, 7, 8, 8)
    ref = small.norm(torch.einsum("...gi,gio->...go", xg, small.weight) + small.bias).reshape(5, 7, -1)
    torch.testing.assert_close(small(x), ref, rtol=1e-5, atol=1e-5)
    big = GroupLinear(512, 2048, 8)  # per-group product path
    assert 8 * 64 * 8 * 256 > GroupLinear.BLOCK_DIAG_MAX
    assert big(torch.randn(3, 512)).shape == (3, 2048)
