"""The reference-scaled image families (archcast.zoo.cnn, .mobile, .nb201): deterministic sampling,
buildable modules, reproducible ONNX, reference configs that reproduce the published networks, and
the op types the families cover."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")

from archcast.errors import InvalidInputError  # noqa: E402
from archcast.frontends.onnx import load_onnx  # noqa: E402
from archcast.frontends.torch import load_torch  # noqa: E402
from archcast.zoo import FAMILIES, export_sample, get_family, load_builtin_families  # noqa: E402
from archcast.zoo.sampling import ReferenceFamily  # noqa: E402

EXPECTED = {"resnet", "vgg", "efficientnet", "mobilenetv2", "mobilenetv3", "mnasnet", "alexnet", "squeezenet",
            "googlenet", "nb201"}

load_builtin_families()
CLASSIC = sorted(n for n in FAMILIES.names() if issubclass(FAMILIES.get(n), ReferenceFamily))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # On a busy 2-core machine two OpenMP threads can make a forward pass 10-30x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _json_only(value) -> bool:
    if isinstance(value, list):
        return all(_json_only(v) for v in value)
    return isinstance(value, (bool, int, float, str))


def test_all_ten_families_registered():
    assert set(CLASSIC) == EXPECTED


@pytest.mark.parametrize("name", CLASSIC)
def test_family_metadata(name):
    fam = get_family(name)
    assert fam.name == name and fam.input_kind == "image" and fam.version == ("2" if name in RESOLUTION_SAMPLED else "1")
    assert fam.versions()[-1] == fam.version and "1" in fam.versions()
    assert fam.description and "\n" not in fam.description


@pytest.mark.parametrize("name", CLASSIC)
def test_sample_is_deterministic_json_and_varied(name):
    fam = get_family(name)
    a, b = fam.sample(7), fam.sample(7)
    assert a == b and a.config == b.config and a.config_json() == b.config_json()
    assert a.family == name and a.seed == 7 and a.generator_version == fam.version
    assert all(isinstance(k, str) and _json_only(v) for k, v in a.config.items()), a.config
    assert json.loads(a.config_json()) == a.config
    configs = {fam.sample(s).config_json() for s in range(12)}
    assert len(configs) >= 11  # different seeds give different variants


@pytest.mark.parametrize("name", CLASSIC)
def test_build_runs_forward(name):
    fam = get_family(name)
    torch.manual_seed(0)
    module, inputs = fam.build(fam.sample(0).config)
    side = 32 if name == "nb201" else fam.sample(0).config.get("image_size", 224)
    assert len(inputs) == 1 and tuple(inputs[0].shape) == (1, 3, side, side)
    with torch.no_grad():
        out = module.eval()(*inputs)
    assert tuple(out.shape) == (1, 10 if name == "nb201" else 1000)
    assert torch.isfinite(out).all()


def test_batch_size_is_honoured():
    fam = get_family("nb201")
    module, (x,) = fam.build(fam.sample(3).config, batch_size=2)
    with torch.no_grad():
        assert tuple(module.eval()(x).shape) == (2, 10)


def test_config_errors_name_the_missing_key():
    with pytest.raises(InvalidInputError, match="'widths'"):
        get_family("resnet").build({"block": "basic"})


# ---------------------------------------------------------------------------- reference networks
REFERENCE = {
    # torchvision's published MACs and parameter counts (BN folded into conv biases here, so a
    # model with BN has cout fewer parameters per BN than the PyTorch module)
    "resnet18": ("resnet", dict(block="basic", expansion=1, stem_channels=64, widths=[64, 128, 256, 512],
                                depths=[2, 2, 2, 2], kernels=[3, 3, 3, 3]), 1.814e9, 11.69e6),
    "mobilenet_v2": ("mobilenetv2", dict(stem_channels=32, channels=[16, 24, 32, 64, 96, 160, 320],
                                         depths=[1, 2, 3, 4, 3, 3, 1], strides=[1, 2, 2, 2, 1, 2, 1], kernels=[3] * 7,
                                         expansions=[1, 6, 6, 6, 6, 6, 6], se=[False] * 7, head_channels=1280),
                     0.3008e9, 3.505e6),
    "efficientnet_b0": ("efficientnet", dict(stem_channels=32, channels=[16, 24, 40, 80, 112, 192, 320],
                                             depths=[1, 2, 2, 3, 3, 4, 1], strides=[1, 2, 2, 2, 1, 2, 1],
                                             kernels=[3, 3, 5, 3, 5, 5, 3], expansions=[1, 6, 6, 6, 6, 6, 6],
                                             se=[True] * 7, head_channels=1280), 0.386e9, 5.289e6),
    "squeezenet1_1": ("squeezenet", dict(version="1_1", stem_channels=64, fires_per_group=[2, 2, 2, 2],
                                         squeeze=[16, 16, 32, 32, 48, 48, 64, 64],
                                         expand=[64, 64, 128, 128, 192, 192, 256, 256], expand_kernels=[3] * 8),
                      0.349e9, 1_235_496),
}


@pytest.mark.parametrize("ref", sorted(REFERENCE))
def test_reference_config_reproduces_published_network(ref):
    name, config, macs, params = REFERENCE[ref]
    module, inputs = get_family(name).build(config)
    g = load_torch(module, inputs)
    conv_macs = sum(n.flops for n in g.nodes if n.op_type in ("Conv", "Gemm")) / 2
    # archcast also counts each conv's (BN-folded) bias add: about +1 % on MobileNetV2
    assert math.isclose(conv_macs, macs, rel_tol=0.015), conv_macs
    assert math.isclose(g.params, params, rel_tol=0.01), g.params
    assert g.flops >= 2 * conv_macs  # elementwise ops add a little on top


def test_alexnet_reference_exact_params():
    config = dict(widths=[64, 192, 384, 256, 256], kernels=[11, 5, 3, 3, 3], fc_widths=[4096, 4096])
    module, (x,) = get_family("alexnet").build(config)
    assert sum(p.numel() for p in module.parameters()) == 61_100_840  # torchvision's alexnet (no BN)
    convs = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == config["widths"] and convs[0].stride == (4, 4)


# ---------------------------------------------------------------------------- exported graphs
@pytest.fixture(scope="module")
def graphs():
    """Weight-free ONNX of seed 0 of every classic family, read back."""
    return {name: load_onnx(export_sample(get_family(name).sample(0))) for name in CLASSIC}


@pytest.mark.parametrize("name", ["nb201", "mobilenetv3"])
def test_export_fingerprint_is_reproducible(name, graphs):
    fam = get_family(name)
    again = load_onnx(export_sample(fam.sample(0)))
    other = load_onnx(export_sample(fam.sample(1)))
    assert again.fingerprint() == graphs[name].fingerprint()
    assert other.fingerprint() != graphs[name].fingerprint()
    side = 32 if name == "nb201" else fam.sample(0).config["image_size"]
    assert list(again.inputs.values()) == [(1, 3, side, side)]


def test_flops_are_in_the_intended_range(graphs):
    for name, g in graphs.items():
        assert 1e6 <= g.flops <= 8e9, (name, g.flops)


def test_op_coverage_of_the_classic_families(graphs):
    ops = set().union(*(g.op_counts() for g in graphs.values()))
    for op in ("Conv", "Relu", "Add", "GlobalAveragePool", "Gemm", "MaxPool", "Concat", "BatchNormalization",
               "HardSwish", "HardSigmoid", "Sigmoid", "Mul", "Clip", "AveragePool", "Flatten"):
        assert op in ops, (op, sorted(ops))


def test_importing_the_zoo_does_not_import_torch():
    # the family modules import torch; the package and its sampling bases must not (lazy registration)
    code = ("import sys; import archcast.zoo, archcast.zoo.sampling; from archcast.zoo import FAMILIES; "
            "sys.exit(2 * ('torch' in sys.modules) + (len(FAMILIES) != 0))")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


# generator version 2: the families whose latency spanned under 100x in data set v2 also sample the input size
RESOLUTION_SAMPLED = ("resnet", "vgg", "squeezenet", "googlenet", "efficientnet", "mobilenetv2", "mobilenetv3",
                      "mnasnet")


@pytest.mark.parametrize("name", RESOLUTION_SAMPLED)
def test_version_2_is_version_1_plus_an_input_size(name):
    fam = get_family(name)
    for seed in range(6):
        v1, v2 = fam.sample(seed, "1"), fam.sample(seed)
        assert v1.generator_version == "1" and v2.generator_version == "2"
        assert {k: v for k, v in v2.config.items() if k != "image_size"} == v1.config
        assert v2.config["image_size"] in fam.image_sizes and "image_size" not in v1.config
    sizes = {fam.sample(s).config["image_size"] for s in range(60)}
    assert min(sizes) <= 128 and max(sizes) >= 288  # the resolution range is used
    with pytest.raises(InvalidInputError, match="cannot sample generator version '3'"):
        fam.sample(0, "3")


def test_version_1_configs_of_data_set_v2_still_regenerate():
    import csv
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "datasets" / "ort-cpu-1t-v2" / "models.csv"
    rows = [r for r in csv.DictReader(path.open()) if r["family"] in RESOLUTION_SAMPLED][::8]
    assert len(rows) >= 40
    for r in rows:
        got = get_family(r["family"]).sample(int(r["seed"]), r["generator_version"])
        assert got.config == json.loads(r["generator_config"]), (r["family"], r["seed"])


@pytest.mark.parametrize("size", [96, 320])
def test_resolution_sampled_builds_at_the_extremes(size):
    for name in ("vgg", "mobilenetv3"):
        fam = get_family(name)
        module, (x,) = fam.build({**fam.sample(1).config, "image_size": size})
        assert tuple(x.shape) == (1, 3, size, size)
        with torch.no_grad():
            assert tuple(module.eval()(x).shape) == (1, 1000)
