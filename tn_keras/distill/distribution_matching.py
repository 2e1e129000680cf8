"""Distribution matching with random ConvNets: the ``method="distribution"`` level step.

PROJECT option, after Zhao & Bilen, "Dataset Condensation with Distribution Matching" (WACV
2023). Level ``a`` keeps one image per group of level ``a - 1`` (its first member, a sharp image
rather than a mean), and then moves all images of a class *together* so that their mean
embedding matches the mean embedding of the class's images at level ``a - 1``, for embedding
networks drawn at random at every iteration:

    L(S) = sum_c | mean_{s in S_c} phi_theta(T(s)) - mean_{x in B_c} phi_theta(T(x)) |^2 ,

``theta`` a fresh He-normal initialisation of ``Conv3x3(32) ReLU MaxPool2 > Conv3x3(64) ReLU
MaxPool2 > Flatten`` (the small evaluator's feature extractor, see
`tn_keras.distill.evaluation`), ``B_c`` a random batch of the class's level ``a - 1`` images,
``S_c`` a random batch of (at most `SYNTHETIC_BATCH` of) its synthetic images, and ``T`` one
random translation of up to 2 pixels (reflect padding) shared by the real and the synthetic
images (siamese augmentation). The images in the batch take an Adam step in grey levels and are
clipped to 0..255; every image keeps its own Adam moments and step count (`RowwiseAdam`), so
an image's update does not depend on how often the others were drawn.

Why an option: the default embedding matching (`tn_keras.distill.embedding_matching`) makes
each image a good *reference* for the trained network, but matching a group's mean averages the
group, and repeated averaging removes the variety within a class that *training a fresh
network* needs. Matching the class's distribution instead, with networks that are not the
trained one, keeps that variety (docs/distillation.md has the measurements). It does not use
the trained model at all.

Every random draw (network weights, batches, shifts) comes from ``numpy.random.default_rng(
[seed, level, 17])``, so a level is a deterministic function of its inputs and settings. Keras
does the gradients: the images are the weights of a `SyntheticImages` layer in
`DistributionMatcher`, the random weights and batches are its inputs, the loss is `SumOfSquares`
and `RowwiseAdam` (a Keras optimizer) trains it with ``train_on_batch``.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tn_keras.distill.config import ADAM_BETA1
from tn_keras.distill.config import ADAM_BETA2
from tn_keras.distill.config import ADAM_EPSILON
from tn_keras.distill.config import PIXEL_MAX
from tn_keras.distill.pixels import SyntheticImages

#: Real images per class and iteration (fewer when a class has fewer).
REAL_BATCH = 128
#: Synthetic images per class that take each iteration's step (all, when a class has fewer):
#: bounds an iteration's cost on the large early levels of a cascade.
SYNTHETIC_BATCH = 64
#: The random embedding networks' channels (the small evaluator's).
CHANNELS = (32, 64)
#: Largest random translation, in pixels, applied alike to real and synthetic images.
MAX_SHIFT = 2


class RowwiseAdam(keras.optimizers.Optimizer):
    """Adam whose moments and step count are kept per image (per row of the variable).

    A row whose gradient is exactly zero was not in the iteration's batch: its moments, step
    count and pixels stay as they are (plain Adam would keep moving it on its momentum). A
    drawn row takes the textbook step ``lr * m_hat / (sqrt(v_hat) + epsilon)`` with its own
    bias corrections ``1 - beta^t_row``.
    """

    def __init__(self, learning_rate, beta_1=ADAM_BETA1, beta_2=ADAM_BETA2,
                 epsilon=ADAM_EPSILON, name="rowwise_adam", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def build(self, variables):
        if self.built:
            return
        if len(variables) != 1:
            raise ValueError(f"RowwiseAdam trains one variable (the images); got "
                             f"{len(variables)}.")
        super().build(variables)
        (variable,) = variables
        rows = (variable.shape[0],) + (1,) * (len(variable.shape) - 1)
        self._m = self.add_variable_from_reference(variable, "m")
        self._v = self.add_variable_from_reference(variable, "v")
        self._t = self.add_variable(rows, initializer="zeros", name="steps")

    def update_step(self, gradient, variable, learning_rate):
        m, v, t = self._m, self._v, self._t
        gradient = ops.convert_to_tensor(gradient, variable.dtype)
        drawn = ops.cast(ops.any(ops.not_equal(gradient, 0.0),
                                 axis=tuple(range(1, len(variable.shape))), keepdims=True),
                         variable.dtype)
        t_new = t + drawn
        m_new = m + drawn * (1.0 - self.beta_1) * (gradient - m)
        v_new = v + drawn * (1.0 - self.beta_2) * (ops.square(gradient) - v)
        safe_t = ops.maximum(t_new, 1.0)  # rows never drawn: no division by zero
        m_hat = m_new / (1.0 - ops.power(self.beta_1, safe_t))
        v_hat = v_new / (1.0 - ops.power(self.beta_2, safe_t))
        step = drawn * learning_rate * m_hat / (ops.sqrt(v_hat) + self.epsilon)
        self.assign(m, m_new)
        self.assign(v, v_new)
        self.assign(t, t_new)
        self.assign(variable, variable - step)

    def get_config(self):
        return dict(super().get_config(), beta_1=self.beta_1, beta_2=self.beta_2,
                    epsilon=self.epsilon)


class SumOfSquares(keras.losses.Loss):
    """``sum_c |y_pred_c - y_true_c|^2`` (summed over classes and features)."""

    def __init__(self, name: str = "sum_of_squares"):
        super().__init__(name=name, reduction="sum")

    def call(self, y_true, y_pred):
        return ops.sum(ops.square(y_pred - y_true), axis=-1)


def class_means(values, classes, num_classes: int):
    """Mean row of ``values`` per class id ``0..num_classes-1`` (0 for an absent class)."""
    total = ops.segment_sum(values, classes, num_segments=num_classes)
    count = ops.segment_sum(ops.ones_like(values[:, :1]), classes, num_segments=num_classes)
    return total / ops.maximum(count, 1.0)


def random_convnet_embedding(images, w1, w2, shift):
    """``phi_theta(T(images))``: shift by ``shift`` (reflect), two conv-ReLU-pool blocks."""
    n, height, width, channels = ops.shape(images)
    z = ops.pad(images / PIXEL_MAX, [[0, 0], [MAX_SHIFT, MAX_SHIFT], [MAX_SHIFT, MAX_SHIFT],
                                     [0, 0]], mode="reflect")
    start = ops.concatenate([ops.zeros((1,), "int32"), ops.cast(shift, "int32"),
                             ops.zeros((1,), "int32")])
    z = ops.slice(z, start, (n, height, width, channels))
    h = ops.max_pool(ops.relu(ops.conv(z, w1, 1, "same")), 2, 2, "valid")
    h = ops.max_pool(ops.relu(ops.conv(h, w2, 1, "same")), 2, 2, "valid")
    return ops.reshape(h, (n, -1))


class DistributionMatcher(keras.Model):
    """The synthetic images of one level; ``call`` gives ``mean_syn - mean_real`` per class.

    Inputs (one iteration): ``rows`` (the synthetic images in the batch), ``rows_class``,
    ``real``, ``real_class`` (class ids ``0..C-1``), the random network ``w1``, ``w2`` and the
    ``shift`` (dy, dx) of the siamese translation.
    """

    def __init__(self, start: np.ndarray, num_classes: int, **kwargs):
        kwargs.setdefault("dtype", "float32")  # the loss in float32 under any policy
        super().__init__(name="distribution_matcher", **kwargs)
        self.images = SyntheticImages(start)
        self.num_classes = int(num_classes)
        self.built = True  # all state exists: no symbolic build on fake data

    def call(self, inputs):
        synthetic = random_convnet_embedding(self.images(inputs["rows"]), inputs["w1"],
                                             inputs["w2"], inputs["shift"])
        real = random_convnet_embedding(inputs["real"], inputs["w1"], inputs["w2"],
                                        inputs["shift"])
        return (class_means(synthetic, inputs["rows_class"], self.num_classes)
                - class_means(real, inputs["real_class"], self.num_classes))


def _draw_iteration(rng, rows_of, real_of, dense_real, real, channels_in):
    """One iteration's random batches, network and shift (the rng's fixed order of draws)."""
    batch = np.concatenate([rng.choice(idx, size=min(REAL_BATCH, len(idx)), replace=False)
                            for idx in real_of])
    rows = np.sort(np.concatenate([rng.choice(idx, size=min(SYNTHETIC_BATCH, len(idx)),
                                              replace=False) for idx in rows_of if len(idx)]))
    w1 = rng.normal(0.0, np.sqrt(2.0 / (9 * channels_in)),
                    (3, 3, channels_in, CHANNELS[0])).astype(np.float32)
    w2 = rng.normal(0.0, np.sqrt(2.0 / (9 * CHANNELS[0])),
                    (3, 3, CHANNELS[0], CHANNELS[1])).astype(np.float32)
    shift = rng.integers(0, 2 * MAX_SHIFT + 1, size=2).astype(np.int32)
    return dict(rows=rows.astype(np.int32), real=np.asarray(real[batch], np.float32),
                real_class=dense_real[batch], w1=w1, w2=w2, shift=shift)


def match(start, start_labels, real, real_labels, iterations, learning_rate,
          rng) -> np.ndarray:
    """Optimise ``start`` (float images, one class label each) against ``real``; return it."""
    start = np.asarray(start, np.float32)
    start_labels = np.asarray(start_labels)
    real_labels = np.asarray(real_labels)
    classes = np.unique(real_labels)
    dense = {int(c): i for i, c in enumerate(classes)}  # class ids 0..C-1
    dense_start = np.array([dense[int(c)] for c in start_labels], np.int32)
    dense_real = np.array([dense[int(c)] for c in real_labels], np.int32)
    real_of = [np.flatnonzero(real_labels == c) for c in classes]
    rows_of = [np.flatnonzero(start_labels == c) for c in classes]
    matcher = DistributionMatcher(start, len(classes))
    matcher.compile(optimizer=RowwiseAdam(float(learning_rate)), loss=SumOfSquares())
    height, width = start.shape[1] // 4, start.shape[2] // 4
    zeros = np.zeros((len(classes), height * width * CHANNELS[1]), np.float32)
    for _ in range(int(iterations)):
        inputs = _draw_iteration(rng, rows_of, real_of, dense_real, real, start.shape[-1])
        inputs["rows_class"] = dense_start[inputs["rows"]]
        matcher.train_on_batch(inputs, zeros)
    return matcher.images.numpy()
