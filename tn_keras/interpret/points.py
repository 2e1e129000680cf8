"""Where to expand: the point ``about=`` names, resolved to images.

A polynomial model expanded about a point ``x0`` is, for every displacement ``d``,

    f(x0 + d) = sum_{k=0..D} f_k(d),      f_k(c d) = c^k f_k(d),

with ``f_0 = f(x0)``, ``f_1`` the gradient at ``x0`` applied to ``d``, ``f_2`` half the Hessian
there applied to ``d`` twice, and so on. Which point makes the orders readable depends on the
model: about the zero image a deep TaylorNet's low orders carry almost nothing, about a typical
image much more (`tn_keras.interpret.order_share` measures it). ``about=`` takes:

    ``None`` or ``"zero"``   the zero image (the default);
    a number                 that value at every pixel;
    an image                 that image, of the model's input shape;
    ``N`` images             one point per image of ``x`` (decompositions only);
    ``"mean"``               the training mean image ``mu = (1/M) sum_m x_m``, pixel by pixel,
                             over the ``M`` training images;
    ``"class_mean"``         per image, the mean training image of one class,
                             ``mu_c = (1/M_c) sum_{m: y_m = c} x_m``; ``c`` is the image's label
                             given in ``labels=``, or else the class the model predicts for the
                             image, ``argmax_c f_c(x)``.

The training images of ``"mean"`` and ``"class_mean"`` come from ``data=``: an images array
(``"mean"`` only), a pair ``(images, labels)``, or the name of a `tn_keras.datasets` dataset
(its ``"train"`` split). Without ``data=``, the model must be a zoo model (they are named after
their architecture, the registry gives their dataset) and its dataset's training split is
loaded with `tn_keras.datasets.load` (``$TN_KERAS_DATA``; ``digits`` ships with tn_keras). The
means are computed once per dataset and process, in float64.

Note: `class_templates` and `pixel_interactions` keep their own ``center="mean"``, the
per-channel mean held by the model's Normalization layer (no data needed).
"""
from __future__ import annotations

import functools

import numpy as np

from tn_keras.interpret.validation import check_images

NAMED_POINTS = ("zero", "mean", "class_mean")
CHOICES = ("'zero', 'mean', 'class_mean', None, a number or an image")


def pick(about, center):
    """The expansion point of a call that may use ``about=`` or its former name ``center=``."""
    if about is not None and center is not None:
        raise ValueError("about= and center= name the same expansion point (center= is the "
                         "former name): pass only one of them.")
    return ("about", about) if center is None else ("center", center)


def _dataset_of(model):
    from tn_keras.zoo.registry import get_spec

    try:
        return get_spec(model.name).dataset
    except ValueError:  # not a registered architecture's name
        return None


@functools.lru_cache(maxsize=4)
def _dataset_means(dataset):
    """``(mean image, {class: mean image})`` of ``dataset``'s training split, float64."""
    from tn_keras import datasets

    x, y = datasets.load(dataset, "train")
    return _means(np.asarray(x), np.asarray(y))


def _means(x, y=None):
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    if y is None:
        return mean, None
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x):
        raise ValueError(f"data: {len(x)} images but {len(y)} labels.")
    return mean, {int(c): x[y == c].mean(axis=0) for c in np.unique(y)}


def training_means(model, data, about):
    """``(mean image, {class: mean image} or None)`` from ``data=`` or the model's dataset."""
    if data is None:
        dataset = _dataset_of(model)
        if dataset is None:
            raise ValueError(f"about={about!r} needs the training images: model "
                             f"'{model.name}' is not a zoo model, so pass data= (images, "
                             "(images, labels) or a tn_keras dataset name).")
        return _dataset_means(dataset)
    if isinstance(data, str):
        return _dataset_means(data)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return _means(*data)
    return _means(data)


def _class_means(model, data, about):
    mean, per_class = training_means(model, data, about)
    if per_class is None:
        raise ValueError("about='class_mean' needs the training labels: pass data=(images, "
                         "labels) or a dataset name, not images alone.")
    return mean, per_class


def class_mean_images(per_class, classes, name="labels"):
    """The training mean image of each class in ``classes``, stacked."""
    classes = np.asarray(classes).reshape(-1)
    missing = sorted({int(c) for c in classes} - set(per_class))
    if missing:
        raise ValueError(f"{name}: class(es) {missing} have no training images; the training "
                         f"data holds classes {sorted(per_class)}.")
    return np.stack([per_class[int(c)] for c in classes])


def _fits(image, shape):
    if image.shape != shape:
        raise ValueError(f"data: training images of shape {image.shape}, but the model takes "
                         f"{shape}.")
    return image


def resolve(model, about, shape, x=None, data=None, labels=None, predict=None, name="about"):
    """The expansion point(s) as float64: one image ``shape``, or ``(N,) + shape`` for ``x``.

    Args:
        model: the model (for its dataset and name).
        about: see the module docstring.
        shape: the model's input shape (no batch axis).
        x: the images to be expanded, ``(N,) + shape`` (None: one point is asked for).
        data: the training images (see the module docstring).
        labels: for ``"class_mean"``: one label per image of ``x`` (or one label when ``x`` is
            None); None uses ``predict``.
        predict: ``x -> (N, outputs)`` logits, used when ``labels`` is None.
        name: the argument's name in error messages.

    Raises:
        ValueError: one line naming the argument and what it accepts.
    """
    if about is None or (isinstance(about, str) and about == "zero"):
        return np.zeros(shape)
    if isinstance(about, str):
        if about == "mean":
            return _fits(training_means(model, data, about)[0], shape)
        if about == "class_mean":
            mean, per_class = _class_means(model, data, about)
            _fits(mean, shape)
            if labels is None:
                if x is None:
                    raise ValueError("about='class_mean' without images needs label= (the "
                                     "class whose training mean is the point).")
                labels = np.argmax(predict(x), axis=1)
            points = class_mean_images(per_class, labels).reshape((-1,) + shape)
            if x is None:
                return points[0]
            if len(points) != len(x):
                raise ValueError(f"labels: expected one label per image ({len(x)}), received "
                                 f"{len(points)}.")
            return points
        raise ValueError(f"{name}={about!r}: expected {CHOICES}.")
    try:
        array = np.asarray(about, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected {CHOICES}; received {type(about).__name__}."
                         ) from None
    if array.ndim == 0:
        array = np.full(shape, float(array))
    if array.shape == (1,) + shape:
        array = array[0]
    if array.shape == shape:
        return check_images(array, shape, name)[0]
    if x is not None and array.shape == (len(x),) + shape:
        return check_images(array, shape, name)
    per_image = f", or one per image {(len(x),) + shape}" if x is not None else ""
    raise ValueError(f"{name}: expected one image of shape {shape} (or a number{per_image}), "
                     f"received shape {array.shape}.")
