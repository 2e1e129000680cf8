"""Folding the input Normalization into the first Conv2D (synthetic data)."""
import keras
import numpy as np
import pytest

from tn_keras.export import TFLiteModel
from tn_keras.export import export
from tn_keras.export.input_folding import MeanPadding
from tn_keras.export.input_folding import fold_input_normalization

MEAN = [120.5, 99.25, 140.0]
STD = [60.0, 45.5, 70.25]


def _model(padding="same", strides=1, dilation_rate=1, kernel_size=3, use_bias=False,
           size=(9, 10), seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input(size + (3,), name="image")
    x = keras.layers.Normalization(mean=MEAN, variance=[s * s for s in STD], name="norm")(inputs)
    x = keras.layers.Conv2D(4, kernel_size, strides=strides, padding=padding,
                            dilation_rate=dilation_rate, use_bias=use_bias, name="conv")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="head")(x)
    model = keras.Model(inputs, outputs)
    if use_bias:
        conv = model.get_layer("conv")
        conv.bias.assign(np.random.default_rng(seed).normal(size=4))
    return model


def _images(shape, n=6, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (n,) + tuple(shape)).astype("float32")


def _conv_output(model, x):
    return np.asarray(keras.Model(model.input, model.get_layer("conv").output)(x), np.float64)


@pytest.mark.parametrize("padding,strides,dilation_rate,kernel_size,use_bias,size", [
    ("same", 1, 1, 3, False, (9, 10)),
    ("same", 2, 1, 3, True, (9, 10)),   # odd rows: TensorFlow pads one extra row at the end
    ("same", 2, 1, 2, False, (8, 8)),   # even kernel: the padding is asymmetric
    ("same", 1, 2, 3, True, (9, 9)),
    ("valid", 1, 1, 3, True, (9, 10)),
    ("valid", 2, 1, 2, False, (8, 9)),
])
def test_folded_model_computes_the_same_function(padding, strides, dilation_rate,
                                                  kernel_size, use_bias, size):
    model = _model(padding, strides, dilation_rate, kernel_size, use_bias, size)
    folded, record = fold_input_normalization(model)
    assert record == [{"layer": "conv", "normalization": "norm",
                       "padding_layer": "conv_mean_padding"}]
    assert not [l for l in folded.layers if isinstance(l, keras.layers.Normalization)]
    assert folded.get_layer("conv").padding == "valid"
    x = _images(size + (3,))
    # The convolution's output itself, not only the softmax (which could hide differences).
    np.testing.assert_allclose(_conv_output(folded, x), _conv_output(model, x),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(folded(x), model(x), atol=1e-6)


def test_mean_padding_pads_each_channel_with_its_value():
    layer = MeanPadding(((1, 2), (0, 1)), [1.5, -2.0])
    x = np.arange(2 * 3 * 2 * 2, dtype="float32").reshape(2, 3, 2, 2)
    got = np.asarray(layer(x))
    want = np.empty((2, 6, 3, 2), "float32")
    want[...] = np.array([1.5, -2.0], "float32")
    want[:, 1:4, 0:2] = x
    np.testing.assert_array_equal(got, want)
    assert layer.compute_output_shape((None, 3, 2, 2)) == (None, 6, 3, 2)
    clone = MeanPadding.from_config(layer.get_config())
    np.testing.assert_array_equal(np.asarray(clone(x)), want)


def test_mean_padding_names_a_channel_mismatch_or_unknown_size():
    with pytest.raises(ValueError, match="2 values for an input with 3 channels"):
        MeanPadding(((1, 1), (1, 1)), [0.0, 1.0])(np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"known image size.*\(None, None, None, 2\)"):
        MeanPadding(((1, 1), (1, 1)), [0.0, 1.0])(keras.Input((None, None, 2)))


def test_normalization_that_is_not_foldable_is_left_alone():
    inputs = keras.Input((6, 6, 3))
    normalised = keras.layers.Normalization(mean=MEAN, variance=STD)(inputs)
    a = keras.layers.Conv2D(2, 3)(normalised)
    b = keras.layers.Conv2D(2, 3)(normalised)  # the normalised image feeds two layers
    two_consumers = keras.Model(inputs, keras.layers.Add()([a, b]))
    assert fold_input_normalization(two_consumers) == (two_consumers, [])

    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Normalization(mean=MEAN, variance=STD)(inputs)
    x = keras.layers.DepthwiseConv2D(3)(x)  # not a Conv2D
    depthwise = keras.Model(inputs, x)
    assert fold_input_normalization(depthwise) == (depthwise, [])

    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Rescaling(2.0)(inputs)  # the Normalization does not read the input
    x = keras.layers.Normalization(mean=MEAN, variance=STD)(x)
    not_on_input = keras.Model(inputs, keras.layers.Conv2D(2, 3)(x))
    assert fold_input_normalization(not_on_input) == (not_on_input, [])


def test_int8_export_keeps_the_padded_pixels_exact(tmp_path):
    from tensorflow.lite.tools import flatbuffer_utils

    model = _model(use_bias=True)
    path = str(tmp_path / "m.tflite")
    manifest = export(model, path, format="tflite_int8",
                      representative_data=_images((9, 10, 3), n=40, seed=3))
    assert {"transform": "input_normalization_folded", "layer": "conv", "normalization": "norm",
            "padding_layer": "conv_mean_padding"} in manifest["graph_transforms"]
    with open(path, "rb") as f:
        flatbuffer = flatbuffer_utils.read_model_from_bytearray(bytearray(f.read()))
    tensors = flatbuffer.subgraphs[0].tensors
    # The PAD and ADD outputs (not the constant border, which int8 holds at its own scale).
    padding = [t for t in tensors if b"conv_mean_padding" in t.name
               and t.name.rsplit(b"/", 1)[-1] in (b"Pad", b"Add")]
    assert len(padding) == 2, [t.name for t in tensors]
    for tensor in padding:
        # The raw input's quantisation: one integer step per pixel, 0 at -128.
        assert list(tensor.quantization.scale) == [1.0], tensor.name
        assert list(tensor.quantization.zeroPoint) == [-128], tensor.name
    x = _images((9, 10, 3), n=20, seed=4)
    agreement = np.mean(TFLiteModel(path).predict(x).argmax(-1) == model.predict(
        x, verbose=0).argmax(-1))
    assert agreement >= 0.9


def test_float_export_of_a_folded_model_matches_keras(tmp_path):
    model = _model(padding="same", strides=2, use_bias=True)
    path = str(tmp_path / "m.tflite")
    manifest = export(model, path, format="tflite")  # raises ParityError beyond 1e-4
    assert [t["transform"] for t in manifest["graph_transforms"]] == [
        "input_normalization_folded"]
    unfolded = str(tmp_path / "unfolded.tflite")
    manifest = export(model, unfolded, format="tflite", fold_normalization=False)
    assert manifest["graph_transforms"] == []
    x = _images((9, 10, 3), n=4, seed=5)
    np.testing.assert_allclose(TFLiteModel(path).predict(x), TFLiteModel(unfolded).predict(x),
                               atol=1e-5)


def test_both_folds_compose_in_either_order():
    """The rewrites share unchanged layers with their input model, so a layer can have nodes in
    two models; each fold must still see one consumer per output in the model it rewrites."""
    from tn_keras.export.folding import fold_batch_normalization
    from tn_keras.layers import PolyCG

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Normalization(mean=MEAN, variance=[s * s for s in STD], name="norm")(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(x)
    x = PolyCG(5, name="cg")(x)
    x = keras.layers.BatchNormalization(name="cg_bn")(x)
    model = keras.Model(inputs, keras.layers.Flatten()(x))
    bn = model.get_layer("cg_bn")
    bn.moving_mean.assign(np.linspace(-1, 1, 5))
    bn.moving_variance.assign(np.linspace(0.5, 4, 5))
    x = _images((8, 8, 3))
    want = np.asarray(model(x), np.float64)
    for first, second in ((fold_input_normalization, fold_batch_normalization),
                          (fold_batch_normalization, fold_input_normalization)):
        once, record_one = first(model)
        twice, record_two = second(once)
        assert len(record_one) == len(record_two) == 1, (first.__name__, second.__name__)
        kinds = {type(layer) for layer in twice.layers}
        assert keras.layers.Normalization not in kinds
        assert keras.layers.BatchNormalization not in kinds
        np.testing.assert_allclose(np.asarray(twice(x)), want, rtol=1e-4,
                                   atol=1e-4 * np.abs(want).max())
