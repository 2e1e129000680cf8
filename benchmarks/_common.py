"""What the benchmark scripts share: the ``--json`` report option and how the report is written.

The scripts run as ``python benchmarks/NAME.py``, so this folder is first on ``sys.path`` and
they import this module as ``_common``.
"""
import argparse


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
