"""tn_keras.training.low_order: the penalty against an independent NumPy computation."""
import keras
import numpy as np
import pytest

from tn_keras.training import low_order

pytestmark = pytest.mark.backend_neutral


def _model(power, seed=0):
    """x (4) -> z = W x + b (3) -> logits = A [z, z**power] + c -> softmax: a polynomial of
    degree ``power`` in x, with BatchNorm-free layers a NumPy reference can repeat."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4,))
    z = keras.layers.Dense(3, name="z")(inputs)
    high = z
    for _ in range(power - 1):
        high = keras.layers.Multiply()([high, z])
    logits = keras.layers.Dense(2, name="logits")(keras.layers.Concatenate()([z, high]))
    return keras.Model(inputs, keras.layers.Activation("softmax")(logits))


def _numpy_logits(model, x):
    w, b = model.get_layer("z").get_weights()
    a, c = model.get_layer("logits").get_weights()
    z = x.astype(np.float64) @ w + b
    power = len([layer for layer in model.layers if isinstance(layer, keras.layers.Multiply)])
    return np.concatenate([z, z ** (power + 1)], axis=-1) @ a + c


def _numpy_penalty(model, x, center, n):
    t = np.cos(np.pi * np.arange(n) / (n - 1))
    g = np.stack([_numpy_logits(model, center + s * (x - center)) for s in t])  # (n, B, C)
    flat = g.reshape(n, -1)
    fitted = np.stack([np.polyval(np.polyfit(t, flat[:, i], 2), t)
                       for i in range(flat.shape[1])], axis=1)
    high = flat - fitted
    spread = flat - flat.mean(axis=0)
    return np.sum(high ** 2) / np.sum(spread ** 2)


def test_the_residual_operator_is_the_least_squares_quadratics_residual():
    t = low_order.lobatto_nodes(7)
    assert t[0] == 1.0 and t[3] == 0.0 and t[-1] == -1.0
    residual, centring = low_order.residual_operators(t)
    g = np.random.default_rng(0).normal(size=(7, 5))
    for i in range(5):
        expected = g[:, i] - np.polyval(np.polyfit(t, g[:, i], 2), t)
        np.testing.assert_allclose(residual @ g[:, i], expected, atol=1e-5)
        np.testing.assert_allclose(centring @ g[:, i], g[:, i] - g[:, i].mean(), atol=1e-6)


@pytest.mark.parametrize("nodes", [5, 8])
def test_the_penalty_of_a_quartic_model_matches_numpy(nodes):
    model = _model(power=4)
    rng = np.random.default_rng(1)
    x, center = rng.normal(size=(6, 4)).astype("float32"), rng.normal(size=4).astype("float32")
    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    layer = low_order.LowOrderPenalty(logits, center, weight=1.0, nodes=nodes)
    ratio, values = layer.penalty(keras.ops.convert_to_tensor(x))
    expected = _numpy_penalty(model, x, center, nodes)
    assert 0.0 < expected <= 1.0
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(ratio)), expected, rtol=1e-3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(values), _numpy_logits(model, x),
                               rtol=1e-4, atol=1e-5)


def test_a_quadratic_model_has_no_penalty():
    model = _model(power=2)
    rng = np.random.default_rng(2)
    x, center = rng.normal(size=(6, 4)).astype("float32"), rng.normal(size=4).astype("float32")
    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    ratio, _ = low_order.LowOrderPenalty(logits, center, weight=1.0).penalty(
        keras.ops.convert_to_tensor(x))
    assert float(keras.ops.convert_to_numpy(ratio)) < 1e-6


def test_fitting_the_training_model_trains_the_network_and_lowers_the_penalty():
    model = _model(power=3, seed=3)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 4)).astype("float32")
    y = rng.integers(0, 2, 64)
    center = x.mean(axis=0)
    before = _numpy_penalty(model, x, center, 5)
    trainer = low_order.with_low_order_penalty(model, center, weight=10.0)
    trainer.compile(optimizer=keras.optimizers.Adam(0.05),
                    loss="sparse_categorical_crossentropy")
    trainer.fit(x, y, epochs=30, batch_size=64, verbose=0)
    # The network itself (the layers shared with the training model) has changed, and its
    # logits moved towards a quadratic about the point.
    assert _numpy_penalty(model, x, center, 5) < 0.5 * before
    np.testing.assert_allclose(trainer.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-6)


def test_batch_norm_is_frozen_in_inference_mode():
    inputs = keras.Input((4,))
    h = keras.layers.BatchNormalization(name="bn")(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, keras.layers.Activation("softmax")(
        keras.layers.Dense(2, name="logits")(h)))
    low_order.with_low_order_penalty(model, np.zeros(4, "float32"), weight=1.0)
    assert model.get_layer("bn").trainable is False


@pytest.mark.parametrize("change, message", [
    (dict(nodes=3), r"^nodes must be an integer >= 4"),
    (dict(weight=-1.0), r"^weight must be a finite number >= 0"),
    (dict(weight=float("nan")), r"^weight must be a finite number >= 0"),
    (dict(center=np.zeros(3)), r"^center has shape \(3,\); the model takes images of shape "
                               r"\(4,\)"),
])
def test_bad_arguments_are_one_line_naming_them(change, message):
    model = _model(power=2)
    arguments = dict(dict(center=np.zeros(4), weight=1.0, nodes=5), **change)
    with pytest.raises(ValueError, match=message):
        low_order.with_low_order_penalty(model, **arguments)


def test_a_model_without_logits_is_named():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="out")(inputs), name="plain")
    with pytest.raises(ValueError, match=r"^model 'plain' has no layer named 'logits'"):
        low_order.with_low_order_penalty(model, np.zeros(4), weight=1.0)


@pytest.mark.parametrize("change, message", [
    (dict(low_order_penalty=-1.0), r"^low_order_penalty must be a finite number >= 0; "
                                   r"received -1.0\.$"),
    (dict(low_order_penalty=float("inf")), r"^low_order_penalty must be a finite number"),
    (dict(low_order_penalty=True), r"^low_order_penalty must be a finite number"),
    (dict(low_order_penalty="30"), r"^low_order_penalty must be a finite number"),
    (dict(low_order_penalty=1.0, robust_batch_norm=True),
     r"^low_order_penalty freezes every BatchNormalization and robust_batch_norm"),
])
def test_a_recipe_refuses_a_bad_penalty_in_one_line(change, message):
    from tn_keras import zoo

    with pytest.raises(ValueError, match=message):
        zoo.TrainingRecipe(epochs=1, **change)


def _penalty_on(model, x):
    logits = keras.Model(model.inputs, model.get_layer("logits").output)
    center = np.mean(x, axis=0, dtype=np.float64).astype("float32")
    ratio, _ = low_order.LowOrderPenalty(logits, center, weight=1.0).penalty(
        keras.ops.convert_to_tensor(x.astype("float32")))
    return float(keras.ops.convert_to_numpy(ratio))


def test_the_trainer_fine_tunes_with_the_recipes_penalty(tmp_path):
    """A recipe's ``low_order_penalty``: the run fine-tunes the shipped network (its head too,
    ``init_head``) with every BatchNorm frozen (its statistics stay the checkpoint's), records
    the weight, and saves the network with its BatchNorm trainable again; the penalty ends
    lower than after the same run without it. Without a trained start it is refused."""
    import dataclasses

    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.training import train
    from tn_keras.zoo.registry import get_spec

    spec = get_spec("digits_taylornet")
    x, _ = datasets.load("digits", "train")
    x = x[:256]
    shipped = zoo.load("digits_taylornet", compile=False)
    penalties, models = {}, {}
    for weight in (0.0, 30.0):
        recipe = dataclasses.replace(spec.recipe, epochs=3, low_order_penalty=weight)
        with zoo.registered("digits_low_order", spec.builder, dataset="digits", recipe=recipe):
            if weight:
                with pytest.raises(ValueError, match=r"^The recipe's low_order_penalty=30 "
                                                     r"fine-tunes a trained network"):
                    train("digits_low_order", out=str(tmp_path / "refused"), epochs=1)
            model, manifest = train("digits_low_order", out=str(tmp_path / str(weight)), seed=0,
                                    init_from="digits_taylornet", init_head=True,
                                    max_train_examples=256, verbose=0)
        assert manifest["training"]["recipe"]["low_order_penalty"] == weight
        penalties[weight], models[weight] = _penalty_on(model, x), model
    norms = [layer for layer in models[30.0].layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(layer.trainable for layer in norms)
    for layer in norms:  # frozen: the shipped network's statistics, as loaded
        for ours, theirs in zip(layer.non_trainable_weights,
                                shipped.get_layer(layer.name).non_trainable_weights):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours),
                                          keras.ops.convert_to_numpy(theirs))
    plain = models[0.0].get_layer(norms[0].name).non_trainable_weights[0]
    moved = shipped.get_layer(norms[0].name).non_trainable_weights[0]
    assert not np.allclose(keras.ops.convert_to_numpy(plain),
                           keras.ops.convert_to_numpy(moved))  # they move without the penalty
    assert penalties[30.0] < 0.5 * penalties[0.0], penalties
