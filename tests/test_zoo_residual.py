"""The residual TaylorNet family: sizes, the identity start of its blocks, no activation."""
import keras
import numpy as np
import pytest

from tn_keras import zoo
from tn_keras.layers import DilatedPolyCG, PolyCG, TaylorDense
from tn_keras.zoo.cifar_taylornet_res import residual_taylor_block

# Layers that keep a network an exact polynomial of its input (BatchNormalization at inference).
POLYNOMIAL_LAYERS = (keras.layers.InputLayer, keras.layers.Normalization, keras.layers.Conv2D,
                     keras.layers.Dense, keras.layers.BatchNormalization, keras.layers.Add,
                     keras.layers.Flatten, PolyCG, DilatedPolyCG, TaylorDense)


@pytest.mark.parametrize("name, max_parameters", [("cifar_taylornet_res", 5_000_000),
                                                  ("cifar_taylornet_res_small", 1_200_000)])
def test_sizes_within_the_issue_budget(name, max_parameters):
    model = zoo.build(name)
    assert model.count_params() <= max_parameters
    assert model.output_shape == (None, 10)
    assert model.get_layer("embedding").output.shape[-1] > 0


@pytest.mark.parametrize("name", ["cifar_taylornet_res", "cifar_taylornet_res_small"])
def test_only_the_softmax_is_not_polynomial(name):
    model = zoo.build(name)
    others = [layer.name for layer in model.layers if not isinstance(layer, POLYNOMIAL_LAYERS)]
    assert others == ["predictions"]
    for layer in model.layers:
        activation = getattr(layer, "activation", None)
        if activation is not None and layer.name != "predictions":
            assert activation is keras.activations.linear, layer.name


def test_a_block_starts_as_the_identity():
    inputs = keras.Input((8, 8, 16))
    block = keras.Model(inputs, residual_taylor_block(inputs, "b"))
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(block(x, training=False), x, atol=1e-6)
    # Once the zero-started scale moves, the block is not the identity (the test can fail).
    block.get_layer("b_cg_bn").gamma.assign(np.ones(16, "float32"))
    assert not np.allclose(block(x, training=False), x, atol=1e-3)
