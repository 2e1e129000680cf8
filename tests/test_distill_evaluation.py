"""The train-from-scratch evaluators: the literature's ConvNet-3 and its DSA-style augmentation."""
import numpy as np
import pytest
from keras import ops

from tn_keras import distill as D
from tn_keras.distill import evaluation as E

pytestmark = pytest.mark.backend_neutral


def _images(n=6, shape=(16, 16, 3), seed=0):
    return np.random.default_rng(seed).uniform(0, 255, size=(n,) + shape).astype(np.float32)


def test_convnet3_is_the_literatures_network():
    model = E.build_evaluator((32, 32, 3), 10, seed=0, evaluator="convnet3")
    convs = [l for l in model.layers if l.__class__.__name__ == "Conv2D"]
    norms = [l for l in model.layers if l.__class__.__name__ == "GroupNormalization"]
    pools = [l for l in model.layers if l.__class__.__name__ == "AveragePooling2D"]
    assert [c.filters for c in convs] == [128, 128, 128]
    # One group per channel: instance normalisation.
    assert [n.groups for n in norms] == [128, 128, 128]
    assert len(pools) == 3
    # 3 convolutions (3*3*c_in*128 + 128), 3 norms (2*128), the classifier on 4*4*128.
    expected = (9 * 3 * 128 + 128) + 2 * (9 * 128 * 128 + 128) + 3 * 256 + (4 * 4 * 128 * 10 + 10)
    assert model.count_params() == expected


def test_instance_normalisation_matches_numpy():
    # GroupNormalization(groups=channels) normalises every image and channel over its pixels.
    model = E.build_evaluator((8, 8, 1), 2, seed=0, evaluator="convnet3")
    norm = [l for l in model.layers if l.__class__.__name__ == "GroupNormalization"][0]
    z = np.random.default_rng(1).normal(2.0, 3.0, size=(2, 8, 8, 128)).astype(np.float32)
    got = ops.convert_to_numpy(norm(z))
    mean = z.mean(axis=(1, 2), keepdims=True)
    var = z.var(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(got, (z - mean) / np.sqrt(var + 1e-5), atol=1e-4)


@pytest.mark.parametrize("channels", [1, 3])
def test_dsa_augmentation_keeps_shape_and_range(channels):
    x = _images(shape=(16, 16, channels))
    augment = E.dsa_augmentation(channels, seed=0)
    outs = [ops.convert_to_numpy(augment(x, training=True)) for _ in range(12)]
    for out in outs:
        assert out.shape == x.shape
        assert out.min() >= 0.0 and out.max() <= 255.0
    # Over a dozen batches, several different transformations were drawn.
    assert sum(not np.allclose(out, x) for out in outs) >= 6


def test_dsa_augmentation_is_deterministic_given_the_seed():
    x = _images()
    first = E.dsa_augmentation(3, seed=4)
    second = E.dsa_augmentation(3, seed=4)
    for _ in range(4):
        np.testing.assert_array_equal(ops.convert_to_numpy(first(x, training=True)),
                                      ops.convert_to_numpy(second(x, training=True)))
    # Inference leaves the images alone.
    np.testing.assert_array_equal(ops.convert_to_numpy(first(x)), x)


def test_train_from_scratch_with_convnet3():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.full((4, 8, 8, 1), 40.0), np.full((4, 8, 8, 1), 220.0)])
    x = x + rng.normal(0, 5, x.shape)
    y = np.array([0] * 4 + [1] * 4)
    res = D.train_from_scratch(x, y, x, y, seeds=(0,), steps=3, evaluator="convnet3")
    assert res["steps"] == 3 and res["images"] == 8
    assert res["evaluator"] == E.CONVNET3
    assert 0.0 <= res["mean"] <= 1.0


def test_training_length_per_protocol():
    # convnet3: 300 epochs of batch 256, so the step count follows the level's size.
    assert E.training_length("convnet3", 100) == (100, 300, 0.01)
    assert E.training_length("convnet3", 300) == (256, 600, 0.01)
    assert E.training_length("convnet3", 300, steps=5, learning_rate=0.1) == (256, 5, 0.1)
    # small: a fixed 300 steps whatever the size.
    assert E.training_length("small", 100) == (100, 300, 1e-3)
    assert E.training_length("small", 5000) == (256, 300, 1e-3)


def test_unknown_evaluator_is_refused():
    x = np.zeros((2, 8, 8, 1))
    with pytest.raises(ValueError, match="evaluator='resnet'"):
        D.train_from_scratch(x, [0, 1], x, [0, 1], seeds=(0,), evaluator="resnet")


def test_mismatched_labels_are_refused():
    x = np.zeros((3, 8, 8, 1))
    with pytest.raises(ValueError, match="3 images but y has 2"):
        D.train_from_scratch(x, [0, 1], x, [0, 1, 1], seeds=(0,))


def test_test_subsets_come_from_the_same_networks():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (20, 8, 8, 1)).astype(np.float32)
    y = np.repeat(np.arange(2), 10)
    first = np.arange(20) < 7
    result = D.train_from_scratch(x, y, x, y, seeds=(0, 1), steps=2,
                                  test_subsets={"all": np.ones(20, bool), "first": first})
    assert result["subsets"]["all"]["accuracies"] == result["accuracies"]
    # The same seeds train the same networks: testing on the subset alone agrees.
    alone = D.train_from_scratch(x, y, x[first], y[first], seeds=(0, 1), steps=2)
    np.testing.assert_allclose(result["subsets"]["first"]["accuracies"], alone["accuracies"])
    assert "subsets" not in D.train_from_scratch(x, y, x, y, seeds=(0,), steps=1)
