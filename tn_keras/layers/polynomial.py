"""The arithmetic shared by every polynomial layer: CP-factorised Taylor terms.

A Taylor expansion to order ``K`` of a map ``R^P -> R^F`` is

    z_f = b_f + sum_i W_fi p_i + sum_{k=2..K} sum_{i1..ik} T^(k)_{f,i1..ik} p_i1 ... p_ik .

Storing the symmetric coefficient tensor ``T^(k)`` costs ``F * P^k`` numbers; instead each order
is written as a rank-R CP (canonical polyadic) sum of products of linear forms,

    sum_{i1..ik} T^(k)_{f,i1..ik} p_i1 ... p_ik = sum_{r=1..R} prod_{j=1..k} (U^(k,r,j) p)_f ,

so that every factor ``U p`` is an ordinary linear map (a convolution for a patch, a matrix for
a vector) and all of them can be computed by **one** fused convolution / matmul whose output
channels are then split. The layers keep the factors in one weight of ``F * n`` outputs, with
``n = num_product_factors(order, rank)``, ordered ``(k, r, j)`` with ``k`` slowest and ``f``
fastest: output channel ``piece * F + f``.
"""
import itertools

import numpy as np
from keras import initializers
from keras import ops


def num_product_factors(order, rank):
    """How many linear factors the CP terms of orders 2..order need: ``rank * sum_k k``."""
    return rank * sum(range(2, order + 1))


def product_terms_sum(pieces, order, rank):
    """``sum_{k=2..order} sum_{r<rank} prod_{j<k} pieces[next]`` in (k, r, j) order.

    ``pieces`` are the factor outputs, each of the output's shape. Plain multiplications (not a
    reduce-product) so that the graph lowers to MUL/ADD, which every runtime (TFLite included)
    supports and quantises.
    """
    total = None
    index = 0
    for k in range(2, order + 1):
        for _ in range(rank):
            term = pieces[index]
            for j in range(1, k):
                term = ops.multiply(term, pieces[index + j])
            index += k
            total = term if total is None else ops.add(total, term)
    return total


def symmetric_coefficients(factors, order, rank, max_elements=50_000_000):
    """The symmetric coefficient tensors ``T^(k)`` (float64) from the CP factors.

    Args:
        factors: array ``(n_pieces, F, P)``: factor ``piece`` maps the flattened input ``p`` to
            ``F`` values, ``(U p)_f = sum_i factors[piece, f, i] p_i``.
        order, rank: the layer's settings.
        max_elements: refuse to build a tensor larger than this (``F * P^k`` numbers).

    Returns:
        ``{k: array (F, P, ..., P)}`` for ``k = 2..order``; ``T^(k)`` is symmetric in its last
        ``k`` axes, so the coefficient of a monomial is ``T`` summed over the index orderings
        of that monomial (``2 T[f, i, j]`` for ``p_i p_j`` with ``i != j``).
    """
    factors = np.asarray(factors, dtype=np.float64)
    num_units, size = factors.shape[1], factors.shape[2]
    tensors = {}
    index = 0
    for k in range(2, order + 1):
        if num_units * size**k > max_elements:
            raise ValueError(
                f"The order-{k} coefficient tensor would hold {num_units} x {size}^{k} = "
                f"{num_units * size ** k:,} numbers (more than max_elements={max_elements:,}). "
                f"Pass a smaller `max_order` to taylor_coefficients()."
            )
        tensor = np.zeros((num_units,) + (size,) * k)
        for _ in range(rank):
            # Outer product of the k factors of this rank-one term, unit by unit.
            term = factors[index]
            for j in range(1, k):
                term = term[..., None] * factors[index + j].reshape(
                    (num_units,) + (1,) * j + (size,)
                )
            tensor += term
            index += k
        # Symmetrise: average over the k! orderings of the monomial axes.
        perms = list(itertools.permutations(range(1, k + 1)))
        tensor = sum(np.transpose(tensor, (0,) + p) for p in perms) / len(perms)
        tensors[k] = tensor
    return tensors


def default_factor_initializer():
    """Truncated normal with variance ``0.1 / fan_in`` for the product factors.

    Why 0.1: with unit-variance inputs each factor then has variance ~0.1 and each product
    ~0.01, so a freshly built layer is close to its linear part. With the usual ``1 / fan_in``
    (LeCun) the products are as large as the linear term, and stacking layers squares and
    re-squares them: the activations of a deep TaylorNet grow heavy tails at initialisation
    and it does not learn. The measurement is in docs/layers.md ("Ablation: factor
    initialisation", `benchmarks/ablation_factor_init.py`).
    """
    return initializers.VarianceScaling(scale=0.1, mode="fan_in", distribution="truncated_normal")


def validate_order_and_rank(order, rank, allow_none_rank=False):
    """Raise a ValueError naming ``order`` or ``rank`` when they are not positive integers."""
    if not isinstance(order, (int, np.integer)) or isinstance(order, bool) or order < 1:
        raise ValueError(
            f"Invalid value for argument `order`: expected an integer >= 1 (1 is a plain linear "
            f"map). Received order={order!r}."
        )
    if rank is None and allow_none_rank:
        return
    if not isinstance(rank, (int, np.integer)) or isinstance(rank, bool) or rank < 1:
        raise ValueError(
            f"Invalid value for argument `rank`: expected an integer >= 1. Received rank={rank!r}."
        )


def validate_positive_int(name, value):
    """Raise a ValueError naming the argument when ``value`` is not an integer >= 1."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(
            f"Invalid value for argument `{name}`: expected an integer >= 1. "
            f"Received {name}={value!r}."
        )
