"""``tn-keras train NAME``: train a zoo model with its recipe; write checkpoint + manifest."""
import json
import sys


def add_parser(subparsers):
    from tn_keras.training.trainer import STRATEGIES

    p = subparsers.add_parser("train", help="train a zoo model on its real dataset")
    p.add_argument("name", help="NAME or NAME.TAG: the architecture, and the tag to write")
    p.add_argument("--tag", help="tag of the new checkpoint (default 'local'); a shipped tag "
                                 "is refused: a local run never shadows it")
    p.add_argument("--init-from", metavar="NAME[.TAG]",
                   help="start from this checkpoint's weights (all layers but the classifier "
                        "head): fine-tuning")
    p.add_argument("--epochs", type=int, help="default: the recipe's")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA, tfds, download)")
    p.add_argument("--out",
                   help="checkpoint folder (default: $TN_KERAS_HOME/models/NAME/TAG)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--strategy", choices=STRATEGIES, default="default")
    p.add_argument("--max-train-examples", type=int, help="train on the first N images only")
    p.add_argument("--max-eval-examples", type=int, help="evaluate on the first N images only")
    p.add_argument("--model-kwargs", nargs="+", metavar="KEY=VALUE", default=[],
                   help="arguments of the architecture's builder, e.g. width=2.0 (values are "
                        "read as JSON, else as strings); an unknown name is refused with "
                        "the valid ones")
    p.set_defaults(run=run)


def parse_model_kwargs(items):
    """``["width=2.0", "name=x"]`` -> ``{"width": 2.0, "name": "x"}`` (JSON, else a string)."""
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-kwargs expects KEY=VALUE pairs; received {item!r}.")
        try:
            kwargs[key] = json.loads(value)
        except json.JSONDecodeError:
            kwargs[key] = value
    return kwargs


def run(args):
    from tn_keras.training import train

    _, manifest = train(
        args.name, epochs=args.epochs, batch_size=args.batch_size, data_dir=args.data_dir,
        out=args.out, seed=args.seed, resume=args.resume, overwrite=args.overwrite,
        strategy=args.strategy, max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples,
        model_kwargs=parse_model_kwargs(args.model_kwargs), tag=args.tag,
        init_from=args.init_from,
    )
    if manifest is not None:
        from tn_keras.zoo import api

        arch = args.name.partition(".")[0]
        written = api.find(arch, args.out) if args.out else api.find(f"{arch}.{manifest['tag']}")
        print(f"tn-keras train: wrote {written.describe()}", file=sys.stderr)
        print(json.dumps(manifest["metrics"], indent=2))
