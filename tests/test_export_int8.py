"""BatchNormalization folding and quantile activation ranges for int8 TFLite (synthetic data)."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tn_keras.export import TFLiteModel
from tn_keras.export import export
from tn_keras.export import saved_model as saved_model_lib
from tn_keras.export import tflite as tflite_lib
from tn_keras.export.activation_ranges import ActivationRanges
from tn_keras.export.activation_ranges import search_quantile
from tn_keras.export.folding import fold_batch_normalization
from tn_keras.layers import DilatedPolyCG
from tn_keras.layers import PolyCG
from tn_keras.layers import TaylorDense


def _randomise_batch_norms(model, seed=0):
    """Give every BatchNormalization far-from-identity statistics, as after training."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.moving_mean.shape[0]
            values = {"gamma": rng.uniform(-2, 2, n), "beta": rng.normal(0, 1, n),
                      "moving_mean": rng.normal(0, 3, n),
                      "moving_variance": rng.uniform(0.01, 50, n)}
            for weight in layer.weights:
                weight.assign(values[weight.name])


def _polynomial_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = PolyCG(6, order=3, rank=2, name="cg1")(x)
    x = keras.layers.BatchNormalization(name="cg1_bn")(x)
    x = DilatedPolyCG(5, dilation_rate=2, use_bias=False, name="dicg")(x)
    x = keras.layers.BatchNormalization(center=False, name="dicg_bn")(x)
    x = keras.layers.Flatten()(x)
    x = TaylorDense(7, order=2, rank=None, name="exact")(x)
    x = keras.layers.BatchNormalization(scale=False, name="exact_bn")(x)
    x = TaylorDense(4, order=2, rank=3, name="factored")(x)
    outputs = keras.layers.BatchNormalization(name="factored_bn")(x)
    model = keras.Model(inputs, outputs)
    _randomise_batch_norms(model, seed)
    return model


def test_folded_model_computes_the_same_function():
    model = _polynomial_model()
    folded, record = fold_batch_normalization(model)
    assert [r["layer"] for r in record] == ["cg1", "dicg", "exact", "factored"]
    assert not [l for l in folded.layers if isinstance(l, keras.layers.BatchNormalization)]
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 3)).astype("float32")
    want = np.asarray(model(x, training=False), np.float64)
    got = np.asarray(folded(x, training=False), np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    # The original model is untouched.
    assert np.allclose(np.asarray(model(x, training=False)), want)


def test_folded_factors_have_equal_norms_per_unit():
    model = _polynomial_model()
    folded, _ = fold_batch_normalization(model)
    layer = folded.get_layer("cg1")  # order 3, rank 2: terms of 2, 2, 3 and 3 factors
    units = layer.filters
    pieces = np.asarray(layer.factor_kernel).reshape(-1, layer.num_factors, units)
    norms = np.linalg.norm(pieces, axis=0)  # (pieces, units)
    for start, k in ((0, 2), (2, 2), (4, 3), (7, 3)):
        term = norms[start:start + k]
        np.testing.assert_allclose(term, np.broadcast_to(term[:1], term.shape), rtol=1e-5)


def test_batch_norm_feeding_two_layers_or_after_a_conv_is_left_alone():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((4, 4, 2))
    a = PolyCG(3, name="shared_output")(inputs)
    b = keras.layers.BatchNormalization(name="bn_a")(a)
    c = keras.layers.Conv2D(3, 1, name="conv")(a)  # `a` also feeds this conv
    d = keras.layers.BatchNormalization(name="bn_conv")(c)
    model = keras.Model(inputs, keras.layers.Add()([b, d]))
    folded, record = fold_batch_normalization(model)
    assert record == [] and folded is model


def test_nothing_to_fold_returns_the_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert fold_batch_normalization(model) == (model, [])


def _images(shape, n, seed):
    return np.random.default_rng(seed).uniform(0, 255, (n,) + shape).astype("float32")


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = PolyCG(4, name="cg")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    folder = str(tmp_path_factory.mktemp("sm") / "sm")
    saved_model_lib.write_saved_model(model, folder, batch_size=1)
    images = _images((6, 6, 1), 40, seed=2)
    return model, folder, images, tflite_lib.calibrate_int8(folder, images, (1.0, 0.99, 0.9))


@pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors")
def test_quantile_ranges_are_the_quantiles_of_each_tensor(calibrated):
    from ai_edge_litert.interpreter import Interpreter
    from tensorflow.lite.tools import flatbuffer_utils

    _, _, images, ranges = calibrated
    # An independent pass over the calibrated float model: every value of every tensor.
    interpreter = Interpreter(model_content=ranges.calibrated,
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(ranges.calibrated))
    tensors = model.subgraphs[0].tensors
    measured = [i for i, t in enumerate(tensors)
                if t.quantization is not None and t.quantization.min is not None
                and len(t.quantization.min) == 1 and i not in model.subgraphs[0].inputs]
    assert measured
    values = {i: [] for i in measured}
    for k in range(len(images)):
        interpreter.set_tensor(index, images[k:k + 1])
        interpreter.invoke()
        for i in measured:
            values[i].append(interpreter.get_tensor(i).ravel())
    for i in measured:  # these tensors are small enough to be used whole
        v = np.concatenate(values[i])
        low, high = np.quantile(v, [0.1, 0.9])
        assert ranges._bounds[0.9][i] == pytest.approx((min(low, 0), max(high, 0)), rel=1e-5)
        # q = 1 keeps the calibrator's own record.
        assert ranges._bounds[1.0][i] == (tensors[i].quantization.min[0],
                                          tensors[i].quantization.max[0])


def test_quantile_one_is_tflites_own_int8(calibrated):
    _, folder, images, ranges = calibrated
    own = TFLiteModel(tflite_lib.convert_saved_model(folder, "int8", images))
    ours = TFLiteModel(ranges.quantise(1.0, tf.int8, tf.int8))
    x = _images((6, 6, 1), 10, seed=5)
    np.testing.assert_array_equal(ours.predict(x), own.predict(x))
    assert ours.output_quantization == own.output_quantization


def test_search_keeps_the_least_criterion_and_breaks_ties_towards_less_clipping(calibrated):
    _, _, _, ranges = calibrated
    scores = iter([{"error": 0.5, "other": 1.0}, {"error": 0.2, "other": 0.0},
                   {"error": 0.2, "other": 2.0}])
    quantile, flatbuffer, table = search_quantile(ranges, lambda fb: next(scores), tf.int8,
                                                  tf.int8, criterion="error")
    assert quantile == 0.99
    assert table == {"1.0": {"error": 0.5, "other": 1.0}, "0.99": {"error": 0.2, "other": 0.0},
                     "0.9": {"error": 0.2, "other": 2.0}}
    assert TFLiteModel(flatbuffer).quantized


def test_search_names_a_missing_criterion(calibrated):
    _, _, _, ranges = calibrated
    with pytest.raises(KeyError, match="'error'"):
        search_quantile(ranges, lambda fb: {"other": 1.0}, tf.int8, tf.int8, criterion="error")


def test_unprepared_or_invalid_quantiles_are_refused(calibrated):
    _, _, images, ranges = calibrated
    with pytest.raises(ValueError, match="0.5"):
        ranges.quantise(0.5, tf.int8, tf.int8)
    with pytest.raises(ValueError, match=r"\(0.5, 1\]"):
        ActivationRanges(ranges.calibrated, images, (0.4,))


def test_export_records_the_chosen_ranges_and_folds(tmp_path):
    model = _polynomial_model()
    path = str(tmp_path / "m.tflite")
    manifest = export(model, path, format="tflite_int8",
                      representative_data=_images((8, 8, 3), 30, seed=3))
    ranges = manifest["quantization"]["calibration"]["activation_ranges"]
    candidates = ranges["candidates"]
    assert set(candidates) == {"1.0", "0.99999", "0.9999", "0.9995", "0.999", "0.9985",
                               "0.998", "0.995"}
    errors = {q: figures["mean_squared_error"] for q, figures in candidates.items()}
    assert errors[str(ranges["quantile"])] == min(errors.values())
    assert all(0 <= figures["top1_agreement"] <= 1 for figures in candidates.values())
    assert [t["layer"] for t in manifest["graph_transforms"]] == ["cg1", "dicg", "exact",
                                                                  "factored"]
    fixed = export(model, str(tmp_path / "fixed.tflite"), format="tflite_int8",
                   representative_data=_images((8, 8, 3), 30, seed=3), activation_quantile=0.999,
                   fold_batch_norm=False)
    assert fixed["quantization"]["calibration"]["activation_ranges"]["quantile"] == 0.999
    assert fixed["graph_transforms"] == []


@pytest.mark.parametrize("bad", [0.5, 1.5, "best", None, True])
def test_bad_activation_quantile_is_refused_before_any_work(bad, tmp_path):
    model = _polynomial_model()
    with pytest.raises(ValueError, match="activation_quantile"):
        export(model, str(tmp_path / "m.tflite"), format="tflite_int8",
               representative_data=_images((8, 8, 3), 4, seed=3), activation_quantile=bad)
    assert not list(tmp_path.iterdir())


def test_folded_float_tflite_matches_the_unfolded_keras_model(tmp_path):
    model = _polynomial_model()
    manifest = export(model, str(tmp_path / "f.tflite"), format="tflite")
    assert manifest["parity_check"]["max_abs_diff"] <= manifest["parity_check"]["atol"]
    x = np.random.default_rng(4).normal(size=(3, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(TFLiteModel(str(tmp_path / "f.tflite")).predict(x),
                               np.asarray(model(x, training=False)), rtol=1e-4,
                               atol=1e-4 * float(np.abs(model(x, training=False)).max()))
