"""``tn-keras distill NAME``: multi-level distillation of a zoo model's training data.

Every choice list and default comes from `tn_keras.distill.config`, and the command builds the
same `DistillConfig` / `LevelExportConfig` the library takes.
"""
import argparse
import json
import logging
import os
import sys

from tn_keras.cli import arguments

from tn_keras.distill import config


#: ``--steps``: a count per level, and not so large that it can only be a typo.
STEPS = arguments.positive_int_at_most(config.MAX_STEPS, "Steps per level (``--steps``).")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "distill", help="distil a dataset level by level with a trained zoo model")
    p.add_argument("name", help="zoo model NAME or NAME.TAG (its dataset is distilled)")
    p.add_argument("--levels", type=arguments.non_negative_int, required=True,
                   help="levels after level 0")
    p.add_argument("--out", required=True, type=arguments.output_path,
                   help="export folder (level_<a>/ per level)")
    p.add_argument("--per-class", type=arguments.positive_int,
                   help="starting real images per class (default all)")
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default) or a checkpoint folder / .keras file")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA)")
    p.add_argument("--split", default="train")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--overwrite", action="store_true", help="replace existing levels")
    group.add_argument("--resume", action="store_true", help="keep complete, verified levels")
    p.add_argument("--method", choices=tuple(config.METHODS), default=config.DEFAULT_METHOD,
                   help="; ".join(f"{m.name}: {m.help}" for m in config.METHODS.values()))
    p.add_argument("--match-against", choices=config.MATCH_AGAINST,
                   help="--method distribution/dm: match the previous level, the real level "
                        "0 or the whole class (default: the method's: previous; dm: class)")
    p.add_argument("--embedding-network", choices=config.EMBEDDING_NETWORKS,
                   help="--method dm: the random embedding networks (default "
                        f"{config.DM_DEFAULTS['embedding_network']})")
    p.add_argument("--real-batch", type=arguments.positive_int,
                   help="--method dm: real images per class and iteration (default "
                        f"{config.DM_DEFAULTS['real_batch']})")
    p.add_argument("--dsa", action=argparse.BooleanOptionalAction,
                   help="--method dm: DSA siamese augmentation (default on)")
    p.add_argument("--formation", type=arguments.positive_int,
                   help="--method dm: multi-formation factor f, f^2 images at 1/f of the size "
                        "stored in each image (needs --levels 1; default "
                        f"{config.DM_DEFAULTS['formation']})")
    p.add_argument("--time-budget", metavar="DURATION",
                   help="--method dm: stop after DURATION (150m, 2h, 2h20m, 90s, or seconds) with the "
                        "level's progress saved (exit 6); --resume continues it")
    p.add_argument("--init", choices=config.INIT_MODES,
                   help="start of each image: the group's mean or first member (default: the "
                        "method's)")
    p.add_argument("--steps", type=STEPS,
                   help=f"Adam steps per level, 1 to {config.MAX_STEPS:,} (default: the "
                        "method's)")
    p.add_argument("--learning-rate", type=arguments.positive_float,
                   help="grey levels per step (default: the method's)")
    p.add_argument("--ce-weight", type=arguments.non_negative_float,
                   default=config.DEFAULT_CE_WEIGHT)
    p.add_argument("--group-size", type=arguments.positive_int, default=config.DEFAULT_GROUP_SIZE)
    p.add_argument("--embedding-layer", default=config.DEFAULT_EMBEDDING_LAYER)
    p.add_argument("--seed", type=arguments.non_negative_int, default=0)
    p.set_defaults(run=run)


def settings_from_args(args) -> config.DistillConfig:
    """The `DistillConfig` of a parsed ``tn-keras distill`` command line."""
    return config.DistillConfig(
        levels=args.levels, group_size=args.group_size, steps=args.steps,
        learning_rate=args.learning_rate, ce_weight=args.ce_weight,
        embedding_layer=args.embedding_layer, per_class=args.per_class, seed=args.seed,
        init=args.init, method=args.method, match_against=args.match_against,
        embedding_network=args.embedding_network, real_batch=args.real_batch, dsa=args.dsa,
        formation=args.formation, time_budget=args.time_budget)


def show_progress():
    """The distillation's progress lines (``method="dm"`` logs its loss and seconds per
    iteration every 500 iterations to the ``tn_keras.distill`` logger) on stderr, so that a
    level that takes an hour says where it is."""
    logger = logging.getLogger("tn_keras.distill")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("tn-keras distill: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


class _StderrHandler(logging.StreamHandler):
    """Writes to the ``sys.stderr`` of the moment (a second command in one process, or a
    test capturing it, gets the lines), not to the one it was made with."""

    def emit(self, record):
        self.stream = sys.stderr
        super().emit(record)


def run(args):
    show_progress()
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.distill import distill
    from tn_keras.distill.level_files import prepare_export_dir

    # Refuse an existing export folder, and bad settings, before loading anything.
    if os.path.exists(args.out) and not (args.resume or args.overwrite):
        prepare_export_dir(args.out, resume=False, overwrite=False)
    settings = settings_from_args(args).resolved()
    dataset = zoo.info(args.name).dataset
    # Load the data and the model first: bad names/paths fail before anything is written.
    x, y = datasets.load(dataset, args.split, data_dir=args.data_dir)
    checkpoint = zoo.find(args.name, args.weights)
    model = arguments.load_checkpoint(args.name, args.weights)
    print(f"tn-keras distill: using {checkpoint.describe()}", file=sys.stderr)
    export = config.LevelExportConfig(
        directory=args.out, resume=args.resume, overwrite=args.overwrite,
        dataset={"dataset": dataset, "split": args.split},
        model_info={"name": checkpoint.full_name, "sha256": checkpoint.manifest.sha256,
                    "weights": str(args.weights)})
    levels = distill(model, x, y, settings=settings, export=export, progress=print)
    summary = {lv.level: {"images": len(lv.y), "path": lv.path} for lv in levels}
    print(json.dumps(summary, indent=2))
