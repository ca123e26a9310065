"""The compile path: each task's head and loss, optimizers, no leaked functions across trained models."""

import keras
import numpy as np
import pytest

import dlimaging as dli
from dlimaging import registry
from dlimaging.models.heads import ScaledTargetLoss


@pytest.mark.parametrize(
    "task, num_classes, kwargs, units, activation, loss",
    [
        ("classification", 5, {}, 5, "softmax", "sparse_categorical_crossentropy"),
        ("binary", None, {}, 1, "sigmoid", "binary_crossentropy"),
        ("multilabel", 4, {}, 4, "sigmoid", "binary_crossentropy"),
        ("regression", None, {"num_outputs": 3}, 3, "linear", "mean_squared_error"),
        ("regression", None, {"loss": "mae"}, 1, "linear", "mean_absolute_error"),
    ],
)
@pytest.mark.parametrize("builder", [dli.build_mlp, dli.build_cnn])
def test_task_heads_and_losses(builder, task, num_classes, kwargs, units, activation, loss):
    model = builder((8, 8, 1), num_classes, task=task, **kwargs)
    output = model.get_layer("output")
    assert output.units == units
    assert output.activation is keras.activations.get(activation)
    if task == "regression":  # targets scaled by default: the loss is computed on standardised targets
        assert isinstance(model.loss, ScaledTargetLoss) and model.loss.loss == loss
        assert model.layers[-1].name == "target_scaling"
    else:
        assert model.loss == loss and model.layers[-1] is output


def test_huber_regression_and_metrics():
    model = dli.build_mlp((4,), task="regression", loss="huber", scale_targets=False)
    assert isinstance(model.loss, keras.losses.Huber)
    assert isinstance(dli.build_mlp((4,), task="regression", loss="huber").loss._fn.__self__, keras.losses.Huber)
    x = np.ones((8, 4), "float32")
    metrics = model.evaluate(x, np.zeros((8, 1)), return_dict=True, verbose=0)
    assert "mae" in metrics


@pytest.mark.parametrize(
    "optimizer, cls, extra",
    [("adam", keras.optimizers.Adam, {"beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-6}),
     ("adamw", keras.optimizers.AdamW, {"weight_decay": 0.01}),
     ("sgd", keras.optimizers.SGD, {"momentum": 0.5}),
     ("rmsprop", keras.optimizers.RMSprop, {})],
)
def test_optimizers(optimizer, cls, extra):
    model = dli.build_mlp((4,), 2, optimizer=optimizer, learning_rate=0.05, **extra)
    assert isinstance(model.optimizer, cls)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    for key, value in extra.items():
        assert float(getattr(model.optimizer, key)) == pytest.approx(value)


def test_optimizers_keep_keras_defaults():
    # Arguments left out are not passed: each optimizer keeps Keras's own defaults.
    assert float(dli.build_mlp((4,), 2, optimizer="sgd").optimizer.momentum) == 0.0
    assert float(dli.build_mlp((4,), 2, optimizer="rmsprop").optimizer.momentum) == 0.0
    adam = dli.build_mlp((4,), 2).optimizer
    assert (float(adam.beta_1), float(adam.beta_2), float(adam.epsilon)) == (0.9, 0.999, 1e-7)
    assert float(dli.build_mlp((4,), 2, optimizer="adamw").optimizer.weight_decay) == pytest.approx(0.004)


def test_uncompiled_model():
    model = dli.build_mlp((4,), 2, compile=False)
    assert not model.compiled


@pytest.mark.parametrize("task", list(registry.TASKS))
def test_training_models_in_a_loop_leaks_no_tensorflow_functions(task):
    # Optimizer slots, and metrics that size themselves on their first batch (AUC, F1, R²),
    # created inside the first traced step leave tf.cond branch functions registered for
    # good; the builders create them eagerly instead.
    from tensorflow.python.eager import context

    entry = registry.task(task)
    kwargs = {"num_outputs": 2} if entry.units == "num_outputs" else {}
    if entry.units == "num_classes":
        kwargs["num_classes"] = 3
    x = np.zeros((16, 8, 8, 1), "float32")
    units = 2 if entry.units == "num_outputs" else (1 if isinstance(entry.units, int) else 3)
    y = np.zeros(16, entry.label_dtype) if entry.label_rank == 1 else np.zeros((16, units), entry.label_dtype)
    build, kwargs = dli.build_cnn, dict(kwargs, dense_units=(4,))
    if entry.units == "channels":  # an output of the input's shape: the U-Net's task
        build, kwargs, y = dli.build_unet, {"depth": 1}, x
    if entry.labels == registry.MASKS:  # a class per pixel: the U-Net's other task
        build, kwargs, y = dli.build_unet, {"depth": 1, "num_classes": 3}, np.zeros((16, 8, 8), entry.label_dtype)
    counts = []
    for _ in range(3):
        keras.backend.clear_session()
        model = build((8, 8, 1), task=task, filters=(4,), **kwargs)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        del model
        counts.append(len(context.context().list_function_names()))
    assert counts[2] == counts[1]
    names = [n for n in context.context().list_function_names() if "_cond_" in n]
    assert not names, names[:5]


@pytest.mark.parametrize("kwargs", [{}, dict(schedule="cosine", warmup_epochs=1, epochs=2, steps_per_epoch=2)])
def test_training_with_a_schedule_leaks_no_tensorflow_functions(kwargs):
    # Keras's own CosineDecay warm-up is a tf.cond in the train step: 2 functions leaked per model.
    from tensorflow.python.eager import context

    x = np.zeros((16, 8, 8, 1), "float32")
    y = np.zeros(16, "int64")
    counts = []
    for _ in range(3):
        keras.backend.clear_session()
        model = dli.build_cnn((8, 8, 1), 2, filters=(4,), dense_units=(4,), label_smoothing=0.1, **kwargs)
        model.fit(x, y, epochs=1, batch_size=8, verbose=0)
        del model
        counts.append(len(context.context().list_function_names()))
    assert counts[2] == counts[1]
