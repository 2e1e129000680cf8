"""The zoo's public functions: list, info, build, load."""
import dataclasses
import functools
import os
from typing import Optional

from tn_keras.zoo import checkpoints
from tn_keras.zoo.complexity import model_macs
from tn_keras.zoo.registry import get_spec
from tn_keras.zoo.registry import registered_names


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows of a model: architecture facts, and its checkpoint's record if any."""

    name: str
    description: str
    family: str
    dataset: str
    input_shape: tuple
    num_classes: int
    class_names: tuple
    parameters: int
    trainable_parameters: int
    macs_per_image: int
    preprocessing: str
    recipe: dict
    reference: str
    checkpoint: Optional[str] = None
    checkpoint_sha256: Optional[str] = None
    checkpoint_size_bytes: Optional[int] = None
    test_accuracy: Optional[float] = None
    metrics: dict = dataclasses.field(default_factory=dict)
    training_time_seconds: Optional[float] = None
    command: Optional[str] = None
    versions: dict = dataclasses.field(default_factory=dict)


def list_models(pattern="*", pretrained=None):
    """Registered names matching the fnmatch ``pattern``; ``pretrained=True`` keeps those with a
    checkpoint (shipped or cached), ``False`` those without."""
    names = registered_names(pattern)
    if pretrained is None:
        return names
    return [n for n in names if (checkpoints.find_checkpoint(n)[0] is not None) == pretrained]


def build(name, **overrides):
    """An untrained model. Overrides go to the builder: ``num_classes``, ``input_shape``,
    ``width`` (channel multiplier), ``classifier_activation`` (None for logits), ``name``."""
    spec = get_spec(name)
    kwargs = {k: v for k, v in overrides.items() if v is not None}
    if "input_shape" in kwargs:
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    try:
        return spec.builder(**kwargs)
    except TypeError as e:
        raise ValueError(f"Invalid override for model {name!r}: {e}") from e


def load(name, weights="pretrained", compile=True):
    """A model by name.

    Args:
        name: a registered name.
        weights: ``"pretrained"`` (the shipped checkpoint, else the one the user trained into
            ``$TN_KERAS_HOME``), a path to a checkpoint folder (with ``manifest.json``) or to a
            ``.keras`` file, or None for an untrained model.
        compile: restore the training configuration too.

    The checkpoint's sha256 is checked against its manifest before it is deserialised, with
    ``safe_mode=True``; a mismatch raises `ChecksumError`.
    """
    spec = get_spec(name)
    if weights is None:
        return build(name)
    if weights == "pretrained":
        folder, manifest = checkpoints.find_checkpoint(name)
        if folder is None:
            raise FileNotFoundError(
                f"No checkpoint for {name!r}: none ships with tn_keras and none is in "
                f"{checkpoints.cache_dir(name)}. Train one with `tn-keras train {name}`."
            )
        return checkpoints.load_verified(folder, manifest, spec.name, compile=compile)
    path = os.fspath(weights)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    manifest = checkpoints.read_manifest(folder)
    if manifest is None:
        raise FileNotFoundError(
            f"weights={path!r}: no {checkpoints.MANIFEST_NAME} beside it, so its sha256 cannot "
            "be verified. Load a checkpoint folder written by `tn-keras train`, or load the file "
            "yourself with keras.saving.load_model."
        )
    if not os.path.isdir(path) and os.path.basename(path) != manifest["file"]:
        raise ValueError(f"weights={path!r} is not the file its manifest names "
                         f"({manifest['file']!r}).")
    return checkpoints.load_verified(folder, manifest, spec.name, compile=compile)


@functools.lru_cache(maxsize=None)
def _architecture_facts(name):
    spec = get_spec(name)
    return model_facts(spec.builder(), spec.dataset)


def model_facts(model, dataset) -> dict:
    """Shapes, class names, parameter and MAC counts of a built model of ``dataset``."""
    from tn_keras import datasets

    data = datasets.info(dataset)
    return dict(
        input_shape=tuple(model.input_shape[1:]),
        num_classes=int(model.output_shape[-1]),
        class_names=tuple(data.class_names),
        parameters=int(model.count_params()),
        trainable_parameters=int(sum(int(w.numpy().size) for w in model.trainable_weights)),
        macs_per_image=int(model_macs(model)),
    )


def info(name):
    """The `ModelInfo` of a registered model (builds it once to count parameters and MACs)."""
    spec = get_spec(name)
    facts = _architecture_facts(name)
    record = dict(
        name=spec.name,
        description=spec.description,
        family=spec.family,
        dataset=spec.dataset,
        preprocessing=(
            "inside the model: raw pixels 0..255 -> per-channel (x - mean) / std of the "
            f"{spec.dataset} training split"
        ),
        recipe=dataclasses.asdict(spec.recipe),
        reference=spec.reference,
        **facts,
    )
    folder, manifest = checkpoints.find_checkpoint(name)
    if manifest is not None:
        metrics = manifest.get("metrics", {})
        record.update(
            checkpoint=os.path.join(folder, manifest["file"]),
            checkpoint_sha256=manifest["sha256"],
            checkpoint_size_bytes=manifest.get("size_bytes"),
            test_accuracy=metrics.get("test_accuracy"),
            metrics=metrics,
            training_time_seconds=manifest.get("training", {}).get("wall_time_seconds"),
            command=manifest.get("training", {}).get("command"),
            versions=manifest.get("versions", {}),
        )
    return ModelInfo(**record)
