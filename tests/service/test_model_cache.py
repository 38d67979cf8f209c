"""archcast.service.model_cache: a model read and hashed once, its graph cached on disk (a hit
parses nothing; a damaged entry is rebuilt; a cache that cannot be written only costs speed)."""

from __future__ import annotations

import hashlib

import pytest

from archcast.errors import InvalidInputError
from archcast.frontends import onnx as onnx_frontend
from archcast.service import model_cache
from archcast.service.predict import read_model
from archcast.zoo import export_sample, get_family


@pytest.fixture
def model(tmp_path, monkeypatch):
    monkeypatch.setenv(model_cache.CACHE_ENV, str(tmp_path / "cache"))
    path = tmp_path / "cell.onnx"
    path.write_bytes(export_sample(get_family("nb201").sample(2)))
    return path


@pytest.fixture
def parses(monkeypatch):
    """How many times the ONNX frontend ran."""
    calls = []
    real = onnx_frontend.load_onnx

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(onnx_frontend, "load_onnx", counting)
    return calls


def _entries(model):
    return sorted((model.parent / "cache" / "graphs").glob("*.json"))


def test_a_repeated_read_parses_nothing_and_gives_the_same_graph(model, parses):
    first, source = read_model(str(model))
    again, source2 = read_model(model)
    assert len(parses) == 1 and again == first == onnx_frontend.load_onnx(model)
    assert again.name == "cell" and len(_entries(model)) == 1
    assert isinstance(source2, model_cache.ModelBytes) and source2.data == model.read_bytes()
    assert source2.sha256 == hashlib.sha256(model.read_bytes()).hexdigest() and source2.default_name == "cell"


@pytest.mark.parametrize("damage", [b"{not json", b"", b'{"nodes": 3}', b"[]", b"\xff\xfe",
                                    b'{"nodes": [], "edges": [[0, 1]]}'])
def test_a_damaged_entry_is_rebuilt(model, parses, damage):
    good, _ = read_model(model)
    (entry,) = _entries(model)
    entry.write_bytes(damage)
    again, _ = read_model(model)
    assert len(parses) == 2 and again == good
    third, _ = read_model(model)  # the rebuilt entry is good again
    assert len(parses) == 2 and third == good


def test_a_cache_that_cannot_be_written_only_costs_speed(model, parses, monkeypatch):
    blocker = model.parent / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv(model_cache.CACHE_ENV, str(blocker / "cache"))
    a, _ = read_model(model)
    b, _ = read_model(model)
    assert a == b and len(parses) == 2


def test_what_the_graph_depends_on_is_in_the_key(model, parses):
    data = model.read_bytes()
    other = model.with_name("other.onnx")
    other.write_bytes(data)
    g, _ = read_model(model)
    assert read_model(other)[0].name == "other"  # the same bytes under another name
    from_bytes, source = read_model(data)
    assert from_bytes.name == "main_graph" != g.name and source.default_name == ""  # the ONNX graph name
    assert read_model(model, {"input": (2, 3, 32, 32)})[0].inputs == {"input": (2, 3, 32, 32)}
    assert len(_entries(model)) == 4 and len(parses) == 4
    assert read_model(model, {"input": [2, 3, 32, 32]})[0].inputs == {"input": (2, 3, 32, 32)}
    assert len(parses) == 4  # a list or a tuple: the same entry


def test_shapes_that_are_not_plain_integers_go_to_the_frontend_uncached(model, parses):
    with pytest.raises(InvalidInputError, match="must be integers"):
        read_model(model, {"input": (1.5, 3, 32, 32)})
    with pytest.raises(InvalidInputError, match="must be integers"):
        read_model(model, {"input": (1.5, 3, 32, 32)})
    assert len(parses) == 2 and _entries(model) == []


def test_a_missing_file_is_the_frontend_s_error(tmp_path):
    with pytest.raises(InvalidInputError, match="missing.onnx' does not exist"):
        read_model(tmp_path / "missing.onnx")


def test_what_is_not_onnx_is_not_cached(model, parses):
    g, _ = read_model(model)
    path = model.with_suffix(".json")
    path.write_text(g.to_json())
    back, source = read_model(str(path))
    assert back == g and source == str(path) and len(parses) == 1
