"""mnist_taylornet and fashion_taylornet: the CIFAR network's coarse-graining tree, slimmed.

Design (PROJECT, the paper's MNIST layer list is not available): the 28x28 image is zero-padded
to 32x32 so that three RG steps can run exactly as in the CIFAR network,

    32x32x1 -Conv-> 32x32x16 -CG-> 16x16x16 -Conv-> 16x16x32 -CG-> 8x8x32 -Conv-> 8x8x40
    -diCG(d=4)-> 4x4x40 -diCG(d=2)-> 2x2x40 -CG-> 1x1x40 -> Dense(10)

with BatchNorm after every Conv and CG and no activation: 8x8 -> 1 is a complete binary
coarse-graining tree, and the whole network stays under 100 k parameters.
"""
import dataclasses

import keras
from keras import layers

from tn_keras.zoo import blocks
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import register
from tn_keras.zoo.registry import register_recipe

MNIST_RECIPE = register_recipe("mnist", TrainingRecipe(
    epochs=15, batch_size=128, learning_rate=3e-3, weight_decay=5e-2, augmentation="translate"))
# Fashion-MNIST is harder: the width-1.0 tree underfits it, so it gets a wider tree and four
# times MNIST's epochs (the runs that chose both: docs/zoo.md, "Fashion-MNIST, width and length").
FASHION_RECIPE = register_recipe("fashion", dataclasses.replace(MNIST_RECIPE, epochs=60))
FASHION_WIDTH = 1.5
#: Readable by construction (docs/interpretation.md): a short fine-tuning of a trained network
#: (``--init-from NAME --init-head``) with the low-order penalty at weight 30, at a tenth of the
#: rate and without warm-up, so that the network stays near the minimum it was trained into;
#: weight 30 is where the penalty's sweep (benchmarks/readable_by_construction.py) still kept
#: the accuracy within half a point.
MNIST_LOW_ORDER_RECIPE = register_recipe("mnist_low_order", dataclasses.replace(
    MNIST_RECIPE, epochs=2, learning_rate=3e-4, warmup_epochs=0.0, low_order_penalty=30.0))


def _mnist_tree(dataset, input_shape, num_classes, width, classifier_activation, name,
                coarse_grain):
    inputs = keras.Input(input_shape, name="image")
    x = blocks.preprocessing(inputs, dataset)
    pad_rows, pad_cols = 32 - input_shape[0], 32 - input_shape[1]
    if pad_rows or pad_cols:
        x = layers.ZeroPadding2D(
            ((pad_rows // 2, pad_rows - pad_rows // 2), (pad_cols // 2, pad_cols - pad_cols // 2)),
            name="pad_to_32",
        )(x)
    c1, c2, c3 = (blocks.scaled(width, c) for c in (16, 32, 40))
    x = blocks.conv_bn(x, c1, "conv1")
    x = coarse_grain(x, c1, "cg1", dilation_rate=None)
    x = blocks.conv_bn(x, c2, "conv2")
    x = coarse_grain(x, c2, "cg2", dilation_rate=None)
    x = blocks.conv_bn(x, c3, "conv3")
    x = coarse_grain(x, c3, "dicg1", dilation_rate=4)
    x = coarse_grain(x, c3, "dicg2", dilation_rate=2)
    x = coarse_grain(x, c3, "cg3", dilation_rate=None)
    outputs = blocks.classifier_head(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def polynomial_coarse_grain(x, filters, name, dilation_rate):
    """The TaylorNet step: PolyCG (2x2, stride 2) or DilatedPolyCG (2x2, stride 1)."""
    if dilation_rate is None:
        return blocks.cg_bn(x, filters, name)
    return blocks.dicg_bn(x, filters, dilation_rate, name)


def relu_coarse_grain(x, filters, name, dilation_rate):
    """The baseline's step: Conv + ReLU + 2x2 max-pooling (halves the map like the CG)."""
    del dilation_rate  # pooling halves the map whatever the CG's dilation was
    return blocks.relu_pool(x, filters, name)


@register("mnist_taylornet", default_tag="e15", cross_architecture_role="taylornet",
          dataset="mnist", recipe=MNIST_RECIPE,
          description="28x28 MNIST: Conv + PolyCG/diCG tree to one site, < 100 k parameters")
def mnist_taylornet(input_shape=(28, 28, 1), num_classes=10, width=1.0,
                    classifier_activation="softmax", name="mnist_taylornet"):
    """MNIST TaylorNet (see the module docstring)."""
    return _mnist_tree("mnist", input_shape, num_classes, width, classifier_activation, name,
                       polynomial_coarse_grain)


@register("fashion_taylornet", default_tag="w15_e60", cross_architecture_role="taylornet",
          dataset="fashion_mnist", recipe=FASHION_RECIPE,
          description=f"28x28 Fashion-MNIST: the mnist_taylornet tree at width {FASHION_WIDTH}")
def fashion_taylornet(input_shape=(28, 28, 1), num_classes=10, width=FASHION_WIDTH,
                      classifier_activation="softmax", name="fashion_taylornet"):
    """Fashion-MNIST TaylorNet: mnist_taylornet at `FASHION_WIDTH`, with its preprocessing."""
    return _mnist_tree("fashion_mnist", input_shape, num_classes, width, classifier_activation,
                       name, polynomial_coarse_grain)


# Also the "relu" network of Fashion-MNIST and the 8x8 digits (same 1-channel images; built
# for their input shape), which have no ReLU baseline of their own.
@register("mnist_convnet_relu", default_tag="relu_e15", cross_architecture_role="relu",
          cross_architecture_datasets=("fashion_mnist", "digits"),
          dataset="mnist", recipe=MNIST_RECIPE, family="baseline",
          description="Baseline: mnist_taylornet with each CG replaced by Conv+ReLU+MaxPool")
def mnist_convnet_relu(input_shape=(28, 28, 1), num_classes=10, width=1.0,
                       classifier_activation="softmax", name="mnist_convnet_relu"):
    """The mnist_taylornet skeleton with ReLU conv + pooling steps instead of PolyCG."""
    return _mnist_tree("mnist", input_shape, num_classes, width, classifier_activation, name,
                       relu_coarse_grain)
