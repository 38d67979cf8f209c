"""The data commands (zoo, profile, db) on a parser of their own: exit codes, outputs, one-line errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from archcast.cli import db, profile, zoo
from archcast.errors import ArchcastError, UnknownNameError
from archcast.zoo.base import FAMILIES, Family

NAME = "tiny-cli-test"


class TinyCliFamily(Family):
    name = NAME
    description = "test family of tests/cli/test_cli_data.py"

    def sample_config(self, rng):
        return {"channels": int(rng.integers(2, 8))}

    def build(self, config, batch_size=1):  # pragma: no cover - these tests never export
        raise NotImplementedError


@pytest.fixture(autouse=True)
def tiny_family():
    with FAMILIES.temporary(NAME, TinyCliFamily):
        yield


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="archcast")
    sub = p.add_subparsers(dest="command")
    for group in (zoo, profile, db):
        group.register(sub)
    args = p.parse_args(argv)
    return args.func(args)


def conv_onnx(path):
    w = numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "w")
    g = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["y"], name="conv")], "tiny",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 6, 6])], [w])
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString())
    return path


def test_zoo_list_and_sample(capsys):
    assert run(["zoo", "list"]) == 0
    assert NAME in capsys.readouterr().out
    assert run(["zoo", "sample", "--family", NAME, "--count", "2", "--start-seed", "5"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["seed"] for x in lines] == [5, 6] and all(x["family"] == NAME for x in lines)
    with pytest.raises(UnknownNameError, match=f"valid: .*{NAME}"):
        run(["zoo", "sample", "--family", "no-such-family", "--count", "1"])
    assert run(["zoo"]) == 2  # help


def test_profile_onnx_then_db_stats_and_export(tmp_path, capsys):
    db = str(tmp_path / "a.db")
    good = conv_onnx(tmp_path / "good.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    rc = run(["profile", "--onnx", str(good), str(bad), "--db", db, "--workers", "0", "--no-progress",
              "--min-runs", "3", "--min-time", "0.01"])
    out = capsys.readouterr()
    assert rc == 1 and "1 ok, 1 failed" in out.out and "failed" in out.err  # failures are recorded, exit 1
    assert run(["db", "stats", "--db", db, "--format", "json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert (st["measurements_ok"], st["measurements_failed"]) == (1, 1)
    assert run(["db", "export", "--format", "csv", "--out", str(tmp_path / "m.csv"), "--db", db]) == 0
    assert (tmp_path / "m.csv").read_text().count("\n") == 3
    assert run(["db", "export", "--format", "nnlqp", "--out", str(tmp_path / "nn"), "--db", db, "--no-progress"]) == 0
    assert run(["db", "import-nnlqp", str(tmp_path / "nn"), "--platform", "copy", "--db", str(tmp_path / "b.db")]) == 0
    assert "1 measurements added" in capsys.readouterr().out
    with pytest.raises(ArchcastError, match="either --family"):
        run(["profile", "--db", db])
    with pytest.raises(ArchcastError, match="no platform 'nope'"):
        run(["db", "export", "--format", "csv", "--out", str(tmp_path / "x.csv"), "--db", db, "--platform", "nope"])


def test_profile_family_counts_are_per_family_and_seed_major():
    class Other(TinyCliFamily):
        name = NAME + "-2"

    with FAMILIES.temporary(Other.name, Other):
        got = profile.zoo_samples([f"{NAME}:3", Other.name], 1, 10)
        assert [(s.family, s.seed) for s in got] == [(NAME, 10), (Other.name, 10), (NAME, 11), (NAME, 12)]
        assert [s.seed for s in profile.zoo_samples([f"{NAME}:2", f"{Other.name}:4"], None, 0)
                if s.family == Other.name] == [0, 1, 2, 3]
        with pytest.raises(ArchcastError, match="has no count: add --count N"):
            profile.zoo_samples([f"{NAME}:2", Other.name], None, 0)
        with pytest.raises(ArchcastError, match="must be an integer"):
            profile.zoo_samples([f"{NAME}:two"], None, 0)
        with pytest.raises(ArchcastError, match="must be >= 1"):
            profile.zoo_samples([f"{NAME}:0"], None, 0)
        with pytest.raises(UnknownNameError):
            profile.zoo_samples(["no-such-family:3"], None, 0)
