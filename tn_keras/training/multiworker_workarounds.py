"""Workarounds that let Keras 3 ``fit`` run under ``tf.distribute.MultiWorkerMirroredStrategy``.

keras-team/keras#20585 (open as of Keras 3.15): ``Model.fit`` under MultiWorkerMirroredStrategy
fails in two places of Keras's TensorFlow trainer (``keras/src/backend/tensorflow/trainer.py``,
line numbers of 3.15.1):

1. ``fit`` calls ``self._maybe_symbolic_build(iterator=epoch_iterator)`` (line 372). For a model
   made under a strategy it takes the first *distributed* batch and reduces it eagerly with
   ``self.distribute_strategy.reduce("MEAN", batch, axis=None)`` (line 731) -- before it checks
   whether anything needs building -- which fails: "Attempt to convert a value (PerReplica...)
   ... to a Tensor".
2. Every step, ``_make_function`` reduces the step's logs with ``reduce_per_replica(...,
   reduction="auto")`` (line 138), which under multi-worker runs ``strategy.reduce("MEAN", v,
   axis=0)`` (line 841): invalid for a scalar log ("Invalid reduction dimension 0 for input
   with 0 dimensions").

Public routes:

* Fix 1 has none. No argument of ``fit`` or ``compile`` skips that call; building the model
  beforehand does not help, because the reduce comes before the check; and the model cannot be
  made outside the strategy's scope to leave ``_distribute_strategy`` unset, since its
  variables must be mirrored (the comment at line 34). So `build_before_fit` builds the model,
  its loss, metrics and optimiser from the dataset's element spec with ``Model._symbolic_build``
  and shadows ``_maybe_symbolic_build`` on this one model instance: private methods of the
  model, but no private module, and nothing outside this model.
* Fix 2 has one. ``Model.distribute_reduction_method`` (line 46) looks like the switch, but the
  3.15 trainer never reads it (line 138 passes ``"auto"``): with it set to ``"first"``, ``fit``
  on two localhost workers still fails with the same error. ``train_step`` and ``test_step``
  are public to override, and the reduction applies to what they return: `_logs_as_vectors`
  gives each scalar log the shape ``[1]``, so Keras's own ``reduce("MEAN", v, axis=0)`` averages
  it over all workers into a scalar again.

Both apply to one model for one run: `multiworker_fixes` restores the model on the way out,
and nothing process-wide is changed (issue #16).
"""
import contextlib

import keras
import tensorflow as tf

_SHADOWED = ("_maybe_symbolic_build", "train_step", "test_step")


def build_before_fit(model, strategy, dataset):
    """Build model, loss, metrics and optimiser from the dataset's element spec (fix 1)."""
    spec_x, spec_y = dataset.element_spec
    with strategy.scope():
        model._symbolic_build(data_batch=(
            keras.KerasTensor(spec_x.shape, spec_x.dtype.name),
            keras.KerasTensor(spec_y.shape, spec_y.dtype.name),
        ))
    # Tell this model instance that the symbolic build is done.
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


def is_multi_worker(strategy):
    """True when ``strategy``'s replicas span more than this worker's devices."""
    return strategy.num_replicas_in_sync > len(strategy.extended.worker_devices)


def _logs_as_vectors(step):
    """``step`` with every scalar log given shape ``[1]``: one value per worker on axis 0 (fix 2).
    """
    def step_with_vector_logs(data):
        return tf.nest.map_structure(
            lambda value: tf.reshape(value, [1]) if value.shape.rank == 0 else value, step(data))

    return step_with_vector_logs


@contextlib.contextmanager
def multiworker_fixes(model, strategy, dataset):
    """Both fixes for one ``fit`` of ``model``; the model is as it was afterwards."""
    build_before_fit(model, strategy, dataset)
    if is_multi_worker(strategy):
        model.train_step = _logs_as_vectors(model.train_step)
        model.test_step = _logs_as_vectors(model.test_step)
    _forget_step_functions(model)
    try:
        yield
    finally:
        # The instance attributes shadowed the class's methods; deleting them brings those back.
        for name in _SHADOWED:
            model.__dict__.pop(name, None)
        _forget_step_functions(model)


def _forget_step_functions(model):
    # Keras caches the traced step functions; a later fit must trace the restored steps again.
    model.train_function = None
    model.test_function = None
