"""``tn-keras train NAME``: train a zoo model with its recipe; write checkpoint + manifest."""
import dataclasses
import json
import os
import sys

from tn_keras.cli import arguments
from tn_keras.cli.arguments import parse_model_kwargs  # noqa: F401  (its documented home)


def add_parser(subparsers):
    from tn_keras.training import config

    p = subparsers.add_parser("train", help="train a zoo model on its real dataset")
    p.add_argument("name", help="NAME or NAME.TAG: the architecture, and the tag to write")
    p.add_argument("--tag", help="tag of the new checkpoint (default 'local'); a shipped tag "
                                 "is refused: a local run never shadows it")
    p.add_argument("--init-from", metavar="NAME[.TAG]",
                   help="start from this checkpoint's weights (all layers but the classifier "
                        "head): fine-tuning")
    p.add_argument("--init-head", action="store_true",
                   help="with --init-from: copy its classifier head too, to go on training "
                        "the same task (e.g. --recipe mnist_low_order)")
    p.add_argument("--freeze-body", action="store_true",
                   help="with --init-from: train the new head only, the body's weights and "
                        "BatchNorm statistics kept as loaded")
    p.add_argument("--recipe", metavar="RECIPE",
                   help="train with this registered recipe instead of the architecture's own "
                        "(tn-keras list --recipes names them)")
    p.add_argument("--epochs", type=arguments.positive_int, help="default: the recipe's")
    p.add_argument("--batch-size", type=arguments.positive_int, help="default: the recipe's")
    p.add_argument("--time-budget", metavar="DURATION",
                   help="plan the epochs so that training and the final evaluation fit in "
                        "DURATION (150m, 2h, 2h20m, 90s, or seconds); instead of --epochs")
    p.add_argument("--learning-rate", type=arguments.positive_float,
                   help="peak learning rate of the warm-up + cosine schedule (default: the "
                        "recipe's)")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA, tfds, download)")
    p.add_argument("--out", type=arguments.output_path,
                   help="checkpoint folder (default: $TN_KERAS_HOME/models/NAME/TAG)")
    p.add_argument("--seed", type=arguments.non_negative_int, default=config.DEFAULT_SEED)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true",
                       help="continue an interrupted run (same arguments); on a finished run, "
                            "say so and exit 0")
    group.add_argument("--overwrite", action="store_true",
                       help="delete the previous run in --out, then train")
    p.add_argument("--strategy", choices=config.STRATEGIES, default=config.DEFAULT_STRATEGY,
                   help="mirrored / multiworker: TensorFlow backend; data_parallel: JAX backend "
                        "(keras.distribution over all local devices)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="bfloat16 compute, float32 variables (mixed_bfloat16)")
    p.add_argument("--max-train-examples", type=arguments.positive_int,
                   help="train on the first N images only")
    p.add_argument("--max-eval-examples", type=arguments.positive_int,
                   help="evaluate on the first N images only")
    p.add_argument("--model-kwargs", nargs="+", metavar="KEY=VALUE", default=[],
                   help="arguments of the architecture's builder, e.g. width=2.0 (values are "
                        "read as JSON, else as strings); an unknown name is refused with "
                        "the valid ones")
    p.set_defaults(run=run)


def config_from_args(args):
    """The `TrainConfig` of the parsed arguments: every field has its flag of the same name
    (``--model-kwargs`` parsed, an unknown key refused before anything runs), but ``verbose``:
    the global ``--verbose`` keeps library logs, it is not ``fit``'s progress display."""
    from tn_keras.training import TrainConfig

    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
              if f.name != "verbose"}
    values["model_kwargs"] = parse_model_kwargs(args.model_kwargs)
    return TrainConfig(**values)


def progress_verbosity(stream):
    """``fit``'s ``verbose`` for output going to ``stream``: the live progress bar on a
    terminal; one plain line per epoch (``verbose=2``) when it is redirected, where the bar's
    carriage returns, backspaces and ANSI colour codes would fill a log file."""
    isatty = getattr(stream, "isatty", None)
    return "auto" if isatty is not None and isatty() else 2


def run(args):
    from tn_keras.training import train
    from tn_keras.training.backup import finished_run
    from tn_keras.zoo import checkpoints

    config = config_from_args(args)  # refused before anything runs
    config = dataclasses.replace(config, verbose=progress_verbosity(sys.stdout))
    arch, name_tag = checkpoints.split_name(args.name)
    out = args.out or checkpoints.cache_dir(arch, args.tag or name_tag or checkpoints.LOCAL_TAG)
    # Verified first (sha256, kind, model): a damaged run is not "already finished".
    finished = finished_run(out, arch) if args.resume else None
    if finished is not None:
        print(f"{os.path.join(out, checkpoints.MANIFEST_NAME)}: this run already finished "
              f"({finished.get('training', {}).get('epochs', '?')} epochs); nothing to resume.")
        return 0

    _, manifest = train(args.name, config)
    if manifest is not None:
        from tn_keras.zoo import api

        written = api.find(arch, args.out) if args.out else api.find(f"{arch}.{manifest['tag']}")
        print(f"tn-keras train: wrote {written.describe()}", file=sys.stderr)
        print(json.dumps(manifest["metrics"], indent=2))
