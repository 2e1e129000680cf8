"""The registry: a name -> architecture builder + metadata, as timm / torchvision keep theirs.

Each architecture module decorates its builder with ``@register(...)``; ``tn_keras.zoo`` imports
every architecture module once, so the registry is complete as soon as the zoo is imported.
"""
import contextlib
import dataclasses
import difflib
import fnmatch
import inspect
import math
import numbers
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
    # "flip_translate": reflection-padded shifts of up to 2 pixels and alternating flips;
    # None: no augmentation.
    augmentation: Optional[str] = None
    global_clipnorm: float = 1.0
    # A key of `tn_keras.training.optimizers.OPTIMIZERS`: "adamw" (warm-up + cosine) or
    # "nesterov" (airbench's SGD, triangular schedule).
    optimizer: str = "adamw"
    # "nesterov" only: the rising part of the triangular schedule, as a fraction of the run
    # (so that a shorter or longer run keeps the schedule's shape).
    warmup_fraction: float = 0.23
    momentum: float = 0.9  # "nesterov" only
    bias_lr_multiplier: float = 1.0  # "nesterov" only: BatchNorm shifts' gradient multiplier
    label_smoothing: float = 0.0
    # Lookahead weight averaging (`tn_keras.training.averaging`).
    lookahead: bool = False
    # Training images the model's PatchWhitening layers are adapted to before training.
    whitening_images: int = 5000
    # Report test accuracy with flip + translate test-time augmentation besides the plain one.
    test_time_augmentation: bool = False
    # Learning from a trained network with activations (`tn_keras.training.conversion`):
    # ``teacher`` is its ``NAME.TAG``, whose probabilities for each augmented batch are the
    # targets; ``conversion`` (a key of ``conversion.CONVERSIONS``) also starts the model
    # from the teacher's weights, each activation replaced by its fitted quadratic with the
    # curvature times ``curvature_scale``.
    teacher: Optional[str] = None
    conversion: Optional[str] = None
    curvature_scale: float = 1.0
    # Replace BatchNorm's moving statistics after every epoch by robust ones (median and
    # interquartile range of each input): a polynomial network's rare exploding batches
    # would otherwise set them.
    robust_batch_norm: bool = False
    # Images the robust statistics (and the conversion's fits) are estimated on.
    statistics_images: int = 2000
    # Readable by construction (`tn_keras.training.low_order`): the weight, in the loss, of
    # the penalty on the part of every logit above order 2 about the mean of the training
    # images (0: no penalty). The penalised run keeps every BatchNorm frozen (the nodes of
    # the penalty must see the polynomial the checkpoint computes), so it is a fine-tuning
    # step for a trained network (``--init-from``).
    low_order_penalty: float = 0.0

    def __post_init__(self):
        weight = self.low_order_penalty
        if (isinstance(weight, bool) or not isinstance(weight, numbers.Real)
                or not math.isfinite(weight) or weight < 0):
            raise ValueError(f"low_order_penalty must be a finite number >= 0; received "
                             f"{weight!r}.")
        if weight and self.robust_batch_norm:
            raise ValueError("low_order_penalty freezes every BatchNormalization and "
                             "robust_batch_norm re-estimates their statistics after every "
                             "epoch: a recipe can ask for one of the two.")


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
    # The tag `zoo.load(name)` loads: a shipped checkpoint saved_models/<name>/<tag>/ (None:
    # no weights ship; then the only local tag, if any, is the default).
    default_tag: Optional[str] = None
    # Counts of the default build, for a user's architecture that `zoo.info` should not build.
    # The zoo's own leave them None: they are derived by building the model
    # (`tn_keras.zoo.catalogue.derived_facts`) and cached in catalogue.json, so no number is
    # written twice; tests/test_zoo.py checks declared counts against the built model.
    parameters: Optional[int] = None
    macs_per_image: Optional[int] = None
    # Cross-architecture evaluation (`tn-keras distill-eval --architectures`): the network
    # trained as this role ("taylornet" or "relu", `CROSS_ARCHITECTURE_ROLES`) for its own
    # dataset and for each of ``cross_architecture_datasets`` (a dataset without a model of
    # its own, built for that dataset's images). None: not an evaluation partner.
    cross_architecture_role: Optional[str] = None
    cross_architecture_datasets: tuple = ()

    def cross_architecture_for(self) -> tuple:
        """The datasets this architecture is the `cross_architecture_role` network of."""
        if self.cross_architecture_role is None:
            return ()
        return (self.dataset,) + tuple(self.cross_architecture_datasets)


#: The roles of `ModelSpec.cross_architecture_role` (the zoo rows of `tn-keras distill-eval
#: --architectures`; its other rows, "convnet3" and "resnet18", are built by the distill package).
CROSS_ARCHITECTURE_ROLES = ("taylornet", "relu")

_REGISTRY: dict = {}
#: Named training recipes (`register_recipe`): ``tn-keras train NAME --recipe RECIPE`` trains
#: any architecture with any of them, as timm's ``--pretrained-cfg`` overlays a config.
_RECIPES: dict = {}


def register_recipe(name, recipe):
    """Register ``recipe`` (a `TrainingRecipe`) under ``name`` and return it; the name must be
    new. The architecture modules register theirs where they define them."""
    if not isinstance(recipe, TrainingRecipe):
        raise ValueError(f"recipe must be a TrainingRecipe; received {type(recipe).__name__}.")
    if not isinstance(name, str) or not name or name in _RECIPES:
        raise ValueError(f"A recipe name must be a new non-empty string; received {name!r} "
                         f"(registered: {', '.join(sorted(_RECIPES))}).")
    _RECIPES[name] = recipe
    return recipe


def get_recipe(name):
    """The `TrainingRecipe` registered as ``name``; an unknown name lists the closest ones."""
    try:
        return _RECIPES[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_RECIPES), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown recipe {name!r}.{hint} Registered recipes: "
                         f"{', '.join(sorted(_RECIPES))}.") from None


def recipe_names():
    return sorted(_RECIPES)


def recipe_name(recipe):
    """The registered name of ``recipe`` (None for an unregistered one)."""
    return next((name for name, known in _RECIPES.items() if known == recipe), None)


def register(name, *, dataset, recipe, description="", family="taylornet", reference=PAPER,
             default_tag=None, parameters=None, macs_per_image=None,
             cross_architecture_role=None, cross_architecture_datasets=()):
    """Decorator that registers ``builder(input_shape=None, num_classes=None, **kw) -> Model``.

    Users register their own architectures the same way; the name must be new and may not
    contain a dot (``NAME.TAG`` names a checkpoint). Everything else the zoo states about the
    architecture (input shape and classes: the builder's defaults; parameters, MACs, degree:
    built, `tn_keras.zoo.catalogue.derived_facts`) is read from these arguments or the builder.
    ``cross_architecture_role`` makes it the ``taylornet`` or ``relu`` network of
    ``tn-keras distill-eval --architectures`` for ``dataset`` and ``cross_architecture_datasets``.
    Everything after the name is keyword-only: eleven fields of metadata read better named,
    and a positional call cannot silently shift when a field is added.
    """

    def decorator(builder):
        _check_new_name(name)
        _check_cross_architecture(name, dataset, cross_architecture_role,
                                  cross_architecture_datasets)
        _REGISTRY[name] = ModelSpec(
            name=name, builder=builder, dataset=dataset, recipe=recipe,
            description=description or (builder.__doc__ or "").strip().split("\n")[0],
            family=family, reference=reference, default_tag=default_tag,
            parameters=parameters, macs_per_image=macs_per_image,
            cross_architecture_role=cross_architecture_role,
            cross_architecture_datasets=tuple(cross_architecture_datasets))
        return builder

    return decorator


def _check_new_name(name):
    """A registered name is new and has no dot (``NAME.TAG`` names a checkpoint)."""
    if name in _REGISTRY:
        raise ValueError(f"A model named {name!r} is already registered.")
    if "." in name:
        raise ValueError(f"A model name may not contain '.' (it separates NAME.TAG); "
                         f"received {name!r}.")


def _check_cross_architecture(name, dataset, role, extra_datasets):
    """Refuse an unknown role, or a (role, dataset) another architecture already plays."""
    if role is None:
        if extra_datasets:
            raise ValueError(f"{name!r}: cross_architecture_datasets needs a "
                             "cross_architecture_role.")
        return
    if role not in CROSS_ARCHITECTURE_ROLES:
        raise ValueError(f"{name!r}: cross_architecture_role must be one of "
                         f"{', '.join(map(repr, CROSS_ARCHITECTURE_ROLES))}; received {role!r}.")
    taken = cross_architecture_partners().get(role, {})
    for one in (dataset,) + tuple(extra_datasets):
        if one in taken:
            raise ValueError(f"{name!r}: {taken[one]!r} is already the {role!r} architecture "
                             f"of dataset {one!r}.")


def cross_architecture_partners() -> dict:
    """``{role: {dataset: architecture}}`` of every registration with a
    ``cross_architecture_role``: the zoo networks ``tn-keras distill-eval --architectures``
    trains (`tn_keras.distill.cross_architecture.zoo_architecture`)."""
    partners = {role: {} for role in CROSS_ARCHITECTURE_ROLES}
    for spec in _REGISTRY.values():
        for dataset in spec.cross_architecture_for():
            partners[spec.cross_architecture_role][dataset] = spec.name
    return partners


def unregister(name):
    """Remove a user-registered name (mainly for tests and notebooks)."""
    get_spec(name)
    del _REGISTRY[name]


@contextlib.contextmanager
def registered(name, builder, **register_kwargs):
    """Register ``builder`` as ``name`` for the ``with`` block only (tests, notebooks), then
    unregister it however the block ends; yields its `ModelSpec`::

        with zoo.registered("tiny", tiny, dataset="digits", recipe=zoo.TrainingRecipe(1)):
            zoo.build("tiny")
    """
    register(name, **register_kwargs)(builder)
    try:
        yield get_spec(name)
    finally:
        _REGISTRY.pop(name, None)


def get_spec(name):
    """The ModelSpec of ``name`` (``arch`` or ``arch.tag``: the tag is resolved elsewhere, by
    `tn_keras.zoo.checkpoints`); an unknown name lists the closest registered ones."""
    try:
        return _REGISTRY[name.partition(".")[0] if isinstance(name, str) else name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model name {name!r}.{hint} Registered models: {', '.join(sorted(_REGISTRY))}."
        ) from None


def registered_names(pattern="*"):
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def check_builder_kwargs(spec, kwargs, argument="model_kwargs"):
    """Refuse keyword arguments the builder does not take, naming the valid ones.

    The one check used by `tn_keras.zoo.build`, `tn_keras.zoo.load` and `tn-keras train`.
    A ``width`` (the channel multiplier) must be a finite number > 0, as the CLI's
    ``--model-kwargs`` requires: ``build(name, width=0)`` built a 71-parameter model.
    """
    parameters = inspect.signature(spec.builder).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(kwargs) - set(parameters))
        if unknown:
            raise ValueError(f"{argument} {unknown} are not arguments of the {spec.name!r} "
                             f"builder; it takes: {', '.join(parameters)}.")
    width = kwargs.get("width")
    if "width" in kwargs and (isinstance(width, bool) or not isinstance(width, numbers.Real)
                              or not math.isfinite(width) or width <= 0):
        raise ValueError(f"{argument} width={width!r}: expected a finite number > 0 (the "
                         "channel multiplier).")


def builder_default(spec, argument):
    """The default value of one of the builder's arguments (None if it has none)."""
    parameter = inspect.signature(spec.builder).parameters.get(argument)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default
