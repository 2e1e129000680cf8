"""The default level step, ``method="embedding"``: each group's image matches its mean embedding.

For every group ``G`` of level ``a - 1`` one image ``p_G`` is synthesised by minimising

    L(p_G) = |f(p_G) - mean_{m in G} f(x_m)|^2 / (E dim(f) * mu2)  +  w_ce * CE(c_G, h(p_G))

where ``f`` is the trained network's embedding (the layer ``embedding_layer``), ``mu2`` the mean
square of the level's target embeddings (so the first term is a *relative* squared error whose
balance with the cross-entropy does not depend on the network's embedding scale), ``h`` the
network's softmax output and ``c_G`` the group's class. ``p_G`` starts at the group's pixel mean
(or first member) and takes ``steps`` Adam steps on the raw 0..255 pixels, clipped to [0, 255]
after each step.

The loss of a chunk of groups is the *sum* of the groups' terms and each pixel enters only its
own group's term, so one group's optimisation is independent of the others: optimising the
groups in chunks (to bound memory) gives the same images as one batch.

Keras does the work: the images are the weights of a `SyntheticImages` layer inside
`EmbeddingMatcher`, the frozen network is applied to them, the two terms are Keras losses
(`RelativeSquaredError`, sparse categorical cross-entropy, both summed over groups) and
``keras.optimizers.Adam`` trains the pixels with ``train_on_batch``, on any backend.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from tn_keras.distill.config import ADAM_BETA1
from tn_keras.distill.config import ADAM_BETA2
from tn_keras.distill.config import ADAM_EPSILON
from tn_keras.distill.groups import group_start
from tn_keras.distill.groups import segment_mean
from tn_keras.distill.pixels import SyntheticImages
from tn_keras.distill.pixels import frozen_copy


def check_embedding_layer(model, embedding_layer: str):
    """The layer named ``embedding_layer`` of ``model``, or a ValueError listing the names."""
    names = [layer.name for layer in model.layers]
    if embedding_layer not in names:
        raise ValueError(
            f"Model {model.name!r} has no layer named {embedding_layer!r} to take embeddings "
            f"from. Pass embedding_layer= one of its layers: {names}."
        )
    return model.get_layer(embedding_layer)


def embedding_network(model, embedding_layer: str = "embedding") -> keras.Model:
    """``model``'s input to the output of its layer ``embedding_layer`` (shares its weights)."""
    layer = check_embedding_layer(model, embedding_layer)
    return keras.Model(model.inputs[0], layer.output, name=f"{model.name}_embedding")


def embed(network: keras.Model, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """``network``'s outputs for raw images ``x``, flattened per image, float32."""
    out = [np.asarray(network.predict_on_batch(np.asarray(x[s:s + batch_size], np.float32)))
           for s in range(0, len(x), batch_size)]
    return np.concatenate(out).reshape(len(x), -1).astype(np.float32)


class RelativeSquaredError(keras.losses.Loss):
    """``sum_groups mean_D (f - t)^2 / scale``: the embedding term, summed over groups."""

    def __init__(self, scale: float, name: str = "relative_squared_error"):
        super().__init__(name=name, reduction="sum")
        self.scale = float(scale)

    def call(self, y_true, y_pred):
        return ops.mean(ops.square(y_pred - y_true), axis=-1) / self.scale


class EmbeddingMatcher(keras.Model):
    """Images of one chunk of groups; outputs their embeddings and class probabilities."""

    def __init__(self, network: keras.Model, start: np.ndarray, **kwargs):
        kwargs.setdefault("dtype", "float32")  # the loss in float32 under any policy
        super().__init__(name="embedding_matcher", **kwargs)
        self.network = network  # frozen: (embedding, probabilities)
        self.images = SyntheticImages(start)
        self.built = True  # all state exists: no symbolic build on fake data

    def call(self, rows):
        embedding, probabilities = self.network(self.images(rows), training=False)
        embedding = ops.cast(embedding, "float32")
        embedding = ops.reshape(embedding, (ops.shape(embedding)[0], -1))
        return {"embedding": embedding, "probabilities": ops.cast(probabilities, "float32")}


class Synthesiser:
    """The trained network's embedding and softmax (frozen), and the pixel optimisation."""

    def __init__(self, model, embedding_layer: str = "embedding"):
        check_embedding_layer(model, embedding_layer)
        frozen = frozen_copy(model)
        self.embedding_network = embedding_network(frozen, embedding_layer)
        self.network = keras.Model(frozen.inputs[0], [self.embedding_network.outputs[0],
                                                      frozen.outputs[0]],
                                   name=f"{model.name}_embedding_and_output")

    def optimise(self, start, targets, labels, steps, learning_rate, ce_weight, scale):
        """``steps`` Adam steps on the images ``start`` (one group each); the final pixels."""
        matcher = EmbeddingMatcher(self.network, start)
        matcher.compile(
            optimizer=keras.optimizers.Adam(learning_rate, beta_1=ADAM_BETA1,
                                            beta_2=ADAM_BETA2, epsilon=ADAM_EPSILON),
            loss={"embedding": RelativeSquaredError(scale),
                  "probabilities": keras.losses.SparseCategoricalCrossentropy(
                      reduction="sum")},
            loss_weights={"embedding": 1.0, "probabilities": float(ce_weight)})
        rows = np.arange(len(start), dtype=np.int32)
        truth = {"embedding": targets, "probabilities": labels}
        for _ in range(int(steps)):
            matcher.train_on_batch(rows, truth)
        return matcher.images.numpy()

    def synthesise(self, x, group_of, group_labels, settings) -> np.ndarray:
        """One optimised float image per group (see the module docstring)."""
        count = len(group_labels)
        targets = segment_mean(embed(self.embedding_network, x), group_of, count)
        start = group_start(x, group_of, count, settings.init)
        # Mean square of the targets: makes the embedding term a relative error.
        scale = float(np.mean(np.square(targets))) or 1.0
        out = np.empty_like(start)
        for s in range(0, count, settings.chunk_size):
            sl = slice(s, s + settings.chunk_size)
            out[sl] = self.optimise(start[sl], targets[sl], group_labels[sl], settings.steps,
                                    settings.learning_rate, settings.ce_weight, scale)
        return out
