"""Train a zoo model with its recipe and write a verified checkpoint + manifest.

Keras ``fit`` does the work; this module assembles what a recipe means: the data pipeline, the
optimiser and its schedule, the callbacks that make a long run safe on a small machine
(BackupAndRestore to resume, TerminateOnNaN, a CSV log with each epoch's duration), the
distribution strategy, and finally the checkpoint written atomically with its manifest.
"""
import csv
import json
import os
import shlex
import time

import keras
import numpy as np
import tensorflow as tf

from tn_keras import datasets
from tn_keras.training import backup as run_backup
from tn_keras.training.evaluate import evaluate
from tn_keras import artifacts
from tn_keras.zoo import api as zoo_api
from tn_keras.zoo import checkpoints
from tn_keras.zoo import saving
from tn_keras.zoo.registry import check_builder_kwargs
from tn_keras.zoo.registry import get_spec

STRATEGIES = ("default", "mirrored", "multiworker")


def make_strategy(strategy):
    """``"default"``, ``"mirrored"`` (all local devices) or ``"multiworker"`` (TF_CONFIG)."""
    if strategy in (None, "default"):
        return tf.distribute.get_strategy()
    if strategy == "mirrored":
        return tf.distribute.MirroredStrategy()
    if strategy == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy='multiworker' needs the TF_CONFIG environment variable "
                             "(the cluster and this worker's task).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Invalid value for argument `strategy`: expected one of {STRATEGIES}. "
                     f"Received strategy={strategy!r}.")


def _is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
    )


# Recipe augmentation -> `datasets.make_dataset(augment=...)`.
AUGMENTATIONS = {None: False, "cifar": True, "translate": "translate"}


def training_dataset(dataset, x, y, recipe, batch_size, seed):
    """The shuffled, augmented training pipeline of a recipe."""
    if recipe.augmentation not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {recipe.augmentation!r} in the recipe; expected "
                         f"one of {sorted(map(str, AUGMENTATIONS))}.")
    ds = datasets.make_dataset(x, y, batch_size, training=True,
                               augment=AUGMENTATIONS[recipe.augmentation], seed=seed,
                               deterministic=True, dataset_name=dataset)
    options = tf.data.Options()
    # Arrays in memory: every worker reads all of it and takes its share of each batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options)


def make_optimizer(recipe, steps_per_epoch, epochs):
    """AdamW with linear warm-up then cosine decay to zero, and global-norm clipping.

    Clipping matters for polynomial networks: a product of activations can produce a rare
    large gradient early on, before BatchNorm statistics settle.
    """
    total = max(1, steps_per_epoch * epochs)
    warmup = min(int(recipe.warmup_epochs * steps_per_epoch), total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else recipe.learning_rate,
        decay_steps=total - warmup,
        warmup_target=recipe.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=recipe.weight_decay,
        global_clipnorm=recipe.global_clipnorm,
        # A fixed name: Keras numbers unnamed optimizers per process (adam_w, adam_w_1, ...)
        # and saves the name, so identical runs would otherwise differ in their bytes.
        name="adamw",
    )
    # Decay the kernels only: biases and BatchNorm's scale and shift are not decayed.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


class EpochSeconds(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` to the logs, so the CSV log records how long each epoch took
    (summed across resumed runs, that is the training time)."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def _command(name, epochs, batch_size, seed, strategy, max_train_examples, out,
             model_kwargs=None, tag=None, init_from=None):
    words = ["tn-keras", "train", name, "--epochs", str(epochs), "--batch-size",
             str(batch_size), "--seed", str(seed)]
    if model_kwargs:
        words += ["--model-kwargs"] + [f"{key}={json.dumps(value)}"
                                       for key, value in sorted(model_kwargs.items())]
    if strategy not in (None, "default"):
        words += ["--strategy", strategy]
    if max_train_examples is not None:
        words += ["--max-train-examples", str(max_train_examples)]
    if out is not None:
        words += ["--out", out]
    if tag is not None:
        words += ["--tag", tag]
    if init_from is not None:
        words += ["--init-from", init_from]
    return " ".join(shlex.quote(w) for w in words)


def _name_and_tag(name, tag):
    """``train("arch.tag")`` is ``train("arch", tag="tag")``; two different tags are refused."""
    arch, name_tag = checkpoints.split_name(name)
    if name_tag is not None and tag is not None and name_tag != tag:
        raise ValueError(f"{name!r} names tag {name_tag!r} but tag={tag!r} (--tag) was given.")
    return arch, tag or name_tag


def _check_tag_and_init(name, tag, out, init_from):
    """``(tag, init checkpoint)``, refused before any work: a shipped tag without ``out``, a
    bad tag, an unknown ``init_from``."""
    tag = checkpoints.check_tag(tag or checkpoints.LOCAL_TAG)
    if out is None and tag in checkpoints.shipped_tags(name):
        raise ValueError(f"--tag {tag}: {name}.{tag} ships with tn_keras; a local run may not "
                         "shadow it. Choose another tag.")
    init_checkpoint = None if init_from is None else zoo_api.find(init_from)
    return tag, init_checkpoint


def _training_seconds(log_path):
    """Sum of ``epoch_seconds`` in the CSV log (all runs, resumed ones included)."""
    if not os.path.isfile(log_path):
        return None
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    return float(sum(float(r["epoch_seconds"]) for r in rows if r.get("epoch_seconds")))


@run_backup.holds_output_lock  # one run at a time per output folder
def train(name, epochs=None, batch_size=None, data_dir=None, out=None, seed=0, resume=False,
          overwrite=False, strategy=None, max_train_examples=None, max_eval_examples=None,
          callbacks=None, verbose="auto", model_kwargs=None, tag=None, init_from=None):
    """Train ``name`` with its recipe and write ``<out>/<name>.keras`` + ``manifest.json``.

    Args:
        name: a registered zoo name.
        epochs, batch_size: override the recipe's.
        data_dir: where the dataset files are (else ``TN_KERAS_DATA``, tfds, download).
        out: the checkpoint folder; default ``$TN_KERAS_HOME/models/<name>/<tag>`` (where
            `tn_keras.zoo.load("<name>.<tag>")` finds it).
        seed: seeds Python, NumPy, TensorFlow, the shuffling and the augmentation; ops are made
            deterministic, so the same seed on the same machine gives the same weights.
        resume: continue an interrupted run from its backup (``<out>/backup``), with the
            same arguments; on a finished run, return its checkpoint without training.
        overwrite: replace the previous run in ``out`` (removed as a whole first). The folder
            is locked while the run writes it (`tn_keras.training.backup`).
        strategy: None / "default", "mirrored" or "multiworker".
        max_train_examples: train on the first N training images only (smoke tests).
        max_eval_examples: evaluate on the first N of each test split only (smoke tests).
        callbacks: more Keras callbacks for ``fit`` (e.g. a
            `tn_keras.distill.MultiLevelDistillation`).
        verbose: as in ``Model.fit``.
        model_kwargs: keyword arguments for the architecture's builder (e.g. ``{"width":
            2.0}``); recorded in the manifest and the command. The checkpoint file holds the
            whole architecture, so `tn_keras.zoo.load` reads it back as trained.
        tag: the checkpoint's tag (default ``local``); a tag that ships with tn_keras is
            refused unless ``out`` is given, so a local run never shadows a shipped checkpoint.
        init_from: ``NAME[.TAG]`` of a checkpoint whose weights start the run (every layer but
            the classifier head, matched by name; `tn_keras.zoo.saving.transfer_body`).

    Returns:
        ``(model, manifest)``.
    """
    name, tag = _name_and_tag(name, tag)
    spec = get_spec(name)
    model_kwargs = dict(model_kwargs or {})
    check_builder_kwargs(spec, model_kwargs)
    tag, init_checkpoint = _check_tag_and_init(name, tag, out, init_from)
    recipe = spec.recipe
    epochs = int(recipe.epochs if epochs is None else epochs)  # 0 is refused, not the recipe's
    batch_size = int(recipe.batch_size if batch_size is None else batch_size)
    out_given = out
    out = out or checkpoints.cache_dir(name, tag)
    backup_dir = os.path.join(out, "backup")
    log_path = os.path.join(out, "training_log.csv")
    # The folder's rules (resume / overwrite / a previous run) are checked before any work.
    finished = run_backup.prepare_output(out, name, resume, overwrite, run_backup.run_settings(
        name, epochs, batch_size, seed, strategy, max_train_examples, model_kwargs))
    if finished is not None:  # resume=True on a finished run: nothing left to train
        checkpoint = checkpoints.read_checkpoint(out, name, tag)
        return checkpoints.load_verified(checkpoint), checkpoint.manifest

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    strategy_obj = make_strategy(strategy)

    x, y = datasets.load(spec.dataset, "train", data_dir=data_dir)
    if max_train_examples is not None:
        x, y = x[:max_train_examples], y[:max_train_examples]
    steps_per_epoch = int(np.ceil(len(x) / batch_size))
    train_ds = training_dataset(spec.dataset, x, y, recipe, batch_size, seed)

    with strategy_obj.scope():
        model = spec.builder(**model_kwargs)
        if init_checkpoint is not None:
            saving.transfer_body(checkpoints.load_verified(init_checkpoint, compile=False), model)
        model.compile(
            optimizer=make_optimizer(recipe, steps_per_epoch, epochs),
            loss=keras.losses.SparseCategoricalCrossentropy(),
            metrics=["accuracy"],
        )
    if isinstance(strategy_obj, tf.distribute.MultiWorkerMirroredStrategy):
        # Imported only here: it reaches into Keras's private trainer module.
        from tn_keras.training import multiworker_workarounds

        multiworker_workarounds.patch_log_reduction()
        multiworker_workarounds.build_before_fit(model, strategy_obj, train_ds)
    callbacks = [
        run_backup.CrashSafeBackup(backup_dir),
        keras.callbacks.TerminateOnNaN(),
        EpochSeconds(),
        keras.callbacks.CSVLogger(log_path, append=True),
        *(callbacks or []),
    ]
    started = time.perf_counter()
    # shuffle=False: the tf.data pipeline shuffles itself (Keras ignores the flag, and warns).
    history = model.fit(train_ds, epochs=epochs, callbacks=callbacks, verbose=verbose,
                        shuffle=False)
    if model.stop_training or any(not np.isfinite(v) for v in history.history.get("loss", [0])):
        raise RuntimeError(f"Training {name} stopped early (non-finite loss); no checkpoint "
                           "was written.")
    fit_seconds = time.perf_counter() - started

    metrics = {}
    for split, result in evaluate(model, spec.dataset, data_dir=data_dir,
                                  max_examples=max_eval_examples).items():
        metrics[f"{split}_accuracy"] = result["accuracy"]
        metrics[f"{split}_examples"] = result["examples"]

    if not _is_chief(strategy_obj):
        # Every worker must take part in saving; only the chief's copy is kept.
        scratch = os.path.join(out, f".worker-{strategy_obj.cluster_resolver.task_id}.keras")
        model.save(scratch)
        os.remove(scratch)
        run_backup.finish_output(out)  # a worker's backup is not needed once training ended
        return model, None

    training = {
        "command": _command(name, epochs, batch_size, seed, strategy, max_train_examples,
                            out_given, model_kwargs, tag if tag != checkpoints.LOCAL_TAG
                            else None, init_from),
        "model_kwargs": model_kwargs,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "strategy": strategy or "default",
        "train_examples": int(len(x)),
        "recipe": {k: v for k, v in vars(recipe).items()},
        "wall_time_seconds": _training_seconds(log_path) or fit_seconds,
        "final_train_loss": float(history.history["loss"][-1]),
        "final_train_accuracy": float(history.history["accuracy"][-1]),
        "machine": f"{os.cpu_count()} CPU cores, no GPU"
        if not tf.config.list_physical_devices("GPU") else "GPU",
    }
    provenance = artifacts.Provenance(
        model=None if init_checkpoint is None else init_checkpoint.full_name,
        weights_sha256=None if init_checkpoint is None else init_checkpoint.manifest.sha256,
        command=training["command"], seed=seed,
        data={"dataset": spec.dataset, "split": "train", "examples": int(len(x))})
    manifest = saving.write_checkpoint(model, out, spec, tag,
                                       dict(metrics=metrics, training=training), provenance)
    run_backup.finish_output(out)
    return model, manifest
