"""Checkpoints refuse tampering with one archcast error: every variant below of the two shipped
checkpoints ends in a CheckpointError (never another exception, never a hang or a huge allocation),
and the untouched copies still load."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from archcast.errors import ArchcastError, CheckpointError
from archcast.service.checkpoints import load_cell_predictor, shipped_dir

LATENCY = shipped_dir() / "latency-ort-cpu-1t"
CELL = shipped_dir() / "nb201-accuracy"


def _load_latency(d: Path):
    from archcast.predictors.latency.archcast import ArchcastLatency

    return ArchcastLatency.load(d)


def _copy(src: Path, tmp: Path) -> Path:
    dst = tmp / src.name
    shutil.copytree(src, dst)
    return dst


NULL = object()  # an edit returning this writes a JSON null


def _edit(d: Path, fn) -> None:
    p = d / "config.json"
    cfg = json.loads(p.read_text())
    out = fn(cfg)
    p.write_text(json.dumps(None if out is NULL else cfg if out is None else out))


LATENCY_EDITS = {
    "list config": lambda c: [c],
    "null config": lambda c: NULL,
    "members 0": lambda c: c.update(members=0),
    "members 1e6": lambda c: c.update(members=10**6),
    "hparams string": lambda c: c.update(hparams="x"),
    "interval k text": lambda c: c["interval"].update(k="wide"),
    "interval k 1e308": lambda c: c["interval"].update(k=1e308),
    "ood a list": lambda c: c.update(ood=[1]),
    "platform a number": lambda c: c.update(platform=3),
    "train_ops a string": lambda c: c.update(train_ops="Conv"),
    "net unknown key": lambda c: c["net"].update(bogus=1),
    "width -1": lambda c: c["net"].update(width=-1),
    "width 20000": lambda c: c["net"].update(width=20000),
    "width text": lambda c: c["net"].update(width="64"),
    "missing tokenizer": lambda c: c.pop("tokenizer"),
    "hparams epochs -3": lambda c: c["hparams"].update(epochs=-3),
    "more members than weights": lambda c: c.update(members=c["members"] + 1),
    "format version": lambda c: c.update(format_version=99),
}


@pytest.mark.parametrize("edit", sorted(LATENCY_EDITS))
def test_tampered_latency_config_is_refused(edit, tmp_path):
    d = _copy(LATENCY, tmp_path)
    _edit(d, LATENCY_EDITS[edit])
    with pytest.raises(CheckpointError) as e:
        _load_latency(d)
    assert "\n" not in str(e.value)


CELL_EDITS = {
    "null config": lambda c: NULL,
    "missing space": lambda c: c.pop("space"),
    "space unknown": lambda c: c.update(space="nb999"),
    "tokenizer without style": lambda c: c.update(tokenizer="cell"),
    "members text": lambda c: c.update(members="3"),
    "y_scale 0": lambda c: c.update(y_scale=0),
    "net width 0": lambda c: c["net"].update(width=0),
    "train epochs 0": lambda c: c["train"].update(epochs=0),
    "train unknown key": lambda c: c["train"].update(bogus=1),
}


@pytest.mark.parametrize("edit", sorted(CELL_EDITS))
def test_tampered_cell_config_is_refused(edit, tmp_path):
    d = _copy(CELL, tmp_path)
    _edit(d, CELL_EDITS[edit])
    with pytest.raises(CheckpointError):
        load_cell_predictor(d)


def test_weights_that_are_not_a_regular_file_or_not_finite(tmp_path):
    d = _copy(LATENCY, tmp_path)
    (d / "model.safetensors").unlink()
    os.mkfifo(d / "model.safetensors")  # reading a FIFO would block forever
    with pytest.raises(CheckpointError, match="not a regular file"):
        _load_latency(d)
    d2 = _copy(CELL, tmp_path / "c")
    from safetensors.torch import load_file, save_file

    t = load_file(str(d2 / "model.safetensors"))
    k = next(iter(t))
    t[k] = t[k].clone().fill_(float("nan"))
    save_file(t, str(d2 / "model.safetensors"))
    with pytest.raises(CheckpointError, match="NaN"):
        load_cell_predictor(d2)
    (d2 / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_cell_predictor(d2)


def test_untouched_copies_still_load(tmp_path):
    assert _load_latency(_copy(LATENCY, tmp_path)).members_
    assert load_cell_predictor(_copy(CELL, tmp_path / "c")).members_


def test_missing_directory_is_an_archcast_error(tmp_path):
    with pytest.raises(ArchcastError):
        _load_latency(tmp_path / "nope")
