"""Differentiable siamese augmentation (DSA) for distribution matching, as one fixed graph.

After Zhao & Bilen, "Dataset Condensation with Differentiable Siamese Augmentation" (ICML 2021),
strategy ``color_crop_cutout_flip_scale_rotate`` in its single-transform mode: at every
iteration each class gets ONE kind of transformation, chosen at random, and the real and the
synthetic images of that class both get it ("siamese"), with parameters drawn per image:

- colour: ``x + (b - 1/2)``, then ``m_c + (x - m_c) 2 s`` (saturation about the pixel's channel
  mean; RGB only in effect), then ``m + (x - m)(c + 1/2)`` (contrast about the image mean),
  ``b, s, c ~ U(0, 1)``, on normalised images;
- crop: an integer translation of up to ``round(side / 8)`` pixels, zeros shifted in;
- cutout: a square of half the side, centred uniformly, set to zero;
- flip (RGB only: a mirrored digit is another symbol): left-right with probability 1/2;
- scale: ``x`` and ``y`` stretched by independent factors in ``[1/1.2, 1.2]``;
- rotate: by an angle uniform in ``[-15, 15]`` degrees.

Spatial kinds are one affine map per image, ``p_in = M (p_out - centre) + centre + t``
(bilinear, zeros outside), applied with ``keras.ops.image.affine_transform``. Zero is the
dataset mean in normalised units, as in DSA. The parameters are drawn on the host
(`draw_parameters`) and passed in as arrays; the graph (`augment`) applies every kind with
identity parameters for the kinds not chosen, so one compiled step serves every iteration.
"""
from __future__ import annotations

import numpy as np
from keras import ops

KINDS_GREY = ("colour", "crop", "cutout", "scale", "rotate")
KINDS_RGB = KINDS_GREY + ("flip",)
CROP_RATIO = 0.125
CUTOUT_RATIO = 0.5
SCALE_RATIO = 1.2
ROTATE_DEGREES = 15.0


def kinds_for(channels: int) -> tuple:
    return KINDS_RGB if channels == 3 else KINDS_GREY


def _affine_rows(matrix, shift, height, width):
    """Keras's 8-number projective rows of ``p_in = M (p - centre) + centre + shift``."""
    cy, cx = (height - 1) / 2.0, (width - 1) / 2.0
    a0, a1, b0, b1 = matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 1, 0], matrix[:, 1, 1]
    a2 = cx - a0 * cx - a1 * cy + shift[:, 1]
    b2 = cy - b0 * cx - b1 * cy + shift[:, 0]
    zeros = np.zeros_like(a0)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype(np.float32)


def _spatial(kind, rng, n, height, width):
    """``(matrix (n,2,2), shift (n,2) as (dy, dx))`` of a spatial kind (identity otherwise)."""
    matrix = np.tile(np.eye(2), (n, 1, 1))
    shift = np.zeros((n, 2))
    if kind == "crop":
        limit = np.array([int(height * CROP_RATIO + 0.5), int(width * CROP_RATIO + 0.5)])
        shift = rng.integers(-limit, limit + 1, size=(n, 2)).astype(np.float64)
    elif kind == "scale":
        factors = rng.uniform(1.0 / SCALE_RATIO, SCALE_RATIO, size=(n, 2))
        matrix = np.zeros((n, 2, 2))
        matrix[:, 0, 0], matrix[:, 1, 1] = factors[:, 1], factors[:, 0]
    elif kind == "rotate":
        theta = np.deg2rad(rng.uniform(-ROTATE_DEGREES, ROTATE_DEGREES, size=n))
        cos, sin = np.cos(theta), np.sin(theta)
        matrix = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], 1)
    elif kind == "flip":
        flip = rng.uniform(size=n) < 0.5
        matrix[flip, 0, 0] = -1.0  # x_in = cx - (x - cx)
    return matrix, shift


def _parameters_of(kind, rng, n, height, width) -> dict:
    """One kind's parameters for ``n`` images; every other kind at its identity."""
    matrix, shift = _spatial(kind, rng, n, height, width)
    colour = np.full((n, 3), 0.5)
    if kind == "colour":
        colour = rng.uniform(size=(n, 3))
    cutout = np.zeros((n, 3))  # (centre y, centre x, on)
    if kind == "cutout":
        cutout = np.stack([rng.uniform(0, height, n), rng.uniform(0, width, n), np.ones(n)], 1)
    return {"transform": _affine_rows(matrix, shift, height, width),
            "colour": colour.astype(np.float32), "cutout": cutout.astype(np.float32)}


def draw_parameters(rng, kinds_of_class, classes, height, width, channels) -> dict:
    """Per-image parameters for images of the given dense ``classes``; each image gets its
    class's kind (``kinds_of_class[c]``, an index into `kinds_for`)."""
    names = kinds_for(channels)
    n = len(classes)
    out = {"transform": np.zeros((n, 8), np.float32), "colour": np.zeros((n, 3), np.float32),
           "cutout": np.zeros((n, 3), np.float32)}
    for kind_index in np.unique(kinds_of_class[classes]):
        rows = np.flatnonzero(kinds_of_class[classes] == kind_index)
        params = _parameters_of(names[kind_index], rng, len(rows), height, width)
        for key, value in params.items():
            out[key][rows] = value
    return out


def augment(images, transform, colour, cutout):
    """The graph: affine map, colour, cutout (see the module docstring), per image."""
    x = ops.image.affine_transform(images, transform, interpolation="bilinear",
                                   fill_mode="constant", fill_value=0.0)
    brightness, saturation, contrast = (ops.reshape(colour[:, i], (-1, 1, 1, 1))
                                        for i in range(3))
    x = x + (brightness - 0.5)
    grey = ops.mean(x, axis=-1, keepdims=True)
    x = grey + (x - grey) * (2.0 * saturation)
    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    x = mean + (x - mean) * (contrast + 0.5)
    height, width = ops.shape(images)[1], ops.shape(images)[2]
    cy, cx, on = (ops.reshape(cutout[:, i], (-1, 1, 1, 1)) for i in range(3))
    rows = ops.reshape(ops.arange(height, dtype="float32"), (1, -1, 1, 1))
    cols = ops.reshape(ops.arange(width, dtype="float32"), (1, 1, -1, 1))
    half_h = float(int(images.shape[1] * CUTOUT_RATIO + 0.5)) / 2.0
    half_w = float(int(images.shape[2] * CUTOUT_RATIO + 0.5)) / 2.0
    inside = ops.cast(ops.logical_and(ops.abs(rows - cy) < half_h, ops.abs(cols - cx) < half_w),
                      x.dtype)
    return x * (1.0 - on * inside)
