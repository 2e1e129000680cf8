"""The versions recorded in every manifest, so a result can be traced to its software."""
import importlib.metadata
import os
import platform
import sys

# The module of each Keras backend, and the distributions that install it.
_BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow", ("tensorflow", "tensorflow-cpu")),
    "jax": ("jax", ("jax",)),
    "torch": ("torch", ("torch",)),
    "numpy": ("numpy", ("numpy",)),
}


def installed_version(module, distributions=()):
    """The version of ``module``: from the module if it is already imported, else from the
    installed distribution's metadata (importing nothing); None when neither is there."""
    if module in sys.modules:
        return getattr(sys.modules[module], "__version__", None)
    for dist in distributions or (module,):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def software_versions():
    """tn_keras, Keras, the Keras backend and its version, NumPy, Python; TensorFlow's version
    too where it is installed (read from its metadata, never imported for this)."""
    import keras
    import numpy

    from tn_keras.version import __version__

    backend = keras.backend.backend()
    module, dists = _BACKEND_PACKAGES.get(backend, (backend, (backend,)))
    versions = {
        "tn_keras": __version__,
        "keras": keras.__version__,
        "keras_backend": backend,
        backend: installed_version(module, dists),
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    tensorflow = installed_version("tensorflow", _BACKEND_PACKAGES["tensorflow"][1])
    if tensorflow is not None:
        versions["tensorflow"] = tensorflow
    return versions


def accelerators():
    """``"GPU"`` / ``"TPU"`` / ``"CPU"``: what the Keras backend computes on, asked of the
    backend's own framework (already imported by Keras)."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.default_backend().upper()
    if backend == "torch":
        import torch

        return "GPU" if torch.cuda.is_available() else "CPU"
    if backend == "tensorflow":
        import tensorflow as tf

        return "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    return "CPU"


def machine_description():
    """``"N CPU cores, no GPU"`` or the accelerator kind, for the manifest."""
    kind = accelerators()
    return f"{os.cpu_count()} CPU cores, no GPU" if kind == "CPU" else kind
