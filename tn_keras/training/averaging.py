"""Lookahead-style weight averaging: the fast recipe's last ingredient.

Every ``every`` optimiser steps the averaged copy moves towards the weights and the weights
are reset to it (Zhang et al.'s Lookahead, with airbench's schedule of the decay):

    a <- d_t a + (1 - d_t) w ;   w <- a ;   d_t = d_max (t / T)^3

Early in training ``d_t`` is about 0 (no averaging); near the end the weights are pulled
towards their recent average, which acts like a smaller learning rate without its cost in
steps. Every weight takes part, BatchNorm's moving statistics included.
"""
import keras
import numpy as np


class LookaheadAveraging(keras.callbacks.Callback):
    """Applies the module's update every ``every`` steps and at the end of every epoch.

    The end-of-epoch update makes the weights equal to the average whenever an epoch ends, so
    a backup written then holds the whole state, and a resumed run continues exactly.

    Args:
        total_steps: ``T``, the steps of the whole run.
        every: steps between updates.
        max_decay: ``d_max``.
    """

    def __init__(self, total_steps, every=5, max_decay=0.95 ** 5):
        super().__init__()
        self.total_steps = max(1, int(total_steps))
        self.every = int(every)
        self.max_decay = float(max_decay)
        self._average = None

    def _variables(self):
        return [v for v in self.model.weights if "float" in str(v.dtype)]

    def on_train_begin(self, logs=None):
        self._average = None

    def on_train_batch_begin(self, batch, logs=None):
        # Taken at the first step, not at on_train_begin: a resumed run's backup restores the
        # weights in its own on_train_begin, which may run after this callback's.
        if self._average is None:
            self._average = [np.array(v.numpy()) for v in self._variables()]

    def _update(self, decay):
        for variable, average in zip(self._variables(), self._average):
            average *= decay
            average += (1.0 - decay) * np.asarray(variable.numpy())
            variable.assign(average)

    def _decay(self):
        step = int(self.model.optimizer.iterations.numpy())
        return self.max_decay * min(step / self.total_steps, 1.0) ** 3, step

    def on_train_batch_end(self, batch, logs=None):
        decay, step = self._decay()
        if step % self.every == 0:
            self._update(decay)

    def on_epoch_end(self, epoch, logs=None):
        decay, step = self._decay()
        if step % self.every:
            self._update(decay)
