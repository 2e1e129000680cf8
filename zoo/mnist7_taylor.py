"""mnist7_taylor: the paper's Eq. (3), a second-order Taylor expansion on 7x7 MNIST."""
import keras
from keras import layers

from tn_keras.layers import TaylorDense
from tn_keras.zoo import blocks
from tn_keras.zoo.registry import TrainingRecipe
from tn_keras.zoo.registry import register
from tn_keras.zoo.registry import register_recipe


@register(
    "mnist7_taylor", default_tag="eq3_e20",
    dataset="mnist7x7",
    recipe=register_recipe("mnist7", TrainingRecipe(epochs=20, batch_size=128,
                                                    learning_rate=3e-3, weight_decay=1e-2)),
    description="7x7 MNIST: f_k(x) = b_k + w_k.x + sum_{i<=j} Q_kij x_i x_j (Eq. 3)",
)
def mnist7_taylor(input_shape=(7, 7, 1), num_classes=10, classifier_activation="softmax",
                  name="mnist7_taylor"):
    """One exact TaylorDense on the 49 pixels: 1 + 49 + 1,225 = 1,275 parameters per class."""
    inputs = keras.Input(input_shape, name="image")
    x = blocks.preprocessing(inputs, "mnist7x7")
    x = layers.Flatten(name="embedding")(x)
    x = TaylorDense(num_classes, order=2, name="taylor")(x)
    if classifier_activation is not None:
        x = layers.Activation(classifier_activation, name="predictions", dtype="float32")(x)
    return keras.Model(inputs, x, name=name)
