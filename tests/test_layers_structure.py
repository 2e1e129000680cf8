"""Structure of the polynomials the layers build: the paper's Fig. S1 and the degree of a stack.

* Fig. S1 (docs/paper.md): the coarse-graining tree (x1, x2) -> y1, (x3, x4) -> y2,
  (y1, y2) -> z, each map of order 2, is PolyCG with kernel (1, 2) / stride (1, 2) followed by
  PolyCG with kernel (2, 1) / stride (2, 1). Its monomials are recovered numerically, by an exact
  least-squares fit over every monomial of degree <= 4 in x1..x4, and must be exactly the 54 of
  the figure; with order 1 they are the 5 of a convolution.
* A stack of L order-2 layers (BatchNorm at inference between them) is a polynomial of degree
  2^L: along a line its (2^L + 1)-th finite differences vanish, its 2^L-th do not; a ReLU
  network's do not vanish.
"""
import math
import re

import keras
import numpy as np
import pytest
import scipy.signal

import _numpy_reference as ref
from tn_keras.layers import PolyCG

# ----------------------------------------------------------------------------------------------
# Fig. S1
# ----------------------------------------------------------------------------------------------
# The 15 monomials a of (x1, x2), copied from docs/paper.md in the same order; b is the same
# list in (x3, x4).
PAPER_MONOMIALS = ("1 x1 x1^2 x1^3 x1^4 x2 x2^2 x2^3 x2^4 x1x2 x1x2^2 x1^2x2 x1^2x2^2 x1x2^3 "
                   "x1^3x2")


def parse_monomial(text, first, second):
    """``"x1^2x2"`` -> exponents ``(2, 1)`` of the variables named ``first`` and ``second``."""
    exponents = {first: 0, second: 0}
    if text != "1":
        for name, power in re.findall(r"(x\d)(?:\^(\d))?", text):
            exponents[name] += int(power or 1)
    return exponents[first], exponents[second]


def fig_s1_nonzero_monomials():
    """The 54 monomials of Fig. S1 as exponent tuples (e1, e2, e3, e4) of x1..x4."""
    a_list = [parse_monomial(m, "x1", "x2") for m in PAPER_MONOMIALS.split()]
    assert len(set(a_list)) == 15
    low_degree_a = {a for a in a_list if sum(a) <= 2}  # {1, x1, x1^2, x2, x2^2, x1x2}
    nonzero = set()
    for b in a_list:  # rows: b, the same list in (x3, x4)
        if sum(b) == 0:
            allowed = a_list  # row b = 1: all 15 entries
        elif sum(b) <= 2:
            allowed = low_degree_a  # rows x3, x3^2, x4, x4^2, x3x4
        else:
            allowed = [(0, 0)]  # rows of degree 3 or 4: only a = 1
        nonzero.update(a + b for a in allowed)
    return nonzero


def random_nonzero(rng, shape):
    """Generic weights bounded away from zero: |w| in [0.5, 1.5], random sign."""
    return rng.uniform(0.5, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)


def fig_s1_stack(order, seed):
    """The two-layer tree on a (N, 2, 2, 1) input, float64, every weight random and non-zero."""
    rng = np.random.default_rng(seed)
    first = PolyCG(1, kernel_size=(1, 2), strides=(1, 2), order=order, dtype="float64")
    second = PolyCG(1, kernel_size=(2, 1), strides=(2, 1), order=order, dtype="float64")
    first.build((None, 2, 2, 1))
    second.build((None, 2, 1, 1))
    for layer in (first, second):
        for variable in layer.weights:
            variable.assign(random_nonzero(rng, tuple(variable.shape)))
    return first, second


def evaluate_stack(layers, points):
    """``points (N, 4)`` = (x1, x2, x3, x4) -> z ``(N,)``; x1 = x[0,0], x2 = x[0,1], ..."""
    x = points.reshape(-1, 2, 2, 1)  # row-major: [[x1, x2], [x3, x4]]
    for layer in layers:
        x = layer(x)
    assert tuple(x.shape) == (len(points), 1, 1, 1)
    return np.asarray(x, np.float64).reshape(-1)


def fit_monomials(layers, seed, max_degree=4, num_points=400):
    """Least-squares coefficients of z over all monomials of x1..x4 of degree <= max_degree.

    Returns ``{exponents: coefficient}``. The fit is exact (the residual is checked), so the
    coefficients are those of the polynomial, not an approximation.
    """
    rng = np.random.default_rng(seed)
    points = rng.uniform(-1.0, 1.0, size=(num_points, 4))
    exponents = ref.monomial_exponents(4, max_degree)
    assert len(exponents) == math.comb(4 + max_degree, max_degree)
    matrix = ref.design_matrix(points, exponents)
    values = evaluate_stack(layers, points)
    coefficients, *_ = np.linalg.lstsq(matrix, values, rcond=None)
    residual = matrix @ coefficients - values
    assert np.max(np.abs(residual)) < 1e-10 * np.max(np.abs(values)), "not a degree-4 polynomial"
    return dict(zip(exponents, coefficients))


def split_by_magnitude(coefficients, zero=1e-9, nonzero=1e-4):
    """The monomials whose coefficient is non-zero, requiring a clear gap from the zero ones."""
    scale = max(abs(c) for c in coefficients.values())
    ambiguous = {e: c for e, c in coefficients.items() if zero * scale <= abs(c) < nonzero * scale}
    assert not ambiguous, f"coefficients neither zero nor clearly non-zero: {ambiguous}"
    return {e for e, c in coefficients.items() if abs(c) >= nonzero * scale}


def test_fig_s1_reference_pattern_from_notes():
    """The description in docs/paper.md itself: 15 + 5 x 6 + 9 x 1 = 54 monomials, degree <= 4."""
    pattern = fig_s1_nonzero_monomials()
    assert len(pattern) == 54
    assert max(sum(e) for e in pattern) == 4
    assert (0, 0, 0, 0) in pattern and (4, 0, 0, 0) in pattern and (0, 0, 0, 4) in pattern
    assert (1, 0, 1, 0) in pattern  # x1 x3
    assert (3, 0, 1, 0) not in pattern  # x1^3 x3: a of degree 3 only in row b = 1


@pytest.mark.parametrize("seed", [0, 1])
def test_fig_s1_tree_has_exactly_the_54_monomials(seed):
    layers = fig_s1_stack(order=2, seed=seed)
    found = split_by_magnitude(fit_monomials(layers, seed=10 + seed))
    expected = fig_s1_nonzero_monomials()
    assert found == expected, (
        f"missing {sorted(expected - found)}, unexpected {sorted(found - expected)}")


def test_fig_s1_order_one_is_a_convolution():
    """Linear local maps: only the terms of a convolution, {1, x1, x2, x3, x4}."""
    layers = fig_s1_stack(order=1, seed=3)
    found = split_by_magnitude(fit_monomials(layers, seed=4))
    assert found == {(0, 0, 0, 0), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)}


# Exact composition of the two layers' taylor_coefficients(), with each polynomial a dense array
# C[e1, e2, e3, e4] of its coefficients (exponent <= 4 in each variable): a product of
# polynomials is an N-d convolution of their arrays. tn_keras.figures.fig_s1 composes the same
# coefficients as {exponents: coefficient} dictionaries; this reference shares none of its code.
DENSE_SHAPE = (5,) * 4


def _dense_product(p, q):
    """p * q, truncated to DENSE_SHAPE (nothing is lost: the tree's degree is at most 4)."""
    return scipy.signal.convolve(p, q, method="direct")[tuple(slice(0, n) for n in DENSE_SHAPE)]


def _dense_patch(coefficients, inputs):
    """Filter 0's ``b + sum_i L_i p_i + sum_ij Q_ij p_i p_j`` with the polynomials ``inputs``."""
    result = np.tensordot(coefficients["linear"][0], np.stack(inputs), axes=1)
    result[(0,) * result.ndim] += coefficients["bias"][0]
    quadratic = coefficients.get("order_2")
    if quadratic is not None:
        products = np.stack([np.stack([_dense_product(p, q) for q in inputs]) for p in inputs])
        result += np.tensordot(quadratic[0], products, axes=2)
    return result


def test_fig_s1_fit_equals_composed_taylor_coefficients():
    """The fitted coefficients are the composition of the two layers' exact coefficients."""
    first, second = fig_s1_stack(order=2, seed=5)
    fitted = fit_monomials((first, second), seed=6)
    variables = [np.zeros(DENSE_SHAPE) for _ in range(4)]
    for i, variable in enumerate(variables):
        variable[tuple(np.eye(4, dtype=int)[i])] = 1.0  # x_{i+1}
    coefficients = first.taylor_coefficients()
    y1 = _dense_patch(coefficients, variables[:2])  # patch (x1, x2)
    y2 = _dense_patch(coefficients, variables[2:])  # patch (x3, x4)
    z = _dense_patch(second.taylor_coefficients(), [y1, y2])
    scale = max(abs(c) for c in fitted.values())
    for exponents, value in fitted.items():
        assert abs(value - z[exponents]) < 1e-9 * scale, exponents
    # Every monomial the fit left out (total degree > 4) is absent from the composition.
    outside = [e for e in np.ndindex(*DENSE_SHAPE) if e not in fitted]
    assert max(abs(z[e]) for e in outside) < 1e-12 * scale


# ----------------------------------------------------------------------------------------------
# Degree of a stack: finite differences along a line
# ----------------------------------------------------------------------------------------------
def randomize_batch_norm(layer, rng):
    """Non-trivial inference statistics and affine parameters."""
    layer.gamma.assign(rng.uniform(0.5, 2.0, size=layer.gamma.shape))
    layer.beta.assign(rng.normal(0.0, 0.5, size=layer.beta.shape))
    layer.moving_mean.assign(rng.normal(0.0, 0.5, size=layer.moving_mean.shape))
    layer.moving_variance.assign(rng.uniform(0.3, 3.0, size=layer.moving_variance.shape))


def polynomial_stack(num_layers, rng, channels=2, filters=3):
    """L order-2 PolyCG layers (2x2, stride 2) with BatchNorm between them: 2^L x 2^L -> 1x1."""
    side = 2 ** num_layers
    model_layers = [keras.Input((side, side, channels), dtype="float64")]
    for index in range(num_layers):
        if index:
            model_layers.append(keras.layers.BatchNormalization(dtype="float64"))
        model_layers.append(PolyCG(filters, order=2, dtype="float64"))
    model = keras.Sequential(model_layers)
    for layer in model.layers:
        if isinstance(layer, PolyCG):
            for variable in layer.weights:  # the default bias is zero: make every term count
                variable.assign(rng.normal(0.0, 0.6, size=tuple(variable.shape)))
        else:
            randomize_batch_norm(layer, rng)
    return model


def relu_stack(num_layers, rng, channels=2, filters=3):
    """The same shapes with Conv2D + ReLU (no ReLU after the last layer)."""
    side = 2 ** num_layers
    model_layers = [keras.Input((side, side, channels), dtype="float64")]
    for index in range(num_layers):
        last = index == num_layers - 1
        model_layers.append(keras.layers.Conv2D(
            filters, 2, strides=2, activation=None if last else "relu", dtype="float64",
            bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=index)))
    return keras.Sequential(model_layers)


def values_on_line(model, rng, num_points, half_width):
    """Model outputs (flattened per point) at equally spaced points of a random line."""
    shape = model.input_shape[1:]
    start = rng.normal(size=shape)
    direction = rng.normal(size=shape)
    t = np.linspace(-half_width, half_width, num_points)
    points = start[None] + t.reshape(-1, 1, 1, 1) * direction[None]
    return np.asarray(model(points, training=False), np.float64).reshape(num_points, -1)


@pytest.mark.parametrize("num_layers", [2, 3])
def test_stack_of_order_two_layers_has_degree_two_to_the_l(num_layers):
    rng = np.random.default_rng(num_layers)
    degree = 2 ** num_layers
    model = polynomial_stack(num_layers, rng)
    values = values_on_line(model, rng, num_points=degree + 6, half_width=1.5)
    scale = np.max(np.abs(values))
    vanishing = ref.finite_difference(values, degree + 1)
    assert np.max(np.abs(vanishing)) < 1e-9 * scale
    # ... and the degree is not lower: the 2^L-th difference (constant: 2^L! a h^2^L) is not 0.
    leading = ref.finite_difference(values, degree)
    assert np.min(np.abs(leading)) > 1e-5 * scale
    np.testing.assert_allclose(leading, leading[:1].repeat(len(leading), 0), rtol=1e-6)


@pytest.mark.parametrize("num_layers", [2, 3])
def test_relu_network_is_not_a_low_degree_polynomial(num_layers):
    """The control: kinks make the same finite differences clearly non-zero."""
    rng = np.random.default_rng(20 + num_layers)
    degree = 2 ** num_layers
    model = relu_stack(num_layers, rng)
    # Wide spacing: the windows of degree + 2 points cross the ReLU kinks.
    values = values_on_line(model, rng, num_points=degree + 12, half_width=4.0)
    scale = np.max(np.abs(values))
    differences = ref.finite_difference(values, degree + 1)
    assert np.max(np.abs(differences)) > 1e-2 * scale
