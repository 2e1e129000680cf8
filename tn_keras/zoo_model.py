"""`ZooModel`: a functional Keras model that takes raw pixels and checks that it gets them.

Every zoo model takes raw pixels 0..255 and standardises them inside (its first layers). Images
already divided by 255 are accepted without any error and give near-chance answers, the most
common first-hour mistake. A `ZooModel` is an ordinary functional ``keras.Model`` (the same
layers, weights, graph and saved format) whose ``predict``, ``evaluate``, ``fit``, the
``*_on_batch`` methods and calls on NumPy arrays look at their input once per call and warn, once per
process, when it looks like floats in 0..1 (`check_pixel_scale`). ``tn_keras.zoo.load`` returns
one; `as_zoo_model` turns any functional model into one.

The check reads NumPy arrays and eager tensors only: a ``tf.data.Dataset`` or a generator is
not consumed to look at it, and symbolic tensors (tracing, graph building) pass untouched, so
the compiled graph, SavedModel, TFLite and ONNX exports are exactly those of the plain model.

The module is imported by ``import tn_keras`` (it registers the class with Keras), so
``keras.saving.load_model`` reads a saved `ZooModel` once tn_keras is imported, like the layers.
"""
import warnings

import keras
import numpy as np

_warned = False  # `check_pixel_scale` warns once per process, not once per batch


def check_pixel_scale(images, argument="images", stacklevel=2):
    """Warn (once per process) when ``images`` look like floats in 0..1 instead of pixels 0..255.

    The test: a floating-point array whose values all lie in [0, 1], some strictly between.
    Raw pixels are whole numbers, so they never match it (nor does an all-black image); integer
    arrays (uint8) are not even read. Anything that is not array-like (a dataset, a symbolic
    tensor) is not looked at. Returns whether it warned.
    """
    global _warned
    if _warned:
        return False
    array = _as_array(images)
    if array is None or array.size == 0 or not np.issubdtype(array.dtype, np.floating):
        return False
    low, high = float(np.min(array)), float(np.max(array))
    if not (0.0 <= low and high <= 1.0) or not np.any((array > 0) & (array < 1)):
        return False
    _warned = True
    warnings.warn(f"{argument} look scaled to 0..1 (values {low:.3g}..{high:.3g}), but zoo "
                  "models take raw pixels 0..255 and standardise them inside: multiply by 255 "
                  "first, or the predictions are near chance. (Shown once.)",
                  UserWarning, stacklevel=stacklevel)
    return True


def _as_array(images):
    """``images`` as a NumPy array if it is concrete data, else None (never consumes it)."""
    if isinstance(images, np.ndarray):
        return images
    if isinstance(images, (list, tuple)) and images and all(
            isinstance(v, (int, float)) or isinstance(v, (list, tuple, np.ndarray))
            for v in images):
        try:
            return np.asarray(images)
        except ValueError:  # ragged
            return None
    if keras.backend.is_keras_tensor(images) or not keras.ops.is_tensor(images):
        return None
    try:  # an eager tensor of any backend; a traced one refuses, and is not data
        return keras.ops.convert_to_numpy(images)
    except Exception:  # noqa: BLE001 - any backend's "this tensor is symbolic" error
        return None


@keras.saving.register_keras_serializable(package="tn_keras")
class ZooModel(keras.Model):
    """A functional model for raw pixels 0..255 that warns when given 0..1 floats.

    Built like a functional model, ``ZooModel(inputs, outputs, name=...)``, and identical to
    one in everything it computes: only the entry points that receive user data check it first
    (`check_pixel_scale`; at most one warning per process). The check costs one pass over the
    array (a min and a max) and skips integer arrays at once. Under JAX, ``predict`` also pads
    a NumPy input to whole batches (`pad_to_whole_batches`), so that calls with any number of
    images share one compiled step.
    """

    def __call__(self, *args, **kwargs):
        # NumPy input only: ``fit``/``predict`` call the model on backend tensors at every step
        # (eager ones under PyTorch), which were checked, if at all, where they came in.
        if args and isinstance(args[0], np.ndarray):
            check_pixel_scale(args[0], "the model's input", stacklevel=3)
        return super().__call__(*args, **kwargs)

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        check_pixel_scale(x, "predict's x", stacklevel=3)
        padded, count = pad_to_whole_batches(x, batch_size or 32, steps)
        out = super().predict(padded, batch_size=batch_size, verbose=verbose, steps=steps,
                              callbacks=callbacks)
        return out if count is None else keras.tree.map_structure(lambda a: a[:count], out)

    def evaluate(self, x=None, *args, **kwargs):
        check_pixel_scale(x, "evaluate's x", stacklevel=3)
        return super().evaluate(x, *args, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        check_pixel_scale(x, "fit's x", stacklevel=3)
        return super().fit(x, *args, **kwargs)

    def predict_on_batch(self, x):
        check_pixel_scale(x, "predict_on_batch's x", stacklevel=3)
        return super().predict_on_batch(x)

    def test_on_batch(self, x, *args, **kwargs):
        check_pixel_scale(x, "test_on_batch's x", stacklevel=3)
        return super().test_on_batch(x, *args, **kwargs)

    def train_on_batch(self, x, *args, **kwargs):
        check_pixel_scale(x, "train_on_batch's x", stacklevel=3)
        return super().train_on_batch(x, *args, **kwargs)


#: Whether `ZooModel.predict` pads a NumPy input to whole batches. JAX compiles the predict
#: step once per input shape, so every call whose image count leaves a different remainder
#: (or is a different count below one batch) compiled anew, seconds each on a CPU;
#: TensorFlow's predict function generalises over the batch size and the torch backend runs
#: eagerly, so for them padding would only add work.
PAD_PARTIAL_BATCHES = keras.backend.backend() == "jax"


def pad_to_whole_batches(x, batch_size, steps=None):
    """``(x padded to a multiple of batch_size, len(x))`` when `PAD_PARTIAL_BATCHES` and
    ``x`` is a NumPy array that needs it; else ``(x, None)``. The padding repeats the last
    image (values the model sees anyway), and their predictions are cut off again. In inference
    a zoo model treats every image on its own (BatchNorm uses its moving statistics), so the
    padding changes no prediction."""
    if (not PAD_PARTIAL_BATCHES or steps is not None or not isinstance(x, np.ndarray)
            or x.ndim == 0 or len(x) == 0 or len(x) % batch_size == 0):
        return x, None
    extra = batch_size - len(x) % batch_size
    return np.concatenate([x, np.repeat(x[-1:], extra, axis=0)]), len(x)


def as_zoo_model(model):
    """``model`` (a functional Keras model) as a `ZooModel` over the very same layers; a model
    with no functional graph (a subclassed one) is returned unchanged.

    The graph, layers and weights are shared, not copied. A compiled model stays compiled with
    the same configuration (a fresh optimiser: its state is not carried over).
    """
    if isinstance(model, ZooModel):
        return model
    try:
        inputs, outputs = model.inputs, model.outputs
    except (AttributeError, ValueError):  # a subclassed model has no graph to rewrap
        inputs = outputs = None
    if not inputs or not outputs:
        return model  # returned as it is: its own predict, without the check
    wrapped = ZooModel(inputs, outputs, name=model.name)
    if getattr(model, "compiled", False):
        config = model.get_compile_config()
        if config:
            wrapped.compile_from_config(config)
    return wrapped
