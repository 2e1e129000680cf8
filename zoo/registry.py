"""The registry: a name -> architecture builder + metadata, as timm / torchvision keep theirs.

Each architecture module decorates its builder with ``@register(...)``; ``tn_keras.zoo`` imports
every architecture module once, so the registry is complete as soon as the zoo is imported.
"""
import dataclasses
import difflib
import fnmatch
from typing import Callable, Optional

PAPER = (
    'Xi-Ci Yang, Z. Y. Xie, Xiao-Tao Yang, "Exploring explicit coarse-grained structure in '
    'artificial neural networks", Chinese Physics Letters 40, 020501 (2023), arXiv:2211.01779'
)


@dataclasses.dataclass(frozen=True)
class TrainingRecipe:
    """How a zoo model is trained: what ``tn-keras train NAME`` does by default."""

    epochs: int
    batch_size: int = 128
    learning_rate: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    # "cifar": random crop with 4-pixel padding + horizontal flip (the dataset pipeline's);
    # "translate": random shifts of up to 2 pixels, no flip (a mirrored 2 is not a 2);
    # None: no augmentation.
    augmentation: Optional[str] = None
    global_clipnorm: float = 1.0


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: its builder and what is known without building it."""

    name: str
    builder: Callable
    dataset: str
    description: str
    recipe: TrainingRecipe
    family: str = "taylornet"  # "taylornet" (no activations) or "baseline"
    reference: str = PAPER


_REGISTRY: dict = {}


def register(name, dataset, recipe, description="", family="taylornet", reference=PAPER):
    """Decorator that registers ``builder(input_shape=None, num_classes=None, **kw) -> Model``.

    Users register their own architectures the same way; the name must be new.
    """

    def decorator(builder):
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered.")
        _REGISTRY[name] = ModelSpec(
            name=name,
            builder=builder,
            dataset=dataset,
            description=description or (builder.__doc__ or "").strip().split("\n")[0],
            recipe=recipe,
            family=family,
            reference=reference,
        )
        return builder

    return decorator


def unregister(name):
    """Remove a user-registered name (mainly for tests and notebooks)."""
    get_spec(name)
    del _REGISTRY[name]


def get_spec(name):
    """The ModelSpec of ``name``; an unknown name lists the closest registered ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model name {name!r}.{hint} Registered models: {', '.join(sorted(_REGISTRY))}."
        ) from None


def registered_names(pattern="*"):
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))
