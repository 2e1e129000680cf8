"""Last resort: `keras.datasets` download (skipped in offline mode)."""
from __future__ import annotations

import numpy as np

def read_keras(name: str) -> dict[str, np.ndarray]:
    """Downloads (or reuses ``~/.keras/datasets``) via ``keras.datasets.<name>.load_data()``."""
    import keras

    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, name).load_data()
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
