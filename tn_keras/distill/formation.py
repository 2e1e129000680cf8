"""Deprecated alias of `tn_keras.datasets.multi_formation`.

Multi-formation moved to `tn_keras.datasets` because reading a distilled level decodes it, and
`tn_keras.export` reads levels without depending on `tn_keras.distill`. This module re-exports
it, so code that imports it keeps working, and warns once on import.
"""
import warnings

from tn_keras.datasets.multi_formation import NO_FORMATION
from tn_keras.datasets.multi_formation import check_factor
from tn_keras.datasets.multi_formation import decode
from tn_keras.datasets.multi_formation import decode_ops
from tn_keras.datasets.multi_formation import decode_to_uint8
from tn_keras.datasets.multi_formation import encode
from tn_keras.datasets.multi_formation import tiles
from tn_keras.datasets.multi_formation import upsampling_matrix

__all__ = ["NO_FORMATION", "check_factor", "decode", "decode_ops", "decode_to_uint8", "encode",
           "tiles", "upsampling_matrix"]

warnings.warn("tn_keras.distill.formation is deprecated: import "
              "tn_keras.datasets.multi_formation.", DeprecationWarning, stacklevel=2)
