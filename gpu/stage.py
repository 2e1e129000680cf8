"""Stage one call's share of a shard folder in ``.carry/`` for the lent GPU machine.

    python gpu/stage.py shards/cifar10.shards --budget-mb 30 --call 0     # then 1, 2, ...

A call to the machine carries the checkout plus the paths named in ``carry``, 64 MiB in all,
so a dataset larger than what is left travels over several calls. The shard files are split
into groups of at most ``--budget-mb`` (in name order, the index last, so the dataset is
complete on the machine exactly when the last group has arrived); ``--call K`` replaces
``.carry/`` with group K. gpu/setup_device.sh moves what arrives into ``~/data``. Prints the
number of groups, so the caller knows how many calls the dataset needs.
"""
import argparse
import os
import shutil
import sys

CARRY = ".carry"
INDEX = "index.json"


def groups(folder, budget_bytes):
    """The shard files of ``folder`` in groups of at most ``budget_bytes``; index last."""
    files = sorted(f for f in os.listdir(folder) if f != INDEX)
    if not os.path.isfile(os.path.join(folder, INDEX)):
        raise SystemExit(f"{folder}: no {INDEX}; not a shard folder (tn-keras data pack).")
    result, current, size = [], [], 0
    for name in files + [INDEX]:
        bytes_ = os.path.getsize(os.path.join(folder, name))
        if bytes_ > budget_bytes:
            raise SystemExit(f"{folder}/{name}: {bytes_} bytes, more than --budget-mb allows; "
                             "pack with a smaller --max-shard-mb.")
        if current and size + bytes_ > budget_bytes:
            result.append(current)
            current, size = [], 0
        current.append(name)
        size += bytes_
    result.append(current)
    return result


def stage(folder, budget_bytes, call, root="."):
    """Replaces ``<root>/.carry`` with group ``call``; returns the number of groups."""
    parts = groups(folder, budget_bytes)
    if not 0 <= call < len(parts):
        raise SystemExit(f"--call {call}: the dataset needs calls 0..{len(parts) - 1}.")
    carry = os.path.join(root, CARRY)
    shutil.rmtree(carry, ignore_errors=True)
    target = os.path.join(carry, os.path.basename(os.path.normpath(folder)))
    os.makedirs(target)
    for name in parts[call]:
        shutil.copy2(os.path.join(folder, name), target)
    return len(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a NAME.shards folder (tn-keras data pack)")
    parser.add_argument("--budget-mb", type=float, required=True,
                        help="what one call may carry, in MB of 10^6 bytes")
    parser.add_argument("--call", type=int, required=True, help="which group, from 0")
    args = parser.parse_args(argv)
    count = stage(args.folder, int(args.budget_mb * 10**6), args.call)
    print(f"{CARRY}: group {args.call} of {count} (calls 0..{count - 1})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
