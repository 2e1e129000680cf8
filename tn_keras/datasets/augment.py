"""Batch augmentation in NumPy: the maths of the tf.data pipeline, for every other backend.

Both augmentations are a crop of the zero-padded batch, written as one gather:

    out[i, r, c] = padded[i, dy_i + r, dx_i + col_i(c)],  col_i(c) = W - 1 - c if flip_i else c

where ``padded`` has ``P`` zero pixels on each side, ``dy_i, dx_i`` are uniform in
``0 .. 2P`` (a shift of ``-P .. +P``) and ``flip_i`` is a fair coin. Crop+flip uses
``P = CROP_PADDING`` (He et al., 2016); "translate" uses ``P = TRANSLATE_PIXELS`` and never
flips (a mirrored 2 is not a 2). The offsets are drawn by `draw_offsets` from a
`numpy.random.Generator`, so a seeded generator gives the same batch every time.

"flip_translate" (the fast recipe's, after Jordan's airbench) pads by *reflection* instead of
zeros, shifts by up to ``TRANSLATE_PIXELS``, and flips *alternately*: image ``k`` of the
training set has a fixed random bit ``b_k`` (`base_flips`) and is flipped in epoch ``e`` when
``b_k XOR (e mod 2)``, so every image is seen both ways in any two consecutive epochs instead
of by chance.
"""
from __future__ import annotations

import numpy as np

CROP_PADDING = 4  # Pixels of zero padding before the random crop (He et al., 2016).
TRANSLATE_PIXELS = 2  # Largest shift of augment="translate" (digits and clothes stay whole).
#: The augmentations a pipeline knows, besides True (crop + flip) and False (none).
NAMED_AUGMENTATIONS = ("translate", "flip_translate")


def draw_offsets(rng: np.random.Generator, n: int, padding: int, flip: bool):
    """``(dy, dx, flips)`` for ``n`` images: offsets in ``0 .. 2 * padding``, flip bits."""
    dy = rng.integers(0, 2 * padding + 1, size=n)
    dx = rng.integers(0, 2 * padding + 1, size=n)
    flips = rng.integers(0, 2, size=n).astype(bool) if flip else np.zeros(n, bool)
    return dy, dx, flips


def shift_and_flip(images: np.ndarray, dy: np.ndarray, dx: np.ndarray, flips: np.ndarray,
                   padding: int, mode: str = "constant") -> np.ndarray:
    """The module's formula for a batch ``(N, H, W, C)``; returns float32. ``mode`` is
    `numpy.pad`'s: ``"constant"`` (zeros) or ``"reflect"``."""
    n, h, w = images.shape[:3]
    padded = np.pad(images.astype(np.float32, copy=False),
                    ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode=mode)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = np.where(flips[:, None], np.arange(w - 1, -1, -1)[None, :], np.arange(w)[None, :])
    cols = dx[:, None] + cols
    return padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def crop_and_flip(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random crop after ``CROP_PADDING`` zero pixels, and a random horizontal flip."""
    dy, dx, flips = draw_offsets(rng, len(images), CROP_PADDING, flip=True)
    return shift_and_flip(images, dy, dx, flips, CROP_PADDING)


def translate(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random shift of up to ``TRANSLATE_PIXELS`` in each direction, never a flip."""
    dy, dx, flips = draw_offsets(rng, len(images), TRANSLATE_PIXELS, flip=False)
    return shift_and_flip(images, dy, dx, flips, TRANSLATE_PIXELS)


def base_flips(seed: int, n: int) -> np.ndarray:
    """The fixed flip bit ``b_k`` of each of the ``n`` training images (a pure function of
    ``seed``; the tf.data pipeline draws the same bits with its own generator)."""
    return np.random.default_rng([int(seed), 2]).integers(0, 2, size=n).astype(bool)


def flip_translate(images: np.ndarray, flips: np.ndarray, rng: np.random.Generator
                   ) -> np.ndarray:
    """Reflection-padded shifts of up to ``TRANSLATE_PIXELS``, and the given flip bits."""
    dy, dx, _ = draw_offsets(rng, len(images), TRANSLATE_PIXELS, flip=False)
    return shift_and_flip(images, dy, dx, np.asarray(flips, bool), TRANSLATE_PIXELS,
                          mode="reflect")
