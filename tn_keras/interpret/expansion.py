"""Value, gradient and Hessian of a model's logits about a point, by automatic differentiation.

About a point ``x0`` (``about=``, see `tn_keras.interpret.points`) a polynomial model is exactly

    f_c(x0 + h) = f_c(x0) + sum_i g_ci h_i + 1/2 sum_ij H_cij h_i h_j + (orders >= 3),

with ``g`` the gradient (the order-1 coefficients: one image per class) and ``H`` the Hessian
(the order-2 coefficients are ``H / 2``). Both come from the backend's automatic
differentiation (`tn_keras.interpret.autodiff`), in float64 by default.

Memory of a Hessian. A full Hessian holds ``classes * D^2`` numbers for ``D`` input values:
for CIFAR-10 (``D = 3,072``, 10 classes) that is 94.4 million float64 numbers, 755 MB; for
MNIST (``D = 784``) 49 MB; for 7x7 MNIST 192 kB. `taylor_expansion` refuses a Hessian larger
than ``max_hessian_bytes`` (default `MAX_HESSIAN_BYTES`, 256 MiB) with an error that gives the
size; restrict it to a ``window`` of pixels or to fewer ``classes``. Rows are computed as
Hessian-vector products, ``batch_size`` at a time, so the working memory is that of a batch of
second-order gradients, whatever the Hessian's size.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import keras
import numpy as np

from tn_keras.interpret import autodiff
from tn_keras.interpret import points as points_lib
from tn_keras.interpret.decomposition import evaluate
from tn_keras.interpret.graph import polynomial_part
from tn_keras.interpret.precision import check_dtype
from tn_keras.interpret.precision import float64_scope
from tn_keras.interpret.precision import with_dtype
from tn_keras.interpret.validation import check_center
from tn_keras.interpret.validation import image_shape

MAX_HESSIAN_BYTES = 256 * 2**20
DEFAULT_BATCH_SIZE = 64


@dataclasses.dataclass(frozen=True)
class TaylorExpansion:
    """The expansion of the selected outputs about ``center`` (float64 NumPy arrays).

    Attributes:
        center: the expansion point, one image.
        classes: the output indices, in the order of the first axis of every array below.
        value: ``(len(classes),)``, ``f_c(center)``.
        gradient: ``(len(classes),) + image shape``, the order-1 coefficients.
        hessian: ``(len(classes), W, W)`` over the ``W`` input values in ``pixels`` (None
            for ``order=1``); ``hessian / 2`` are the order-2 coefficients.
        pixels: flat indices (into one image, C order) of the Hessian's axes.
    """

    center: np.ndarray
    classes: tuple
    value: np.ndarray
    gradient: np.ndarray
    hessian: Optional[np.ndarray]
    pixels: Optional[np.ndarray]

    @property
    def quadratic(self):
        """The order-2 coefficients ``H / 2`` (None for ``order=1``)."""
        return None if self.hessian is None else self.hessian / 2.0


def window_pixels(shape, window):
    """Flat indices of the input values inside ``window = (row0, row1, col0, col1)``.

    The window is a half-open box on the image's first two axes and holds every channel;
    None is the whole image.
    """
    size = int(np.prod(shape))
    if window is None:
        return np.arange(size)
    try:
        row0, row1, col0, col1 = (int(v) for v in window)
    except (TypeError, ValueError):
        raise ValueError(f"window={window!r}: expected (row_start, row_stop, col_start, "
                         "col_stop) or None.") from None
    if not (0 <= row0 < row1 <= shape[0] and 0 <= col0 < col1 <= shape[1]):
        raise ValueError(f"window={window!r} is empty or outside the image of shape {shape}.")
    index = np.arange(size).reshape(shape)
    return index[row0:row1, col0:col1].reshape(-1)


def _check_classes(classes, count):
    if classes is None:
        return tuple(range(count))
    classes = tuple(int(c) for c in np.atleast_1d(classes))
    bad = [c for c in classes if not 0 <= c < count]
    if bad or not classes:
        raise ValueError(f"classes={classes!r}: expected indices in 0..{count - 1}.")
    return classes


def _check_hessian_size(classes, pixels, limit):
    size = len(classes) * len(pixels) ** 2 * 8
    if size > limit:
        raise ValueError(
            f"the Hessian of {len(classes)} class(es) over {len(pixels):,} input values needs "
            f"{size / 2**20:,.1f} MiB in float64, more than max_hessian_bytes="
            f"{limit / 2**20:,.1f} MiB: pass a smaller `window` or fewer `classes` (or raise "
            "max_hessian_bytes).")


def _class_fn(poly, class_index):
    """``z -> f_{c_b}(z_b)`` for a batch whose example ``b`` asks for class ``class_index[b]``."""
    outputs = int(np.prod(poly.outputs[0].shape[1:]))
    one_hot = keras.ops.one_hot(np.asarray(class_index), outputs, dtype=poly.outputs[0].dtype)

    def fn(z):
        out = keras.ops.reshape(poly(z, training=False), (len(class_index), -1))
        return keras.ops.sum(out * one_hot, axis=1)

    return fn


def _gradients(poly, center, classes, dtype):
    batch = np.repeat(center[None], len(classes), axis=0).astype(dtype)
    return autodiff.gradient(_class_fn(poly, list(classes)), batch).astype(np.float64)


def _hessian(poly, center, classes, pixels, dtype, batch_size):
    """``(len(classes), W, W)``: rows by Hessian-vector products, ``batch_size`` at a time."""
    size = center.size
    pairs = [(c, p) for c in range(len(classes)) for p in range(len(pixels))]
    hessian = np.zeros((len(classes), len(pixels), len(pixels)))
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        directions = np.zeros((len(chunk), size), dtype=dtype)
        directions[np.arange(len(chunk)), [pixels[p] for _, p in chunk]] = 1.0
        batch = np.repeat(center[None], len(chunk), axis=0).astype(dtype)
        fn = _class_fn(poly, [classes[c] for c, _ in chunk])
        rows = autodiff.hessian_rows(fn, batch, directions.reshape(batch.shape))
        rows = rows.reshape(len(chunk), size)[:, pixels]
        for (c, p), row in zip(chunk, rows):
            hessian[c, p] = row
    return hessian


def taylor_expansion(model, center=None, order=2, output="logits", classes=None, window=None,
                     dtype="float64", max_hessian_bytes=MAX_HESSIAN_BYTES,
                     batch_size=DEFAULT_BATCH_SIZE, *, about=None, data=None, label=None):
    """The exact value, gradient and (``order=2``) Hessian of ``output`` about ``x0``.

    ``f_c(x0 + h) = value_c + gradient_c . h + 1/2 h^T hessian_c h + (orders >= 3)``.

    Args:
        model: a functional Keras model; ``output`` must be a polynomial of its raw input.
        center: the former name of ``about`` (still accepted, also positionally; not both).
        order: 1 (value and gradient) or 2 (and the Hessian).
        output: ``"logits"`` (before the final softmax) or a layer name.
        classes: output indices to expand (default all).
        window: ``(row0, row1, col0, col1)``: the Hessian only over the input values in this
            box (every channel); None is the whole image.
        dtype: ``"float64"`` (a float64 copy of the model) or ``"float32"``.
        max_hessian_bytes: refuse a larger Hessian (see the module docstring for the sizes).
        batch_size: Hessian rows per automatic-differentiation call.
        about: the expansion point ``x0``: None or ``"zero"`` (the zero image), a number, an
            image (raw pixels), ``"mean"`` (the training mean image) or ``"class_mean"`` (the
            training mean image of class ``label``). See `tn_keras.interpret.points`.
        data: the training images for ``"mean"`` / ``"class_mean"``: images, ``(images,
            labels)`` or a dataset name; default: the zoo model's own dataset.
        label: the class of ``"class_mean"``; default: the one class of ``classes`` when a
            single class is asked for.

    Returns:
        `TaylorExpansion`.
    """
    check_dtype(dtype)
    if order not in (1, 2):
        raise ValueError(f"order={order!r}: expected 1 or 2 (use order_decomposition for the "
                         "contribution of every order).")
    poly, _ = polynomial_part(model, output)
    shape = image_shape(poly)
    classes = _check_classes(classes, int(np.prod(poly.outputs[0].shape[1:])))
    name, about = points_lib.pick(about, center)
    if label is None and len(classes) == 1:
        label = classes[0]
    center = points_lib.resolve(model, about, shape, data=data, labels=label, name=name)
    pixels = window_pixels(shape, window) if order == 2 else None
    if order == 2:
        _check_hessian_size(classes, pixels, max_hessian_bytes)
    with float64_scope(dtype == "float64"):
        poly = with_dtype(poly, dtype)
        value = evaluate(poly, center[None].astype(dtype))[0][list(classes)]
        gradient = _gradients(poly, center, classes, dtype)
        hessian = (_hessian(poly, center, classes, pixels, dtype, int(batch_size))
                   if order == 2 else None)
    return TaylorExpansion(center=center, classes=classes, value=value, gradient=gradient,
                           hessian=hessian, pixels=pixels)


def mean_image(model):
    """The per-channel mean held by the model's input Normalization layer, as an image.

    The zoo's models standardise raw pixels with the training split's statistics; this is
    the dataset mean image at the resolution of those statistics (one value per channel).
    """
    shape = image_shape(model)
    for layer in model.layers:
        if type(layer).__name__ == "Normalization":
            mean = np.asarray(layer.get_config().get("mean"), dtype=np.float64)
            if mean.ndim == 0 or mean.size in (1, shape[-1]):
                return np.broadcast_to(mean.reshape(-1), shape).copy()
    raise ValueError(f"center='mean': model '{model.name}' has no Normalization layer with "
                     "per-channel statistics; pass the mean image as `center`.")


def _resolve_center(model, center):
    if isinstance(center, str):
        if center == "mean":
            return mean_image(model)
        if center == "zero":
            return None
        raise ValueError(f"center={center!r}: expected 'mean', 'zero', a number or an image.")
    return center


def class_templates(model, center="mean", output="logits", dtype="float64"):
    """The order-1 coefficient image of every class about ``center``: ``(classes,) + shape``.

    ``center="mean"`` is the dataset mean the model's Normalization layer holds (per channel,
    see `mean_image`); ``"zero"``, a number or an image also work. Template ``c`` is
    ``d f_c / d x`` there: what a small change of each raw pixel does to logit ``c``.
    """
    expansion = taylor_expansion(model, _resolve_center(model, center), order=1, output=output,
                                 dtype=dtype)
    return expansion.gradient


def hessian_vector_product(model, direction, class_, center=None, output="logits",
                           dtype="float64", *, about=None, data=None):
    """``H_c(x0) v``: the Hessian of output ``class_`` at ``x0`` applied to ``direction``.

    One automatic-differentiation call, whatever the image size (no Hessian is formed). With
    ``v = d = x - x0`` it gives the order-2 part of the expansion as an image:
    ``f_2(d) = 1/2 d^T H d = sum_i q_i`` with ``q_i = 1/2 d_i (H d)_i``.

    Args:
        direction: one image ``v`` of the model's input shape.
        class_: the output index.
        about, center, data: the point ``x0``, as in `taylor_expansion` (``"class_mean"`` is
            the training mean image of ``class_``).

    Returns:
        float64 image ``(H_c v)`` of the input shape.
    """
    poly, _ = polynomial_part(model, output)
    shape = image_shape(poly)
    classes = _check_classes(class_, int(np.prod(poly.outputs[0].shape[1:])))
    name, about = points_lib.pick(about, center)
    point = points_lib.resolve(model, about, shape, data=data, labels=classes[0], name=name)
    direction = check_center(direction, shape, "direction")
    with float64_scope(dtype == "float64"):
        poly = with_dtype(poly, check_dtype(dtype))
        fn = _class_fn(poly, [classes[0]])
        row = autodiff.hessian_rows(fn, point[None].astype(dtype),
                                    direction[None].astype(dtype))
    return np.asarray(row[0], dtype=np.float64).reshape(shape)


def pixel_interactions(model, pixel, class_, center="mean", output="logits", dtype="float64"):
    """One row of the order-2 coefficients of class ``class_``, as an image.

    ``pixel = (row, col)`` or ``(row, col, channel)`` (channel 0 when omitted). Entry ``j`` of
    the result is ``H_{pixel, j} / 2``: the coefficient of ``h_pixel h_j`` (doubled off the
    diagonal, as the monomial appears twice in the symmetric form) about ``center`` (here
    ``"mean"`` is the per-channel mean of the model's Normalization layer, see `mean_image`).
    """
    poly, _ = polynomial_part(model, output)
    shape = image_shape(poly)
    index = tuple(int(p) for p in pixel) + (0,) * (len(shape) - len(tuple(pixel)))
    if len(index) != len(shape) or not all(0 <= i < s for i, s in zip(index, shape)):
        raise ValueError(f"pixel={pixel!r} is outside the image of shape {shape}.")
    direction = np.zeros(shape)
    direction.reshape(-1)[int(np.ravel_multi_index(index, shape))] = 1.0
    center = check_center(_resolve_center(model, center), shape)
    return hessian_vector_product(model, direction, class_, center, output, dtype) / 2.0
