"""tn_keras.interpret: exact order decompositions and Taylor expansions of whole models.

References are independent of the code under test: the raw weights of a TaylorDense evaluated
monomial by monomial, the Fig. S1 tree's polynomial fitted over every monomial by least
squares (then grouped by degree), a NumPy least-squares fit of the model along a ray at other
nodes, finite differences, and the layer's own `taylor_coefficients()` with the Normalization
folded in by hand.
"""
import re

import keras
import numpy as np
import pytest

from tn_keras import interpret
from tn_keras.interpret.decomposition import evaluate
from tn_keras.interpret.graph import polynomial_part
from tn_keras.interpret.precision import float64_available
from tn_keras.layers import TaylorDense
from test_layers_structure import fig_s1_stack
from test_layers_structure import fit_monomials

# Keras's torch backend multiplies float64 matrices in float32: these comparisons need float64.
NEEDS_FLOAT64 = pytest.mark.skipif(not float64_available(),
                                   reason="this Keras backend computes float64 matmuls in float32")


@pytest.fixture(autouse=True)
def float64_references():
    """The references here are float64 NumPy; under JAX the test's own models must be float64
    too, which needs 64-bit types while they are built (the library enables them itself for
    its float64 copies: `test_float64_copy_without_x64`)."""
    from tn_keras.interpret.precision import float64_scope

    with float64_scope():
        yield


def taylor_dense_model(seed=0, features=5, units=3):
    rng = np.random.default_rng(seed)
    inputs = keras.Input((features,), dtype="float64")
    layer = TaylorDense(units, order=2, dtype="float64")
    model = keras.Model(inputs, layer(inputs))
    for variable in layer.weights:
        variable.assign(rng.normal(size=tuple(variable.shape)))
    return model, layer


def tree_model(seed):
    """The Fig. S1 tree (two order-2 PolyCG) as a functional model on a 2x2 image."""
    first, second = fig_s1_stack(order=2, seed=seed)
    inputs = keras.Input((2, 2, 1), dtype="float64")
    outputs = keras.layers.Flatten(dtype="float64")(second(first(inputs)))
    return keras.Model(inputs, outputs), (first, second)


@pytest.mark.backend_neutral
@NEEDS_FLOAT64
def test_taylor_dense_orders_are_its_weights():
    model, layer = taylor_dense_model()
    x = np.random.default_rng(1).normal(size=(4, 5))
    orders = interpret.order_decomposition(model, x)
    assert orders.shape == (4, 3, 3)
    w = {v.path.split("/")[-1]: np.asarray(keras.ops.convert_to_numpy(v)) for v in layer.weights}
    rows, cols = np.triu_indices(5)
    np.testing.assert_allclose(orders[:, 0], np.broadcast_to(w["bias"], (4, 3)), atol=1e-12)
    np.testing.assert_allclose(orders[:, 1], x @ w["kernel"], rtol=1e-10, atol=1e-12)
    quadratic = (x[:, rows] * x[:, cols]) @ w["quadratic_kernel"]
    np.testing.assert_allclose(orders[:, 2], quadratic, rtol=1e-10, atol=1e-12)


@pytest.mark.backend_neutral
@NEEDS_FLOAT64
def test_fig_s1_tree_orders_match_the_fitted_polynomial():
    model, layers = tree_model(seed=0)
    coefficients = fit_monomials(layers, seed=3)
    points = np.random.default_rng(2).uniform(-1, 1, size=(6, 4))
    expected = np.zeros((6, 5))
    for exponents, c in coefficients.items():
        expected[:, sum(exponents)] += c * np.prod(points ** np.array(exponents), axis=1)
    orders = interpret.order_decomposition(model, points.reshape(6, 2, 2, 1))
    assert interpret.degree(model) == 4
    np.testing.assert_allclose(orders[:, :, 0], expected, rtol=1e-7, atol=1e-9)


@pytest.mark.backend_neutral
@NEEDS_FLOAT64
def test_homogeneity_and_center():
    model, _ = tree_model(seed=1)
    x = np.random.default_rng(4).uniform(-1, 1, size=(3, 2, 2, 1))
    center = np.random.default_rng(5).uniform(-1, 1, size=(2, 2, 1))
    orders = interpret.order_decomposition(model, x, center=center)
    scaled = interpret.order_decomposition(model, center + 0.5 * (x - center), center=center)
    k = np.arange(5)[None, :, None]
    np.testing.assert_allclose(scaled, orders * 0.5 ** k, rtol=1e-8, atol=1e-10)
    values = evaluate(polynomial_part(model)[0], x)
    np.testing.assert_allclose(orders.sum(axis=1), values, rtol=1e-9, atol=1e-10)


@pytest.mark.backend_neutral
@NEEDS_FLOAT64
def test_order_one_gradient_matches_finite_differences():
    model, _ = tree_model(seed=2)
    center = np.random.default_rng(6).uniform(-1, 1, size=(2, 2, 1))
    expansion = interpret.taylor_expansion(model, center, order=2)
    h = 1e-5
    for pixel in np.ndindex(2, 2, 1):
        step = np.zeros((2, 2, 1))
        step[pixel] = h
        plus, minus = (evaluate(polynomial_part(model)[0], (center + s)[None])[0]
                       for s in (step, -step))
        np.testing.assert_allclose(expansion.gradient[(0,) + pixel], (plus - minus)[0] / (2 * h),
                                   rtol=1e-6)
    # The Hessian of a degree-4 polynomial: symmetric, and its diagonal by second differences.
    hessian = expansion.hessian[0]
    np.testing.assert_allclose(hessian, hessian.T, atol=1e-10)
    step = np.zeros((2, 2, 1))
    step[0, 1, 0] = 1e-3
    f = [evaluate(polynomial_part(model)[0], (center + s * step)[None])[0, 0] for s in (-1, 0, 1)]
    np.testing.assert_allclose(hessian[1, 1], (f[0] - 2 * f[1] + f[2]) / 1e-6, rtol=1e-4)


def test_digits_taylornet_against_a_least_squares_fit_along_the_ray():
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.interpret.precision import with_dtype

    model = zoo.load("digits_taylornet", compile=False)
    x = datasets.load("digits", "test")[0][:4].astype(np.float64)
    orders = interpret.order_decomposition(model, x)
    assert orders.shape == (4, 9, 10)
    # Reference: 24 equispaced points on [0, 1.2], NumPy's polyfit, degree 8.
    poly = with_dtype(polynomial_part(model)[0], "float64")
    t = np.linspace(0.0, 1.2, 24)
    for i in range(2):
        values = evaluate(poly, t[:, None, None, None] * x[i][None])
        fitted = np.polynomial.polynomial.polyfit(t, values, 8)  # (9, 10)
        scale = np.abs(fitted).max()
        np.testing.assert_allclose(orders[i], fitted, atol=1e-6 * scale)
    scaled = interpret.order_decomposition(model, 0.5 * x)
    np.testing.assert_allclose(scaled, orders * 0.5 ** np.arange(9)[None, :, None],
                               atol=1e-9 * np.abs(orders).max())


def test_mnist7_taylor_order_two_matches_taylor_coefficients():
    from tn_keras import zoo

    model = zoo.load("mnist7_taylor", compile=False)
    coefficients = model.get_layer("taylor").taylor_coefficients()
    norm = model.get_layer("mnist7x7_normalization").get_config()
    # Keras's Normalization turns its statistics into float32 tensors before casting them to
    # the layer's dtype: the model (and its float64 copy) uses these float32 values.
    mean = float(np.float32(norm["mean"][0]))
    std = np.sqrt(float(np.float32(norm["variance"][0])))
    expansion = interpret.taylor_expansion(model, None, order=2)  # about the zero raw image
    # f = b + W z + z^T T z with z = (x - mean) / std: in raw pixels about x = 0.
    z0 = np.full(49, -mean / std)
    T, W, b = coefficients["order_2"], coefficients["linear"], coefficients["bias"]
    np.testing.assert_allclose(expansion.value, b + W @ z0 + np.einsum("cij,i,j->c", T, z0, z0),
                               rtol=1e-9)
    gradient = (W + 2 * np.einsum("cij,j->ci", T, z0)) / std
    np.testing.assert_allclose(expansion.gradient.reshape(10, 49), gradient, rtol=1e-8,
                               atol=1e-12)
    np.testing.assert_allclose(expansion.quadratic, T / std**2, rtol=1e-8, atol=1e-14)
    # One row of it, as an image.
    row = interpret.pixel_interactions(model, (3, 4), 7, center="zero")
    np.testing.assert_allclose(row.reshape(49), T[7, 3 * 7 + 4] / std**2, rtol=1e-8,
                               atol=1e-14)


def structural_degree(model):
    """The degree from the layer list alone, independent of interpret's graph walk: the product
    of the orders of the polynomial layers, or None with the names of the layers that are not
    polynomial (a ReLU, a max-pooling, an activation other than the final softmax). Every zoo
    TaylorNet chains its polynomial layers (a residual ``z + f(z)`` keeps the chain's degree)."""
    from tn_keras.layers import DilatedPolyCG
    from tn_keras.layers import PolyCG

    not_polynomial = [
        layer.name for layer in model.layers if layer.name != "predictions" and (
            isinstance(layer, (keras.layers.ReLU, keras.layers.MaxPooling2D))
            or getattr(layer, "activation", None) not in (None, keras.activations.linear))]
    if not_polynomial:
        return None, not_polynomial
    return int(np.prod([layer.order for layer in model.layers
                        if isinstance(layer, (PolyCG, DilatedPolyCG, TaylorDense))])), []


def _zoo_names():
    from tn_keras import zoo

    return zoo.list()


@pytest.mark.parametrize("name", _zoo_names())
def test_degree_of_every_zoo_model(name):
    """The degree catalogue.json states for each registered architecture (computed by
    `tn_keras.interpret.degree` when the catalogue is written) is the built model's, by the
    structural count above and by interpret itself; a non-polynomial one is refused by name."""
    from tn_keras import zoo
    from tn_keras.zoo import catalogue

    model = zoo.build(name)
    stated = catalogue.read()[name]["degree"]
    expected, not_polynomial = structural_degree(model)
    assert stated == expected, name
    if expected is not None:
        assert interpret.degree(model) == expected
        return
    first = "|".join(map(re.escape, not_polynomial))
    with pytest.raises(interpret.NotAPolynomialError, match=f"layer '({first})'"):
        interpret.degree(model)
    with pytest.raises(interpret.NotAPolynomialError, match=f"'({first})'"):
        interpret.order_decomposition(model, np.zeros((1,) + model.input_shape[1:]))


@pytest.mark.backend_neutral
@NEEDS_FLOAT64
def test_float64_copy_without_x64():
    """A float32 model, as users build it; dtype="float64" still computes in float64."""
    import contextlib

    no_x64 = contextlib.nullcontext()
    if keras.backend.backend() == "jax":
        import jax

        no_x64 = jax.enable_x64(False)  # undo the fixture: a plain float32 JAX session
    with no_x64:
        inputs = keras.Input((1,))
        model = keras.Model(inputs, keras.layers.Dense(1, use_bias=False,
                                                       kernel_initializer="ones")(inputs))
        x = np.array([[1.0 + 1e-12]])
        orders = interpret.order_decomposition(model, x, center=1.0)
    np.testing.assert_allclose(orders[0, 1, 0], 1e-12, rtol=1e-3)
    np.testing.assert_allclose(orders[0, 0, 0], 1.0, rtol=1e-15)


@pytest.mark.backend_neutral
def test_activation_argument_is_named():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="tanh", name="squash")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    with pytest.raises(interpret.NotAPolynomialError,
                       match="layer 'squash' \\(Dense\\) applies the activation 'tanh'"):
        interpret.degree(model)


@pytest.mark.backend_neutral
def test_degree_follows_the_graph_of_a_sequential_model():
    """A Sequential model's config has no calls: its graph is read through a functional view."""
    model = keras.Sequential([keras.Input((3,)), TaylorDense(2, order=2),
                              keras.layers.Activation("softmax")])
    assert interpret.degree(model) == 2
    assert polynomial_part(model)[1] == 2


@pytest.mark.backend_neutral
def test_a_layer_called_twice_is_refused_by_name():
    dense = keras.layers.Dense(3, name="twice")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, dense(dense(inputs)))
    with pytest.raises(ValueError, match="layer 'twice' is used more than once"):
        interpret.degree(model)


@pytest.mark.backend_neutral
def test_bad_input_gets_a_clear_error():
    model, _ = tree_model(seed=0)
    with pytest.raises(ValueError, match=r"x: expected images of shape \(N,\) \+ \(2, 2, 1\)"):
        interpret.order_decomposition(model, np.zeros((3, 4)))
    bad = np.zeros((2, 2, 2, 1))
    bad[1, 0, 1, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 NaN .* first at index \(1, 0, 1, 0\)"):
        interpret.order_decomposition(model, bad)
    with pytest.raises(ValueError, match="center: expected one image of shape"):
        interpret.order_decomposition(model, np.zeros((1, 2, 2, 1)), center=np.zeros(3))
    with pytest.raises(ValueError, match="order=3: expected 1 or 2"):
        interpret.taylor_expansion(model, None, order=3)
    with pytest.raises(ValueError, match="window=.* outside the image"):
        interpret.taylor_expansion(model, None, window=(0, 3, 0, 1))
    with pytest.raises(ValueError, match="dtype='float16'"):
        interpret.order_decomposition(model, np.zeros((1, 2, 2, 1)), dtype="float16")


def test_full_cifar_hessian_is_refused_with_its_size():
    from tn_keras import zoo

    model = zoo.build("cifar_taylornet")
    with pytest.raises(ValueError, match=r"10 class\(es\) over 3,072 input values needs "
                                         r"720\.0 MiB"):
        interpret.taylor_expansion(model, None, order=2)


@pytest.mark.backend_neutral
@NEEDS_FLOAT64
def test_window_and_classes_restrict_the_hessian():
    model, layer = taylor_dense_model(features=6, units=3)
    full = interpret.taylor_expansion(model, np.ones(6) * 0.3)
    inputs = keras.Input((2, 3), dtype="float64")
    same = TaylorDense(3, order=2, dtype="float64")
    reshaped = keras.Model(inputs, same(keras.layers.Reshape((6,), dtype="float64")(inputs)))
    same.set_weights(layer.get_weights())
    part = interpret.taylor_expansion(reshaped, np.ones((2, 3)) * 0.3, classes=[2],
                                      window=(1, 2, 0, 2))
    np.testing.assert_array_equal(part.pixels, [3, 4])
    np.testing.assert_allclose(part.hessian[0], full.hessian[2][np.ix_([3, 4], [3, 4])],
                               rtol=1e-12)
    # The quadratic part is exactly H / 2 for TaylorDense: its own coefficients.
    np.testing.assert_allclose(full.quadratic, layer.taylor_coefficients()["order_2"],
                               rtol=1e-10, atol=1e-12)


@pytest.mark.slow
@pytest.mark.backend_neutral
def test_interpret_runs_without_tensorflow():
    """Degree, decomposition and Hessian under JAX in a process where TensorFlow is blocked."""
    from _no_tensorflow import stdout_without_tensorflow

    stdout = stdout_without_tensorflow("""
        import keras, numpy as np
        from tn_keras import interpret
        from tn_keras.layers import PolyCG

        inputs = keras.Input((4, 4, 1))
        x = PolyCG(2, order=2)(inputs)
        model = keras.Model(inputs, keras.layers.Flatten()(PolyCG(1, order=2)(x)))
        images = np.random.default_rng(0).uniform(0, 1, (2, 4, 4, 1))
        orders = interpret.order_decomposition(model, images)
        values = np.asarray(model(images.astype("float32")))
        expansion = interpret.taylor_expansion(model, images[0], order=2)
        print("DEGREE", interpret.degree(model), orders.shape, expansion.hessian.shape)
        print("ERROR", float(interpret.reconstruction_error(orders, values).max()))
    """)
    assert "DEGREE 4 (2, 5, 1) (1, 16, 16)" in stdout
    error = float(stdout.split("ERROR")[1].split()[0])
    assert error < 1e-5  # against the float32 model's own output
