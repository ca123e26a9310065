"""Segmentation models: the U-Net's per-pixel softmax, its losses, class weights and metrics."""

import keras
import numpy as np
import pytest

from dlimaging import registry
from dlimaging.errors import InputError
from dlimaging.models import build_unet
from dlimaging.models.segmentation import (
    CrossentropyDiceLoss,
    DiceLoss,
    MeanDice,
    MeanIoU,
    SegmentationCrossentropy,
    check_class_weight,
    class_frequencies,
    dice_per_class,
    iou_per_class,
)


def test_the_task_comes_from_the_table():
    entry = registry.TASKS["segmentation"]
    assert entry.objective == "val_mean_iou" and entry.direction("val_mean_iou") == "max"
    assert list(entry.losses) == ["crossentropy", "dice", "crossentropy+dice"]
    assert "segmentation" in registry.FAMILIES["unet"].tasks
    assert registry.task_for_labels(registry.MASKS) == "segmentation"


@pytest.mark.parametrize("shape", [(16, 16, 1), (16, 2)])
def test_the_unet_gives_a_softmax_per_pixel_and_trains(shape, tmp_path):
    model = build_unet(shape, 3, task="segmentation", depth=2, filters=4, loss="crossentropy+dice")
    assert model.output_shape == (None, *shape[:-1], 3) and model.get_layer("output") is not None
    rng = np.random.default_rng(0)
    x = rng.random((4, *shape), dtype="float32")
    y = rng.integers(0, 3, (4, *shape[:-1])).astype("int32")
    history = model.fit(x, y, epochs=1, verbose=0)
    assert {"loss", "mean_iou", "dice"} <= set(history.history)
    np.testing.assert_allclose(model.predict(x, verbose=0).sum(-1), 1.0, atol=1e-5)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def test_losses_reward_the_right_mask_and_weights_count():
    y = np.array([[[0, 0], [0, 1]]], "int32")
    right = keras.ops.one_hot(y, 2) * 0.98 + 0.01
    wrong = 1.0 - right
    for loss in (SegmentationCrossentropy(), DiceLoss(), CrossentropyDiceLoss()):
        assert float(loss(y, right)) < float(loss(y, wrong))
    plain = float(SegmentationCrossentropy()(y, wrong))
    weighted = float(SegmentationCrossentropy(class_weight=[1.0, 3.0])(y, wrong))
    assert weighted == pytest.approx(plain * 6 / 4, rel=1e-4)  # 3 pixels of weight 1, one of 3
    assert float(DiceLoss()(y, keras.ops.one_hot(y, 2))) == pytest.approx(0.0, abs=1e-6)


def test_mean_iou_and_dice_of_the_class_map():
    y = np.array([[0, 0, 1, 1]], "int32")
    probabilities = keras.ops.one_hot(np.array([[0, 1, 1, 1]]), 2)
    iou, dice = MeanIoU(num_classes=2), MeanDice(num_classes=2)
    iou.update_state(y, probabilities)
    dice.update_state(y, probabilities)
    assert float(iou.result()) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert float(dice.result()) == pytest.approx((2 / 3 + 4 / 5) / 2)
    assert dice_per_class(y, [[0, 1, 1, 1]], 3) == [pytest.approx(2 / 3), pytest.approx(0.8), None]
    assert iou_per_class(y, [[0, 1, 1, 1]], 2) == [pytest.approx(0.5), pytest.approx(2 / 3)]


def test_balanced_class_weights_follow_the_frequencies():
    frequencies = class_frequencies([np.array([[0, 0, 0, 1]])], 2)
    assert frequencies == [0.75, 0.25]
    weights = check_class_weight("balanced", 2, frequencies)
    assert weights[1] == pytest.approx(3 * weights[0])
    assert check_class_weight({1: 2.0}, 2, None) == [1.0, 2.0]
    model = build_unet((8, 8, 1), 2, task="segmentation", depth=1, filters=4, class_weight="balanced",
                       class_frequencies=frequencies)
    assert model.loss.class_weight == pytest.approx(weights)


@pytest.mark.parametrize("arguments, message", [
    ({"num_classes": 1}, r"`num_classes`.*Received: num_classes=1"),
    ({"num_classes": None}, r"`num_classes` is required for task='segmentation'"),
    ({"num_classes": 2, "loss": "mse"}, r"`loss` must be one of 'crossentropy', 'dice', 'crossentropy\+dice'"),
    ({"num_classes": 2, "residual": True}, r"`residual`.*Received: residual=True"),
    ({"num_classes": 2, "class_weight": [1.0]}, r"`class_weight` must be .* 2 numbers"),
    ({"num_classes": 2, "class_weight": "balanced"}, r"class_weight='balanced' needs"),
    ({"num_classes": 2, "augmentation": {"flip": "horizontal"}}, r"`augmentation` of a U-Net may only change"),
])
def test_bad_settings_are_one_line_input_errors(arguments, message):
    with pytest.raises(InputError, match=message):
        build_unet((8, 8, 1), task="segmentation", depth=1, filters=4, **arguments)


def test_restoration_refuses_classes():
    with pytest.raises(InputError, match=r"`num_classes` is for a task with classes, not task='restoration'"):
        build_unet((8, 8, 1), 2, depth=1, filters=4)


def test_dice_of_each_class_counts_batch_by_batch_and_keeps_every_class_apart():
    from dlimaging.models.segmentation import dice_of_each_class

    def model(x, training=False):  # "predicts" the class map carried in the input, as probabilities
        return np.eye(2)[np.asarray(x)[..., 0].astype(int)]

    batches = [(np.array([[[0], [1]]]), np.array([[0, 0]])), (np.array([[[1], [1]]]), np.array([[1, 1]]))]
    scores = dice_of_each_class(model, batches, ["cell+", "cell-"])  # the same key once cleaned: indexed
    assert scores == {"dice_cell__0": pytest.approx(2 / 3), "dice_cell__1": pytest.approx(0.8)}
    assert list(dice_of_each_class(model, batches, ["背景", "细胞"])) == ["dice_背景", "dice_细胞"]
