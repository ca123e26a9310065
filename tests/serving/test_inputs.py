"""Files in for predict: images, arrays and CSV columns matched by name, with mistakes that name the file."""

import numpy as np
import pytest

from dlimaging import serving


def _csv(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows))
    return path


def test_load_inputs_names_the_file(tmp_path):
    shape = (8, 8, 1)
    np.savez(tmp_path / "empty.npz")
    with pytest.raises(ValueError, match=r"Input '.*empty\.npz' is an empty \.npz file: it holds no array"):
        serving.load_inputs([tmp_path / "empty.npz"], shape)
    np.savez(tmp_path / "none.npz", x=np.zeros((0, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"Input '.*none\.npz' has shape \(0, 8, 8, 1\).* with N >= 1"):
        serving.load_inputs([tmp_path / "none.npz"], shape)
    np.save(tmp_path / "huge.npy", np.full(shape, 1e300))
    with pytest.raises(ValueError, match=r"Input '.*huge\.npy' holds values up to 1e\+300, beyond float32's range"):
        serving.load_inputs([tmp_path / "huge.npy"], shape)
    np.save(tmp_path / "nan.npy", np.full(shape, np.nan))
    with pytest.raises(ValueError, match=r"Input '.*nan\.npy' holds NaN or inf"):
        serving.load_inputs([tmp_path / "nan.npy"], shape)
    with pytest.raises(ValueError, match="No input given"):
        serving.load_inputs([], shape)


def test_load_inputs_scales_like_load_dataset_and_keeps_16_bit_grey_levels(tmp_path):
    from PIL import Image

    gradient = (np.arange(64).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(gradient).save(tmp_path / "g16.png")
    np.save(tmp_path / "u16.npy", gradient[..., None])
    np.save(tmp_path / "u8.npy", np.full((8, 8, 1), 255, np.uint8))
    np.save(tmp_path / "i64.npy", np.full((8, 8, 1), 300, np.int64))
    x, labels = serving.load_inputs(
        [tmp_path / name for name in ("g16.png", "u16.npy", "u8.npy", "i64.npy")], (8, 8, 1))
    assert x.dtype == np.float32 and len(labels) == 4
    np.testing.assert_allclose(x[0, ..., 0], gradient / 65535.0, atol=1e-6)  # 64 levels, not 2
    np.testing.assert_allclose(x[1, ..., 0], gradient / 65535.0, atol=1e-6)
    assert x[2].max() == 1.0 and x[3].max() == 300.0  # int64: kept as it is, as in training


def test_csv_inputs_pick_and_order_the_feature_columns_by_name(tmp_path):
    # Columns in another order than training, plus a target and an id that are not features.
    path = _csv(tmp_path / "new.csv", ["id", "1200.0", "y", "1000", "1100.00"], [["a", 3, 9, 1, 2], ["b", 6, 9, 4, 5]])
    by_axis = serving.read_csv_inputs(path, (3, 1), axis=[1000.0, 1100.0, 1200.0])
    np.testing.assert_array_equal(by_axis[..., 0], [[1, 2, 3], [4, 5, 6]])
    by_name = serving.read_csv_inputs(path, (3,), features=["1000", "1100.00", "1200.0"])
    np.testing.assert_array_equal(by_name, [[1, 2, 3], [4, 5, 6]])
    x, labels = serving.load_inputs([path], (3, 1), axis=[1000.0, 1100.0, 1200.0])
    assert x.shape == (2, 3, 1) and labels == [f"{path}[0]", f"{path}[1]"]


@pytest.mark.parametrize("header, rows, kwargs, match", [
    (["1000", "1100"], [[1, 2]], {"axis": [1000.0, 1100.0, 1200.0]},
     r"has no column '1200': the model was trained on 3 feature columns \(from '1000' to '1200'\)"),
    (["a", "b"], [[1, 2]], {"features": ["a", "c", "b"]}, r"has no column 'c'"),
    (["a", "b", "c"], [[1, "x", 3]], {}, r"row 2, column 'b' holds 'x', not a finite number"),
    (["a", "b", "c"], [[1, 2, 3], [1, 2]], {}, r"row 3: 2 cells, but the header has 3 columns"),
    (["a", "b", "c"], [[1, "nan", 3]], {}, r"row 2, column 'b' holds 'nan'"),
    (["a", "b"], [[1, 2]], {}, r"has 2 columns; the model takes 3 features and its export names no columns"),
    (["a", "b", "c"], [], {}, r"has a header row but no data rows"),
    # The header is checked as for training: a column named twice (numbers by value) is refused.
    (["1000", "1100", "1000"], [[1, 2, 3]], {"axis": [1000.0, 1100.0]}, r"names column\(s\) \['1000'\] more than once"),
    (["1000", "1100", "1e3"], [[1, 2, 3]], {"features": ["1000", "1100"]},
     r"names column\(s\) \['1000', '1e3'\] more than once"),
    (["a", "b", "a"], [[1, 2, 3]], {}, r"names column\(s\) \['a'\] more than once"),
])
def test_csv_input_mistakes_name_the_file_row_and_column(tmp_path, header, rows, kwargs, match):
    path = _csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(ValueError, match=r"Input '.*bad\.csv'.*" + match):
        serving.load_inputs([path], (3, 1), **kwargs)


def test_csv_numeric_headers_match_the_training_columns_by_value(tmp_path):
    """Issue 21: `1000.0` in a file is the training column `1000`, whether the export stored the
    header names (`features`) or the axis; text names match as written."""
    path = _csv(tmp_path / "new.csv", ["id", "1.2e3", "1000.0", "1100.000"], [["a", 3, 1, 2], ["b", 6, 4, 5]])
    for kwargs in ({"features": ["1000", "1100", "1200"]}, {"axis": [1000.0, 1100.0, 1200.0]}):
        x, _ = serving.load_inputs([path], (3, 1), **kwargs)
        np.testing.assert_array_equal(x[..., 0], [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"has no column 'ID'"):
        serving.load_inputs([path], (3,), features=["ID", "1000", "1100"])
