"""The optimisers a `TrainingRecipe` can name, and the schedules they follow.

A recipe's ``optimizer`` field is a key of `OPTIMIZERS`; every builder takes the recipe, the
steps per epoch and the epochs, and returns a compiled-ready Keras optimiser. Adding an
optimiser is one function and one entry (the trainer and the CLI read the table).

- ``"adamw"``: AdamW, linear warm-up then cosine decay, global-norm clipping (the zoo's
  original recipe).
- ``"nesterov"``: the fast-training recipe of Jordan's airbench (2024): Nesterov SGD with
  coupled L2 decay, a triangular schedule (`TriangularSchedule`) and a larger learning rate for
  BatchNorm shifts (`ScaledSGD`).
- ``"nesterov_cosine"``: Nesterov SGD down a cosine, no warm-up, no decay (fine-tuning a
  converted network, `tn_keras.training.conversion`).
"""
import fnmatch

import keras
from keras import ops
from keras.saving import register_keras_serializable


@register_keras_serializable(package="tn_keras")
class TriangularSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear ramp from ``start * peak`` to ``peak`` over the first ``warmup_fraction`` of the
    steps, then linear to ``end * peak`` at ``total_steps`` (constant after)::

        lr(t) = peak * (start + (1 - start) * t / W)                 t < W = floor(f * T)
        lr(t) = peak * (1 + (end - 1) * (t - W) / (T - W))           W <= t <= T
    """

    def __init__(self, peak, total_steps, warmup_fraction=0.23, start=0.2, end=0.07):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_fraction = float(warmup_fraction)
        self.start = float(start)
        self.end = float(end)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        total = float(max(1, self.total_steps))
        warmup = float(int(total * self.warmup_fraction))
        rising = self.start + (1.0 - self.start) * step / max(warmup, 1.0)
        falling = 1.0 + (self.end - 1.0) * ops.minimum(
            (step - warmup) / max(total - warmup, 1.0), 1.0)
        return self.peak * ops.where(step < warmup, rising, falling)

    def get_config(self):
        return dict(peak=self.peak, total_steps=self.total_steps,
                    warmup_fraction=self.warmup_fraction, start=self.start, end=self.end)


@register_keras_serializable(package="tn_keras")
class ScaledSGD(keras.optimizers.SGD):
    """SGD (momentum, Nesterov) with coupled L2 decay and per-variable gradient multipliers.

    For a variable ``w`` with gradient ``g`` of the batch-mean loss, the step is Keras's SGD step
    on the gradient

        g' = m(w) * g + l2 * w

    with ``m(w)`` the value of the first pattern of ``multipliers`` that matches the variable's
    path (`fnmatch`; 1 when none does). The decay goes through the momentum buffer, as in
    PyTorch's ``SGD(weight_decay=...)``; Keras's own ``weight_decay`` is decoupled and does
    not. A multiplier ``m`` with the decay unscaled is PyTorch's parameter group with
    ``lr * m`` and ``weight_decay / m`` (airbench's ``bias_scaler`` for BatchNorm shifts).
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, l2=0.0,
                 multipliers=None, name="scaled_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
                         name=name, **kwargs)
        self.l2 = float(l2)
        self.multipliers = dict(multipliers or {})

    def multiplier(self, variable):
        """``m(variable)``: the first matching pattern's value, else 1."""
        for pattern, value in self.multipliers.items():
            if fnmatch.fnmatchcase(variable.path, pattern):
                return float(value)
        return 1.0

    def build(self, variables):
        super().build(variables)
        # Matched once, on the Keras variables (the backend may pass its own variable objects
        # to `update_step`, which have no path).
        self._scales = [self.multiplier(v) for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        gradient = ops.cast(gradient, variable.dtype)
        scale = self._scales[self._get_variable_index(variable)]
        if scale != 1.0:
            gradient = ops.multiply(gradient, scale)
        if self.l2:
            gradient = ops.add(gradient, ops.multiply(variable, self.l2))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(l2=self.l2, multipliers=self.multipliers)
        return config


def adamw_cosine(recipe, steps_per_epoch, epochs):
    """AdamW with linear warm-up then cosine decay to zero, and global-norm clipping.

    Clipping matters for polynomial networks: a product of activations can produce a rare
    large gradient early on, before BatchNorm statistics settle.
    """
    total = max(1, steps_per_epoch * epochs)
    warmup = min(int(recipe.warmup_epochs * steps_per_epoch), total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else recipe.learning_rate,
        decay_steps=total - warmup,
        warmup_target=recipe.learning_rate if warmup else None,
        warmup_steps=warmup,
    )
    optimizer = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=recipe.weight_decay,
        global_clipnorm=recipe.global_clipnorm,
        # A fixed name: Keras numbers unnamed optimizers per process (adam_w, adam_w_1, ...)
        # and saves the name, so identical runs would otherwise differ in their bytes.
        name="adamw",
    )
    # Decay the kernels only: biases and BatchNorm's scale and shift are not decayed.
    optimizer.exclude_from_weight_decay(var_names=["bias", "gamma", "beta"])
    return optimizer


def nesterov_triangular(recipe, steps_per_epoch, epochs):
    """airbench's optimiser in Keras terms (the recipe's numbers are per batch-mean loss).

    ``recipe.learning_rate`` is the peak step size on the batch-mean gradient (airbench's 11.5
    per 1024 examples on a summed loss is 1.5 here), ``recipe.weight_decay`` the coupled L2
    coefficient ``l2`` of `ScaledSGD`, and BatchNorm shifts (``*/beta``) get
    ``recipe.bias_lr_multiplier`` times the gradient.
    """
    total = max(1, steps_per_epoch * epochs)
    schedule = TriangularSchedule(recipe.learning_rate, total,
                                  warmup_fraction=recipe.warmup_fraction)
    return ScaledSGD(learning_rate=schedule, momentum=recipe.momentum, nesterov=True,
                     l2=recipe.weight_decay,
                     multipliers={"*/beta": recipe.bias_lr_multiplier},
                     name="scaled_sgd")


def nesterov_cosine(recipe, steps_per_epoch, epochs):
    """Nesterov SGD from ``recipe.learning_rate`` down a cosine to zero, no warm-up, with
    global-norm clipping and no weight decay: fine-tuning a converted network, which starts
    close to its teacher and must not be thrown off it by a warm-up's large steps."""
    total = max(1, steps_per_epoch * epochs)
    schedule = keras.optimizers.schedules.CosineDecay(recipe.learning_rate, total)
    return keras.optimizers.SGD(learning_rate=schedule, momentum=recipe.momentum,
                                nesterov=True, global_clipnorm=recipe.global_clipnorm,
                                name="nesterov_sgd")


#: ``TrainingRecipe.optimizer`` -> builder ``(recipe, steps_per_epoch, epochs) -> optimizer``.
OPTIMIZERS = {"adamw": adamw_cosine, "nesterov": nesterov_triangular,
              "nesterov_cosine": nesterov_cosine}


def make_optimizer(recipe, steps_per_epoch, epochs):
    """The optimiser ``recipe.optimizer`` names (`OPTIMIZERS`), for ``epochs`` of
    ``steps_per_epoch`` steps."""
    try:
        builder = OPTIMIZERS[recipe.optimizer]
    except KeyError:
        raise ValueError(f"Unknown optimizer {recipe.optimizer!r} in the recipe; expected one "
                         f"of {', '.join(sorted(OPTIMIZERS))}.") from None
    return builder(recipe, steps_per_epoch, epochs)
