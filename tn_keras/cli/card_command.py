"""``tn-keras card NAME[.TAG]``: print a checkpoint's model card (generated, never edited)."""
import sys


def add_parser(subparsers):
    p = subparsers.add_parser("card", help="print a checkpoint's model card (Markdown)")
    p.add_argument("name", help="NAME or NAME.TAG (default: the default tag)")
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default) or a checkpoint folder / .keras file")
    p.set_defaults(run=run)


def run(args):
    from tn_keras import zoo
    from tn_keras.zoo import cards

    checkpoint = zoo.find(args.name, args.weights)
    print(f"tn-keras card: using {checkpoint.describe()}", file=sys.stderr)
    print(cards.render(checkpoint.manifest), end="")
