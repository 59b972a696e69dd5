"""Decoding mlperf_log_accuracy.json (records/accuracy.py): edge cases of real-format logs.

Each record is what LoadGen writes: {"seq_id", "qsl_idx", "data"} with ``data`` the response
bytes in hex; our responses are one little-endian int32 label.
"""

import json
import struct
from pathlib import Path

import pytest

from common.errors import HarnessError
from dataset.val_map import Sample
from records.accuracy import read_accuracy_log, top1

SAMPLES = [Sample(f"img{i}.JPEG", i % 3) for i in range(5)]


def _hex(label: int) -> str:
    return struct.pack("<i", label).hex().upper()


def _log(tmp_path: Path, records: object) -> Path:
    path = tmp_path / "mlperf_log_accuracy.json"
    path.write_text(json.dumps(records))
    return path


def _rec(idx: int, data: str, seq: int = 0) -> dict:
    return {"seq_id": seq, "qsl_idx": idx, "data": data}


def test_negative_label_counts_as_wrong(tmp_path: Path) -> None:
    path = _log(tmp_path, [_rec(0, _hex(0)), _rec(1, _hex(-1)), _rec(2, _hex(2))])
    labels = read_accuracy_log(path)
    assert labels == {0: 0, 1: -1, 2: 2}
    result = top1(labels, SAMPLES, str(path))
    assert (result.good, result.total) == (2, 3)
    assert result.line() == "accuracy=66.667%, good=2, total=3"


def test_short_record_names_the_sample(tmp_path: Path) -> None:
    path = _log(tmp_path, [_rec(0, _hex(0)), _rec(3, "0100")])
    with pytest.raises(HarnessError) as err:
        read_accuracy_log(path)
    assert "sample 3" in str(err.value) and "2-byte" in str(err.value) and str(path) in str(err.value)


def test_empty_response_of_a_failed_sample_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match="sample 4 has a 0-byte response"):
        read_accuracy_log(_log(tmp_path, [_rec(4, "")]))


def test_repeated_sample_with_equal_labels_is_counted_once(tmp_path: Path) -> None:
    path = _log(tmp_path, [_rec(1, _hex(1), 0), _rec(1, _hex(1).lower(), 1), _rec(2, _hex(0), 2)])
    labels = read_accuracy_log(path)
    assert labels == {1: 1, 2: 0}
    assert (top1(labels, SAMPLES).good, top1(labels, SAMPLES).total) == (1, 2)


def test_repeated_sample_with_different_labels_is_an_error(tmp_path: Path) -> None:
    path = _log(tmp_path, [_rec(1, _hex(1), 0), _rec(2, _hex(2), 1), _rec(1, _hex(2), 2)])
    with pytest.raises(HarnessError) as err:
        read_accuracy_log(path)
    assert "sample 1" in str(err.value) and "different labels" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize("idx", [5, 1000, -1])
def test_out_of_range_index_names_it(tmp_path: Path, idx: int) -> None:
    path = _log(tmp_path, [_rec(0, _hex(0)), _rec(idx, _hex(1))])
    labels = read_accuracy_log(path)
    with pytest.raises(HarnessError) as err:
        top1(labels, SAMPLES, str(path))
    assert f"qsl_idx {idx}" in str(err.value) and str(path) in str(err.value)
    assert "0..4" in str(err.value)


@pytest.mark.parametrize("records", [
    [{"qsl_idx": 0}],                                 # no data
    [{"seq_id": 0, "data": "00000000"}],              # no qsl_idx
    [_rec(0, "zz00zz00")],                            # not hex
    [_rec(0, "0000000")],                             # odd number of hex digits
    [_rec("first", "00000000")],                      # index not a number
    [_rec(None, "00000000")],
    [["0", "00000000"]],                              # record not an object
    [_rec(0, "00000000"), 7],
    {"qsl_idx": 0, "data": "00000000"},               # not a list
    "00000000",
])
def test_malformed_records_name_the_file(tmp_path: Path, records: object) -> None:
    path = _log(tmp_path, records)
    with pytest.raises(HarnessError) as err:
        read_accuracy_log(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_not_json_and_missing_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mlperf_log_accuracy.json"
    path.write_text('[{"qsl_idx": 0, "data": "00000000"},\n')
    with pytest.raises(HarnessError, match=f"{path}:2: not valid JSON"):
        read_accuracy_log(path)
    with pytest.raises(HarnessError, match="absent.json: accuracy log missing"):
        read_accuracy_log(tmp_path / "absent.json")
