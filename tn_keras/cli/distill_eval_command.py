"""``tn-keras distill-eval NAME --levels DIR``: reference classification per distilled level.

Each level of an export (``DIR/level_<a>/``, as ``tn-keras distill`` writes it) is used as the
reference set of a nearest-reference classifier on the model's embeddings, and compared with
the same number of random real training images per class.
"""
import os
import re


def add_parser(subparsers):
    p = subparsers.add_parser(
        "distill-eval", help="reference classification per distilled level vs random real")
    p.add_argument("name", help="zoo model whose embeddings classify")
    p.add_argument("--levels", required=True, help="distillation export folder (level_<a>/)")
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default) or a checkpoint folder / .keras file")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA)")
    p.add_argument("--split", default="test", help="test split (cifar10: also test_lossless)")
    p.add_argument("--test-images", type=int, help="classify only the first N test images")
    p.add_argument("--seed", type=int, default=0, help="seeds the random real references")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.set_defaults(run=run)


def level_numbers(folder):
    """The levels present in an export folder, sorted."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"--levels {folder}: no such folder")
    levels = sorted(int(m.group(1)) for m in map(re.compile(r"level_(\d+)$").match,
                                                  os.listdir(folder)) if m)
    if not levels:
        raise ValueError(f"--levels {folder}: no level_<a>/ folder in it")
    return levels


def run(args):
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.distill import load_level
    from tn_keras.figures.distillation import reference_rows
    from tn_keras.utils.files import atomic_write_json

    levels = level_numbers(args.levels)
    dataset = zoo.info(args.name).dataset
    train = datasets.load(dataset, "train", data_dir=args.data_dir)
    test = datasets.load(dataset, args.split, data_dir=args.data_dir)
    if args.test_images:
        test = (test[0][:args.test_images], test[1][:args.test_images])
    model = zoo.load(args.name, weights=args.weights, compile=False)
    loaded = [(a,) + tuple(load_level(args.levels, a)) for a in levels]
    rows = reference_rows(model, loaded, train, test, args.seed)
    print(f"{'level':>5} {'per class':>9} {'distilled':>9} {'random real':>11}  (nearest "
          f"reference, {len(test[1])} {args.split} images)")
    for r in rows:
        print(f"{r['level']:>5} {r['per_class']:>9} {r['distilled_nearest']:>9.2%} "
              f"{r['random_nearest']:>11.2%}")
    if args.json:
        atomic_write_json(args.json, {"model": args.name, "levels_dir": args.levels,
                                      "split": args.split, "seed": args.seed, "rows": rows})
