"""``tn-keras info NAME``: everything the zoo knows of a model, as JSON."""
import dataclasses
import json


def add_parser(subparsers):
    p = subparsers.add_parser("info", help="show a model's record (architecture, checkpoint)")
    p.add_argument("name")
    p.set_defaults(run=run)


def run(args):
    from tn_keras import zoo

    print(json.dumps(dataclasses.asdict(zoo.info(args.name)), indent=2))
