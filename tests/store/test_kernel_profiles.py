"""Kernel profiles in the store: put/get/replace, one profile per key, bad input, the 0004 -> 0005 upgrade.

Tests that take ``store_url`` run on SQLite and on a real PostgreSQL server (see conftest.py).
"""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, inspect, text

from archcast.errors import InvalidInputError
from archcast.graph.ir import NetGraph, Node
from archcast.profile import Platform
from archcast.store import KernelTiming, Store, StoreInputError, migrate
from archcast.store.location import to_url

PLATFORM = Platform("test-cpu", device="test-device", runtime_version="0")
KERNELS = [("conv", "Conv", 12.5), ("relu", "Relu", 1.25), ("fused gemm", "FusedGemm", 40.0)]


def tiny_graph(i: int) -> NetGraph:
    w = i + 1
    nodes = [Node("conv", "Conv", {"kernel_shape": (3, 3)}, [(1, 3, 8, 8)], [(1, w, 8, 8)], flops=10 * w, params=27 * w),
             Node("relu", "Relu", {}, [(1, w, 8, 8)], [(1, w, 8, 8)])]
    return NetGraph(nodes, [(0, 1)], name=f"g{i}").validate()


def n_kernel_rows(store: Store) -> int:
    with store._engine.connect() as conn:
        return int(conn.execute(text("SELECT COUNT(*) FROM kernel_times")).scalar())


def test_put_get_replace_and_an_equal_profile_writes_nothing(store_url):
    store = Store(store_url)
    fp = store.add_graph(tiny_graph(0))
    assert store.kernel_profile(fp, PLATFORM) is None  # no profile, no platform yet: None, no error
    assert store.put_kernel_profile(fp, PLATFORM, KERNELS, coverage=0.93, pass_id="camp/p2", n_passes=2) == "added"
    p = store.kernel_profile(fp, PLATFORM)
    assert [k.kernel for k in p.kernels] == ["fused gemm", "conv", "relu"]  # slowest first
    assert p.kernels[0] == KernelTiming("fused gemm", "FusedGemm", 40.0)
    assert p.times_us() == {"conv": 12.5, "relu": 1.25, "fused gemm": 40.0} and p.kernel_sum_us == 53.75
    assert (p.coverage, p.pass_id, p.n_passes, p.source, p.batch_size) == (0.93, "camp/p2", 2, "archcast", 1)
    assert p.to_dict()["kernels"][0] == ["fused gemm", "FusedGemm", 40.0]
    # the same profile again (in another order, by platform id): nothing is written
    assert store.put_kernel_profile(fp, PLATFORM.platform_id, KERNELS[::-1], coverage=0.93, pass_id="camp/p2",
                                    n_passes=2) == "unchanged"
    assert store.kernel_profile(fp, PLATFORM.platform_id).measured_at == p.measured_at
    # a new profile replaces the old one and all its kernels
    new = [KernelTiming("conv", "Conv", 11.0)]
    assert store.put_kernel_profile(fp, PLATFORM, new, coverage=0.9, pass_id="camp/p3", n_passes=3) == "replaced"
    q = store.kernel_profile(fp, PLATFORM)
    assert q.times_us() == {"conv": 11.0} and (q.coverage, q.pass_id, q.n_passes) == (0.9, "camp/p3", 3)
    assert n_kernel_rows(store) == 1
    # another batch size is another profile; the stats count profiles
    assert store.put_kernel_profile(fp, PLATFORM, KERNELS, batch_size=4, source="dataset") == "added"
    assert store.kernel_profile(fp, PLATFORM, batch_size=4).source == "dataset"
    assert store.kernel_profile(fp, PLATFORM).times_us() == {"conv": 11.0}
    assert store.stats()["kernel_profiles"] == 2 and n_kernel_rows(store) == 1 + len(KERNELS)
    store.close()


def test_many_profiles_in_one_transaction_add_missing_graphs(store_url):
    store = Store(store_url)
    g0, g1 = tiny_graph(0), tiny_graph(1)
    store.add_graph(g0)
    assert store.known_graphs([g0.fingerprint(), g1.fingerprint()]) == {g0.fingerprint()}
    items = [{"fingerprint": g0.fingerprint(), "kernels": KERNELS},
             {"fingerprint": g1.fingerprint(), "kernels": KERNELS[:1], "graph": g1,
              "provenance": {"family": "tiny", "seed": 7, "generator_version": "1", "generator_config": "{}"}}]
    assert store.put_kernel_profiles(PLATFORM, items, source="dataset") == ["added", "added"]
    info = store.graph_info(g1.fingerprint())
    assert (info["family"], info["seed"], info["has_ir"]) == ("tiny", 7, True)
    assert store.put_kernel_profiles(PLATFORM, items, source="dataset") == ["unchanged", "unchanged"]
    # a bad item anywhere: nothing of the batch is written
    g2 = tiny_graph(2)
    with pytest.raises(InvalidInputError, match="kernel 'x'"):
        store.put_kernel_profiles(PLATFORM, [{"fingerprint": g2.fingerprint(), "kernels": KERNELS, "graph": g2},
                                             {"fingerprint": g0.fingerprint(), "kernels": [("x", "Conv", -1.0)]}])
    assert store.known_graphs([g2.fingerprint()]) == set()
    assert store.kernel_profile(g0.fingerprint(), PLATFORM).times_us() == dict((k, us) for k, _, us in KERNELS)
    store.close()


BAD = [
    ({"kernels": []}, "non-empty list"),
    ({"kernels": "conv"}, "non-empty list"),
    ({"kernels": [("conv", "Conv")]}, r"kernel 0 must be \(kernel name, op type, µs\)"),
    ({"kernels": [("", "Conv", 1.0)]}, "name must be a string of 1 to 256"),
    ({"kernels": [("conv", None, 1.0)]}, "op type must be a string"),
    ({"kernels": [("conv", "Conv", float("nan"))]}, "finite number of µs >= 0; got nan"),
    ({"kernels": [("conv", "Conv", "5")]}, "finite number of µs >= 0; got '5'"),
    ({"kernels": [("conv", "Conv", True)]}, "finite number of µs >= 0; got True"),
    ({"kernels": [("conv", "Conv", 1.0), ("conv", "Conv", 2.0)]}, "'conv' is listed twice"),
    ({"coverage": 0.0}, "coverage .* must be a finite number > 0"),
    ({"coverage": float("inf")}, "coverage"),
    ({"n_passes": 0}, "n_passes must be an integer >= 1"),
    ({"pass_id": "x" * 65}, "pass_id must be a string of 1 to 64"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1; got 0"),
    ({"source": ""}, "source must be a string of 1 to 32"),
]


@pytest.mark.parametrize("bad, message", BAD, ids=[m for _, m in BAD])
def test_bad_input_is_a_one_line_error_naming_the_value(tmp_path, bad, message):
    store = Store(tmp_path / "s.db")
    fp = store.add_graph(tiny_graph(0))
    kw = {"kernels": KERNELS, **bad}
    with pytest.raises(InvalidInputError, match=message) as e:
        store.put_kernel_profile(fp, PLATFORM, **kw)
    assert "\n" not in str(e.value)
    assert store.kernel_profile(fp, PLATFORM) is None and store.stats()["kernel_profiles"] == 0


def test_unknown_graph_or_platform_is_a_store_input_error(tmp_path):
    store = Store(tmp_path / "s.db")
    with pytest.raises(StoreInputError, match="has no graph 'nope'; add_graph first"):
        store.put_kernel_profile("nope", PLATFORM, KERNELS)
    fp = store.add_graph(tiny_graph(0))
    with pytest.raises(StoreInputError, match="has no platform 'feedbeef'; add_platform first"):
        store.put_kernel_profile(fp, "feedbeef", KERNELS)
    with pytest.raises(InvalidInputError, match="fingerprint must be a string"):
        store.put_kernel_profile("", PLATFORM, KERNELS)


def test_upgrading_a_0004_store_keeps_its_rows_and_adds_kernel_profiles(store_url):
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from archcast.store.schema import Base

    engine = create_engine(to_url(store_url))
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0004")
        conn.execute(text("INSERT INTO archcast_meta (key, value) VALUES ('schema_version', '1')"))
        conn.execute(text("INSERT INTO graphs (fingerprint, name, created) VALUES ('g1', 'old', '2025-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO platforms (platform_id, name, backend, device, runtime, runtime_version, "
                          "threads, precision, graph_opt_level, created) VALUES (:pid, 'test-cpu', "
                          "'onnxruntime-cpu', 'test-device', 'onnxruntime', '0', 1, 'fp32', 'all', "
                          "'2025-01-01 00:00:00')"), {"pid": PLATFORM.platform_id})
        conn.execute(text("INSERT INTO measurements (graph_fingerprint, platform_id, batch_size, status, "
                          "latency_ms_median, source, measured_at, is_current, pass_id) VALUES ('g1', :pid, 1, 'ok', "
                          "2.5, 'archcast', '2025-01-01 00:00:00', :cur, 'camp/p1')"),
                     {"pid": PLATFORM.platform_id, "cur": True})
    engine.dispose()

    store = Store(store_url, create=False)  # opening upgrades it to 0005, keeping the rows
    with store._engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == migrate.head() == "0005"
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    rec = store.current_measurement("g1", PLATFORM.platform_id, 1)
    assert (rec.latency_ms_median, rec.pass_id, rec.name) == (2.5, "camp/p1", "old")
    assert store.put_kernel_profile("g1", PLATFORM.platform_id, KERNELS) == "added"
    assert store.kernel_profile("g1", PLATFORM.platform_id).kernel_sum_us == 53.75
    store.close()

    # and back: 0005's downgrade drops only its tables
    engine = create_engine(to_url(store_url))
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "0004")
        names = set(inspect(conn).get_table_names())
        assert "kernel_profiles" not in names and "kernel_times" not in names
        assert conn.execute(text("SELECT COUNT(*) FROM measurements")).scalar() == 1
    engine.dispose()
