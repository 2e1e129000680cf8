"""cifar_taylornet: the paper's Fig. S3 network for CIFAR-10 (docs/paper.md, "The CIFAR-10 network").

    32x32x3 -Conv1-> 32x32x64 -CG1-> 16x16x64 -Conv2-> 16x16x64 -CG2-> 8x8x64 -Conv3-> 8x8x128
    -diCG1(d=4)-> 4x4x128 -Conv4-> 4x4x128 -diCG2(d=2)-> 2x2x128 -Conv5-> 2x2x128 -CG3-> 1x1x128
    -> Dense(10)

Conv = Conv(3, 3, filters, 1, 1, 1) with 'same' padding; CG = PolyCG(2x2) 'valid'; diCG =
DilatedPolyCG(2x2, dilation 4 then 2). BatchNorm after every Conv and CG (PROJECT: the paper
does not say; BatchNorm is affine at inference, so the network stays a polynomial). No
activation anywhere but the classifier's softmax.
"""
import dataclasses

import keras

from tn_keras.zoo import blocks
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import register
from tn_keras.zoo.registry import register_recipe

CIFAR_RECIPE = register_recipe("cifar", TrainingRecipe(
    epochs=18, batch_size=128, learning_rate=2e-3, weight_decay=5e-2, augmentation="cifar",
    warmup_epochs=1.0))
#: The same AdamW schedule with the fast recipe's three parts that do not depend on the
#: optimiser or on a whitening layer: label smoothing 0.2, Lookahead weight averaging and
#: flip + translate test-time augmentation (`tn-keras train cifar_taylornet --recipe ...`).
CIFAR_SMOOTH_LOOKAHEAD_RECIPE = register_recipe("cifar_smooth_lookahead", dataclasses.replace(
    CIFAR_RECIPE, label_smoothing=0.2, lookahead=True, test_time_augmentation=True))
#: The same AdamW schedule, longer, learning the probabilities that the fast recipe's GELU
#: network (`cifar_convnet_fast_gelu`) gives each augmented training image instead of the
#: labels (knowledge distillation, Hinton et al. 2015, at temperature 1): longer runs of the
#: plain recipe only widen the gap between train and test accuracy (docs/zoo.md), and a
#: teacher's soft targets are the regulariser that does not cost the network its polynomial
#: form. The teacher runs only during training; the student is the Fig. S3 network unchanged.
CIFAR_TEACHER_RECIPE = register_recipe("cifar_teacher", dataclasses.replace(
    CIFAR_RECIPE, epochs=26, test_time_augmentation=True, teacher="cifar_convnet_fast_gelu.e10"))


def _fig_s3(input_shape, num_classes, width, classifier_activation, name, coarse_grain):
    inputs = keras.Input(input_shape, name="image")
    x = blocks.preprocessing(inputs, "cifar10")
    c64, c128 = blocks.scaled(width, 64), blocks.scaled(width, 128)
    x = blocks.conv_bn(x, c64, "conv1")
    x = coarse_grain(x, c64, "cg1", dilation_rate=None, strides=2)
    x = blocks.conv_bn(x, c64, "conv2")
    x = coarse_grain(x, c64, "cg2", dilation_rate=None, strides=2)
    x = blocks.conv_bn(x, c128, "conv3")
    x = coarse_grain(x, c128, "dicg1", dilation_rate=4, strides=1)
    x = blocks.conv_bn(x, c128, "conv4")
    x = coarse_grain(x, c128, "dicg2", dilation_rate=2, strides=1)
    x = blocks.conv_bn(x, c128, "conv5")
    x = coarse_grain(x, c128, "cg3", dilation_rate=None, strides=1)
    outputs = blocks.classifier_head(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


def polynomial_coarse_grain(x, filters, name, dilation_rate, strides):
    """CG(2, 2, filters, s, s) or diCG(2, 2, filters, 1, 1, dilation)."""
    if dilation_rate is None:
        return blocks.cg_bn(x, filters, name, strides=strides)
    return blocks.dicg_bn(x, filters, dilation_rate, name)


def relu_coarse_grain(x, filters, name, dilation_rate, strides):
    """The baseline's step: Conv + ReLU + 2x2 max-pooling (each CG halves the map)."""
    del dilation_rate, strides
    return blocks.relu_pool(x, filters, name)


@register("cifar_taylornet", default_tag="kd", cross_architecture_role="taylornet",
          dataset="cifar10", recipe=CIFAR_RECIPE,
          description="CIFAR-10: the paper's Fig. S3 TaylorNet (Conv + CG/diCG, no activation)")
def cifar_taylornet(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                    classifier_activation="softmax", name="cifar_taylornet"):
    """The Fig. S3 TaylorNet (see the module docstring)."""
    return _fig_s3(input_shape, num_classes, width, classifier_activation, name,
                   polynomial_coarse_grain)


@register("cifar_convnet_relu", default_tag="relu_e18", cross_architecture_role="relu",
          dataset="cifar10", recipe=CIFAR_RECIPE, family="baseline",
          description="Baseline: the Fig. S3 skeleton with each CG replaced by Conv+ReLU+MaxPool")
def cifar_convnet_relu(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                       classifier_activation="softmax", name="cifar_convnet_relu"):
    """The Fig. S3 skeleton with ReLU conv + pooling steps instead of PolyCG / diCG."""
    return _fig_s3(input_shape, num_classes, width, classifier_activation, name,
                   relu_coarse_grain)
