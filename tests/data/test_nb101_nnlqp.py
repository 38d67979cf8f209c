import base64
import json
import struct
from pathlib import Path

import pytest

from archcast.data.nasbench101 import (
    Nb101Record,
    crc32c,
    iter_tfrecord,
    load_nasbench101,
    read_nasbench101,
    write_nasbench101_jsonl,
    write_tfrecord,
)
from archcast.data.nnlqp import NnlqpRecord, read_nnlqp, write_nnlqp
from archcast.errors import InvalidInputError

M5 = [[0, 1, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
OPS5 = ["input", "conv3x3-bn-relu", "maxpool3x3", "conv1x1-bn-relu", "output"]


def _records() -> list[Nb101Record]:
    return [
        Nb101Record(M5, OPS5, 0.90, 0.89, module_hash="a", epochs=108),
        Nb101Record(M5, OPS5, 0.92, 0.91, module_hash="a", epochs=108),  # a repeat
        Nb101Record([[0, 1], [0, 0]], ["input", "output"], 0.5, 0.6, module_hash="b", epochs=108),
        Nb101Record([[0, 1], [0, 0]], ["input", "output"], 0.1, 0.1, module_hash="b", epochs=4),
    ]


def test_crc32c_known_value():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value


def test_jsonl_round_trip_and_load(tmp_path):
    p = tmp_path / "nb101.jsonl"
    write_nasbench101_jsonl(p, _records())
    assert read_nasbench101(p) == _records()
    ds = load_nasbench101(p)
    assert len(ds) == 2 and ds.space == "nb101"
    assert ds.y.tolist() == pytest.approx([91.0, 50.0])  # mean of repeats, percent; epochs=4 dropped
    assert ds.keys[0] == ds.graphs[0].meta["arch"] and len(ds.graphs[0].nodes) == 5
    assert load_nasbench101(p, "final_validation_accuracy", epochs=None).y.tolist() == pytest.approx([90.0, 35.0])


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r":1: not valid JSON"),
        ('{"module_adjacency": [[0,1],[0,0]], "module_operations": ["input","output"], "final_test_accuracy": 0.5}',
         ":1: missing final_validation_accuracy"),
        ('{"module_adjacency": [[0,1],[0,0]], "module_operations": ["input","output"], "final_test_accuracy": 93.1, "final_validation_accuracy": 0.9}',
         "final_test_accuracy=93.1; accuracies must be fractions"),
    ],
)
def test_bad_jsonl_lines(tmp_path, line, message):
    p = tmp_path / "bad.jsonl"
    p.write_text(line + "\n")
    with pytest.raises(InvalidInputError, match=message):
        read_nasbench101(p)


def test_bad_cell_in_jsonl_names_the_record(tmp_path):
    p = tmp_path / "bad.jsonl"
    write_nasbench101_jsonl(p, [Nb101Record([[0, 1], [0, 0]], ["input", "conv9x9"], 0.5, 0.5)])
    with pytest.raises(InvalidInputError, match="record 0: NB101 ops must start with 'input' and end with 'output'"):
        load_nasbench101(p)


# ---- TFRecord: protobuf written by hand (field numbers from NAS-Bench-101's model_metrics.proto)
def _varint(v: int) -> bytes:
    out = b""
    while True:
        b, v = v & 0x7F, v >> 7
        out += bytes([b | (0x80 if v else 0)])
        if not v:
            return out


def _double(field: int, v: float) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<d", v)


def _metrics(train: float, valid: float, test: float, params: int) -> bytes:
    def evaluation(epoch, tr, va, te):
        body = _double(1, epoch) + _double(2, 100.0) + _double(3, tr) + _double(4, va) + _double(5, te)
        return _varint(1 << 3 | 2) + _varint(len(body)) + body
    return (evaluation(0, 0.1, 0.1, 0.1) + evaluation(108, train, valid, test)
            + _varint(2 << 3 | 0) + _varint(params) + _double(3, 1234.5))


def test_tfrecord_records(tmp_path):
    adj = "".join(str(v) for row in M5 for v in row)
    payloads = [
        json.dumps(["h1", 108, adj, ",".join(OPS5), base64.b64encode(_metrics(1.0, 0.93, 0.92, 123456)).decode()]).encode(),
        json.dumps(["h1", 108, adj, ",".join(OPS5), base64.b64encode(_metrics(1.0, 0.95, 0.94, 123456)).decode()]).encode(),
    ]
    p = tmp_path / "nasbench_only108.tfrecord"
    write_tfrecord(p, payloads)
    assert list(iter_tfrecord(p, verify_data_crc=True)) == payloads
    recs = read_nasbench101(p, verify_crc=True)
    assert recs[0].module_adjacency == M5 and recs[0].module_operations == OPS5
    assert (recs[0].final_test_accuracy, recs[0].final_validation_accuracy, recs[0].final_train_accuracy) == (0.92, 0.93, 1.0)
    assert recs[0].trainable_parameters == 123456 and recs[0].final_training_time == 100.0
    ds = load_nasbench101(p)
    assert len(ds) == 1 and ds.y[0] == pytest.approx(93.0)


def test_tfrecord_corruption_is_reported(tmp_path):
    p = tmp_path / "x.tfrecord"
    write_tfrecord(p, [b'["h", 108, "0100", "input,output", ""]'])
    raw = bytearray(p.read_bytes())
    raw[-6] ^= 0xFF  # flip a data byte
    p.write_bytes(bytes(raw))
    with pytest.raises(InvalidInputError, match="bad data CRC"):
        list(iter_tfrecord(p, verify_data_crc=True))
    p.write_bytes(b"garbage that is no tfrecord")
    with pytest.raises(InvalidInputError, match="bad length CRC"):
        read_nasbench101(p)


# ---- NNLQP gt.txt
def test_nnlqp_round_trip(tmp_path):
    (tmp_path / "onnx").mkdir()
    recs = [
        NnlqpRecord(0, tmp_path / "onnx" / "resnet18_0.onnx", 1, 3.25, "resnet18", 2, "train"),
        NnlqpRecord(1, tmp_path / "onnx" / "vgg16_0.onnx", 8, 41.0, "vgg16", 2, "test"),
        NnlqpRecord(2, tmp_path / "onnx" / "vgg16_1.onnx", 4, 0.5, "vgg16", 3, None),
    ]
    gt = write_nnlqp(tmp_path, recs)
    assert gt.read_text().splitlines()[0] == "0 onnx/resnet18_0.onnx 1 3.25 resnet18 2 train"
    back = read_nnlqp(tmp_path)
    assert back == [NnlqpRecord(r.graph_id, r.onnx_path.resolve(), r.batch_size, r.latency_ms, r.model_type,
                                r.platform_id, r.split) for r in recs]
    assert read_nnlqp(gt) == back


@pytest.mark.parametrize(
    "line, message",
    [
        ("1 a.onnx 1 2.0 resnet", "gt.txt:2: 5 fields in '1 a.onnx 1 2.0 resnet'; expected 6 or 7"),
        ("x a.onnx 1 2.0 resnet 1", "gt.txt:2: GraphID, BatchSize, PlatformId must be integers"),
        ("1 a.onnx 1 fast resnet 1", "gt.txt:2: .*Latency_ms a number in '1 a.onnx 1 fast resnet 1'"),
        ("1 a.onnx 0 2.0 resnet 1", "gt.txt:2: BatchSize must be >= 1"),
        ("1 a.onnx 1 -2.0 resnet 1", "Latency_ms > 0"),
        ("1 a.onnx 1 2.0 resnet 1 val", "gt.txt:2: split 'val'.*valid: train, test"),
    ],
)
def test_nnlqp_bad_lines(tmp_path, line, message):
    (tmp_path / "gt.txt").write_text("0 a.onnx 1 1.0 resnet 1 train\n" + line + "\n")
    with pytest.raises(InvalidInputError, match=message):
        read_nnlqp(tmp_path)


def test_nnlqp_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="has no gt.txt"):
        read_nnlqp(tmp_path)


def test_iter_nnlqp_graphs(tmp_path):
    pytest.importorskip("archcast.frontends.onnx")
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    from archcast.data.nnlqp import iter_nnlqp_graphs

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(graph), str(tmp_path / "relu.onnx"))
    write_nnlqp(tmp_path, [NnlqpRecord(0, Path("relu.onnx"), 1, 0.1, "relu", 0, "train")])
    [(rec, g)] = list(iter_nnlqp_graphs(tmp_path))
    assert rec.graph_id == 0 and [n.op_type for n in g.nodes] == ["Relu"]
