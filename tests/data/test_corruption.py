"""The corruption spec (checked without TensorFlow) and the ops that apply it."""

import subprocess
import sys

import numpy as np
import pytest

from dlimaging.data.corruption import (
    CORRUPTIONS,
    MAX_NOISE_RATIO,
    blur_radius,
    check_corruption,
    check_for_patch,
    check_for_range,
    check_for_samples,
    describe,
    gaussian_kernel,
    motion_kernel,
)
from dlimaging.errors import InputError


def test_the_spec_is_filled_in_and_a_list_is_kept_in_order():
    steps = check_corruption([{"kind": "blur", "kernel": "motion", "length": 5},
                              {"kind": "gaussian", "sigma": [0.0, 0.2]}])
    assert steps[0] == {"kind": "blur", "kernel": "motion", "length": 5.0, "angle": 0.0}  # a motion blur has no width
    assert steps[1] == {"kind": "gaussian", "sigma": (0.0, 0.2)}
    assert describe(steps) == "blur kernel=motion length=5 angle=0, then gaussian sigma=[0, 0.2]"
    assert check_corruption({"kind": "poisson", "peak": 30}) == ({"kind": "poisson", "peak": 30.0},)


@pytest.mark.parametrize("spec, match", [
    ({"kind": "gaussian", "sigma": -0.1}, r"`corruption.sigma` must be >= 0. Received: corruption.sigma=-0.1"),
    ({"kind": "gaussian", "sigma": [0.2, 0.1]}, r"low <= high"),
    ({"kind": "gaussian", "sigma": [0.1, 0.2, 0.3]}, r"a number or a range"),
    ({"kind": "gaussian"}, r"needs `sigma`"),
    ({"kind": "gaussian", "sigma": "a lot"}, r"`corruption.sigma` must be a finite number"),
    ({"kind": "speckle", "sigma": 0.1}, r"`corruption.kind` must be one of 'gaussian', .*Received: corruption.kind='speckle'"),
    ({"sigma": 0.1}, r"Received: corruption.kind=None"),
    ({"kind": "poisson", "peak": 0}, r"`corruption.peak` must be > 0"),
    ({"kind": "gaussian", "sigma": 0.1, "peak": 3}, r"takes 'sigma', not 'peak'"),
    ({"kind": "blur", "kernel": "box"}, r"`corruption.kernel` must be one of 'gaussian', 'motion'"),
    ({"kind": "blur", "kernel": "gaussian", "length": 5}, r"a 'gaussian' blur takes width, not 'length'"),
    ({"kind": "baseline", "amplitude": float("nan")}, r"finite number"),
    ([{"kind": "gaussian", "sigma": 0.1}, {"kind": "blur", "width": -1}], r"`corruption\[1\].width` must be > 0"),
    ([], r"non-empty list"),
    # Applied in float32: beyond its range, noise and counts are inf (issue 21).
    ({"kind": "gaussian", "sigma": 1e39}, r"`corruption.sigma` must be a finite number \(within float32's ±3\.403e\+38\)"),
    ({"kind": "poisson", "peak": 1e39}, r"`corruption.peak` must be a finite number \(within float32's"),
    ({"kind": "baseline", "amplitude": 1e300}, r"`corruption.amplitude` must be a finite number \(within float32's"),
    ("gaussian", r"must be a dict"),
])
def test_bad_specs_are_refused_naming_the_value(spec, match):
    with pytest.raises(InputError, match=match):
        check_corruption(spec)


@pytest.mark.parametrize("spec", [
    {"kind": "gaussian", "sigma": 0.1}, {"kind": "gaussian", "sigma": [0, 0.2]}, {"kind": "poisson", "peak": 30},
    {"kind": "blur"}, {"kind": "blur", "width": 2}, {"kind": "blur", "kernel": "motion"},
    {"kind": "blur", "kernel": "motion", "length": 7, "angle": 390}, {"kind": "baseline", "amplitude": 0.3},
    [{"kind": "blur", "kernel": "motion", "length": 7, "angle": 30}, {"kind": "gaussian", "sigma": 0.01}],
])
def test_a_checked_spec_passes_the_check_again_unchanged(spec):
    # The experiment schema checks a spec, and load_dataset checks what it stored once more: a
    # motion blur filled in with the Gaussian kernel's width was refused by the second check.
    steps = check_corruption(spec)
    assert check_corruption(steps) == steps
    assert check_corruption(list(steps), "again") == steps
    assert all(set(step) == {"kind", *CORRUPTIONS[step["kind"]].parameters} - (
        {"width"} if step.get("kernel") == "motion" else {"length", "angle"} if step["kind"] == "blur" else set())
        for step in steps)


def test_a_blur_wider_than_the_patch_is_refused_naming_both():
    with pytest.raises(InputError, match=r"a 'gaussian' blur of width=20 reaches 60 pixels to each side, wider "
                                         r"than the patch \(patch_size=32\).*a patch_size of at least 60"):
        check_for_patch(check_corruption({"kind": "blur", "width": 20}), 32)
    with pytest.raises(InputError, match=r"'motion' blur of length=41 reaches 21 pixels.*patch_size=16"):
        check_for_patch(check_corruption([{"kind": "gaussian", "sigma": 0.1},
                                          {"kind": "blur", "kernel": "motion", "length": 41}]), 16)
    for spec, patch in (({"kind": "blur", "width": 5.3}, 16), ({"kind": "blur", "kernel": "motion", "length": 32}, 16),
                        ({"kind": "gaussian", "sigma": 0.1}, 1)):
        check_for_patch(check_corruption(spec), patch)  # a mirrored border as wide as the patch works
    for width in (0.1, 1.0, 5.3):
        assert len(gaussian_kernel(width, 3)) == 2 * blur_radius({"kernel": "gaussian", "width": width}) + 1
    for length in (1, 6, 7):
        assert len(motion_kernel(length, 0)) == 2 * blur_radius({"kernel": "motion", "length": length}) + 1


def test_kinds_that_do_not_apply_to_the_samples_are_refused():
    with pytest.raises(InputError, match=r"'baseline' corruption applies to signals .* holds images"):
        check_for_samples(check_corruption({"kind": "baseline", "amplitude": 0.1}), 3, "skimage")
    with pytest.raises(InputError, match=r"a motion blur applies to images .* holds signals"):
        check_for_samples(check_corruption({"kind": "blur", "kernel": "motion"}), 2, "spectra")
    with pytest.raises(InputError, match=r"'baseline' corruption applies to signals .* holds volumes \(depth, "):
        check_for_samples(check_corruption({"kind": "baseline", "amplitude": 0.1}), 4, "blobs3d")
    for kind in ("gaussian", "poisson", "blur"):
        assert set(CORRUPTIONS[kind].ranks) == {2, 3, 4}
    check_for_samples(check_corruption({"kind": "blur", "kernel": "motion"}), 4, "blobs3d")  # in each slice


def test_noise_absurd_for_the_data_range_is_refused():
    """Issue 21: σ = 1e39 gave inf patches; a σ or an amplitude above MAX_NOISE_RATIO times the data's
    range drowns the signal, and a Poisson peak whose counts overflow float32 gives NaN."""
    assert MAX_NOISE_RATIO == 10
    fine = [{"kind": "gaussian", "sigma": [0, 10.0]}, {"kind": "baseline", "amplitude": 5.0},
            {"kind": "poisson", "peak": 1e30}]
    check_for_range(check_corruption(fine[:1]), 1.0, "skimage")
    check_for_range(check_corruption(fine[1:]), 0.5, "spectra")
    for spec, max_val, match in [
        ({"kind": "gaussian", "sigma": 1e30}, 1.0, r"`corruption.sigma` must be at most 10 times the data's range "
                                                   r"\(max_val=1 for `source` 's'\).*Received: corruption.sigma=1e\+30"),
        ([{"kind": "blur"}, {"kind": "gaussian", "sigma": [0, 30]}], 2.0, r"`corruption\[1\].sigma` .*=\[0, 30\]"),
        ({"kind": "baseline", "amplitude": 6.0}, 0.5, r"`corruption.amplitude` must be at most 10 times"),
        ({"kind": "poisson", "peak": 1e30}, 1e-10, r"`corruption.peak` over the data's white \(max_val=1e-10\) must be "
                                                     r"within float32's range"),
    ]:
        with pytest.raises(InputError, match=match):
            check_for_range(check_corruption(spec), max_val, "s")


def test_the_spec_module_imports_no_tensorflow():
    code = "import sys, dlimaging.data.corruption; print('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_kernels_are_normalised_and_shaped():
    k = gaussian_kernel(1.0, 3)
    assert k.shape == (7, 7) and np.isclose(k.sum(), 1.0) and k[3, 3] == k.max()
    assert gaussian_kernel(2.0, 2).shape == (13,)
    line = motion_kernel(5, 0)
    assert np.isclose(line.sum(), 1.0)
    assert np.count_nonzero(line.sum(axis=1) > 1e-6) == 1 and np.count_nonzero(line.sum(axis=0) > 1e-6) == 5
    assert np.allclose(motion_kernel(5, 90), line.T, atol=1e-6)


# ---------------------------------------------------------------- the ops (TensorFlow)


def _corrupt(x, spec, seed=(1, 2), max_val=1.0):
    from dlimaging.data.degrade import corrupt

    return corrupt(np.asarray(x, "float32"), check_corruption(spec), np.asarray(seed, "int64"), max_val).numpy()


def test_gaussian_noise_has_the_sigma_asked_for_and_a_range_draws_per_sample():
    x = np.full((64, 64, 1), 0.5)
    for sigma in (0.05, 0.2):
        assert abs(np.std(_corrupt(x, {"kind": "gaussian", "sigma": sigma}) - x) - sigma) < 0.01 * sigma + 0.002
    stds = [np.std(_corrupt(x, {"kind": "gaussian", "sigma": [0.0, 0.3]}, seed=(s, 0)) - x) for s in range(20)]
    assert 0.0 <= min(stds) < 0.1 and 0.2 < max(stds) <= 0.31
    # Stateless: the same seed, the same draw; another seed, another draw.
    assert np.array_equal(_corrupt(x, {"kind": "gaussian", "sigma": 0.1}), _corrupt(x, {"kind": "gaussian", "sigma": 0.1}))
    assert not np.array_equal(_corrupt(x, {"kind": "gaussian", "sigma": 0.1}, seed=(3, 4)),
                              _corrupt(x, {"kind": "gaussian", "sigma": 0.1}))


def test_poisson_variance_is_the_value_times_max_val_over_peak():
    for value, peak, max_val in ((0.5, 20, 1.0), (0.2, 100, 1.0), (2.0, 10, 4.0)):
        x = np.full((128, 128, 1), value)
        y = _corrupt(x, {"kind": "poisson", "peak": peak}, max_val=max_val)
        assert abs(y.mean() - value) < 0.02 * value
        assert abs(y.var() / (value * max_val / peak) - 1) < 0.05
        counts = y * peak / max_val
        assert np.allclose(counts, np.round(counts), atol=1e-3)  # whole counts


@pytest.mark.parametrize("spec", [{"kind": "blur", "width": 1.5}, {"kind": "blur", "kernel": "motion", "length": 7, "angle": 30}])
def test_a_blurred_delta_is_the_kernel_and_a_flat_image_stays_flat(spec):
    from dlimaging.data.corruption import blur_kernel

    delta = np.zeros((25, 25, 2))
    delta[12, 12] = 1
    y = _corrupt(delta, spec)
    kernel = blur_kernel(check_corruption(spec)[0], 3)
    r = kernel.shape[0] // 2
    for channel in (0, 1):
        assert np.allclose(y[12 - r:13 + r, 12 - r:13 + r, channel], kernel, atol=1e-6)
    assert np.isclose(y.sum(), 2.0, atol=1e-5)
    assert np.allclose(_corrupt(np.full((9, 9, 1), 0.3), spec), 0.3, atol=1e-6)


def test_a_volume_is_blurred_in_each_slice_and_noised_everywhere():
    volume = np.zeros((3, 9, 9, 1))
    volume[1, 4, 4, 0] = 1.0  # a delta in the middle slice
    blurred = _corrupt(volume, {"kind": "blur", "width": 1.0})
    np.testing.assert_allclose(blurred[1], _corrupt(volume[1], {"kind": "blur", "width": 1.0}), atol=1e-6)
    assert not blurred[0].any() and not blurred[2].any()  # nothing leaks across slices
    noisy = _corrupt(volume, {"kind": "gaussian", "sigma": 0.1})
    assert noisy.shape == volume.shape and np.std(noisy - volume) > 0.05


def test_signals_get_a_1d_blur_and_a_smooth_baseline():
    delta = np.zeros((41, 1))
    delta[20] = 1
    y = _corrupt(delta, {"kind": "blur", "width": 2.0})[:, 0]
    assert np.allclose(y[14:27], gaussian_kernel(2.0, 2), atol=1e-6)
    base = _corrupt(np.zeros((100, 1)), {"kind": "baseline", "amplitude": 0.3})[:, 0]
    assert np.abs(base).max() <= 0.3 * 3 and np.abs(base).max() > 0.01
    assert np.abs(np.diff(base, 2)).max() < 1e-3  # a quadratic: smooth, unlike noise


# ---------------------------------------------------------------- in tuning files


def test_tuning_files_take_a_corruption_and_check_it_against_the_task():
    import pathlib

    import tomllib

    from dlimaging.tuning.experiment import parse_experiment

    path = pathlib.Path(__file__).resolve().parents[2] / "tuning" / "denoise_unet.toml"
    experiment = parse_experiment(tomllib.loads(path.read_text()), path="denoise_unet.toml")
    assert experiment.data.corruption == ({"kind": "gaussian", "sigma": (25 / 255, 25 / 255)},)
    assert (experiment.data.patch_size, experiment.tuner.objective) == (64, "val_psnr")
    base = {"name": "t", "data": {"source": "skimage"}, "model": {"family": "unet", "task": "restoration"}}
    with pytest.raises(InputError, match=r"t.toml: \[data\] corruption: is required for task \"restoration\""):
        parse_experiment(base, path="t.toml")
    bad = {**base, "data": {"source": "skimage", "corruption": {"kind": "gaussian", "sigma": -1}}}
    with pytest.raises(InputError, match=r"t.toml: \[data\] corruption: `corruption.sigma` must be >= 0. Received: corruption.sigma=-1"):
        parse_experiment(bad, path="t.toml")
    digits = {"name": "t", "data": {"source": "digits", "patch_size": 8}}
    with pytest.raises(InputError, match=r"\[data\] patch_size: applies to \[model\] task \"restoration\" or \"segmentation\", not \"classification\""):
        parse_experiment(digits, path="t.toml")
