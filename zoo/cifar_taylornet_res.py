"""cifar_taylornet_res: activation-free residual TaylorNets for CIFAR-10.

The Fig. S3 network (`cifar_taylornet`) has five product layers in all, one per coarse-graining
step, and trails a ReLU network of the same skeleton by about 8 points on CIFAR-10. Activation-
free polynomial networks that do match ReLU networks (Pi-nets, R-PolyNets, MONet) add many more
products, each inside a residual block whose product branch starts at zero and is normalised,
and train with strong regularisation. This family keeps the paper's hierarchy of coarse-graining
steps and adds such blocks between them:

    image -> Normalization -> Conv3x3 + BN                                   32x32 x c1
          -> n1 x ResidualTaylorBlock(c1)                                    32x32
          -> CG1  = PolyCG(2x2, stride 2) + BN                               16x16 x c2
          -> n2 x ResidualTaylorBlock(c2)                                    16x16
          -> CG2  = PolyCG(2x2, stride 2) + BN                               8x8 x c3
          -> n3 x ResidualTaylorBlock(c3)                                    8x8
          -> diCG1 = DilatedPolyCG(2x2, dilation 4) + BN                     4x4 x c3
          -> diCG2 = DilatedPolyCG(2x2, dilation 2) + BN                     2x2 x c3
          -> CG3  = PolyCG(2x2) + BN                                         1x1 x c3
          -> Flatten ("embedding") -> Dense -> softmax

    ResidualTaylorBlock(x) = x + BN_0(PolyCG_1x1(BN(Conv3x3(x))))

``PolyCG_1x1`` is the order-2 Taylor expansion of a pointwise map, ``b + W h + (U h) * (V h)``,
of the 3x3 neighbourhood that the convolution gathered; ``BN_0`` is a BatchNormalization whose
scale starts at zero, so every block starts as the identity and the network as a Fig. S3-like
tree (R-PolyNets' learnable ``alpha`` on the product term, started at zero, does the same).

Every layer is linear (Conv2D, Dense, BatchNormalization at inference, Normalization), a skip
connection, or one of the project's polynomial layers; the only non-linearity is the final
softmax. The logits are therefore an exact polynomial of the raw pixels, of degree
``2 ** (n1 + n2 + n3 + 5)``: each block and each coarse-graining step doubles it.
"""
import keras
from keras import layers

from tn_keras.layers import PolyCG
from tn_keras.zoo import blocks
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import register

#: (stem/stage-1, stage-2, stage-3 channels), (blocks per stage) of each registered size.
SIZES = {
    "cifar_taylornet_res": ((64, 128, 256), (2, 2, 2)),
    "cifar_taylornet_res_small": ((32, 64, 120), (2, 2, 2)),
}

RES_RECIPE = TrainingRecipe(epochs=120, batch_size=128, learning_rate=2e-3, weight_decay=5e-2,
                            augmentation="cifar", warmup_epochs=2.0)


def residual_taylor_block(x, name):
    """``x + BN_0(PolyCG_1x1(BN(Conv3x3(x))))``: the identity at initialisation."""
    filters = x.shape[-1]
    h = blocks.conv_bn(x, filters, name + "_conv")
    h = PolyCG(filters, kernel_size=1, strides=1, order=2, rank=1, name=name + "_cg")(h)
    h = layers.BatchNormalization(momentum=blocks.BN_MOMENTUM, gamma_initializer="zeros",
                                  name=name + "_cg_bn")(h)
    return layers.Add(name=name + "_add")([x, h])


def _residual_tree(input_shape, num_classes, channels, depths, width, classifier_activation,
                   name):
    c1, c2, c3 = (blocks.scaled(width, c) for c in channels)
    inputs = keras.Input(input_shape, name="image")
    x = blocks.preprocessing(inputs, "cifar10")
    x = blocks.conv_bn(x, c1, "stem")
    for stage, (filters, depth, step) in enumerate(zip((c2, c3), depths[:2], ("cg1", "cg2"))):
        for i in range(depth):
            x = residual_taylor_block(x, f"stage{stage + 1}_block{i + 1}")
        x = blocks.cg_bn(x, filters, step, strides=2)
    for i in range(depths[2]):
        x = residual_taylor_block(x, f"stage3_block{i + 1}")
    x = blocks.dicg_bn(x, c3, 4, "dicg1")
    x = blocks.dicg_bn(x, c3, 2, "dicg2")
    x = blocks.cg_bn(x, c3, "cg3", strides=1)
    outputs = blocks.classifier_head(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


@register("cifar_taylornet_res", parameters=4933578, macs_per_image=370892544,
          dataset="cifar10", recipe=RES_RECIPE,
          description="CIFAR-10: residual TaylorNet, Fig. S3's CG tree with residual order-2 "
                      "blocks (no activation)")
def cifar_taylornet_res(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                        classifier_activation="softmax", name="cifar_taylornet_res"):
    """The headline residual TaylorNet (see the module docstring)."""
    channels, depths = SIZES["cifar_taylornet_res"]
    return _residual_tree(input_shape, num_classes, channels, depths, width,
                          classifier_activation, name)


@register("cifar_taylornet_res_small", parameters=1112426, macs_per_image=89294728,
          dataset="cifar10", recipe=RES_RECIPE,
          description="CIFAR-10: residual TaylorNet at half width, about Fig. S3's size")
def cifar_taylornet_res_small(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                              classifier_activation="softmax", name="cifar_taylornet_res_small"):
    """The small residual TaylorNet (see the module docstring)."""
    channels, depths = SIZES["cifar_taylornet_res_small"]
    return _residual_tree(input_shape, num_classes, channels, depths, width,
                          classifier_activation, name)
