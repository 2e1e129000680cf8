"""Which nodes of a layer belong to a given functional model.

The export's graph rewrites (`folding`, `input_folding`) clone a model and share every layer
they do not change, so a layer can have nodes in several models. Whether its output feeds one
consumer must then be asked of the model being rewritten, not of the layer.

Keras has no public API for this: a functional model keeps the keys of its own nodes in
``_nodes`` (built with ``make_node_key``), and layers list theirs in ``_inbound_nodes`` /
``_outbound_nodes``. These private names hold in Keras 3.15 (the version tested here); the
folding tests fail if they change.
"""
import keras
from keras.src.ops.function import make_node_key


def is_functional(model) -> bool:
    """Whether ``model`` is a functional Keras model (the only kind the rewrites understand)."""
    return isinstance(model, keras.Model) and hasattr(model, "_nodes")


def inbound_nodes(model, layer) -> list:
    """The calls of ``layer`` that are part of ``model``."""
    return [node for index, node in enumerate(layer._inbound_nodes)
            if make_node_key(layer, index) in model._nodes]


def outbound_nodes(model, layer) -> list:
    """The calls in ``model`` that consume an output of ``layer``."""
    result = []
    for node in layer._outbound_nodes:
        index = node.operation._inbound_nodes.index(node)
        if make_node_key(node.operation, index) in model._nodes:
            result.append(node)
    return result
