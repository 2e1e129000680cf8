"""Building blocks shared by the zoo's architectures (functional Keras)."""
from keras import layers

from tn_keras.layers import DilatedPolyCG
from tn_keras.layers import PolyCG

# BatchNorm is an affine map at inference, so a network with it stays a polynomial
# (docs/paper.md). The faster momentum suits the short training runs of the zoo.
BN_MOMENTUM = 0.9


def preprocessing(inputs, dataset):
    """Raw 0..255 pixels in; the dataset's per-channel standardisation inside the model.

    Falls back to a plain 1/255 rescaling when the input's channel count is not the dataset's
    (a user who builds an architecture for other images).
    """
    from tn_keras import datasets

    if inputs.shape[-1] == datasets.info(dataset).image_shape[-1]:
        layer = datasets.normalization_layer(dataset)
        return layer(inputs)
    return layers.Rescaling(1.0 / 255.0, name="preprocessing")(inputs)


def conv_bn(x, filters, name, kernel_size=3):
    """A linear 3x3 convolution ('same') and BatchNorm: no activation."""
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=name)(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_bn")(x)


def cg_bn(x, filters, name, kernel_size=2, strides=2, order=2, rank=1):
    """A PolyCG coarse-graining step ('valid') and BatchNorm."""
    x = PolyCG(filters, kernel_size, strides=strides, order=order, rank=rank, name=name)(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_bn")(x)


def dicg_bn(x, filters, dilation_rate, name, kernel_size=2, order=2, rank=1):
    """A DilatedPolyCG coarse-graining step ('valid', stride 1) and BatchNorm."""
    x = DilatedPolyCG(
        filters, kernel_size, dilation_rate=dilation_rate, order=order, rank=rank, name=name
    )(x)
    return layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_bn")(x)


def relu_pool(x, filters, name, kernel_size=3):
    """The baselines' stand-in for a CG step: Conv + BatchNorm + ReLU + 2x2 max-pooling."""
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=False, name=name)(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=name + "_bn")(x)
    x = layers.ReLU(name=name + "_relu")(x)
    return layers.MaxPooling2D(2, name=name + "_pool")(x)


def classifier_head(x, num_classes, classifier_activation):
    """Flatten to the embedding (named ``embedding``: distillation's default) and classify."""
    x = layers.Flatten(name="embedding")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, name="predictions", dtype="float32")(x)
    return x


def scaled(width, channels):
    """Channels scaled by a width multiplier, at least 1."""
    return max(1, int(round(channels * width)))
