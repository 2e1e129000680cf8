"""Training and evaluating zoo models with their recipes (``tn-keras train`` / ``evaluate``)."""
from tn_keras.training.config import TrainConfig
from tn_keras.training.evaluate import evaluate
from tn_keras.training.evaluate import evaluation_splits
from tn_keras.training.trainer import train

__all__ = ["TrainConfig", "evaluate", "evaluation_splits", "train"]
