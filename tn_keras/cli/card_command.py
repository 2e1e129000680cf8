"""``tn-keras card NAME[.TAG]``: print a checkpoint's model card (generated, never edited);
``--check`` validates the card beside the checkpoint instead."""
import sys


def add_parser(subparsers):
    p = subparsers.add_parser("card", help="print a checkpoint's model card (Markdown with "
                                           "Hub metadata), or --check the one on disk")
    p.add_argument("name", help="NAME or NAME.TAG (default: the default tag)")
    p.add_argument("--weights", default="pretrained",
                   help="'pretrained' (default) or a checkpoint folder / .keras file")
    p.add_argument("--check", action="store_true",
                   help="validate the checkpoint's README.md: YAML front matter with the "
                        "Hub's keys and the manifest's accuracies, and equal to the card "
                        "generated from the manifest; exit 1 with one line per problem")
    p.set_defaults(run=run)


def run(args):
    if not hasattr(sys.modules.get("tn_keras.zoo"), "find"):
        # The console script's light imports (`tn_keras_cli.is_quick`): a shipped checkpoint's
        # card is the generated file beside it.
        from tn_keras.zoo import api

        path = api.shipped_card(args.name)
        print(f"tn-keras card: using the shipped card {path}", file=sys.stderr)
        with open(path, encoding="utf-8") as f:
            print(f.read(), end="")
        return 0
    from tn_keras import zoo
    from tn_keras.zoo import cards

    checkpoint = zoo.find(args.name, args.weights)
    print(f"tn-keras card: using {checkpoint.describe()}", file=sys.stderr)
    if not args.check:
        print(cards.render(checkpoint.manifest), end="")
        return 0
    problems = cards.check(checkpoint.folder, checkpoint.manifest)
    for problem in problems:
        print(f"tn-keras card: {problem}", file=sys.stderr)
    if not problems:
        print(f"tn-keras card: {checkpoint.folder}/{cards.CARD_NAME} is valid")
    return 1 if problems else 0
