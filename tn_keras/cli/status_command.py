"""``tn-keras status PATH``: what a training, distillation or export output holds (read-only)."""
import json


def add_parser(subparsers):
    p = subparsers.add_parser(
        "status", help="say what an output folder holds: running, resumable, finished, damaged",
        description="Say what a training run's folder (train --out), a distillation's export "
                    "folder (distill --out) or an export (export --out) holds: being written "
                    "(by which process), resumable (from which verified backup), finished "
                    "(its files verify), or damaged (what is wrong). Read-only: no lock is "
                    "taken, nothing is written or recovered. Exit code 0 whatever the state.")
    p.add_argument("path", help="the --out of a train, distill or export command")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(run=run)


def run(args):
    from tn_keras.status import describe  # reads files only: no Keras, no TensorFlow

    status = describe(args.path)
    if args.json:
        print(json.dumps(status.to_dict(), indent=2, sort_keys=True))
    else:
        print("\n".join(status.lines()))
