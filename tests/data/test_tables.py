"""CSV tables: one reader and one header check for training and prediction, numeric names matched by value."""

import pathlib

import pytest

from dlimaging.data.tables import check_header, column_key, find_columns, read_table


def test_numeric_names_match_by_value_and_text_names_as_written():
    assert column_key(" 1000 ") == column_key("1000.0") == column_key("1e3") == column_key(1000) == 1000.0
    assert column_key(" glucose ") == "glucose" and column_key("nan") == "nan"  # not a finite number: a name
    header = ["id", "1000.0", "1100", "Glucose", "4000.00001"]
    assert find_columns(header, ["1100.0", 1000, "id", "glucose", "4000.00001", "4000.001"]) == [2, 1, 0, None, 4, None]


@pytest.mark.parametrize("header, match", [
    (["y", "1000", "1000"], r"\['1000'\] more than once"),
    (["y", "1000", "1e3", "1000.0"], r"\['1000', '1000.0', '1e3'\] more than once \(numbers are compared by value"),
    (["y", "a", " a"], r"\[' a', 'a'\] more than once"),
    (["y", "", "b"], r"column 2 of the header row has no name"),
])
def test_a_header_names_each_column_once(header, match):
    with pytest.raises(ValueError, match=r"^`source` 's\.csv': .*" + match):
        check_header(header, "`source` 's.csv'")
    check_header(["y", "1000", "1000.5", "a", "A"], "`source` 's.csv'")  # different columns


def test_read_table_skips_blank_lines_and_counts_rows_as_the_file_does(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("\ufeffid, 1000 ,1100\n\na,1,2\n,,\nb,3,4\n")
    header, lines, rows = read_table(path, "`source` 't.csv'")
    assert header == ["id", "1000", "1100"] and lines == [3, 5] and rows == [["a", "1", "2"], ["b", "3", "4"]]
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ValueError, match=r"'t\.csv' is not a CSV text file \(it is not UTF-8\)"):
        read_table(path, "`source` 't.csv'")
    path.write_text("1,2\n3,4\n")
    with pytest.raises(ValueError, match=r"needs a header row: its first row is all numbers \(1, 2\)"):
        read_table(path, "`source` 't.csv'", named_header=True)
    assert read_table(path, "Input 't.csv'")[0] == ["1", "2"]  # a prediction file's header may be all numbers
    with pytest.raises(ValueError, match=r"Input 'none\.csv': no such CSV file"):
        read_table(pathlib.Path(tmp_path / "none.csv"), "Input 'none.csv'")
