"""Which part of a Keras model is a polynomial of its input, and of what degree.

A model built only from polynomial and affine layers is a polynomial of its raw input: an
affine map keeps the degree, a Taylor layer of order ``K`` applied to a polynomial of degree
``d`` gives degree ``K d`` (a polynomial of a polynomial), a sum has the larger degree of its
terms and a product the sum of them. The degree counted here is the *structural* degree: the
degree for generic weights (a weight that happens to be exactly zero can only lower it).

The degree is counted along the model's graph as `tn_keras.utils.keras_graph` reads it (each
layer's call and the layers it reads); what is specific to interpretation is here: which
layers are polynomial or affine, what a degree becomes through each, and which tensor the
logits are.
"""
from __future__ import annotations

import keras

from tn_keras.layers import DilatedPolyCG
from tn_keras.layers import PolyCG
from tn_keras.layers import TaylorDense
from tn_keras.utils.keras_graph import ModelGraph


class NotAPolynomialError(ValueError):
    """The model (or the part of it asked for) is not a polynomial of its input."""


# Layers that are affine maps of their input at inference (degree unchanged). Dropout and the
# noise layers are the identity at inference; BatchNormalization uses its moving statistics.
AFFINE_LAYERS = (
    "Normalization", "Rescaling", "BatchNormalization", "Flatten", "Reshape", "Permute",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalAveragePooling3D", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "Identity",
    "UpSampling1D", "UpSampling2D", "UpSampling3D", "RepeatVector", "PatchWhitening",
)
# Affine only when their activation is linear.
LINEAR_WITH_ACTIVATION = (
    "Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
    "SeparableConv1D", "SeparableConv2D", "Conv1DTranspose", "Conv2DTranspose",
    "Conv3DTranspose",
)
MAX_DEGREE_MERGES = ("Add", "Subtract", "Average", "Concatenate")


def _activation_name(layer):
    activation = getattr(layer, "activation", None)
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", str(activation))


def layer_degree(layer, input_degrees):
    """The degree of ``layer``'s output given the degrees of its inputs.

    Raises:
        NotAPolynomialError: naming the layer, when it is not polynomial.
    """
    kind = type(layer).__name__
    if isinstance(layer, (PolyCG, DilatedPolyCG, TaylorDense)):
        return layer.order * input_degrees[0]
    if kind == "InputLayer":
        return 1
    if kind in AFFINE_LAYERS:
        return input_degrees[0]
    if kind in LINEAR_WITH_ACTIVATION or kind == "Activation":
        if _activation_name(layer) == "linear":
            return input_degrees[0]
        raise NotAPolynomialError(
            f"not a polynomial: layer '{layer.name}' ({kind}) applies the activation "
            f"'{_activation_name(layer)}'.")
    if kind in MAX_DEGREE_MERGES:
        return max(input_degrees)
    if kind == "Multiply":
        return sum(input_degrees)
    raise NotAPolynomialError(
        f"not a polynomial: layer '{layer.name}' ({kind}) is not a polynomial or affine map "
        "(for example ReLU, max-pooling or an activation).")


def functional_graph(model):
    """``(functional model, its ModelGraph)`` for a built functional or Sequential ``model``.

    A Sequential model's config lists its layers but not their calls, so its graph is read
    from the functional model over the same layers and tensors (its input layer included).

    Raises:
        ValueError: ``model`` has no graph, or a layer is called more than once in it
            (interpretation follows one call of each layer).
    """
    _check_functional(model)
    functional = model
    if isinstance(model, keras.Sequential):
        functional = keras.Model(model.inputs, model.outputs, name=model.name)
    try:
        model_graph = ModelGraph.of(functional)
    except NotImplementedError as e:
        raise ValueError(f"model '{model.name}': interpret reads the model's graph from its "
                         f"config, and a layer cannot describe itself ({e}).") from None
    if model_graph is None:
        raise ValueError(f"model '{model.name}': interpret needs a built functional (or "
                         "Sequential) model with one input.")
    for name in model_graph.layers:
        if name not in model_graph.input_layers and len(model_graph.calls(name)) != 1:
            raise ValueError(
                f"layer '{name}' is used more than once in model '{model.name}': interpret "
                "needs a functional model where each layer is called once.")
    return functional, model_graph


def _is_final_activation(layer):
    kind = type(layer).__name__
    return kind in ("Softmax", "Activation") and (
        kind == "Softmax" or _activation_name(layer) != "linear")


def output_tensor(model, output="logits"):
    """The symbolic tensor ``output`` names: the pre-softmax logits, or a layer's output.

    ``"logits"``: the model's output with a final ``Softmax`` / ``Activation`` layer stripped
    (the zoo's models end in ``Activation("softmax", name="predictions")``); any other string
    is the name of the layer whose output is wanted.
    """
    return _output(model, output, *functional_graph(model))[0]


def _output(model, output, functional, model_graph):
    """``(output_tensor, the name of the layer that computes it)``."""
    if output != "logits":
        try:
            return functional.get_layer(output).output, output
        except ValueError:
            names = ", ".join(layer.name for layer in model.layers)
            raise ValueError(f"output={output!r}: expected 'logits' or a layer name of model "
                             f"'{model.name}' ({names}).") from None
    if len(model.outputs) != 1:
        raise ValueError(f"output='logits' needs a model with one output; model "
                         f"'{model.name}' has {len(model.outputs)}: pass a layer name.")
    last = functional.get_layer(model_graph.output_layers[0])
    if _is_final_activation(last):
        (call,) = model_graph.calls(last.name)
        return last.input, call.inputs[0].layer
    if type(last).__name__ in LINEAR_WITH_ACTIVATION and _activation_name(last) == "softmax":
        raise NotAPolynomialError(
            f"layer '{last.name}' applies its softmax inside; build the model with a separate "
            "Activation('softmax') layer (or none) to read its logits.")
    return model.outputs[0], last.name


def _check_functional(model):
    if not isinstance(model, keras.Model):
        raise ValueError(f"model: expected a keras.Model, received {type(model).__name__}.")
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        inputs = None  # an unbuilt subclassed model has no symbolic inputs
    if not inputs or len(inputs) != 1:
        raise ValueError(
            f"model '{model.name}': interpret needs a built functional (or Sequential) model "
            "with one input.")


def layer_output_degree(model, layer_name):
    """The structural degree of layer ``layer_name``'s output as a polynomial of the model
    input, counted along the model's graph from its input."""
    return _degree_along(*functional_graph(model), layer_name)


def _degree_along(functional, model_graph, layer_name):
    memo = {}

    def degree_of(name):
        if name not in memo:
            layer = functional.get_layer(name)
            if name in model_graph.input_layers or type(layer).__name__ == "InputLayer":
                memo[name] = 1
            else:
                (call,) = model_graph.calls(name)
                # Inputs first: the error names the first non-polynomial layer in forward order.
                degrees = [degree_of(tensor.layer) for tensor in call.inputs]
                if isinstance(layer, keras.Model):
                    memo[name] = degree(layer, output="logits") * max(degrees)
                else:
                    memo[name] = layer_degree(layer, degrees)
        return memo[name]

    return degree_of(layer_name)


def degree(model, output="logits"):
    """The exact (structural) polynomial degree of ``model``'s logits in its raw input.

    Counts each PolyCG / DilatedPolyCG / TaylorDense order multiplicatively along the graph
    (a polynomial of a polynomial); Normalization, linear Conv / Dense, inference
    BatchNormalization, average pooling, padding and reshaping are affine; Add takes the
    largest degree of its inputs, Multiply the sum. The final softmax is not part of the logits.

    Raises:
        NotAPolynomialError: naming the first layer that is not polynomial (a ReLU, a
            max-pooling, a Dense with an activation, ...).
    """
    functional, model_graph = functional_graph(model)
    _, layer_name = _output(model, output, functional, model_graph)
    return _degree_along(functional, model_graph, layer_name)


def polynomial_part(model, output="logits"):
    """``(keras.Model from the raw input to output, its degree)``; raises if not polynomial."""
    functional, model_graph = functional_graph(model)
    tensor, layer_name = _output(model, output, functional, model_graph)
    order = _degree_along(functional, model_graph, layer_name)
    return keras.Model(model.inputs, tensor, name=f"{model.name}_{output}"), order
