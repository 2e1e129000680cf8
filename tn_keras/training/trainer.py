"""Train a zoo model with its recipe and write a verified checkpoint + manifest.

Keras ``fit`` does the work; this module assembles what a recipe means: the data pipeline, the
optimiser and its schedule (`tn_keras.training.optimizers`), the loss, Lookahead averaging and
patch whitening where the recipe asks, a teacher's soft targets and the conversion of its
weights where the recipe names one (`tn_keras.training.conversion`), the low-order penalty
(`tn_keras.training.low_order`), the callbacks that make a long run safe on a small machine
(a crash-safe backup of the last two epochs to resume from, TerminateOnNaN, a CSV log with
each epoch's duration), the placement (`tn_keras.training.placement`), and finally the
checkpoint written atomically with its manifest. It runs under every Keras backend and imports
TensorFlow only when that is the backend.
"""
import contextlib
import csv
import dataclasses
import os
import sys
import time
from typing import Any

import keras
import numpy as np

from tn_keras import artifacts
from tn_keras import datasets
from tn_keras.training import backup as run_backup
from tn_keras.training import time_budget
from tn_keras.training.averaging import LookaheadAveraging
from tn_keras.training.config import TrainConfig
from tn_keras.training.config import command_line
from tn_keras.training.conversion import RobustBatchNormStatistics
from tn_keras.training.conversion import convert
from tn_keras.training.conversion import get_conversion
from tn_keras.training.conversion import with_teacher_targets
from tn_keras.training.evaluation import evaluate
from tn_keras.training.evaluation import evaluation_splits
from tn_keras.training.evaluation import tta_views
from tn_keras.training.losses import make_loss
from tn_keras.training.low_order import thaw_batch_norm
from tn_keras.training.low_order import with_low_order_penalty
from tn_keras.training.optimizers import make_optimizer
from tn_keras.training.placement import make_placement
from tn_keras.training.run_settings import deterministic_ops
from tn_keras.training.run_settings import dtype_policy
from tn_keras.training.whitening import adapt_whitening
from tn_keras.utils import locks
from tn_keras.utils.options import with_keywords
from tn_keras.utils.versions import machine_description
from tn_keras.utils.write_errors import refused_writes
from tn_keras.zoo import api as zoo_api
from tn_keras.zoo import checkpoints
from tn_keras.zoo import saving
from tn_keras.zoo.registry import check_builder_kwargs
from tn_keras.zoo.registry import get_recipe
from tn_keras.zoo.registry import get_spec

# Recipe augmentation -> `datasets.PipelineConfig.augment`.
AUGMENTATIONS = {None: False, "cifar": True, "translate": "translate",
                 "flip_translate": "flip_translate"}


def training_dataset(spec, x, y, config, placement=None):
    """The shuffled, augmented training pipeline of ``spec``'s recipe with ``config``'s batch
    size and seed: tf.data under TensorFlow, a NumPy `keras.utils.PyDataset` under the other
    backends."""
    recipe = spec.recipe
    if recipe.augmentation not in AUGMENTATIONS:
        raise ValueError(f"Unknown augmentation {recipe.augmentation!r} in the recipe; expected "
                         f"one of {sorted(map(str, AUGMENTATIONS))}.")
    replicas = placement.replicas if placement is not None else 1
    options = datasets.PipelineConfig(
        augment=AUGMENTATIONS[recipe.augmentation], seed=config.seed, deterministic=True,
        dataset_name=spec.dataset,
        # keras.distribution splits every batch evenly over devices.
        drop_remainder=replicas > 1 and placement.tf_strategy is None)
    ds = datasets.make_dataset(x, y, config.batch_size, training=True, options=options)
    if placement is not None and placement.tf_strategy is not None:
        import tensorflow as tf  # tf.distribute: the backend is TensorFlow.

        tf_options = tf.data.Options()
        # Arrays in memory: every worker reads all of it and takes its share of each batch.
        tf_options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        clock = getattr(ds, "epoch_clock", None)
        ds = ds.with_options(tf_options)
        if clock is not None:  # a new dataset object: keep the pipeline's epoch callback
            ds.epoch_clock = clock
    return ds


class TimedCSVLogger(keras.callbacks.CSVLogger):
    """A `keras.callbacks.CSVLogger` whose rows also record ``epoch_seconds``, how long each
    epoch took (summed across resumed runs, that is the training time).

    The time goes into the CSV row only, not into the shared ``logs``: a value added there
    would also be printed by the progress bar and returned in ``History`` as if it were a
    metric. The columns are the logged keys as they are: Keras's logger, seeing no
    ``val_`` key, adds ``val_<key>`` for every key (for runs that validate only every few
    epochs), which here would be columns of ``NA`` forever (``val_epoch_seconds`` included).
    A resumed run keeps the columns of the file it appends to."""

    def on_train_begin(self, logs=None):
        with refused_writes(self.filename):  # a plain OSError without the file's name
            header = _csv_header(self.filename) if self.append else None
            super().on_train_begin(logs)
        if header:
            self.keys = header[1:]  # after "epoch"

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {}, epoch_seconds=time.perf_counter() - self._start)
        if self.keys is None:
            self.keys = sorted(logs)
        with refused_writes(self.filename):
            super().on_epoch_end(epoch, logs)

    def close(self):
        """Close the file if ``fit`` left it open: Keras closes it in ``on_train_end``, which a
        run stopped by an exception (a time budget's re-plan, an interrupt) never reaches."""
        log_file = getattr(self, "csv_file", None)
        if log_file is not None and not log_file.closed:
            log_file.close()


def _csv_header(path):
    """The first row of the CSV file at ``path`` (None if there is none)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return next(csv.reader(f), None)
    except FileNotFoundError:
        return None


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


def _teacher_checkpoint(recipe, init_checkpoint):
    """The checkpoint of ``recipe.teacher`` (None without one), refused before any work: an
    unknown teacher, a conversion without one, a conversion and ``init_from`` together."""
    if recipe.conversion is not None:
        get_conversion(recipe.conversion)
        if recipe.teacher is None:
            raise ValueError(f"The recipe's conversion {recipe.conversion!r} needs a teacher "
                             "(TrainingRecipe.teacher): the network it converts.")
        if init_checkpoint is not None:
            raise ValueError(f"init_from={init_checkpoint.full_name!r} (--init-from) and the "
                             f"recipe's conversion of {recipe.teacher!r} both choose the "
                             "starting weights; pass one.")
    return None if recipe.teacher is None else zoo_api.find(recipe.teacher)


def _check_penalised_start(recipe, init_checkpoint):
    """A low-order penalty fine-tunes a trained network: refused without ``init_from`` or a
    conversion (BatchNorm frozen at a fresh network's statistics would normalise nothing)."""
    if recipe.low_order_penalty and init_checkpoint is None and recipe.conversion is None:
        raise ValueError(f"The recipe's low_order_penalty={recipe.low_order_penalty:g} "
                         "fine-tunes a trained network with its BatchNorm frozen: pass "
                         "init_from (--init-from NAME[.TAG], and --init-head to keep its "
                         "classifier).")


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


@dataclasses.dataclass(frozen=True)
class _Run:
    """One call of `train`, resolved and checked before any work."""

    name: str  # the architecture (a registered zoo name)
    tag: str  # the tag written (``local`` unless asked)
    spec: Any  # the zoo's record of ``name``: builder, dataset, recipe
    config: TrainConfig  # with the recipe's epochs and batch size filled in
    recipe: Any  # the recipe as run: the zoo's, with the config's epochs, batch size, rate
    folder: RunFolder
    init_checkpoint: Any = None  # the checkpoint of ``config.init_from``
    teacher_checkpoint: Any = None  # the checkpoint of ``recipe.teacher``
    callbacks: tuple = ()
    time_plan: Any = None  # a time budget's `time_budget.TimePlan`, once planned
    started: float = 0.0  # when `train` was called (perf_counter): the budget's clock
    watch_budget: bool = False  # re-plan after the first epoch (a fresh plan, not a resume's)

    def with_plan(self, plan):
        """This run with the planned epochs (the budget is spent: ``--epochs E`` repeats it)."""
        config = dataclasses.replace(self.config, epochs=plan.epochs, time_budget=None)
        return dataclasses.replace(self, config=config, time_plan=plan,
                                   recipe=dataclasses.replace(self.recipe, epochs=plan.epochs))

    @classmethod
    def plan(cls, name, config, callbacks):
        arch, tag = _name_and_tag(name, config.tag)
        spec = get_spec(arch)
        check_builder_kwargs(spec, config.model_kwargs)
        tag, init_checkpoint = _check_tag_and_init(arch, tag, config.out, config.init_from)
        base = spec.recipe if config.recipe is None else get_recipe(config.recipe)
        # The manifest's command leaves the default tag out: None stands for it.
        config = dataclasses.replace(config.with_recipe(base),
                                     tag=None if tag == checkpoints.LOCAL_TAG else tag)
        recipe = dataclasses.replace(
            base, epochs=config.epochs, batch_size=config.batch_size,
            learning_rate=config.learning_rate or base.learning_rate)
        _check_penalised_start(recipe, init_checkpoint)
        folder = RunFolder.of(config.out or checkpoints.cache_dir(arch, tag))
        return cls(arch, tag, spec, config, recipe, folder, init_checkpoint,
                   _teacher_checkpoint(recipe, init_checkpoint), tuple(callbacks or ()))


def train(name, config=None, *, callbacks=None, **keywords):
    """Train ``name`` with its recipe and write ``<out>/<name>.keras`` + ``manifest.json``.

    ``train("mnist_taylornet", TrainConfig(epochs=3, seed=1))`` and
    ``train("mnist_taylornet", epochs=3, seed=1)`` are the same call: keyword arguments name
    `TrainConfig` fields and replace the config's values.

    Args:
        name: a registered zoo name, or ``NAME.TAG`` (the tag to write).
        config: a `TrainConfig` (None: the defaults, i.e. the recipe).
        callbacks: more Keras callbacks for ``fit`` (e.g. a
            `tn_keras.distill.MultiLevelDistillation`).
        **keywords: `TrainConfig` fields; an unknown name is a TypeError listing them.

    Returns:
        ``(model, manifest)``; the manifest is None on a multi-worker run's non-chief workers.
        With ``resume=True`` on a finished run, its checkpoint, without training.
    """
    run = _Run.plan(name, with_keywords(config, TrainConfig, keywords, "train"), callbacks)
    run = dataclasses.replace(run, started=time.perf_counter())
    with locks.locked(run.folder.out, f"tn_keras.training.train({run.name!r})"):
        if run.config.time_budget is not None and run.config.resume:
            # A budgeted run resumes with the epochs it planned, not a new plan.
            plan = time_budget.read_plan(run.folder.out)
            run = run if plan is None else run.with_plan(plan)
        # The folder's rules (resume / overwrite / a previous run) are checked before any work.
        if run_backup.prepare_output(run.folder.out, run.name, run.config) is not None:
            checkpoint = checkpoints.read_checkpoint(run.folder.out, run.name, run.tag)
            return checkpoints.load_verified(checkpoint), checkpoint.manifest
        # A write the file system refuses (a backup, the log, the checkpoint) ends the run as
        # one WriteRefusedError saying which backup is intact to resume from.
        with refused_writes(run.folder.out, paths=(run.folder.out,),
                            intact=lambda: run_backup.intact_backup_note(run.folder.backup)):
            return _train_and_save(run)


def _train_and_save(run):
    """Load the data, fit, evaluate, write the checkpoint; ``(model, manifest)``."""
    x, y = datasets.load(run.spec.dataset, "train", data_dir=run.config.data_dir)
    if run.config.max_train_examples is not None:
        x, y = x[:run.config.max_train_examples], y[:run.config.max_train_examples]
    placement = make_placement(run.config.strategy)
    if run.config.time_budget is not None:
        run = _planned(run, placement, x, y)
    try:
        model, history, fit_seconds = _build_and_fit(run, placement, x, y)
    except time_budget.Replan as replan:  # once: the re-planned run has no BudgetWatch
        _announce(replan.plan, run.config.verbose)
        run = dataclasses.replace(run.with_plan(replan.plan), watch_budget=False)
        time_budget.write_plan(run.folder.out, replan.plan)
        run_backup.discard_epochs(run.folder.out, run.name, run.config)
        model, history, fit_seconds = _build_and_fit(run, placement, x, y)
    _check_finite(model, history, run)
    if model.stop_training:
        raise RuntimeError(f"Training {run.name} stopped early; no checkpoint was written.")
    metrics = _test_metrics(model, run.spec.dataset, run.config.data_dir,
                            run.config.max_eval_examples, run.recipe.test_time_augmentation)
    if not placement.is_chief:
        _save_as_worker(model, run.folder, placement)
        return model, None
    training = _training_record(run, placement, len(x), history, fit_seconds)
    manifest = _write_checkpoint(model, run, metrics, training)
    run_backup.finish_output(run.folder.out)  # the backup goes only once the checkpoint is whole
    if run.time_plan is not None:  # the manifest records it now
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(run.folder.out, time_budget.PLAN_FILE))
    return model, manifest


class TrainingDivergedError(ValueError):
    """The loss or the weights became NaN or Inf: no checkpoint is written (the backup keeps
    the last finite epoch). A ValueError: the run's settings, its learning rate first, are
    what to change (the CLI's exit code 2)."""


def _check_finite(model, history, run):
    """Refuse to save a model whose training diverged: a non-finite loss (TerminateOnNaN
    stopped the epoch) or non-finite weights after a finite loss (a loss is that of the
    weights before the step)."""
    losses = history.history.get("loss", [])
    epochs = list(history.epoch) or [run.config.epochs - 1]  # 0-based, a resume's included
    bad = [i for i, v in enumerate(losses) if not np.isfinite(v)]
    weight = run_backup.non_finite_weight(model)
    if not bad and weight is None:
        return
    if bad:
        what, epoch = f"the loss is {losses[bad[0]]}", epochs[min(bad[0], len(epochs) - 1)] + 1
    else:
        what, epoch = f"weight {weight} holds NaN or Inf", epochs[-1] + 1
    try:
        entry = run_backup.usable_backup(run.folder.backup)
    except (OSError, ValueError):  # both backups damaged: that is not this error's news
        entry = None
    kept = ("no epoch was backed up" if entry is None else
            f"the backup of epoch {entry['epoch']}, the last finite one, is kept")
    raise TrainingDivergedError(
        f"Training {run.name} diverged in epoch {epoch} with learning rate "
        f"{run.recipe.learning_rate:g}: {what}; no checkpoint was written ({kept}). Train "
        "again with a smaller learning_rate (CLI: --learning-rate) and overwrite=True "
        "(--overwrite).")


def _planned(run, placement, x, y):
    """The run with its epochs planned from ``config.time_budget`` (`time_budget`): training
    steps timed on a throw-away model under the run's own settings (determinism, precision,
    placement), the evaluation estimated from them; the plan is written to the folder and the
    backup's settings updated to the planned epochs."""
    config, recipe = run.config, run.recipe
    steps = int(np.ceil(len(x) / config.batch_size))

    def build():
        model = run.spec.builder(**config.model_kwargs)
        _check_outputs(run, model)
        adapt_whitening(model, x[:recipe.whitening_images])
        return _model_to_fit(run, model, x)

    def compile_model(model):
        model.compile(optimizer=make_optimizer(recipe, steps, 1), loss=make_loss(recipe),
                      metrics=["accuracy"])

    with deterministic_ops(), placement.run_scope(), dtype_policy(config.mixed_precision), \
            placement.model_scope():
        teacher = (None if run.teacher_checkpoint is None else
                   checkpoints.load_verified(run.teacher_checkpoint, compile=False))
        step = time_budget.measure_step_seconds(build, compile_model, x, y, config.batch_size,
                                                teacher=teacher)
    test_images = 0
    for split in evaluation_splits(run.spec.dataset):
        n = len(datasets.load(run.spec.dataset, split, data_dir=config.data_dir)[1])
        test_images += min(n, config.max_eval_examples or n)
    views = len(tta_views(np.asarray(x[:1], "float32"))) if recipe.test_time_augmentation else 0
    evaluation = time_budget.evaluation_seconds(step, config.batch_size, test_images, views)
    spent = time.perf_counter() - run.started
    plan = time_budget.TimePlan(
        budget_seconds=config.time_budget, steps_per_epoch=steps, seconds_per_step=step,
        evaluation_seconds=evaluation, spent_seconds=spent,
        epochs=time_budget.plan_epochs(config.time_budget, spent, steps, step, evaluation))
    _announce(plan, config.verbose)
    time_budget.write_plan(run.folder.out, plan)
    run = dataclasses.replace(run.with_plan(plan), watch_budget=True)
    run_backup.record_settings(run.folder.out, run.name, run.config)
    return run


def _check_outputs(run, model):
    """Refuse a model with fewer outputs than the dataset has classes, naming the cause.

    Without this, ``--model-kwargs num_classes=3`` on a 10-class dataset fails inside the
    first training step with TensorFlow's bare "Graph execution error" (a label out of the
    logits' range). More outputs than classes train (the extra logits learn to stay low).
    """
    outputs = model.output_shape[-1]
    classes = datasets.info(run.spec.dataset).num_classes
    if outputs is not None and outputs < classes:
        given = run.config.model_kwargs.get("num_classes")
        cause = (f"model_kwargs num_classes={given}" if given is not None
                 else f"{run.name!r} with model_kwargs {run.config.model_kwargs}")
        raise ValueError(
            f"{cause} gives a model with {outputs} outputs, but {run.spec.dataset} has "
            f"{classes} classes (labels 0..{classes - 1}); use num_classes >= {classes}, or "
            "fine-tune on fewer classes with the Python API (docs/zoo.md, \"Fine-tuning and "
            "features\").")


def _announce(plan, verbose):
    if verbose != 0:
        what = ("re-planned after the first epoch" if plan.replanned_from is not None
                else "planned")
        print(f"tn_keras: time budget {plan.budget_seconds:.0f} s: {plan.epochs} epochs "
              f"{what} ({plan.steps_per_epoch} steps of {plan.seconds_per_step:.3f} s each, "
              f"final evaluation about {plan.evaluation_seconds:.0f} s)", file=sys.stderr)


def _build_and_fit(run, placement, x, y):
    """Builds, compiles and fits the model with the run's global settings switched on only for
    the run; returns ``(model, history, fit_seconds)``."""
    config = run.config
    with deterministic_ops(), placement.run_scope():
        keras.utils.set_random_seed(config.seed)
        train_ds = training_dataset(run.spec, x, y, config, placement)
        with dtype_policy(config.mixed_precision), placement.model_scope():
            model = run.spec.builder(**config.model_kwargs)
            _check_outputs(run, model)
            # Before training and before a resume restores the weights (which include it);
            # a checkpoint the run starts from then brings its own, which its body learnt on.
            adapt_whitening(model, x[:run.recipe.whitening_images])
            teacher = _start_from_checkpoints(run, model, x)
            if teacher is not None:
                train_ds = with_teacher_targets(train_ds, teacher)
            if config.freeze_body:  # before compile: Keras fixes the trainable weights there
                zoo_api.set_body_trainable(model, False)
            steps = _steps_per_epoch(train_ds, len(x), config.batch_size)
            fitted = _model_to_fit(run, model, x)
            fitted.compile(
                optimizer=make_optimizer(run.recipe, steps, config.epochs),
                loss=make_loss(run.recipe),
                metrics=["accuracy"],
            )
        history, fit_seconds = _fit(fitted, train_ds, run, placement, steps,
                                    x[:run.recipe.statistics_images])
    # TerminateOnNaN and the backup stop the model that is fitted.
    model.stop_training = fitted.stop_training
    if fitted is not model:
        thaw_batch_norm(model)
    if config.freeze_body:
        # The checkpoint is a model like any other: whoever loads it decides what to train.
        zoo_api.set_body_trainable(model, True)
    return model, history, fit_seconds


def _model_to_fit(run, model, x):
    """``model`` itself, or with the recipe's low-order penalty a training model over its
    weights (`with_low_order_penalty`) about the mean of the run's training images ``x``: the
    expansion point of the readability figures on the model card."""
    if not run.recipe.low_order_penalty:
        return model
    center = np.mean(x, axis=0, dtype=np.float64).astype("float32")
    return with_low_order_penalty(model, center, run.recipe.low_order_penalty)


def _start_from_checkpoints(run, model, x):
    """Copy ``init_from``'s body (and head, with ``init_head``) into ``model``, or convert the
    recipe's teacher into it (`tn_keras.training.conversion`); returns the teacher model (None
    without one)."""
    if run.init_checkpoint is not None:
        source = checkpoints.load_verified(run.init_checkpoint, compile=False)
        try:
            saving.transfer_body(source, model, include_head=run.config.init_head)
        except ValueError as error:  # name the argument the user gave
            raise ValueError(f"init_from={run.init_checkpoint.full_name!r} (--init-from): "
                             f"{error}") from None
    if run.teacher_checkpoint is None:
        return None
    teacher = checkpoints.load_verified(run.teacher_checkpoint, compile=False)
    teacher.trainable = False
    if run.recipe.conversion is not None:
        convert(teacher, model, x[:run.recipe.statistics_images], run.recipe.conversion,
                run.recipe.curvature_scale, seed=run.config.seed)
    return teacher


def _test_metrics(model, dataset, data_dir, max_examples, tta=False):
    """``{"<split>_accuracy": a, "<split>_examples": n}`` on every evaluation split, and
    ``"<split>_tta_accuracy"`` with test-time augmentation when ``tta``."""
    metrics = {}
    for split, result in evaluate(model, dataset, data_dir=data_dir,
                                  max_examples=max_examples).items():
        metrics[f"{split}_accuracy"] = result["accuracy"]
        metrics[f"{split}_examples"] = result["examples"]
    if tta:
        for split, result in evaluate(model, dataset, data_dir=data_dir,
                                      max_examples=max_examples, tta=True).items():
            metrics[f"{split}_tta_accuracy"] = result["accuracy"]
    return metrics


def _steps_per_epoch(train_ds, examples, batch_size):
    if isinstance(train_ds, keras.utils.PyDataset):
        return len(train_ds)
    return int(np.ceil(examples / batch_size))


def _fit(model, train_ds, run, placement, steps_per_epoch, statistics_images):
    """``model.fit`` with the run's callbacks; returns ``(history, seconds)``.
    ``statistics_images``: raw training images for the recipe's robust BatchNorm
    statistics."""
    # The pipeline's epoch clock first: it sets the epoch before its batches are drawn.
    recipe_callbacks = [c for c in [getattr(train_ds, "epoch_clock", None)] if c is not None]
    if run.recipe.lookahead:
        recipe_callbacks.append(LookaheadAveraging(steps_per_epoch * run.config.epochs))
    if run.recipe.robust_batch_norm:
        # Before the backup: the backup must hold the statistics the epoch ends with.
        recipe_callbacks.append(RobustBatchNormStatistics(statistics_images))
    if run.watch_budget:
        recipe_callbacks.append(time_budget.BudgetWatch(run.time_plan, run.started))
    log = TimedCSVLogger(run.folder.log, append=True)
    callbacks = [
        *recipe_callbacks,
        run_backup.CrashSafeBackup(run.folder.backup),
        keras.callbacks.TerminateOnNaN(),
        log,
        *run.callbacks,
    ]
    fixes = contextlib.nullcontext()
    if placement.strategy == "multiworker":
        # Imported only here: it imports TensorFlow (the strategy's backend).
        from tn_keras.training.multiworker_workarounds import multiworker_fixes

        fixes = multiworker_fixes(model, placement.tf_strategy, train_ds)
    started = time.perf_counter()
    with fixes:
        # shuffle=False: the pipeline shuffles itself, reproducibly from the seed.
        try:
            history = model.fit(train_ds, epochs=run.config.epochs, callbacks=callbacks,
                                verbose=run.config.verbose, shuffle=False)
        finally:
            log.close()
    return history, time.perf_counter() - started


def _save_as_worker(model, folder, placement):
    """Every worker must take part in saving; only the chief's copy is kept."""
    scratch = os.path.join(folder.out, f".worker-{placement.task_id}.keras")
    model.save(scratch)
    os.remove(scratch)
    run_backup.finish_output(folder.out)  # a worker's backup is not needed once training ended


def _training_record(run, placement, train_examples, history, fit_seconds):
    """The manifest's ``training`` entry: how the checkpoint was made."""
    settings = run_backup.run_settings(run.name, run.config)
    return {
        "command": command_line(run.name, run.config),
        "model_kwargs": settings["model_kwargs"],
        "epochs": settings["epochs"],
        "batch_size": settings["batch_size"],
        "seed": settings["seed"],
        "strategy": placement.strategy,
        "replicas": placement.replicas,
        "mixed_precision": run.config.mixed_precision,
        "backend": keras.backend.backend(),
        "train_examples": int(train_examples),
        "recipe": dict(vars(run.recipe)),
        "wall_time_seconds": _training_seconds(run.folder.log) or fit_seconds,
        **({} if run.time_plan is None else {"time_plan": run.time_plan.as_dict()}),
        "final_train_loss": float(history.history["loss"][-1]),
        "final_train_accuracy": float(history.history["accuracy"][-1]),
        "machine": machine_description(),
    }


def _write_checkpoint(model, run, metrics, training):
    """The reproducible ``.keras`` file, its manifest and model card (`zoo.saving`)."""
    # A conversion starts from the teacher's weights.
    init = run.init_checkpoint if run.recipe.conversion is None else run.teacher_checkpoint
    provenance = artifacts.Provenance(
        model=None if init is None else init.full_name,
        weights_sha256=None if init is None else init.manifest.sha256,
        command=training["command"], seed=training["seed"],
        data={"dataset": run.spec.dataset, "split": "train",
              "examples": training["train_examples"]})
    return saving.write_checkpoint(model, run.folder.out, run.spec, run.tag,
                                   dict(metrics=metrics, training=training), provenance)
