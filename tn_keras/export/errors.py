"""Errors raised by `tn_keras.export`.

Both are ValueErrors, so the CLI reports them as one-line user errors (no traceback).
"""


class UnsupportedOpsError(ValueError):
    """The model needs TensorFlow ops that the builtin TFLite (LiteRT) runtime lacks.

    Attributes:
        ops: the TensorFlow op names (e.g. ``["Erfinv"]``) the converter could not map.
    """

    def __init__(self, message: str, ops: "list[str]"):
        super().__init__(message)
        self.ops = list(ops)


class ParityError(ValueError):
    """An exported artifact whose outputs do not match the Keras model's."""
