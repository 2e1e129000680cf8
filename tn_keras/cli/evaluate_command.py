"""``tn-keras evaluate NAME``: accuracy of a checkpoint on the real test split(s)."""
import json


def add_parser(subparsers):
    p = subparsers.add_parser("evaluate", help="evaluate a checkpoint on the real test split")
    p.add_argument("name")
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default) or a checkpoint folder / .keras file")
    p.add_argument("--data-dir")
    p.add_argument("--max-examples", type=int)
    p.set_defaults(run=run)


def run(args):
    from tn_keras import zoo
    from tn_keras.training import evaluate

    model = zoo.load(args.name, weights=args.weights, compile=False)
    results = evaluate(model, zoo.info(args.name).dataset, data_dir=args.data_dir,
                       max_examples=args.max_examples)
    print(json.dumps(results, indent=2))
