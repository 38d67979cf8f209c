from archcast.bench.cell_speed import batched_vs_loop
from archcast.frontends.cells import nb201_graph


def test_batched_vs_loop_agree_on_few_cells():
    graphs = [nb201_graph((i % 5, (i // 5) % 5, 2, 3, 4, i % 3)) for i in range(6)]
    r = batched_vs_loop(graphs, repeats=1, n_loop=6)
    assert r["graphs"] == 6 and r["batched_s"] > 0 and r["loop_s"] > 0
    assert r["max_abs_diff"] < 1e-4
