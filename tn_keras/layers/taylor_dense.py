"""TaylorDense: a dense layer that is the Taylor expansion of a map, with no activation."""
import numpy as np
from keras import layers
from keras import ops
from keras.saving import register_keras_serializable

from tn_keras.layers.base_polynomial import BasePolynomial
from tn_keras.layers.polynomial import num_product_factors
from tn_keras.layers.polynomial import product_terms_sum
from tn_keras.layers.polynomial import symmetric_coefficients
from tn_keras.layers.polynomial import validate_order_and_rank
from tn_keras.layers.polynomial import validate_positive_int


@register_keras_serializable(package="tn_keras")
class TaylorDense(BasePolynomial):
    """Densely connected Taylor expansion of a map ``R^n -> R^units``.

    Exact second-order form (``order=2, rank=None``), the paper's Eq. (3):

        y_u = b_u + sum_i W_iu x_i + sum_{i<=j} Q_iju x_i x_j

    with one weight per monomial: ``n (n + 1) / 2`` quadratic weights per unit (1,225 for the
    49 pixels of a 7x7 image, 1,275 parameters per unit in all). The quadratic weights are stored
    as ``quadratic_kernel`` of shape ``(n (n + 1) / 2, units)``, rows in the order of
    ``numpy.triu_indices(n)``.

    CP-factorised form (``rank`` an int; any ``order``), for larger inputs or higher orders:

        y = b + W x + sum_{k=2..order} sum_{r=1..rank} prod_{j=1..k} (U_{k,r,j} x)

    with all ``U`` in one ``factor_kernel`` of shape ``(n, n_factors * units)`` (see
    `tn_keras.layers.polynomial`). ``order=1`` is `keras.layers.Dense` without activation.

    Like Dense, the layer acts on the last axis of an input of any rank >= 2.

    Args:
        units: int, the output size.
        order: int >= 1. The exact form (``rank=None``) supports ``order <= 2``.
        rank: None for the exact quadratic, or an int >= 1 for CP-factorised terms.
        use_bias: bool.
        kernel_initializer, kernel_regularizer, kernel_constraint: for ``W``.
        quadratic_initializer, quadratic_regularizer, quadratic_constraint: for the exact ``Q``
            (default zeros: training starts from the linear model, and ``Q`` still gets
            gradients ``x_i x_j dL/dy``).
        factor_initializer, factor_regularizer, factor_constraint: for the CP factors ``U``
            (zeros would leave every product, and its gradient, at zero; default None: a
            truncated normal of variance ``0.1 / fan_in``, so products start small).
        bias_initializer, bias_regularizer, bias_constraint: for ``b``.
        activity_regularizer: optional regularizer of the output.
    """

    weight_groups = {"kernel": "kernel", "quadratic": "quadratic_kernel",
                     "factor": "factor_kernel", "bias": "bias"}

    def __init__(
        self,
        units,
        order=2,
        rank=None,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        quadratic_initializer="zeros",
        factor_initializer=None,
        bias_initializer="zeros",
        kernel_regularizer=None,
        quadratic_regularizer=None,
        factor_regularizer=None,
        bias_regularizer=None,
        activity_regularizer=None,
        kernel_constraint=None,
        quadratic_constraint=None,
        factor_constraint=None,
        bias_constraint=None,
        **kwargs,
    ):
        super().__init__(
            activity_regularizer=activity_regularizer,
            kernel_initializer=kernel_initializer,
            quadratic_initializer=quadratic_initializer,
            factor_initializer=factor_initializer,
            bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer,
            quadratic_regularizer=quadratic_regularizer,
            factor_regularizer=factor_regularizer,
            bias_regularizer=bias_regularizer,
            kernel_constraint=kernel_constraint,
            quadratic_constraint=quadratic_constraint,
            factor_constraint=factor_constraint,
            bias_constraint=bias_constraint,
            **kwargs,
        )
        validate_positive_int("units", units)
        validate_order_and_rank(order, rank, allow_none_rank=True)
        if rank is None and order > 2:
            raise ValueError(
                f"The exact (rank=None) form of TaylorDense stores one weight per monomial and "
                f"supports order <= 2; received order={order}. Pass `rank` for a CP-factorised "
                "expansion of higher order."
            )
        self.units = int(units)
        self.order = int(order)
        self.rank = None if rank is None else int(rank)
        self.use_bias = bool(use_bias)
        self.input_spec = layers.InputSpec(min_ndim=2)

    @property
    def exact(self):
        """True when the quadratic term keeps one weight per monomial (``rank=None``)."""
        return self.rank is None and self.order == 2

    @property
    def num_factors(self):
        return 0 if self.rank is None else num_product_factors(self.order, self.rank)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                f"TaylorDense expects an input of rank >= 2 (batch, ..., features); received an "
                f"input of shape {tuple(input_shape)}."
            )
        features = input_shape[-1]
        if features is None:
            raise ValueError(
                "The last dimension of the input to TaylorDense must be known; received an "
                f"input of shape {tuple(input_shape)}."
            )
        self.input_spec = layers.InputSpec(min_ndim=2, axes={-1: features})
        self.kernel = self.add_group_weight("kernel", (features, self.units))
        self.quadratic_kernel = None
        self.factor_kernel = None
        if self.exact:
            self.quadratic_kernel = self.add_group_weight(
                "quadratic", (features * (features + 1) // 2, self.units))
            rows, cols = np.triu_indices(features)
            self._monomial_rows = rows.astype("int32")
            self._monomial_cols = cols.astype("int32")
        elif self.num_factors:
            self.factor_kernel = self.add_group_weight(
                "factor", (features, self.num_factors * self.units))
        self.bias = self.add_group_weight("bias", (self.units,)) if self.use_bias else None

    def call(self, inputs):
        if self.factor_kernel is not None:
            kernel = ops.concatenate([self.kernel, self.factor_kernel], axis=-1)
            fused = ops.matmul(inputs, kernel)
            pieces = ops.split(fused, 1 + self.num_factors, axis=-1)
            outputs = ops.add(pieces[0], product_terms_sum(pieces[1:], self.order, self.rank))
        else:
            outputs = ops.matmul(inputs, self.kernel)
        if self.quadratic_kernel is not None:
            # The n(n+1)/2 monomials x_i x_j (i <= j), then one matmul with Q.
            monomials = ops.multiply(
                ops.take(inputs, self._monomial_rows, axis=-1),
                ops.take(inputs, self._monomial_cols, axis=-1),
            )
            outputs = ops.add(outputs, ops.matmul(monomials, self.quadratic_kernel))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return outputs

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units,)

    def taylor_coefficients(self, max_order=None):
        """The exact Taylor coefficients, as float64 NumPy arrays.

        ``y_u = bias[u] + sum_i linear[u, i] x_i + sum_{k>=2} sum_{i1..ik} order_k[u, i1..ik]
        x_i1 ... x_ik``, with ``order_k`` symmetric in its ``k`` input axes: the weight of the
        monomial ``x_i x_j`` is ``order_2[u, i, i]`` on the diagonal and ``2 order_2[u, i, j]``
        off it (for the exact form, ``Q_iju`` itself).

        Returns:
            dict with ``"bias"`` ``(units,)``, ``"linear"`` ``(units, n)`` and ``"order_k"``
            ``(units, n, ..., n)`` for ``k = 2 .. min(order, max_order)``.
        """
        if not self.built:
            raise ValueError(
                f"Layer '{self.name}' is not built yet: call it on an input (or build it) "
                "before asking for its Taylor coefficients."
            )
        linear = np.asarray(ops.convert_to_numpy(self.kernel), np.float64).T
        features = linear.shape[1]
        bias = (
            np.asarray(ops.convert_to_numpy(self.bias), np.float64)
            if self.use_bias
            else np.zeros(self.units)
        )
        result = {"bias": bias, "linear": linear}
        order = self.order if max_order is None else min(self.order, int(max_order))
        if order < 2:
            return result
        if self.exact:
            weights = np.asarray(ops.convert_to_numpy(self.quadratic_kernel), np.float64)
            rows, cols = np.triu_indices(features)
            tensor = np.zeros((self.units, features, features))
            # Off-diagonal weights split in half over (i, j) and (j, i): symmetric form.
            tensor[:, rows, cols] += weights.T / np.where(rows == cols, 1.0, 2.0)
            tensor[:, cols, rows] += np.where(rows == cols, 0.0, 1.0) * weights.T / 2.0
            result["order_2"] = tensor
        else:
            factors = np.asarray(ops.convert_to_numpy(self.factor_kernel), np.float64)
            factors = factors.reshape(features, self.num_factors, self.units).transpose(1, 2, 0)
            tensors = symmetric_coefficients(
                factors[: num_product_factors(order, self.rank)], order, self.rank
            )
            result.update({f"order_{k}": t for k, t in tensors.items()})
        return result

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "order": self.order,
                "rank": self.rank,
                "use_bias": self.use_bias,
            }
        )
        config.update(self.weight_options_config())
        return config
