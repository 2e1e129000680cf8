"""kill -9 at random moments of train, distill and export, then rerun: is anything lost?

Usage::

    python benchmarks/random_kills.py [--kills 8] [--jobs train,distill,export] [--seed 0]
                                      [--work DIR] [--json out.json]

`tests/test_fault_injection.py` kills at named points (inside a backup write, between a file
and its manifest, ...). This script kills where the clock says: for each job it first runs the
job once, uninterrupted, as the reference, and times it (start-up included). Then, ``--kills``
times, it starts the same job in a fresh folder, sends SIGKILL after a delay drawn uniformly
from that time, and reruns the job's resume command, with no manual step in between. A trial
is **lost** when the rerun fails, or when what it ends with differs from the reference:

- ``train``: ``tn-keras train digits_taylornet`` (3 small epochs), killed, then ``--resume``;
  every weight of the final checkpoint must equal the reference's bit for bit (the data order
  is a function of seed, epoch and step; docs/reliability.md).
- ``distill``: ``tn-keras distill digits_taylornet --levels 3``, killed, then ``--resume``;
  every level's images must equal the reference's.
- ``export``: ``tn-keras export digits_taylornet --format tflite_int8``, killed, then the same
  command again; the ``.tflite`` must be byte-identical to the reference's. A kill that lands
  after the file and its manifest were placed (the process still exiting) leaves a complete
  export, which a rerun rightly refuses to replace without ``--overwrite``: such a trial is
  checked as it stands, with no rerun (``complete_at_the_kill``).

Also a loss: a ``.tmp-*`` staging name or ``.*.old-*`` trash left beside the result after
the rerun. A kill that lands after the job has finished is counted as such (not as a kill).
Printed: per job, the kills, the kills that landed before the end, and the losses.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import _common  # benchmarks/_common.py: the --json option and report writer

LAUNCHER = "import sys, tn_keras_cli; sys.exit(tn_keras_cli.main())"

#: Per job: the command writing into ``{out}``, and the command that completes a killed one.
JOBS = {
    "train": (["train", "digits_taylornet", "--epochs", "3", "--max-train-examples", "96",
               "--max-eval-examples", "60", "--seed", "0", "--out", "{out}"], ["--resume"]),
    "distill": (["distill", "digits_taylornet", "--levels", "3", "--per-class", "16",
                 "--seed", "0", "--out", "{out}"], ["--resume"]),
    "export": (["export", "digits_taylornet", "--format", "tflite_int8",
                "--out", "{out}.tflite"], []),
}


def _argv(job, out, rerun=False):
    command, resume = JOBS[job]
    return [a.replace("{out}", out) for a in command] + (resume if rerun else [])


def _start(argv, env):
    return subprocess.Popen([sys.executable, "-c", LAUNCHER, *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _run(argv, env):
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", LAUNCHER, *argv], env=env,
                            capture_output=True, text=True, timeout=900)
    return result, time.perf_counter() - started


def _fingerprint(job, out) -> dict:
    """What a finished job leaves, reduced to sha256 values to compare with the reference's."""
    import numpy as np

    if job == "export":
        with open(out + ".tflite", "rb") as f:
            return {"tflite": hashlib.sha256(f.read()).hexdigest()}
    if job == "distill":
        prints = {}
        for path in sorted(glob.glob(os.path.join(out, "level_*", "images.npz"))):
            with np.load(path) as data:
                prints[os.path.relpath(path, out)] = hashlib.sha256(
                    b"".join(np.ascontiguousarray(data[k]).tobytes()
                             for k in sorted(data.files))).hexdigest()
        return prints
    import keras  # the weights, not the file: a .keras file records when it was saved

    import tn_keras  # noqa: F401 - registers the layers

    (path,) = glob.glob(os.path.join(out, "*.keras"))
    model = keras.saving.load_model(path, compile=False)
    return {"weights": hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes()
                                               for w in model.get_weights())).hexdigest()}


def _litter(out) -> list:
    """Staging names (``.tmp-*``) and trash (``.*.old-*``) of this trial's folder, beside it or
    inside it. Lock files may stay: they never block (docs/reliability.md)."""
    parent, name = os.path.split(out)
    found = [os.path.join(parent, e) for e in os.listdir(parent) if name in e]
    for folder in [p for p in found if os.path.isdir(p)]:
        found += [os.path.join(d, e) for d, dirs, files in os.walk(folder) for e in dirs + files]
    return sorted(p for p in found
                  if os.path.basename(p).startswith(".tmp-") or ".old-" in os.path.basename(p))


def _export_complete(out) -> bool:
    """Whether ``out``'s export was placed whole: the file and its manifest, which names the
    file's sha256 (the manifest is placed last; docs/reliability.md)."""
    path = out + ".tflite"
    if not (os.path.isfile(path) and os.path.isfile(path + ".json")):
        return False
    with open(path, "rb") as f, open(path + ".json", encoding="utf-8") as m:
        return json.load(m).get("sha256") == hashlib.sha256(f.read()).hexdigest()


def trial(job, out, delay, env) -> dict:
    process = _start(_argv(job, out), env)
    try:
        process.wait(timeout=delay)
        killed = False  # it finished first
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed = True
    entry = {"delay_s": round(delay, 2), "killed": killed}
    if job == "export" and _export_complete(out):
        # Killed while exiting, after the export was placed: a rerun is refused without
        # --overwrite (nothing is replaced unless asked), and there is nothing to redo.
        entry["complete_at_the_kill"] = True
        entry["litter"] = _litter(out)
        return entry
    rerun, _ = _run(_argv(job, out, rerun=True), env)
    entry["rerun_exit"] = rerun.returncode
    if rerun.returncode != 0:
        entry["lost"] = "rerun failed: " + (rerun.stderr.strip().splitlines() or ["?"])[-1]
        return entry
    entry["litter"] = _litter(out)
    return entry


def main(argv=None) -> int:
    parser = _common.parser(__doc__)
    parser.add_argument("--kills", type=int, default=8, help="random kills per job")
    parser.add_argument("--jobs", default="train,distill,export")
    parser.add_argument("--seed", type=int, default=0, help="seeds the kill delays")
    parser.add_argument("--work", help="folder for the runs (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    draw = random.Random(args.seed)
    work = args.work or tempfile.mkdtemp(prefix="random_kills_")
    env = dict(os.environ, TN_KERAS_OFFLINE="1", TN_KERAS_HOME=os.path.join(work, "home"),
               TF_CPP_MIN_LOG_LEVEL="3")
    report = {"args": vars(args), "jobs": {}}
    try:
        for job in args.jobs.split(","):
            reference = os.path.join(work, f"{job}-reference")
            result, seconds = _run(_argv(job, reference), env)
            if result.returncode != 0:
                raise SystemExit(f"{job}: the reference run failed: {result.stderr[-2000:]}")
            expected = _fingerprint(job, reference)
            trials = []
            for k in range(args.kills):
                out = os.path.join(work, f"{job}-{k:03d}")
                entry = trial(job, out, draw.uniform(0.0, seconds), env)
                if "lost" not in entry:
                    if _fingerprint(job, out) != expected:
                        entry["lost"] = "differs from the uninterrupted run"
                    elif entry["litter"]:
                        entry["lost"] = f"left {entry['litter']}"
                trials.append(entry)
                print(f"{job} {k}: {json.dumps(entry)}", flush=True)
            report["jobs"][job] = {
                "reference_seconds": round(seconds, 1), "kills": args.kills,
                "killed_before_the_end": sum(t["killed"] for t in trials),
                "lost": sum("lost" in t for t in trials), "trials": trials}
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'job':8s} {'reference (s)':>13s} {'kills':>6s} {'landed':>7s} {'lost':>5s}")
    for job, r in report["jobs"].items():
        print(f"{job:8s} {r['reference_seconds']:13.1f} {r['kills']:6d} "
              f"{r['killed_before_the_end']:7d} {r['lost']:5d}")
    _common.write_report(args.json, report)
    return 1 if any(r["lost"] for r in report["jobs"].values()) else 0


if __name__ == "__main__":
    sys.exit(main())
