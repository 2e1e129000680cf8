"""What the benchmark scripts share: the ``--json`` report option and how the report is written.

The scripts run as ``python benchmarks/NAME.py``, so this folder is first on ``sys.path`` and
they import this module as ``_common``.
"""
import argparse
import json
import os
import subprocess
import sys


def parser(doc, json_required=False):
    """An ``ArgumentParser`` described by the first line of ``doc``, with ``--json FILE``."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--json", required=json_required, metavar="FILE",
                   help="write the report to FILE (a temporary file renamed: never half written)")
    return p


def write_report(path, report):
    """Write ``report`` as indented JSON to ``path``, when one was given (``--json``)."""
    if path:
        # Imported here: tn_keras loads Keras and TensorFlow, which a benchmark's parent process
        # (one that times backends in child processes) must not pay for, nor set up, at start.
        from tn_keras.utils.files import atomic_write_json

        atomic_write_json(path, report)


def backend_parser(doc):
    """`parser` with the options of a script that measures each Keras backend in a child
    process of its own: ``--model``, ``--backends`` and the hidden ``--child``."""
    p = parser(doc)
    p.add_argument("--model", default="cifar_taylornet")
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return p


def backend_rows(script, args, child, child_argv):
    """In the child (``--child``): print ``child(args)`` as a JSON line and return None. In the
    parent: run ``script --child --model M *child_argv`` once per backend of ``--backends``, one
    after the other (``KERAS_BACKEND`` is read once per process, and two children would compete
    for the cores), and return their rows; a child that fails gives ``{"backend", "error"}``."""
    if args.child:
        print(json.dumps(child(args)))
        return None
    rows = []
    for backend in args.backends.split(","):
        command = [sys.executable, os.path.abspath(script), "--child", "--model", args.model,
                   *child_argv]
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            rows.append({"backend": backend, "error": result.stderr.strip().splitlines()[-1]})
        else:
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return rows
