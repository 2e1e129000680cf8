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
    exported = p.add_mutually_exclusive_group()
    exported.add_argument("--export", metavar="PATH",
                          help="evaluate this export of the checkpoint instead (any format with "
                               "a runtime: its manifest names the format and is checked "
                               "first), with its top-1 agreement with the Keras model")
    exported.add_argument("--tflite", metavar="FILE",
                          help="evaluate this .tflite export of the checkpoint instead (its "
                               "manifest is checked first), with its top-1 agreement with the "
                               "Keras model")
    p.add_argument("--data-dir")
    p.add_argument("--max-examples", type=arguments.positive_int)
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: classify by the mean output over the image, "
                        "its mirror and both shifted one pixel (Keras models only)")
    p.set_defaults(run=run)


def run(args):
    from tn_keras import zoo
    from tn_keras.training import evaluate

    # A bad --tflite / --export file is refused before the (slow) checkpoint load.
    flag, path = (("--tflite", args.tflite) if args.tflite is not None
                  else ("--export", getattr(args, "export", None)))
    exported, export_manifest = (None, None) if path is None else (
        verified_tflite(path, args.name) if flag == "--tflite"
        else verified_export(path, args.name))
    checkpoint = zoo.find(args.name, args.weights)
    if exported is not None:
        _check_same_weights(path, export_manifest, checkpoint, flag)
    model = arguments.load_checkpoint(args.name, args.weights)
    print(f"tn-keras evaluate: using {checkpoint.describe()}", file=sys.stderr)
    dataset = zoo.info(args.name).dataset
    if args.tta and exported is not None:
        raise ValueError("--tta evaluates the Keras checkpoint; it cannot be combined with "
                         f"{flag}.")
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

    manifest = _verified_manifest(path, name, "--tflite", folder=False)
    return TFLiteModel(path), manifest


def verified_export(path, name):
    """The runtime of the export at ``path`` (the class its manifest's format registers,
    `tn_keras.export.formats`) and its manifest, after checking the one against the other."""
    from tn_keras.export import formats

    manifest = _verified_manifest(path, name, "--export", folder=os.path.isdir(path))
    record = formats.get_format(manifest.get("format"))
    runtime = record.load_runtime()
    if runtime is None:
        raise ValueError(f"--export {path}: format {record.name!r} has no runtime to run it "
                         "with (its ExportFormat's runtime is None).")
    return runtime(path), manifest


def _verified_manifest(path, name, flag, folder):
    """The manifest of the export at ``path`` (a file, or a ``folder``), checked: present,
    matching the export's sha256, and exported from ``name``'s architecture."""
    from tn_keras.export.manifest import folder_or_file_manifest
    from tn_keras.export.manifest import read_manifest
    from tn_keras.export.manifest import sha256_tree
    from tn_keras.utils.files import check_regular_file
    from tn_keras.utils.files import sha256_file

    if not folder:
        check_regular_file(path, f"{flag} file")
    manifest_file = folder_or_file_manifest(path, folder)
    if not os.path.lexists(manifest_file):
        raise FileNotFoundError(
            f"{flag} {path}: its manifest {manifest_file} (written by `tn-keras export`) is "
            "missing, so its sha256 cannot be checked.")
    arguments.read_json_object(manifest_file, "export manifest", required=("sha256",))
    manifest = read_manifest(manifest_file)
    digest = sha256_tree(path)[0] if folder else sha256_file(path)
    if digest != manifest["sha256"]:
        raise ValueError(f"{flag} {path} does not match the sha256 in its manifest (changed or "
                         "truncated since export).")
    # read_manifest moves an older manifest's "source" block into "provenance".
    exported_from = manifest["provenance"].get("model")
    if exported_from not in (None, name):
        (from_arch, _, from_tag) = exported_from.partition(".")
        (arch, _, tag) = name.partition(".")
        if from_arch != arch:
            raise ValueError(f"{flag} {path} was exported from {from_arch!r}, not {arch!r}.")
        if tag and from_tag and tag != from_tag:
            raise ValueError(f"{flag} {path} was exported from {exported_from!r}, not "
                             f"{name!r}.")
    return manifest


def _check_same_weights(path, manifest, checkpoint, flag="--tflite"):
    """An agreement with other weights than the exported ones would measure nothing: the
    export's manifest records the sha256 of the ``.keras`` file it came from."""
    exported_sha = manifest["provenance"].get("weights_sha256")
    if exported_sha and checkpoint.manifest.sha256 != exported_sha:
        raise ValueError(
            f"{flag} {path} was exported from weights with sha256 {exported_sha[:12]}, not "
            f"from the {checkpoint.describe()}; pass the checkpoint it came from with "
            "--weights.")
