"""The synthetic spectra generator: reproducible, shaped as documented, and harder when asked."""

import numpy as np
import pytest

from dlimaging.data.spectra import DIFFICULTIES, make_spectra


def test_shapes_and_types():
    data = make_spectra(50, length=64, components=4)
    assert data.x.shape == (50, 64, 1) and data.x.dtype == np.float32
    assert data.y.shape == (50, 4) and data.y.dtype == np.float32
    assert data.axis.shape == (64,) and data.axis[0] == 4000.0 and data.axis[-1] == 400.0
    assert np.all(np.diff(data.axis) < 0)  # wavenumbers, high to low, as FTIR spectra are drawn
    assert data.pure.shape == (4, 64) and data.target_names == ["c1", "c2", "c3", "c4"]
    np.testing.assert_allclose(data.pure.max(axis=1), 1.0)  # each pure spectrum's largest peak is 1
    assert np.all(np.isfinite(data.x))


def test_targets_are_fractions_that_sum_to_1():
    data = make_spectra(200, length=32, components=3)
    assert np.all(data.y >= 0) and np.all(data.y <= 1)
    np.testing.assert_allclose(data.y.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(data.y, data.concentrations)


def test_dominant_target_is_the_largest_concentration():
    data = make_spectra(100, length=32, target="dominant")
    assert data.y.dtype == np.int64 and data.y.shape == (100,)
    np.testing.assert_array_equal(data.y, np.argmax(data.concentrations, axis=1))
    assert set(data.y) == {0, 1, 2}


def test_reproducible_by_seed_and_pure_spectra_shared_by_pure_seed():
    a = make_spectra(30, length=48, seed=5)
    b = make_spectra(30, length=48, seed=5)
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    c = make_spectra(30, length=48, seed=6)  # another test set: other samples, the same components
    assert not np.array_equal(a.x, c.x)
    np.testing.assert_array_equal(a.pure, c.pure)
    d = make_spectra(30, length=48, seed=5, pure_seed=1)
    assert not np.array_equal(a.pure, d.pure)


def test_easy_spectra_are_the_mixture_of_the_pure_spectra():
    # With almost no nuisance, each spectrum is close to concentrations @ pure: the mixture model holds.
    data = make_spectra(20, length=64, difficulty="easy")
    mixture = data.concentrations @ data.pure
    assert np.abs(data.x[..., 0] - mixture).mean() < 0.1


def _pls_rmse(difficulty):
    from sklearn.cross_decomposition import PLSRegression

    train = make_spectra(300, length=64, difficulty=difficulty, seed=0)
    test = make_spectra(200, length=64, difficulty=difficulty, seed=1)
    pls = PLSRegression(n_components=6).fit(train.x[..., 0], train.y)
    return float(np.sqrt(np.mean((pls.predict(test.x[..., 0]) - test.y) ** 2)))


def test_difficulty_raises_the_error_of_a_linear_model():
    errors = [_pls_rmse(name) for name in DIFFICULTIES]  # easy, medium, hard
    assert errors[0] < 0.03  # nearly linear: PLS is almost exact
    assert errors[1] > 3 * errors[0] and errors[2] > 1.4 * errors[1]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"samples": 0}, r"`samples` must be a positive integer. Received: samples=0"),
        ({"length": 8}, r"`length` must be an integer in \[32, inf\]. Received: length=8"),
        ({"components": 1}, r"`components` must be an integer in \[2, 16\]"),
        ({"difficulty": "extreme"}, r"`difficulty` must be one of 'easy', 'medium', 'hard'"),
        ({"target": "classes"}, r"`target` must be one of 'concentrations', 'dominant'"),
        ({"seed": -1}, r"`seed` must be an integer in \[0, 4294967295\]"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_spectra(**{"samples": 10, **kwargs})


def test_sizes_that_cannot_fit_are_refused_before_anything_is_made(monkeypatch):
    """Issue 21, class 4: `spectra:length=1000000000` ended in MemoryError, or the process died."""
    import dlimaging.data.spectra as spectra
    import dlimaging.validation as validation
    from dlimaging import load_dataset

    available = validation.available_memory()
    assert available is None or available > 0
    with pytest.raises(ValueError, match=r"^`source` 'spectra:length=1000000000': 2000 spectra of length 1000000000 "
                                         r"would need about 24\.\d TB of memory; .* is available\. Ask for fewer or "
                                         r"shorter spectra\.$"):
        load_dataset("spectra:length=1000000000")
    made = []
    monkeypatch.setattr(spectra, "_pure_spectra", lambda *args: made.append(args))
    monkeypatch.setattr(validation, "available_memory", lambda: 10**6)  # 1 MB: 100 spectra of 1000 take 1.2 MB
    with pytest.raises(ValueError, match=r"100 spectra of length 1000 would need about 1\.\d+ MB of memory; "
                                         r"1 MB is available"):
        make_spectra(100, length=1000)
    assert made == []  # refused before anything was made


def test_the_options_of_the_spectra_source_are_named_as_written():
    """Issue 21, class 6: `test_samples=0` was reported as `samples=0`."""
    from dlimaging import load_dataset

    for option in ("samples", "test_samples"):
        with pytest.raises(ValueError, match=rf"^`source` 'spectra:{option}=0': `{option}` must be a positive integer. "
                                             rf"Received: {option}=0$"):
            load_dataset(f"spectra:{option}=0")
