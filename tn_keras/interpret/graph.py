"""Which part of a Keras model is a polynomial of its input, and of what degree.

A model built only from polynomial and affine layers is a polynomial of its raw input: an
affine map keeps the degree, a Taylor layer of order ``K`` applied to a polynomial of degree
``d`` gives degree ``K d`` (a polynomial of a polynomial), a sum has the larger degree of its
terms and a product the sum of them. The degree counted here is the *structural* degree: the
degree for generic weights (a weight that happens to be exactly zero can only lower it).
"""
from __future__ import annotations

import keras

from tn_keras.layers import DilatedPolyCG
from tn_keras.layers import PolyCG
from tn_keras.layers import TaylorDense


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


def _as_list(tensors):
    return list(tensors) if isinstance(tensors, (list, tuple)) else [tensors]


def _producers(model):
    """``id(output tensor) -> layer`` for every layer of a built functional model."""
    producers = {}
    for layer in model.layers:
        try:
            outputs = layer.output
        except (AttributeError, ValueError) as e:
            raise ValueError(
                f"layer '{layer.name}' is used more than once or is not connected in model "
                f"'{model.name}': interpret needs a functional model where each layer is "
                f"called once ({e}).") from None
        for tensor in _as_list(outputs):
            producers[id(tensor)] = layer
    return producers


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
    _check_functional(model)
    if output != "logits":
        try:
            return model.get_layer(output).output
        except ValueError:
            names = ", ".join(layer.name for layer in model.layers)
            raise ValueError(f"output={output!r}: expected 'logits' or a layer name of model "
                             f"'{model.name}' ({names}).") from None
    if len(model.outputs) != 1:
        raise ValueError(f"output='logits' needs a model with one output; model "
                         f"'{model.name}' has {len(model.outputs)}: pass a layer name.")
    tensor = model.outputs[0]
    last = _producers(model).get(id(tensor))
    if last is not None and _is_final_activation(last):
        tensor = last.input
    elif last is not None and type(last).__name__ in LINEAR_WITH_ACTIVATION \
            and _activation_name(last) == "softmax":
        raise NotAPolynomialError(
            f"layer '{last.name}' applies its softmax inside; build the model with a separate "
            "Activation('softmax') layer (or none) to read its logits.")
    return tensor


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


def tensor_degree(model, tensor):
    """The structural degree of the symbolic ``tensor`` as a polynomial of the model input."""
    producers = _producers(model)
    inputs = {id(t) for t in model.inputs}
    memo = {}

    def degree_of(t):
        key = id(t)
        if key in inputs:
            return 1
        if key not in memo:
            layer = producers.get(key)
            if layer is None:
                raise ValueError(f"tensor {t} is not produced by a layer of '{model.name}'.")
            if type(layer).__name__ == "InputLayer":
                memo[key] = 1
            else:
                # Inputs first: the error names the first non-polynomial layer in forward order.
                degrees = [degree_of(parent) for parent in _as_list(layer.input)]
                if isinstance(layer, keras.Model):
                    memo[key] = degree(layer, output="logits") * max(degrees)
                else:
                    memo[key] = layer_degree(layer, degrees)
        return memo[key]

    return degree_of(tensor)


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
    return tensor_degree(model, output_tensor(model, output))


def polynomial_part(model, output="logits"):
    """``(keras.Model from the raw input to output, its degree)``; raises if not polynomial."""
    tensor = output_tensor(model, output)
    order = tensor_degree(model, tensor)
    return keras.Model(model.inputs, tensor, name=f"{model.name}_{output}"), order
