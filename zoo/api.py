"""The zoo's public functions: list, info, build, load (names are ``arch`` or ``arch.tag``)."""
import ast
import contextlib
import dataclasses
import functools
import os
from typing import Optional

from tn_keras import artifacts
from tn_keras.zoo import catalogue
from tn_keras.zoo import checkpoints
from tn_keras.zoo.registry import builder_default
from tn_keras.zoo.registry import check_builder_kwargs
from tn_keras.zoo.registry import get_spec
from tn_keras.zoo.registry import registered_names

EMBEDDING_LAYER = "embedding"  # every zoo model's penultimate layer (features, distillation)
# `compile_for_fine_tuning`'s default learning rates (docs/zoo.md, "Fine-tuning: measured").
HEAD_LEARNING_RATE = 1e-2
BODY_LEARNING_RATE = 3e-3
# The whole model's rate where a dataset's measurement chose another: on CIFAR-10 the body
# lost 8.5 points at 3e-3 against 1e-3 (cifar_taylornet, 5 classes).
BODY_LEARNING_RATES = {"cifar10": 1e-3}


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
    trainable_parameters: Optional[int]
    macs_per_image: int
    preprocessing: str
    recipe: dict
    reference: str
    tag: Optional[str] = None
    tags: tuple = ()
    checkpoint: Optional[str] = None
    checkpoint_sha256: Optional[str] = None
    checkpoint_size_bytes: Optional[int] = None
    test_accuracy: Optional[float] = None
    metrics: dict = dataclasses.field(default_factory=dict)
    training_time_seconds: Optional[float] = None
    command: Optional[str] = None
    versions: dict = dataclasses.field(default_factory=dict)


def list_models(pattern="*", pretrained=None):
    """Registered architectures matching the fnmatch ``pattern``.

    ``pretrained=True`` lists every checkpoint as ``arch.tag`` (shipped tags, then local ones);
    ``False`` the architectures without any checkpoint.
    """
    return _with_checkpoints(registered_names(pattern), pretrained)


def list_builtin(pattern="*", pretrained=None):
    """`list_models` of the zoo's own architectures, without importing Keras: the names are read
    from the ``@register("NAME", ...)`` decorators in this package's source files, the tags from
    the checkpoint folders. ``tn-keras list`` answers from it before Keras is loaded; it equals
    `list_models` until a user registers an architecture (tests/test_cli_speed.py)."""
    import fnmatch

    names = set()
    folder = os.path.dirname(os.path.abspath(__file__))
    for file in sorted(os.listdir(folder)):
        if file.endswith(".py"):
            with open(os.path.join(folder, file), encoding="utf-8") as f:
                names.update(_registered_in(ast.parse(f.read(), file)))
    return _with_checkpoints(sorted(n for n in names if fnmatch.fnmatchcase(n, pattern)),
                             pretrained)


def _registered_in(tree):
    """The names of ``@register("NAME", ...)`` / ``@zoo.register(...)`` decorators in ``tree``."""
    for node in ast.walk(tree):
        for decorator in getattr(node, "decorator_list", ()):
            func = getattr(decorator, "func", None)
            called = getattr(func, "id", None) or getattr(func, "attr", None)
            if called == "register" and decorator.args and isinstance(
                    decorator.args[0], ast.Constant) and isinstance(decorator.args[0].value, str):
                yield decorator.args[0].value


def _with_checkpoints(names, pretrained):
    if pretrained is None:
        return names
    if pretrained:
        return [f"{n}.{t}" for n in names for t in checkpoints.known_tags(n)]
    return [n for n in names if not checkpoints.known_tags(n)]


def build(name, **overrides):
    """An untrained model. Overrides go to the builder: ``num_classes``, ``input_shape``,
    ``width`` (channel multiplier), ``classifier_activation`` (None for logits), ``name``."""
    arch, _ = checkpoints.split_name(name)
    spec = get_spec(arch)
    check_builder_kwargs(spec, overrides, argument="Invalid override:")
    kwargs = dict(overrides)
    if kwargs.get("input_shape") is not None:
        kwargs["input_shape"] = tuple(kwargs["input_shape"])
    return spec.builder(**kwargs)


def load(name, weights="pretrained", compile=True, num_classes=None, include_top=True,
         freeze_body=False):
    """A model by name.

    Args:
        name: ``arch`` (its default tag) or ``arch.tag``; `list_models(pretrained=True)` lists
            them. Or a checkpoint folder laid out as a hub repository (``manifest.json``, the
            ``.keras`` file, ``README.md``): its manifest names the architecture (`find`).
        weights: ``"pretrained"`` (the tagged checkpoint), a path to a checkpoint folder (with
            ``manifest.json``) or to its ``.keras`` file, or None for an untrained model.
        compile: restore the training configuration; with ``num_classes``, compile the new
            model for fine-tuning instead (`compile_for_fine_tuning`), so ``fit`` runs at once.
        num_classes: fine-tuning: the pretrained body with a new, freshly initialised
            classifier of this many classes (the same activation as the original's).
        include_top: False gives the model up to its ``embedding`` layer (features).
        freeze_body: with ``num_classes``: train the new head only (`set_body_trainable`); the body's
            BatchNorm layers then run in inference mode, with their pretrained statistics.

    Every file's sha256 is checked against the manifest before the checkpoint is deserialised,
    with ``safe_mode=True``; a mismatch raises `ChecksumError`.
    """
    from tn_keras.zoo_model import as_zoo_model  # Keras: this module is read without it

    if freeze_body and num_classes is None:
        raise ValueError("freeze_body=True needs num_classes: it trains a new head only; "
                         "to freeze a whole model set model.trainable = False.")
    if weights is None:
        model = as_zoo_model(build(name))
        dataset = get_spec(checkpoints.split_name(name)[0]).dataset
    else:
        checkpoint = find(name, weights)
        model = as_zoo_model(checkpoints.load_verified(
            checkpoint, compile=compile and include_top and num_classes is None))
        dataset = checkpoint.manifest["dataset"]
    if not include_top:
        return features(model)
    if num_classes is not None:
        model = with_new_head(model, num_classes)
        if freeze_body:
            set_body_trainable(model, False)
        if compile:
            compile_for_fine_tuning(model, dataset=dataset)
    return model


def predict(model, images, **kwargs):
    """``model.predict(images, **kwargs)`` (``verbose=0`` unless given) for a zoo model, with
    the input scale checked first (`check_pixel_scale`): every zoo model takes raw pixels
    0..255, and images already divided by 255 give chance-level answers without any error.
    (A `ZooModel`, what `load` returns, checks in its own ``predict`` too; this checks any
    model.)"""
    from tn_keras.zoo_model import check_pixel_scale

    check_pixel_scale(images, stacklevel=3)
    kwargs.setdefault("verbose", 0)
    return model.predict(images, **kwargs)


def check_pixel_scale(images, argument="images", stacklevel=2):
    """`tn_keras.zoo_model.check_pixel_scale`: warn (once) when ``images`` look like floats in
    0..1 rather than raw pixels 0..255; returns whether it warned."""
    from tn_keras import zoo_model

    return zoo_model.check_pixel_scale(images, argument, stacklevel=stacklevel + 1)


def find(name, weights="pretrained"):
    """The `checkpoints.Checkpoint` that ``load(name, weights)`` reads.

    ``name`` may also be a checkpoint folder laid out as a hub repository holds one
    (``manifest.json``, the ``.keras`` file it names, ``README.md``), e.g. one downloaded or
    shared by someone else: its manifest names the architecture, and the files are verified
    against it like a shipped checkpoint's. A registered name wins over a folder of the same
    name in the working directory."""
    if weights == "pretrained" and _is_checkpoint_folder(name):
        return checkpoints.read_checkpoint(os.fspath(name))
    arch, _ = checkpoints.split_name(name)
    get_spec(arch)
    if weights == "pretrained":
        return checkpoints.resolve(name)
    path = os.fspath(weights)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if not os.path.isfile(os.path.join(folder, checkpoints.MANIFEST_NAME)):
        raise FileNotFoundError(
            f"weights={path!r}: no {checkpoints.MANIFEST_NAME} beside it, so its sha256 cannot "
            "be verified. Load a checkpoint folder written by `tn-keras train`, or load the file "
            "yourself with keras.saving.load_model.")
    checkpoint = checkpoints.read_checkpoint(folder, arch)
    if not os.path.isdir(path) and os.path.basename(path) != checkpoint.manifest.file:
        raise ValueError(f"weights={path!r} is not the file its manifest names "
                         f"({checkpoint.manifest.file!r}).")
    return checkpoint


def _is_checkpoint_folder(name):
    """Whether ``name`` is a folder with a checkpoint manifest and not a registered name."""
    if not isinstance(name, (str, os.PathLike)):
        return False
    if isinstance(name, str):
        with contextlib.suppress(ValueError):
            get_spec(checkpoints.split_name(name)[0])
            return False
    return os.path.isfile(os.path.join(os.fspath(name), checkpoints.MANIFEST_NAME))


def features(model):
    """The model up to (and including) its ``embedding`` layer."""
    from tn_keras.zoo_model import ZooModel

    layer = _embedding(model)
    return ZooModel(model.inputs, layer.output, name=f"{model.name}_features")


def with_new_head(model, num_classes):
    """``model``'s body (the very same layers and weights) with a fresh classifier."""
    import keras

    from tn_keras.zoo_model import ZooModel

    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; received {num_classes!r}.")
    x = keras.layers.Dense(num_classes, name="logits")(_embedding(model).output)
    try:
        activation = model.get_layer("predictions").get_config()["activation"]
    except ValueError:
        activation = None
    if activation is not None:
        x = keras.layers.Activation(activation, name="predictions", dtype="float32")(x)
    return ZooModel(model.inputs, x, name=model.name)


def set_body_trainable(model, trainable):
    """Freeze (``trainable=False``) or unfreeze every layer but the classifier head.

    A frozen Keras 3 ``BatchNormalization`` runs in inference mode, normalising with its
    pretrained moving statistics, and ``fit`` no longer updates them. Compile (again) after
    changing this: Keras fixes the trainable weights when the model is compiled.
    """
    from tn_keras.zoo.saving import HEAD_LAYERS

    _embedding(model)  # a model without a body / head boundary is an error naming it
    for layer in model.layers:
        if layer.name not in HEAD_LAYERS:
            layer.trainable = trainable
    return model


def compile_for_fine_tuning(model, learning_rate=None, dataset=None):
    """Compile ``model`` for fine-tuning on integer labels: Adam, sparse cross-entropy (on
    probabilities or logits, as the model ends), and accuracy.

    The default learning rate is the one that worked in docs/zoo.md's measurement:
    `HEAD_LEARNING_RATE` when only the head trains; for the whole model,
    `BODY_LEARNING_RATES` of ``dataset`` (the zoo dataset the model was trained on; `load`
    passes it) or else `BODY_LEARNING_RATE`.
    """
    import keras

    from tn_keras.zoo.saving import HEAD_LAYERS

    if learning_rate is None:
        body_trains = any(layer.trainable and layer.trainable_weights for layer in model.layers
                          if layer.name not in HEAD_LAYERS)
        learning_rate = (BODY_LEARNING_RATES.get(dataset, BODY_LEARNING_RATE) if body_trains
                         else HEAD_LEARNING_RATE)
    try:
        from_logits = model.get_layer("predictions").get_config()["activation"] != "softmax"
    except ValueError:
        from_logits = True  # no activation layer: the Dense ``logits`` is the output
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
                  metrics=["accuracy"])
    return model


def _embedding(model):
    try:
        return model.get_layer(EMBEDDING_LAYER)
    except ValueError:
        raise ValueError(f"Model {model.name!r} has no {EMBEDDING_LAYER!r} layer, so its "
                         "body and head cannot be told apart.") from None


def model_facts(model, dataset) -> dict:
    """Shapes, class names, parameter and MAC counts of a built model of ``dataset``."""
    from tn_keras import datasets
    from tn_keras.zoo.complexity import model_macs

    data = datasets.info(dataset)
    return dict(
        input_shape=tuple(model.input_shape[1:]),
        num_classes=int(model.output_shape[-1]),
        class_names=tuple(data.class_names),
        parameters=int(model.count_params()),
        trainable_parameters=int(sum(int(w.numpy().size) for w in model.trainable_weights)),
        macs_per_image=int(model_macs(model)),
    )


@functools.lru_cache(maxsize=None)
def _built_facts(arch):
    spec = get_spec(arch)
    return model_facts(spec.builder(), spec.dataset)


def architecture_facts(arch) -> dict:
    """The default build's facts without building it: the counts a registration declares, else
    those catalogue.json caches for it (the zoo's own); built (once) only for an architecture
    in neither (a user's, registered without counts)."""
    spec = get_spec(arch)
    if spec.parameters is not None and spec.macs_per_image is not None:
        counts = dict(parameters=spec.parameters, macs_per_image=spec.macs_per_image)
    else:
        counts = catalogue.cached_facts(spec)
        if counts is None:
            return _built_facts(arch)
    return _catalogued_facts({**catalogue.static_record(spec), **counts})


def _catalogued_facts(record) -> dict:
    from tn_keras.datasets.registry import info as dataset_info

    return dict(input_shape=tuple(record["input_shape"]), num_classes=record["num_classes"],
                class_names=tuple(dataset_info(record["dataset"]).class_names),
                parameters=record["parameters"], trainable_parameters=None,
                macs_per_image=record["macs_per_image"])


def info(name):
    """The `ModelInfo` of ``arch`` or ``arch.tag``, without building a model: counts come from
    the checkpoint's manifest, or from the registry for an architecture without weights."""
    arch, _ = checkpoints.split_name(name)
    spec = get_spec(arch)
    return _info(name, catalogue.static_record(spec), lambda: architecture_facts(arch))


def info_builtin(name):
    """`info` of one of the zoo's own architectures from its catalogue (`catalogue.json`),
    without importing the registry, hence Keras: what ``tn-keras info`` prints. Equal to
    `info` (tests/test_cli_speed.py)."""
    import difflib

    arch, _ = checkpoints.split_name(name)
    records = catalogue.read()
    if arch not in records:
        close = difflib.get_close_matches(arch, list(records), n=3, cutoff=0.4)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown model name {name!r}.{hint} Registered models: "
                         f"{', '.join(sorted(records))}.")
    record = records[arch]
    return _info(name, record, lambda: _catalogued_facts(record))


def shipped_card(name):
    """The path of the model card of the shipped checkpoint ``name`` names (through the
    catalogue, without Keras), or None when ``name`` names anything else (an unknown name, a
    local checkpoint): the shipped cards are the generated ones (tests/test_cards.py), so
    ``tn-keras card`` prints the file instead of building the model to render it."""
    from tn_keras.zoo.cards import CARD_NAME

    try:
        arch, _ = checkpoints.split_name(name)
        record = catalogue.read().get(arch)
        checkpoint = None if record is None else checkpoints.resolve(
            name, default_tag=record["default_tag"])
    except (ValueError, OSError):
        return None
    if checkpoint is None or not checkpoint.shipped:
        return None
    path = os.path.join(checkpoint.folder, CARD_NAME)
    return path if os.path.isfile(path) else None


def _info(name, record, architecture):
    """The `ModelInfo` of ``name`` from its architecture's catalogue ``record``; the counts from
    its checkpoint's manifest, else from ``architecture()``."""
    arch, tag = checkpoints.split_name(name)
    checkpoint = None
    if tag is not None or record["default_tag"] is not None or checkpoints.local_tags(arch):
        try:
            checkpoint = checkpoints.resolve(name, default_tag=record["default_tag"])
        except FileNotFoundError:
            checkpoint = None
    fields = dict(name=record["name"], description=record["description"],
                  family=record["family"], dataset=record["dataset"], recipe=record["recipe"],
                  reference=record["reference"], tags=tuple(checkpoints.known_tags(arch)),
                  preprocessing=("inside the model: raw pixels 0..255 -> per-channel "
                                 f"(x - mean) / std of the {record['dataset']} training split"))
    fields.update(architecture() if checkpoint is None else _checkpoint_record(checkpoint))
    return ModelInfo(**fields)


def _checkpoint_record(checkpoint) -> dict:
    manifest: artifacts.Manifest = checkpoint.manifest
    metrics = manifest.get("metrics", {})
    training = manifest.get("training", {})
    return dict(
        tag=checkpoint.tag, checkpoint=checkpoint.path, checkpoint_sha256=manifest.sha256,
        checkpoint_size_bytes=manifest.size_bytes, test_accuracy=metrics.get("test_accuracy"),
        metrics=metrics, training_time_seconds=training.get("wall_time_seconds"),
        command=manifest.provenance.command, versions=manifest.versions,
        input_shape=tuple(manifest["input_shape"]), num_classes=manifest["num_classes"],
        class_names=tuple(manifest["class_names"]), parameters=manifest["parameters"],
        trainable_parameters=manifest["trainable_parameters"],
        macs_per_image=manifest["macs_per_image"])
