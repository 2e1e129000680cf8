"""Multi-formation: several coarse-grained images stored in one image slot.

Kim et al., "Dataset Condensation via Efficient Synthetic-Data Parameterization" (IDC, ICML
2022), store each synthetic image at a coarser resolution, ``f x f`` of them to a slot of the
full size, and decode them by upsampling; IDM (Zhao et al., CVPR 2023) calls the same step
"partitioning and expansion". It is the paper's coarse-graining applied to storage: a slot of
``H x W`` pixels holds ``f^2`` images of ``(H/f) x (W/f)`` sites, so a set of N slots per class
trains like ``f^2 N`` images at the same number of stored pixels.

A slot ``S`` (H, W, C) with factor ``f`` holds the tiles ``S[i h:(i+1) h, j w:(j+1) w]``
(``h = H/f``, ``w = W/f``), tile ``(i, j)`` being image ``i f + j``. Decoding upsamples each tile
to ``H x W`` with bilinear interpolation at half-pixel centres, clamped at the edges (what
``tf.image.resize(..., "bilinear")`` and PyTorch's ``interpolate(..., align_corners=False)``
do): a fixed linear map ``D = U x_h U_w^T`` per channel, with

    U[o, k] = max(0, 1 - |(o + 1/2) / f - 1/2 - k|)   (then edge rows clamped to the border),

so the decoded images are exactly ``einsum("oh,nhwc,pw->nopc", U_h, tile, U_w)``, the same
matrix in NumPy (the loaders) and in Keras ops (the distillation, which differentiates through
it). Encoding (`encode`), the starting point of a distillation, averages each real image over
``f x f`` blocks (the coarse-graining) and tiles ``f^2`` of them into one slot.

It is a storage format of distilled levels, so it sits in `tn_keras.datasets` beside their
reader (`tn_keras.datasets.distilled_levels`), below both `tn_keras.distill`, which writes
slots, and `tn_keras.export`, which calibrates on decoded levels.
"""
from __future__ import annotations

import numpy as np

#: ``formation=1``: one full-size image a slot (no multi-formation).
NO_FORMATION = 1


def check_factor(factor, image_shape) -> int:
    """``factor`` as an int >= 1 that divides the image's height and width; ValueError naming
    the argument otherwise."""
    if int(factor) != factor or factor < 1:
        raise ValueError(f"formation must be a positive integer; got {factor!r}.")
    height, width = int(image_shape[0]), int(image_shape[1])
    if height % int(factor) or width % int(factor):
        raise ValueError(f"formation={factor} must divide the image size {height}x{width}.")
    return int(factor)


def upsampling_matrix(size: int, factor: int) -> np.ndarray:
    """``U`` (size * factor, size): bilinear upsampling at half-pixel centres, edge-clamped."""
    out = np.arange(size * factor)
    source = np.clip((out + 0.5) / factor - 0.5, 0.0, size - 1)  # clamp: edge rows repeat
    matrix = np.maximum(0.0, 1.0 - np.abs(source[:, None] - np.arange(size)[None, :]))
    return matrix.astype(np.float32)


def tiles(slots: np.ndarray, factor: int) -> np.ndarray:
    """``(N f^2, H/f, W/f, C)``: the tiles of each slot, slot by slot, row-major."""
    n, height, width, channels = slots.shape
    h, w = height // factor, width // factor
    t = np.reshape(slots, (n, factor, h, factor, w, channels))
    return np.reshape(np.transpose(t, (0, 1, 3, 2, 4, 5)), (n * factor * factor, h, w, channels))


def decode(slots: np.ndarray, labels: np.ndarray, factor: int):
    """``(images float32 (N f^2, H, W, C), labels (N f^2,))``: every tile upsampled to the
    slot's size; each tile keeps its slot's label. ``factor`` 1 returns the slots as given."""
    factor = check_factor(factor, np.shape(slots)[1:])
    if factor == NO_FORMATION:
        return slots, labels
    small = tiles(np.asarray(slots, np.float32), factor)
    up_h = upsampling_matrix(small.shape[1], factor)
    up_w = upsampling_matrix(small.shape[2], factor)
    images = np.einsum("oh,nhwc,pw->nopc", up_h, small, up_w, optimize=True)
    return images, np.repeat(np.asarray(labels), factor * factor)


def decode_to_uint8(slots: np.ndarray, labels: np.ndarray, factor: int):
    """`decode` rounded to uint8 grey levels, as the loaders return images."""
    images, labels = decode(slots, labels, factor)
    return np.clip(np.round(images), 0, 255).astype(np.uint8), labels


def decode_ops(slots, factor: int):
    """`decode`'s images in Keras ops (differentiable; ``slots`` a tensor (N, H, W, C))."""
    from keras import ops

    if factor == NO_FORMATION:
        return slots
    n, height, width, channels = slots.shape
    h, w = height // factor, width // factor
    t = ops.reshape(slots, (-1, factor, h, factor, w, channels))
    small = ops.reshape(ops.transpose(t, (0, 1, 3, 2, 4, 5)), (-1, h, w, channels))
    up_h = ops.convert_to_tensor(upsampling_matrix(h, factor))
    up_w = ops.convert_to_tensor(upsampling_matrix(w, factor))
    return ops.einsum("oh,nhwc,pw->nopc", up_h, small, up_w)


def encode(images: np.ndarray, factor: int) -> np.ndarray:
    """``f^2`` images a slot: each averaged over ``f x f`` blocks and tiled row-major, the
    inverse of `tiles` (``len(images)`` must be a multiple of ``f^2``). Float32, 0..255."""
    n, height, width, channels = np.shape(images)
    per_slot = factor * factor
    if n % per_slot:
        raise ValueError(f"encode needs a multiple of formation^2 = {per_slot} images; got {n}.")
    h, w = height // factor, width // factor
    x = np.asarray(images, np.float32).reshape(n, h, factor, w, factor, channels).mean((2, 4))
    x = x.reshape(n // per_slot, factor, factor, h, w, channels)
    return np.transpose(x, (0, 1, 3, 2, 4, 5)).reshape(n // per_slot, height, width, channels)
