"""``tn-keras train NAME``: train a zoo model with its recipe; write checkpoint + manifest."""
import json


def add_parser(subparsers):
    from tn_keras.training.trainer import STRATEGIES

    p = subparsers.add_parser("train", help="train a zoo model on its real dataset")
    p.add_argument("name")
    p.add_argument("--epochs", type=int, help="default: the recipe's")
    p.add_argument("--batch-size", type=int, help="default: the recipe's")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA, tfds, download)")
    p.add_argument("--out", help="checkpoint folder (default: $TN_KERAS_HOME/models/NAME)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run")
    p.add_argument("--overwrite", action="store_true", help="replace an existing checkpoint")
    p.add_argument("--strategy", choices=STRATEGIES, default="default")
    p.add_argument("--max-train-examples", type=int, help="train on the first N images only")
    p.add_argument("--max-eval-examples", type=int, help="evaluate on the first N images only")
    p.set_defaults(run=run)


def run(args):
    from tn_keras.training import train

    _, manifest = train(
        args.name, epochs=args.epochs, batch_size=args.batch_size, data_dir=args.data_dir,
        out=args.out, seed=args.seed, resume=args.resume, overwrite=args.overwrite,
        strategy=args.strategy, max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples,
    )
    if manifest is not None:
        print(json.dumps(manifest["metrics"], indent=2))
