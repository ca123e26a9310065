"""The `dlimaging` argument parser: one small function per sub-command, and one-line parse errors."""

from __future__ import annotations

import argparse

import dlimaging.cli.commands as commands
from dlimaging import registry
from dlimaging.cli.commands import CLIError
from dlimaging.errors import InputError
from dlimaging.explain import files as explain_files  # TensorFlow-free: its names only
from dlimaging.validation import check_export_choice


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, no usage block
        raise CLIError(f"{self.prog}: {message}")


def _export_choice(text: str) -> str:
    """`--export-choice`, checked while the arguments are parsed: before any work."""
    try:
        return check_export_choice("--export-choice", text)
    except InputError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("`--export-choice` ")) from None


def _choices_help(table, tail: str = "") -> str:
    """The help of an option whose choices are a registry table: "name: its description." for each,
    each description one sentence of its own (they contain semicolons)."""
    lines = [f"{name}: {entry.description.strip().rstrip('.')}." for name, entry in table.items()]
    return " ".join(lines + ([tail] if tail else []))


def _add_datasets(sub) -> None:
    p = sub.add_parser("datasets", help="list the dataset sources")
    p.set_defaults(func=commands.cmd_datasets)


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model of one family on a dataset")
    p.add_argument("--data", required=True, help="a source: " + ", ".join(registry.SOURCES))
    p.add_argument("--model", choices=tuple(registry.FAMILIES), default=registry.DEFAULT_FAMILY,
                   help=_choices_help(registry.FAMILIES))
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--patience", type=int, default=10, help="early-stopping patience (epochs without a lower val_loss)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a builder argument, e.g. dropout=0.3, filters=16,32, augmentation.rotation=0.1")
    p.add_argument("--task", choices=tuple(registry.TASKS), default=None,
                   help=_choices_help(registry.TASKS, "Default: read from the labels."))
    p.add_argument("--target", help="CSV data: the target column, or several comma-separated; restoration: "
                   "'self' trains Noise2Void on the noisy images alone (docs/restoration.md)")
    p.add_argument("--features", help="CSV data: the feature columns, comma-separated (default: every other "
                   "numeric column)")
    p.add_argument("--test", help="a separate test file (CSV data), instead of a test split")
    p.add_argument("--corruption", metavar="SPEC", help="restoration (--model unet): what is done to the clean "
                   "data, written as in a tuning file, e.g. '{kind = \"gaussian\", sigma = 0.1}', or a list "
                   "'[{kind = \"blur\", width = 1}, {kind = \"gaussian\", sigma = 0.01}]' (docs/restoration.md)")
    p.add_argument("--patch-size", type=int, help="restoration, segmentation: the side of the training patches "
                   "(images, or cubes of volumes) or the window length (signals)")
    p.add_argument("--patches-per-epoch", type=int, help="restoration, segmentation: random training patches "
                   "drawn per epoch")
    p.add_argument("--n2v-fraction", type=float, help="Noise2Void (--target self): the fraction of each patch's "
                   "pixels masked, in (0, 0.1] (default 0.002)")
    p.add_argument("--cache", choices=registry.CACHE_MODES, default="auto",
                   help="what is kept of the decoded data between epochs: auto (the default: memory when the "
                   "decoded training split is under a quarter of the available memory, else streamed from disk), "
                   "memory, disk (a temporary folder, removed after the run) or none")
    p.add_argument("--normalize", metavar="dtype|percentile[:LOW,HIGH]", default=None,
                   help="images and volumes: dtype (the default: integers scaled by their type's maximum, floats "
                   "kept) or percentile (each image's 1st-99.8th percentiles mapped to 0-1, as CSBDeep; "
                   "percentile:LOW,HIGH sets them); an export records it and predict applies it")
    p.add_argument("--output", help="output folder; refused if it holds a file train writes (model.keras, ...) "
                   "or another train uses it (default runs/train_<data>_<model>, or the next free "
                   "runs/train_<data>_<model>-N)")
    p.set_defaults(func=commands.cmd_train)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a .keras model as a versioned SavedModel")
    p.add_argument("model", help="a .keras file")
    p.add_argument("--name", required=True, help="model name: a plain folder name under --export-dir")
    p.add_argument("--export-dir", default="saved_models")
    p.add_argument("--version", type=int, default=None, help="default: the last version + 1")
    p.add_argument("--class-names", help="comma-separated class names")
    p.add_argument("--self-ensemble", action="store_true", help="restoration: serve the mean over the 8 flips and "
                   "rotations of the input (8 forward passes; docs/restoration.md)")
    p.set_defaults(func=commands.cmd_export)


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="run an exported model on images or arrays, as TF Serving would")
    p.add_argument("model", help="saved_models/NAME (newest version) or saved_models/NAME/VERSION")
    p.add_argument("inputs", nargs="+", help="png/jpg images, .npy/.npz arrays, or .csv files (a header, one "
                   "sample per row; the model's feature columns are picked by name)")
    p.add_argument("--json", action="store_true", help="print TF Serving's JSON answer")
    p.add_argument("--out", default=None,
                   help="restoration models: where the restored image (PNG) or signal (CSV, .npy) goes: a file "
                        "for one input, else a folder (default: NAME_restored.EXT next to each input). An --out "
                        "file that exists is refused; a NAME_restored.EXT that exists becomes NAME_restored-2.EXT. "
                        "Segmentation models: where the class map (PNG of class ids, or .npy) goes (default: "
                        "NAME_mask.EXT next to each input)")
    p.add_argument("--overlay", action="store_true", help="segmentation models: also draw the class map over "
                   "the image in colour (one colour per class, background left clear) as NAME_overlay.png, "
                   "beside the class map")
    p.add_argument("--tiles", default=None, metavar="auto|none|N[xN]",
                   help="restoration and segmentation models: predict a large image in overlapping tiles of N "
                        "pixels a side (rounded up to the network's downsampling factor), or none (the whole "
                        "image at once); auto (the default) tiles only when the whole image would not fit --memory")
    p.add_argument("--memory", default=None, metavar="GB",
                   help="the memory budget of --tiles auto, in GB (default: a quarter of the available memory)")
    p.set_defaults(func=commands.cmd_predict)


def _add_request(sub) -> None:
    p = sub.add_parser("request", help="print the JSON body of a TF Serving REST :predict request")
    p.add_argument("model")
    p.add_argument("input")
    p.set_defaults(func=commands.cmd_request)


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="draw Grad-CAM, saliency, feature maps or filters of a model for one input")
    p.add_argument("model", help="a .keras file (every method), or an exported saved_models/NAME[/VERSION] "
                   "(saliency only: an export holds no layers)")
    p.add_argument("input", help="an image, .npy/.npz array or .csv file, read as predict reads it")
    p.add_argument("--out", required=True, help="the figure file to write: "
                   + ", ".join(explain_files.FIGURE_SUFFIXES) + " (a name without a suffix gets "
                   + explain_files.FIGURE_SUFFIXES[0] + "); a file that exists is refused")
    p.add_argument("--method", choices=explain_files.METHODS,
                   help="default: grad-cam (with the saliency curve for 1D inputs); saliency for an export")
    p.add_argument("--layer", help="the layer for grad-cam, feature-maps or filters (default: the last conv "
                   "block's activation, a U-Net's bottom for segmentation; all blocks; the first conv)")
    p.add_argument("--class", dest="class_index", type=int, help="the output unit to explain (default: the "
                   "predicted class, or the first output for regression; for a segmentation model, the class "
                   "whose predicted pixels grad-cam sums over, default 1, the first after the background)")
    p.add_argument("--sample", type=int, default=0, help="which sample of a file that holds several (default 0)")
    p.add_argument("--variant", choices=explain_files.CAM_VARIANTS, default=explain_files.CAM_VARIANTS[0],
                   help="hires (default; HiResCAM: each position weighed by its own gradient) or grad-cam "
                   "(keras.io's recipe: the gradient averaged over positions, which can point elsewhere "
                   "behind a flatten head)")
    p.set_defaults(func=commands.cmd_explain)


def _add_serving_config(sub) -> None:
    p = sub.add_parser("serving-config", help="write a TF Serving models.config for every exported model")
    p.add_argument("export_dir", nargs="?", default="saved_models")
    p.add_argument("--base-path", default="/models", help="where the models folder is mounted in the server")
    p.add_argument("--output", help="default: EXPORT_DIR/models.config; a file that dlimaging did not write "
                   "is never replaced")
    p.set_defaults(func=commands.cmd_serving_config)


def _add_tune(sub) -> None:
    p = sub.add_parser("tune", help="run or resume a tuning/*.toml experiment and export the best model")
    p.add_argument("config", help="an experiment file, e.g. tuning/digits_cnn.toml")
    p.add_argument("--max-trials", type=int, help="override [tuner] max_trials")
    p.add_argument("--max-epochs", type=int, help="override [tuner] max_epochs")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--export-dir", help="override [export] dir")
    p.add_argument("--overwrite", action="store_true",
                   help="start afresh instead of resuming (empties only a run folder that dlimaging tune made)")
    p.add_argument("--no-export", action="store_true", help="do not export the best model")
    p.add_argument("--cache", choices=registry.CACHE_MODES, help="override [data] cache (auto, memory, disk, none)")
    p.add_argument("--normalize", metavar="dtype|percentile[:LOW,HIGH]", help="override [data] normalize")
    role = p.add_mutually_exclusive_group()
    role.add_argument("--chief", metavar="HOST:PORT", help="serve the oracle for distributed workers")
    role.add_argument("--worker", metavar="HOST:PORT", help="run trials for the chief at HOST:PORT")
    p.add_argument("--worker-id", help="this worker's id, e.g. tuner1 (with --worker)")
    p.add_argument("--wait-for-chief", type=float, default=60.0, metavar="SECONDS",
                   help="how long a worker waits for the chief to answer before giving up (default 60)")
    p.add_argument("--verbose", action="store_true",
                   help="print one plain line per epoch (on a terminal a live line is shown anyway)")
    p.add_argument("--export-choice", type=_export_choice, metavar="CHOICE",
                   help="which trial to export: best (the default, or [export] choice); smallest-within=T: "
                   "the fewest parameters among the trials within T of the best objective; or ensemble=K: one "
                   "model whose output is the mean of the K best trials' outputs")
    p.set_defaults(func=commands.cmd_tune)


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="print a run's leaderboard and redraw its plots")
    p.add_argument("run_dir", help="runs/<name>")
    p.add_argument("--pareto", action="store_true",
                   help="list the Pareto front instead: the trials that no other beats on both the objective "
                   "and the parameter count (trial, objective, params, latency)")
    p.set_defaults(func=commands.cmd_report)


def build_parser() -> argparse.ArgumentParser:
    """The `dlimaging` parser: one sub-parser per command, each added by its own function."""
    parser = Parser(prog="dlimaging", description="Deep learning for imaging and spectroscopy.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    _add_datasets(sub)
    _add_train(sub)
    _add_export(sub)
    _add_predict(sub)
    _add_request(sub)
    _add_explain(sub)
    _add_serving_config(sub)
    _add_tune(sub)
    _add_report(sub)
    return parser
