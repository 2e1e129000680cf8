"""Multi-level distillation: level ``a`` is synthesised from level ``a - 1`` by a trained network.

PROJECT algorithm (the paper's own is not published). Level 0 is a real subset ``D^(0)``. To
build ``D^(a)`` from ``D^(a-1)``, each class's ``n`` images are permuted at random (seeded by
``(seed, a)``, so a resumed run draws the same groups) and cut into ``g = n // k`` groups of
``k`` images; the ``n mod k`` left over join the last group, so every image is used. For every
group ``G`` one image ``p_G`` is synthesised by minimising

    L(p_G) = |f(p_G) - mean_{m in G} f(x_m)|^2 / (E dim(f) * mu2)  +  w_ce * CE(c_G, h(p_G))

where ``f`` is the network's embedding (the layer ``embedding_layer``, by default the zoo's
Flatten before the logits), ``mu2`` the mean square of the level's target embeddings (so the
first term is a *relative* squared error whose balance with the cross-entropy does not depend
on the network's embedding scale), ``h`` the network's softmax output and ``c_G`` the group's
class. ``p_G`` starts at the group's pixel mean and takes ``steps`` Adam steps on the raw
0..255 pixels (learning rate in grey levels per step), clipped to [0, 255] after each step.
All groups of a level are optimised together: the loss is a *sum* over groups and each pixel
only enters its own group's term, so the optimisation of one group is independent of the
others, and processing the groups in chunks (``chunk_size``, to bound memory) gives the same
result as one batch. The synthesised pixels are rounded to uint8: the next level is built from
exactly the images that are exported.

Each level thus divides the images per class by ``k`` (rounding down) until one is left; the
number of possible levels is fixed by the smallest class.

Choice of the defaults (measured, MNIST, mnist_taylornet at 98.8 %, 64 images per class down
to 1, reference classification on 2,000 test images, evaluator trained from scratch 200 steps,
one seed; script and numbers in the project's distillation report):

    variant                        ref. class-mean   scratch @8/class  @2/class  @1/class
    steps=100, lr=2 (first try)    98.2 %            64.1 %            56.2 %    56.4 %
    steps=40,  lr=0.25 (default)   98.1 %            70.3 %            61.8 %    58.1 %
    steps=0 (plain pixel mean)     97.95 / 97.35 %   72.8 %            64.6 %    66.7 %
    ce_weight 0 / 1 (steps=100)    98.2 %            63.7 / 65.0 %     ~56 %     ~57 %

Large pixel moves match the embedding no better for reference classification but make
images that train a *fresh* network worse (the optimisation adds network-specific, adversarial-
like detail), so the default keeps the synthesised image within ~10 grey levels of the group
mean: the network's correction is kept, at a quarter of the cost of the first try. The plain
pixel mean trains fresh networks better still but is a worse reference set and uses no
network at all (``steps=0`` gives it).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Optional, Sequence

import numpy as np

from tn_keras.distill.similarity import similarity as similarity_table

ADAM_BETA1 = 0.9
ADAM_BETA2 = 0.999
ADAM_EPSILON = 1e-8
PIXEL_MIN, PIXEL_MAX = 0.0, 255.0

#: ``method -> (steps, learning_rate, init, algorithm id)`` defaults. "embedding" is the project
#: default (this module's docstring); "distribution" is `tn_keras.distill.distribution_matching`:
#: 200 Adam steps of 2.55 grey levels (0.01 of the pixel range) per level.
METHODS = {
    "embedding": (40, 0.25, "mean", "embedding-matching/v1"),
    "distribution": (200, 2.55, "first", "distribution-matching/v1"),
}


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


@dataclasses.dataclass(frozen=True)
class DistillSettings:
    """The algorithm's settings, recorded in every level's manifest (and checked on resume)."""

    group_size: int = 2
    steps: int = 40
    learning_rate: float = 0.25
    ce_weight: float = 0.1
    embedding_layer: str = "embedding"
    per_class: Optional[int] = None
    seed: int = 0
    init: str = "mean"
    method: str = "embedding"
    match_against: str = "previous"
    algorithm: str = "embedding-matching/v1"

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- validation


def check_embedding_layer(model, embedding_layer: str):
    """The layer named ``embedding_layer`` of ``model``, or a ValueError listing the names."""
    names = [layer.name for layer in model.layers]
    if embedding_layer not in names:
        raise ValueError(
            f"Model {model.name!r} has no layer named {embedding_layer!r} to take embeddings "
            f"from. Pass embedding_layer= one of its layers: {names}."
        )
    return model.get_layer(embedding_layer)


def validate_data(x, y, num_classes: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """Check images and labels; return ``(x, y)`` as arrays (``y`` int64).

    Raises ValueError for: images not (N, H, W, C); labels not 1-D, of another length, not
    integer-valued, or outside ``[0, num_classes)``; NaN/inf pixels or pixels outside 0..255.
    """
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 4:
        raise ValueError(f"Images must be (N, H, W, C); got shape {x.shape}.")
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"Images must be numeric; got dtype {x.dtype}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"Labels must be a 1-D array of class indices; got shape {y.shape} "
                         "(one-hot labels: pass y.argmax(-1)).")
    if len(y) != len(x):
        raise ValueError(f"Labels do not match images: {len(x)} images but {len(y)} labels.")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise ValueError(f"Labels must be integer class indices; got dtype {y.dtype} with "
                             "non-integer values.")
    elif not (np.issubdtype(y.dtype, np.integer) or y.dtype == bool):
        raise ValueError(f"Labels must be integer class indices; got dtype {y.dtype}.")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise ValueError(f"Labels must be >= 0; found {int(y.min())}.")
    if num_classes is not None and len(y) and y.max() >= num_classes:
        raise ValueError(f"Label {int(y.max())} is out of range: the model has {num_classes} "
                         f"classes (0..{num_classes - 1}).")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            n_images = int(bad.reshape(len(x), -1).any(axis=1).sum())
            raise ValueError(f"{n_images} image(s) contain NaN or inf pixels.")
    if len(x) and (x.min() < PIXEL_MIN or x.max() > PIXEL_MAX):
        raise ValueError(f"Pixels must be raw values in [0, 255]; found range "
                         f"[{x.min()}, {x.max()}]. (Zoo models normalise inside.)")
    return x, y


def level_sizes(n: int, group_size: int, levels: int) -> list[int]:
    """Images per class at levels 0..levels, starting from ``n``: ``n_a = n_{a-1} // k``."""
    sizes = [n]
    for _ in range(levels):
        sizes.append(sizes[-1] // group_size)
    return sizes


def max_levels(n: int, group_size: int) -> int:
    """How many levels ``n`` images of a class allow: while at least one group can be formed."""
    count = 0
    while n >= group_size:
        n //= group_size
        count += 1
    return count


def check_plan(y: np.ndarray, levels: int, group_size: int, per_class: Optional[int]):
    """Raise ValueError unless every class can go through ``levels`` levels."""
    if int(group_size) != group_size or group_size < 2:
        raise ValueError(f"group_size must be an integer >= 2; got {group_size!r}.")
    if int(levels) != levels or levels < 0:
        raise ValueError(f"levels must be an integer >= 0; got {levels!r}.")
    if per_class is not None and (int(per_class) != per_class or per_class < 1):
        raise ValueError(f"per_class must be a positive integer or None; got {per_class!r}.")
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) == 0:
        raise ValueError("No images to distil.")
    for c, n in zip(classes, counts):
        if per_class is not None and n < per_class:
            raise ValueError(f"Class {int(c)} has {int(n)} images, fewer than "
                             f"per_class={per_class}.")
    start = {int(c): int(per_class if per_class is not None else n)
             for c, n in zip(classes, counts)}
    for c, n in start.items():
        if levels >= 1 and n < group_size:
            raise ValueError(f"Class {c} has {n} image(s), fewer than a group "
                             f"(group_size={group_size}).")
        allowed = max_levels(n, group_size)
        if levels > allowed:
            sizes = " -> ".join(str(s) for s in level_sizes(n, group_size, allowed))
            raise ValueError(
                f"levels={levels} is more than the data allows: class {c} starts with {n} "
                f"images, which allow at most {allowed} level(s) with group_size={group_size} "
                f"({sizes})."
            )
    return start


# --------------------------------------------------------------------------- the algorithm


def starting_subset(x: np.ndarray, y: np.ndarray, per_class: Optional[int], seed: int):
    """Level 0: ``per_class`` images of every class drawn without replacement (seed), or all.

    Returned sorted by class, then by original index, so level 0 is a stable function of
    ``(x, y, per_class, seed)``.
    """
    rng = np.random.default_rng([seed, 0])
    chosen = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if per_class is not None:
            idx = np.sort(rng.choice(idx, size=per_class, replace=False))
        chosen.append(idx)
    idx = np.concatenate(chosen)
    return x[idx], y[idx]


def make_groups(y: np.ndarray, group_size: int, seed: int, level: int):
    """Random groups of ``group_size`` within each class, for building ``level``.

    Returns ``(group_of, group_labels)``: ``group_of[j]`` is the group of image ``j`` and
    ``group_labels[g]`` the class of group ``g``; groups are numbered class by class.
    """
    rng = np.random.default_rng([seed, level])
    group_of = np.empty(len(y), dtype=np.int64)
    labels = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_groups = len(idx) // group_size
        # The n mod k left over join the last group rather than being dropped.
        local = np.minimum(np.arange(len(idx)) // group_size, n_groups - 1)
        group_of[idx] = len(labels) + local
        labels.extend([int(c)] * n_groups)
    return group_of, np.asarray(labels, dtype=np.int64)


def first_members(group_of: np.ndarray, count: int) -> np.ndarray:
    """The index of the first image of each of the ``count`` groups (a real image, sharper than
    the group's mean)."""
    first = np.full(count, -1)
    for j in range(len(group_of) - 1, -1, -1):
        first[group_of[j]] = j
    return first


def _segment_mean(values: np.ndarray, segments: np.ndarray, count: int) -> np.ndarray:
    out = np.zeros((count,) + values.shape[1:], dtype=np.float64)
    np.add.at(out, segments, values)
    sizes = np.bincount(segments, minlength=count).reshape((count,) + (1,) * (values.ndim - 1))
    return (out / sizes).astype(np.float32)


class Synthesiser:
    """The trained network's embedding and softmax, and the compiled pixel optimisation."""

    def __init__(self, model, embedding_layer: str = "embedding"):
        import keras
        import tensorflow as tf

        layer = check_embedding_layer(model, embedding_layer)
        self.network = keras.Model(model.inputs, [layer.output, model.outputs[0]],
                                   name=f"{model.name}_embedding_and_output")
        self.num_classes = int(model.outputs[0].shape[-1])
        self.image_shape = tuple(model.inputs[0].shape[1:])

        network = self.network

        def optimise(p0, target, labels, steps, learning_rate, ce_weight, target_scale):
            # Adam written out on the pixel tensor: one graph for all steps (tf.while_loop),
            # no optimizer state to rebuild per level or chunk, and easy to read against the
            # docstring's loss.
            def body(t, p, m, v):
                with tf.GradientTape() as tape:
                    tape.watch(p)
                    emb, probs = network(p, training=False)
                    emb = tf.reshape(tf.cast(emb, tf.float32), [tf.shape(p)[0], -1])
                    mse = tf.reduce_mean(tf.square(emb - target), axis=-1) / target_scale
                    ce = keras.losses.sparse_categorical_crossentropy(
                        labels, tf.cast(probs, tf.float32))
                    loss = tf.reduce_sum(mse + ce_weight * ce)
                g = tape.gradient(loss, p)
                m = ADAM_BETA1 * m + (1.0 - ADAM_BETA1) * g
                v = ADAM_BETA2 * v + (1.0 - ADAM_BETA2) * tf.square(g)
                step = tf.cast(t + 1, tf.float32)
                m_hat = m / (1.0 - tf.pow(ADAM_BETA1, step))
                v_hat = v / (1.0 - tf.pow(ADAM_BETA2, step))
                p = p - learning_rate * m_hat / (tf.sqrt(v_hat) + ADAM_EPSILON)
                return t + 1, tf.clip_by_value(p, PIXEL_MIN, PIXEL_MAX), m, v

            zeros = tf.zeros_like(p0)
            _, p, _, _ = tf.while_loop(lambda t, *_: t < steps, body,
                                       (tf.constant(0), p0, zeros, zeros))
            return p

        self._optimise = tf.function(optimise, reduce_retracing=True)
        self._embed = tf.function(lambda x: network(x, training=False)[0],
                                  reduce_retracing=True)

    def embed(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Embeddings of raw images, flattened, float32."""
        import tensorflow as tf

        out = []
        for start in range(0, len(x), batch_size):
            batch = tf.constant(np.asarray(x[start:start + batch_size], dtype=np.float32))
            e = self._embed(batch).numpy()
            out.append(e.reshape(len(e), -1))
        return np.concatenate(out).astype(np.float32)

    def synthesise(self, x, group_of, group_labels, steps, learning_rate, ce_weight,
                   init="mean", chunk_size=1024) -> np.ndarray:
        """One optimised float image per group (see the module docstring)."""
        import tensorflow as tf

        count = len(group_labels)
        x = np.asarray(x, dtype=np.float32)
        targets = _segment_mean(self.embed(x), group_of, count)
        if init == "mean":
            start = _segment_mean(x, group_of, count)
        elif init == "first":
            start = x[first_members(group_of, count)]
        else:
            raise ValueError(f"init must be 'mean' or 'first'; got {init!r}.")
        # Mean square of the targets: makes the embedding term a relative error.
        scale = float(np.mean(np.square(targets))) or 1.0
        out = np.empty_like(start)
        for s in range(0, count, chunk_size):
            sl = slice(s, s + chunk_size)
            p = self._optimise(tf.constant(start[sl]), tf.constant(targets[sl]),
                               tf.constant(group_labels[sl]), tf.constant(int(steps)),
                               tf.constant(float(learning_rate)), tf.constant(float(ce_weight)),
                               tf.constant(scale))
            out[sl] = p.numpy()
        return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.asarray(x, dtype=np.float64)), 0, 255).astype(np.uint8)


def distill(
    model,
    x,
    y,
    levels: int,
    group_size: int = 2,
    steps: Optional[int] = None,
    learning_rate: Optional[float] = None,
    ce_weight: float = 0.1,
    embedding_layer: str = "embedding",
    per_class: Optional[int] = None,
    seed: int = 0,
    init: Optional[str] = None,
    method: str = "embedding",
    match_against: str = "previous",
    export_dir: Optional[str] = None,
    resume: bool = False,
    overwrite: bool = False,
    chunk_size: int = 1024,
    source: Optional[dict] = None,
    model_info: Optional[dict] = None,
    progress: Optional[Callable[[str], Any]] = None,
) -> list[Level]:
    """Distil ``(x, y)`` level by level with the trained ``model``.

    Args:
        model: a trained Keras functional model taking raw 0..255 images and ending in a
            softmax, with a layer named ``embedding_layer``.
        x, y: images ``(N, H, W, C)`` in 0..255 and integer labels ``(N,)``.
        levels: number of distilled levels after level 0; level ``a`` has
            ``n_{a-1} // group_size`` images per class.
        group_size: images merged into one per step (``k``; 2 halves each level).
        steps, learning_rate: Adam steps per level and step size in grey levels. Default
            per ``method`` (`METHODS`): for "embedding" 40 steps of 0.25 (each pixel moves at
            most ~10 grey levels from the group mean), chosen by measurement; see "Choice of
            the defaults" above.
        ce_weight: weight of the cross-entropy term against the relative embedding MSE
            ("embedding" method).
        embedding_layer: the layer whose output is matched.
        per_class: size per class of the starting real subset (drawn with ``seed``); None
            takes every image.
        seed: seeds the starting subset and every level's grouping.
        init: start of the optimisation: ``"mean"`` (group mean) or ``"first"`` (one real
            member of the group). Default per ``method``: "mean" for "embedding", "first"
            for "distribution".
        method: ``"embedding"`` (default): each group's image matches the group's mean
            embedding under ``model`` (this module). ``"distribution"``: a class's images
            together match the mean embedding of the class's previous level under random
            ConvNets (`tn_keras.distill.distribution_matching`): better training sets for
            fresh networks, but the variety within a class stays (Eq. S3's s does not rise),
            and ``model`` is not used.
        match_against: "distribution" method: the images level ``a`` matches, the class's
            images at level ``a - 1`` (``"previous"``, the cascade) or at level 0
            (``"level0"``, the real subset: each level is then a smaller summary of the real
            data, started from the level before).
        export_dir: if given, every level is written to ``export_dir/level_<a>/`` as soon as
            it is made (see `tn_keras.distill.export`).
        resume: reuse levels already in ``export_dir`` whose files verify and whose settings
            match; compute the rest.
        overwrite: replace an existing ``export_dir``'s levels.
        chunk_size: groups per compiled optimisation call (memory bound; same result).
        source: recorded in the manifests, e.g. ``{"dataset": "mnist", "split": "train"}``.
        model_info: recorded in the manifests, e.g. ``{"name": ..., "sha256": ...}``.
        progress: called with a one-line message after each level.

    Returns:
        ``[Level 0, Level 1, ..., Level levels]``; level 0 is the starting real subset.

    Raises:
        ValueError: bad labels/images, a class smaller than a group or ``per_class``, more
            levels than the data allows, no ``embedding_layer`` in ``model`` (all checked
            before any work).
        FileExistsError: ``export_dir`` exists and neither ``resume`` nor ``overwrite``.
    """
    from tn_keras.distill import export as export_mod

    # ---- every check before any work
    if resume and overwrite:
        raise ValueError("Pass at most one of resume=True and overwrite=True.")
    check_embedding_layer(model, embedding_layer)
    num_classes = int(model.outputs[0].shape[-1])
    x, y = validate_data(x, y, num_classes)
    expected = tuple(model.inputs[0].shape[1:])
    if tuple(x.shape[1:]) != expected:
        raise ValueError(f"Images have shape {x.shape[1:]} but the model takes {expected}.")
    check_plan(y, levels, group_size, per_class)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got "
                         f"{method!r}.")
    default_steps, default_rate, default_init, algorithm_id = METHODS[method]
    steps = default_steps if steps is None else steps
    learning_rate = default_rate if learning_rate is None else learning_rate
    init = default_init if init is None else init
    if steps < 0 or learning_rate <= 0 or ce_weight < 0:
        raise ValueError("steps must be >= 0, learning_rate > 0 and ce_weight >= 0.")
    if init not in ("mean", "first"):
        raise ValueError(f"init must be 'mean' or 'first'; got {init!r}.")
    if match_against not in ("previous", "level0"):
        raise ValueError(f"match_against must be 'previous' or 'level0'; got "
                         f"{match_against!r}.")
    settings = DistillSettings(group_size=int(group_size), steps=int(steps),
                               learning_rate=float(learning_rate), ce_weight=float(ce_weight),
                               embedding_layer=embedding_layer, per_class=per_class,
                               seed=int(seed), init=init, method=method,
                               match_against=match_against, algorithm=algorithm_id)
    context = dict(source=dict(source or {}),
                   model=dict({"name": model.name, "embedding_layer": embedding_layer},
                              **(model_info or {})))
    if export_dir is not None:
        export_mod.prepare_export_dir(export_dir, resume=resume, overwrite=overwrite)

    synth = None
    result: list[Level] = []
    current_x = current_y = None
    for a in range(levels + 1):
        t0 = time.perf_counter()
        reused = None
        # A level is reused only while all earlier ones were: a recomputed level invalidates
        # every level built from it.
        if export_dir is not None and resume and all(lv.reused for lv in result):
            reused = export_mod.reusable_level(export_dir, a, settings, context)
        if reused is not None:
            lx, ly = reused
            level = Level(a, lx, ly, similarity_table(lx, ly), reused=True,
                          path=export_mod.level_dir(export_dir, a))
        else:
            if a == 0:
                lx, ly = starting_subset(x, y, per_class, seed)
                lx = _to_uint8(lx)
            elif method == "distribution":
                if synth is None:
                    # Imported here: that module takes its Adam constants from this one.
                    from tn_keras.distill.distribution_matching import DistributionMatcher

                    synth = DistributionMatcher(x.shape[1:])
                group_of, lx_labels = make_groups(current_y, group_size, seed, a)
                count = len(lx_labels)
                start = (current_x[first_members(group_of, count)].astype(np.float32)
                         if init == "first" else
                         _segment_mean(current_x.astype(np.float32), group_of, count))
                target_x, target_y = ((result[0].x, result[0].y) if match_against == "level0"
                                      else (current_x, current_y))
                p = synth.match(start, lx_labels, target_x, target_y, steps, learning_rate,
                                np.random.default_rng([seed, a, 17]))
                lx, ly = _to_uint8(p), lx_labels
            else:
                if synth is None:
                    synth = Synthesiser(model, embedding_layer)
                group_of, lx_labels = make_groups(current_y, group_size, seed, a)
                p = synth.synthesise(current_x, group_of, lx_labels, steps, learning_rate,
                                     ce_weight, init=init, chunk_size=chunk_size)
                lx, ly = _to_uint8(p), lx_labels
            level = Level(a, lx, ly.astype(np.int64), similarity_table(lx, ly),
                          wall_time_seconds=time.perf_counter() - t0)
            if export_dir is not None:
                level.path = export_mod.write_level(export_dir, level, settings, context,
                                                    overwrite=overwrite or resume)
        result.append(level)
        current_x, current_y = level.x, level.y
        if progress is not None:
            counts = sorted(set(level.images_per_class.values()))
            progress(f"level {a}: {len(level.y)} images ({counts} per class)"
                     f"{' reused' if level.reused else ''} in {level.wall_time_seconds:.1f} s")
    if export_dir is not None:
        export_mod.write_summary(export_dir, result, settings, context)
    return result


def similarity_by_level(levels: Sequence[Level]) -> dict[int, dict[int, dict]]:
    """``{level: {class: {"s", "d", "n"}}}`` for a distillation result."""
    return {lv.level: lv.similarity for lv in levels}


def is_monotone(values: Sequence[float], increasing: bool) -> bool:
    """True if the finite values never go the wrong way (NaN entries are skipped)."""
    vals = [v for v in values if v is not None and not math.isnan(v)]
    pairs = zip(vals, vals[1:])
    return all(b >= a for a, b in pairs) if increasing else all(b <= a for a, b in pairs)
