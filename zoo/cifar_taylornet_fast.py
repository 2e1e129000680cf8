"""cifar_taylornet_fast: activation-free CIFAR-10 networks for the fast recipe, and their twin.

The skeleton is Jordan's airbench94 (2024), the fastest published way to 94 % on CIFAR-10,
with every non-polynomial step replaced (the ``gelu`` twin keeps them all):

    image -> Normalization -> PatchWhitening(2x2, frozen)                      31x31 x 24
          -> group(c1) -> group(c2) -> group(c3)                               3x3  x c3
          -> AveragePooling(3) -> Flatten ("embedding") -> Dense -> x 1/9 ("logits") -> softmax

    group(c):  Conv3x3 -> pool(2) -> BN -> T -> Conv3x3 -> BN -> T

    activation-free:  pool = AveragePooling2D,  T(z) = z + BN_g(PolyCG_1x1(z))
                      (``product="quadratic"``: T(z) = PolyCG_1x1(z) starting as GELU's
                      per-channel quadratic, also after the whitening: the step of a
                      converted twin, benchmarks/conversion_probe.py)
    gelu twin:        pool = MaxPooling2D,      T(z) = GELU(z)   (and a GELU after whitening,
                      a max-pooling at the end: airbench94 itself)

``PolyCG_1x1(z) = W z + (U z) * (V z)`` is the project's order-2, rank-1 coarse-graining layer
on a 1x1 patch: a linear map plus the product of two linear maps of the channels at each site.
``W`` starts at zero and ``U, V`` as Glorot-uniform projections, so the branch starts as a pure
product; ``BN_g`` is a BatchNormalization whose scale starts at ``GATE_START`` (one): the
normalised product branch starts as large as the identity path beside it (R-PolyNets'
``alpha``, Pi-nets' normalised products), and the network can turn each product down or up.
Every other BatchNorm has a fixed unit scale and a trainable shift, momentum 0.6 and epsilon
1e-12 (airbench's). The convolutions start as `DiracUniform` kernels. Unlike the twin, no gated
product follows the whitening: whitening amplifies the rare patch directions, and a product of
those outliers swamps the rest of the image.

What was tried and measured (docs/zoo.md, "The fast family"): an elementwise square in place of
each GELU (``z/2 + z^2/sqrt(2 pi)``, GELU's Taylor expansion), with or without BatchNorm after
it, and with or without a product after the whitening, stays at chance; the gated ``T`` learns.

Every layer of the activation-free network is affine at inference (Normalization,
PatchWhitening, Conv2D, BatchNormalization, average pooling, Dense, Rescaling), a sum, or a
PolyCG; the logits are a polynomial of the raw pixels of degree ``2 ** 6 = 64`` (six ``T``;
``2 ** 7 = 128`` with ``product="quadratic"``, which adds the step after the whitening).
"""
import keras
from keras import layers

from tn_keras.layers import DiracUniform
from tn_keras.layers import PatchWhitening
from tn_keras.layers import PolyCG
from tn_keras.layers import StackedIdentity
from tn_keras.layers.activation_fit import gaussian_quadratic_fit
from tn_keras.zoo import blocks
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import register
from tn_keras.zoo.registry import register_recipe

#: The group widths of each registered size (airbench94's and airbench93's).
WIDTHS = {"full": (64, 256, 256), "small": (64, 128, 128)}
BN_MOMENTUM = 0.6
BN_EPSILON = 1e-12
LOGIT_SCALE = 1.0 / 9.0
# The product branch's starting scale. A start at zero (each T the identity, the network
# linear) learnt no faster than a linear network; docs/zoo.md has the measured comparison.
GATE_START = 1.0

#: airbench94's hyperparameters in Keras terms (`tn_keras.training.optimizers`): a peak rate
#: of 1.5 on the batch-mean gradient is airbench's 11.5 per 1024 summed examples, and the L2
#: coefficient 0.00133 gives its decay of 0.0153 per 1024 examples at that rate. Whole epochs
#: (10 for airbench's 9.9), the rising part 23 % of them.
FAST_RECIPE = register_recipe("airbench94", TrainingRecipe(
    epochs=10, batch_size=1024, learning_rate=1.5, weight_decay=0.0153 / 7.6667 / 1.5,
    warmup_fraction=0.23, augmentation="flip_translate", optimizer="nesterov", momentum=0.85,
    bias_lr_multiplier=64.0, label_smoothing=0.2, lookahead=True, whitening_images=5000,
    test_time_augmentation=True))

#: Converting the trained GELU twin into the quadratic network (`tn_keras.training.conversion`):
#: its weights start the model, each GELU replaced by its fitted quadratic at half the
#: curvature, and 10 epochs learn its probabilities for the recipe's augmented images at a
#: small rate (0.01 collapsed within 300 steps; benchmarks/conversion_probe.py, docs/zoo.md).
CONVERSION_RECIPE = register_recipe("gelu_conversion", TrainingRecipe(
    epochs=10, batch_size=256, learning_rate=0.002, weight_decay=0.0, momentum=0.9,
    optimizer="nesterov_cosine", global_clipnorm=5.0, augmentation="flip_translate",
    whitening_images=5000, test_time_augmentation=True,
    teacher="cifar_convnet_fast_gelu.e10", conversion="gelu_quadratic", curvature_scale=0.5,
    robust_batch_norm=True, statistics_images=2000))


def _batch_norm(x, name, trainable_scale=False, gamma_initializer="ones"):
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                     scale=trainable_scale, gamma_initializer=gamma_initializer,
                                     name=name)(x)


def gated_product(z, name):
    """``T(z) = z + BN_g(W z + (U z) * (V z))``: the identity plus a normalised quadratic
    branch (``product="gated"``). ``W`` starts at zero and ``U, V`` as Glorot-uniform
    projections, so the branch starts as a pure product of two random projections of the
    channels; BN_g's scale (``GATE_START``) sets how much of it the block starts with."""
    channels = z.shape[-1]
    h = PolyCG(channels, kernel_size=1, strides=1, order=2, rank=1, use_bias=False,
               kernel_initializer="zeros", factor_initializer="glorot_uniform",
               name=name + "_cg")(z)
    h = _batch_norm(h, name + "_cg_bn", trainable_scale=True,
                    gamma_initializer=keras.initializers.Constant(GATE_START))
    return layers.Add(name=name + "_add")([z, h])


def quadratic_product(z, name):
    """``T(z) = b + W z + (U z) * (V z)``, a 1x1 `PolyCG` that starts as GELU's quadratic,
    ``c0 + c1 z + c2 z^2`` in every channel (``W = c1 I``, ``U = I``, ``V = c2 I``, ``b = c0``:
    the least-squares fit under N(0, 1), `activation_fit.gaussian_quadratic_fit`), and can
    learn products across channels (``product="quadratic"``). It is the step a converted
    twin gets (benchmarks/conversion_probe.py), each refitted to what its GELU received."""
    c0, c1, c2 = gaussian_quadratic_fit()
    return PolyCG(z.shape[-1], kernel_size=1, strides=1, order=2, rank=1,
                  kernel_initializer=StackedIdentity((c1,)),
                  factor_initializer=StackedIdentity((1.0, c2)),
                  bias_initializer=keras.initializers.Constant(c0), name=name)(z)


#: ``product=`` -> the polynomial step that stands where the twin has a GELU.
PRODUCTS = {"gated": gated_product, "quadratic": quadratic_product}
#: The products that also stand after the whitening, where the twin has its first GELU (a
#: product of raw whitened outliers swamps the image, but a converted twin's step is fitted
#: to the values its GELU saw there).
AFTER_WHITENING = ("quadratic",)


def _conv(x, filters, name):
    return layers.Conv2D(filters, 3, padding="same", use_bias=False,
                         kernel_initializer=DiracUniform(), name=name)(x)


def _nonlinearity(x, name, product):
    """The polynomial step ``PRODUCTS[product]``, or the twin's GELU (``product=None``)."""
    if product is None:
        return layers.Activation("gelu", name=name + "_gelu")(x)
    return PRODUCTS[product](x, name + "_t")


#: ``pooling=`` -> the pooling layer; None picks the twin's max-pooling for ``product=None``
#: and average pooling (a linear map) for every polynomial step.
POOLINGS = {"max": layers.MaxPooling2D, "average": layers.AveragePooling2D}


def _pooling(product, pooling):
    if pooling is None:
        pooling = "max" if product is None else "average"
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {sorted(POOLINGS)} or None; received "
                         f"{pooling!r}.")
    return POOLINGS[pooling]


def _group(x, filters, name, product, pool):
    x = _conv(x, filters, name + "_conv1")
    x = pool(2, name=name + "_pool")(x)
    x = _batch_norm(x, name + "_bn1")
    x = _nonlinearity(x, name + "_1", product)
    x = _conv(x, filters, name + "_conv2")
    x = _batch_norm(x, name + "_bn2")
    return _nonlinearity(x, name + "_2", product)


def fast_network(widths, product, input_shape=(32, 32, 3), num_classes=10,
                 classifier_activation="softmax", name="cifar_taylornet_fast", pooling=None):
    """The module's network with group widths ``widths``; ``product`` a key of `PRODUCTS`,
    or None for the GELU twin; ``pooling`` a key of `POOLINGS` (None: the product's own).
    Max-pooling is not a polynomial: with it, the network is only a probe
    (`interpret.degree` raises NotAPolynomialError)."""
    if product is not None and product not in PRODUCTS:
        raise ValueError(f"product must be one of {sorted(PRODUCTS)}; received {product!r}.")
    pool = _pooling(product, pooling)
    inputs = keras.Input(input_shape, name="image")
    x = blocks.preprocessing(inputs, "cifar10")
    x = PatchWhitening(kernel_size=2, name="whiten")(x)
    if product is None or product in AFTER_WHITENING:
        # Not the gated product: whitening amplifies the rare patch directions, and a product
        # of those outliers swamps the rest of the image (measured: training stays at chance).
        x = _nonlinearity(x, "whiten", product)
    for i, filters in enumerate(widths):
        x = _group(x, filters, f"group{i + 1}", product, pool)
    x = pool(x.shape[1], name="final_pool")(x)
    x = layers.Flatten(name="embedding")(x)
    x = layers.Dense(num_classes, use_bias=False, name="classifier")(x)
    # airbench's fixed 1/9: a smaller output scale for the same weights (part of the recipe).
    x = layers.Rescaling(LOGIT_SCALE, name="logits")(x)
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, name="predictions", dtype="float32")(x)
    return keras.Model(inputs, x, name=name)


def _widths(size, width):
    return tuple(blocks.scaled(width, c) for c in WIDTHS[size])


@register("cifar_taylornet_fast", dataset="cifar10", recipe=FAST_RECIPE,
          description="CIFAR-10: airbench94's skeleton without activations (PolyCG products, "
                      "average pooling), for the fast recipe")
def cifar_taylornet_fast(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                         classifier_activation="softmax", name="cifar_taylornet_fast",
                         product="gated"):
    """The activation-free network at airbench94's widths 64/256/256 (module docstring)."""
    return fast_network(_widths("full", width), product, input_shape, num_classes,
                        classifier_activation, name)


@register("cifar_taylornet_fast_small", dataset="cifar10", recipe=FAST_RECIPE,
          description="CIFAR-10: the activation-free fast network at airbench93's widths")
def cifar_taylornet_fast_small(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                               classifier_activation="softmax",
                               name="cifar_taylornet_fast_small", product="gated"):
    """The activation-free network at airbench93's widths 64/128/128."""
    return fast_network(_widths("small", width), product, input_shape, num_classes,
                        classifier_activation, name)


@register("cifar_taylornet_converted", dataset="cifar10", recipe=CONVERSION_RECIPE,
          description="CIFAR-10: the GELU twin converted into a polynomial network "
                      "(quadratic steps, average pooling) and fine-tuned on its predictions")
def cifar_taylornet_converted(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                              classifier_activation="softmax",
                              name="cifar_taylornet_converted"):
    """`cifar_taylornet_fast` with ``product="quadratic"``: the student of the
    ``gelu_conversion`` recipe, whose layers carry the names of the GELU twin's."""
    return fast_network(_widths("full", width), "quadratic", input_shape, num_classes,
                        classifier_activation, name, pooling="average")


@register("cifar_convnet_fast_gelu", default_tag="e10",
          dataset="cifar10", recipe=FAST_RECIPE, family="baseline",
          description="Baseline: airbench94 (GELU, max-pooling), the twin of "
                      "cifar_taylornet_fast at the same recipe")
def cifar_convnet_fast_gelu(input_shape=(32, 32, 3), num_classes=10, width=1.0,
                            classifier_activation="softmax", name="cifar_convnet_fast_gelu"):
    """airbench94's network: the twin of `cifar_taylornet_fast` with GELU and max-pooling."""
    return fast_network(_widths("full", width), None, input_shape, num_classes,
                        classifier_activation, name)
