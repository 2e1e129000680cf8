"""The ``tn-keras`` command line: one module per sub-command.

Each module defines ``add_parser(subparsers)`` and ``run(args)``; ``COMMANDS`` lists them in the
order ``tn-keras --help`` shows them.
"""
import argparse
import importlib
import sys

COMMANDS = ("quickstart", "list", "info", "train", "evaluate", "predict", "export", "distill",
            "data")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="tn-keras",
        description="TaylorNet model zoo: coarse-grained polynomial networks for Keras 3.",
    )
    from tn_keras import __version__

    parser.add_argument("--version", action="version", version=f"tn_keras {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        try:
            module = importlib.import_module(f"tn_keras.cli.{command}_command")
        except ModuleNotFoundError as e:
            if e.name != f"tn_keras.cli.{command}_command":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        # User errors: one clear line, no traceback.
        print(f"tn-keras {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
