"""The pixel optimisation against independent NumPy computations, on any backend.

The synthesis models let Keras compute gradients and apply its optimizers; these tests check
the result step by step against Adam written out in NumPy on problems whose gradient is known
in closed form.
"""
import keras
import numpy as np
import pytest

from tn_keras.distill import distribution_matching as DM
from tn_keras.distill.config import ADAM_BETA1 as B1
from tn_keras.distill.config import ADAM_BETA2 as B2
from tn_keras.distill.config import ADAM_EPSILON as EPS
from tn_keras.distill.config import DistillConfig
from tn_keras.distill.embedding_matching import Synthesiser
from tn_keras.distill.groups import make_groups
from tn_keras.distill.pixels import SyntheticImages

from test_distill import synthetic_data
from test_distill import tiny_model

pytestmark = pytest.mark.backend_neutral

SHAPE = (4, 4, 1)


def identity_model():
    """Embedding = pixels / 255 (flattened): the embedding term's gradient is closed-form."""
    inputs = keras.Input(SHAPE)
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Flatten(name="embedding")(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def numpy_keras_adam(p, grad_fn, steps, lr):
    """Keras's Adam (epsilon added to sqrt(v), bias corrections folded into the step) with the
    clip to [0, 255] after every step."""
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    for t in range(1, steps + 1):
        g = grad_fn(p)
        m += (g - m) * (1 - B1)
        v += (g * g - v) * (1 - B2)
        alpha = lr * np.sqrt(1 - B2 ** t) / (1 - B1 ** t)
        p = np.clip(p - alpha * m / (np.sqrt(v) + EPS), 0, 255)
    return p


def test_embedding_matching_is_adam_on_the_relative_error():
    rng = np.random.default_rng(0)
    start = rng.uniform(20, 235, (3,) + SHAPE).astype(np.float32)
    targets = rng.uniform(0, 1, (3, 16)).astype(np.float32)
    scale = float(np.mean(targets ** 2))
    got = Synthesiser(identity_model()).optimise(start, targets, np.array([0, 1, 0]), steps=7,
                                                 learning_rate=3.0, ce_weight=0.0, scale=scale)

    def grad(p):  # d/dp sum_g mean_D (p/255 - t)^2 / scale
        flat = p.reshape(3, -1).astype(np.float64)
        return (2 * (flat / 255 - targets) / (255 * 16 * scale)).reshape(p.shape)

    want = numpy_keras_adam(start.astype(np.float64), grad, 7, 3.0)
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert np.abs(got - start).max() > 10  # it moved: the comparison is not vacuous


def test_rowwise_adam_moves_only_the_drawn_rows_with_their_own_step_count():
    rng = np.random.default_rng(1)
    start = rng.uniform(50, 200, (3, 2, 2, 1)).astype(np.float32)
    images = SyntheticImages(start)
    optimizer = DM.RowwiseAdam(learning_rate=2.0)
    grads = [rng.normal(0, 1, start.shape).astype(np.float32) for _ in range(3)]
    masks = [np.array([1, 0, 1]), np.array([1, 1, 0]), np.array([0, 1, 1])]
    m, v, t, p = (np.zeros_like(start, np.float64), np.zeros_like(start, np.float64),
                  np.zeros(3), start.astype(np.float64))
    for g, mask in zip(grads, masks):
        g = g * mask[:, None, None, None]  # a row not in the batch has a zero gradient
        optimizer.apply([g], [images.pixels])
        drawn = mask.astype(bool)
        t[drawn] += 1
        m[drawn] = B1 * m[drawn] + (1 - B1) * g[drawn]
        v[drawn] = B2 * v[drawn] + (1 - B2) * g[drawn] ** 2
        tt = t[drawn][:, None, None, None]
        p[drawn] -= 2.0 * (m[drawn] / (1 - B1 ** tt)) / (np.sqrt(v[drawn] / (1 - B2 ** tt)) + EPS)
        p = np.clip(p, 0, 255)
    np.testing.assert_allclose(images.numpy(), p, atol=1e-4)


def test_chunks_give_the_same_images_as_one_batch():
    x, y = synthetic_data()
    group_of, labels = make_groups(y, 2, seed=0, level=1)
    synthesiser = Synthesiser(tiny_model())
    settings = DistillConfig(steps=5, learning_rate=2.0).resolved()
    whole = synthesiser.synthesise(x, group_of, labels, settings)
    chunked = synthesiser.synthesise(x, group_of, labels,
                                     DistillConfig(steps=5, learning_rate=2.0,
                                                   chunk_size=5).resolved())
    np.testing.assert_allclose(chunked, whole, atol=1e-3)
    assert len(labels) > 5  # several chunks, the last one short


def test_synthesis_leaves_the_callers_model_alone():
    model = tiny_model()
    before = [w.copy() for w in model.get_weights()]
    trainable = [layer.trainable for layer in model.layers]
    x, y = synthetic_data()
    group_of, labels = make_groups(y, 2, seed=0, level=1)
    Synthesiser(model).synthesise(x, group_of, labels,
                                  DistillConfig(steps=3, learning_rate=2.0).resolved())
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert [layer.trainable for layer in model.layers] == trainable


def test_pixels_stay_float32_under_a_mixed_precision_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        images = SyntheticImages(np.full((2, 2, 2, 1), 100.3, np.float32))
        out = keras.ops.convert_to_numpy(images(np.array([0, 1])))
    finally:
        keras.config.set_dtype_policy(previous)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, 100.3, rtol=1e-7)  # bfloat16 would give 100.5
