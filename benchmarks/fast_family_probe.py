"""Which step learns in place of GELU in the fast skeleton: short runs, one variant each.

Each run builds airbench93's skeleton (`zoo.cifar_taylornet_fast`, widths 64/128/128) with one
variant in place of every GELU, adapts its whitening to 5,000 training images, trains it with
`FAST_RECIPE`'s optimizer, loss and schedule compressed to ``--epochs`` passes over the first
``--images`` training images (batch ``--batch-size``, no augmentation, seed 0), and prints the
train accuracy of each pass and the accuracy on the first 2,000 test images. A short run ranks
how fast a variant starts to learn, not where it ends. Needs ``TN_KERAS_DATA`` (cifar10.npz).

    python benchmarks/fast_family_probe.py linear gated0 gated1 square0 gelu_avg gelu

Variants (the step after each BatchNorm; pooling average unless said):
    gelu        GELU and max-pooling: airbench93 itself
    gelu_avg    GELU with average pooling
    linear      nothing: a linear network
    gatedG      the family's T(z) = z + BN_g(PolyCG_1x1(z)), BN_g's scale starting at G
    squareA     z + a z^2, a per-channel weight starting at A
    hermite     z/2 + BN(z^2)/sqrt(4 pi): ReLU's Hermite expansion to order 2, each basis
                function normalised on its own (AESPA's basis-wise normalisation)
    VARIANT+vpB the variant with variance pooling, avg(x) + b (avg(x^2) - avg(x)^2), b from B
    VARIANT+qpG the variant with quadratic 2x2 pooling, avg(x) + BN_g(sum_ij b_ij x_i x_j)
                over the window's four sites per channel, BN_g's scale starting at G
    VARIANT+cgG the variant with the paper's coarse-graining in place of 2x2 average pooling:
                avg(x) + BN_g(PolyCG_2x2(x)), a strided order-2 PolyCG over all channels
                (linear kernel from zero, factors Glorot), BN_g's scale starting at G
"""
import dataclasses
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import _common  # noqa: E402


def square_step(a0):
    import keras

    class Square(keras.layers.Layer):
        """``z + a z^2`` with one ``a`` per channel."""

        def build(self, input_shape):
            self.a = self.add_weight(shape=(input_shape[-1],),
                                     initializer=keras.initializers.Constant(a0), name="a")

        def call(self, z):
            return z + self.a * z * z

    return lambda z, name: Square(name=name + "_square")(z)


def variance_pooling(b0):
    import keras

    class VariancePooling(keras.layers.Layer):
        """Average pooling plus ``b`` times the variance inside each window (max-like)."""

        def __init__(self, pool_size, name=None):
            super().__init__(name=name)
            self.pool = keras.layers.AveragePooling2D(pool_size)

        def build(self, input_shape):
            self.b = self.add_weight(shape=(input_shape[-1],),
                                     initializer=keras.initializers.Constant(b0), name="b")

        def call(self, x):
            mean = self.pool(x)
            return mean + self.b * (self.pool(x * x) - mean * mean)

    return VariancePooling


def hermite_step(z, name):
    """ReLU's probabilists' Hermite expansion to order 2 (coefficients 1/2 and 1/sqrt(4 pi) of
    the normalised He_1 = z and He_2 = (z^2 - 1)/sqrt(2)), with He_2 normalised by its own
    BatchNorm, as AESPA does for every basis function (z arrives normalised)."""
    import keras

    square = keras.layers.Lambda(lambda t: t * t, name=name + "_square")(z)
    square = keras.layers.BatchNormalization(momentum=0.6, epsilon=1e-12, scale=False,
                                             name=name + "_square_bn")(square)
    linear = keras.layers.Rescaling(0.5, name=name + "_h1")(z)
    square = keras.layers.Rescaling(1.0 / np.sqrt(4.0 * np.pi), name=name + "_h2")(square)
    return keras.layers.Add(name=name + "_hermite")([linear, square])


def _window_pooling(gate, make_branch, doc):
    """A pooling layer class: 2x2 windows get their average plus ``BN_g(branch(x))``, BN_g's
    scale starting at ``gate``; larger windows (the final pooling) stay averages.
    ``make_branch(input_shape)`` returns the branch, a callable of the layer's input."""
    import keras

    class WindowPooling(keras.layers.Layer):
        __doc__ = doc

        def __init__(self, pool_size, name=None):
            super().__init__(name=name)
            self.pool_size = pool_size
            self.pool = keras.layers.AveragePooling2D(pool_size)

        def build(self, input_shape):
            if self.pool_size == 2:
                self.branch = make_branch(self, input_shape)
                self.norm = keras.layers.BatchNormalization(
                    momentum=0.6, epsilon=1e-12,
                    gamma_initializer=keras.initializers.Constant(gate))
                self.norm.build((None, input_shape[1] // 2, input_shape[2] // 2,
                                 input_shape[-1]))

        def call(self, x, training=None):
            mean = self.pool(x)
            if self.pool_size != 2:
                return mean
            return mean + self.norm(self.branch(x), training=training)

    return WindowPooling


def quadratic_pooling(gate):
    def make_branch(layer, input_shape):
        # 10 weights a channel (Glorot start), one per pair of the window's four sites.
        b = layer.add_weight(shape=(10, input_shape[-1]), initializer="glorot_uniform",
                             name="b")
        pairs = [(i, j) for i in range(4) for j in range(i, 4)]

        def branch(x):
            height, width = x.shape[1] // 2, x.shape[2] // 2
            sites = [x[:, i:2 * height:2, j:2 * width:2] for i in (0, 1) for j in (0, 1)]
            return sum(b[k] * sites[i] * sites[j] for k, (i, j) in enumerate(pairs))

        return branch

    return _window_pooling(gate, make_branch, "2x2 pooling: the window's average plus a "
                           "normalised quadratic form of its four sites, per channel.")


def coarse_grain_pooling(gate):
    from tn_keras.layers import PolyCG

    def make_branch(layer, input_shape):
        cg = PolyCG(input_shape[-1], kernel_size=2, strides=2, order=2, rank=1,
                    use_bias=False, kernel_initializer="zeros",
                    factor_initializer="glorot_uniform")
        cg.build(input_shape)
        layer.cg = cg  # tracked by the layer, so its weights train
        return cg

    return _window_pooling(gate, make_branch, "2x2 pooling: the window's average plus a "
                           "normalised strided PolyCG of the window (all channels, order 2, "
                           "rank 1).")


def gated_step(gate):
    from tn_keras.zoo import cifar_taylornet_fast as fast

    def step(z, name):
        previous, fast.GATE_START = fast.GATE_START, gate
        try:
            return fast.gated_product(z, name)
        finally:
            fast.GATE_START = previous

    return step


def build(variant):
    """The skeleton with ``variant``; the product registry `PRODUCTS` is the hook."""
    import keras
    from tn_keras.zoo import cifar_taylornet_fast as fast

    variant, _, pooling = variant.partition("+")
    if pooling:
        kind, start = pooling[:2], float(pooling[2:])
        pool = {"vp": variance_pooling, "qp": quadratic_pooling,
                "cg": coarse_grain_pooling}[kind](start)

        class Layers:  # keras.layers with average pooling replaced, for this build only
            def __getattr__(self, key):
                return pool if key == "AveragePooling2D" else getattr(keras.layers, key)

        fast.layers = Layers()
    if variant == "gelu":
        product = None
    else:
        if variant == "gelu_avg":
            step = lambda z, name: keras.layers.Activation("gelu", name=name + "_gelu")(z)  # noqa
        elif variant == "hermite":
            step = hermite_step
        elif variant == "linear":
            step = lambda z, name: z  # noqa: E731
        elif variant.startswith("gated"):
            step = gated_step(float(variant[5:]))
        elif variant.startswith("square"):
            step = square_step(float(variant[6:]))
        else:
            raise SystemExit(f"unknown variant {variant!r}; see --help")
        product = "probe_" + variant
        fast.PRODUCTS[product] = step
    try:
        return fast.fast_network(fast._widths("small", 1.0), product)
    finally:
        fast.layers = keras.layers


def run(variant, x_train, y_train, x_test, y_test, epochs, batch_size):
    import keras
    from tn_keras.training.losses import make_loss
    from tn_keras.training.optimizers import make_optimizer
    from tn_keras.training.whitening import adapt_whitening
    from tn_keras.zoo.cifar_taylornet_fast import FAST_RECIPE

    keras.utils.set_random_seed(0)
    model = build(variant)
    recipe = dataclasses.replace(FAST_RECIPE, epochs=epochs, batch_size=batch_size)
    adapt_whitening(model, x_train[:5000])
    model.compile(optimizer=make_optimizer(recipe, len(x_train) // batch_size, epochs),
                  loss=make_loss(recipe), metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=0)
    seconds = time.perf_counter() - start
    test_accuracy = model.evaluate(x_test, y_test, verbose=0, batch_size=500)[1]
    finite = bool(np.isfinite(model.predict(x_test[:500], verbose=0)).all())
    return {"variant": variant, "train_accuracy": [round(a, 4) for a in
                                                   history.history["accuracy"]],
            "test_accuracy": round(float(test_accuracy), 4), "finite": finite,
            "seconds": round(seconds, 1)}


def main():
    p = _common.parser(__doc__)
    p.add_argument("variants", nargs="+")
    p.add_argument("--images", type=int, default=10240)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--epochs", type=int, default=2)
    args = p.parse_args()
    data = np.load(os.path.join(os.environ["TN_KERAS_DATA"], "cifar10.npz"))
    x_train = data["x_train"][:args.images].astype("float32")
    y_train = data["y_train"][:args.images].reshape(-1)
    x_test = data["x_test"][:2000].astype("float32")
    y_test = data["y_test"][:2000].reshape(-1)
    report = []
    for variant in args.variants:
        report.append(run(variant, x_train, y_train, x_test, y_test, args.epochs,
                          args.batch_size))
        print(report[-1], flush=True)
    _common.write_report(args.json, report)


if __name__ == "__main__":
    main()
