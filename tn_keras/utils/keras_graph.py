"""Who calls whom in one functional Keras model, read from its public config.

Two packages walk a model's graph: the export's rewrites (`tn_keras.export.folding`,
`tn_keras.export.input_folding`), which ask whether a layer's output feeds exactly one
consumer, and `tn_keras.interpret.graph`, which follows each layer back to the model input to
count a polynomial's degree. Both read the graph here, so that one reader decides what a call,
an input tensor and an output are.

The export clones a model and shares every layer it does not change, so a layer can be called
in several models; which calls belong to *this* model must then be asked of the model, not of
the layer (``layer.input`` refuses a layer with several calls). `keras.Model.get_config`
answers exactly that: a functional model's config lists, for each of its layers, the calls
(``inbound_nodes``) that belong to this model only, renumbered within it, and every argument
tensor names the call that made it (``{"class_name": "__keras_tensor__", "config": {"shape",
"keras_history": [layer, call, output]}}``, the serialisation format `keras.Model.from_config`
reads). `ModelGraph` reads that and nothing else: no private Keras attribute. A model that has
no ``inbound_nodes`` in its config (Sequential, subclassed models) has no `ModelGraph`.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import keras


@dataclasses.dataclass(frozen=True)
class Tensor:
    """Output ``output`` of call ``call`` of layer ``layer``, with its (symbolic) shape."""

    layer: str
    call: int
    output: int
    shape: tuple


@dataclasses.dataclass(frozen=True)
class Call:
    """One call of ``layer`` in the model, reading the tensors ``inputs``."""

    layer: str
    inputs: tuple


class ModelGraph:
    """Who calls whom in one functional Keras model (`ModelGraph.of`).

    Attributes:
        layers: the names of the model's layers, in the order of its config (that of
            ``model.layers``).
        input_layers: the names of the model's input layers.
        output_layers: the names of the layers whose outputs are the model's, in order.
    """

    def __init__(self, config: dict):
        self._calls = {}
        for entry in config["layers"]:
            self._calls[entry["name"]] = [Call(entry["name"], tuple(_tensors(node)))
                                          for node in entry["inbound_nodes"]]
        self.layers = list(self._calls)
        self.input_layers = {ref[0] for ref in _refs(config["input_layers"])}
        self.output_layers = [ref[0] for ref in _refs(config["output_layers"])]

    @classmethod
    def of(cls, model) -> Optional["ModelGraph"]:
        """The graph of ``model``, or None when it is not a functional model.

        Raises:
            NotImplementedError: a layer of ``model`` cannot describe itself (a custom layer
                without ``get_config``), so neither can the model; the caller decides whether
                to go on without the graph.
        """
        if not isinstance(model, keras.Model):
            return None
        config = model.get_config()
        if not isinstance(config, dict) or "input_layers" not in config or not all(
                "inbound_nodes" in entry for entry in config.get("layers", ())):
            return None
        return cls(config)

    def calls(self, layer_name: str) -> list:
        """The `Call`s of the layer in this model (several when it is shared)."""
        return list(self._calls.get(layer_name, ()))

    def consumers(self, layer_name: str) -> list:
        """Every call in this model that reads an output of the layer (once per call)."""
        return [call for calls in self._calls.values() for call in calls
                if any(tensor.layer == layer_name for tensor in call.inputs)]

    def is_output(self, layer_name: str) -> bool:
        """Whether an output of the layer is an output of the model."""
        return layer_name in self.output_layers


def _refs(value) -> list:
    """Every ``[name, call, output]`` in ``input_layers`` / ``output_layers`` (one such list,
    a list of them, or a dict of them for named outputs)."""
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in _refs(item)]
    if value and isinstance(value[0], str):
        return [value]
    return [ref for item in value for ref in _refs(item)]


def _tensors(value):
    """The `Tensor` arguments of a serialised call, in order (nested lists and dicts too)."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            config = value["config"]
            name, call, output = config["keras_history"]
            yield Tensor(name, int(call), int(output), tuple(config["shape"]))
            return
        for item in value.values():
            yield from _tensors(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
