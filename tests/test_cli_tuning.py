"""`dlimaging tune` and `dlimaging train` on restoration and search-space mistakes (issue 21): every
corruption that the docs show runs, every choice is checked before the search, and each mistake
is one line `dlimaging: error: ...` with exit 2."""

import ast
import json
import pathlib
import re

import numpy as np
import pytest
from PIL import Image

from dlimaging import registry
from dlimaging.cli import main
from dlimaging.data.corruption import CORRUPTIONS, check_corruption
from dlimaging.tuning.experiment import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^ *```(\w*)\n(.*?)^ *```", re.S | re.M)  # as tests/test_docs.py reads them


def _balanced(text: str, start: int) -> str:
    """The bracketed expression ({...} or [...]) that begins at `start`."""
    depth = 0
    for end in range(start, len(text)):
        depth += text[end] in "[{"
        depth -= text[end] in "]}"
        if depth == 0:
            return text[start:end + 1]
    raise AssertionError(f"unbalanced brackets from: {text[start:start + 80]!r}")


def _python_value(expression: str):
    """A Python literal in which numbers may be written as quotients (`25 / 255`)."""
    tree = ast.parse(expression, mode="eval")
    for node in ast.walk(tree):
        assert isinstance(node, (ast.Expression, ast.Dict, ast.List, ast.Tuple, ast.Constant, ast.BinOp, ast.Div,
                                 ast.Mult, ast.UnaryOp, ast.USub, ast.Load)), ast.dump(node)
    return eval(compile(tree, "<docs>", "eval"), {"__builtins__": {}})  # noqa: S307  checked above: numbers only


def _toml_corruptions(document) -> list:
    found = []
    if isinstance(document, dict):
        for key, value in document.items():
            found += [value] if key == "corruption" else _toml_corruptions(value)
    return found


def doc_corruptions() -> list[tuple[str, object]]:
    """Every corruption spec written in the README and docs/*.md: in TOML blocks, in Python
    blocks (`corruption=...`), as `--corruption '...'` in shell blocks, and inline in the text."""
    examples = []
    for page in PAGES:
        text = page.read_text()
        for language, block in FENCE.findall(text):
            if language == "toml" and "corruption" in block:
                examples += [(f"{page.name} toml", spec) for spec in _toml_corruptions(tomllib.loads(block))]
            elif language == "python":
                for match in re.finditer(r"\bcorruption\s*=\s*(?=[\[{])", block):
                    examples.append((f"{page.name} python", _python_value(_balanced(block, match.end()))))
            elif language in ("bash", "sh", "shell", "text"):
                for match in re.finditer(r"--corruption\s+'([^']*)'", block):
                    examples.append((f"{page.name} --corruption", tomllib.loads(f"c = {match.group(1)}")["c"]))
        for match in re.finditer(r"`corruption = ([\[{][^`]*)`", FENCE.sub("", text)):
            examples.append((f"{page.name} inline", tomllib.loads(f"c = {match.group(1)}")["c"]))
    return examples


EXAMPLES = doc_corruptions()


def test_the_docs_examples_are_found():
    kinds = {step["kind"] for _, spec in EXAMPLES for step in check_corruption(spec)}
    kernels = {step["kernel"] for _, spec in EXAMPLES for step in check_corruption(spec) if step["kind"] == "blur"}
    assert len(EXAMPLES) >= 3 and {"gaussian", "blur"} <= kinds and "motion" in kernels, EXAMPLES
    assert kinds <= set(CORRUPTIONS)


def _toml(value) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clean")
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((24, 24)) * 255).astype("uint8")).save(folder / f"{i}.png")
    return folder


def _experiment(tmp_path, data: dict, search: str = "depth = 1\nfilters = 4\n", name: str = "t") -> pathlib.Path:
    lines = [f"name = {json.dumps(name)}", "[data]"] + [f"{k} = {_toml(v)}" for k, v in data.items()]
    lines += ["validation_split = 0.25", "test_split = 0.25", "batch_size = 8",
              "[model]", 'family = "unet"', "[search]", search, "[tuner]", "max_trials = 1", "max_epochs = 1"]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _tune(tmp_path, config, *more):
    return main(["tune", str(config), "--runs-dir", str(tmp_path / "runs"), "--no-export", *more])


def _one_error_line(capsys, *fragments) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlimaging: error: "), err
    assert all(fragment in err[0] for fragment in fragments), err[0]
    return err[0]


@pytest.mark.parametrize("where, spec", EXAMPLES, ids=[f"{i}-{where}" for i, (where, _) in enumerate(EXAMPLES)])
def test_every_corruption_example_of_the_docs_runs_through_tune(tmp_path, images, capsys, where, spec):
    # The README's motion blur was refused: the schema filled in the Gaussian kernel's width,
    # and load_dataset checked the filled-in spec again.
    signals = any(CORRUPTIONS[step["kind"]].ranks == (2,) for step in check_corruption(spec))  # a baseline
    source = "spectra:samples=24,test_samples=8,length=32" if signals else str(images)
    config = _experiment(tmp_path, {"source": source, "corruption": spec, "patch_size": 16, "patches_per_epoch": 16})
    assert _tune(tmp_path, config) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "1 trials: 1 completed, 0 failed." in out and "test_psnr=" in out


@pytest.mark.parametrize("data, search, fragments", [
    ({}, 'depth = 1\nloss = {choice = ["mse", "l1"]}',
     ("[search] loss: a choice: `loss` must be one of 'mse', 'mae', 'ssim'. Received: loss='l1'",)),
    ({}, 'depth = 1\nactivation = {choice = ["relu", "nope"]}', ("[search] activation: a choice:", "activation='nope'")),
    ({}, "depth = 1\nbatch_norm = {choice = [true, 1]}", ("[search] batch_norm: the choices must be of one kind",)),
    ({"standardize": "global"}, "depth = 1", ('[data] standardize: applies to [model] family "cnn" or "mlp", not "unet"',)),
    ({"corruption": {"kind": "blur", "width": 20}, "patch_size": 32}, "depth = 1",
     ("a 'gaussian' blur of width=20 reaches 60 pixels to each side, wider than the patch (patch_size=32)",)),
])
def test_tune_refuses_what_no_trial_could_run_before_the_search(tmp_path, images, capsys, data, search, fragments):
    settings = {"source": str(images), "corruption": {"kind": "gaussian", "sigma": 0.1}, "patch_size": 16, **data}
    config = _experiment(tmp_path, settings, search)
    assert _tune(tmp_path, config) == 2
    _one_error_line(capsys, f"{config}: ", *fragments)
    assert not (tmp_path / "runs" / "t").exists()  # nothing written: no trial ran


def test_train_help_gives_each_choice_one_sentence(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ".;" not in text and ". ;" not in text
    for table in (registry.FAMILIES, registry.TASKS):
        for name, entry in table.items():
            assert " ".join(f"{name}: {entry.description}".split()) in text


@pytest.mark.parametrize("option", ["--target", "--features"])
def test_an_empty_column_list_is_one_error_line_naming_the_option(capsys, option):
    assert main(["train", "--data", "digits", option, ","]) == 2
    _one_error_line(capsys, f"dlimaging: error: {option} must name one or more columns", f"{option}=','")


def test_train_runs_a_unet_with_the_corruption_of_a_tuning_file(tmp_path, images, capsys):
    unet = next(name for name, entry in registry.FAMILIES.items() if entry.tasks[0] == "restoration")
    assert main(["train", "--data", str(images), "--model", unet, "--epochs", "1"]) == 2
    _one_error_line(capsys, f"--model {unet} (task 'restoration') needs --corruption, e.g. --corruption '{{kind =")
    assert main(["train", "--data", str(images), "--model", unet, "--corruption", "{kind = blur}"]) == 2
    _one_error_line(capsys, "--corruption must be written as in a tuning file")
    assert main(["train", "--data", str(images), "--model", unet, "--corruption", '{kind = "gaussian", sigma = -1}']) == 2
    _one_error_line(capsys, "`--corruption.sigma` must be >= 0")

    spec = '[{ kind = "blur", kernel = "motion", length = 7, angle = 30 }, { kind = "gaussian", sigma = 0.01 }]'
    code = main(["train", "--data", str(images), "--model", unet, "--epochs", "1", "--corruption", spec,
                 "--patch-size", "16", "--patches-per-epoch", "16", "--set", "depth=1", "--set", "filters=4",
                 "--output", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    metadata = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert metadata["task"] == "restoration" and (tmp_path / "run" / "model.keras").is_file()
