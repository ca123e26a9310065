"""Models saved by dlimaging 0.1.0 still load, after `import dlimaging` alone, and give the same outputs.

The fixtures in `tests/fixtures/v0_1_0/` were saved with 0.1.0's code (see their README): a residual
CNN with augmentation and standardisation, a U-Net with its padding and cropping layers, PSNR and
SSIM, and a regression MLP with target scaling and its scaled loss. Each is loaded in a fresh
process, where nothing but `import dlimaging` can have registered dlimaging's custom objects.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "v0_1_0"
MODELS = ("cnn_residual", "unet", "mlp_regression")

LOAD = """
import json, sys
import numpy as np
import dlimaging  # alone: it must register the custom objects when Keras loads
import keras

expected = np.load(sys.argv[1])
out = {}
for stem in sys.argv[2:]:
    model = keras.saving.load_model(f"{sys.argv[1].rsplit('/', 1)[0]}/{stem}.keras")
    y = model.predict(expected[f"{stem}_x"], verbose=0)
    want = expected[f"{stem}_y"]  # relative to the outputs' scale (a regression's reach 1,322): float32 rounding
    out[stem] = float(np.max(np.abs(y - want)) / max(1.0, np.max(np.abs(want))))
print(json.dumps(out))
"""


def test_fixtures_are_small():
    assert sum(p.stat().st_size for p in FIXTURES.iterdir()) < 1_000_000


def test_models_saved_by_0_1_0_load_after_import_dlimaging_alone():
    result = subprocess.run([sys.executable, "-c", LOAD, str(FIXTURES / "expected.npz"), *MODELS],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    differences = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(differences) == set(MODELS)
    for stem, difference in differences.items():
        assert difference < 1e-5, (stem, difference)  # float32 differs by ~1e-7 of the scale across CPUs


@pytest.mark.parametrize("stem", MODELS)
def test_fixture_names_custom_objects_of_dlimaging(stem):
    """The U-Net and the MLP hold dlimaging's own classes, so the test above can fail."""
    import zipfile

    config = json.loads(zipfile.ZipFile(FIXTURES / f"{stem}.keras").read("config.json"))
    text = json.dumps(config)
    expected = {"cnn_residual": "Functional", "unet": "dlimaging>PadToMultiple",
                "mlp_regression": "dlimaging>ScaledTargetLoss"}[stem]
    assert expected in text
    assert np.load(FIXTURES / "expected.npz")[f"{stem}_y"].size > 0
