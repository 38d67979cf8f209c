"""A short fixed-seed fuzz run: every input of every in-process family ends in a result or an
archcast error with a one-line message (long runs: ``scripts/fuzz.py``)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import fuzzlib  # noqa: E402

# inputs per family: a few seconds in total on a 2-core machine
SHORT = {"random_bytes": 60, "truncation": 60, "bitflip": 15, "onnx_mutation": 15, "random_graph": 6,
         "cell_string": 150, "graph_json": 25, "api_options": 60}


@pytest.mark.parametrize("family", sorted(SHORT))
def test_short_fuzz_run_has_no_uncaught_errors(family, monkeypatch):
    monkeypatch.setattr(fuzzlib, "BIG_JSON_NODES", (1000,))  # 30,000-node graphs: long runs only
    t0 = time.perf_counter()
    outcomes = [fuzzlib.run_one(family, 1234, i) for i in range(SHORT[family])]
    bad = [(i, r) for i, r in enumerate(outcomes) if r["outcome"] not in ("ok", "clean") or r.get("multiline")]
    assert not bad, f"{family}: {bad[:3]}"
    assert {r["outcome"] for r in outcomes} <= {"ok", "clean"}
    assert time.perf_counter() - t0 < 30


def test_inputs_are_reproducible_from_their_numbers():
    for family in ("onnx_mutation", "cell_string", "graph_json", "random_bytes"):
        assert fuzzlib.make_input(family, 7, 3) == fuzzlib.make_input(family, 7, 3)
        assert fuzzlib.make_input(family, 7, 3) != fuzzlib.make_input(family, 7, 4)
