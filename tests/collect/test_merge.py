"""Format-2 data sets of two machines merged onto one canary speed scale (archcast dataset merge)."""

from __future__ import annotations

import json

import pytest

import tests.collect.test_passes as tp
from archcast.collect.export import export_latency_dataset
from archcast.collect.merge import merge_datasets
from archcast.collect.passes import Protocol, collect_samples
from archcast.data.latency_dataset import load_latency_dataset
from archcast.errors import InvalidInputError
from archcast.profile import BACKENDS, Measurement, NodeProfile, NodeTime, Platform
from archcast.store import Store
from tests.collect.test_passes import FAST, FakeClock, samples

SLOW = 1.5


class KernelFake(tp.FakeBackend):
    """The drifting fake of test_passes, with two kernels per model when asked for a profile."""

    def measure(self, onnx_bytes, platform, batch_size=None, **options):
        m = super().measure(onnx_bytes, platform, batch_size, **options)
        if options.get("profile_nodes"):
            us = m.latency_ms_median * 1000.0
            m.node_profile = NodeProfile([NodeTime("k_conv", "Conv", 0.6 * us, 0.55 * us),
                                          NodeTime("k_relu", "Relu", 0.3 * us, 0.25 * us)], runs=3, run_us=us)
        return m


def _platform(version: str = "0") -> Platform:
    return Platform("fake-1t", backend="fake-drift", device="fake", runtime="fake", runtime_version=version)


def _campaign(root, name, todo, factor, platform=None):
    tp.CLOCK = FakeClock(slow_from=0, factor=factor)  # each machine's own clock, from the same hour
    platform = platform or _platform()
    store = Store(root / f"{name}.db")
    proto = Protocol(passes=2, canary_every=2, kernels=True, profile_runs=3, extra_passes=0, drift_threshold=10.0,
                     normalise=False, measure_kw=FAST)
    collect_samples(todo, store, platform, root / name, protocol=proto, workers=0, progress=False)
    return load_latency_dataset(export_latency_dataset(store, root / f"{name}-ds", platform, campaign=root / name))


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Campaign ``a`` (models 0-3) on a fast machine, ``b`` (models 2-5) on one 1.5x slower; both
    hosts are called fake-host, both clocks start at the same time."""
    root = tmp_path_factory.mktemp("merge")
    old = tp.CLOCK
    with BACKENDS.temporary("fake-drift", KernelFake):
        a = _campaign(root, "a", samples(4), 1.0)
        b = _campaign(root, "b", samples(4, start=2), SLOW)
        merged = load_latency_dataset(merge_datasets([a.path, b], root / "ab"))
    tp.CLOCK = old
    return root, a, b, merged


def test_labels_and_kernels_land_on_the_first_machines_scale(two):
    _, a, b, m = two
    assert not a.manifest["label"]["canary_normalised"]  # raw sources
    lab_a = {r.fingerprint: r.label_ms for r in a.records}
    lab_b = {r.fingerprint: r.label_ms for r in b.records}
    lab_m = {r.fingerprint: r for r in m.records}
    both, only_b = set(lab_a) & set(lab_b), set(lab_b) - set(lab_a)
    assert len(both) == 2 and len(only_b) == 2 and len(m) == 6
    for fp in both:
        assert lab_b[fp] / lab_a[fp] == pytest.approx(SLOW, rel=1e-3)  # raw: 50 % apart
        assert lab_m[fp].label_ms == pytest.approx(lab_a[fp], rel=1e-3)
    for fp in only_b:  # measured on the slow machine only, yet on the fast one's scale
        assert lab_m[fp].label_ms == pytest.approx(lab_b[fp] / SLOW, rel=1e-3)
        assert lab_m[fp].speed_index == pytest.approx(SLOW, rel=1e-3) and lab_m[fp].n_passes == 2
        assert lab_m[fp].host == "fake-host@b"
    assert all(lab_m[fp].speed_index == pytest.approx(1.0, rel=1e-3) for fp in lab_a)
    # kernel labels: a's as they were, b's divided by the slow machine's index
    ka, kb, km = a.kernel_labels(), b.kernel_labels(), m.kernel_labels()
    assert set(km) == set(lab_m)
    for fp in both:
        assert km[fp] == pytest.approx(ka[fp], rel=1e-3)
        assert km[fp] == pytest.approx({k: v / SLOW for k, v in kb[fp].items()}, rel=1e-3)
    for fp in only_b:
        assert km[fp] == pytest.approx({k: v / SLOW for k, v in kb[fp].items()}, rel=1e-3)
    lab = m.manifest["label"]
    assert lab["canary_normalised"] and lab["reference_host"] == "fake-host@a"
    assert lab["passes"] == ["a/p1", "a/p2", "b/p1", "b/p2"] and m.manifest["campaign"] == "a+b"
    idx = {s["campaign"]: s["speed_index_median"] for s in m.manifest["sources"]}
    assert idx["a"] == pytest.approx(1.0, rel=1e-3) and idx["b"] == pytest.approx(SLOW, rel=1e-3)
    assert {h["host"] for h in m.manifest["machines"]} == {"fake-host@a", "fake-host@b"}


def test_duplicates_rows_ids_and_graph_lines(two):
    _, a, b, m = two
    c = m.manifest["counts"]
    assert c["duplicates_dropped"] == 2 and c["models"] == 6
    assert [s["models_kept"] for s in m.manifest["sources"]] == [4, 2]
    dup = {r.fingerprint for r in a.records} & {r.fingerprint for r in b.records}
    rows = m.passes()
    assert len({r["row_id"] for r in rows}) == len(rows) == len(a.passes()) + len(b.passes()) - sum(
        1 for r in b.passes() if r["fingerprint"] in dup and r["role"] != "canary")
    assert {r["host"] for r in rows} == {"fake-host@a", "fake-host@b"}
    assert all(r["pass_id"].startswith("a/") for r in rows if r["fingerprint"] in dup and r["role"] != "canary")
    assert all(k.pass_id.startswith("a/") for k in m.kernels() if k.fingerprint in dup)
    assert c["canary_rows"] == sum(r["role"] == "canary" for r in rows)
    # every graph line is its models.csv row; order is model_order over both sources
    graphs = m.graphs()
    assert [r.seed for r in m.records] == [0, 1, 2, 3, 4, 5]
    for i, r in enumerate(m.records):
        assert graphs[i].fingerprint() == r.fingerprint
    assert len(m.optimized_graphs()) == 6
    assert m.families() == a.families() and sum(m.manifest["families"].values()) == 6


def test_refusals(two, tmp_path):
    root, a, b, m = two
    with pytest.raises(InvalidInputError, match="is .*the source"):
        merge_datasets([a, b], a.path)
    with pytest.raises(InvalidInputError, match="both campaign 'a'"):
        merge_datasets([a, a], tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("mine")
    with pytest.raises(InvalidInputError, match="not a previous merge output"):
        merge_datasets([a, b], tmp_path / "busy")
    assert (tmp_path / "busy" / "keep.txt").read_text() == "mine"
    old = tp.CLOCK
    with BACKENDS.temporary("fake-drift", KernelFake):
        v1 = load_latency_dataset(export_latency_dataset(Store(root / "a.db"), tmp_path / "v1", _platform()))
        other = _campaign(tmp_path, "c", samples(1), 1.0, platform=_platform("1"))
    tp.CLOCK = old
    with pytest.raises(InvalidInputError, match="format 1"):
        merge_datasets([a, v1], tmp_path / "x")
    with pytest.raises(InvalidInputError, match="differ in platform"):
        merge_datasets([a, other], tmp_path / "x")
    assert not (tmp_path / "x").exists()
    # a previous merge output is replaced as a whole (its note kept)
    (m.path / "NOTE.md").write_text("two fake machines\n")
    again = load_latency_dataset(merge_datasets([a, b], m.path))
    assert again.fingerprint == m.fingerprint and (m.path / "NOTE.md").read_text() == "two fake machines\n"


def test_cli_merge_then_datasheet(two, tmp_path, capsys):
    from archcast.cli import main as cli_main

    _, a, b, _ = two
    out = str(tmp_path / "ab")
    assert cli_main(["dataset", "merge", str(a.path), str(b.path), "--out", out, "--no-progress"]) == 0
    text = capsys.readouterr().out.strip()
    assert "\n" not in text and "6 models" in text and "2 duplicates dropped" in text and "fake-host@b 1.5" in text
    assert cli_main(["dataset", "datasheet", out]) == 0
    sheet = (tmp_path / "ab" / "DATASHEET.md").read_text()
    assert "| fake-host@a |" in sheet and "| fake-host@b |" in sheet and "campaign `a+b`" in sheet
    assert "**Merged** (`archcast dataset merge`)" in sheet and "2 models found in an earlier source dropped" in sheet
    nf = json.loads((tmp_path / "ab" / "noise_floor.json").read_text())
    assert {h["host"]: h["speed_index_median"] for h in nf["machines"]} == pytest.approx(
        {"fake-host@a": 1.0, "fake-host@b": SLOW}, rel=1e-3)
    between = {(x["stat"], x["canary_normalised"]): x for x in nf["between_passes"]}
    assert between[("cpu_ms_min", True)]["n"] == 6  # the first two passes of each campaign
    capsys.readouterr()
    assert cli_main(["dataset", "merge", str(a.path), str(b.path), "--out", str(a.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("archcast: error: --out") and "\n" not in err
