"""``tn-keras evaluate NAME``: accuracy of a checkpoint, or of an export of it, on the test set."""
import json
import os
import sys

from tn_keras.cli import arguments


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="evaluate a checkpoint on the real test split")
    p.add_argument("name", help="NAME or NAME.TAG (default: the default tag)")
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default) or a checkpoint folder / .keras file")
    p.add_argument("--tflite", metavar="FILE",
                   help="evaluate this .tflite export of the checkpoint instead (its manifest "
                        "is checked first), with its top-1 agreement with the Keras model")
    p.add_argument("--data-dir")
    p.add_argument("--max-examples", type=arguments.positive_int)
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: classify by the mean output over the image, "
                        "its mirror and both shifted one pixel (Keras models only)")
    p.set_defaults(run=run)


def run(args):
    from tn_keras import zoo
    from tn_keras.training import evaluate

    # A bad --tflite file is refused before the (slow) checkpoint load.
    exported, export_manifest = (None, None) if args.tflite is None else verified_tflite(
        args.tflite, args.name)
    checkpoint = zoo.find(args.name, args.weights)
    if exported is not None:
        _check_same_weights(args.tflite, export_manifest, checkpoint)
    model = arguments.load_checkpoint(args.name, args.weights)
    print(f"tn-keras evaluate: using {checkpoint.describe()}", file=sys.stderr)
    dataset = zoo.info(args.name).dataset
    if args.tta and exported is not None:
        raise ValueError("--tta evaluates the Keras checkpoint; it cannot be combined with "
                         "--tflite.")
    if exported is None:
        results = evaluate(model, dataset, data_dir=args.data_dir,
                           max_examples=args.max_examples, tta=args.tta)
    else:
        results = evaluate(exported, dataset, data_dir=args.data_dir,
                           max_examples=args.max_examples, reference=model)
    print(json.dumps(results, indent=2))


def verified_tflite(path, name):
    """The `TFLiteModel` at ``path`` and its manifest, after checking the one against the
    other."""
    from tn_keras.export import TFLiteModel
    from tn_keras.export import read_manifest
    from tn_keras.utils.files import check_regular_file
    from tn_keras.utils.files import sha256_file

    check_regular_file(path, "--tflite file")
    if not os.path.lexists(path + ".json"):
        raise FileNotFoundError(
            f"--tflite {path}: its manifest {path}.json (written by `tn-keras export`) is "
            "missing, so its sha256 cannot be checked.")
    arguments.read_json_object(path + ".json", "export manifest", required=("sha256",))
    manifest = read_manifest(path, "tflite")
    if sha256_file(path) != manifest["sha256"]:
        raise ValueError(f"--tflite {path} does not match the sha256 in its manifest (changed or "
                         "truncated since export).")
    # read_manifest moves an older manifest's "source" block into "provenance".
    exported_from = manifest["provenance"].get("model")
    if exported_from not in (None, name):
        (from_arch, _, from_tag) = exported_from.partition(".")
        (arch, _, tag) = name.partition(".")
        if from_arch != arch:
            raise ValueError(f"--tflite {path} was exported from {from_arch!r}, not {arch!r}.")
        if tag and from_tag and tag != from_tag:
            raise ValueError(f"--tflite {path} was exported from {exported_from!r}, not "
                             f"{name!r}.")
    return TFLiteModel(path), manifest


def _check_same_weights(path, manifest, checkpoint):
    """An agreement with other weights than the exported ones would measure nothing: the
    export's manifest records the sha256 of the ``.keras`` file it came from."""
    exported_sha = manifest["provenance"].get("weights_sha256")
    if exported_sha and checkpoint.manifest.sha256 != exported_sha:
        raise ValueError(
            f"--tflite {path} was exported from weights with sha256 {exported_sha[:12]}, not "
            f"from the {checkpoint.describe()}; pass the checkpoint it came from with "
            "--weights.")
