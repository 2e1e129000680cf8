"""Expansions about a point (``about=``) and the share of each order (``order_share``).

References are independent of the code under test: closed forms of small hand-built
polynomials evaluated in float64 NumPy, the binomial identity against the expansion about the
zero image, and NumPy means of the training images.
"""
import math

import keras
import numpy as np
import pytest

from tn_keras import interpret
from tn_keras.interpret.precision import float64_available

NEEDS_FLOAT64 = pytest.mark.skipif(not float64_available(),
                                   reason="this Keras backend computes float64 matmuls in float32")
pytestmark = [pytest.mark.backend_neutral, NEEDS_FLOAT64]


@pytest.fixture(autouse=True)
def float64_models():
    from tn_keras.interpret.precision import float64_scope

    with float64_scope():
        yield


def _dense(units, weights, bias=None, name=None):
    layer = keras.layers.Dense(units, use_bias=bias is not None, dtype="float64", name=name)
    layer.build((None, weights.shape[0]))
    layer.set_weights([weights] + ([bias] if bias is not None else []))
    return layer


def power_model(w, b, power, shape=(2, 2, 1)):
    """``f(x) = (w . x + b)^power``, one output: a Dense, then a Multiply of its copies."""
    inputs = keras.Input(shape, dtype="float64")
    flat = keras.layers.Flatten(dtype="float64")(inputs)
    z = _dense(1, w.reshape(-1, 1), np.array([b]))(flat)
    out = keras.layers.Multiply(dtype="float64")([z] * power) if power > 1 else z
    return keras.Model(inputs, out)


def graded_model(seed=0, features=4, outputs=2):
    """``f_c(x) = b_c + (W x)_c + (U x)_c (V x)_c + (P x)_c (Q x)_c (R x)_c``: orders 0..3 are
    exactly these four terms about the zero image. Returns the model and its NumPy orders."""
    rng = np.random.default_rng(seed)
    mats = {k: rng.normal(size=(features, outputs)) for k in "WUVPQR"}
    b = rng.normal(size=outputs)
    inputs = keras.Input((features,), dtype="float64")
    d = {k: _dense(outputs, m, b if k == "W" else None)(inputs) for k, m in mats.items()}
    quad = keras.layers.Multiply(dtype="float64")([d["U"], d["V"]])
    cubic = keras.layers.Multiply(dtype="float64")([d["P"], d["Q"], d["R"]])
    model = keras.Model(inputs, keras.layers.Add(dtype="float64")([d["W"], quad, cubic]))

    def orders(x):
        m = {k: x @ v for k, v in mats.items()}
        return np.stack([np.broadcast_to(b, m["W"].shape), m["W"], m["U"] * m["V"],
                         m["P"] * m["Q"] * m["R"]], axis=1)

    return model, orders


def test_about_a_point_is_the_binomial_expansion_of_a_power():
    """f = (w.x + b)^n: f(x0 + d) = sum_k C(n, k) (w.x0 + b)^(n-k) (w.d)^k."""
    rng = np.random.default_rng(0)
    w, b, n = rng.normal(size=4), 0.3, 5
    model = power_model(w, b, n)
    x0, x = rng.uniform(-1, 1, (2, 2, 1)), rng.uniform(-1, 1, (3, 2, 2, 1))
    orders = interpret.order_decomposition(model, x, about=x0)
    base, step = w @ x0.reshape(-1) + b, x.reshape(3, -1) @ w - w @ x0.reshape(-1)
    expected = np.stack([math.comb(n, k) * base ** (n - k) * step ** k for k in range(n + 1)],
                        axis=1)
    np.testing.assert_allclose(orders[:, :, 0], expected, rtol=1e-9, atol=1e-12)
    # The orders add up to f(x) in float64.
    np.testing.assert_allclose(orders.sum(axis=1)[:, 0], (x.reshape(3, -1) @ w + b) ** n,
                               rtol=1e-12)


def test_about_a_point_against_the_expansion_about_zero():
    """Any polynomial, x = (1 + s) x0: f_k about x0 is s^k sum_j C(j, k) h_j(x0), with h_j the
    orders of x0 about the zero image (the coefficient of t^k in sum_j h_j(x0) (1 + t)^j)."""
    from tn_keras.layers import PolyCG

    rng = np.random.default_rng(1)
    inputs = keras.Input((2, 2, 1), dtype="float64")
    hidden = PolyCG(2, (1, 2), strides=(1, 2), order=2, dtype="float64")(inputs)
    out = PolyCG(3, (2, 1), strides=(2, 1), order=2, dtype="float64")(hidden)
    model = keras.Model(inputs, keras.layers.Flatten(dtype="float64")(out))
    for variable in model.weights:
        variable.assign(rng.uniform(-1, 1, tuple(variable.shape)))
    x0, s = rng.uniform(-1, 1, (4, 2, 2, 1)), 0.7
    about_zero = interpret.order_decomposition(model, x0, about="zero")
    about_x0 = interpret.order_decomposition(model, (1 + s) * x0, about=x0)
    degree = about_zero.shape[1] - 1
    binomial = np.array([[math.comb(j, k) * s ** k for j in range(degree + 1)]
                         for k in range(degree + 1)])
    expected = np.einsum("kj,njc->nkc", binomial, about_zero)
    np.testing.assert_allclose(about_x0, expected, rtol=1e-9,
                               atol=1e-12 * np.abs(about_zero).sum())
    # ... and they add up to f((1 + s) x0) in float64.
    value = np.asarray(model((1 + s) * x0))
    np.testing.assert_allclose(about_x0.sum(axis=1), value, rtol=1e-12)


def test_center_is_an_alias_of_about_and_not_both():
    model = power_model(np.ones(4), 0.0, 2)
    x = np.full((1, 2, 2, 1), 2.0)
    np.testing.assert_array_equal(interpret.order_decomposition(model, x, center=1.0),
                                  interpret.order_decomposition(model, x, about=1.0))
    e1 = interpret.taylor_expansion(model, 1.0, order=1)  # positional: the former name
    e2 = interpret.taylor_expansion(model, about=1.0, order=1)
    np.testing.assert_array_equal(e1.gradient, e2.gradient)
    with pytest.raises(ValueError, match="about= and center= name the same expansion point"):
        interpret.order_decomposition(model, x, center=1.0, about=1.0)
    with pytest.raises(ValueError, match="about= and center= name the same expansion point"):
        interpret.taylor_expansion(model, 1.0, about="mean")


def test_mean_and_class_mean_are_the_training_means():
    rng = np.random.default_rng(2)
    w = rng.normal(size=4)
    model = power_model(w, 0.5, 3)
    images = rng.uniform(0, 1, (12, 2, 2, 1))
    labels = np.arange(12) % 3
    x = rng.uniform(0, 1, (3, 2, 2, 1))
    mean = images.mean(axis=0)
    orders = interpret.order_decomposition(model, x, about="mean", data=images)
    np.testing.assert_allclose(orders[:, 0, 0], (w @ mean.reshape(-1) + 0.5) ** 3, rtol=1e-12)
    # class_mean with given labels: image n about the mean training image of labels[n].
    given = np.array([2, 0, 1])
    orders = interpret.order_decomposition(model, x, about="class_mean", data=(images, labels),
                                           labels=given)
    points = np.stack([images[labels == c].mean(axis=0) for c in given])
    np.testing.assert_allclose(orders[:, 0, 0], (points.reshape(3, -1) @ w + 0.5) ** 3,
                               rtol=1e-12)
    np.testing.assert_allclose(orders.sum(axis=1)[:, 0], (x.reshape(3, -1) @ w + 0.5) ** 3,
                               rtol=1e-12)
    # taylor_expansion about one class's mean: value f(mu_c), gradient 3 (w.mu_c + b)^2 w.
    e = interpret.taylor_expansion(model, about="class_mean", data=(images, labels), label=1,
                                   order=1)
    mu = images[labels == 1].mean(axis=0).reshape(-1)
    np.testing.assert_allclose(e.center.reshape(-1), mu, rtol=1e-15)
    np.testing.assert_allclose(e.gradient.reshape(-1), 3 * (w @ mu + 0.5) ** 2 * w, rtol=1e-12)


def test_class_mean_defaults_to_the_predicted_class():
    model, numpy_orders = graded_model(seed=3)
    rng = np.random.default_rng(3)
    images, labels = rng.normal(size=(20, 4)), np.arange(20) % 2
    x = rng.normal(size=(5, 4))
    predicted = np.argmax(numpy_orders(x).sum(axis=1), axis=1)
    points = np.stack([images[labels == c].mean(axis=0) for c in predicted])
    orders = interpret.order_decomposition(model, x, about="class_mean", data=(images, labels))
    np.testing.assert_allclose(orders[:, 0], numpy_orders(points).sum(axis=1), rtol=1e-12)


def test_about_errors_are_one_clear_line():
    model = power_model(np.ones(4), 0.0, 2)
    x = np.zeros((2, 2, 2, 1))
    with pytest.raises(ValueError, match=r"about='median': expected 'zero', 'mean', "
                                         r"'class_mean', None, a number or an image"):
        interpret.order_decomposition(model, x, about="median")
    with pytest.raises(ValueError, match="center='median': expected 'zero'"):
        interpret.order_decomposition(model, x, center="median")
    with pytest.raises(ValueError, match="about='mean' needs the training images: model "
                                         ".* is not a zoo model, so pass data="):
        interpret.order_decomposition(model, x, about="mean")
    with pytest.raises(ValueError, match="about='class_mean' needs the training labels"):
        interpret.order_decomposition(model, x, about="class_mean", data=np.zeros((3, 2, 2, 1)))
    with pytest.raises(ValueError, match=r"labels: class\(es\) \[7\] have no training images"):
        interpret.order_decomposition(model, x, about="class_mean", labels=[0, 7],
                                      data=(np.zeros((2, 2, 2, 1)), [0, 1]))
    with pytest.raises(ValueError, match="data: training images of shape \\(3, 3, 1\\), but "
                                         "the model takes \\(2, 2, 1\\)"):
        interpret.order_decomposition(model, x, about="mean", data=np.zeros((2, 3, 3, 1)))
    with pytest.raises(ValueError, match=r"about: expected one image of shape \(2, 2, 1\)"):
        interpret.order_decomposition(model, x, about=np.zeros((3, 2, 2, 1)))
    two_outputs, _ = graded_model()
    with pytest.raises(ValueError, match="about='class_mean' without images needs label="):
        interpret.taylor_expansion(two_outputs, about="class_mean", order=1,
                                   data=(np.zeros((2, 4)), [0, 1]))


def test_zoo_model_mean_comes_from_its_dataset():
    """digits ships with tn_keras: about="mean" of a digits model needs no data=."""
    from tn_keras import datasets
    from tn_keras.interpret.decomposition import expansion_points

    shape = datasets.info("digits").image_shape
    inputs = keras.Input(shape, dtype="float64")
    flat = keras.layers.Flatten(dtype="float64")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2, dtype="float64")(flat),
                        name="digits_taylornet")  # a zoo name: its dataset is digits
    train, _ = datasets.load("digits", "train")
    x = train[:2].astype(np.float64)
    points = expansion_points(model, x, about="mean")
    np.testing.assert_allclose(points[0], train.astype(np.float64).mean(axis=0), rtol=1e-15)


def test_order_share_on_known_orders():
    model, numpy_orders = graded_model(seed=4)
    x = np.random.default_rng(4).normal(size=(6, 4))
    share = interpret.order_share(model, x)
    reference = numpy_orders(x)  # (N, 4 orders, 2 outputs), independent of the library
    target = np.argmax(reference.sum(axis=1), axis=1)
    a = reference[np.arange(6), :, target]
    np.testing.assert_array_equal(share.targets, target)
    np.testing.assert_allclose(share.orders, a, rtol=1e-9, atol=1e-12)
    magnitude = np.abs(a)
    np.testing.assert_allclose(share.cumulative,
                               np.cumsum(magnitude, axis=1) / magnitude.sum(1, keepdims=True),
                               rtol=1e-9)
    np.testing.assert_allclose(share.pooled,
                               np.cumsum(magnitude.sum(axis=0)) / magnitude.sum(), rtol=1e-9)
    np.testing.assert_allclose(share.cancellation,
                               magnitude.sum(axis=1) / np.abs(a.sum(axis=1)), rtol=1e-9)
    assert share.pooled[-1] == pytest.approx(1.0)
    summary = share.summary()
    assert set(summary) == {f"{m}share_orders_le_{k}" for m in ("", "median_") for k in range(3)
                            } | {"median_cancellation"}
    assert summary["median_share_orders_le_1"] == pytest.approx(
        np.median(np.cumsum(magnitude, axis=1)[:, 1] / magnitude.sum(axis=1)))
    assert summary["median_cancellation"] == pytest.approx(np.median(share.cancellation))
    # A given target (the labels) picks that output.
    labels = 1 - target
    other = interpret.order_share(model, x, target=labels)
    np.testing.assert_allclose(other.orders, reference[np.arange(6), :, labels], rtol=1e-9,
                               atol=1e-12)
    with pytest.raises(ValueError, match="target='true': expected 'predicted'"):
        interpret.order_share(model, x, target="true")
    with pytest.raises(ValueError, match="target: expected 6 output indices in 0..1"):
        interpret.order_share(model, x, target=[0, 1])


def test_order_share_of_a_pure_power_is_one_order():
    """(w.x)^3 about zero: all of it in order 3, no cancellation."""
    model = power_model(np.arange(1.0, 5.0), 0.0, 3)
    share = interpret.order_share(model, np.ones((2, 2, 2, 1)), target=0)
    np.testing.assert_allclose(share.cumulative, [[0, 0, 0, 1]] * 2, atol=1e-9)
    np.testing.assert_allclose(share.cancellation, 1.0, rtol=1e-9)


def test_hessian_vector_product_is_the_hessian_times_the_vector():
    model, _ = graded_model(seed=5)
    rng = np.random.default_rng(5)
    x0, v = rng.normal(size=4), rng.normal(size=4)
    hessian = interpret.taylor_expansion(model, about=x0, classes=[1]).hessian[0]
    np.testing.assert_allclose(interpret.hessian_vector_product(model, v, 1, about=x0),
                               hessian @ v, rtol=1e-12)


def test_low_order_parts_images_sum_to_their_orders():
    """docs/interpretation.md's figure: sum_i g_i d_i = f_1, sum_i d_i (H d)_i / 2 = f_2, and
    the parts add up to f(x): against the NumPy orders of the graded model about zero."""
    from tn_keras.figures.parts import low_order_parts

    model, numpy_orders = graded_model(seed=6)
    x = np.random.default_rng(6).normal(size=4)
    reference = numpy_orders(x[None])[0]  # (4 orders, 2 outputs)
    parts = low_order_parts(model, x, about="zero", class_=1)
    np.testing.assert_allclose(parts.orders, reference[:, 1], rtol=1e-9, atol=1e-12)
    assert parts.linear.sum() == pytest.approx(reference[1, 1], rel=1e-12)
    assert parts.quadratic.sum() == pytest.approx(reference[2, 1], rel=1e-12)
    assert parts.rest == pytest.approx(reference[3, 1], rel=1e-9)
    assert parts.value == pytest.approx(reference[:, 1].sum(), rel=1e-12)
    # About a class mean: the point is that class's mean training image.
    images, labels = np.random.default_rng(7).normal(size=(10, 4)), np.arange(10) % 2
    parts = low_order_parts(model, x, class_=0, data=(images, labels))
    np.testing.assert_allclose(parts.point, images[labels == 0].mean(axis=0), rtol=1e-15)
    assert parts.value == pytest.approx(reference[:, 0].sum(), rel=1e-12)
    assert parts.linear.sum() == pytest.approx(parts.orders[1], rel=1e-9)
    assert parts.quadratic.sum() == pytest.approx(parts.orders[2], rel=1e-9)
