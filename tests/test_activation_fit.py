"""The quadratic stand-ins of an activation: fits, their initialiser and the layer they set."""
import math

import keras
import numpy as np
import pytest

from tn_keras import interpret
from tn_keras import zoo
from tn_keras.layers import StackedIdentity
from tn_keras.layers.activation_fit import gaussian_quadratic_fit
from tn_keras.layers.activation_fit import gelu
from tn_keras.layers.activation_fit import quadratic_fit
from tn_keras.zoo.cifar_taylornet_fast import fast_network

pytestmark = pytest.mark.backend_neutral


def _gelu_reference(z):
    return np.array([v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in z])


def test_gaussian_fit_matches_a_weighted_polyfit_on_a_dense_grid():
    for mean, std in [(0.0, 1.0), (-1.5, 0.7), (2.0, 3.0)]:
        z = np.linspace(mean - 12 * std, mean + 12 * std, 20001)
        density = np.exp(-0.5 * ((z - mean) / std) ** 2)
        # polyfit minimises sum (w_i r_i)^2: w = sqrt(density) weights each point by it.
        expected = np.polynomial.polynomial.polyfit(z, _gelu_reference(z), 2,
                                                    w=np.sqrt(density))
        np.testing.assert_allclose(gaussian_quadratic_fit(gelu, mean, std), expected,
                                   rtol=1e-6, atol=1e-9)


def test_gelu_quadratic_under_the_unit_gaussian_has_the_exact_linear_term():
    # E[z * GELU(z)] = E[z^2 Phi(z)] = 1/2 and z is orthogonal to 1 and z^2 under N(0, 1).
    assert gaussian_quadratic_fit()[1] == pytest.approx(0.5, abs=1e-12)


def test_sample_fit_matches_numpy_polyfit_per_channel():
    rng = np.random.default_rng(0)
    z = np.stack([rng.normal(0, 1, 5000), rng.normal(-2, 0.5, 5000), rng.normal(30, 4, 5000),
                  np.full(5000, 0.25)], axis=1)
    coefficients = quadratic_fit(z)
    for channel in range(3):
        expected = np.polynomial.polynomial.polyfit(z[:, channel],
                                                    _gelu_reference(z[:, channel]), 2)
        np.testing.assert_allclose(coefficients[channel], expected, rtol=1e-6, atol=1e-9)
    # A constant channel: its mean value, no slope or curvature (the system is singular).
    np.testing.assert_allclose(coefficients[3], [gelu(0.25), 0.0, 0.0])


def test_sample_fit_of_any_function_and_bad_shapes():
    z = np.random.default_rng(1).normal(size=(100, 2))
    np.testing.assert_allclose(quadratic_fit(z, lambda v: 3 - v + 2 * v * v),
                               [[3, -1, 2], [3, -1, 2]], atol=1e-9)
    with pytest.raises(ValueError, match=r"samples >= 3, channels.*\(5,\)"):
        quadratic_fit(np.zeros(5))


def test_stacked_identity_is_scaled_identities_side_by_side():
    kernel = StackedIdentity((1.0, -0.5))((1, 1, 3, 6))
    np.testing.assert_array_equal(kernel[0, 0], np.hstack([np.eye(3), -0.5 * np.eye(3)]))
    assert StackedIdentity.from_config(StackedIdentity((2.0,)).get_config()).gains == (2.0,)
    with pytest.raises(ValueError, match=r"2 gains.*\(1, 1, C, 2 \* C\).*\(1, 1, 3, 3\)"):
        StackedIdentity((1.0, 2.0))((1, 1, 3, 3))


def test_quadratic_step_starts_as_gelus_quadratic_in_every_channel():
    model = fast_network((4, 4, 4), "quadratic")
    step = model.get_layer("group1_1_t")
    z = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype(np.float32)
    c0, c1, c2 = gaussian_quadratic_fit()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(step(z)), c0 + c1 * z + c2 * z * z,
                               rtol=1e-5, atol=1e-6)


def test_quadratic_family_is_a_polynomial_of_degree_128():
    # Seven steps (one after the whitening, two per group), each of degree 2.
    model = zoo.build("cifar_taylornet_fast_small", width=0.125, product="quadratic")
    assert interpret.degree(model) == 2 ** 7


def test_pooling_argument_is_checked():
    with pytest.raises(ValueError, match=r"pooling must be one of \['average', 'max'\]"):
        fast_network((4, 4, 4), "quadratic", pooling="median")
