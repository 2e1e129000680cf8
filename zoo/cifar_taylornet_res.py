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

Variants for the ablations (builder keyword arguments, e.g. ``tn-keras train
cifar_taylornet_res --model-kwargs order=3``; each is recorded in the checkpoint's manifest):

- ``order``, ``rank``: of every polynomial layer (the degree becomes ``order ** (n + 5)``,
  ``n`` the number of blocks);
- ``batch_norm=False``: no BatchNormalization anywhere. The convolutions get biases, and a
  block's product layer starts with a zero linear part (``kernel_initializer="zeros"``), so
  that without ``BN_0`` a block still starts close to the identity (its branch is then only
  the small product term);
- ``separable_cg=True``: every 2x2 coarse-graining step is done as a 2x1 step along the
  rows and then a 1x2 step along the columns (each with its own BatchNorm), the x-then-y
  order of a separable renormalisation step; each CG step then contributes ``order ** 2``.
"""
import dataclasses

import keras
from keras import layers

from tn_keras.layers import DilatedPolyCG
from tn_keras.layers import PolyCG
from tn_keras.zoo import blocks
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import register
from tn_keras.zoo.registry import register_recipe

#: (stem/stage-1, stage-2, stage-3 channels), (blocks per stage) of each registered size.
SIZES = {
    "cifar_taylornet_res": ((64, 128, 256), (2, 2, 2)),
    "cifar_taylornet_res_small": ((32, 64, 120), (2, 2, 2)),
}

RES_RECIPE = register_recipe("cifar_res", TrainingRecipe(
    epochs=120, batch_size=128, learning_rate=2e-3, weight_decay=5e-2, augmentation="cifar",
    warmup_epochs=2.0))
#: The same AdamW schedule learning the probabilities that the fast recipe's GELU network
#: (`cifar_convnet_fast_gelu`) gives each augmented training image, scored with flip +
#: translate test-time augmentation: the teacher that took the Fig. S3 network from 77.7 to
#: 79.5 % (`cifar_teacher`), given to the residual family. Meant for ``--time-budget``, which
#: replaces the 120 epochs with the number that fits.
RES_TEACHER_RECIPE = register_recipe("cifar_res_teacher", dataclasses.replace(
    RES_RECIPE, test_time_augmentation=True, teacher="cifar_convnet_fast_gelu.e10"))


@dataclasses.dataclass(frozen=True)
class Variant:
    """The choices the ablations vary (module docstring); the defaults are the headline's."""

    order: int = 2
    rank: int = 1
    batch_norm: bool = True
    separable_cg: bool = False

    def normalised(self, x, name, gamma_initializer="ones"):
        """BatchNorm after ``x`` (``name + "_bn"``), or ``x`` itself without BatchNorm."""
        if not self.batch_norm:
            return x
        return layers.BatchNormalization(momentum=blocks.BN_MOMENTUM,
                                         gamma_initializer=gamma_initializer,
                                         name=name + "_bn")(x)


def residual_taylor_block(x, name, variant=Variant()):
    """``x + BN_0(PolyCG_1x1(BN(Conv3x3(x))))``: the identity at initialisation."""
    filters = x.shape[-1]
    h = layers.Conv2D(filters, 3, padding="same", use_bias=not variant.batch_norm,
                      name=name + "_conv")(x)
    h = variant.normalised(h, name + "_conv")
    h = PolyCG(filters, kernel_size=1, strides=1, order=variant.order, rank=variant.rank,
               kernel_initializer="glorot_uniform" if variant.batch_norm else "zeros",
               name=name + "_cg")(h)
    h = variant.normalised(h, name + "_cg", gamma_initializer="zeros")
    return layers.Add(name=name + "_add")([x, h])


def coarse_grain(x, filters, name, variant, strides=2, dilation_rate=None):
    """One CG step (2x2 PolyCG, or DilatedPolyCG when ``dilation_rate``) and its BatchNorm;
    with ``variant.separable_cg`` a 2x1 step then a 1x2 step, each with its BatchNorm."""
    if variant.separable_cg:
        steps = [((2, 1), "_x"), ((1, 2), "_y")]
    else:
        steps = [((2, 2), "")]
    for kernel_size, suffix in steps:
        along = [k > 1 for k in kernel_size]  # the axes this step coarse-grains
        options = dict(order=variant.order, rank=variant.rank, name=name + suffix)
        if dilation_rate is None:
            step = tuple(strides if a else 1 for a in along)
            layer = PolyCG(filters, kernel_size, strides=step, **options)
        else:
            step = tuple(dilation_rate if a else 1 for a in along)
            layer = DilatedPolyCG(filters, kernel_size, dilation_rate=step, **options)
        x = variant.normalised(layer(x), name + suffix)
    return x


def _residual_tree(input_shape, num_classes, channels, depths, width, classifier_activation,
                   name, variant):
    c1, c2, c3 = (blocks.scaled(width, c) for c in channels)
    inputs = keras.Input(input_shape, name="image")
    x = blocks.preprocessing(inputs, "cifar10")
    x = layers.Conv2D(c1, 3, padding="same", use_bias=not variant.batch_norm, name="stem")(x)
    x = variant.normalised(x, "stem")
    for stage, (filters, depth, step) in enumerate(zip((c2, c3), depths[:2], ("cg1", "cg2"))):
        for i in range(depth):
            x = residual_taylor_block(x, f"stage{stage + 1}_block{i + 1}", variant)
        x = coarse_grain(x, filters, step, variant)
    for i in range(depths[2]):
        x = residual_taylor_block(x, f"stage3_block{i + 1}", variant)
    x = coarse_grain(x, c3, "dicg1", variant, dilation_rate=4)
    x = coarse_grain(x, c3, "dicg2", variant, dilation_rate=2)
    x = coarse_grain(x, c3, "cg3", variant, strides=1)
    outputs = blocks.classifier_head(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)


@register("cifar_taylornet_res", dataset="cifar10", recipe=RES_RECIPE,
          description="CIFAR-10: residual TaylorNet, Fig. S3's CG tree with residual order-2 "
                      "blocks (no activation)")
def cifar_taylornet_res(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                        classifier_activation="softmax", name="cifar_taylornet_res",
                        order=2, rank=1, batch_norm=True, separable_cg=False):
    """The headline residual TaylorNet (see the module docstring)."""
    channels, depths = SIZES["cifar_taylornet_res"]
    return _residual_tree(input_shape, num_classes, channels, depths, width,
                          classifier_activation, name,
                          Variant(order, rank, batch_norm, separable_cg))


@register("cifar_taylornet_res_small", default_tag="kd",
          dataset="cifar10", recipe=RES_RECIPE,
          description="CIFAR-10: residual TaylorNet at half width, about Fig. S3's size")
def cifar_taylornet_res_small(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                              classifier_activation="softmax", name="cifar_taylornet_res_small",
                              order=2, rank=1, batch_norm=True, separable_cg=False):
    """The small residual TaylorNet (see the module docstring)."""
    channels, depths = SIZES["cifar_taylornet_res_small"]
    return _residual_tree(input_shape, num_classes, channels, depths, width,
                          classifier_activation, name,
                          Variant(order, rank, batch_norm, separable_cg))
