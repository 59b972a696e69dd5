"""val_map.txt and name-list parsing: one fixture file per case, errors name file and line."""

from pathlib import Path

import pytest

from dataset.val_map import Sample, check_files_exist, parse_name_list, parse_val_map
from common.errors import DatasetError

FIX = Path(__file__).parent / "fixtures" / "val_map"


def test_good_file_keeps_order_and_skips_blank_lines() -> None:
    assert parse_val_map(FIX / "good.txt", 10) == [Sample("a.JPEG", 0), Sample("b.JPEG", 5), Sample("c.JPEG", 9)]


def test_crlf_line_endings() -> None:
    assert parse_val_map(FIX / "crlf.txt", 10) == [Sample("a.JPEG", 0), Sample("b.JPEG", 5)]


@pytest.mark.parametrize("name, message", [
    ("missing_label.txt", "missing_label.txt:2: expected '<file name> <label>'"),
    ("extra_field.txt", "extra_field.txt:1: expected '<file name> <label>'"),
    ("label_out_of_range.txt", "label_out_of_range.txt:2: label 10 out of range 0..9"),
    ("label_not_int.txt", "label_not_int.txt:2: label 'x1' is not an integer"),
    ("negative.txt", "negative.txt:1: label -1 out of range"),
    ("duplicate.txt", "duplicate.txt:3: a.JPEG repeats line 1"),
    ("empty.txt", "empty.txt: no samples"),
    ("does_not_exist.txt", "does_not_exist.txt: val_map file not found"),
])
def test_bad_val_map(name: str, message: str) -> None:
    with pytest.raises(DatasetError) as err:
        parse_val_map(FIX / name, 10)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_name_list_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "a.JPEG").write_bytes(b"x")
    lst = tmp_path / "cal.txt"
    lst.write_text("a.JPEG\nb.JPEG\nc.JPEG\n")
    assert parse_name_list(lst) == ["a.JPEG", "b.JPEG", "c.JPEG"]
    with pytest.raises(DatasetError, match=r"b\.JPEG: cal file missing \(and 1 more\)"):
        check_files_exist(tmp_path, parse_name_list(lst), "cal")
