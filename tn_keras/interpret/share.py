"""How readable an expansion is: the share of the low orders, and how much the orders cancel.

Expand one output of a polynomial model about ``x0`` (`order_decomposition`):
``f(x) = sum_{k=0..D} a_k`` with ``a_k = f_k(x - x0)`` the order-``k`` part. The low orders are
what a reader can look at (a constant, an image of weights, a matrix of pixel pairs), so two
numbers say how much of ``f`` they explain:

* the **cumulative share** of orders ``<= k`` in the magnitude ``sum_j |a_j|``,

      S(k) = sum_{j<=k} |a_j| / sum_{j=0..D} |a_j|,        0 <= S(k) <= S(D) = 1;

  over ``N`` images ``n`` (orders ``a_nj``) it is pooled as a ratio of sums,

      S_pool(k) = sum_n sum_{j<=k} |a_nj| / sum_n sum_{j=0..D} |a_nj|,

  so an image counts in proportion to its magnitude (the mean of the per-image shares is one
  line of NumPy on `OrderShare.cumulative` if you prefer every image to count alike);
* the **cancellation ratio** of an image,

      R = sum_j |a_j| / |sum_j a_j| = sum_j |a_j| / |f(x)|  >= 1,

  1 when every order pushes the same way; R = 1e6 means the orders are a million times larger
  than the logit they add up to, so no single order can be read as "the" reason (inf when
  ``f(x) = 0``). Over images it is summarised by the median.

Order 0 is ``f(x0)``: about a typical image (``about="mean"``) it is the logit there, so
``S(0)`` already says how much of the magnitude the point itself carries.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tn_keras.interpret.decomposition import DEFAULT_BATCH_SIZE
from tn_keras.interpret.decomposition import order_decomposition


@dataclasses.dataclass(frozen=True)
class OrderShare:
    """`order_share`'s result (float64 NumPy arrays; ``N`` images, degree ``D``).

    Attributes:
        orders: ``(N, D + 1)``, ``a_nk``: order ``k`` of image ``n``'s target output.
        targets: ``(N,)``, the output expanded for each image.
        cumulative: ``(N, D + 1)``, ``S_n(k)``: each image's share of orders ``<= k``.
        pooled: ``(D + 1,)``, ``S_pool(k)``: the share of orders ``<= k`` over all images.
        cancellation: ``(N,)``, ``R_n = sum_k |a_nk| / |sum_k a_nk|`` (inf when the sum is 0).
    """

    orders: np.ndarray
    targets: np.ndarray
    cumulative: np.ndarray
    pooled: np.ndarray
    cancellation: np.ndarray

    @property
    def median_cancellation(self):
        """The median over images of the cancellation ratio."""
        return float(np.median(self.cancellation))

    def summary(self, up_to=2):
        """For ``k <= up_to``: ``share_orders_le_k`` (``S_pool(k)``) and
        ``median_share_orders_le_k`` (the median over images of ``S_n(k)``: a few images whose
        orders are huge can dominate the pooled share), and ``median_cancellation``."""
        orders = range(min(up_to, len(self.pooled) - 1) + 1)
        out = {f"share_orders_le_{k}": float(self.pooled[k]) for k in orders}
        out.update({f"median_share_orders_le_{k}": float(np.median(self.cumulative[:, k]))
                    for k in orders})
        out["median_cancellation"] = self.median_cancellation
        return out


def shares_of(orders):
    """`OrderShare` fields from orders ``(N, D + 1)`` of one output per image (see module)."""
    orders = np.asarray(orders, dtype=np.float64)
    magnitude = np.abs(orders)
    total = magnitude.sum(axis=1)
    running = np.cumsum(magnitude, axis=1)
    # An image whose every order is 0 has nothing to share: all of it "is" in order 0.
    cumulative = np.where(total[:, None] > 0, running / np.where(total > 0, total, 1.0)[:, None],
                          1.0)
    pooled = running.sum(axis=0) / max(total.sum(), np.finfo(np.float64).tiny)
    value = np.abs(orders.sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        cancellation = np.where(value > 0, total / value, np.where(total > 0, np.inf, 1.0))
    return cumulative, pooled, cancellation


def _targets(target, orders):
    n, outputs = orders.shape[0], orders.shape[2]
    if isinstance(target, str):
        if target != "predicted":
            raise ValueError(f"target={target!r}: expected 'predicted', an output index or one "
                             "index per image.")
        return np.argmax(orders.sum(axis=1), axis=1)
    targets = np.asarray(target)
    if not np.issubdtype(targets.dtype, np.integer) or targets.ndim > 1:
        raise ValueError(f"target: expected 'predicted', an output index or one index per "
                         f"image; received {target!r}.")
    targets = np.broadcast_to(targets, (n,)) if targets.ndim == 0 else targets
    if len(targets) != n or np.any((targets < 0) | (targets >= outputs)):
        raise ValueError(f"target: expected {n} output indices in 0..{outputs - 1}; received "
                         f"{len(targets)} with values {sorted(set(targets.tolist()))[:5]}.")
    return targets


def order_share(model, x, about=None, target="predicted", output="logits", data=None,
                labels=None, dtype="float64", batch_size=DEFAULT_BATCH_SIZE):
    """The share of ``sum_k |f_k|`` carried by orders ``<= k``, and the cancellation ratio.

    For each image, the output ``target`` is decomposed about ``about`` (`order_decomposition`)
    into ``a_k = f_k``; the module docstring defines ``S_n(k)``, ``S_pool(k)`` and ``R_n``.

    Args:
        model, x, output, dtype, batch_size: as in `order_decomposition`.
        about: the expansion point, as in `order_decomposition` (``"mean"``, ``"class_mean"``,
            ``"zero"``, a number, an image, one image per image).
        target: which output of each image: ``"predicted"`` (``argmax_c f_c(x)``), one output
            index for every image, or one index per image (for example the true labels).
        data, labels: the training images and the ``"class_mean"`` labels, as in
            `order_decomposition`.

    Returns:
        `OrderShare`.
    """
    orders = order_decomposition(model, x, output=output, dtype=dtype, batch_size=batch_size,
                                 about=about, data=data, labels=labels)
    targets = _targets(target, orders)
    chosen = orders[np.arange(len(orders)), :, targets]
    cumulative, pooled, cancellation = shares_of(chosen)
    return OrderShare(orders=chosen, targets=np.asarray(targets), cumulative=cumulative,
                      pooled=pooled, cancellation=cancellation)
