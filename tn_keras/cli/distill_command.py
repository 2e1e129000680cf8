"""``tn-keras distill NAME``: multi-level distillation of a zoo model's training data."""
import json
import os
import sys

from tn_keras.cli import arguments


def add_parser(subparsers):
    p = subparsers.add_parser(
        "distill", help="distil a dataset level by level with a trained zoo model")
    p.add_argument("name", help="zoo model NAME or NAME.TAG (its dataset is distilled)")
    p.add_argument("--levels", type=arguments.non_negative_int, required=True,
                   help="levels after level 0")
    p.add_argument("--out", required=True, help="export folder (level_<a>/ per level)")
    p.add_argument("--per-class", type=arguments.positive_int,
                   help="starting real images per class (default all)")
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default) or a checkpoint folder / .keras file")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA)")
    p.add_argument("--split", default="train")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing levels")
    group.add_argument("--resume", action="store_true", help="keep complete, verified levels")
    p.add_argument("--method", choices=("embedding", "distribution"), default="embedding",
                   help="embedding: match each group's mean embedding under the model "
                        "(default); distribution: match the class's distribution under random "
                        "ConvNets (better training sets, does not use the model)")
    p.add_argument("--match-against", choices=("previous", "level0"), default="previous",
                   help="--method distribution: match the previous level or the real level 0")
    p.add_argument("--steps", type=arguments.positive_int,
                   help="Adam steps per level (default: the method's)")
    p.add_argument("--learning-rate", type=arguments.positive_float,
                   help="grey levels per step (default: the method's)")
    p.add_argument("--ce-weight", type=arguments.non_negative_float, default=0.1)
    p.add_argument("--group-size", type=arguments.positive_int, default=2)
    p.add_argument("--embedding-layer", default="embedding")
    p.add_argument("--seed", type=arguments.non_negative_int, default=0)
    p.set_defaults(run=run)


def run(args):
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.distill import distill

    from tn_keras.distill.export import prepare_export_dir

    # Refuse an existing export folder before loading anything.
    if os.path.exists(args.out) and not (args.resume or args.overwrite):
        prepare_export_dir(args.out, resume=False, overwrite=False)
    dataset = zoo.info(args.name).dataset
    # Load the data and the model first: bad names/paths fail before anything is written.
    x, y = datasets.load(dataset, args.split, data_dir=args.data_dir)
    checkpoint = zoo.find(args.name, args.weights)
    model = arguments.load_checkpoint(args.name, args.weights)
    print(f"tn-keras distill: using {checkpoint.describe()}", file=sys.stderr)
    sha = checkpoint.manifest.sha256
    levels = distill(
        model, x, y, args.levels, group_size=args.group_size, steps=args.steps,
        learning_rate=args.learning_rate, ce_weight=args.ce_weight, method=args.method,
        match_against=args.match_against,
        embedding_layer=args.embedding_layer, per_class=args.per_class, seed=args.seed,
        export_dir=args.out, resume=args.resume, overwrite=args.overwrite,
        source={"dataset": dataset, "split": args.split},
        model_info={"name": checkpoint.full_name, "sha256": sha, "weights": str(args.weights)},
        progress=print,
    )
    summary = {lv.level: {"images": len(lv.y), "path": lv.path} for lv in levels}
    print(json.dumps(summary, indent=2))
