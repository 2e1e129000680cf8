"""Run several `tn-keras train` jobs at once on a lent GPU machine, inside one call's time.

    python gpu/jobs.py gpu/cifar_long.json --runs ~/runs --out "$OUT" --deadline 540

A lent machine gives one call at most 10 minutes and a session 15 device-minutes in all
(gpu/README.md), so a plan must fit a wall-clock budget the trainer itself knows nothing
about. This runner:

1. times each job first when its plan says ``"epochs": "fit"``: two epochs on ``probe_examples``
   images, all jobs in parallel as they will really run; the second epoch's duration (the
   first includes compilation) gives seconds per image, kept in ``<runs>/probe.json``;
2. gives each such job the most epochs (at most ``max_epochs``) that fit what is left of the
   deadline, and writes the choice to ``<runs>/<id>.plan.json``; an ordinary ``--epochs`` then
   fixes the whole schedule, so the run is reproducible from its manifest's command. Jobs a
   plan lists under ``equal_epochs`` (one list of ids, or a list of such lists) are compared
   at equal training: each gets the fewest epochs any of them was given, so the slowest
   still ends inside the deadline;
3. runs every job in parallel (each sees ``XLA_PYTHON_CLIENT_MEM_FRACTION``, so several share
   one GPU), resumes a job whose folder holds a backup (a run killed by an earlier call), and
   stops the ones still running at the deadline (their backup holds the last whole epoch);
4. packs the results (checkpoints, manifests, cards, logs; never the backups) into
   ``<out>/results.tar.part-NN`` files of at most ``--part-mb`` MB (a call returns at most
   8 files of 16 MB) and writes ``<out>/summary.json``. `gpu/receive.py` unpacks and verifies
   them on the other side.

Standard library only: it runs before anything is installed, with whatever Python is there.
"""
import argparse
import csv
import io
import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import time

#: Seconds a job needs beyond its epochs: process start, compilation, evaluation, saving.
DEFAULT_OVERHEAD_SECONDS = 75
#: A run's files that travel back (the backup is large and only serves a resume).
RESULT_SUFFIXES = (".keras", ".json", ".csv", ".md", ".log")


def read_plan(path):
    with open(path, encoding="utf-8") as f:
        plan = json.load(f)
    ids = [job["id"] for job in plan["jobs"]]
    if len(set(ids)) != len(ids):
        raise SystemExit(f"{path}: job ids must be unique; got {ids}.")
    groups = plan.get("equal_epochs", [])
    if groups and all(isinstance(g, str) for g in groups):
        groups = [groups]  # one group, written as a flat list
    for group in groups:
        unknown = [i for i in group if i not in ids] if isinstance(group, list) else group
        if unknown:
            raise SystemExit(f"{path}: equal_epochs must list groups of job ids from {ids}; "
                             f"got {unknown!r}.")
    plan["equal_epochs"] = groups
    return plan


def equalise(epochs, groups):
    """``epochs`` with every job of a group at the group's fewest (compared jobs train alike)."""
    epochs = dict(epochs)
    for group in groups:
        fewest = min(epochs[i] for i in group)
        epochs.update({i: fewest for i in group})
    return epochs


def train_command(job, epochs, out, extra=()):
    """``python -m tn_keras.cli train ...`` for one job."""
    return [sys.executable, "-m", "tn_keras.cli", "train", *job["train"], "--epochs", str(epochs),
            "--out", out, *extra]


def launch(commands, env_extra, logs):
    """Starts every command at once (own process group each); returns the processes."""
    processes = []
    for command, log in zip(commands, logs):
        env = dict(os.environ, **env_extra)
        handle = open(log, "ab")
        processes.append(subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT,
                                          env=env, start_new_session=True))
        handle.close()
    return processes


def wait_until(processes, deadline):
    """Waits for every process until ``deadline`` (time.monotonic); stops the rest. Returns
    each one's status: its exit code, or "stopped at the deadline"."""
    while time.monotonic() < deadline and any(p.poll() is None for p in processes):
        time.sleep(1.0)
    statuses = []
    for p in processes:
        if p.poll() is None:
            # SIGINT first: the trainer then leaves through its `finally` blocks (lock released).
            for sig, grace in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                if p.poll() is None:
                    os.killpg(p.pid, sig)
                    try:
                        p.wait(grace)
                    except subprocess.TimeoutExpired:
                        pass
            statuses.append("stopped at the deadline")
        else:
            statuses.append(p.returncode)
    return statuses


def epoch_seconds(log_path):
    """The ``epoch_seconds`` column of a run's CSV log."""
    if not os.path.isfile(log_path):
        return []
    with open(log_path, newline="") as f:
        return [float(row["epoch_seconds"]) for row in csv.DictReader(f)
                if row.get("epoch_seconds")]


def probe(plan, jobs, runs, env_extra, deadline):
    """Seconds per training image of each job, measured as the jobs really run (in parallel)."""
    examples = int(plan.get("probe_examples", 5000))
    folders = [os.path.join(runs, "probe", job["id"]) for job in jobs]
    commands = [train_command(job, 2, folder, ["--overwrite", "--max-train-examples",
                                               str(examples), "--max-eval-examples", "100"])
                for job, folder in zip(jobs, folders)]
    os.makedirs(os.path.join(runs, "probe"), exist_ok=True)
    logs = [folder + ".log" for folder in folders]
    wait_until(launch(commands, env_extra, logs), deadline)
    result = {}
    for job, folder in zip(jobs, folders):
        seconds = epoch_seconds(os.path.join(folder, "training_log.csv"))
        if len(seconds) >= 2:
            result[job["id"]] = seconds[1] / examples
    return result


def choose_epochs(job, seconds_per_image, seconds_left, overhead):
    """The most epochs (1 .. max_epochs) that fit ``seconds_left``."""
    per_epoch = seconds_per_image * int(job["train_examples"])
    fitting = math.floor((seconds_left - overhead) / per_epoch)
    return max(1, min(int(job.get("max_epochs", fitting)), fitting))


def plan_epochs(plan, runs, env_extra, deadline, overhead):
    """``{id: epochs}``: fixed ones, planned ones kept from an earlier call, or fitted now."""
    epochs, to_fit = {}, []
    for job in plan["jobs"]:
        saved = os.path.join(runs, job["id"] + ".plan.json")
        if os.path.isfile(saved):
            with open(saved) as f:
                epochs[job["id"]] = json.load(f)["epochs"]
        elif job["epochs"] == "fit":
            to_fit.append(job)
        else:
            epochs[job["id"]] = int(job["epochs"])
    if to_fit:
        speeds = probe(plan, to_fit, runs, env_extra, deadline)
        with open(os.path.join(runs, "probe.json"), "w") as f:
            json.dump(speeds, f, indent=1)
        for job in to_fit:
            if job["id"] not in speeds:
                raise SystemExit(f"probe of {job['id']} failed: see "
                                 f"{os.path.join(runs, 'probe', job['id'])}.log")
            epochs[job["id"]] = choose_epochs(job, speeds[job["id"]],
                                              deadline - time.monotonic(), overhead)
        # Only a fresh plan is equalised: a kept one was when it was made.
        epochs = equalise(epochs, plan.get("equal_epochs", []))
    for job in plan["jobs"]:
        # Beside the run folder, not in it: the trainer refuses to overwrite unknown files.
        with open(os.path.join(runs, job["id"] + ".plan.json"), "w") as f:
            json.dump({"epochs": epochs[job["id"]], "train": job["train"]}, f)
    return epochs


def clear_stale_locks(runs, ids):
    """Removes the run folders' locks (`tn_keras.utils.locks`) left by an earlier call.

    A machine ends every process of a call when the call returns, so when a new call starts
    no run of the previous one is alive: a lock still there is stale.
    """
    for job_id in ids:
        lock = os.path.join(runs, f".{job_id}.lock")
        if os.path.exists(lock):
            os.remove(lock)


def run_jobs(plan, runs, epochs, env_extra, deadline):
    """Trains every job (resuming the interrupted ones); returns ``{id: status}``."""
    commands, logs, ids = [], [], []
    for job in plan["jobs"]:
        folder = os.path.join(runs, job["id"])
        if os.path.isfile(os.path.join(folder, "manifest.json")):
            continue  # finished in an earlier call
        resume = os.path.isdir(os.path.join(folder, "backup"))
        commands.append(train_command(job, epochs[job["id"]], folder,
                                      ["--resume"] if resume else ["--overwrite"]))
        logs.append(os.path.join(runs, job["id"] + ".log"))
        ids.append(job["id"])
    return dict(zip(ids, wait_until(launch(commands, env_extra, logs), deadline)))


def pack_results(runs, ids, out, part_bytes):
    """The runs' result files as ``results.tar.part-NN`` files in ``out``; returns their names."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for job_id in ids:
            for name in (job_id, job_id + ".log", job_id + ".plan.json"):
                path = os.path.join(runs, name)
                if os.path.isfile(path):
                    tar.add(path, arcname=name)
                elif os.path.isdir(path):
                    for file in sorted(os.listdir(path)):
                        if file.endswith(RESULT_SUFFIXES):
                            tar.add(os.path.join(path, file), arcname=f"{name}/{file}")
    data, names = buffer.getvalue(), []
    for index, start in enumerate(range(0, len(data), part_bytes)):
        names.append(f"results.tar.part-{index:02d}")
        with open(os.path.join(out, names[-1]), "wb") as f:
            f.write(data[start:start + part_bytes])
    return names


def summary(plan, runs, epochs, statuses):
    """What each job did, from its files: status, planned and finished epochs, accuracies."""
    result = {}
    for job in plan["jobs"]:
        folder = os.path.join(runs, job["id"])
        entry = {"status": statuses.get(job["id"], "finished in an earlier call"),
                 "planned_epochs": epochs[job["id"]],
                 "epochs_done": len(epoch_seconds(os.path.join(folder, "training_log.csv")))}
        manifest = os.path.join(folder, "manifest.json")
        if os.path.isfile(manifest):
            with open(manifest) as f:
                record = json.load(f)
            entry["metrics"] = record.get("metrics")
            entry["command"] = record.get("provenance", {}).get("command")
        result[job["id"]] = entry
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("plan", help="the jobs file (JSON; see gpu/README.md)")
    parser.add_argument("--runs", required=True, help="where runs live across calls")
    parser.add_argument("--out", required=True, help="where the results go back ($OUT)")
    parser.add_argument("--deadline", type=float, required=True,
                        help="seconds from now by which every job has stopped")
    parser.add_argument("--overhead", type=float, default=DEFAULT_OVERHEAD_SECONDS,
                        help="seconds a job needs beyond its epochs (start, compile, evaluate)")
    parser.add_argument("--part-mb", type=float, default=15.0,
                        help="largest results part, in MB of 10^6 bytes")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.deadline
    plan = read_plan(args.plan)
    runs = os.path.expanduser(args.runs)
    os.makedirs(runs, exist_ok=True)
    env_extra = {k: str(v) for k, v in plan.get("env", {}).items()}
    clear_stale_locks(runs, [job["id"] for job in plan["jobs"]])
    epochs = plan_epochs(plan, runs, env_extra, deadline, args.overhead)
    statuses = run_jobs(plan, runs, epochs, env_extra, deadline)
    ids = [job["id"] for job in plan["jobs"]]
    parts = pack_results(runs, ids, args.out, int(args.part_mb * 10**6))
    report = {"jobs": summary(plan, runs, epochs, statuses), "parts": parts}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
