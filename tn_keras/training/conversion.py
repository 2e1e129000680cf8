"""Converting a trained network with activations into a polynomial one, and training it on the
teacher's predictions.

A *teacher* (a network with activations, e.g. ``cifar_convnet_fast_gelu``) and a *student* of
the same skeleton whose activation steps are 1x1 `PolyCG` layers of order 2 share every other
layer by name. The conversion

1. copies every shared weight, the classifier head included (`zoo.saving.transfer_body`);
2. sets each student step, named like its teacher activation (``group1_1_gelu`` ->
   ``group1_1_t``), to the per-channel quadratic closest to the activation on the values it
   receives from the training images, ``argmin E_z[(f(z) - c0 - c1 z - c2 z^2)^2]``
   (`tn_keras.layers.activation_fit.quadratic_fit`), then multiplies each ``c2`` by
   ``curvature_scale``: the composition of seven quadratics is a polynomial of degree 128,
   and a flatter curve compounds less on the rare large inputs;
3. re-estimates every BatchNorm's statistics robustly (`robust_batch_norm_statistics`).

Training then minimises the cross-entropy against the teacher's probabilities for each
augmented batch (`with_teacher_targets`), which carry more than the labels (how confusable each
image is). BatchNorm's moving averages are useless for such a student: a few exploding images
in the last batches set them, so `RobustBatchNormStatistics` replaces them after every epoch
with the median and the interquartile range (``sigma = IQR / 1.349``, exact for a Gaussian) of
each BatchNorm's input, layer by layer in graph order.
"""
import dataclasses
from typing import Callable

import keras
import numpy as np

from tn_keras.layers.activation_fit import gelu
from tn_keras.layers.activation_fit import quadratic_fit
from tn_keras.zoo.saving import transfer_body

# Per-channel samples each quadratic is fitted on (a random subset of all sites of all images).
FIT_SAMPLES = 200_000
# Interquartile range of N(0, 1): IQR / IQR_OF_NORMAL estimates a Gaussian's sigma.
IQR_OF_NORMAL = 1.349


@dataclasses.dataclass(frozen=True)
class Conversion:
    """How a teacher's activation layers map onto a student's polynomial steps.

    Attributes:
        activation: the teacher's activation as a float64 NumPy function (what is fitted).
        teacher_suffix: the name ending of the teacher's activation layers.
        student_suffix: the ending of the student step that replaces each of them.
    """

    activation: Callable
    teacher_suffix: str
    student_suffix: str

    def step_name(self, activation_name):
        """``group1_1_gelu`` -> ``group1_1_t``."""
        return activation_name[:-len(self.teacher_suffix)] + self.student_suffix


#: ``TrainingRecipe.conversion`` -> `Conversion`.
CONVERSIONS = {"gelu_quadratic": Conversion(gelu, "_gelu", "_t")}


def get_conversion(name):
    try:
        return CONVERSIONS[name]
    except KeyError:
        raise ValueError(f"Unknown conversion {name!r} in the recipe; expected one of "
                         f"{', '.join(sorted(CONVERSIONS))}.") from None


def activation_pairs(teacher, student, conversion):
    """``[(teacher activation layer, student step)]`` in graph order; a teacher activation
    without its student step is an error naming both."""
    pairs = []
    for layer in teacher.layers:
        if isinstance(layer, keras.layers.Activation) and layer.name.endswith(
                conversion.teacher_suffix):
            name = conversion.step_name(layer.name)
            try:
                pairs.append((layer, student.get_layer(name)))
            except ValueError:
                raise ValueError(f"The teacher's activation {layer.name!r} has no step "
                                 f"{name!r} in {student.name!r} to replace it.") from None
    if not pairs:
        raise ValueError(f"The teacher {teacher.name!r} has no activation layer named "
                         f"'*{conversion.teacher_suffix}' to convert.")
    return pairs


def set_quadratic(step, coefficients):
    """Make the 1x1 order-2 `PolyCG` ``step`` the per-channel ``c0 + c1 z + c2 z^2``:
    ``W = diag(c1)``, the product ``(U z) * (V z)`` with ``U = I`` and ``V = diag(c2)``, the
    bias ``c0``. ``coefficients`` has shape ``(channels, 3)``."""
    channels = step.filters
    coefficients = np.asarray(coefficients, np.float64)
    if coefficients.shape != (channels, 3):
        raise ValueError(f"coefficients must have shape ({channels}, 3) for {step.name!r}; "
                         f"received {coefficients.shape}.")
    index = np.arange(channels)
    kernel = np.zeros((1, 1, channels, channels), np.float32)
    kernel[0, 0, index, index] = coefficients[:, 1]
    factors = np.zeros((1, 1, channels, 2 * channels), np.float32)
    factors[0, 0, index, index] = 1.0
    factors[0, 0, index, channels + index] = coefficients[:, 2]
    step.kernel.assign(kernel)
    step.factor_kernel.assign(factors)
    step.bias.assign(coefficients[:, 0].astype(np.float32))


def convert(teacher, student, images, conversion="gelu_quadratic", curvature_scale=1.0,
            seed=0):
    """Start ``student`` from ``teacher`` (module docstring, steps 1-3) on ``images`` (raw
    training images). Returns ``{step name: relative rms error of its fit}``."""
    conversion = get_conversion(conversion) if isinstance(conversion, str) else conversion
    transfer_body(teacher, student, include_head=True)
    pairs = activation_pairs(teacher, student, conversion)
    feed = keras.Model(teacher.inputs, [layer.input for layer, _ in pairs])
    values = feed.predict(np.asarray(images, np.float32), batch_size=250, verbose=0)
    rng = np.random.default_rng(seed)
    errors = {}
    for (_, step), z in zip(pairs, values):
        z = z.reshape(-1, z.shape[-1]).astype(np.float64)
        z = z[rng.choice(len(z), min(FIT_SAMPLES, len(z)), replace=False)]
        c = quadratic_fit(z, f=conversion.activation)
        fz = conversion.activation(z)
        fitted = c[:, 0] + c[:, 1] * z + c[:, 2] * z * z
        errors[step.name] = float(np.sqrt(np.mean((fitted - fz) ** 2) / np.mean(fz ** 2)))
        c[:, 2] *= curvature_scale
        set_quadratic(step, c)
    robust_batch_norm_statistics(student, images)
    return errors


def batch_norms(model):
    return [layer for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization)]


def robust_batch_norm_statistics(model, images, batch_size=500):
    """Set each BatchNorm's moving mean and variance, in graph order, to the median and
    ``(IQR / 1.349)^2`` per channel of its input on ``images``, the BatchNorms before it
    already re-estimated: a few exploding images cannot set them."""
    images = np.asarray(images, np.float32)
    for layer in batch_norms(model):
        z = keras.Model(model.inputs, layer.input).predict(images, batch_size=batch_size,
                                                           verbose=0)
        z = np.asarray(z, np.float64).reshape(-1, z.shape[-1])
        q1, median, q3 = np.quantile(z, [0.25, 0.5, 0.75], axis=0)
        layer.moving_mean.assign(median.astype(np.float32))
        layer.moving_variance.assign((((q3 - q1) / IQR_OF_NORMAL) ** 2).astype(np.float32))


class RobustBatchNormStatistics(keras.callbacks.Callback):
    """After every epoch, `robust_batch_norm_statistics` on ``images``: the checkpoint, a
    backup and every evaluation see statistics no outlier batch has set. Place it before the
    backup callback, so the backup holds them too."""

    def __init__(self, images):
        super().__init__()
        self.images = np.asarray(images, np.float32)

    def on_epoch_end(self, epoch, logs=None):
        robust_batch_norm_statistics(self.model, self.images)


def with_teacher_targets(dataset, teacher):
    """The training batches ``(x, y)`` of ``dataset`` as ``(x, teacher(x))``: the teacher's
    probabilities for the very (augmented) images the student sees. ``dataset`` is a
    ``tf.data.Dataset`` (TensorFlow) or a `keras.utils.PyDataset` (every backend)."""
    clock = getattr(dataset, "epoch_clock", None)
    if isinstance(dataset, keras.utils.PyDataset):
        mapped = TeacherTargets(dataset, teacher)
    else:
        mapped = dataset.map(lambda x, y: (x, teacher(x, training=False)))
    if clock is not None:  # keep the pipeline's epoch callback (a new dataset object)
        mapped.epoch_clock = clock
    return mapped


class TeacherTargets(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` of ``(x, teacher(x))`` for the batches of another one."""

    def __init__(self, batches, teacher):
        super().__init__()
        self.batches, self.teacher = batches, teacher

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, index):
        x = self.batches[index][0]
        return x, keras.ops.convert_to_numpy(self.teacher(x, training=False))

    def on_epoch_begin(self):
        self.batches.on_epoch_begin()

    def on_epoch_end(self):
        self.batches.on_epoch_end()
