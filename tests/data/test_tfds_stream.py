"""Issue 19, section 2: `tfds:` sources stream (never converted to numpy), split by a seeded,
stratified split on the examples' positions, cached as `cache` says (mocked data, offline)."""

import numpy as np
import pytest

from dlimaging.data.dataset import load_dataset
from dlimaging.errors import InputError

tfds = pytest.importorskip("tensorflow_datasets")


def _load(**kwargs):
    with tfds.testing.mock_data(num_examples=20):
        return load_dataset("tfds:mnist", batch_size=8, **kwargs)


def _all(dataset):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def test_tfds_streams_without_numpy_and_splits_by_seed(monkeypatch):
    monkeypatch.setattr(tfds, "as_numpy", lambda *a, **k: pytest.fail("tfds data converted to numpy"))
    data = _load(validation_split=0.25, seed=3, cache="none")
    assert data.arrays == {} and data.cache == "none" and "Cache: none" in data.cache_note
    assert (data.num_train, data.num_validation, data.num_test) == (15, 5, 20)  # the set's own test split
    train, validation = data.items["train"], data.items["validation"]
    assert sorted(train + validation) == sorted(f"train[{i}]" for i in range(20)) and not set(train) & set(validation)
    assert data.items["test"] == [f"test[{i}]" for i in range(20)]
    x, y = _all(data.train)
    assert x.shape == (15, 28, 28, 1) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == np.int64
    assert _all(data.validation)[0].shape[0] == 5 and _all(data.test)[0].shape[0] == 20
    assert _load(validation_split=0.25, seed=3, cache="none").items == data.items
    assert _load(validation_split=0.25, seed=4, cache="none").items != data.items


def test_tfds_resizes_caches_and_refuses_in_one_line():
    data = _load(image_size=(8, 8), cache="memory")
    assert data.input_shape == (8, 8, 1) and data.cache == "memory"
    assert _all(data.train)[0].shape[1:] == (8, 8, 1)
    with pytest.raises(InputError, match="`cache` must be one of"):
        _load(cache="ram")
    with pytest.raises(InputError, match=r"validation_split=0.01 gives 0 samples"):
        _load(validation_split=0.01)
    with pytest.raises(InputError, match="needs a dataset name"):
        load_dataset("tfds:")
