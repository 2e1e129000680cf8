"""Full-scale distribution matching on a GPU: MNIST, Fashion-MNIST and CIFAR-10 at 1 / 10 / 50
images per class, resumable level by level, within a time budget per call.

Method ``"dm"`` (`tn_keras.distill.class_matching`: Zhao & Bilen 2023 as published, every level
matched against the whole class). For every dataset and ``ipc``, a cascade of ``--levels``
levels starts from ``ipc * 2**levels`` real images per class, so that its last level has
``ipc`` images per class (level ``a`` halves level ``a - 1``). Each distilled level is then
evaluated with the ConvNet-3 protocol (and ``--architectures``), against random real images of
the same size, on the whole test split and, for CIFAR-10, its lossless test images too.

    KERAS_BACKEND=jax python gpu/distill_full.py --data-dir DATA --out runs \
        --datasets mnist,fashion_mnist,cifar10 --ipc 1,10,50 --budget-s 540

``DATA`` holds the datasets as packed shards (``tn-keras data pack NAME --out DATA``) or as
.npz files, as `tn_keras.datasets.load` finds them. The output folder holds, per job,
``OUT/<dataset>/ipc<k>/``: the levels (``levels/level_<a>/``, checksummed, written as each is
made), ``log.txt``, ``run.json`` (settings, seconds per level and per iteration, device) and
``eval.json``. A killed or budget-stopped call loses at most the level in progress: rerun the
same command and the verified levels and evaluations are reused. Exit status 0: every job is
complete; 3: the budget ran out first (rerun); anything else: an error.
"""
import argparse
import logging
import os
import sys
import time

EXIT_BUDGET = 3


def _ints(text):
    return tuple(int(v) for v in text.split(","))


def parse(argv=None):
    from tn_keras.distill import config

    dm = config.METHODS["dm"]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="shards or .npz folder (default: $TN_KERAS_DATA)")
    p.add_argument("--out", required=True, help="output folder (created; reused on rerun)")
    p.add_argument("--datasets", default="mnist,fashion_mnist,cifar10")
    p.add_argument("--ipc", type=_ints, default=(1, 10, 50), help="images per class at the "
                   "last level (default 1,10,50)")
    p.add_argument("--levels", type=int, default=2, help="levels per cascade (default 2)")
    p.add_argument("--iterations", type=int, default=dm.steps, help="per level")
    p.add_argument("--learning-rate", type=float, default=dm.learning_rate)
    p.add_argument("--real-batch", type=int, default=config.DM_DEFAULTS["real_batch"])
    p.add_argument("--embedding-network", default=config.DM_DEFAULTS["embedding_network"],
                   choices=config.EMBEDDING_NETWORKS)
    p.add_argument("--no-dsa", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--architectures", default="convnet3",
                   help=f"evaluation networks (comma-separated: {','.join(config.ARCHITECTURES)})")
    p.add_argument("--eval-seeds", type=_ints, default=(0, 1, 2))
    p.add_argument("--eval-steps", type=int, help="default: the protocol's (300 epochs)")
    p.add_argument("--budget-s", type=float, default=540.0,
                   help="stop before a level or an evaluation that would end past this many "
                        "seconds (default 540: a 10-minute call with a margin)")
    return p.parse_args(argv)


class Budget:
    """Wall-clock budget of this call: ``fits(seconds)`` says whether work of that estimated
    length still ends in time."""

    def __init__(self, seconds):
        self.start, self.seconds = time.perf_counter(), float(seconds)

    def left(self):
        return self.seconds - (time.perf_counter() - self.start)

    def fits(self, estimate):
        return self.left() > 0 and estimate <= self.left()


def _json(path, default=None):
    import json

    if not os.path.isfile(path):
        return default
    with open(path) as f:
        return json.load(f)


def _logger(folder):
    log = logging.getLogger("tn_keras.distill")
    log.setLevel(logging.INFO)
    for handler in list(log.handlers):
        log.removeHandler(handler)
    for handler in (logging.FileHandler(os.path.join(folder, "log.txt")),
                    logging.StreamHandler(sys.stdout)):
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
    return log


def settings_for(ipc, args):
    from tn_keras.distill import config

    return config.DistillConfig(
        levels=args.levels, per_class=ipc * 2 ** args.levels, method="dm", seed=args.seed,
        steps=args.iterations, learning_rate=args.learning_rate, real_batch=args.real_batch,
        embedding_network=args.embedding_network, dsa=not args.no_dsa).resolved()


def distil_levels(name, ipc, train, args, budget, folder, log):
    """Levels 1..L of one cascade, one `distill` call per level (resume reuses the verified
    ones). Returns False when the budget stopped it."""
    import dataclasses

    from tn_keras.distill import config
    from tn_keras.distill import distill
    from tn_keras.utils.files import atomic_write_json

    settings = settings_for(ipc, args)
    record_path = os.path.join(folder, "run.json")
    record = _json(record_path, {"level_seconds": {}})
    record.update(dataset=name, ipc=ipc, settings=settings.as_dict(), backend=_backend())
    export = config.LevelExportConfig(directory=os.path.join(folder, "levels"), resume=True,
                                      dataset={"dataset": name, "split": "train"})
    for a in range(1, args.levels + 1):
        per_iteration = record.get("seconds_per_iteration", 0.0)
        made = os.path.isdir(os.path.join(export.directory, f"level_{a}"))
        if not made and not budget.fits(per_iteration * args.iterations):
            log.info("%s ipc%d: budget left %.0f s < level %d's estimate %.0f s; rerun to "
                     "resume", name, ipc, budget.left(), a, per_iteration * args.iterations)
            return False
        t0 = time.perf_counter()
        levels = distill(None, *train, settings=dataclasses.replace(settings, levels=a),
                         export=export, progress=log.info)
        if levels[-1].reused:
            continue
        seconds = time.perf_counter() - t0
        record["level_seconds"][str(a)] = round(levels[-1].wall_time_seconds, 2)
        record["seconds_per_iteration"] = seconds / max(args.iterations, 1)
        atomic_write_json(record_path, record)
    return True


def _backend():
    import keras

    info = {"keras_backend": keras.backend.backend()}
    if info["keras_backend"] == "jax":
        import jax

        info["devices"] = [str(d) for d in jax.devices()]
    return info


def _test_data(name, data_dir):
    """The test split, and CIFAR-10's lossless mask over it (``{}`` for other data)."""
    from tn_keras import datasets
    from tn_keras.datasets import packing

    test = datasets.load(name, "test", data_dir=data_dir)
    subsets = {}
    if name == "cifar10":
        mask = packing.dataset_arrays(name, data_dir).get("test_is_lossless")
        if mask is not None:
            subsets["test_lossless"] = mask
    return test, subsets


def evaluate_levels(name, ipc, train, args, budget, folder, log):
    """ConvNet-3 protocol (and ``--architectures``) on every distilled level, once."""
    from tn_keras.distill import cross_architecture
    from tn_keras.distill import load_level
    from tn_keras.utils.files import atomic_write_json

    path = os.path.join(folder, "eval.json")
    if os.path.isfile(path):
        return True
    if not budget.fits(0.0):
        return False
    test, subsets = _test_data(name, args.data_dir)
    levels = {a: tuple(load_level(os.path.join(folder, "levels"), a))
              for a in range(1, args.levels + 1)}
    rows = cross_architecture.evaluate(
        levels, train, test, name, tuple(args.architectures.split(",")), args.eval_seeds,
        args.eval_steps, test_subsets=subsets, progress=lambda r: log.info("eval %s", r))
    table = cross_architecture.markdown_table(rows, len(test[1]))
    log.info("%s ipc%d:\n%s", name, ipc, table)
    atomic_write_json(path, {"dataset": name, "ipc": ipc, "test_images": int(len(test[1])),
                             "subsets": sorted(subsets), "seeds": list(args.eval_seeds),
                             "rows": rows, "table": table})
    return True


def main(argv=None):
    args = parse(argv)
    from tn_keras import datasets

    budget = Budget(args.budget_s)
    complete = True
    for name in args.datasets.split(","):
        train = datasets.load(name, "train", data_dir=args.data_dir)
        for ipc in args.ipc:
            folder = os.path.join(args.out, name, f"ipc{ipc}")
            os.makedirs(folder, exist_ok=True)
            log = _logger(folder)
            done = (distil_levels(name, ipc, train, args, budget, folder, log)
                    and evaluate_levels(name, ipc, train, args, budget, folder, log))
            complete = complete and done
            if not done:
                break
        if not complete:
            break
    print("complete" if complete else "budget reached: rerun the same command to resume")
    return 0 if complete else EXIT_BUDGET


if __name__ == "__main__":
    sys.exit(main())
