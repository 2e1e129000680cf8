"""The training loss of a recipe: cross-entropy on integer labels, optionally smoothed."""
import keras
from keras import ops
from keras.saving import register_keras_serializable


@register_keras_serializable(package="tn_keras")
class SparseSmoothedCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels against a smoothed one-hot target:

        loss = - sum_k q_k log p_k,   q_k = (1 - s) [k = y] + s / K

    (Keras's `SparseCategoricalCrossentropy` has no ``label_smoothing``; this is its
    `CategoricalCrossentropy` on one-hot labels.) ``s = 0`` is plain cross-entropy.
    """

    def __init__(self, label_smoothing=0.0, name="sparse_smoothed_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1); received {label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        target = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            target, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing)
        return config


def make_loss(recipe):
    """Plain sparse cross-entropy, or the smoothed one when the recipe smooths; with a
    teacher, the cross-entropy against its probabilities."""
    if recipe.teacher is not None:
        return keras.losses.CategoricalCrossentropy()
    if recipe.label_smoothing:
        return SparseSmoothedCrossentropy(recipe.label_smoothing)
    return keras.losses.SparseCategoricalCrossentropy()
