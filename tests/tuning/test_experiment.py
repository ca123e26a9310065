import pathlib
import subprocess
import sys

import pytest

from dlimaging.tuning.experiment import (
    ExperimentError,
    load_experiment,
    parse_experiment,
)

TUNING = pathlib.Path(__file__).resolve().parents[2] / "tuning"
BASE = {"name": "t", "data": {"source": "digits"}}


def test_shipped_configs_are_valid():
    names = {p.stem for p in TUNING.glob("*.toml")}
    assert {"digits_cnn", "mnist1d_cnn", "mnist1d_mlp", "mnist_cnn", "fashion_mnist_cnn", "cifar10_cnn",
            "spectra_regression", "coffee_cnn"} <= names
    for path in TUNING.glob("*.toml"):
        experiment = load_experiment(path)
        assert experiment.name == path.stem


def test_defaults_are_filled_in():
    experiment = parse_experiment(BASE)
    assert experiment.seed == 0
    assert (experiment.model.family, experiment.model.task) == ("cnn", "classification")
    assert experiment.tuner.algorithm == "random" and experiment.tuner.max_trials == 20
    assert experiment.objective == "val_accuracy" and experiment.direction == "max"
    assert (experiment.export.dir, experiment.export.enabled) == ("saved_models", True)
    assert experiment.search is None  # the family's default space


def _with(section, key, value):
    config = {"name": "t", "data": {"source": "digits"}}
    if section is None:
        config[key] = value
    else:
        config.setdefault(section, {})[key] = value
    return config


@pytest.mark.parametrize(
    "config, match",
    [
        (_with(None, "colour", "red"), "colour: unknown key"),
        (_with(None, "name", "../evil"), r"name: must be a plain folder name.*Received: name = \"../evil\""),
        (_with(None, "name", "a b"), "plain folder name"),
        (_with(None, "seed", "zero"), "seed: must be an integer"),
        (_with("data", "batchsize", 3), r"\[data\] batchsize: unknown key"),
        (_with("data", "batch_size", 0), r"\[data\] batch_size: must be a positive integer"),
        (_with("data", "validation_split", 1.5), r"\[data\] validation_split: must be a number in \[0.0, 1.0\)"),
        (_with("data", "validation_split", 0.0), "scores trials on validation data"),
        (_with("data", "target", 3), r"\[data\] target: must be a column name or a non-empty list of them"),
        (_with("data", "features", []), r"\[data\] features: must be a column name or a non-empty list"),
        (_with("data", "test", ""), r"\[data\] test: must be a non-empty string"),
        (_with("data", "standardize", "zscore"),
         r"\[data\] standardize: must be one of 'none', 'global', 'per_feature'. Received: standardize='zscore'"),
        ({"name": "t", "data": {"source": "digits", "standardize": "global"}, "search": {"standardize": "none"}},
         r"\[search\] standardize: is set in \[data\] already"),
        (_with("model", "family", "rnn"), r"x.toml: \[model\] family: must be one of 'cnn', 'mlp', 'unet'. Received: family='rnn'"),
        (_with("model", "task", "clustering"), r"\[model\] task: must be one of 'classification', 'binary'"),
        (_with("tuner", "algorithm", "genetic"), r"\[tuner\] algorithm: must be one of 'random', 'hyperband', 'bayesian', 'grid'"),
        (_with("tuner", "max_trials", 0), r"\[tuner\] max_trials: must be a positive integer"),
        (_with("tuner", "max_epochs", "ten"), r"\[tuner\] max_epochs: must be an integer"),
        (_with("tuner", "hyperband_factor", 1), r"\[tuner\] hyperband_factor: must be an integer in \[2, inf\]"),
        (_with("tuner", "bayesian_initial_points", 0), r"\[tuner\] bayesian_initial_points: must be a positive integer"),
        (_with("tuner", "objective", "val_mae"), r"\[tuner\] objective: must be one of val_accuracy, .* for task 'classification'"),
        (_with("tuner", "objective", "val_f1"), r"\[tuner\] objective: must be one of"),
        (_with("search", "dropot", 0.1), r"\[search\] dropot: unknown key; allowed: .*dropout"),
        (_with("search", "dropout", {"min": 0.5, "max": 0.1}), r"\[search\] dropout: `max` must be greater than `min`"),
        (_with("search", "l2", {"min": 0.0, "max": 0.1, "sampling": "log"}), "needs `min` > 0"),
        (_with("search", "l2", {"min": 1e-5, "max": 0.1, "sampling": "exp"}), "`sampling` must be one of"),
        (_with("search", "dropout", {"min": 0.0, "max": 0.5, "stride": 0.1}), "unknown range key `stride`"),
        (_with("search", "activation", {"choice": []}), "`choice` must be a non-empty list"),
        (_with("search", "activation", {"pick": ["relu"]}), r"must be a value, \{choice"),
        (_with("export", "enabled", "yes"), r"\[export\] enabled: must be true or false"),
        ({"name": "t"}, r"\[data\] source: is required"),
    ],
)
def test_each_kind_of_mistake(config, match):
    with pytest.raises(ExperimentError, match=match):
        parse_experiment(config, path="x.toml")


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("name = \n")
    with pytest.raises(ExperimentError, match="not valid TOML"):
        load_experiment(bad)
    with pytest.raises(ExperimentError, match="no such experiment file"):
        load_experiment(tmp_path / "missing.toml")


def test_cli_config_error_is_one_line_exit_2_and_writes_nothing(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('name = "bad"\n[data]\nsource = "digits"\n[search]\ndropout = { min = 0.5, max = 0.1 }\n')
    result = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "dlimaging"), "tune", str(config)],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "[search] dropout: `max` must be greater than `min`" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_the_config_layer_loads_no_tensorflow_keras_or_keras_tuner():
    code = ("import sys, dlimaging.tuning.experiment as e; e.load_experiment('tuning/digits_cnn.toml'); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=pathlib.Path(__file__).resolve().parents[2], check=True)
    assert result.stdout.strip() == "[]"


def test_objective_and_direction_follow_the_task():
    experiment = parse_experiment({"name": "t", "data": {"source": "x.npz"}, "model": {"task": "regression"}})
    assert (experiment.objective, experiment.direction) == ("val_loss", "min")
    experiment = parse_experiment({"name": "t", "data": {"source": "x.npz"}, "model": {"task": "regression"},
                                   "tuner": {"objective": "val_mae"}})
    assert experiment.direction == "min"


def test_budget_overrides_are_checked_here():
    experiment = parse_experiment(BASE)
    assert experiment.with_budgets(max_trials=3).tuner.max_trials == 3
    assert experiment.with_budgets(max_epochs=2).tuner.max_epochs == 2
    assert experiment.tuner.max_trials == 20  # unchanged: experiments are frozen
    with pytest.raises(ExperimentError, match=r"--max-trials: max_trials: must be a positive integer. Received: max_trials=0"):
        experiment.with_budgets(max_trials=0)
    with pytest.raises(ExperimentError, match=r"--max-epochs: .*must be an integer"):
        experiment.with_budgets(max_epochs="abc")


@pytest.mark.parametrize(
    "search, match",
    [
        ({"momentum": 0.9}, r"\[search\] momentum: does not apply to optimizer 'adam' \(it applies to sgd, rmsprop\)"),
        ({"optimizer": "sgd", "beta_1": 0.9}, r"\[search\] beta_1: does not apply to optimizer 'sgd'"),
        ({"optimizer": {"choice": ["adam", "adagrad"]}}, r"\[search\] optimizer: must be one of adam, adamw, sgd, rmsprop"),
        ({"filters_i": {"choice": [8, 16]}}, r"\[search\] filters_i: sets the width of each layer and needs `num_blocks`"),
        ({"dropout": {"min": 0.0, "max": 0.5, "default": "a"}}, r"`default` must be a number"),
    ],
)
def test_search_mistakes_are_caught_when_the_file_is_read(search, match):
    with pytest.raises(ExperimentError, match=match):
        parse_experiment({"name": "t", "data": {"source": "digits"}, "search": search}, path="x.toml")


def test_settings_of_several_searched_optimizers_are_allowed():
    search = {"optimizer": {"choice": ["adam", "sgd"]}, "momentum": {"min": 0.0, "max": 0.9}, "beta_1": 0.9}
    assert parse_experiment({"name": "t", "data": {"source": "digits"}, "search": search}).search == search


def test_values_of_the_wrong_type_are_input_errors_not_crashes():
    import datetime

    with pytest.raises(ExperimentError, match=r"\[tuner\] objective: must be a non-empty string"):
        parse_experiment({"name": "t", "data": {"source": "digits"}, "tuner": {"objective": ["val_loss"]}})
    with pytest.raises(ExperimentError, match=r"\[search\]: holds a date"):
        parse_experiment({"name": "t", "data": {"source": "digits"}, "search": {"seed": datetime.date(2026, 1, 1)}})


@pytest.mark.parametrize("name, match", [
    ("n" * 300, r"name: must be at most 255 characters"),
    ("é" * 130, r"plain folder name"),
    ("ok\n", r"plain folder name"),
    ("", r"plain folder name"),
    (".", r"plain folder name"),
])
def test_a_name_the_file_system_cannot_hold_is_refused(name, match):
    with pytest.raises(ExperimentError, match=match):
        parse_experiment(_with(None, "name", name), path="x.toml")
    assert parse_experiment(_with(None, "name", "n" * 255)).name == "n" * 255


# ---------------------------------------------------------------- impossible settings, refused up front (issue 9, class 3)


@pytest.mark.parametrize(
    "config, match",
    [
        (_with(None, "name", "a\n"), r"name: must be a plain folder name.*Received: name = \"a\\n\""),
        (_with(None, "name", "\nb"), "plain folder name"),
        (_with(None, "name", "x" * 256), r"name: must be at most 255 characters.*\(received 256\)"),
        (_with("search", "batch_size", 0), r"\[search\] batch_size: `batch_size` must be a positive integer. Received: batch_size=0"),
        (_with("search", "epochs", 0), r"\[search\] epochs: `epochs` must be a positive integer"),
        (_with("search", "batch_size", {"min": 0, "max": 64}), r"\[search\] batch_size: `min`: `batch_size` must be a positive"),
        (_with("search", "epochs", {"choice": [2, -1]}), r"\[search\] epochs: a choice: `epochs` must be a positive integer. Received: epochs=-1"),
        (_with("search", "dropout", {"min": 0.0, "max": 1.5}), r"\[search\] dropout: `max`: `dropout` must be a number in \[0.0, 1.0\). Received: dropout=1.5"),
        (_with("search", "dropout", {"min": 0.0, "max": 1.0}), r"`max`: `dropout` must be a number in \[0.0, 1.0\)"),
        (_with("search", "dropout", 1.0), r"\[search\] dropout: `dropout` must be a number in \[0.0, 1.0\)"),
        (_with("search", "l2", {"min": 0.0, "max": float("inf")}), r"\[search\] l2: `max` must be a finite number"),
        (_with("search", "l2", {"min": float("nan"), "max": 0.1}), r"\[search\] l2: `min` must be a finite number"),
        (_with("search", "l1", {"choice": [0.0, -1e-3]}), r"\[search\] l1: a choice: `l1` must be a number in \[0.0, inf\]"),
        (_with("search", "learning_rate", {"min": 0.0, "max": 0.1}), r"`min`: `learning_rate` must be a number in \(0.0, inf\]"),
        (_with("search", "beta_1", {"min": 0.5, "max": 1.0}), r"`max`: `beta_1` must be a number in \[0.0, 1.0\)"),
        (_with("search", "filters", {"choice": [[16, 0]]}), r"\[search\] filters: a choice: `filters` must be a positive integer or a tuple"),
        (_with("search", "num_blocks", {"min": 0, "max": 3}), r"\[search\] num_blocks: `min`: `num_blocks` must be a positive integer"),
        (_with("search", "padding", "sam"), r"\[search\] padding: `padding` must be one of 'same', 'valid'"),
        (_with("search", "dropout", {"min": 0.0, "max": 0.5, "default": True}), "`default` must be a number"),
        ({"name": "t", "data": {"source": "digits"}, "search": {"augmentation": {"noise": {"choice": [0.1, 2.0]}}}},
         r"\[search.augmentation\] noise: a choice: `noise` must be a number in \[0.0, 1.0\]. Received: noise=2.0"),
        (_with(None, "seed", -1), r"seed: must be an integer in \[0, 4294967295\]. Received: seed=-1"),
        (_with(None, "seed", 2**32), r"seed: must be an integer in \[0, 4294967295\]"),
    ],
)
def test_settings_that_cannot_work_are_refused_with_the_builders_rules(config, match):
    with pytest.raises(ExperimentError, match=match):
        parse_experiment(config, path="x.toml")


def test_the_experiment_and_the_builders_share_one_rule_per_argument():
    import dlimaging as dli
    from dlimaging.validation import ARGUMENT_CHECKS

    for name, value in (("dropout", 1.5), ("l2", -1.0), ("learning_rate", 0.0), ("beta_1", 1.0)):
        with pytest.raises(ValueError) as builder:
            dli.build_mlp((4,), 2, hidden_units=(), compile=True, **{name: value})
        with pytest.raises(ExperimentError) as config:
            parse_experiment(_with("search", name, value), path="x.toml")
        assert str(builder.value) in str(config.value)
    assert {"dropout", "l1", "l2", "learning_rate", "batch_size", "epochs", "noise"} <= set(ARGUMENT_CHECKS)


@pytest.mark.parametrize(
    "search, match",
    [
        ("dropout = { min = 0.0, max = 1.5 }", "[search] dropout: `max`: `dropout` must be a number in [0.0, 1.0)"),
        ("l2 = { min = 0.0, max = inf }", "[search] l2: `max` must be a finite number"),
    ],
)
def test_cli_bad_range_is_one_line_exit_2_and_writes_nothing(tmp_path, monkeypatch, capsys, search, match):
    # In this process (the test above runs the installed command): `main` is what it runs.
    from dlimaging.cli import main

    config = tmp_path / "bad.toml"
    config.write_text(f'name = "bad"\n[data]\nsource = "digits"\n[search]\n{search}\n')
    monkeypatch.chdir(tmp_path)
    assert main(["tune", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and match in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


# ---------------------------------------------------------------- messages that name the user's file or argument (class 5)


def test_binary_file_is_named_not_a_bare_unicode_error(tmp_path):
    binary = tmp_path / "model.toml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ExperimentError, match=r"model\.toml: not a TOML text file: byte 0 is not UTF-8"):
        load_experiment(binary)
    (tmp_path / "folder.toml").mkdir()
    with pytest.raises(ExperimentError, match=r"folder\.toml: no such experiment file"):
        load_experiment(tmp_path / "folder.toml")


def test_run_search_names_a_bad_budget_before_any_work(tmp_path):
    from dlimaging.tuning.search import run_search

    with pytest.raises(ExperimentError, match=r"--max-trials: max_trials: must be an integer. Received: max_trials='abc'"):
        run_search(parse_experiment(BASE), max_trials="abc", runs_dir=tmp_path / "runs")
    with pytest.raises(ExperimentError, match=r"max_epochs: must be a positive integer. Received: max_epochs=-2"):
        run_search(parse_experiment(BASE), max_epochs=-2, runs_dir=tmp_path / "runs")
    assert list(tmp_path.iterdir()) == []


def test_shipped_spectra_experiments_declare_their_task_and_standardise():
    regression = load_experiment(TUNING / "spectra_regression.toml")
    assert (regression.data.source, regression.model.task) == ("spectra", "regression")
    assert (regression.objective, regression.direction) == ("val_loss", "min")
    assert regression.data.standardize == "global"
    assert regression.search["head"] == "flatten" and regression.search["batch_norm"] is False
    coffee = load_experiment(TUNING / "coffee_cnn.toml")
    assert (coffee.data.source, coffee.model.task, coffee.direction) == ("coffee", "classification", "max")


def test_csv_keys_are_read_and_typed():
    experiment = parse_experiment({"name": "t", "data": {"source": "my.csv", "target": ["a", "b"],
                                                         "features": "x1", "test": "test.csv"},
                                   "model": {"task": "regression"}})
    assert experiment.data.target == ("a", "b") and experiment.data.features == "x1"
    assert experiment.data.test == "test.csv" and experiment.data.standardize is None
    assert experiment.objective == "val_loss" and experiment.direction == "min"


# ---------------------------------------------------------------- every value of the search space, before the search (issue 21)

UNET = {"name": "t", "data": {"source": "skimage", "corruption": {"kind": "gaussian", "sigma": 0.1}},
        "model": {"family": "unet"}}


@pytest.mark.parametrize("config, match", [
    ({**UNET, "search": {"loss": {"choice": ["mse", "l1"]}}},
     r"\[search\] loss: a choice: `loss` must be one of 'mse', 'mae', 'ssim'. Received: loss='l1'"),
    ({**BASE, "search": {"loss": {"choice": ["mse"]}}}, r"`loss` must be one of 'sparse_categorical_crossentropy'"),
    ({**UNET, "search": {"batch_norm": {"choice": [True, "yes"]}}},
     r"\[search\] batch_norm: the choices must be of one kind; these mix booleans and strings"),
    ({**BASE, "search": {"filters": {"choice": [16, [16, 32]]}}}, r"these mix numbers and lists"),
    ({**BASE, "search": {"optimizer": {"choice": [{"name": "adam"}]}}}, r"a choice takes strings, numbers, .* not tables"),
    ({**UNET, "search": {"residual": "yes"}}, r"\[search\] residual: `residual` must be true or false"),
    ({**BASE, "search": {"batch_norm": {"choice": ["on", "off"]}}}, r"a choice: `batch_norm` must be true or false"),
    ({**UNET, "data": {**UNET["data"], "standardize": "global"}},
     r"\[data\] standardize: applies to \[model\] family \"cnn\" or \"mlp\", not \"unet\""),
])
def test_every_choice_is_checked_when_the_file_is_read(config, match):
    with pytest.raises(ExperimentError, match=match):
        parse_experiment(config, path="x.toml")


def test_no_search_key_escapes_a_rule():
    # The root of `loss = {choice = ["mse", "l1"]}` reaching a trial: keys without a rule in
    # ARGUMENT_CHECKS were not checked at all. Each key now has a rule, or is checked apart.
    from dlimaging import registry
    from dlimaging.tuning.experiment import CHECKED_APART
    from dlimaging.validation import ARGUMENT_CHECKS

    for family in registry.FAMILIES:
        assert [k for k in registry.space_keys(family) if k not in ARGUMENT_CHECKS and k not in CHECKED_APART] == []
    assert [k for k in registry.AUGMENTATIONS if k not in ARGUMENT_CHECKS] == []
    numbers = parse_experiment({**BASE, "search": {"dropout": {"choice": [0, 0.5]}}})  # ints and floats: numbers
    assert numbers.search["dropout"] == {"choice": [0, 0.5]}


def test_activations_are_checked_with_keras_before_the_search():
    from dlimaging.tuning.search import check_with_keras

    check_with_keras(parse_experiment({**BASE, "search": {"activation": {"choice": ["relu", "gelu"]}}}))
    with pytest.raises(ExperimentError, match=r"x.toml: \[search\] activation: a choice: `activation` must be a Keras "
                                              r"activation name or a callable. Received: activation='nope'"):
        check_with_keras(parse_experiment({**BASE, "search": {"activation": {"choice": ["relu", "nope"]}}}, path="x.toml"))


def test_segmentation_experiments_take_patches_and_data_augmentation():
    experiment = parse_experiment({"name": "s", "data": {"source": "cells", "patch_size": 32,
                                                         "augmentation": {"flip": True, "rotation": 0.1}},
                                   "model": {"family": "unet", "task": "segmentation"}})
    assert experiment.data.augmentation == {"flip": "horizontal_and_vertical", "rotation": 0.1}
    assert experiment.objective == "val_mean_iou" and experiment.direction == "max"
    with pytest.raises(ExperimentError, match=r"\[data\] augmentation.*applies to \[model\] task"):
        parse_experiment({"name": "c", "data": {"source": "digits", "augmentation": {"flip": True}}})
    with pytest.raises(ExperimentError, match=r"\[data\] augmentation: option 'shear' is not one of"):
        parse_experiment({"name": "s", "data": {"source": "cells", "augmentation": {"shear": 0.1}},
                          "model": {"family": "unet", "task": "segmentation"}})


N2V = {"name": "t", "data": {"source": "skimage", "target": "self", "corruption": {"kind": "gaussian", "sigma": 0.1}},
       "model": {"family": "unet"}}


def test_a_noise2void_experiment_is_ranked_by_its_masked_validation_loss():
    experiment = parse_experiment(N2V)
    assert experiment.data.target == "self" and experiment.tuner.objective == "val_loss"
    shipped = load_experiment(TUNING / "n2v_unet.toml")
    assert (shipped.data.target, shipped.data.n2v_fraction, shipped.tuner.objective) == ("self", 0.01, "val_loss")
    assert shipped.export.self_ensemble and load_experiment(TUNING / "denoise_unet.toml").export.self_ensemble
    folder = parse_experiment({**N2V, "data": {"source": "noisy_images/", "target": "self"}})
    assert folder.data.corruption is None  # a folder of noisy images needs none
    assert parse_experiment({**N2V, "export": {"self_ensemble": True}}).export.self_ensemble is True
    assert parse_experiment(N2V).export.self_ensemble is False


@pytest.mark.parametrize("change, match", [
    ({"data": {**N2V["data"], "n2v_fraction": 0}}, r"\[data\] n2v_fraction: must be a number in \(0.0, 0.1\]"),
    ({"data": {**N2V["data"], "n2v_fraction": 0.5}}, r"Received: n2v_fraction=0.5"),
    ({"data": {**N2V["data"], "target": None, "n2v_fraction": 0.01}}, "applies to Noise2Void training"),
    ({"model": {"family": "unet", "task": "segmentation"}, "data": {"source": "cells", "target": "self"}},
     r"\[data\] target: target='self' .* applies to task 'restoration', not to task='segmentation'"),
    ({"model": {"family": "cnn"}, "data": {"source": "digits", "target": "self"}}, "applies to task 'restoration'"),
    ({"tuner": {"objective": "val_psnr"}}, r"\[tuner\] objective: must be 'val_loss' for Noise2Void"),
    ({"model": {"family": "cnn"}, "data": {"source": "digits"}, "export": {"self_ensemble": True}},
     r"\[export\] self_ensemble: .*restoration models, not to a classification model"),
])
def test_noise2void_and_self_ensemble_mistakes(change, match):
    config = {**N2V, **change}
    config["data"] = {k: v for k, v in config["data"].items() if v is not None}
    with pytest.raises(ExperimentError, match=match):
        parse_experiment(config, path="x.toml")


def test_a_csv_column_may_still_be_called_self():
    experiment = parse_experiment({"name": "t", "data": {"source": "x.csv", "target": "self"},
                                   "model": {"task": "regression"}})
    assert experiment.data.target == "self"  # a CSV file's target is a column, whatever its name
