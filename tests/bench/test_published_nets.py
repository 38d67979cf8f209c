"""The published hold-out networks: metadata, lazy torch import, name errors, deterministic exports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archcast.bench.published_nets import KINDS, PUBLISHED, PublishedNet, build_published, export_published
from archcast.errors import InvalidInputError, UnknownNameError

SMALL = ("mobilenet_v1", "mixnet_s", "pvt_v2_b0")  # a mobile CNN, a mixed-kernel one, a transformer


def test_metadata_is_consistent():
    from archcast.bench._published_models import BUILDERS
    from archcast.zoo import FAMILIES, load_builtin_families

    load_builtin_families()
    assert 12 <= len(PUBLISHED) <= 20
    assert set(PUBLISHED) == set(BUILDERS)
    assert len({n.name for n in PUBLISHED.values()}) == len(PUBLISHED)
    for key, net in PUBLISHED.items():
        assert isinstance(net, PublishedNet) and net.name == key
        assert net.kind in KINDS, net
        assert net.paper and isinstance(net.image_size, int) and 32 <= net.image_size <= 512
        assert net.nearest_zoo_family is None or net.nearest_zoo_family in FAMILIES, net
        assert net.params_paper_m is None or 0.1 < net.params_paper_m < 1000
    assert {n.kind for n in PUBLISHED.values()} == set(KINDS)  # a spread of kinds
    # mostly outside the zoo: no net is named after a zoo family
    assert not set(PUBLISHED) & set(FAMILIES)


def test_importing_the_metadata_does_not_import_torch():
    code = "import archcast.bench.published_nets, sys; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_an_unknown_name_lists_the_valid_ones():
    for fn in (build_published, export_published):
        with pytest.raises(UnknownNameError, match="unknown published network 'resnet9000'.*inception_v3"):
            fn("resnet9000")
    with pytest.raises(InvalidInputError, match="batch_size"):
        build_published("mobilenet_v1", batch_size=0)


def test_build_is_seeded_and_leaves_the_callers_rng_alone():
    import torch

    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    m1, (x,) = build_published("mobilenet_v1", batch_size=2)
    assert torch.equal(torch.random.get_rng_state(), state)
    m2, _ = build_published("mobilenet_v1")
    assert not m1.training and tuple(x.shape) == (2, 3, 224, 224)
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))


@pytest.mark.parametrize("name", SMALL)
def test_export_is_deterministic_and_loads_as_ir(name):
    from archcast.frontends.onnx import load_onnx

    data = export_published(name)
    assert data == export_published(name)
    graph = load_onnx(data, name=name)
    assert graph.name == name and graph.flops > 0 and len(graph.nodes) > 10
