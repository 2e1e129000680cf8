"""PatchWhitening: a frozen convolution that whitens the image's small patches."""
import numpy as np
from keras import initializers
from keras import layers
from keras import ops
from keras.saving import register_keras_serializable

from tn_keras.layers.poly_cg import _pair
from tn_keras.layers.polynomial import validate_positive_int


def patch_whitening_kernel(images, kernel_size=(2, 2), epsilon=5e-4):
    """The whitening kernel of ``images``' patches, as float32 ``(kh, kw, C, 2 * kh * kw * C)``.

    With ``p`` a ``kh x kw x C`` patch flattened in ``(row, col, channel)`` order (every patch
    of every image, stride 1, no padding), ``S = mean(p p^T)`` the uncentred patch covariance
    and ``S = sum_i lambda_i v_i v_i^T`` its eigendecomposition with ``lambda_1 >= lambda_2 >=
    ...``, filter ``i`` is ``v_i / sqrt(lambda_i + epsilon)`` and filter ``P + i`` its negative
    (``P = kh * kw * C``). The first ``P`` outputs are therefore the patch in the eigenbasis,
    each with unit second moment (``epsilon`` caps the gain of the near-null directions).
    The negated copy is what airbench's whitening layer (Jordan, 2024) carries: it is
    redundant for a linear map, but a non-linearity after the layer sees both signs.

    Args:
        images: ``(N, H, W, C)`` array, already preprocessed as the layer's input will be.
        kernel_size: int or pair, the patch size.
        epsilon: added to every eigenvalue before the inverse square root.
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    images = np.asarray(images, np.float64)
    if images.ndim != 4 or images.shape[1] < kh or images.shape[2] < kw or not len(images):
        raise ValueError(f"images must be a non-empty (N, H, W, C) array with H >= {kh} and "
                         f"W >= {kw}; received shape {images.shape}.")
    if not np.all(np.isfinite(images)):
        raise ValueError("images holds NaN or infinite values; the patch covariance needs "
                         "finite pixels.")
    channels = images.shape[-1]
    patches = np.lib.stride_tricks.sliding_window_view(images, (kh, kw), axis=(1, 2))
    # (N, H', W', C, kh, kw) -> rows of (kh, kw, C), the order of a Keras kernel.
    patches = patches.transpose(0, 1, 2, 4, 5, 3).reshape(-1, kh * kw * channels)
    covariance = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1]
    scaled = eigenvectors[:, order] / np.sqrt(eigenvalues[order] + epsilon)
    kernel = np.concatenate([scaled, -scaled], axis=1)
    return kernel.reshape(kh, kw, channels, 2 * kh * kw * channels).astype(np.float32)


@register_keras_serializable(package="tn_keras")
class PatchWhitening(layers.Layer):
    """A 'valid' convolution whose frozen kernel whitens the input's patches; a trainable bias.

        y[r, c, f] = b_f + sum_{i, j, ch} K[i, j, ch, f] x[r + i, c + j, ch]

    with ``K`` = `patch_whitening_kernel` of training images, set by `adapt` (as
    `keras.layers.Normalization.adapt` sets its statistics) and saved with the model. The
    kernel is not trained: it is a fixed change of basis that gives every patch direction unit
    variance, so that the first trained layer starts from decorrelated inputs (the first layer
    of Jordan's airbench, after Page's ResNet-9 recipe). The layer is affine, so a network of
    it and polynomial layers stays a polynomial of its input.

    Args:
        kernel_size: int or pair, the patch size. Default 2.
        epsilon: see `patch_whitening_kernel`.
        use_bias: whether to add the trainable bias ``b``.
        bias_initializer: for ``b``.

    Input shape: ``(batch, rows, cols, C)``. Output shape: ``(batch, rows - kh + 1,
    cols - kw + 1, 2 * kh * kw * C)``.
    """

    def __init__(self, kernel_size=2, epsilon=5e-4, use_bias=True, bias_initializer="zeros",
                 **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        if not (isinstance(epsilon, (int, float)) and not isinstance(epsilon, bool)
                and epsilon > 0):
            raise ValueError(f"Invalid value for argument `epsilon`: expected a positive "
                             f"number. Received epsilon={epsilon!r}.")
        self.epsilon = float(epsilon)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.input_spec = layers.InputSpec(ndim=4)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("The channel dimension of the input to PatchWhitening must be "
                             f"known; received an input of shape {tuple(input_shape)}.")
        validate_positive_int("channels", channels)
        self.filters = 2 * self.kernel_size[0] * self.kernel_size[1] * channels
        self.input_spec = layers.InputSpec(ndim=4, axes={-1: channels})
        # Until `adapt`, the identity on the first P outputs (and its negative): a usable,
        # if unwhitened, layer.
        identity = np.eye(self.filters // 2, dtype=np.float32)
        initial = np.concatenate([identity, -identity], axis=1).reshape(
            self.kernel_size + (channels, self.filters))
        self.kernel = self.add_weight(name="kernel", shape=initial.shape,
                                      initializer=initializers.Constant(initial),
                                      trainable=False)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,),
                                        initializer=self.bias_initializer)

    def adapt(self, images):
        """Set the kernel from ``images`` (``(N, H, W, C)``, as this layer will receive them)."""
        if not self.built:
            self.build((None,) + tuple(np.shape(images)[1:]))
        channels = self.kernel.shape[2]
        if np.ndim(images) != 4 or np.shape(images)[-1] != channels:
            raise ValueError(f"PatchWhitening '{self.name}'.adapt: images must be (N, H, W, "
                             f"{channels}); received shape {np.shape(images)}.")
        self.kernel.assign(patch_whitening_kernel(images, self.kernel_size, self.epsilon))

    def call(self, inputs):
        outputs = ops.conv(inputs, ops.cast(self.kernel, inputs.dtype), strides=1,
                           padding="valid")
        if self.use_bias:
            outputs = ops.add(outputs, ops.cast(self.bias, outputs.dtype))
        return outputs

    def compute_output_shape(self, input_shape):
        rows, cols = input_shape[1], input_shape[2]
        kh, kw = self.kernel_size
        return (input_shape[0], None if rows is None else rows - kh + 1,
                None if cols is None else cols - kw + 1,
                2 * kh * kw * input_shape[-1])

    def taylor_coefficients(self, max_order=None):
        """``{"bias": (F,), "linear": (F, P)}`` in float64: the layer is affine (``P`` the
        patch flattened in ``(row, col, channel)`` order, as `PolyCG.taylor_coefficients`)."""
        if not self.built:
            raise ValueError(f"Layer '{self.name}' is not built yet: call it on an input "
                             "before asking for its Taylor coefficients.")
        kernel = np.asarray(ops.convert_to_numpy(self.kernel), np.float64)
        bias = (np.asarray(ops.convert_to_numpy(self.bias), np.float64) if self.use_bias
                else np.zeros(self.filters))
        return {"bias": bias, "linear": kernel.reshape(-1, self.filters).T}

    def get_config(self):
        config = super().get_config()
        config.update(kernel_size=self.kernel_size, epsilon=self.epsilon,
                      use_bias=self.use_bias,
                      bias_initializer=initializers.serialize(self.bias_initializer))
        return config
