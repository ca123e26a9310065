"""One table-driven check for every model builder: family × input rank × task.

Like keras-hub's `run_backbone_test` and timm's model tests: each builder is
built tiny, then its output shape, a `.keras` save/reload and a SavedModel
export are checked against the model itself. The families and tasks come
from `dlimaging.registry`. Every case standardises its inputs (and scales numeric
targets) inside the model, adapted before the checks. Every case exports (none needs compiling:
`compile=False`). `VARIANTS` adds a residual, dilated CNN on every rank. A second check compiles each
family on each rank with a learning-rate schedule and label smoothing, trains two steps, and reloads
it from `.keras`. All 54 cases take about 30-40 s on 2 CPU cores, so no subset is needed.
"""

import inspect
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from dlimaging import registry
from dlimaging.models.cnn import build_cnn
from dlimaging.models.mlp import build_mlp
from dlimaging.models.standardization import adapt
from dlimaging.serving.export import export_saved_model, input_name_for
from dlimaging.serving.exports import read_metadata

# Every family and task of the registry is checked: a new entry there is tested with no line here.
# A family is built tiny: one layer of 4 units or filters.
# A family whose depth is an argument of its own (a U-Net's `depth`) is built one level deep.
FAMILIES = {name: (entry.load_builder(), entry.ranks,
                   {entry.layers_argument: (4,), **({"depth": 1} if entry.depth_key == "depth" else {})})
            for name, entry in registry.FAMILIES.items()}

# One tiny input per rank: features, signal (length, channels), image, volume.
INPUT_SHAPES = {1: (12,), 2: (16, 1), 3: (8, 8, 3), 4: (4, 8, 8, 1)}


def _task_arguments(entry):
    """(builder arguments, output units) for a task of the registry."""
    if entry.units == "num_classes":
        return {"num_classes": max(3, entry.min_classes)}, max(3, entry.min_classes)
    if entry.units == "num_outputs":
        return {"num_outputs": 2}, 2
    if entry.units == "channels":  # the output has the input's shape
        return {}, None
    return {"num_classes": None}, entry.units


# task -> (builder arguments, output units, the signature's main output).
TASKS = {name: (*_task_arguments(entry), entry.outputs[0]) for name, entry in registry.TASKS.items()}
CLASS_NAMES = ["a", "b", "c"]
NUMERIC = [name for name, entry in registry.TASKS.items() if entry.units == "num_outputs"]

# Augmentation as dict options, for the ranks that have a factory (dlimaging.models.augmentation):
# the reload then goes through the augmentation layers' get_config, RandomShift1D's included.
AUGMENTATION = {
    2: {"shift": 0.1, "shift_mode": "edge", "scale": 0.2, "scatter": 0.1, "baseline": 0.2, "noise": 0.05},
    3: {"flip": "horizontal", "rotation": 0.1, "contrast": 0.1},
}
# Every case standardises its inputs inside the model, adapted on raw values far from [0, 1]
# (and, for numeric outputs, scales its targets), so the reload and the export carry the statistics.
STANDARDIZE = {False: "global", True: "per_feature"}

# Variants of the architecture, checked on every rank of each family whose builder takes their
# arguments, with the default task: a residual, dilated CNN with batch norm.
VARIANTS = {"residual-dilated": {"block": "residual", "dilation_rate": 2, "batch_norm": True}}


def _takes(builder, arguments):
    return set(arguments) <= set(inspect.signature(builder).parameters)

BATCH = 3


def _plain(config):
    """A config as JSON gives it back: a reload's shapes are lists, not tuples."""
    return json.loads(json.dumps(config))


def _cases():
    for family, (builder, ranks, _) in FAMILIES.items():
        for rank in ranks:
            for task in registry.family(family).tasks:
                for augmented in (False, True) if rank in AUGMENTATION else (False,):
                    name = f"{family}-rank{rank}-{task}" + ("-aug" if augmented else "")
                    yield pytest.param(family, rank, task, augmented, None, id=name)
            for variant, arguments in VARIANTS.items():
                if _takes(builder, arguments):
                    task = registry.family(family).tasks[0]
                    yield pytest.param(family, rank, task, False, variant, id=f"{family}-rank{rank}-{task}-{variant}")


@pytest.mark.parametrize("family, rank, task, augmented, variant", list(_cases()))
def test_builder(family, rank, task, augmented, variant, tmp_path):
    builder, _, tiny = FAMILIES[family]
    task_kwargs, units, main_output = TASKS[task]
    input_shape = INPUT_SHAPES[rank]
    kwargs = dict(tiny, task=task, **task_kwargs, compile=False)
    if _takes(builder, ["standardize"]):
        kwargs["standardize"] = STANDARDIZE[augmented]
    kwargs.update({k: v for k, v in VARIANTS.get(variant, {}).items() if _takes(builder, [k])})
    options = AUGMENTATION.get(rank, {})
    if family == "unet":  # a U-Net's target does not move with its input: only options that change values
        options = {k: v for k, v in options.items() if not registry.AUGMENTATIONS[k].moves and k != "shift_mode"}
    if augmented:
        kwargs["augmentation"] = options
    model = builder(input_shape, **kwargs)
    if augmented:  # the options really built augmentation layers, one per option that is not a setting
        layers = model.get_layer("augmentation").layers
        assert len(layers) == len([o for o in options if not o.endswith("_mode")])
    rng = np.random.default_rng(rank)
    train = rng.normal(500, 100, (16,) + input_shape).astype("float32")
    per_pixel = registry.task(task).labels == registry.MASKS  # segmentation: units per pixel
    adapt(model, train, None if units is None or per_pixel else rng.normal(1000, 300, (16, units)))
    x = rng.normal(500, 100, (BATCH,) + input_shape).astype("float32")
    expected = model(x, training=False).numpy()
    if task in NUMERIC:  # in real units, not around 0
        assert model.layers[-1].name == "target_scaling" and np.abs(expected).min() > 10

    # Output shape: batch × the task's units, the input's shape (restoration), or units per pixel.
    if per_pixel:
        assert expected.shape == (BATCH,) + input_shape[:-1] + (units,)
    else:
        assert expected.shape == ((BATCH, units) if units is not None else (BATCH,) + input_shape)

    # .keras save and reload: same architecture and configs, same outputs.
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path, compile=False)
    assert _plain(reloaded.get_config()) == _plain(model.get_config())
    np.testing.assert_array_equal(reloaded(x, training=False).numpy(), expected)

    # SavedModel export, served by TensorFlow alone through its signature.
    served = registry.task(task).outputs
    class_names = CLASS_NAMES if units == len(CLASS_NAMES) else None
    version_dir = export_saved_model(model, tmp_path / "m", class_names=class_names, task=task)
    assert read_metadata(version_dir)["task"] == task  # written, not guessed back
    signature = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    outputs = signature(**{input_name_for(input_shape): tf.constant(x)})
    assert sorted(outputs) == sorted(served)
    np.testing.assert_allclose(outputs[main_output].numpy(), expected, atol=1e-5)
    if "class_id" in served:
        np.testing.assert_array_equal(outputs["class_id"].numpy(), expected.argmax(-1))
        assert [n.decode() for n in outputs["class_name"].numpy()] == [CLASS_NAMES[i] for i in expected.argmax(-1)]


# A compiled model with a learning-rate schedule (warm-up, then cosine) and label smoothing, trained
# a few steps: the .keras reload carries the schedule, the optimizer's step and slots, and the loss.
SCHEDULED = dict(schedule="cosine", warmup_epochs=1, epochs=3, steps_per_epoch=2, label_smoothing=0.1)


def _scheduled_cases():
    for family, (builder, ranks, _) in FAMILIES.items():
        for rank in ranks:
            variant = next((v for v, arguments in VARIANTS.items() if _takes(builder, arguments)), None)
            yield pytest.param(family, rank, variant, id=f"{family}-rank{rank}" + (f"-{variant}" if variant else ""))


@pytest.mark.parametrize("family, rank, variant", list(_scheduled_cases()))
def test_builder_with_a_schedule_and_label_smoothing_reloads(family, rank, variant, tmp_path):
    builder, _, tiny = FAMILIES[family]
    task = registry.family(family).tasks[0]
    task_kwargs, units, _ = TASKS[task]
    input_shape = INPUT_SHAPES[rank]
    # Label smoothing where the task has classes to smooth (not restoration).
    scheduled = {k: v for k, v in SCHEDULED.items() if _takes(builder, [k])}
    model = builder(input_shape, **tiny, **task_kwargs, **VARIANTS.get(variant, {}), **scheduled)
    assert model.optimizer.built  # slots made eagerly, before the first traced step
    rng = np.random.default_rng(rank)
    x = rng.normal(size=(8,) + input_shape).astype("float32")
    y = np.arange(8) % units if units is not None else x + rng.normal(0, 0.1, x.shape).astype("float32")
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)

    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert int(reloaded.optimizer.iterations) == 2
    steps = range(0, 7)
    rates = [float(model.optimizer._learning_rate(step)) for step in steps]
    assert rates[0] == 0.0 and rates[2] == pytest.approx(1e-3) and rates[6] == pytest.approx(0.0, abs=1e-12)
    assert rates[4] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 2 / 4)))
    np.testing.assert_allclose([float(reloaded.optimizer._learning_rate(step)) for step in steps], rates, rtol=1e-6)
    if "label_smoothing" in scheduled:
        assert reloaded.loss.get_config() == model.loss.get_config()
        assert reloaded.loss.label_smoothing == pytest.approx(0.1)
    for mine, theirs in zip(model.optimizer.variables, reloaded.optimizer.variables):
        np.testing.assert_array_equal(np.asarray(theirs), np.asarray(mine))
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
    np.testing.assert_allclose(reloaded.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0), rtol=1e-5)


@pytest.mark.parametrize("builder, shape", [(build_cnn, (32, 1)), (build_mlp, (32,))])
def test_regression_defaults_leave_out_dropout_and_batch_norm_unless_asked(builder, shape):
    """Issue 23: the task table's `builder_defaults` (regression: no dropout, no batch norm) apply
    when the argument is left None; a value given wins, and classification keeps its defaults."""
    def kinds(model):
        return {type(layer).__name__ for layer in model.layers} & {"Dropout", "BatchNormalization"}

    assert kinds(builder(shape, task="regression")) == set()
    assert kinds(builder(shape, 3)) == {"Dropout", "BatchNormalization"}
    assert kinds(builder(shape, task="regression", dropout=0.2, batch_norm=True)) == {"Dropout", "BatchNormalization"}
    assert kinds(builder(shape, 3, dropout=0.0, batch_norm=False)) == set()
