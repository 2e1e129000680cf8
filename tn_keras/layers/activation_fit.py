"""Least-squares quadratics of an activation: the polynomial stand-ins of a converted network.

A network trained with an activation ``f`` becomes a polynomial one by putting, in place of
each ``f``, the per-channel quadratic ``c0 + c1 z + c2 z^2`` that is closest to ``f`` on the
inputs ``z`` that ``f`` actually receives:

    (c0, c1, c2) = argmin  E_z [ (f(z) - c0 - c1 z - c2 z^2)^2 ]

solved as the 3x3 normal equations ``(A^T A) c = A^T f`` with ``A = [1, z, z^2]``. The
expectation is over samples of ``z`` (`quadratic_fit`, one fit per channel) or over a Gaussian
``N(mean, std^2)`` by Gauss-Hermite quadrature (`gaussian_quadratic_fit`, the distribution a
unit-scale BatchNorm hands an activation before any data is seen).
"""
import math

import numpy as np

#: Gauss-Hermite nodes for the Gaussian fits: exact for polynomials of degree < 160, so the
#: fit's only error is how well that polynomial rule integrates ``f``.
QUADRATURE_NODES = 80


def gelu(z):
    """GELU, ``z * Phi(z)``, exact (erf), in float64."""
    z = np.asarray(z, np.float64)
    erf = np.vectorize(math.erf)
    return 0.5 * z * (1.0 + erf(z / math.sqrt(2.0)))


def _normal_equations(z, fz, weights):
    a = np.stack([np.ones_like(z), z, z * z], axis=-1)
    gram = np.einsum("...n,...ni,...nj->...ij", weights, a, a)
    rhs = np.einsum("...n,...ni,...n->...i", weights, a, fz)
    return np.linalg.solve(gram, rhs[..., None])[..., 0]


def gaussian_quadratic_fit(f=gelu, mean=0.0, std=1.0):
    """``(c0, c1, c2)``: the quadratic closest to ``f`` in mean square under ``N(mean, std^2)``."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(QUADRATURE_NODES)
    z = mean + std * nodes
    return tuple(float(c) for c in _normal_equations(z, f(z), weights / weights.sum()))


def quadratic_fit(z, f=gelu):
    """Per-channel least squares: ``z`` of shape ``(samples, channels)`` -> ``(channels, 3)``,
    the coefficients ``(c0, c1, c2)`` of each channel's quadratic closest to ``f`` on its
    samples. A channel whose samples are (nearly) constant gets the tangent-free fit
    ``c0 = mean f, c1 = c2 = 0`` instead of a singular system."""
    z = np.asarray(z, np.float64)
    if z.ndim != 2 or len(z) < 3:
        raise ValueError(f"quadratic_fit expects samples of shape (samples >= 3, channels); "
                         f"received {z.shape}.")
    zt = z.T  # (channels, samples)
    coefficients = np.zeros((z.shape[1], 3))
    fz = f(zt)
    spread = zt.std(axis=1)
    fit = spread > 1e-6 * np.maximum(1.0, np.abs(zt).max(axis=1))
    if fit.any():
        # Centred and scaled per channel, so the normal equations stay well conditioned.
        mu, sd = zt[fit].mean(axis=1, keepdims=True), spread[fit][:, None]
        u = (zt[fit] - mu) / sd
        b = _normal_equations(u, fz[fit], np.ones_like(u) / u.shape[1])
        mu, sd = mu[:, 0], sd[:, 0]
        # c0 + c1 z + c2 z^2 from b0 + b1 u + b2 u^2 with u = (z - mu) / sd.
        coefficients[fit, 2] = b[:, 2] / sd ** 2
        coefficients[fit, 1] = b[:, 1] / sd - 2.0 * b[:, 2] * mu / sd ** 2
        coefficients[fit, 0] = b[:, 0] - b[:, 1] * mu / sd + b[:, 2] * mu ** 2 / sd ** 2
    coefficients[~fit, 0] = fz[~fit].mean(axis=1)
    return coefficients
