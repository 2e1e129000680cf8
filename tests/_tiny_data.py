"""Tiny synthetic dataset files for tests that train through the real loaders."""
import numpy as np


def write_tiny_cifar(folder, train=96, test=20):
    """``folder/cifar10.npz``: random 32x32x3 uint8 images, labels cycling 0..9 (seed 0)."""
    rng = np.random.default_rng(0)
    np.savez(folder / "cifar10.npz",
             x_train=rng.integers(0, 255, (train, 32, 32, 3), dtype=np.uint8),
             y_train=(np.arange(train) % 10).astype(np.uint8),
             x_test=rng.integers(0, 255, (test, 32, 32, 3), dtype=np.uint8),
             y_test=(np.arange(test) % 10).astype(np.uint8))
