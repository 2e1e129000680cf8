"""Time to accuracy: test accuracy against minutes of training, model after model.

Each model of ``--models`` is trained with its own recipe (what ``tn-keras train NAME`` does)
for ``--epochs`` epochs (default: the recipe's), one after the other on the same machine (two
runs at once would share the cores and both take longer), and after every epoch its top-1
accuracy is measured on a fixed random sample of ``--test-images`` test images. The minutes
are the training log's ``epoch_seconds`` summed, so the per-epoch evaluation, which only the
benchmark pays, is not in them. The weights evaluated after an epoch are those the run holds
then (with Lookahead, the fast weights; the checkpoint's final figure is in its manifest).

Each run lives in ``--out/<model>``; a benchmark stopped part-way (a killed process, the end
of a session) is run again with the same arguments and every model resumes where its backup
left it, its accuracy log appended. ``--png`` draws accuracy against minutes, one line per
model; the report (``--json``, and the table printed) has each epoch's row.

    TN_KERAS_DATA=<data> python benchmarks/time_to_accuracy.py --models cifar_convnet_fast_gelu,cifar_taylornet_res_small --out runs/time_to_accuracy --png docs/images/time_to_accuracy.png
"""
import csv
import os

import numpy as np

import _common

#: The per-epoch log of test accuracy, beside the run's own training_log.csv.
ACCURACY_LOG = "test_accuracy_log.csv"
SAMPLE_SEED = 0


def accuracy_callback(x, y, path):
    """A Keras callback appending ``epoch,test_accuracy`` to ``path`` after every epoch
    (1-based epochs; a resumed run goes on numbering where the backup left it)."""
    import keras

    class AccuracyAfterEachEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            predictions = self.model.predict(x, batch_size=500, verbose=0)
            accuracy = float(np.mean(np.argmax(predictions, axis=-1) == y))
            new = not os.path.exists(path)
            with open(path, "a", newline="", encoding="utf-8") as f:
                if new:
                    f.write("epoch,test_accuracy\n")
                f.write(f"{epoch + 1},{accuracy:.6f}\n")
                f.flush()
                os.fsync(f.fileno())

    return AccuracyAfterEachEpoch()


def test_sample(dataset, images, data_dir):
    """A fixed random sample of ``images`` test images (all of them when there are fewer), as
    float32 raw pixels with a channel axis: the offline CIFAR-10 split is sorted by class
    after its first 1,000 rows, so a prefix would not do."""
    from tn_keras import datasets

    x, y = datasets.load(dataset, "test", data_dir=data_dir)
    if images < len(x):
        index = np.sort(np.random.default_rng(SAMPLE_SEED).choice(len(x), images, replace=False))
        x, y = x[index], y[index]
    x = np.asarray(x, "float32")
    return (x[..., None] if x.ndim == 3 else x), np.asarray(y).reshape(-1)


def run_model(name, args):
    """Train (or resume) ``name`` in ``--out/name``; returns its rows, epoch by epoch."""
    from tn_keras import zoo
    from tn_keras.training import train

    folder = os.path.join(args.out, name)
    x, y = test_sample(zoo.info(name).dataset, args.test_images, args.data_dir)
    log = os.path.join(folder, ACCURACY_LOG)
    started = os.path.exists(folder)
    if not started:
        os.makedirs(folder)
    _, manifest = train(name, epochs=args.epochs, seed=args.seed, out=folder, resume=started,
                        max_train_examples=args.max_train_examples, data_dir=args.data_dir,
                        verbose=2, callbacks=[accuracy_callback(x, y, log)])
    return rows_of(folder, manifest)


def rows_of(folder, manifest):
    """Each epoch's ``minutes`` (cumulative training time) and ``test_accuracy``, read back
    from the run's two logs (a resumed epoch logged twice counts once: the last line)."""
    with open(os.path.join(folder, "training_log.csv"), encoding="utf-8") as f:
        seconds = {int(r["epoch"]) + 1: float(r["epoch_seconds"]) for r in csv.DictReader(f)}
    with open(os.path.join(folder, ACCURACY_LOG), encoding="utf-8") as f:
        accuracy = {int(r["epoch"]): float(r["test_accuracy"]) for r in csv.DictReader(f)}
    rows, total = [], 0.0
    for epoch in sorted(seconds):
        total += seconds[epoch]
        rows.append({"epoch": epoch, "seconds": round(total, 3),
                     "minutes": round(total / 60, 2), "test_accuracy": accuracy.get(epoch)})
    return {"rows": rows, "final_test_accuracy": manifest["metrics"]["test_accuracy"],
            "parameters": manifest["parameters"]}


def plot(report, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tn_keras.utils.files import atomic_path

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, result in report["models"].items():
        points = [(r["seconds"] / 60, 100 * r["test_accuracy"]) for r in result["rows"]
                  if r["test_accuracy"] is not None]
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xlabel(f"training minutes ({report['machine']})")
    ax.set_ylabel(f"test accuracy, {report['test_images']:,} images (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def main():
    p = _common.parser(__doc__)
    p.add_argument("--models", required=True, help="comma-separated zoo names")
    p.add_argument("--out", required=True, help="folder of the runs (resumed when present)")
    p.add_argument("--epochs", type=int, help="default: each model's recipe")
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--max-train-examples", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir")
    p.add_argument("--png", help="write the plot here")
    args = p.parse_args()

    from tn_keras.utils.versions import machine_description

    report = {"epochs": args.epochs, "test_images": args.test_images,
              "max_train_examples": args.max_train_examples, "seed": args.seed,
              "machine": machine_description(), "models": {}}
    for name in args.models.split(","):
        report["models"][name] = run_model(name, args)
        print(f"| model | epoch | minutes | test accuracy ({args.test_images} images) |")
        print("| --- | --- | --- | --- |")
        for row in report["models"][name]["rows"]:
            accuracy = row["test_accuracy"]
            shown = "" if accuracy is None else f"{100 * accuracy:.2f} %"
            print(f"| {name} | {row['epoch']} | {row['minutes']} | {shown} |", flush=True)
    if args.png:
        plot(report, args.png)
    _common.write_report(args.json, report)


if __name__ == "__main__":
    main()
