"""digits_taylornet: a pure coarse-graining tree for scikit-learn's 8x8 digits."""
import keras

from tn_keras.zoo import blocks
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import register
from tn_keras.zoo.registry import register_recipe


@register(
    "digits_taylornet", default_tag="e60", cross_architecture_role="taylornet",
    dataset="digits",
    recipe=register_recipe("digits", TrainingRecipe(
        epochs=60, batch_size=32, learning_rate=3e-3, weight_decay=5e-2,
        augmentation="translate")),
    description="8x8 digits: PolyCG 8 -> 4 -> 2 -> 1, a pure coarse-graining tree",
)
def digits_taylornet(input_shape=(8, 8, 1), num_classes=10, width=1.0,
                     classifier_activation="softmax", name="digits_taylornet"):
    """8x8x1 -CG-> 4x4x16 -CG-> 2x2x32 -CG-> 1x1x64 -> Dense: three RG steps, no activation."""
    inputs = keras.Input(input_shape, name="image")
    x = blocks.preprocessing(inputs, "digits")
    x = blocks.cg_bn(x, blocks.scaled(width, 16), "cg1")
    x = blocks.cg_bn(x, blocks.scaled(width, 32), "cg2")
    x = blocks.cg_bn(x, blocks.scaled(width, 64), "cg3")
    outputs = blocks.classifier_head(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=name)
