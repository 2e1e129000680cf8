"""The layers compute the formulas they document: compared, in float64, with `_numpy_reference`.

Every weight (the bias and the exact quadratic kernel included, whose defaults are zeros) is set
to random values first, so that each term of the expansion contributes to the output.
"""
import itertools

import numpy as np
import pytest

import _numpy_reference as ref
from tn_keras.layers import DilatedPolyCG
from tn_keras.layers import PolyCG
from tn_keras.layers import TaylorDense

# float64 end to end: the only differences are summation orders, ~1e-15 relative.
RTOL = 1e-10


def randomize_weights(layer, rng, scale=0.5):
    """Assign N(0, scale^2) values to every weight of a built layer; return them by name."""
    values = {}
    for variable in layer.weights:
        value = rng.normal(0.0, scale, size=tuple(variable.shape))
        variable.assign(value)
        values[variable.name] = value
    return values


def assert_close(actual, expected, rtol=RTOL):
    """Elementwise closeness relative to the scale of the expected values."""
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape
    scale = max(np.max(np.abs(expected)), 1e-300)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


# ----------------------------------------------------------------------------------------------
# PolyCG / DilatedPolyCG against the NumPy formula
# ----------------------------------------------------------------------------------------------
def _polycg_cases():
    """Every (order, rank) in 1..3 x 1..3 with a random geometry, plus hand-picked edge cases.

    Paddings alternate so that both appear with strides and with dilation; the random sizes come
    from a fixed seed so that a failure is reproducible from its test id.
    """
    cases = []
    for index, (order, rank) in enumerate(itertools.product((1, 2, 3), (1, 2, 3))):
        rng = np.random.default_rng(100 + index)
        kernel = tuple(int(k) for k in rng.integers(1, 4, size=2))
        if index % 3 == 2:  # dilated, stride 1
            strides, dilation = (1, 1), tuple(int(d) for d in rng.integers(1, 4, size=2))
        else:
            strides, dilation = tuple(int(s) for s in rng.integers(1, 4, size=2)), (1, 1)
        cases.append(dict(
            rows=int(rng.integers(5, 10)), cols=int(rng.integers(5, 10)),
            channels=int(rng.integers(1, 4)), filters=int(rng.integers(1, 5)),
            kernel=kernel, strides=strides, dilation=dilation,
            padding=("valid", "same")[index % 2], order=order, rank=rank,
        ))
    # 'same' with an odd total padding (one more site after than before) in both axes.
    cases.append(dict(rows=7, cols=8, channels=2, filters=3, kernel=(2, 4), strides=(2, 3),
                      dilation=(1, 1), padding="same", order=2, rank=2))
    # 'same' with dilation: pad_total = (k - 1) d.
    cases.append(dict(rows=6, cols=7, channels=2, filters=2, kernel=(3, 2), strides=(1, 1),
                      dilation=(2, 3), padding="same", order=3, rank=1))
    # The paper's coarse-graining block: 2x2, stride 2, on an odd-sized map ('valid' drops a row).
    cases.append(dict(rows=9, cols=8, channels=3, filters=4, kernel=(2, 2), strides=(2, 2),
                      dilation=(1, 1), padding="valid", order=2, rank=1))
    return cases


def _case_id(case):
    return (f"o{case['order']}r{case['rank']}-{case['rows']}x{case['cols']}x{case['channels']}"
            f"-k{case['kernel'][0]}{case['kernel'][1]}-s{case['strides'][0]}{case['strides'][1]}"
            f"-d{case['dilation'][0]}{case['dilation'][1]}-{case['padding']}")


POLYCG_CASES = _polycg_cases()


def test_polycg_cases_cover_the_grid():
    """The parametrisation below really spans orders, ranks, paddings, strides and dilations."""
    assert {(c["order"], c["rank"]) for c in POLYCG_CASES} >= set(
        itertools.product((1, 2, 3), (1, 2, 3)))
    assert {c["padding"] for c in POLYCG_CASES} == {"valid", "same"}
    assert any(max(c["strides"]) > 1 for c in POLYCG_CASES)
    assert any(max(c["dilation"]) > 1 for c in POLYCG_CASES)
    assert any(c["kernel"][0] != c["kernel"][1] for c in POLYCG_CASES)


def _run_polycg(case, data_format="channels_last", seed=0, layer_class=PolyCG):
    rng = np.random.default_rng(seed)
    shape = (2, case["rows"], case["cols"], case["channels"])
    x = rng.normal(size=shape)
    if data_format == "channels_first":
        x = np.transpose(x, (0, 3, 1, 2))
    kwargs = dict(kernel_size=case["kernel"], padding=case["padding"], order=case["order"],
                  rank=case["rank"], dilation_rate=case["dilation"], data_format=data_format,
                  dtype="float64")
    if layer_class is PolyCG:
        kwargs["strides"] = case["strides"]
    layer = layer_class(case["filters"], **kwargs)
    layer.build(x.shape)
    weights = randomize_weights(layer, rng)
    actual = np.asarray(layer(x))
    expected = ref.polycg(
        x, weights["kernel"], weights.get("factor_kernel"), weights["bias"], case["order"],
        case["rank"], case["strides"], case["padding"], case["dilation"], data_format,
    )
    assert actual.dtype == np.float64
    assert actual.shape == layer.compute_output_shape(x.shape)
    return layer, x, actual, expected


@pytest.mark.parametrize("case", POLYCG_CASES, ids=_case_id)
def test_polycg_matches_numpy_formula(case):
    _, _, actual, expected = _run_polycg(case)
    assert_close(actual, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_polycg_channels_first_matches_numpy_formula(dtype):
    """channels_first gives the numbers of the formula.

    TensorFlow's eager CPU Conv2D runs NCHW only through oneDNN (float32); for float64 it raises
    UnimplementedError, and the layer is then checked under XLA, which supports NCHW on CPU.
    """
    import tensorflow as tf

    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 3, 7, 6)).astype(dtype)
    layer = PolyCG(2, kernel_size=(2, 3), strides=(2, 1), padding="same", order=2, rank=2,
                   data_format="channels_first", dtype=dtype)
    layer.build(x.shape)
    weights = randomize_weights(layer, rng)
    try:
        actual = np.asarray(layer(x))
    except tf.errors.UnimplementedError as error:
        assert "NHWC" in str(error), error
        try:
            actual = np.asarray(tf.function(layer, jit_compile=True)(x))
        except tf.errors.UnimplementedError as xla_error:  # pragma: no cover - platform
            pytest.skip(f"this CPU build runs NCHW {dtype} convolutions neither eagerly nor "
                        f"under XLA: {xla_error}")
    expected = ref.polycg(x, weights["kernel"], weights["factor_kernel"], weights["bias"], 2, 2,
                          (2, 1), "same", (1, 1), "channels_first")
    assert actual.shape == (2, 2, 4, 6) == layer.compute_output_shape(x.shape)
    rtol = RTOL if dtype == "float64" else 1e-5
    assert_close(actual, expected, rtol=rtol)
    # The coefficients use the same (row, col, channel) patch order whatever the data format.
    patches = ref.extract_patches(x, (2, 3), (2, 1), (1, 1), "same", "channels_first")
    from_coefficients = ref.evaluate_coefficients(layer.taylor_coefficients(), patches)
    assert_close(actual, np.transpose(from_coefficients, (0, 3, 1, 2)), rtol=rtol)


@pytest.mark.parametrize("dilation,padding,order,rank", [
    ((2, 2), "valid", 2, 1), ((4, 1), "valid", 3, 2), ((2, 3), "same", 2, 3), ((1, 1), "valid", 1, 1),
])
def test_dilated_polycg_matches_numpy_formula(dilation, padding, order, rank):
    case = dict(rows=8, cols=8, channels=2, filters=3, kernel=(2, 2), strides=(1, 1),
                dilation=dilation, padding=padding, order=order, rank=rank)
    layer, _, actual, expected = _run_polycg(case, layer_class=DilatedPolyCG)
    assert layer.strides == (1, 1)
    assert_close(actual, expected)


def test_dilated_polycg_is_the_papers_binary_tree():
    """2x2 kernels of dilation 4, 2, 1 ('valid') take an 8x8 map down to one site (Fig. S3)."""
    x = np.random.default_rng(1).normal(size=(1, 8, 8, 2))
    y = DilatedPolyCG(3, dilation_rate=4, dtype="float64")(x)
    assert y.shape == (1, 4, 4, 3)
    y = DilatedPolyCG(3, dilation_rate=2, dtype="float64")(y)
    assert y.shape == (1, 2, 2, 3)
    y = DilatedPolyCG(3, dilation_rate=1, dtype="float64")(y)
    assert y.shape == (1, 1, 1, 3)


def test_order_one_polycg_is_a_convolution():
    """order=1 has no factor weight and equals keras Conv2D with the same kernel and bias."""
    import keras

    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 7, 7, 3))
    layer = PolyCG(4, kernel_size=3, strides=2, padding="same", order=1, dtype="float64")
    layer.build(x.shape)
    weights = randomize_weights(layer, rng)
    assert sorted(weights) == ["bias", "kernel"]
    conv = keras.layers.Conv2D(4, 3, strides=2, padding="same", dtype="float64")
    conv.build(x.shape)
    conv.set_weights([weights["kernel"], weights["bias"]])
    assert_close(layer(x), conv(x))


# ----------------------------------------------------------------------------------------------
# TaylorDense against the NumPy formula
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("input_shape", [(5, 4), (3, 2, 6), (2, 1)], ids=str)
def test_taylor_dense_exact_matches_numpy_formula(input_shape):
    """``b + W x + sum_{i<=j} Q_ij x_i x_j`` with Q set to random values (default: zeros)."""
    rng = np.random.default_rng(len(input_shape) + input_shape[-1])
    x = rng.normal(size=input_shape)
    layer = TaylorDense(3, dtype="float64")
    layer.build(x.shape)
    weights = randomize_weights(layer, rng)
    n = input_shape[-1]
    assert weights["quadratic_kernel"].shape == (n * (n + 1) // 2, 3)
    expected = ref.taylor_dense_exact(x, weights["kernel"], weights["quadratic_kernel"],
                                      weights["bias"])
    assert_close(layer(x), expected)


@pytest.mark.parametrize("order,rank", list(itertools.product((1, 2, 3), (1, 2, 3))))
def test_taylor_dense_cp_matches_numpy_formula(order, rank):
    rng = np.random.default_rng(10 * order + rank)
    x = rng.normal(size=(4, 3, 5))  # rank-3 input: the layer acts on the last axis
    layer = TaylorDense(4, order=order, rank=rank, dtype="float64")
    layer.build(x.shape)
    weights = randomize_weights(layer, rng)
    assert ("factor_kernel" in weights) == (order >= 2)
    expected = ref.taylor_dense_cp(x, weights["kernel"], weights.get("factor_kernel"),
                                   weights["bias"], order, rank)
    assert_close(layer(x), expected)


def test_taylor_dense_without_bias():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 3))
    layer = TaylorDense(2, use_bias=False, dtype="float64")
    layer.build(x.shape)
    weights = randomize_weights(layer, rng)
    assert "bias" not in weights
    expected = ref.taylor_dense_exact(x, weights["kernel"], weights["quadratic_kernel"], None)
    assert_close(layer(x), expected)


# ----------------------------------------------------------------------------------------------
# taylor_coefficients(): the polynomial evaluated from the coefficients is the layer
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [c for c in POLYCG_CASES if c["order"] >= 2][::2] + [
    POLYCG_CASES[0]], ids=_case_id)
def test_polycg_taylor_coefficients_reproduce_output(case):
    layer, x, actual, _ = _run_polycg(case, seed=7)
    coefficients = layer.taylor_coefficients()
    patch_size = case["kernel"][0] * case["kernel"][1] * case["channels"]
    assert sorted(coefficients) == ["bias", "linear"] + [
        f"order_{k}" for k in range(2, case["order"] + 1)]
    for k in range(2, case["order"] + 1):
        tensor = coefficients[f"order_{k}"]
        assert tensor.shape == (case["filters"],) + (patch_size,) * k
        # Symmetric in the patch axes, as documented.
        for permutation in itertools.permutations(range(1, k + 1)):
            np.testing.assert_allclose(np.transpose(tensor, (0,) + permutation), tensor,
                                       atol=1e-12)
    patches = ref.extract_patches(x, case["kernel"], case["strides"], case["dilation"],
                                  case["padding"])
    assert_close(actual, ref.evaluate_coefficients(coefficients, patches))


def test_dilated_polycg_taylor_coefficients_reproduce_output():
    case = dict(rows=7, cols=7, channels=2, filters=2, kernel=(2, 2), strides=(1, 1),
                dilation=(3, 2), padding="same", order=3, rank=2)
    layer, x, actual, _ = _run_polycg(case, seed=8, layer_class=DilatedPolyCG)
    patches = ref.extract_patches(x, case["kernel"], (1, 1), case["dilation"], case["padding"])
    assert_close(actual, ref.evaluate_coefficients(layer.taylor_coefficients(), patches))


def test_taylor_coefficients_max_order_truncates():
    """max_order drops the higher orders and leaves the lower ones unchanged."""
    case = dict(rows=4, cols=4, channels=2, filters=2, kernel=(2, 2), strides=(2, 2),
                dilation=(1, 1), padding="valid", order=3, rank=2)
    layer, *_ = _run_polycg(case)
    full = layer.taylor_coefficients()
    truncated = layer.taylor_coefficients(max_order=2)
    assert sorted(truncated) == ["bias", "linear", "order_2"]
    for key, value in truncated.items():
        np.testing.assert_array_equal(value, full[key])
    assert sorted(layer.taylor_coefficients(max_order=1)) == ["bias", "linear"]


def test_taylor_dense_exact_coefficients_are_the_monomial_weights():
    """order_2[u, i, i] = Q_(ii)u and 2 order_2[u, i, j] = Q_(ij)u (i < j), and they evaluate
    to the layer."""
    rng = np.random.default_rng(11)
    n, units = 5, 3
    x = rng.normal(size=(7, n))
    layer = TaylorDense(units, dtype="float64")
    layer.build(x.shape)
    weights = randomize_weights(layer, rng)
    coefficients = layer.taylor_coefficients()
    np.testing.assert_array_equal(coefficients["linear"], weights["kernel"].T)
    np.testing.assert_array_equal(coefficients["bias"], weights["bias"])
    tensor = coefficients["order_2"]
    np.testing.assert_allclose(tensor, np.transpose(tensor, (0, 2, 1)), atol=0)
    row = 0
    for i in range(n):
        for j in range(i, n):
            monomial_weight = tensor[:, i, j] * (1 if i == j else 2)
            np.testing.assert_allclose(monomial_weight, weights["quadratic_kernel"][row],
                                       rtol=1e-14)
            row += 1
    assert_close(layer(x), ref.evaluate_coefficients(coefficients, x))


@pytest.mark.parametrize("order,rank", [(1, 2), (2, 1), (2, 3), (3, 1), (3, 2)])
def test_taylor_dense_cp_coefficients_reproduce_output(order, rank):
    rng = np.random.default_rng(20 + 3 * order + rank)
    x = rng.normal(size=(6, 4))
    layer = TaylorDense(3, order=order, rank=rank, dtype="float64")
    layer.build(x.shape)
    randomize_weights(layer, rng)
    coefficients = layer.taylor_coefficients()
    assert sorted(coefficients) == ["bias", "linear"] + [
        f"order_{k}" for k in range(2, order + 1)]
    assert_close(layer(x), ref.evaluate_coefficients(coefficients, x))


# ----------------------------------------------------------------------------------------------
# The reference itself: its patch extraction agrees with a plain Conv2D
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel,strides,dilation,padding", [
    ((3, 2), (2, 3), (1, 1), "same"), ((2, 3), (1, 1), (3, 2), "same"),
    ((3, 3), (3, 2), (1, 1), "valid"), ((2, 2), (1, 1), (2, 1), "valid"),
])
def test_reference_patches_agree_with_keras_conv2d(kernel, strides, dilation, padding):
    """Guards the reference: patches @ kernel is what Conv2D computes (same padding rule)."""
    import keras

    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 8, 7, 2))
    conv = keras.layers.Conv2D(3, kernel, strides=strides, dilation_rate=dilation,
                               padding=padding, use_bias=False, dtype="float64")
    expected = np.asarray(conv(x))
    patches = ref.extract_patches(x, kernel, strides, dilation, padding)
    actual = patches @ np.asarray(conv.kernel).reshape(-1, 3)
    assert_close(actual, expected)
