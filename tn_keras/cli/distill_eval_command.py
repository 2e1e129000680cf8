"""``tn-keras distill-eval NAME --levels DIR``: how good is each distilled level?

Each level of an export (``DIR/level_<a>/``, as ``tn-keras distill`` writes it) is used as the
reference set of a nearest-reference classifier on the model's embeddings, and compared with
the same number of random real training images per class.

With ``--architectures convnet3,taylornet,relu,resnet18`` it is instead trained from scratch
into each architecture, against random real images of the same size, and printed as one
markdown table (`tn_keras.distill.cross_architecture`); NAME then only names the dataset.
"""
import os
import re

from tn_keras.cli import arguments
from tn_keras.distill import config


def add_parser(subparsers):
    p = subparsers.add_parser(
        "distill-eval", help="reference classification per distilled level vs random real")
    p.add_argument("name", help="zoo model whose embeddings classify")
    p.add_argument("--levels", required=True, help="distillation export folder (level_<a>/)")
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default) or a checkpoint folder / .keras file")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA)")
    p.add_argument("--split", default="test", help="test split (cifar10: also test_lossless)")
    p.add_argument("--test-images", type=arguments.positive_int,
                   help="classify only the first N test images (N >= 1)")
    p.add_argument("--seed", type=int, default=0, help="seeds the random real references")
    p.add_argument("--json", help="also write the rows to this JSON file")
    p.add_argument("--architectures", type=_architectures,
                   help="train each level from scratch into these architectures (comma-"
                        f"separated: {', '.join(config.ARCHITECTURES)}) and print one table")
    p.add_argument("--level", type=_integers,
                   help="--architectures: only these levels (comma-separated; default all)")
    p.add_argument("--seeds", type=_integers, default=(0, 1, 2),
                   help="--architectures: training seeds (default 0,1,2)")
    p.add_argument("--steps", type=arguments.positive_int_at_most(
                       config.MAX_STEPS, "Training steps per run (``--steps``)."),
                   help="--architectures: training steps per run (default: ConvNet-3's "
                        "protocol, 300 epochs)")
    p.set_defaults(run=run)


def _integers(text):
    import argparse

    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}")
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected non-negative integers; got {text!r}")
    return values


def _architectures(text):
    import argparse

    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in config.ARCHITECTURES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown architecture(s) {', '.join(unknown) or repr(text)}; choose from "
            f"{', '.join(config.ARCHITECTURES)}")
    return names


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
    if args.architectures:
        return run_cross_architecture(args)
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.distill import load_level
    from tn_keras.figures.distillation import reference_rows
    from tn_keras.utils.files import atomic_write_json

    levels = level_numbers(args.levels)
    dataset = zoo.info(args.name).dataset
    train = datasets.load(dataset, "train", data_dir=args.data_dir)
    test = datasets.load(dataset, args.split, data_dir=args.data_dir)
    if args.test_images is not None:
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


def run_cross_architecture(args):
    """``--architectures``: one markdown table of every level in every architecture."""
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.distill import cross_architecture
    from tn_keras.distill import load_level
    from tn_keras.utils.files import atomic_write_json

    present = level_numbers(args.levels)
    chosen = args.level if args.level is not None else present
    missing = sorted(set(chosen) - set(present))
    if missing:
        raise ValueError(f"--level {','.join(map(str, missing))}: not in {args.levels} "
                         f"(levels there: {','.join(map(str, present))})")
    dataset = zoo.info(args.name).dataset
    train = datasets.load(dataset, "train", data_dir=args.data_dir)
    test = datasets.load(dataset, args.split, data_dir=args.data_dir)
    if args.test_images is not None:
        test = (test[0][:args.test_images], test[1][:args.test_images])
    levels = {a: tuple(load_level(args.levels, a)) for a in chosen}
    rows = cross_architecture.evaluate(levels, train, test, dataset, args.architectures,
                                       args.seeds, args.steps,
                                       num_classes=zoo.info(args.name).num_classes)
    print(cross_architecture.markdown_table(rows, len(test[1])))
    if args.json:
        atomic_write_json(args.json, {"dataset": dataset, "levels_dir": args.levels,
                                      "split": args.split, "test_images": int(len(test[1])),
                                      "seeds": list(args.seeds), "protocol": "convnet3",
                                      "rows": rows})
