"""The versions recorded in every manifest, so a result can be traced to its software."""
import platform


def software_versions():
    import keras
    import numpy
    import tensorflow as tf

    from tn_keras.version import __version__

    return {
        "tn_keras": __version__,
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
