"""Train a zoo model with its recipe and write a verified checkpoint + manifest.

Keras ``fit`` does the work; this module assembles what a recipe means: the data pipeline, the
optimiser and its schedule, the callbacks that make a long run safe on a small machine
(a crash-safe BackupAndRestore to resume, TerminateOnNaN, a CSV log with each epoch's duration), the
placement (`tn_keras.training.placement`), and finally the checkpoint written atomically with
its manifest. It runs under every Keras backend and imports TensorFlow only when that is the
backend.
"""
import contextlib
import csv
import dataclasses
import json
import os
import shlex
import time

import keras
import numpy as np

from tn_keras import artifacts
from tn_keras import datasets
from tn_keras.training import backup as run_backup
from tn_keras.training.evaluate import evaluate
from tn_keras.training.placement import STRATEGIES  # noqa: F401 (the CLI's choices)
from tn_keras.training.placement import make_placement
from tn_keras.training.run_settings import deterministic_ops
from tn_keras.training.run_settings import dtype_policy
from tn_keras.utils import locks
from tn_keras.utils.versions import machine_description
from tn_keras.zoo import api as zoo_api
from tn_keras.zoo import checkpoints
from tn_keras.zoo import saving
from tn_keras.zoo.registry import check_builder_kwargs
from tn_keras.zoo.registry import get_spec

# Recipe augmentation -> `datasets.make_dataset(augment=...)`.
AUGMENTATIONS = {None: False, "cifar": True, "translate": "translate"}


def training_dataset(dataset, x, y, recipe, batch_size, seed, placement=None):
    """The shuffled, augmented training pipeline of a recipe: tf.data under TensorFlow, a
    NumPy `keras.utils.PyDataset` under the other backends."""
    if recipe.augmentation not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {recipe.augmentation!r} in the recipe; expected "
                         f"one of {sorted(map(str, AUGMENTATIONS))}.")
    replicas = placement.replicas if placement is not None else 1
    ds = datasets.make_dataset(x, y, batch_size, training=True,
                               augment=AUGMENTATIONS[recipe.augmentation], seed=seed,
                               deterministic=True, dataset_name=dataset,
                               # keras.distribution splits every batch evenly over devices.
                               drop_remainder=replicas > 1 and placement.tf_strategy is None)
    if placement is not None and placement.tf_strategy is not None:
        import tensorflow as tf  # tf.distribute: the backend is TensorFlow.

        options = tf.data.Options()
        # Arrays in memory: every worker reads all of it and takes its share of each batch.
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        ds = ds.with_options(options)
    return ds


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
             model_kwargs=None, mixed_precision=False, tag=None, init_from=None):
    words = ["tn-keras", "train", name, "--epochs", str(epochs), "--batch-size",
             str(batch_size), "--seed", str(seed)]
    if model_kwargs:
        words += ["--model-kwargs"] + [f"{key}={json.dumps(value)}"
                                       for key, value in sorted(model_kwargs.items())]
    if strategy not in (None, "default"):
        words += ["--strategy", strategy]
    if mixed_precision:
        words += ["--mixed-precision"]
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


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """The files of one training run in its checkpoint folder."""

    out: str
    backup: str
    log: str

    @classmethod
    def of(cls, out):
        return cls(out, os.path.join(out, run_backup.BACKUP_DIR),
                   os.path.join(out, run_backup.LOG_FILE))


def train(name, epochs=None, batch_size=None, data_dir=None, out=None, seed=0, resume=False,
          overwrite=False, strategy=None, max_train_examples=None, max_eval_examples=None,
          callbacks=None, verbose="auto", model_kwargs=None, tag=None, init_from=None,
          mixed_precision=False):
    """Train ``name`` with its recipe and write ``<out>/<name>.keras`` + ``manifest.json``.

    Args:
        name: a registered zoo name, or ``NAME.TAG`` (the tag to write).
        epochs, batch_size: override the recipe's.
        data_dir: where the dataset files are (else ``TN_KERAS_DATA``, tfds, download).
        out: the checkpoint folder; default ``$TN_KERAS_HOME/models/<name>/<tag>`` (where
            `tn_keras.zoo.load("<name>.<tag>")` finds it).
        seed: seeds Python, NumPy, the backend, the shuffling and the augmentation; ops are made
            deterministic for the run, so the same seed on the same machine and backend gives
            the same weights.
        resume: continue an interrupted run from its backup (``<out>/backup``), with the
            same arguments; on a finished run, return its checkpoint without training.
        overwrite: replace the previous run in ``out`` (removed as a whole first). The folder
            is locked while the run writes it (`tn_keras.utils.locks`).
        strategy: None / "default", "mirrored" or "multiworker" (TensorFlow backend), or
            "data_parallel" (JAX backend: `keras.distribution.DataParallel` over all local
            devices); see `tn_keras.training.placement`.
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
        mixed_precision: build the model under the ``mixed_bfloat16`` policy (bfloat16
            compute, float32 variables).

    Returns:
        ``(model, manifest)``; the manifest is None on a multi-worker run's non-chief workers.
    """
    name, tag = _name_and_tag(name, tag)
    spec = get_spec(name)
    model_kwargs = dict(model_kwargs or {})
    check_builder_kwargs(spec, model_kwargs)
    tag, init_checkpoint = _check_tag_and_init(name, tag, out, init_from)
    epochs = int(spec.recipe.epochs if epochs is None else epochs)  # 0 is refused, not the
    batch_size = int(spec.recipe.batch_size if batch_size is None else batch_size)  # recipe's
    run = RunFolder.of(out or checkpoints.cache_dir(name, tag))
    settings = run_backup.run_settings(name, epochs, batch_size, seed, strategy,
                                       max_train_examples, model_kwargs, mixed_precision,
                                       init_from)
    with locks.locked(run.out, f"tn_keras.training.train({name!r})"):  # one run per folder
        # The folder's rules (resume / overwrite / a previous run) are checked before any work.
        finished = run_backup.prepare_output(run.out, name, resume, overwrite, settings)
        if finished is not None:  # resume=True on a finished run: nothing left to train
            checkpoint = checkpoints.read_checkpoint(run.out, name, tag)
            return checkpoints.load_verified(checkpoint), checkpoint.manifest
        x, y = datasets.load(spec.dataset, "train", data_dir=data_dir)
        if max_train_examples is not None:
            x, y = x[:max_train_examples], y[:max_train_examples]
        placement = make_placement(strategy)
        model, history, fit_seconds = _build_and_fit(
            spec, model_kwargs, init_checkpoint, x, y, batch_size, epochs, seed, placement, run,
            mixed_precision, callbacks, verbose)
        if model.stop_training or any(not np.isfinite(v) for v in history.history["loss"]):
            raise RuntimeError(f"Training {name} stopped early (non-finite loss); no "
                               "checkpoint was written.")
        metrics = _test_metrics(model, spec.dataset, data_dir, max_eval_examples)
        if not placement.is_chief:
            _save_as_worker(model, run, placement)
            return model, None
        command = _command(name, epochs, batch_size, seed, placement.strategy,
                           max_train_examples, out, model_kwargs, mixed_precision,
                           tag if tag != checkpoints.LOCAL_TAG else None, init_from)
        training = _training_record(command, settings, placement, mixed_precision, spec, x,
                                    history, run, fit_seconds)
        manifest = _write_checkpoint(model, run, spec, tag, metrics, training, init_checkpoint)
        run_backup.finish_output(run.out)  # the backup goes only once the checkpoint is whole
        return model, manifest


def _build_and_fit(spec, model_kwargs, init_checkpoint, x, y, batch_size, epochs, seed,
                   placement, run, mixed_precision, callbacks, verbose):
    """Builds, compiles and fits the model with the run's global settings switched on only for
    the run; returns ``(model, history, fit_seconds)``."""
    with deterministic_ops(), placement.run_scope():
        keras.utils.set_random_seed(seed)
        train_ds = training_dataset(spec.dataset, x, y, spec.recipe, batch_size, seed, placement)
        with dtype_policy(mixed_precision), placement.model_scope():
            model = spec.builder(**model_kwargs)
            if init_checkpoint is not None:
                saving.transfer_body(checkpoints.load_verified(init_checkpoint, compile=False),
                                     model)
            model.compile(
                optimizer=make_optimizer(spec.recipe, _steps_per_epoch(train_ds, len(x),
                                                                       batch_size), epochs),
                loss=keras.losses.SparseCategoricalCrossentropy(),
                metrics=["accuracy"],
            )
        history, fit_seconds = _fit(model, train_ds, epochs, run, placement, callbacks, verbose)
    return model, history, fit_seconds


def _test_metrics(model, dataset, data_dir, max_examples):
    """``{"<split>_accuracy": a, "<split>_examples": n}`` on every evaluation split."""
    metrics = {}
    for split, result in evaluate(model, dataset, data_dir=data_dir,
                                  max_examples=max_examples).items():
        metrics[f"{split}_accuracy"] = result["accuracy"]
        metrics[f"{split}_examples"] = result["examples"]
    return metrics


def _steps_per_epoch(train_ds, examples, batch_size):
    if isinstance(train_ds, keras.utils.PyDataset):
        return len(train_ds)
    return int(np.ceil(examples / batch_size))


def _fit(model, train_ds, epochs, run, placement, callbacks, verbose):
    """``model.fit`` with the run's callbacks; returns ``(history, seconds)``."""
    callbacks = [
        run_backup.CrashSafeBackup(run.backup),
        keras.callbacks.TerminateOnNaN(),
        EpochSeconds(),
        keras.callbacks.CSVLogger(run.log, append=True),
        *(callbacks or []),
    ]
    fixes = contextlib.nullcontext()
    if placement.strategy == "multiworker":
        # Imported only here: it reaches into Keras's private TensorFlow trainer module.
        from tn_keras.training.multiworker_workarounds import multiworker_fixes

        fixes = multiworker_fixes(model, placement.tf_strategy, train_ds)
    started = time.perf_counter()
    with fixes:
        # shuffle=False: the pipeline shuffles itself, reproducibly from the seed.
        history = model.fit(train_ds, epochs=epochs, callbacks=callbacks, verbose=verbose,
                            shuffle=False)
    return history, time.perf_counter() - started


def _save_as_worker(model, run, placement):
    """Every worker must take part in saving; only the chief's copy is kept."""
    scratch = os.path.join(run.out, f".worker-{placement.task_id}.keras")
    model.save(scratch)
    os.remove(scratch)
    run_backup.finish_output(run.out)  # a worker's backup is not needed once training ended


def _training_record(command, settings, placement, mixed_precision, spec, x, history, run,
                     fit_seconds):
    """The manifest's ``training`` entry: how the checkpoint was made."""
    return {
        "command": command,
        "model_kwargs": settings["model_kwargs"],
        "epochs": settings["epochs"],
        "batch_size": settings["batch_size"],
        "seed": settings["seed"],
        "strategy": placement.strategy,
        "replicas": placement.replicas,
        "mixed_precision": bool(mixed_precision),
        "backend": keras.backend.backend(),
        "train_examples": int(len(x)),
        "recipe": {k: v for k, v in vars(spec.recipe).items()},
        "wall_time_seconds": _training_seconds(run.log) or fit_seconds,
        "final_train_loss": float(history.history["loss"][-1]),
        "final_train_accuracy": float(history.history["accuracy"][-1]),
        "machine": machine_description(),
    }


def _write_checkpoint(model, run, spec, tag, metrics, training, init_checkpoint):
    """The reproducible ``.keras`` file, its manifest and model card (`zoo.saving`)."""
    provenance = artifacts.Provenance(
        model=None if init_checkpoint is None else init_checkpoint.full_name,
        weights_sha256=None if init_checkpoint is None else init_checkpoint.manifest.sha256,
        command=training["command"], seed=training["seed"],
        data={"dataset": spec.dataset, "split": "train", "examples": training["train_examples"]})
    return saving.write_checkpoint(model, run.out, spec, tag,
                                   dict(metrics=metrics, training=training), provenance)
