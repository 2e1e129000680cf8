"""Multi-level distillation: level ``a`` is synthesised from level ``a - 1``.

PROJECT algorithm (the paper's own is not published). Level 0 is a real subset of the data;
every later level groups each class's images at random (`tn_keras.distill.groups`) and makes
one image per group, by the method of `DistillConfig.method`:

- ``"embedding"`` (default, `tn_keras.distill.embedding_matching`): the image matches the
  group's mean embedding under the trained model, plus a small cross-entropy term; Eq. (S3)'s
  within-class similarity ``s`` rises and the distance ``d`` falls from level to level, as in
  the paper's Figures S5/S6.
- ``"distribution"`` (`tn_keras.distill.distribution_matching`): a class's images together
  match the class's embedding distribution under random ConvNets.
- ``"dm"`` (`tn_keras.distill.class_matching`): Zhao & Bilen's distribution matching at the
  published scale, every level against the whole class (ConvNet-3, DSA, 20,000 iterations);
  optionally with multi-formation (`tn_keras.datasets.multi_formation`: a slot of ``f^2`` coarse
  images, started from its group's ``f^2`` members). Its levels save their progress in an
  export folder (`tn_keras.distill.level_progress`), so a time budget can pause them and
  resume continues them.

The two distribution methods do not use the trained model: ``model`` may be None for them.

The synthesised pixels are rounded to uint8 at every level: the next level is built from
exactly the images that are exported. How the defaults were chosen, with the measurements and
their commands, is in docs/distillation.md.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tn_keras.datasets import distilled_levels
from tn_keras.datasets import multi_formation
from tn_keras.distill import level_files
from tn_keras.distill.checks import check_plan
from tn_keras.distill.checks import validate_data
from tn_keras.distill.class_matching import match_classes
from tn_keras.distill.class_matching import pixel_statistics
from tn_keras.distill.config import DistillConfig
from tn_keras.distill.config import LEGACY_EXPORT_KEYWORDS
from tn_keras.distill.config import LevelExportConfig
from tn_keras.distill.config import METHODS
from tn_keras.distill.distribution_matching import match
from tn_keras.distill.embedding_matching import Synthesiser
from tn_keras.distill.embedding_matching import check_embedding_layer
from tn_keras.distill.groups import group_members
from tn_keras.distill.groups import group_start
from tn_keras.distill.groups import make_groups
from tn_keras.distill.groups import starting_subset
from tn_keras.distill.level_progress import LevelProgress
from tn_keras.distill.level_progress import progress_path
from tn_keras.distill.similarity import similarity as similarity_table
from tn_keras.utils import locks
from tn_keras.utils import options as options_lib
from tn_keras.utils.options import deprecated_aliases as _deprecated_aliases


@dataclasses.dataclass
class Level:
    """One distillation level: uint8 images ``x`` (N, H, W, C), int64 labels ``y`` (N,)."""

    level: int
    x: np.ndarray
    y: np.ndarray
    similarity: dict
    wall_time_seconds: float = 0.0
    path: Optional[str] = None
    reused: bool = False  # loaded from a verified export (resume) rather than recomputed

    @property
    def images_per_class(self) -> dict[int, int]:
        classes, counts = np.unique(self.y, return_counts=True)
        return {int(c): int(n) for c, n in zip(classes, counts)}


def to_uint8(x: np.ndarray) -> np.ndarray:
    """Pixels rounded to the nearest grey level and clipped to 0..255."""
    return np.clip(np.round(np.asarray(x, dtype=np.float64)), 0, 255).astype(np.uint8)


def configure(levels=None, settings: Optional[DistillConfig] = None,
              export: Optional[LevelExportConfig] = None, caller: str = "distill", **options):
    """``(settings, export)`` from the config objects and keyword overrides (``settings``
    resolved).

    Keyword arguments name `DistillConfig` or `LevelExportConfig` fields (or the old names
    ``export_dir`` and ``source``) and replace the objects' values
    (`tn_keras.utils.options.split_keywords`, `~tn_keras.utils.options.with_keywords`).
    """
    settings_kw, export_kw = options_lib.split_keywords(
        options, (DistillConfig, LevelExportConfig), caller, renamed=LEGACY_EXPORT_KEYWORDS)
    if levels is not None:
        settings_kw["levels"] = levels
    settings = options_lib.with_keywords(settings, DistillConfig, settings_kw, caller)
    export = options_lib.with_keywords(export, LevelExportConfig, export_kw, caller,
                                       renamed=LEGACY_EXPORT_KEYWORDS, warn_renamed=False)
    return settings.resolved(), export


def check_inputs(model, x, y, settings: DistillConfig):
    """Every check before any work; ``(x, y)`` as arrays."""
    if model is None:  # the distribution methods need no model; its checks are skipped
        if METHODS[settings.method].needs_model:
            raise ValueError(f"model is None: method {settings.method!r} matches the model's "
                             "embeddings; pass the trained model.")
        x, y = validate_data(x, y, int(np.max(y)) + 1 if len(y) else 1)
        check_plan(y, settings.levels, settings.group_size, settings.per_class)
        _check_formation(x, settings)
        return x, y
    if METHODS[settings.method].needs_model:
        check_embedding_layer(model, settings.embedding_layer)
    num_classes = int(model.outputs[0].shape[-1])
    x, y = validate_data(x, y, num_classes)
    expected = tuple(model.inputs[0].shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"Images have shape {x.shape[1:]} but the model takes {expected}.")
    check_plan(y, settings.levels, settings.group_size, settings.per_class)
    _check_formation(x, settings)
    return x, y


def _check_formation(x, settings: DistillConfig):
    if settings.formation:
        multi_formation.check_factor(settings.formation, np.shape(x)[1:])


def _start(previous: Level, group_of, count: int, settings: DistillConfig) -> np.ndarray:
    """Each new image's starting pixels: `group_start`, or with multi-formation ``f`` the
    group's first ``f^2`` members coarse-grained and tiled into one slot."""
    factor = settings.formation or multi_formation.NO_FORMATION
    if factor == multi_formation.NO_FORMATION:
        return group_start(previous.x, group_of, count, settings.init)
    members = group_members(group_of, count, factor * factor).reshape(-1)
    return multi_formation.encode(previous.x[members], factor)


class LevelMaker:
    """Makes level ``a`` from level ``a - 1`` with the configured method."""

    def __init__(self, model, settings: DistillConfig, data=None, export_dir=None,
                 deadline=None):
        self.model = model
        self.settings = settings
        self.data = data  # (x, y): the whole classes, for match_against="class"
        self.export_dir = export_dir  # "dm" saves each level's progress there
        self.deadline = deadline  # time.time() at which a "dm" level pauses (time_budget)
        self._synthesiser = None  # built on first use: level 0 needs no network
        self._statistics = None  # "dm": per-channel pixel statistics of the whole data

    def _target(self, previous: Level, level0: Level):
        """The real images level ``a`` is matched against."""
        against = self.settings.match_against
        if against == "class":
            return self.data
        target = level0 if against == "level0" else previous
        return target.x, target.y

    def __call__(self, a: int, previous: Level, level0: Level):
        s = self.settings
        group_of, labels = make_groups(previous.y, s.group_size, s.seed, a)
        if not METHODS[s.method].needs_model:  # the distribution methods
            start = _start(previous, group_of, len(labels), s)
            real_x, real_y = self._target(previous, level0)
            rng = np.random.default_rng([s.seed, a, 17])
            if s.method == "distribution":
                pixels = match(start, labels, real_x, real_y, s.steps, s.learning_rate, rng)
            else:
                if self._statistics is None:
                    self._statistics = pixel_statistics(self.data[0])
                pixels, _ = match_classes(start, labels, real_x, real_y, s, rng,
                                          self._statistics, self.progress(a))
        else:
            if self._synthesiser is None:
                self._synthesiser = Synthesiser(self.model, s.embedding_layer)
            pixels = self._synthesiser.synthesise(previous.x, group_of, labels, s)
        return to_uint8(pixels), labels


    def progress(self, a: int) -> Optional[LevelProgress]:
        """Level ``a``'s progress file (export folders only)."""
        if self.export_dir is None:
            return None
        return LevelProgress(progress_path(self.export_dir, a),
                             dict(algorithm=self.settings.as_dict(), level=a), self.deadline)


def _make_level(a, x, y, result, maker, settings, export, context) -> Level:
    t0 = time.perf_counter()
    if a == 0:
        lx, ly = starting_subset(x, y, settings.per_class, settings.seed)
        lx = to_uint8(lx)
    else:
        lx, ly = maker(a, result[-1], result[0])
    ly = np.asarray(ly, dtype=np.int64)
    level = Level(a, lx, ly, similarity_table(lx, ly),
                  wall_time_seconds=time.perf_counter() - t0)
    if export.directory is not None:
        level.path = level_files.write_level(export.directory, level, settings, context,
                                            overwrite=export.overwrite or export.resume)
        maker.progress(a).remove()  # the level is whole: its saved progress is spent
    return level


def _reused_level(a, result, settings, export, context) -> Optional[Level]:
    # A level is reused only while all earlier ones were: a recomputed level invalidates
    # every level built from it.
    if export.directory is None or not export.resume or not all(lv.reused for lv in result):
        return None
    found = level_files.reusable_level(export.directory, a, settings, context)
    if found is None:
        return None
    lx, ly = found
    return Level(a, lx, ly, similarity_table(lx, ly), reused=True,
                 path=distilled_levels.level_dir(export.directory, a))


def _report(progress, level: Level):
    if progress is not None:
        counts = sorted(set(level.images_per_class.values()))
        progress(f"level {level.level}: {len(level.y)} images ({counts} per class)"
                 f"{' reused' if level.reused else ''} in {level.wall_time_seconds:.1f} s")


def distill(model, x, y, levels: Optional[int] = None, *,
            settings: Optional[DistillConfig] = None, export: Optional[LevelExportConfig] = None,
            progress: Optional[Callable[[str], Any]] = None, **options) -> list[Level]:
    """Distil ``(x, y)`` level by level with the trained ``model``.

        >>> distill(model, x, y, settings=DistillConfig(levels=9, per_class=1000),
        ...         export=LevelExportConfig(directory="out"))

    Args:
        model: a trained Keras functional model taking raw 0..255 images and ending in a
            softmax, with a layer named ``settings.embedding_layer`` ("embedding" method).
        x, y: images ``(N, H, W, C)`` in 0..255 and integer labels ``(N,)``.
        levels: shorthand for ``settings.levels``.
        settings: the algorithm (`DistillConfig`; its defaults are the project's).
        export: where the levels are written (`LevelExportConfig`; default: nowhere).
        progress: called with a one-line message after each level.
        **options: any `DistillConfig` / `LevelExportConfig` field by name (and the older
            ``export_dir=`` and ``source=``), replacing the objects' values.

    Returns:
        ``[Level 0, Level 1, ..., Level levels]``; level 0 is the starting real subset.

    Raises:
        ValueError: bad labels/images or settings, a class smaller than a group or
            ``per_class``, more levels than the data allows, no embedding layer in ``model``
            (all checked before any work).
        FileExistsError: the export directory exists and neither resume nor overwrite.
    """
    settings, export = configure(levels, settings, export, **options)
    x, y = check_inputs(model, x, y, settings)
    context = dict(source=dict(export.dataset or {}),
                   model=dict({"name": getattr(model, "name", None),
                               "embedding_layer": settings.embedding_layer},
                              **(export.model_info or {})))
    if export.directory is None:
        return _all_levels(model, x, y, settings, export, context, progress)
    with locks.locked(export.directory, "tn_keras.distill"):  # one run per export folder
        level_files.prepare_export_dir(export.directory, resume=export.resume,
                                      overwrite=export.overwrite)
        result = _all_levels(model, x, y, settings, export, context, progress)
        level_files.write_summary(export.directory, result, settings, context)
    return result


def _all_levels(model, x, y, settings, export, context, progress) -> list[Level]:
    """Level 0 to ``settings.levels``, each reused from a verified export or made anew."""
    deadline = None if settings.time_budget is None else time.time() + settings.time_budget
    maker = LevelMaker(model, settings, data=(x, y), export_dir=export.directory,
                       deadline=deadline)
    result: list[Level] = []
    for a in range(settings.levels + 1):
        level = (_reused_level(a, result, settings, export, context)
                 or _make_level(a, x, y, result, maker, settings, export, context))
        result.append(level)
        _report(progress, level)
    return result


def similarity_by_level(levels: Sequence[Level]) -> dict[int, dict[int, dict]]:
    """``{level: {class: {"s", "d", "n"}}}`` for a distillation result."""
    return {lv.level: lv.similarity for lv in levels}


def is_monotone(values: Sequence[float], increasing: bool) -> bool:
    """True if the finite values never go the wrong way (NaN entries are skipped)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    pairs = zip(vals, vals[1:])
    return all(b >= a for a, b in pairs) if increasing else all(b <= a for a, b in pairs)


# The old names (renamed so that every config object ends in Config): importable from here as
# before, with a DeprecationWarning; each is the new class itself.
__getattr__ = _deprecated_aliases(__name__, {
    "DistillSettings": ("DistillConfig", DistillConfig),
    "ExportOptions": ("LevelExportConfig", LevelExportConfig),
})
