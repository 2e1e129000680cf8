"""Lossless codecs for dataset shards (`tn_keras.datasets.shards`), standard library only.

A shard travels to a machine that may have nothing but Python, NumPy and a deep-learning
framework, so every codec here uses only Python's standard library and NumPy.

``zlib``
    DEFLATE over the rows' C-order bytes. Fast both ways; natural images hardly shrink
    (CIFAR-10 keeps about 90 % of its size).

``image-lzma``
    For ``uint8`` images ``(N, H, W)`` or ``(N, H, W, C)``, a reversible prediction step
    followed by LZMA (the ``.xz`` format). Each channel plane ``p`` is replaced by its
    two-dimensional difference

        r[i, j] = p[i, j] - p[i, j-1] - p[i-1, j] + p[i-1, j-1]      (mod 256, p[-1, .] = 0),

    the residual of the "plane" predictor ``p[i, j-1] + p[i-1, j] - p[i-1, j-1]``; for three
    channels the red and blue residuals are then taken relative to the green one
    (``r_R - r_G``, ``r_B - r_G``, mod 256), which removes most of what the colour planes
    share. Natural images are smooth, so the residuals cluster around 0 and LZMA codes them
    in fewer bits than the pixels. Decoding undoes each step exactly: add the green residual
    back, then two cumulative sums (mod 256) rebuild the plane. Arrays that are not ``uint8``
    images (labels, masks) get LZMA alone. docs/datasets.md has the measured ratios.

A codec is a pair of functions, ``encode(rows) -> bytes`` and ``decode(data, dtype, shape) ->
rows``; `CODECS` maps its name (recorded in the shard index) to it.
"""
from __future__ import annotations

import lzma
import zlib

import numpy as np

ZLIB_LEVEL = 6  # zlib's default: within a few percent of level 9, several times faster.
LZMA_PRESET = 6  # xz's default; presets 7-9 gain under 1 % on images at twice the time.


def _zlib_encode(rows: np.ndarray) -> bytes:
    return zlib.compress(np.ascontiguousarray(rows).tobytes(), ZLIB_LEVEL)


def _zlib_decode(data: bytes, dtype: np.dtype, shape: tuple) -> np.ndarray:
    return _from_bytes(zlib.decompress(data), dtype, shape)


def _is_image(dtype: np.dtype, shape: tuple) -> bool:
    return dtype == np.uint8 and (len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3)))


def _planes(rows: np.ndarray) -> np.ndarray:
    """``(N, H, W[, C])`` -> ``(N, C, H, W)``."""
    return rows[:, None] if rows.ndim == 3 else rows.transpose(0, 3, 1, 2)


def predict_residuals(rows: np.ndarray) -> np.ndarray:
    """The plane predictor's residuals of ``uint8`` images, colour-decorrelated, as uint8
    planes ``(N, C, H, W)`` (see the module docstring)."""
    planes = _planes(rows).astype(np.int16)
    residual = np.diff(np.diff(planes, axis=-1, prepend=0), axis=-2, prepend=0)
    if residual.shape[1] == 3:
        residual[:, 0] -= residual[:, 1]
        residual[:, 2] -= residual[:, 1]
    return (residual % 256).astype(np.uint8)


def rebuild_images(residual: np.ndarray, shape: tuple) -> np.ndarray:
    """The inverse of `predict_residuals`: images of ``shape`` from their residual planes."""
    planes = residual.astype(np.int64)
    if planes.shape[1] == 3:
        planes[:, 0] += planes[:, 1]
        planes[:, 2] += planes[:, 1]
    # Sums of residuals mod 256 are exact: int64 cannot overflow on 2**31 / 256**2 pixels.
    planes = np.cumsum(np.cumsum(planes, axis=-1), axis=-2) % 256
    planes = planes.astype(np.uint8)
    return planes[:, 0] if len(shape) == 3 else np.ascontiguousarray(planes.transpose(0, 2, 3, 1))


def _image_lzma_encode(rows: np.ndarray) -> bytes:
    rows = np.ascontiguousarray(rows)
    payload = predict_residuals(rows) if _is_image(rows.dtype, rows.shape) else rows
    return lzma.compress(payload.tobytes(), preset=LZMA_PRESET)


def _image_lzma_decode(data: bytes, dtype: np.dtype, shape: tuple) -> np.ndarray:
    raw = lzma.decompress(data)
    if not _is_image(dtype, shape):
        return _from_bytes(raw, dtype, shape)
    planes_shape = (shape[0], 1 if len(shape) == 3 else shape[-1]) + tuple(shape[1:3])
    return rebuild_images(_from_bytes(raw, dtype, planes_shape), shape)


def _from_bytes(raw: bytes, dtype: np.dtype, shape: tuple) -> np.ndarray:
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if len(raw) != expected:
        raise ValueError(f"decoded {len(raw)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(raw, dtype).reshape(shape)


#: Codec name (as recorded in a shard index) -> ``(encode, decode)``.
CODECS = {
    "zlib": (_zlib_encode, _zlib_decode),
    "image-lzma": (_image_lzma_encode, _image_lzma_decode),
}
DEFAULT_CODEC = "zlib"
