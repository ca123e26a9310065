"""The explain figures on inputs the CNN figures don't cover: a vector of features, and a map that does not fit."""

import numpy as np
import pytest

from dlimaging import plots
from dlimaging.errors import InputError


def test_the_saliency_of_a_vector_is_one_band_cell_per_feature(tmp_path):
    x, heat = np.array([0.1, -0.2, 0.6, 0.1, -0.5, 0.3]), np.linspace(0.0, 1.0, 6)
    fig = plots.saliency_figure(x, heat)
    band = fig.axes[0].get_images()[0]
    assert band.get_array().shape == (1, 6)
    assert band.get_extent()[:2] == [-0.5, 5.5]  # each cell centred on its feature
    assert fig.axes[0].get_xlim() == (0.0, 5.0)
    assert plots.plot_saliency(x[:, None], heat, tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("x, heat", [(np.zeros(6), np.float32(1.0)), (np.zeros((40, 1)), np.zeros(20)),
                                     (np.zeros((8, 8, 1)), np.zeros((4, 4)))])
def test_a_map_that_does_not_fit_the_input_is_refused(x, heat):
    with pytest.raises(InputError, match=r"map must have the input's size .* Received: a map of shape"):
        plots.saliency_figure(x, heat)
