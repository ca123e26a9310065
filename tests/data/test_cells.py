"""The synthetic `cells` source: images and masks, options, classes."""

import numpy as np
import pytest

from dlimaging.data.cells import generate_cells, parse_options
from dlimaging.errors import InputError


def test_cells_are_seeded_touching_and_noisier_with_noise():
    x, masks = generate_cells(count=3, size=48, noise=0.0, seed=1)
    again, same = generate_cells(count=3, size=48, noise=0.0, seed=1)
    np.testing.assert_array_equal(x, again)
    assert x.shape == (3, 48, 48, 1) and masks.shape == (3, 48, 48) and set(np.unique(masks)) == {0, 1}
    assert 0.05 < masks.mean() < 0.6
    assert x[masks == 1].mean() > x[masks == 0].mean() + 0.2  # cells are brighter than the background
    # dim cells, glows of cells out of focus and uneven light: no one threshold separates cells from background
    assert np.percentile(x[masks == 1], 5) < np.percentile(x[masks == 0], 99)
    noisy, _ = generate_cells(count=3, size=48, noise=0.5, seed=1)
    assert np.std(noisy - x) > 0.05
    _, three = generate_cells(count=3, size=48, seed=1, classes=3)
    assert set(np.unique(three)) == {0, 1, 2}
    np.testing.assert_array_equal(three > 0, masks > 0)  # the boundary is cut from the cells


@pytest.mark.parametrize("source, message", [
    ("cells:radius=3", r"'radius=3' is not an option of cells"),
    ("cells:noise=x", r"noise must be a number"),
    ("cells:classes=4", r"classes must be 2 .* or 3"),
    ("cells:size=4", r"`size`"),
    ("cells:noise=0.6-0.1", r"a noise range runs from low to high. Received: noise=0.6-0.1"),
    ("cells:noise=0.1-3", r"`noise` must be"),
    ("cells:noise=0.1-x", r"noise must be a number or a range low-high"),
])
def test_bad_options_are_named(source, message):
    with pytest.raises(InputError, match=message):
        parse_options(source)


def test_a_noise_range_gives_each_image_its_own_level():
    assert parse_options("cells:noise=0.1-0.6")["noise"] == (0.1, 0.6)
    clean, _ = generate_cells(count=6, size=32, noise=0.0, seed=2)
    mixed, masks = generate_cells(count=6, size=32, noise=(0.05, 0.8), seed=2)
    _, same = generate_cells(count=6, size=32, noise=0.3, seed=2)
    np.testing.assert_array_equal(masks, same)               # the cells do not depend on the noise
    spread = [float(np.std(m - c)) for m, c in zip(mixed, clean)]
    assert max(spread) > 2 * min(spread)                     # light and heavy noise in one set
    again, _ = generate_cells(count=6, size=32, noise=(0.05, 0.8), seed=2)
    np.testing.assert_array_equal(mixed, again)
