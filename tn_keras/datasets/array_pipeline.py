"""The NumPy input pipeline (a `keras.utils.PyDataset`), used when the backend is not TensorFlow.

Why PyDataset: it is Keras's own input type, so ``fit`` / ``predict`` take it under every
backend (JAX arrays, torch tensors and tf.data come out of the same object). The alternatives
need more for less: ``torch.utils.data.DataLoader`` only feeds the torch backend, ``grain`` adds a
dependency and its own sampler for what is, here, arrays already in memory.

Determinism: batch ``i`` of epoch ``e`` is a pure function of ``(seed, e, i)``. The epoch's
order is a permutation drawn from ``default_rng([seed, e])`` and the batch's augmentation from
``default_rng([seed, e, i])``; every epoch differs from the one before.

Worker threads: the dataset prefetches with a thread pool of its own, submitting
``batch(epoch, i)`` with the epoch fixed at submission. It tells Keras ``workers=1``, because
Keras's own enqueuer (used for ``workers > 1``) starts its threads before it calls
``on_epoch_begin`` and carries batches still in flight at the end of an epoch over into the
next, so which batches an epoch sees would depend on thread timing.
"""
from __future__ import annotations

import concurrent.futures
import os
import threading

import keras
import numpy as np

from tn_keras.datasets import augment as augment_ops
from tn_keras.datasets.registry import info


def default_workers() -> int:
    """Worker threads: the CPU cores, at most 4 (NumPy gathers release the GIL)."""
    return max(1, min(4, os.cpu_count() or 1))


class ArrayDataset(keras.utils.PyDataset):
    """Batches ``(float32 images, labels)`` of in-memory arrays; see `make_dataset`.

    Inside ``fit``, the epoch is ``fit``'s own epoch number when ``epoch_clock`` (an
    `ArrayEpochClock`) is among the callbacks, as the trainer puts it: a run resumed at epoch
    ``e`` draws the batches of epoch ``e``, those of the uninterrupted run. Without the clock,
    the epoch advances on each ``on_epoch_begin`` after the first (the JAX trainer calls it once
    more, when it peeks at a batch to build the model). Outside ``fit``, use
    `epoch_batches(e)`.

    Attributes:
        threads: the prefetching worker threads (``workers=`` of `make_dataset`).
        epoch_clock: the `ArrayEpochClock` callback that sets the epoch from ``fit``'s.
    """

    def __init__(self, x, y, batch_size, training, options):
        """``options``: a `PipelineConfig` resolved by `make_dataset`."""
        super().__init__(workers=1, use_multiprocessing=False)
        self.threads = int(options.workers or default_workers())
        self._pool = None
        self._pending = {}
        self.x, self.y = x, y
        self.batch_size = int(batch_size)
        self.training, self.augment = training, options.augment
        self.seed = int(options.seed) if options.seed is not None else int(
            np.random.SeedSequence().entropy % (1 << 63))
        self.drop_remainder = options.drop_remainder
        self.mean = self.std = None
        if options.normalize:
            spec = info(options.dataset_name)
            self.mean = np.asarray(spec.mean, np.float32)
            self.std = np.asarray(spec.std, np.float32)
        self.epoch = 0
        self._clock_epoch = None
        self.epoch_clock = ArrayEpochClock(self)
        self._started = False
        self._orders = {}
        self._lock = threading.Lock()

    def __len__(self):
        n = len(self.x) // self.batch_size
        return n if self.drop_remainder or len(self.x) % self.batch_size == 0 else n + 1

    def on_epoch_begin(self):
        # The epoch its clock set (``fit``'s own number, so a resumed run draws the batches of
        # the epoch it resumes at); without a clock, 0 first and every later call the next.
        if self._clock_epoch is not None:
            self.epoch, self._clock_epoch = self._clock_epoch, None
        elif self._started:
            self.epoch += 1
        self._started = True
        for future in self._pending.values():  # a peek's prefetches, or an epoch cut short
            future.cancel()
        self._pending = {}
        for index in range(min(len(self), self._depth())):
            self._prefetch(index)

    def _depth(self):
        return 2 * self.threads

    def _prefetch(self, index):
        if self.threads > 1 and index < len(self) and index not in self._pending:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(
                    self.threads, thread_name_prefix="tn_keras_batches")
            self._pending[index] = self._pool.submit(self.batch, self.epoch, index)

    def order(self, epoch):
        """The example order of ``epoch`` (a permutation when training)."""
        if not self.training:
            return np.arange(len(self.x))
        with self._lock:
            if epoch not in self._orders:
                self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(
                    len(self.x))}
            return self._orders[epoch]

    def batch(self, epoch, index):
        """Batch ``index`` of ``epoch``: a pure function of ``(seed, epoch, index)``."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range 0..{len(self) - 1}")
        rows = self.order(epoch)[index * self.batch_size:(index + 1) * self.batch_size]
        xb = self.x[rows]
        rng = np.random.default_rng([self.seed, epoch, index])
        if self.augment is True:
            xb = augment_ops.crop_and_flip(xb, rng)
        elif self.augment == "translate":
            xb = augment_ops.translate(xb, rng)
        elif self.augment == "flip_translate":
            flips = self._base_flips()[rows] ^ bool(epoch % 2)
            xb = augment_ops.flip_translate(xb, flips, rng)
        else:
            xb = xb.astype(np.float32)
        if self.mean is not None:
            xb = (xb - self.mean) / self.std
        return xb, self.y[rows]

    def _base_flips(self):
        if getattr(self, "_flips", None) is None:
            self._flips = augment_ops.base_flips(self.seed, len(self.x))
        return self._flips

    def __getitem__(self, index):
        # Keras calls this from one thread, in order; the pool works `_depth()` batches ahead.
        future = self._pending.pop(index, None)
        self._prefetch(index + self._depth())
        return future.result() if future is not None else self.batch(self.epoch, index)

    def __del__(self):
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def epoch_batches(self, epoch):
        """Every batch of ``epoch``, in order (for use outside ``fit``)."""
        return [self.batch(epoch, i) for i in range(len(self))]


class ArrayEpochClock(keras.callbacks.Callback):
    """Tells an `ArrayDataset` ``fit``'s epoch number (resumed runs included) before the
    epoch's batches are drawn: every backend's ``fit`` calls the callbacks' ``on_epoch_begin``
    before the dataset's. The NumPy twin of `tf_pipeline.EpochClock`."""

    def __init__(self, dataset):
        super().__init__()
        self.dataset = dataset

    def on_epoch_begin(self, epoch, logs=None):
        self.dataset._clock_epoch = int(epoch)
