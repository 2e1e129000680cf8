"""Workarounds that let Keras 3 ``fit`` run under ``tf.distribute.MultiWorkerMirroredStrategy``.

keras-team/keras#20585 (open as of Keras 3.15): ``Model.fit`` with MultiWorkerMirroredStrategy
fails in two places of Keras's TensorFlow trainer:

1. before the first step it reduces a *distributed* input batch eagerly to build the model
   ("Attempt to convert a value (PerReplica...) ... to a Tensor");
2. every step it reduces the per-replica scalar logs with ``strategy.reduce("MEAN", v,
   axis=0)``, which is invalid for a scalar ("Invalid reduction dimension 0 for input with
   0 dimensions").

Both are applied only when training runs under that strategy, only to what they fix, and only
for the length of that run: `multiworker_fixes` undoes them on the way out (issue #16).
"""
import contextlib

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import trainer as tf_trainer


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


_original_reduce_per_replica = tf_trainer.reduce_per_replica


def _reduce_per_replica(values, strategy, reduction):
    """Mean-reduce scalar logs over the whole reduction (axis None) under multi-worker."""
    if reduction in ("auto", "mean") and isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy
    ):
        return tf.nest.map_structure(
            lambda v: strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0),
            values,
        )
    return _original_reduce_per_replica(values, strategy, reduction)


@contextlib.contextmanager
def multiworker_fixes(model, strategy, dataset):
    """Both fixes for one ``fit`` of ``model``; Keras's trainer and the model are restored after.
    """
    build_before_fit(model, strategy, dataset)
    tf_trainer.reduce_per_replica = _reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = _original_reduce_per_replica
        # The instance attribute shadowed the class's method; deleting it brings that back.
        model.__dict__.pop("_maybe_symbolic_build", None)
