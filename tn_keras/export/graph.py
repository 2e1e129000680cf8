"""The export's use of a model's graph: `tn_keras.utils.keras_graph`, or no rewrite.

The graph rewrites (`folding`, `input_folding`) are optimisations: a model whose graph cannot
be read is exported as it is, with a warning that says why, rather than refused.
"""
from __future__ import annotations

import warnings
from typing import Optional

from tn_keras.utils.keras_graph import ModelGraph


def model_graph(model) -> Optional[ModelGraph]:
    """`ModelGraph.of` ``model``; None, with a warning, when a layer cannot describe itself."""
    try:
        return ModelGraph.of(model)
    except NotImplementedError as e:
        warnings.warn(f"The graph of model {model.name!r} cannot be read from its config "
                      f"({e}); the export leaves its layers unfolded.", RuntimeWarning,
                      stacklevel=3)
        return None
