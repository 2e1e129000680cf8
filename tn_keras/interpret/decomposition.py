"""The contribution of each polynomial order to a model's output, exactly.

For a model ``f`` that is a polynomial of degree ``D`` in its raw input, expanded about a point
``x0`` (``about=``: the zero image unless given; see `tn_keras.interpret.points`),

    f(x) = f(x0 + d) = sum_{k=0..D} f_k(x),      d = x - x0,   f_k(c (x - x0) + x0) = c^k f_k(x),

where ``f_k`` collects every term of order ``k`` in ``d``. Along the ray
``g(t) = f(x0 + t (x - x0))`` each ``f_k`` contributes ``t^k f_k(x)``: ``g`` is a polynomial of
degree ``D`` in the single variable ``t`` whose coefficients *are* the ``f_k(x)``. Evaluating
``g`` at ``D + 1`` distinct nodes ``t_j`` and solving the Vandermonde system
``sum_k t_j^k c_k = g(t_j)`` therefore gives the ``f_k(x)`` exactly, up to rounding: the system
is non-singular and the polynomial has no other terms.

Conditioning. The nodes are the ``D + 1`` Chebyshev points ``cos((2j + 1) pi / (2D + 2))`` in
``(-1, 1)`` and the system is solved in float64. Its condition number is 3.6 for ``D = 2``,
6.3e2 for ``D = 8`` and 8.9e11 for ``D = 32`` (equispaced nodes: 5.3e14). Two kinds of error:

* the sum ``sum_k f_k(x) = g(1)`` is the interpolant evaluated just beyond the last node, so its
  error is the error of the evaluations of ``g`` times the Lebesgue constant of the nodes
  (below 4 for ``D <= 32``) plus rounding of the solve relative to ``sum_k |f_k(x)|``;
* a single ``f_k`` can carry up to ``cond * eps * max_j |g(t_j)|`` when the orders cancel.

That is why the model is evaluated in float64 by default (a float64 copy, see
`tn_keras.interpret.precision`); ``dtype="float32"`` evaluates it as it is. The errors measured
for the zoo's models are in the project's docs (docs/interpretation.md).
"""
from __future__ import annotations

import numpy as np

from tn_keras.interpret.graph import polynomial_part
from tn_keras.interpret.precision import check_dtype
from tn_keras.interpret.precision import float64_scope
from tn_keras.interpret.precision import with_dtype
from tn_keras.interpret import points as points_lib
from tn_keras.interpret.validation import check_images
from tn_keras.interpret.validation import image_shape

DEFAULT_BATCH_SIZE = 256


def chebyshev_nodes(count):
    """The ``count`` Chebyshev points of the first kind in (-1, 1), float64."""
    j = np.arange(count)
    return np.cos((2 * j + 1) * np.pi / (2 * count))


def solve_orders(values, nodes):
    """Coefficients ``c_k`` of ``g(t_j) = sum_k c_k t_j^k`` for every image and output.

    Args:
        values: ``(N, len(nodes), C)`` evaluations of ``g`` at the nodes.
    Returns:
        ``(N, len(nodes), C)`` float64: ``[:, k, :]`` is the order-``k`` contribution.
    """
    values = np.asarray(values, dtype=np.float64)
    n, count, classes = values.shape
    vandermonde = np.vander(nodes, count, increasing=True)
    rhs = values.transpose(1, 0, 2).reshape(count, n * classes)
    coefficients = np.linalg.solve(vandermonde, rhs)
    return coefficients.reshape(count, n, classes).transpose(1, 0, 2)


def evaluate(model, x, batch_size=DEFAULT_BATCH_SIZE):
    """``model(x)`` at inference as a float64 NumPy array, in batches."""
    out = [np.asarray(model.predict_on_batch(x[i:i + batch_size]), dtype=np.float64)
           for i in range(0, len(x), batch_size)]
    return np.concatenate(out).reshape(len(x), -1)


def _ray_values(poly, x, centers, nodes, batch_size, dtype):
    """``g(t_j)`` for every image: ``(N, len(nodes), C)``; ``centers`` is ``(N,) + shape``
    (a broadcast view when all images share one point)."""
    per_batch = max(1, batch_size // len(nodes))
    values = []
    for start in range(0, len(x), per_batch):
        center = centers[start:start + per_batch].reshape(-1, 1, x[0].size)
        chunk = (x[start:start + per_batch] - centers[start:start + per_batch]).reshape(
            -1, 1, x[0].size)
        points = center + nodes[None, :, None] * chunk
        points = points.reshape((-1,) + x.shape[1:]).astype(dtype)
        values.append(evaluate(poly, points, batch_size).reshape(len(chunk), len(nodes), -1))
    return np.concatenate(values)


def expansion_points(model, x, about=None, center=None, data=None, labels=None,
                     output="logits"):
    """The point each image of ``x`` is expanded about: float64 ``(N,) + input shape``.

    ``about`` (or its former name ``center``), ``data`` and ``labels`` as in
    `order_decomposition`; ``x`` is checked as there. Points shared by every image are a
    broadcast view (no copy per image).
    """
    poly, _ = polynomial_part(model, output)
    return _points(model, poly, check_images(x, image_shape(poly)), about, center, data,
                   labels)


def _points(model, poly, x, about, center, data, labels):
    name, about = points_lib.pick(about, center)
    # "class_mean" without labels: the class the model itself predicts (its own dtype).
    predict = lambda images: evaluate(poly, images)  # noqa: E731
    point = points_lib.resolve(model, about, x.shape[1:], x, data=data, labels=labels,
                               predict=predict, name=name)
    return np.broadcast_to(point, x.shape) if point.shape == x.shape[1:] else point


def order_decomposition(model, x, output="logits", center=None, dtype="float64",
                        batch_size=DEFAULT_BATCH_SIZE, *, about=None, data=None, labels=None):
    """The contribution of each order ``k`` to the output: ``f(x0 + d) = sum_k f_k(d)``.

    Args:
        model: a functional Keras model whose ``output`` is a polynomial of its raw input
            (every TaylorNet of the zoo); see `degree`.
        x: images ``(N,) + input_shape`` (or one image), raw pixels as the model takes them.
        output: ``"logits"`` (the output before the final softmax) or a layer name.
        center: the former name of ``about`` (still accepted; not both).
        dtype: ``"float64"`` (a float64 copy of the model; exact to rounding) or
            ``"float32"`` (the model as it is).
        batch_size: model evaluations per call (each image needs ``degree + 1``).
        about: the expansion point ``x0``: None or ``"zero"`` (the zero image), a number, an
            image, one image per image of ``x``, ``"mean"`` (the training mean image) or
            ``"class_mean"`` (per image, the training mean image of its class: ``labels`` if
            given, else the class the model predicts). See `tn_keras.interpret.points`.
        data: the training images for ``"mean"`` / ``"class_mean"``: images, ``(images,
            labels)`` or a dataset name; default: the zoo model's own dataset.
        labels: for ``"class_mean"``: one class per image of ``x``.

    Returns:
        float64 array ``(N, degree + 1, outputs)``; ``[:, k, c]`` is ``f_k`` of output ``c``,
        ``[:, 0, c]`` is ``f(x0)``. Summed over ``k`` it is ``f(x)``.

    Raises:
        NotAPolynomialError: the model is not a polynomial (naming the layer).
        ValueError: images of the wrong shape, NaN or infinite values, a bad ``about``.
    """
    check_dtype(dtype)
    poly, order = polynomial_part(model, output)
    x = check_images(x, image_shape(poly))
    centers = _points(model, poly, x, about, center, data, labels)
    nodes = chebyshev_nodes(order + 1)
    with float64_scope(dtype == "float64"):
        poly = with_dtype(poly, dtype)
        values = _ray_values(poly, x, centers, nodes, int(batch_size), dtype)
    return solve_orders(values, nodes)


def reconstruction_error(orders, values):
    """``max_c |sum_k f_k - f| / max_c |f|`` per image: how exactly the orders add up."""
    orders = np.asarray(orders, np.float64)
    values = np.asarray(values, np.float64).reshape(len(orders), -1)
    scale = np.maximum(np.max(np.abs(values), axis=1), np.finfo(np.float64).tiny)
    return np.max(np.abs(orders.sum(axis=1) - values), axis=1) / scale
