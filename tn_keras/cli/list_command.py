"""``tn-keras list [PATTERN] [--pretrained]``: the registered models."""


def add_parser(subparsers):
    p = subparsers.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern (default: all)")
    p.add_argument("--pretrained", action="store_true", help="only models with a checkpoint")
    p.set_defaults(run=run)


def run(args):
    from tn_keras import zoo

    for name in zoo.list(args.pattern, pretrained=True if args.pretrained else None):
        print(name)
