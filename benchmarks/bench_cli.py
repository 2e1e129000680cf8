"""How fast ``tn-keras`` answers: each command's wall time and peak memory, against the same
process importing Keras (the cost every command paid before the quick paths).

Each command runs ``--repeats`` times in a fresh process (``tn-keras`` as the console script
runs it, under its light imports where the command has one); the report gives the median
wall time, the ratio to the median time of ``python -c "import keras"`` measured in the same
run (the baseline: a command that loads Keras cannot be faster), and the peak resident memory
of the child (``ru_maxrss``). Offline (``TN_KERAS_OFFLINE=1``), no data needed:

    python benchmarks/bench_cli.py [--repeats 5] [--json cli.json]
"""
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = "import sys, tn_keras_cli; sys.argv[0] = 'tn-keras'; sys.exit(tn_keras_cli.main())"
#: name -> argv of the child Python: the commands a user runs first, and the baseline.
COMMANDS = {
    "baseline: import keras": ["-c", "import keras"],
    "tn-keras --version": ["-c", CLI, "--version"],
    "tn-keras --help": ["-c", CLI, "--help"],
    "tn-keras list": ["-c", CLI, "list"],
    "tn-keras info cifar_taylornet": ["-c", CLI, "info", "cifar_taylornet"],
    "tn-keras card digits_taylornet": ["-c", CLI, "card", "digits_taylornet"],
    "tn-keras status saved_models/digits_taylornet/e60": [
        "-c", CLI, "status", "saved_models/digits_taylornet/e60"],
    "tn-keras list --table (loads the zoo)": ["-c", CLI, "list", "--table"],
}


def time_child(argv):
    """``(seconds, peak resident MiB)`` of one child process running ``python argv``."""
    env = dict(os.environ, TN_KERAS_OFFLINE="1")
    start = time.perf_counter()
    with subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as child:
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if child.returncode != 0:
        raise SystemExit(f"python {' '.join(argv)} exited {child.returncode}")
    return seconds, usage.ru_maxrss / 1024.0  # KiB on Linux


def main():
    p = _common.parser(__doc__)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    report = []
    for name, argv in COMMANDS.items():
        runs = [time_child(argv) for _ in range(args.repeats)]
        report.append({"command": name,
                       "median_seconds": round(statistics.median(s for s, _ in runs), 3),
                       "peak_mib": round(max(m for _, m in runs), 1)})
    baseline = report[0]["median_seconds"]
    print(f"{'command':55s} {'median s':>9s} {'x import keras':>15s} {'peak MiB':>9s}")
    for row in report:
        row["ratio_to_baseline"] = round(row["median_seconds"] / baseline, 3)
        print(f"{row['command']:55s} {row['median_seconds']:9.3f} "
              f"{row['ratio_to_baseline']:15.3f} {row['peak_mib']:9.1f}")
    _common.write_report(args.json, report)


if __name__ == "__main__":
    main()
