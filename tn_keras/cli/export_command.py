"""``tn-keras export NAME``: write a SavedModel or a (quantised) TFLite file, with its manifest."""
import json
import os
import sys

from tn_keras.cli import arguments


def add_parser(subparsers):
    # The choices and defaults come from the library's config module, which imports neither
    # Keras nor TensorFlow: `tn-keras --help` stays fast and works without TensorFlow.
    from tn_keras.export import config
    from tn_keras.export import formats

    p = subparsers.add_parser(
        "export", help="export a zoo model to SavedModel, TFLite (LiteRT) or ONNX",
        description="Export a zoo model for deployment. The export is checked against the "
                    "Keras model and gets a manifest (<out>.json, or manifest.json inside a "
                    "SavedModel folder).",
    )
    p.add_argument("name", help="NAME or NAME.TAG")
    # Every registered format (`tn_keras.export.formats`), with what it writes.
    format_help = f"{formats.help_text()} (default {config.DEFAULT_FORMAT})"
    p.add_argument("--format", choices=config.FORMATS, default=config.DEFAULT_FORMAT,
                   help=format_help.replace("%", "%%"))  # argparse formats help with %
    p.add_argument("--out", required=True, type=arguments.output_path,
                   help=_out_help(formats.registered_formats()))
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default), a checkpoint folder / .keras file, or 'none' "
                        "for an untrained build (seeded with --seed)")
    p.add_argument("--seed", type=arguments.non_negative_int, default=0,
                   help="initialisation seed for --weights none")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--activation-quantile", default=config.DEFAULT_ACTIVATION_QUANTILE,
                   help="tflite_int8: int8 range of each activation = its [1-q, q] quantiles "
                        "on the calibration images; 'auto' (default) picks the q whose "
                        "outputs are closest to the Keras model's, 1 is TFLite's min/max")
    p.add_argument("--no-fold-batch-norm", dest="fold_batch_norm", action="store_false",
                   help="TFLite formats: keep BatchNormalization layers as separate ops")
    p.add_argument("--no-fold-normalization", dest="fold_normalization", action="store_false",
                   help="TFLite formats: keep the input Normalization as separate ops")
    p.add_argument("--input-dtype", choices=config.ONNX_INPUT_DTYPES, default="float32",
                   help="--format onnx: the graph's input type; uint8 takes decoded image "
                        "files as they are (default float32)")
    p.add_argument("--calibration", metavar="LEVEL_DIR",
                   help="quantised formats: calibrate on a distilled level folder "
                        "(<distill --out>/level_<a>) instead of 500 training images")
    p.add_argument("--data-dir",
                   help="dataset folder for the int8 calibration images (default: "
                        "$TN_KERAS_DATA, ...)")
    p.set_defaults(run=run)


def _out_help(records):
    folders = [f.name for f in records if f.writes_folder]
    suffixes = list(dict.fromkeys(f.suffix for f in records if not f.writes_folder))
    return (f"output folder ({', '.join(folders)}) or {' / '.join(suffixes)} file" if folders
            else f"output {' / '.join(suffixes)} file")


def _check_level_dir(folder):
    """``--calibration``: a distilled level folder with a sound manifest."""
    if not os.path.isdir(folder):
        raise NotADirectoryError(f"--calibration {folder}: not a folder (expected "
                                 "<distill --out>/level_<a>).")
    arguments.read_json_object(os.path.join(folder, "manifest.json"), "level manifest")


def _needs_tensorflow():
    raise SystemExit("tn-keras export: error: SavedModel and TFLite are TensorFlow formats and "
                     "TensorFlow is not installed; install it (pip install 'tn_keras[cpu]') to "
                     "export. Training, evaluation and prediction work without it under "
                     "KERAS_BACKEND=jax or torch.")


def config_from_args(args, checkpoint=None, model_name=None):
    """The `ExportConfig` the command line asks for (``checkpoint``, ``model_name``: the
    provenance of the loaded weights; default ``args.name``)."""
    from tn_keras.export.config import ExportConfig

    quantile = args.activation_quantile
    if quantile != "auto":
        try:
            quantile = float(quantile)
        except ValueError:
            pass  # ExportConfig names the argument and the valid values
    return ExportConfig(
        format=args.format, representative_data=args.calibration, overwrite=args.overwrite,
        input_dtype=args.input_dtype,
        model_name=model_name or args.name, checkpoint=checkpoint, data_dir=args.data_dir,
        activation_quantile=quantile, fold_batch_norm=args.fold_batch_norm,
        fold_normalization=args.fold_normalization)


def run(args):
    try:
        from tn_keras.export import export
    except ImportError as e:
        if "tensorflow" not in str(e):
            raise
        _needs_tensorflow()
    import keras

    from tn_keras import zoo
    from tn_keras.export.staging import check_replaceable
    from tn_keras.export.staging import recover_unlocked
    from tn_keras.utils.files import check_can_write

    # Refuse an existing output before loading anything (loading CIFAR weights takes a while),
    # once what a killed export of it left is resolved (its previous state restored); with
    # --overwrite, one that is not an export (export() checks again under the lock).
    recover_unlocked(args.out)
    check_can_write(args.out, args.overwrite)
    config = config_from_args(args)  # refused here: a config is checked when made
    if os.path.isdir(args.out) == config.writes_folder:  # else export() names the mismatch
        check_replaceable(args.out, config.writes_folder)
    if args.calibration is not None:
        _check_level_dir(args.calibration)
    if args.weights.lower() == "none":
        keras.utils.set_random_seed(args.seed)
        model = zoo.build(args.name)
    else:
        found = zoo.find(args.name, args.weights)
        model = arguments.load_checkpoint(args.name, args.weights)
        print(f"tn-keras export: using {found.describe()}", file=sys.stderr)
        config = config_from_args(args, found.path, found.full_name)
    manifest = export(model, args.out, config)
    summary = {k: manifest[k] for k in ("format", "sha256", "size_bytes", "parity_check")}
    summary["path"] = os.path.abspath(args.out)
    summary["weights"] = ("untrained (--weights none)" if config.checkpoint is None
                          else config.checkpoint)
    print(json.dumps(summary, indent=2))
