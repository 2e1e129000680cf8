"""Distribution matching with random ConvNets: the ``method="distribution"`` level step.

PROJECT option, after Zhao & Bilen, "Dataset Condensation with Distribution Matching" (WACV
2023). Level ``a`` keeps one image per group of level ``a - 1`` (its first member, a sharp image
rather than a mean), and then moves all images of a class *together* so that their mean
embedding matches the mean embedding of the class's images at level ``a - 1``, for embedding
networks drawn at random at every iteration:

    L(S) = sum_c | mean_{s in S_c} phi_theta(T(s)) - mean_{x in B_c} phi_theta(T(x)) |^2 ,

``theta`` a fresh He-normal initialisation of ``Conv3x3(32) ReLU MaxPool2 > Conv3x3(64) ReLU
MaxPool2 > Flatten`` (the evaluator's feature extractor, see `tn_keras.distill.evaluation`),
``B_c`` a random batch of the class's level ``a - 1`` images, ``S_c`` a random batch of (at most
`SYNTHETIC_BATCH` of) its synthetic images, and ``T`` one random translation of up to 2 pixels
shared by the real and the synthetic images (siamese augmentation). The pixels of the images in
the batch take an Adam step in grey levels (moments and step count kept per image) and are
clipped to 0..255.

Why an option: the default embedding matching (`tn_keras.distill.algorithm`) makes each image a
good *reference* for the trained network, but matching a group's mean averages the group, and
repeated averaging removes the variety within a class that *training a fresh network* needs.
Matching the class's distribution instead, with networks that are not the trained one, keeps
that variety (the README's distillation section has the measurements). It does not use the
trained model at all.

Every random draw (network weights, batches, shifts) comes from ``numpy.random.default_rng(
[seed, level, 17])``, so a level is a deterministic function of its inputs and settings.
"""
from __future__ import annotations

import numpy as np

# One Adam and one pixel range for both distillation methods.
from tn_keras.distill.algorithm import ADAM_BETA1
from tn_keras.distill.algorithm import ADAM_BETA2
from tn_keras.distill.algorithm import ADAM_EPSILON
from tn_keras.distill.algorithm import PIXEL_MAX
#: Real images per class and iteration (fewer when a class has fewer).
REAL_BATCH = 128
#: Synthetic images per class that take each iteration's step (all, when a class has fewer):
#: bounds an iteration's cost on the large early levels of a cascade.
SYNTHETIC_BATCH = 64
#: The random embedding networks' channels (the evaluator's).
CHANNELS = (32, 64)
#: Largest random translation, in pixels, applied alike to real and synthetic images.
MAX_SHIFT = 2


class DistributionMatcher:
    """The compiled DM iteration for images of one shape (one per `distill` call)."""

    def __init__(self, image_shape):
        import tensorflow as tf

        height, width, _ = (int(d) for d in image_shape)
        beta1, beta2, epsilon = ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON

        def embed(images, w1, w2, dy, dx):
            z = tf.pad(images / PIXEL_MAX,
                       [[0, 0], [MAX_SHIFT, MAX_SHIFT], [MAX_SHIFT, MAX_SHIFT], [0, 0]],
                       mode="REFLECT")
            z = z[:, dy:dy + height, dx:dx + width, :]
            h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(z, w1, 1, "SAME")), 2, 2, "VALID")
            h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(h, w2, 1, "SAME")), 2, 2, "VALID")
            return tf.reshape(h, [tf.shape(images)[0], -1])

        def step(synthetic, m, v, t, rows, synthetic_class, real, real_class, num_classes, w1,
                 w2, dy, dx, learning_rate):
            # Only the images in `rows` (a random batch per class) take this step; each row's
            # Adam moments and step count are its own, so a row's update does not depend on
            # how often the others were drawn.
            rows_2d = rows[:, None]
            batch = tf.gather(synthetic, rows)
            with tf.GradientTape() as tape:
                tape.watch(batch)
                mean_synthetic = tf.math.unsorted_segment_mean(
                    embed(batch, w1, w2, dy, dx), tf.gather(synthetic_class, rows), num_classes)
                mean_real = tf.math.unsorted_segment_mean(
                    embed(real, w1, w2, dy, dx), real_class, num_classes)
                loss = tf.reduce_sum(tf.square(mean_synthetic - mean_real))
            g = tape.gradient(loss, batch)
            m_rows = beta1 * tf.gather(m, rows) + (1.0 - beta1) * g
            v_rows = beta2 * tf.gather(v, rows) + (1.0 - beta2) * tf.square(g)
            t_rows = tf.reshape(tf.gather(t, rows), [-1, 1, 1, 1])
            m_hat = m_rows / (1.0 - tf.pow(beta1, t_rows))
            v_hat = v_rows / (1.0 - tf.pow(beta2, t_rows))
            moved = tf.clip_by_value(
                batch - learning_rate * m_hat / (tf.sqrt(v_hat) + epsilon), 0.0, PIXEL_MAX)
            return (tf.tensor_scatter_nd_update(synthetic, rows_2d, moved),
                    tf.tensor_scatter_nd_update(m, rows_2d, m_rows),
                    tf.tensor_scatter_nd_update(v, rows_2d, v_rows), loss)

        self._step = tf.function(step, reduce_retracing=True)

    def match(self, start, start_labels, real, real_labels, iterations, learning_rate,
              rng) -> np.ndarray:
        """Optimise ``start`` (float images, one class label each) against ``real``; return it."""
        import tensorflow as tf

        channels_in = start.shape[-1]
        classes = np.unique(real_labels)
        index_of = {int(c): np.flatnonzero(real_labels == c) for c in classes}
        dense = {int(c): i for i, c in enumerate(classes)}  # segment ids 0..C-1
        synthetic_class = tf.constant([dense[int(c)] for c in start_labels], tf.int32)
        num_classes = tf.constant(len(classes), tf.int32)
        synthetic = tf.constant(np.asarray(start, np.float32))
        m = v = tf.zeros_like(synthetic)
        start_labels = np.asarray(start_labels)
        rows_of = [np.flatnonzero(start_labels == c) for c in classes]
        steps_taken = np.zeros(len(start), np.float32)
        for _ in range(int(iterations)):
            batch = np.concatenate([
                rng.choice(idx, size=min(REAL_BATCH, len(idx)), replace=False)
                for idx in index_of.values()])
            rows = np.sort(np.concatenate([
                rng.choice(idx, size=min(SYNTHETIC_BATCH, len(idx)), replace=False)
                for idx in rows_of if len(idx)]))
            steps_taken[rows] += 1
            real_class = tf.constant([dense[int(c)] for c in real_labels[batch]], tf.int32)
            w1 = rng.normal(0.0, np.sqrt(2.0 / (9 * channels_in)),
                            (3, 3, channels_in, CHANNELS[0])).astype(np.float32)
            w2 = rng.normal(0.0, np.sqrt(2.0 / (9 * CHANNELS[0])),
                            (3, 3, CHANNELS[0], CHANNELS[1])).astype(np.float32)
            dy, dx = (int(s) for s in rng.integers(0, 2 * MAX_SHIFT + 1, size=2))
            synthetic, m, v, _ = self._step(
                synthetic, m, v, tf.constant(steps_taken), tf.constant(rows, tf.int32),
                synthetic_class, tf.constant(np.asarray(real[batch], np.float32)), real_class,
                num_classes, tf.constant(w1), tf.constant(w2), tf.constant(dy), tf.constant(dx),
                tf.constant(float(learning_rate), tf.float32))
        return synthetic.numpy()
