"""``tn-keras info NAME``: everything the zoo knows of a model, as JSON."""
import dataclasses
import json
import sys


def add_parser(subparsers):
    p = subparsers.add_parser("info", help="show a model's record (architecture, checkpoint)")
    p.add_argument("name", help="NAME or NAME.TAG")
    p.set_defaults(run=run)


def run(args):
    zoo_module = sys.modules.get("tn_keras.zoo")
    if hasattr(zoo_module, "info"):
        record = zoo_module.info(args.name)  # the live registry, with a user's registrations
    else:
        # The console script's light imports: the zoo's catalogue, without Keras.
        from tn_keras.zoo import api

        record = api.info_builtin(args.name)
    if record.checkpoint is not None:
        print(f"tn-keras info: using checkpoint {record.name}.{record.tag}: {record.checkpoint}",
              file=sys.stderr)
    print(json.dumps(dataclasses.asdict(record), indent=2))
