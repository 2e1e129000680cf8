"""The tn_keras model zoo: registered architectures and their trained checkpoints.

    >>> from tn_keras import zoo
    >>> zoo.list("cifar*")
    ['cifar_convnet_relu', 'cifar_taylornet']
    >>> model = zoo.load("digits_taylornet")          # verified, trained checkpoint
    >>> zoo.info("digits_taylornet").test_accuracy
    >>> fresh = zoo.build("mnist_taylornet", num_classes=5)   # untrained

Every model takes raw images (pixel values 0..255) and carries its preprocessing inside, and
ends in a softmax over the classes. Architectures live one per module in this package; add your
own with ``@zoo.register(...)``.
"""
from tn_keras.zoo.api import ModelInfo
from tn_keras.zoo.api import build
from tn_keras.zoo.api import info
from tn_keras.zoo.api import list_models
from tn_keras.zoo.api import load
from tn_keras.zoo.checkpoints import ChecksumError
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import register
from tn_keras.zoo.registry import unregister

# Importing the architecture modules registers them.
from tn_keras.zoo import cifar_taylornet  # noqa: F401,E402
from tn_keras.zoo import cifar_taylornet_res  # noqa: F401,E402
from tn_keras.zoo import digits_taylornet  # noqa: F401,E402
from tn_keras.zoo import mnist7_taylor  # noqa: F401,E402
from tn_keras.zoo import mnist_taylornet  # noqa: F401,E402

list = list_models  # noqa: A001  (timm-style ``zoo.list``; ``list_models`` is the same)

__all__ = [
    "ChecksumError",
    "ModelInfo",
    "TrainingRecipe",
    "build",
    "info",
    "list",
    "list_models",
    "load",
    "register",
    "unregister",
]
