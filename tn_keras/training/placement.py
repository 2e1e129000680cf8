"""Where a training run puts its model and batches, per Keras backend.

``"default"``: one device, every backend. ``"mirrored"`` (all local devices) and
``"multiworker"`` (``TF_CONFIG``): ``tf.distribute``, TensorFlow backend only.
``"data_parallel"``: ``keras.distribution.DataParallel`` over all local devices, JAX backend
only (the model is replicated, each batch is split along its first axis). TensorFlow is
imported only for the two TensorFlow strategies, so every other path runs without it.
"""
import contextlib
import dataclasses
import os
from typing import Any, Callable

import keras

from tn_keras.training.config import STRATEGIES
# The Keras backends each strategy runs under.
STRATEGY_BACKENDS = {
    "default": ("tensorflow", "jax", "torch"),
    "mirrored": ("tensorflow",),
    "multiworker": ("tensorflow",),
    "data_parallel": ("jax",),
}


@dataclasses.dataclass
class Placement:
    """A resolved strategy.

    Attributes:
        strategy: the name, one of `STRATEGIES`.
        model_scope: a context for building and compiling the model.
        run_scope: a context for the whole run (build, compile, ``fit``).
        replicas: devices a batch is split over; batches must divide evenly when > 1 under
            ``data_parallel``.
        is_chief: whether this process writes the checkpoint.
        task_id: this worker's index (0 unless multi-worker).
        tf_strategy: the ``tf.distribute.Strategy``, or None.
    """

    strategy: str
    model_scope: Callable[[], Any] = contextlib.nullcontext
    run_scope: Callable[[], Any] = contextlib.nullcontext
    replicas: int = 1
    is_chief: bool = True
    task_id: int = 0
    tf_strategy: Any = None


def make_placement(strategy=None) -> Placement:
    """The `Placement` of ``strategy`` (None means ``"default"``) under the current backend."""
    strategy = strategy or "default"
    if strategy not in STRATEGIES:
        raise ValueError(f"Invalid value for argument `strategy`: expected one of {STRATEGIES}. "
                         f"Received strategy={strategy!r}.")
    backend = keras.backend.backend()
    if backend not in STRATEGY_BACKENDS[strategy]:
        raise ValueError(
            f"strategy={strategy!r} needs the Keras backend "
            f"{' or '.join(STRATEGY_BACKENDS[strategy])}, but KERAS_BACKEND is {backend!r}"
            + ("; use strategy='data_parallel' under JAX." if backend == "jax" else ".")
        )
    if strategy == "default":
        return Placement(strategy)
    if strategy == "data_parallel":
        devices = keras.distribution.list_devices()
        distribution = keras.distribution.DataParallel(devices=devices)
        return Placement(strategy, run_scope=distribution.scope, replicas=len(devices))
    return _tf_placement(strategy)


def _tf_placement(strategy):
    import tensorflow as tf  # The backend is TensorFlow: already imported by Keras.

    if strategy == "mirrored":
        tf_strategy = tf.distribute.MirroredStrategy()
    else:
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy='multiworker' needs the TF_CONFIG environment variable "
                             "(the cluster and this worker's task).")
        tf_strategy = tf.distribute.MultiWorkerMirroredStrategy()
    resolver = getattr(tf_strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    task_id = int(getattr(resolver, "task_id", 0) or 0)
    is_chief = not task_type or task_type == "chief" or (task_type == "worker" and task_id == 0)
    return Placement(strategy, model_scope=tf_strategy.scope,
                     replicas=tf_strategy.num_replicas_in_sync, is_chief=is_chief,
                     task_id=task_id, tf_strategy=tf_strategy)
