"""Every choice and default of `tn_keras.distill`, in one place.

The library, the CLI (``tn-keras distill``) and the benchmarks import these lists and the two
config objects instead of spelling them out again:

- `DistillConfig`: what the algorithm does (recorded in every level's manifest and checked
  on resume, except ``levels`` and ``chunk_size``, which do not change a level's images);
- `LevelExportConfig`: where and how the levels are written, and what is recorded about the data
  and the model.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Optional, Union

from tn_keras.utils import options as options_lib
from tn_keras.utils.durations import parse_duration

#: Adam's constants for both methods (the optimiser moves raw pixels, in grey levels).
ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
#: The pixel range every synthesised image is clipped to (raw 0..255, the zoo's convention).
PIXEL_MIN, PIXEL_MAX = 0.0, 255.0


#: What to cite for distribution matching ("distribution" follows it; "dm" is it as published).
DM_CITATION = ("B. Zhao and H. Bilen, \"Dataset Condensation with Distribution Matching\", "
               "WACV 2023")


@dataclasses.dataclass(frozen=True)
class Method:
    """One distillation method: everything the library, the CLI (``tn-keras distill``),
    `tn_keras.distill.shipping` and the data cards say about it, in one record.

    Attributes:
        name: the ``method=`` value (``DistillConfig.method``, ``--method``).
        short: its part of a shipped set's name, ``<dataset>.<short>.ipc<N>``. Unique: a set
            name must say which method made it.
        steps, learning_rate, init: the default optimisation of one level.
        algorithm: the id recorded in manifests (a new version changes it, so that resume does
            not mix the levels of two implementations).
        match_against: the default of ``DistillConfig.match_against``.
        needs_model: whether it matches the trained model's embeddings (the others match
            random ConvNets: ``distill(None, ...)`` works, and a card says the recorded model
            was not used).
        recorded: the fields of `DistillConfig` beyond the common ones that its manifests
            record (and resume compares).
        help: what the CLI's ``--method`` help says of it.
        card: what a data card's first line calls it.
        citation: what a data card cites for it.
    """

    name: str
    short: str
    steps: int
    learning_rate: float
    init: str
    algorithm: str
    match_against: str
    needs_model: bool
    recorded: tuple
    help: str
    card: str
    citation: str


#: ``method name -> Method``: the registry. "embedding" (the default) matches each group's mean
#: embedding under the trained model (`tn_keras.distill.embedding_matching`); "distribution"
#: matches a class's distribution under random ConvNets (`tn_keras.distill.distribution_matching`):
#: 200 Adam steps of 2.55 grey levels (0.01 of the pixel range) per level; "dm" is Zhao &
#: Bilen's distribution matching at the published scale (`tn_keras.distill.class_matching`):
#: 20,000 SGD iterations (momentum 0.5) of learning rate 1.0 on normalised images per level,
#: against the whole class. The embedding id is v2 since Keras's Adam replaced the
#: hand-written one (its epsilon placement changes about 2 % of the uint8 pixels,
#: docs/distillation.md), so resume does not mix the two.
#:
#: Short names: "distribution" ships as "dm" (the shipped sets' names, cifar10.dm.ipc10, were
#: given before the published-scale method existed and are kept), so the published-scale
#: method, whose ``method=`` name is "dm", ships as "dmfull".
METHODS = {m.name: m for m in (
    Method("embedding", "em", 40, 0.25, "mean", "embedding-matching/v2", "previous",
           needs_model=True, recorded=("ce_weight", "embedding_layer"),
           help="match each group's mean embedding under the model (default)",
           card="embedding matching (`method=\"embedding\"`)",
           citation="the TaylorNet paper's Supplement E (multi-level distillation)"),
    # Records ce_weight and embedding_layer though it uses neither: its levels' manifests, the
    # shipped ones included, have them, and resume compares the record.
    Method("distribution", "dm", 200, 2.55, "first", "distribution-matching/v1", "previous",
           needs_model=False, recorded=("ce_weight", "embedding_layer"),
           help="match the class's distribution under random ConvNets (better training "
                "sets, does not use the model)",
           card="distribution matching (`method=\"distribution\"`, after DM)",
           citation=DM_CITATION),
    Method("dm", "dmfull", 20000, 1.0, "first", "distribution-matching-full/v1", "class",
           needs_model=False, recorded=("embedding_network", "real_batch", "dsa", "formation"),
           help="distribution matching at the published scale (Zhao & Bilen 2023: "
                "ConvNet-3, DSA, 20,000 iterations per level, the whole class)",
           card="distribution matching at the published scale (`method=\"dm\"`, DM)",
           citation=DM_CITATION),
)}
DEFAULT_METHOD = "embedding"
#: Where an optimisation starts: the group's pixel mean, or its first (real) member.
INIT_MODES = ("mean", "first")
#: What level ``a`` is matched against ("distribution", "dm"): level ``a - 1`` (the cascade),
#: the real level 0, or the whole class (every training image of the class, not only level 0's
#: subset; drawn in batches from the host).
MATCH_AGAINST = ("previous", "level0", "class")


def method_named(short: str) -> Method:
    """The `Method` whose short name (a set name's middle part) is ``short``; ValueError
    listing the known ones."""
    for method in METHODS.values():
        if method.short == short:
            return method
    known = ", ".join(f"{m.short} ({m.name})" for m in METHODS.values())
    raise ValueError(f"Unknown short method name {short!r}; known: {known}.")


#: The fields of `DistillConfig` that only some methods record (`Method.recorded`).
METHOD_FIELDS = tuple(sorted({f for m in METHODS.values() for f in m.recorded}))
#: ``method -> its default match_against`` (`Method.match_against`).
DEFAULT_MATCH_AGAINST = {m.name: m.match_against for m in METHODS.values()}
#: "dm": the random embedding networks. "convnet3": DM's ConvNet-3 (three Conv3x3(128)
#: InstanceNorm ReLU AvgPool2 blocks), "small": the small evaluator's two conv blocks.
EMBEDDING_NETWORKS = ("convnet3", "small")
#: "dm" only: its defaults for the fields that other methods do not have (as published: real
#: batch 256 per class, DSA siamese augmentation, ConvNet-3).
DM_DEFAULTS = {"embedding_network": "convnet3", "real_batch": 256, "dsa": True, "formation": 1}
#: The train-from-scratch evaluators (`tn_keras.distill.evaluation`); the first is the default.
EVALUATORS = ("small", "convnet3")
#: Cross-architecture evaluation (`tn_keras.distill.cross_architecture`): ConvNet-3, the zoo's
#: TaylorNet for the dataset, the zoo's ReLU baseline, a ResNet-18-style network.
ARCHITECTURES = ("convnet3", "taylornet", "relu", "resnet18")
DEFAULT_GROUP_SIZE = 2
DEFAULT_CE_WEIGHT = 0.1
DEFAULT_EMBEDDING_LAYER = "embedding"
DEFAULT_CHUNK_SIZE = 1024
#: The most optimisation steps one level (or one distill-eval training run) may take: 500 times
#: the published DM scale's 20,000. More is a typo, not a plan (``--steps 10**20`` ran until
#: it was killed); a long run is a time budget or ``--resume``.
MAX_STEPS = 10_000_000


#: ``{"taylornet": {dataset: zoo architecture}, "relu": {...}}``, the zoo rows of
#: `ARCHITECTURES`: not written here but read from the zoo registry, where each architecture's
#: registration says which role it plays for which datasets (``cross_architecture_role``;
#: Fashion-MNIST and the digits have no ReLU baseline of their own: ``mnist_convnet_relu``
#: registers for them and is built fresh for their images). `zoo_architectures` reads it;
#: ``ZOO_ARCHITECTURES`` (module ``__getattr__``) is the same, read afresh each time.


def zoo_architectures() -> dict:
    """``{role: {dataset: architecture}}`` of the live zoo registry (imports the zoo, so
    Keras), user registrations included."""
    from tn_keras import zoo  # noqa: F401  (importing the zoo registers its architectures)
    from tn_keras.zoo.registry import cross_architecture_partners

    return cross_architecture_partners()


def _one_of(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got "
                         f"{value!r}.")


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """How to distil. Checked when made (a ValueError naming the field). ``steps``,
    ``learning_rate``, ``init``, ``match_against`` and the "dm" fields left None take the
    method's defaults (`METHODS`); `resolved` fills them in (kept apart because they depend on
    ``method``, which a copy may change).

    Attributes:
        levels: distilled levels after level 0 (level ``a`` has ``n_{a-1} // group_size``
            images per class).
        group_size: ``k``, images merged into one per level (2 halves each level).
        steps, learning_rate: Adam steps per level and step size in grey levels.
        ce_weight: weight of the cross-entropy against the relative embedding error
            ("embedding").
        embedding_layer: the model's layer whose output is matched ("embedding").
        per_class: size per class of the starting real subset (None: every image).
        seed: seeds the starting subset, every level's grouping and the "distribution" draws.
        init: ``"mean"`` (group mean) or ``"first"`` (a real member of the group).
        method: ``"embedding"``, ``"distribution"`` or ``"dm"``.
        match_against: ``"previous"``, ``"level0"`` or ``"class"`` ("distribution", "dm";
            None: the method's, `DEFAULT_MATCH_AGAINST`).
        chunk_size: groups optimised together (bounds memory; the result is the same).
        time_budget: wall-clock seconds (or ``"150m"``, ``"2h"``) for the whole call: a "dm"
            level saves its progress (`tn_keras.distill.level_progress`) and the call stops
            with `tn_keras.utils.paused.RunPaused` when it runs out; resume continues. Not
            recorded: it does not change the images.
        embedding_network, real_batch, dsa, formation: "dm" only (None: `DM_DEFAULTS`): the
            random embedding networks (`EMBEDDING_NETWORKS`), real images per class and
            iteration, whether DSA siamese augmentation is applied, and the multi-formation
            factor ``f`` (`tn_keras.datasets.multi_formation`): each stored image holds ``f^2``
            images at ``1/f`` of the size, decoded by upsampling. ``f > 1`` makes one level
            from real images (``levels=1``), each slot starting as ``f^2`` members of its group.
    """

    levels: int = 1
    group_size: int = DEFAULT_GROUP_SIZE
    steps: Optional[int] = None
    learning_rate: Optional[float] = None
    ce_weight: float = DEFAULT_CE_WEIGHT
    embedding_layer: str = DEFAULT_EMBEDDING_LAYER
    per_class: Optional[int] = None
    seed: int = 0
    init: Optional[str] = None
    method: str = DEFAULT_METHOD
    match_against: Optional[str] = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    embedding_network: Optional[str] = None
    real_batch: Optional[int] = None
    dsa: Optional[bool] = None
    formation: Optional[int] = None
    time_budget: Optional[Union[float, str]] = None

    def __post_init__(self):
        self._resolved_fields()  # a ValueError naming the field; the values are not kept

    def resolved(self) -> "DistillConfig":
        """A copy with the method's defaults filled in (what a level's manifest records).

        The defaults stay None until then because they depend on ``method``: a copy made
        with ``dataclasses.replace(config, method="dm")`` takes the new method's."""
        return dataclasses.replace(self, **self._resolved_fields())

    def _resolved_fields(self) -> dict:
        """The fields with the method's defaults filled in, checked; ValueError naming the
        field."""
        _one_of("method", self.method, tuple(METHODS))
        defaults = METHODS[self.method]
        steps = self.steps  # before int(): int(1e20) is a number, int(inf) an OverflowError
        number = (isinstance(steps, numbers.Real) and not isinstance(steps, bool)
                  and math.isfinite(steps))
        if steps is not None and not (number and steps <= MAX_STEPS and steps == round(steps)):
            raise ValueError(f"steps={steps!r}: expected a whole number of steps from 0 to "
                             f"{MAX_STEPS:,} per level (CLI: --steps).")
        out = dict(
            steps=int(defaults.steps if self.steps is None else self.steps),
            learning_rate=float(defaults.learning_rate if self.learning_rate is None
                                else self.learning_rate),
            init=defaults.init if self.init is None else self.init,
            match_against=(DEFAULT_MATCH_AGAINST[self.method] if self.match_against is None
                           else self.match_against),
            ce_weight=float(self.ce_weight), seed=int(self.seed))
        if out["steps"] < 0 or out["learning_rate"] <= 0 or out["ce_weight"] < 0:
            raise ValueError("steps must be >= 0, learning_rate > 0 and ce_weight >= 0.")
        _one_of("init", out["init"], INIT_MODES)
        _one_of("match_against", out["match_against"], MATCH_AGAINST)
        if self.method == "embedding" and out["match_against"] != "previous":
            raise ValueError(f"match_against={out['match_against']!r} needs method "
                             f"'distribution' or 'dm'; the embedding method matches each "
                             f"group.")
        if self.time_budget is not None:
            if self.method != "dm":  # the only method whose levels save their progress
                raise ValueError(f"time_budget applies to method='dm' only; got "
                                 f"method={self.method!r}.")
            out["time_budget"] = parse_duration(self.time_budget)
        if int(self.chunk_size) != self.chunk_size or self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer; got {self.chunk_size!r}.")
        out.update(self._dm_fields())
        return out

    def _dm_fields(self) -> dict:
        """"dm": its own fields filled in and checked; any other method: refused if set."""
        own = {name: getattr(self, name) for name in DM_DEFAULTS}
        if self.method != "dm":
            given = [name for name, value in own.items() if value is not None]
            if given:
                raise ValueError(f"{', '.join(given)} apply to method='dm' only; got "
                                 f"method={self.method!r}.")
            return {}
        own = {name: DM_DEFAULTS[name] if value is None else value
               for name, value in own.items()}
        _one_of("embedding_network", own["embedding_network"], EMBEDDING_NETWORKS)
        if int(own["real_batch"]) != own["real_batch"] or own["real_batch"] < 1:
            raise ValueError(f"real_batch must be a positive integer; got "
                             f"{own['real_batch']!r}.")
        formation = own["formation"]
        if isinstance(formation, bool) or int(formation) != formation or formation < 1:
            raise ValueError(f"formation must be a positive integer; got {formation!r}.")
        if formation > 1 and self.levels != 1:
            # A slot's tiles are coarse images; a deeper level would tile tiles.
            raise ValueError(f"formation={formation} makes one level from real images: pass "
                             f"levels=1 (got levels={self.levels}).")
        return dict(embedding_network=str(own["embedding_network"]),
                    real_batch=int(own["real_batch"]), dsa=bool(own["dsa"]),
                    formation=int(formation))

    @property
    def algorithm(self) -> str:
        return METHODS[self.method].algorithm

    def as_dict(self) -> dict:
        """What a level's manifest records (and resume compares): the fields that change the
        images (the common ones and the method's `Method.recorded`), plus the algorithm id.
        Call on a `resolved` copy."""
        record = dataclasses.asdict(self)
        del record["levels"], record["chunk_size"], record["time_budget"]
        own = METHODS[self.method].recorded
        for name in METHOD_FIELDS:  # another method's fields say nothing of these images
            if name not in own:
                del record[name]
        record["algorithm"] = self.algorithm
        return record


@dataclasses.dataclass(frozen=True)
class LevelExportConfig:
    """Where the distilled levels go and what is recorded with them (not to be confused with
    `tn_keras.export.ExportConfig`, which exports a model). Checked when made; no `resolved`:
    no default depends on the call.

    Attributes:
        directory: every level is written to ``directory/level_<a>/`` as soon as it is made
            (None: nothing is written).
        resume: reuse the levels already there whose files verify and whose settings match.
        overwrite: replace an existing directory's levels.
        dataset: where the distilled data came from, recorded in the manifests, e.g.
            ``{"dataset": "mnist", "split": "train"}``.
        model_info: recorded in the manifests, e.g. ``{"name": ..., "sha256": ...}``.
    """

    directory: Optional[str] = None
    resume: bool = False
    overwrite: bool = False
    dataset: Optional[dict] = None
    model_info: Optional[dict] = None

    def __post_init__(self):
        if self.resume and self.overwrite:
            raise ValueError("Pass at most one of resume=True and overwrite=True.")

    def checked(self) -> "LevelExportConfig":
        """Deprecated: a `LevelExportConfig` is checked when made; returns ``self``."""
        return self


#: Old keyword names of `distill` that map to a renamed field (still accepted, silently;
#: `tn_keras.utils.options.with_keywords` translates them).
LEGACY_EXPORT_KEYWORDS = {"export_dir": "directory", "source": "dataset"}


#: The old names (DeprecationWarning when looked up; each is the new class itself).
_OLD_NAMES = {"DistillSettings": ("DistillConfig", DistillConfig),
              "ExportOptions": ("LevelExportConfig", LevelExportConfig)}
_old_name = options_lib.deprecated_aliases(__name__, _OLD_NAMES)


def __getattr__(name):
    if name == "ZOO_ARCHITECTURES":
        return zoo_architectures()
    return _old_name(name)
