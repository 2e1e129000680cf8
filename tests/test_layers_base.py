"""The shared weight plumbing of the polynomial layers (tn_keras/layers/base_polynomial.py).

Moving the initializer / regularizer / constraint handling into `BasePolynomial` (issue 26)
must leave every layer's `get_config` keys and its weights' names, shapes and order as they
were, or the shipped checkpoints would no longer load (their loading, and their manifests'
accuracies, are tested in tests/test_zoo.py). The expected keys and weights below are written
out by hand from the layers before the move.
"""
import json

import keras
import pytest

from tn_keras.layers import DilatedPolyCG
from tn_keras.layers import PolyCG
from tn_keras.layers import TaylorDense
from tn_keras.layers.base_polynomial import BasePolynomial

LAYER_KEYS = {"name", "trainable", "dtype"}
POLY_CG_KEYS = LAYER_KEYS | {
    "filters", "kernel_size", "strides", "padding", "order", "rank", "dilation_rate",
    "data_format", "use_bias",
    "kernel_initializer", "factor_initializer", "bias_initializer",
    "kernel_regularizer", "factor_regularizer", "bias_regularizer", "activity_regularizer",
    "kernel_constraint", "factor_constraint", "bias_constraint",
}
TAYLOR_DENSE_KEYS = LAYER_KEYS | {
    "units", "order", "rank", "use_bias",
    "kernel_initializer", "quadratic_initializer", "factor_initializer", "bias_initializer",
    "kernel_regularizer", "quadratic_regularizer", "factor_regularizer", "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint", "quadratic_constraint", "factor_constraint", "bias_constraint",
}

# name -> (layer, input shape, config keys, [(weight name, shape)] in creation order)
CASES = {
    "polycg": (lambda: PolyCG(3), (2, 6, 6, 2), POLY_CG_KEYS,
               [("kernel", (2, 2, 2, 3)), ("factor_kernel", (2, 2, 2, 6)), ("bias", (3,))]),
    "polycg_order1": (lambda: PolyCG(3, order=1), (2, 6, 6, 2), POLY_CG_KEYS,
                      [("kernel", (2, 2, 2, 3)), ("bias", (3,))]),
    "polycg_order3_no_bias": (
        lambda: PolyCG(4, kernel_size=3, strides=(1, 2), padding="same", order=3, rank=2,
                       use_bias=False, activity_regularizer="l2"),
        (2, 7, 6, 3), POLY_CG_KEYS, [("kernel", (3, 3, 3, 4)), ("factor_kernel", (3, 3, 3, 40))]),
    "dilated": (lambda: DilatedPolyCG(4, rank=2), (2, 6, 6, 3), POLY_CG_KEYS - {"strides"},
                [("kernel", (2, 2, 3, 4)), ("factor_kernel", (2, 2, 3, 16)), ("bias", (4,))]),
    "dense_exact": (lambda: TaylorDense(5), (3, 6), TAYLOR_DENSE_KEYS,
                    [("kernel", (6, 5)), ("quadratic_kernel", (21, 5)), ("bias", (5,))]),
    "dense_order1": (lambda: TaylorDense(5, order=1, rank=2), (3, 6), TAYLOR_DENSE_KEYS,
                     [("kernel", (6, 5)), ("bias", (5,))]),
    "dense_cp": (lambda: TaylorDense(5, order=3, rank=2, use_bias=False), (3, 2, 6),
                 TAYLOR_DENSE_KEYS, [("kernel", (6, 5)), ("factor_kernel", (6, 50))]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_config_keys_and_weights_are_those_of_the_layers_before_the_shared_base(name):
    make, shape, keys, weights = CASES[name]
    layer = make()
    assert isinstance(layer, BasePolynomial)
    assert set(layer.get_config()) == keys
    layer.build(shape)
    assert [(w.name, tuple(w.shape)) for w in layer.weights] == weights
    config = layer.get_config()
    json.dumps(config)
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone.build(shape)
    assert [(w.name, tuple(w.shape)) for w in clone.weights] == weights


@pytest.mark.parametrize("make", [lambda: PolyCG(2), lambda: TaylorDense(2)])
def test_default_weight_options(make):
    config = make().get_config()
    assert config["kernel_initializer"]["class_name"] == "GlorotUniform"
    assert config["bias_initializer"]["class_name"] == "Zeros"
    # factor_initializer=None is the small truncated normal, stored as such.
    factor = config["factor_initializer"]
    assert factor["class_name"] == "VarianceScaling"
    assert (factor["config"]["scale"], factor["config"]["mode"],
            factor["config"]["distribution"]) == (0.1, "fan_in", "truncated_normal")
    if "quadratic_initializer" in config:
        assert config["quadratic_initializer"]["class_name"] == "Zeros"
    options = [key for key in config if key.endswith(("_regularizer", "_constraint"))]
    assert options and all(config[key] is None for key in options)


def test_options_are_objects_and_reach_their_weight():
    layer = TaylorDense(3, quadratic_initializer="ones", quadratic_regularizer="l2",
                        quadratic_constraint="non_neg",
                        bias_initializer=keras.initializers.Constant(2.0))
    assert isinstance(layer.quadratic_initializer, keras.initializers.Ones)
    assert isinstance(layer.quadratic_regularizer, keras.regularizers.L2)
    assert isinstance(layer.quadratic_constraint, keras.constraints.NonNeg)
    layer.build((1, 4))
    assert float(keras.ops.min(layer.quadratic_kernel)) == 1.0
    assert float(keras.ops.min(layer.bias)) == 2.0
    assert layer.quadratic_kernel.constraint is layer.quadratic_constraint
    assert len(layer.losses) == 1  # the quadratic kernel's L2


def test_an_option_of_a_group_the_layer_does_not_have_is_refused():
    with pytest.raises(ValueError, match="quadratic_initializer"):
        PolyCG(2, quadratic_initializer="zeros")
