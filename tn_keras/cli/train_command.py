"""``tn-keras train NAME``: train a zoo model with its recipe; write checkpoint + manifest."""
import json


def add_parser(subparsers):
    from tn_keras.training.placement import STRATEGIES

    p = subparsers.add_parser("train", help="train a zoo model on its real dataset")
    p.add_argument("name")
    p.add_argument("--epochs", type=int, help="default: the recipe's")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA, tfds, download)")
    p.add_argument("--out", help="checkpoint folder (default: $TN_KERAS_HOME/models/NAME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--strategy", choices=STRATEGIES, default="default",
                   help="mirrored / multiworker: TensorFlow backend; data_parallel: JAX backend "
                        "(keras.distribution over all local devices)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="bfloat16 compute, float32 variables (mixed_bfloat16)")
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
        model_kwargs=parse_model_kwargs(args.model_kwargs),
        mixed_precision=args.mixed_precision,
    )
    if manifest is not None:
        print(json.dumps(manifest["metrics"], indent=2))
