"""Adapting a model's PatchWhitening layers to the training images before a run."""
import keras
import numpy as np

from tn_keras.layers import PatchWhitening


def adapt_whitening(model, images, batch_size=500):
    """Set every `PatchWhitening` layer of ``model`` from ``images`` (raw training images, as
    the model takes them): each layer is adapted to what reaches it, i.e. the images passed
    through the layers before it (the model's own preprocessing, typically). Returns the
    adapted layers' names; a model without the layer is left alone.
    """
    adapted = []
    for layer in model.layers:
        if isinstance(layer, PatchWhitening):
            feed = keras.Model(model.inputs, layer.input)
            layer.adapt(np.asarray(feed.predict(np.asarray(images, np.float32),
                                                batch_size=batch_size, verbose=0)))
            adapted.append(layer.name)
    return adapted
