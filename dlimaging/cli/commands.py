"""The command line's sub-commands: each reads its arguments and calls the package; no logic of its own."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import sys
from typing import Any, Sequence

from dlimaging.errors import InputError


class CLIError(Exception):
    """An error shown to the user as one line, with exit status 2."""


def parse_value(text: str) -> Any:
    """'3' → 3, '0.1' → 0.1, 'true' → True, 'none' → None, '16,32' → (16, 32), 'relu' → 'relu'."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if "," in text:
        return tuple(parse_value(part) for part in text.split(",") if part.strip())
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def parse_settings(items: Sequence[str] | None) -> dict[str, Any]:
    """`--set key=value` items into builder arguments; `augmentation.rotation=0.1` nests."""
    settings: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise CLIError(f"--set expects key=value. Received: {item!r}")
        key, value = item.split("=", 1)
        key = key.strip()
        if not key:
            raise CLIError(f"--set expects key=value. Received: {item!r}")
        if "." in key:
            outer, inner = key.split(".", 1)
            settings.setdefault(outer, {})[inner] = parse_value(value)
        else:
            settings[key] = parse_value(value)
    return settings


def cmd_datasets(args) -> int:
    from dlimaging.data.dataset import list_datasets

    entries = list_datasets()
    width = max(len(name) for name in entries)
    for name, description in entries.items():
        print(f"{name:<{width}}  {description}")
    return 0


def cmd_train(args) -> int:
    from dlimaging import registry
    from dlimaging.data.normalize_options import check_normalize
    from dlimaging.data.pairs import is_pairs
    from dlimaging.training import data_options, task_of_family, train

    task = task_of_family(args.model, args.task)
    check_normalize(args.normalize, "--normalize")
    # Noise2Void (--target self) takes a folder of noisy images, and a pairs source its low images, without
    # --corruption (load_dataset checks).
    if (args.corruption is None and args.target != "self" and task is not None
            and registry.task(task).labels == registry.CLEAN and not is_pairs(args.data)):
        raise InputError(f"--model {args.model} (task {task!r}) needs --corruption, e.g. "
                         "--corruption '{kind = \"gaussian\", sigma = 0.1}'. Received: no --corruption")
    result = train(
        args.data, model=args.model, epochs=args.epochs, batch_size=args.batch_size,
        overrides=parse_settings(args.set), output_dir=args.output, patience=args.patience,
        seed=args.seed, printer=lambda line: print(line, flush=True), task=args.task,
        target=_names("--target", args.target), features=_names("--features", args.features), test=args.test,
        data_settings=data_options(corruption=_corruption(args.corruption), patch_size=args.patch_size,
                                   patches_per_epoch=args.patches_per_epoch, n2v_fraction=args.n2v_fraction,
                                   cache=args.cache, normalize=args.normalize),
    )
    print(f"Stopped after {result['epochs_run']} epoch(s); early stopping on {result['monitor']} "
          f"({result['direction']}).")
    if result["metrics"]:
        print("Test metrics:")
    for key, value in result["metrics"].items():
        print(f"{key:>16}: {value:.4f}")
    print(f"Model:  {result['model_path']}")
    print(f"Curves: {result['curves']}")
    if result["plots"]:
        print("Plots:  " + ", ".join(result["plots"]))
    print(f"Export it: dlimaging export {result['model_path']} --name NAME")
    return 0


def _names(option: str, text: str | None) -> str | list[str] | None:
    """`--target a,b` → ["a", "b"]; `--target a` → "a"."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError(f"{option} must name one or more columns, comma-separated. Received: {option}={text!r}")
    return names[0] if len(names) == 1 else names


def _corruption(text: str | None):
    """`--corruption`: the spec as a tuning file writes it, `{kind = "gaussian", sigma = 0.1}` or a list of them."""
    if text is None:
        return None
    from dlimaging.data.corruption import check_corruption
    from dlimaging.tuning.experiment import (
        tomllib,  # tomllib, or tomli before Python 3.11
    )

    try:
        value = tomllib.loads(f"corruption = {text}")["corruption"]
    except tomllib.TOMLDecodeError:
        raise InputError(
            "--corruption must be written as in a tuning file: '{kind = \"gaussian\", sigma = 0.1}', or a list "
            f"[{{...}}, {{...}}] of steps applied in order. Received: --corruption={text!r}") from None
    return check_corruption(value, "--corruption")


def cmd_export(args) -> int:
    import keras

    from dlimaging.files import check_folder_name, check_output_dir, read_json
    from dlimaging.serving.export import export_saved_model

    path = pathlib.Path(args.model)
    if not path.is_file():
        raise CLIError(f"export: no such model file: {args.model}")
    check_folder_name("--name", args.name)
    check_output_dir(pathlib.Path(args.export_dir) / args.name, "--export-dir folder")
    sidecar = path.with_name("metadata.json")
    info = read_json(sidecar, "model metadata") if sidecar.is_file() else {}
    try:
        model = keras.saving.load_model(path)
    except Exception as error:
        raise CLIError(f"export: cannot load {args.model} as a Keras model ({type(error).__name__}: {error})") from None
    class_names = args.class_names.split(",") if args.class_names else info.get("class_names")
    metadata = {k: info[k] for k in ("hyperparameters", "metrics", "source", "normalize") if k in info}
    target = export_saved_model(
        model, pathlib.Path(args.export_dir) / args.name, version=args.version,
        class_names=class_names, metadata=metadata, task=info.get("task"),
        value_range=tuple(info.get("value_range", (0.0, 1.0))), target_names=info.get("target_names"),
        axis=info.get("axis"), features=info.get("features"), self_ensemble=args.self_ensemble,
    )
    print(f"Exported {target}")
    print(_serve_hint(pathlib.Path(args.export_dir), args.name))
    return 0


def _host_path(path: pathlib.Path) -> str:
    return str(path) if path.is_absolute() else f"$PWD/{path}"


def _serve_hint(export_dir: pathlib.Path, name: str) -> str:
    return (
        "Serve it: docker run -p 8501:8501 -p 8500:8500 "
        f"-v \"{_host_path(export_dir / name)}:/models/{name}\" -e MODEL_NAME={name} tensorflow/serving"
    )


def cmd_predict(args) -> int:
    from dlimaging.data.normalize import predict_normalized
    from dlimaging.serving.exports import (
        predict_exported,
        read_metadata,
        resolve_version_dir,
    )
    from dlimaging.serving.inputs import load_inputs
    from dlimaging.serving.rest import serving_response

    version_dir = resolve_version_dir(args.model)
    metadata = read_metadata(version_dir)
    if metadata["input"].get("any_size"):  # restoration, segmentation: a file per input
        return _restore(version_dir, metadata, args)
    if args.overlay:
        raise InputError(f"--overlay is for segmentation models; this one is {metadata['task']}. Received: --overlay")
    for option, value in (("--tiles", args.tiles), ("--memory", args.memory)):
        if value is not None:
            raise InputError(f"{option} is for restoration and segmentation models, whose output has the input's "
                             f"size; a {metadata['task']} model takes one size. Received: {option} {value}")
    if args.out is not None:
        raise InputError(f"--out is for restoration and segmentation models, which write files; {metadata['task']} "
                         "models print "
                         f"their answers. Received: --out {args.out}")
    x, names = load_inputs(args.inputs, metadata["input"]["shape"], axis=metadata["input"].get("axis"),
                           features=metadata["input"].get("features"))
    response = serving_response(predict_normalized(lambda batch: predict_exported(version_dir, batch, metadata), x,
                                                   metadata.get("normalize"), None, back=False))
    if args.json:
        print(json.dumps(response))
        return 0
    print(f"{metadata.get('name', '?')} version {metadata.get('version', version_dir.name)} ({metadata['task']})")
    for name, row in zip(names, response["predictions"]):
        print(f"{name}: {_prediction_text(row, metadata)}")
    return 0


def _restore(version_dir, metadata, args) -> int:
    from dlimaging.serving.restoration import restore_files
    from dlimaging.serving.segmentation import segment_files

    masks = "class_map" in metadata.get("outputs", ())
    if args.overlay and not masks:
        raise InputError(f"--overlay is for segmentation models; this one is {metadata['task']}. Received: --overlay")
    options = {"tiles": args.tiles or "auto", "memory": args.memory}
    if masks:
        written = segment_files(version_dir, metadata, args.inputs, args.out, overlay=args.overlay, **options)
    else:
        written = restore_files(version_dir, metadata, args.inputs, args.out, **options)
    if args.json:
        key = "class_maps" if masks else "restored"
        print(json.dumps({key: [{"input": source, "output": str(target), "shape": list(shape),
                                 **({"overlay": str(drawn[0])} if drawn else {})}
                                for source, target, shape, *drawn in written]}))
        return 0
    print(f"{metadata.get('name', '?')} version {metadata.get('version', version_dir.name)} ({metadata['task']})")
    for source, target, shape, *drawn in written:
        print(f"{source} {tuple(shape)} → {target}" + (f", {drawn[0]}" if drawn else ""))
    return 0


def _value(value: float) -> str:
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3e}"


def _prediction_text(row: dict[str, Any], metadata: dict[str, Any]) -> str:
    """One served answer, for a person: a class and its probability, each label's probability,
    or each target's value by name."""
    class_names = metadata.get("class_names") or []
    if "class_id" in row:
        label = row.get("class_name", row["class_id"])
        return f"{label} (p={max(row['probabilities']):.3f})"
    if "probabilities" in row:
        probabilities = row["probabilities"]
        if len(probabilities) == 1:  # a yes/no unit: the probability of the second class
            positive = class_names[-1] if len(class_names) == 2 else "1"
            negative = class_names[0] if len(class_names) == 2 else "0"
            decided = positive if probabilities[0] >= 0.5 else negative
            return f"p({positive})={probabilities[0]:.3f} → {decided}"
        labels = class_names if len(class_names) == len(probabilities) else [str(i) for i in range(len(probabilities))]
        return ", ".join(f"{label}={p:.3f}" for label, p in zip(labels, probabilities))
    values = row["predictions"]
    values = values if isinstance(values, list) else [values]
    targets = metadata.get("target_names") or []
    if len(targets) != len(values):
        targets = [f"y{i + 1}" for i in range(len(values))] if len(values) > 1 else ["y"]
    return ", ".join(f"{target}={_value(v)}" for target, v in zip(targets, values))


def cmd_request(args) -> int:
    from dlimaging.serving.exports import read_metadata, resolve_version_dir
    from dlimaging.serving.rest import request_inputs, rest_request

    version_dir = resolve_version_dir(args.model)
    metadata = read_metadata(version_dir)
    print(json.dumps(rest_request(request_inputs(args.input, metadata), metadata)))
    return 0


def cmd_explain(args) -> int:
    from dlimaging.explain.files import explain_file

    path, what = explain_file(args.model, args.input, args.out, method=args.method, layer=args.layer,
                              class_index=args.class_index, sample=args.sample, variant=args.variant)
    print(f"Wrote {path}: {what}")
    return 0


def cmd_serving_config(args) -> int:
    from dlimaging.files import check_output_file, write_atomically
    from dlimaging.serving.export import SERVING_CONFIG_MARK
    from dlimaging.serving.rest import serving_config

    output = pathlib.Path(args.output) if args.output else pathlib.Path(args.export_dir) / "models.config"
    check_output_file(output, "--output")
    if output.is_file():
        with open(output, "rb") as handle:
            first = handle.readline().decode("utf-8", "replace").strip()
        if first != SERVING_CONFIG_MARK:
            raise CLIError(
                f"serving-config: {output} was not written by dlimaging serving-config (its first line is not "
                f"{SERVING_CONFIG_MARK!r}); it was left as it is. Pass --output to write elsewhere, or remove it."
            )
    text = serving_config(args.export_dir, base_path=args.base_path)
    write_atomically(output, text)
    print(f"Wrote {output}")
    print(
        "Serve them: docker run -p 8500:8500 -p 8501:8501 "
        f"-v \"{_host_path(pathlib.Path(args.export_dir))}:/models\" tensorflow/serving --model_config_file=/models/{output.name}"
    )
    return 0


def cmd_tune(args) -> int:
    from dlimaging.data.normalize_options import check_normalize_setting
    from dlimaging.tuning.experiment import load_experiment
    from dlimaging.tuning.results import format_leaderboard
    from dlimaging.tuning.search import TuningError, run_search

    experiment = load_experiment(args.config)
    if args.cache is not None:
        experiment = dataclasses.replace(experiment, data=dataclasses.replace(experiment.data, cache=args.cache))
    if args.normalize is not None:
        check_normalize_setting("--normalize", args.normalize)
        experiment = dataclasses.replace(experiment, data=dataclasses.replace(experiment.data,
                                                                              normalize=args.normalize))
    print(f"Tuning {experiment.name}: {experiment.tuner.algorithm} search on {experiment.data.source}, "
          f"objective {experiment.objective}; run folder {pathlib.Path(args.runs_dir) / experiment.name}", flush=True)

    def printer(line):
        print(line, flush=True)

    try:
        result = run_search(
            experiment, runs_dir=args.runs_dir, export_dir=args.export_dir, overwrite=args.overwrite,
            max_trials=args.max_trials, max_epochs=args.max_epochs, chief=args.chief, worker=args.worker,
            worker_id=args.worker_id, printer=printer, export=False if args.no_export else None,
            wait_for_chief_seconds=args.wait_for_chief, verbose=args.verbose, export_choice=args.export_choice,
        )
    except TuningError as error:
        print(f"dlimaging tune: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"dlimaging tune: interrupted; completed trials are kept in {pathlib.Path(args.runs_dir) / experiment.name}. "
              "Run the same command again (without --overwrite) to resume.", file=sys.stderr)
        return 130
    if result.best is None:  # a worker: the chief reports
        return 0
    print()
    print(format_leaderboard(result.trials, result.objective, result.direction))
    best = result.best
    chosen = "Best" if best.choice == "best" else f"Chosen ({best.choice})"
    what = (f"the mean of trials {', '.join(map(str, best.members))} (best: trial {best.trial}, "
            f"{result.objective}={best.score:.4f})" if best.members
            else f"trial {best.trial} at epoch {best.best_epoch}: {result.objective}={best.score:.4f}")
    print(f"{chosen}: {what}" + "".join(f", {k}={v:.4f}" for k, v in best.test_metrics.items()))
    if best.choice != "best":
        print(f"  why: {best.why}")
    print(f"Results: {result.run_dir / 'results.json'}, {result.run_dir / 'results.csv'}, {result.run_dir / 'plots'}/")
    print(f"TensorBoard: tensorboard --logdir {result.run_dir / 'tensorboard'}")
    if result.export_path:
        export_dir = result.export_path.parent.parent
        print(f"Exported: {result.export_path}")
        print(_serve_hint(export_dir, experiment.name))
    return 0


def cmd_report(args) -> int:
    from dlimaging.tuning.results import report

    text, paths = report(args.run_dir, pareto=args.pareto)
    print(text)
    print("Plots: " + ", ".join(str(p) for p in paths))
    return 0


# ---------------------------------------------------------------- parser


