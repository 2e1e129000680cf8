"""The tn_keras model zoo: registered architectures and their trained checkpoints.

    >>> from tn_keras import zoo
    >>> zoo.list("cifar*_relu")
    ['cifar_convnet_relu']
    >>> zoo.list("cifar*", pretrained=True)
    ['cifar_convnet_fast_gelu.e10', 'cifar_convnet_relu.relu_e18', 'cifar_taylornet.fig_s3']
    >>> model = zoo.load("digits_taylornet")          # the default tag, sha256-verified
    >>> zoo.info("cifar_taylornet.fig_s3").test_accuracy   # from the manifest, nothing built
    >>> tuned = zoo.load("mnist_taylornet", num_classes=5)    # pretrained body, fresh head,
    ...                                                        # compiled, ready for fit
    >>> feats = zoo.load("mnist_taylornet", include_top=False)  # up to the `embedding` layer
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
from tn_keras.zoo.api import features
from tn_keras.zoo.api import find
from tn_keras.zoo.api import with_new_head
from tn_keras.zoo.checkpoints import ChecksumError
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import get_recipe
from tn_keras.zoo.registry import recipe_names
from tn_keras.zoo.registry import register
from tn_keras.zoo.registry import register_recipe
from tn_keras.zoo.registry import registered
from tn_keras.zoo.registry import unregister

# Importing the architecture modules registers them.
from tn_keras.zoo import cifar_taylornet  # noqa: F401,E402
from tn_keras.zoo import cifar_taylornet_res  # noqa: F401,E402
from tn_keras.zoo import cifar_taylornet_fast  # noqa: F401,E402
from tn_keras.zoo import digits_taylornet  # noqa: F401,E402
from tn_keras.zoo import mnist7_taylor  # noqa: F401,E402
from tn_keras.zoo import mnist_taylornet  # noqa: F401,E402

# timm-style ``zoo.list``; ``list_models`` is the same. Not in ``__all__``: a star import
# would shadow the builtin.
list = list_models  # noqa: A001

__all__ = [
    "ChecksumError",
    "ModelInfo",
    "TrainingRecipe",
    "build",
    "features",
    "find",
    "get_recipe",
    "info",
    "list_models",
    "load",
    "recipe_names",
    "register",
    "register_recipe",
    "registered",
    "unregister",
    "with_new_head",
]
