"""An independent NumPy float64 evaluation of the tn_keras layer formulas.

Nothing here imports tn_keras (or Keras): patches are cut out of the input with explicit loops,
strides, dilation and TensorFlow's 'same' padding rule, and the Taylor expansions are evaluated
term by term. The tests compare the layers against these functions, so a mistake shared by the
layer and its test would need to be made twice, in two different ways.

Weight layouts (the documented contract of the layers, read from their docstrings):

* PolyCG linear kernel ``(kh, kw, C, F)`` (Conv2D's); factor kernel ``(kh, kw, C, n * F)`` whose
  output channel ``piece * F + f`` is factor ``piece`` of filter ``f``, pieces ordered
  ``(k, r, j)``: order ``k = 2..K`` slowest, then rank ``r``, then the ``k`` factors ``j``.
* TaylorDense kernel ``(n, units)``; exact quadratic kernel ``(n (n + 1) / 2, units)`` with rows
  ``(i, j), i <= j`` in row-major order; factor kernel ``(n, n_pieces * units)`` as above.
"""
import itertools
import math

import numpy as np


# ----------------------------------------------------------------------------------------------
# Patches
# ----------------------------------------------------------------------------------------------
def output_length_and_padding(length, kernel, stride, dilation, padding):
    """``(out, pad_before)`` along one axis, the way TensorFlow computes them.

    'valid': ``out = floor((n - ((k - 1) d + 1)) / s) + 1``, no padding.
    'same': ``out = ceil(n / s)``; ``pad_total = max((out - 1) s + (k - 1) d + 1 - n, 0)`` of
    which ``pad_total // 2`` goes before (the extra one, if odd, after).
    """
    extent = (kernel - 1) * dilation + 1
    if padding == "valid":
        return (length - extent) // stride + 1, 0
    if padding == "same":
        out = -(-length // stride)
        pad_total = max((out - 1) * stride + extent - length, 0)
        return out, pad_total // 2
    raise ValueError(padding)


def extract_patches(x, kernel_size, strides=(1, 1), dilation_rate=(1, 1), padding="valid",
                    data_format="channels_last"):
    """All patches of ``x``, flattened in (row, col, channel) order.

    Args:
        x: ``(B, H, W, C)`` (channels_last) or ``(B, C, H, W)``.
    Returns:
        ``(B, out_rows, out_cols, kh * kw * C)`` float64; sites outside the input (the 'same'
        padding) are zeros.
    """
    x = np.asarray(x, dtype=np.float64)
    if data_format == "channels_first":
        x = np.transpose(x, (0, 2, 3, 1))
    batch, rows, cols, channels = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel_size, strides, dilation_rate
    out_rows, pad_top = output_length_and_padding(rows, kh, sh, dh, padding)
    out_cols, pad_left = output_length_and_padding(cols, kw, sw, dw, padding)
    patches = np.zeros((batch, out_rows, out_cols, kh * kw * channels))
    for i in range(out_rows):
        for j in range(out_cols):
            flat = 0
            for a in range(kh):
                for c in range(kw):
                    r = i * sh + a * dh - pad_top
                    q = j * sw + c * dw - pad_left
                    if 0 <= r < rows and 0 <= q < cols:
                        patches[:, i, j, flat:flat + channels] = x[:, r, q, :]
                    flat += channels
    return patches


# ----------------------------------------------------------------------------------------------
# The Taylor expansion of a map R^P -> R^F from its pieces
# ----------------------------------------------------------------------------------------------
def factor_pieces(factor_matrix, num_units):
    """``(P, n * F)`` -> list of n ``(P, F)`` matrices, piece ``m`` = columns ``m F .. m F + F``."""
    size, total = factor_matrix.shape
    return [factor_matrix[:, m * num_units:(m + 1) * num_units] for m in range(total // num_units)]


def cp_terms(p, pieces, order, rank):
    """``sum_{k=2..order} sum_{r<rank} prod_{j<k} (p @ U_{k,r,j})``, pieces in (k, r, j) order."""
    total = 0.0
    index = 0
    for k in range(2, order + 1):
        for _ in range(rank):
            term = 1.0
            for j in range(k):
                term = term * (p @ pieces[index + j])
            total = total + term
            index += k
    assert index == len(pieces), (index, len(pieces))
    return total


def polycg(x, kernel, factor_kernel, bias, order, rank, strides, padding, dilation_rate,
           data_format="channels_last"):
    """PolyCG: ``z = b + W p + sum_k sum_r prod_j U_{k,r,j} p`` at every patch ``p``.

    Returns the output in the layer's data format, float64.
    """
    kernel = np.asarray(kernel, np.float64)
    kh, kw, channels, filters = kernel.shape
    p = extract_patches(x, (kh, kw), strides, dilation_rate, padding, data_format)
    z = p @ kernel.reshape(kh * kw * channels, filters)
    if order >= 2:
        factors = np.asarray(factor_kernel, np.float64).reshape(kh * kw * channels, -1)
        z = z + cp_terms(p, factor_pieces(factors, filters), order, rank)
    if bias is not None:
        z = z + np.asarray(bias, np.float64)
    if data_format == "channels_first":
        z = np.transpose(z, (0, 3, 1, 2))
    return z


def taylor_dense_exact(x, kernel, quadratic_kernel, bias):
    """``y_u = b_u + sum_i W_iu x_i + sum_{i<=j} Q_(ij)u x_i x_j``, with explicit (i, j) loops."""
    x = np.asarray(x, np.float64)
    n = x.shape[-1]
    y = x @ np.asarray(kernel, np.float64)
    quadratic = np.asarray(quadratic_kernel, np.float64)
    row = 0
    for i in range(n):
        for j in range(i, n):
            y = y + (x[..., i] * x[..., j])[..., None] * quadratic[row]
            row += 1
    assert row == quadratic.shape[0]
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return y


def taylor_dense_cp(x, kernel, factor_kernel, bias, order, rank):
    """``y = b + W x + sum_k sum_r prod_j U_{k,r,j} x`` on the last axis."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    y = x @ kernel
    if order >= 2:
        pieces = factor_pieces(np.asarray(factor_kernel, np.float64), kernel.shape[1])
        y = y + cp_terms(x, pieces, order, rank)
    if bias is not None:
        y = y + np.asarray(bias, np.float64)
    return y


def evaluate_coefficients(coefficients, p):
    """Evaluate ``bias + linear p + sum_k order_k[f, i1..ik] p_i1 .. p_ik`` at ``p (..., P)``.

    The full coefficient tensors are contracted with ``p`` (never the CP factors): this is what
    `taylor_coefficients()` claims the layer computes.
    """
    p = np.asarray(p, np.float64)
    y = p @ coefficients["linear"].T + coefficients["bias"]
    k = 2
    while f"order_{k}" in coefficients:
        axes = "abcdefgh"[:k]
        # e.g. k = 2: "fab,...a,...b->...f"
        subscripts = f"f{axes}," + ",".join(f"...{a}" for a in axes) + "->...f"
        y = y + np.einsum(subscripts, coefficients[f"order_{k}"], *([p] * k))
        k += 1
    return y


# ----------------------------------------------------------------------------------------------
# Monomials
# ----------------------------------------------------------------------------------------------
def monomial_exponents(num_variables, max_degree):
    """Every exponent tuple of total degree ``<= max_degree`` (``C(n + d, d)`` of them)."""
    return [
        e for e in itertools.product(range(max_degree + 1), repeat=num_variables)
        if sum(e) <= max_degree
    ]


def design_matrix(points, exponents):
    """``(N, M)`` matrix of the monomials ``prod_v x_v ** e_v`` at ``points (N, n)``."""
    points = np.asarray(points, np.float64)
    return np.stack(
        [np.prod(points ** np.asarray(e, np.float64), axis=1) for e in exponents], axis=1
    )


def finite_difference(values, order):
    """The ``order``-th forward difference of equally spaced samples (``len(values) > order``).

    Computed from the binomial formula ``sum_m (-1)^(order - m) C(order, m) f_m`` rather than
    with numpy.diff, so that it is a second, independent, implementation.
    """
    values = np.asarray(values, np.float64)
    weights = np.array([(-1) ** (order - m) * math.comb(order, m) for m in range(order + 1)])
    return np.array([weights @ values[s:s + order + 1] for s in range(len(values) - order)])
