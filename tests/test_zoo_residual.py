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


# (model kwargs, degree of the logits): 6 blocks + 5 CG steps; a separable CG step is two.
VARIANTS = [({}, 2 ** 11), ({"order": 3}, 3 ** 11), ({"rank": 2}, 2 ** 11),
            ({"batch_norm": False}, 2 ** 11), ({"separable_cg": True}, 2 ** 16)]


@pytest.mark.parametrize("kwargs, degree", VARIANTS)
def test_ablation_variants_stay_polynomials_of_the_expected_degree(kwargs, degree):
    from tn_keras import interpret

    model = zoo.build("cifar_taylornet_res_small", **kwargs)
    assert model.output_shape == (None, 10)
    assert interpret.degree(model) == degree
    others = [layer.name for layer in model.layers if not isinstance(layer, POLYNOMIAL_LAYERS)]
    assert others == ["predictions"]
    batch_norms = [layer for layer in model.layers
                   if isinstance(layer, keras.layers.BatchNormalization)]
    assert bool(batch_norms) == kwargs.get("batch_norm", True)
    polynomial = [layer for layer in model.layers if isinstance(layer, (PolyCG, DilatedPolyCG))]
    assert {(layer.order, layer.rank) for layer in polynomial} == {
        (kwargs.get("order", 2), kwargs.get("rank", 1))}


def test_separable_steps_coarse_grain_rows_then_columns():
    model = zoo.build("cifar_taylornet_res_small", separable_cg=True)
    assert model.get_layer("cg1_x").output.shape[1:3] == (16, 32)
    assert model.get_layer("cg1_y").output.shape[1:3] == (16, 16)
    assert model.get_layer("dicg1_x").dilation_rate == (4, 1)
    assert model.get_layer("dicg1_y").output.shape[1:3] == (4, 4)
    assert model.get_layer("cg3_y").output.shape[1:3] == (1, 1)


def test_default_variant_is_the_registered_architecture():
    default = zoo.build("cifar_taylornet_res_small")
    explicit = zoo.build("cifar_taylornet_res_small", order=2, rank=1, batch_norm=True,
                         separable_cg=False)
    assert [layer.name for layer in default.layers] == [layer.name for layer in explicit.layers]
    assert default.count_params() == explicit.count_params() == 1_112_426


def test_a_block_without_batch_norm_starts_near_the_identity():
    from tn_keras.zoo.cifar_taylornet_res import Variant

    inputs = keras.Input((8, 8, 16))
    block = keras.Model(inputs, residual_taylor_block(inputs, "b", Variant(batch_norm=False)))
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 16)).astype("float32")
    out = np.asarray(block(x))
    # Only the product term (small factors) moves it; the linear part starts at zero.
    assert 0 < np.abs(out - x).mean() < 0.1 * np.abs(x).mean()
