"""``tn-keras info NAME``: everything the zoo knows of a model, as JSON."""
import dataclasses
import json
import sys


def add_parser(subparsers):
    p = subparsers.add_parser("info", help="show a model's record (architecture, checkpoint)")
    p.add_argument("name", help="NAME or NAME.TAG")
    p.set_defaults(run=run)


def run(args):
    from tn_keras import zoo

    record = zoo.info(args.name)
    if record.checkpoint is not None:
        print(f"tn-keras info: using checkpoint {record.name}.{record.tag}: {record.checkpoint}",
              file=sys.stderr)
    print(json.dumps(dataclasses.asdict(record), indent=2))
