"""Export of distilled levels: one atomically written, self-verifying folder per level.

    export_dir/
      level_<a>/
        images.npz          x: uint8 (N, H, W, C) raw pixels (rounded), y: int64 (N,): the
                            level's data, readable with NumPy alone on any backend
        class_<c>.png       contact sheet of class c
        manifest.json       written last; lists the sha256 of every other file
      summary.json          similarity per level and class, settings (rewritten each run)
      similarity.png        s and d against level, one line per class

Each ``level_<a>`` is built in a temporary folder beside it and renamed into place
(`tn_keras.utils.files.atomic_directory`), so an interrupted run leaves only complete levels.
A level is *complete* when its manifest exists and every file it lists has the recorded sha256.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from typing import Optional

import numpy as np

from tn_keras import artifacts
from tn_keras.distill import formation
from tn_keras.utils.faults import fault_point
from tn_keras.utils.files import atomic_directory
from tn_keras.utils.files import atomic_path
from tn_keras.utils.files import atomic_write_json

MANIFEST = artifacts.MANIFEST_NAME
LEVEL_FILE = "images.npz"  # the level's main file: its images and labels
PREPROCESSING = ("raw pixels 0..255 stored as uint8; feed them as float32 without scaling: "
                 "the model carries its own normalisation (tn_keras zoo convention)")
MAX_SHEET_IMAGES = 400  # larger classes: the first 400 on the contact sheet


def level_dir(export_dir: str, level: int) -> str:
    return os.path.join(os.fspath(export_dir), f"level_{int(level)}")


def _json_safe(value):
    # NaN (s, d of a one-image class) is not valid JSON: store null.
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


# What a distillation writes into its export folder (anything else there is the user's);
# ``epoch_<n>/`` are the exports `MultiLevelDistillation` makes during training, kept.
# ``.progress-level_<a>.npz`` is a level's saved progress (`tn_keras.distill.level_progress`);
# ``.tmp-*`` the temporaries of the atomic writes (a killed run's are removed, not refused).
EXPORT_ENTRY = re.compile(r"^(level_\d+|summary\.json|similarity\.(png|svg)|"
                          r"\.tmp-.*|\.trash-.*|epoch_\d+|\.progress-level_\d+\.npz)$")


def prepare_export_dir(export_dir: str, resume: bool, overwrite: bool):
    """Apply the rules of an export folder before any work (the caller holds its lock).

    An existing ``export_dir`` is refused unless resuming or overwriting. Temporary level
    folders that a killed run left are removed. ``overwrite`` removes the whole previous result
    first, so no level of an older run survives (a shorter run must not leave
    the old deeper levels behind for `load_level` to accept); a folder holding anything a
    distillation does not write is refused instead of deleted.
    """
    if os.path.lexists(export_dir) and not os.path.isdir(export_dir):
        raise FileExistsError(f"{export_dir} exists and is not a folder.")
    if os.path.isdir(export_dir):
        if resume and overwrite:
            raise ValueError("resume=True and overwrite=True contradict each other (CLI: "
                             "--resume keeps the complete levels, --overwrite deletes them).")
        if not (resume or overwrite):
            raise FileExistsError(
                f"{export_dir} already exists; pass resume=True (CLI: --resume) to keep its "
                "complete levels or overwrite=True (--overwrite) to replace them."
            )
        _remove_temporaries(export_dir)
        if overwrite:
            _remove_previous(export_dir)
    os.makedirs(export_dir, exist_ok=True)


def _remove_temporaries(export_dir: str):
    for entry in os.listdir(export_dir):
        if entry.startswith((".tmp-", ".trash-")):  # every writer's temporaries are ".tmp-*"
            path = os.path.join(export_dir, entry)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)


def _remove_previous(export_dir: str):
    entries = os.listdir(export_dir)
    foreign = sorted(e for e in entries if not EXPORT_ENTRY.match(e))
    if foreign:
        raise FileExistsError(
            f"overwrite=True would delete {export_dir}, which holds files a distillation does "
            f"not write ({', '.join(foreign[:5])}); choose another folder or remove them.")
    # Into a trash folder beside it, each entry by one rename: the summary first (the folder no
    # longer claims a result), then the levels deepest first, so that a kill part-way leaves a
    # prefix of levels that `resume` checks against its settings like any other.
    levels = sorted((e for e in entries if e.startswith("level_")),
                    key=lambda e: -int(e.split("_")[1]))
    others = [e for e in entries if not e.startswith(("level_", "epoch_"))]
    trash = tempfile.mkdtemp(prefix=".trash-", dir=export_dir)
    for entry in others + levels:
        os.replace(os.path.join(export_dir, entry), os.path.join(trash, entry))
    shutil.rmtree(trash, ignore_errors=True)


def contact_sheet(images: np.ndarray, path: str, max_images: int = MAX_SHEET_IMAGES,
                  scale: Optional[int] = None):
    """A square grid PNG of uint8 images (N, H, W, C), 1 px gaps, upscaled when tiny."""
    from PIL import Image

    images = np.asarray(images)[:max_images]
    n, h, w, c = images.shape
    cols = max(1, int(math.ceil(math.sqrt(n))))
    rows = int(math.ceil(n / cols))
    sheet = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 128, dtype=np.uint8)
    for i, img in enumerate(images):
        r, q = divmod(i, cols)
        sheet[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + q * (w + 1):1 + q * (w + 1) + w] = img
    pil = Image.fromarray(sheet[..., 0] if c == 1 else sheet)
    if scale is None:
        scale = max(1, 256 // max(sheet.shape[:2]))
    if scale > 1:
        pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    with atomic_path(path) as tmp:
        pil.save(tmp, format="PNG")


def write_level(export_dir: str, level, settings, context: dict, overwrite: bool = False) -> str:
    """Write one level's folder atomically; return its path."""
    path = level_dir(export_dir, level.level)
    with atomic_directory(path, overwrite=overwrite) as tmp:
        write_images(tmp, level.x, level.y)
        for c in sorted(level.images_per_class):
            contact_sheet(level.x[level.y == c], os.path.join(tmp, f"class_{c}.png"))
        manifest = dict(
            level=int(level.level),
            num_images=int(len(level.y)),
            image_shape=list(level.x.shape[1:]),
            images_per_class={str(c): n for c, n in level.images_per_class.items()},
            source=context.get("source", {}),
            model=context.get("model", {}),
            preprocessing=PREPROCESSING,
            algorithm=settings.as_dict(),
            seed=settings.seed,
            similarity=_json_safe(level.similarity),
            wall_time_seconds=round(float(level.wall_time_seconds), 3),
        )
        write_manifest(tmp, manifest, settings.seed)
        fault_point("level-write")  # tests: a kill with the level complete but not renamed
    return path


def write_manifest(folder: str, record: dict, seed) -> None:
    """The level's `tn_keras.artifacts` manifest (kind ``distilled_level``), written last."""
    _, files = artifacts.sha256_tree(folder)
    model = record.get("model") or {}
    manifest = artifacts.Manifest(
        kind="distilled_level", name=f"level_{record['level']}", file=LEVEL_FILE,
        sha256=files[LEVEL_FILE],
        size_bytes=os.path.getsize(os.path.join(folder, LEVEL_FILE)), files=files,
        provenance=artifacts.Provenance(model=model.get("name"),
                                        weights_sha256=model.get("sha256"),
                                        data=record.get("source") or None, seed=seed),
        versions=artifacts.software_versions(), created=artifacts.now(), record=record)
    artifacts.write(os.path.join(folder, MANIFEST), manifest)


def write_images(folder: str, x: np.ndarray, y: np.ndarray):
    """The level's data: ``images.npz`` (uint8 images, int64 labels), NumPy only."""
    np.savez_compressed(os.path.join(folder, LEVEL_FILE), x=np.asarray(x, np.uint8),
                        y=np.asarray(y, np.int64))


def read_images(folder: str) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` from a level folder's ``images.npz``: the stored images (slots, for a level
    made with multi-formation).

    Raises ValueError naming the file when its images are not raw pixels (`check_pixels`): a
    sha256 only says the file is the one the manifest records, not that it is sound, and a
    NaN image would calibrate an int8 export to a scale of 0.0 without a word.
    """
    path = os.path.join(folder, LEVEL_FILE)
    with np.load(path) as data:
        x, y = data["x"], data["y"].astype(np.int64)
    check_pixels(x, path)
    return x, y


def check_pixels(x: np.ndarray, path: str) -> None:
    """Refuse images in ``path`` that are not finite raw pixels in 0..255 (distill writes
    uint8), naming the file, how many images are bad and what is valid."""
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"{path}: images must be raw pixels 0..255 (uint8, as distill writes "
                         f"them); they are of dtype {x.dtype}.")
    if x.dtype == np.uint8 or x.size == 0:
        return  # what distill writes: nothing to check
    flat = x.reshape(len(x), -1) if x.ndim else x.reshape(1, -1)
    bad = ~np.isfinite(flat) | (flat < 0) | (flat > 255)
    if bad.any():
        n = int(bad.any(axis=1).sum())
        raise ValueError(f"{path}: {n} of {len(flat)} image(s) hold NaN, Inf or pixels outside "
                         "0..255; a level's images must be finite raw pixels 0..255 (uint8, as "
                         "distill writes them).")


def level_formation(folder: str) -> int:
    """The multi-formation factor a level folder's manifest records (1 when none)."""
    manifest = read_manifest(folder) or {}
    return int((manifest.get("algorithm") or {}).get("formation") or formation.NO_FORMATION)


def read_training_images(folder: str, decode: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """`read_images`, with a multi-formation level's slots decoded into their ``f^2`` tiles
    each (uint8, full size, `tn_keras.distill.formation`) unless ``decode=False``."""
    x, y = read_images(folder)
    factor = level_formation(folder) if decode else formation.NO_FORMATION
    return formation.decode_to_uint8(x, y, factor) if factor > 1 else (x, y)


def as_tf_dataset(x: np.ndarray, y: np.ndarray):
    """An unbatched ``tf.data.Dataset`` of ``(image uint8, label int64)`` elements."""
    try:
        import tensorflow as tf
    except ImportError as error:
        raise ImportError("load_level(as_dataset=True) returns a tf.data.Dataset and needs "
                          "TensorFlow; without it, load the arrays (as_dataset=False).") \
            from error
    return tf.data.Dataset.from_tensor_slices((x, y))


def read_manifest(path: str) -> Optional[dict]:
    """A level folder's manifest as a dict; None when it has none or it does not read."""
    try:
        return artifacts.read(os.path.join(path, MANIFEST), kind="distilled_level").to_dict()
    except (FileNotFoundError, artifacts.ManifestError):
        return None


def verify_level(path: str) -> Optional[dict]:
    """The manifest of a complete level folder whose files all verify, else None."""
    try:
        manifest = artifacts.verify(os.path.join(path, MANIFEST))
    except (FileNotFoundError, artifacts.ManifestError):
        return None
    return manifest.to_dict() if manifest.kind == "distilled_level" else None


def reusable_level(export_dir: str, level: int, settings, context: dict):
    """``(x, y)`` of a level that resume may reuse, None to recompute it.

    A level made with other settings, data source or model is an error rather than silently
    mixed into this run.
    """
    path = level_dir(export_dir, level)
    manifest = verify_level(path)
    if manifest is None:
        return None
    mine = dict(algorithm=settings.as_dict(), source=context.get("source", {}),
                model=context.get("model", {}))
    theirs = {k: manifest.get(k) for k in mine}
    if json.loads(json.dumps(mine)) != theirs:
        raise ValueError(
            f"{path} was made with different settings, data or model "
            f"({theirs}) than this run ({mine}); use overwrite=True (--overwrite) or another "
            "export folder."
        )
    return read_images(path)


def load_level(export_dir: str, level: int, as_dataset: bool = False, verify: bool = True,
               decode: bool = True):
    """A level's images and labels.

    Args:
        export_dir: the folder passed to ``distill(export_dir=...)``.
        level: the level number.
        as_dataset: return a ``tf.data.Dataset`` of ``(image uint8, label int64)`` elements
            (unbatched) instead of arrays (needs TensorFlow; the arrays do not).
        verify: check every file's sha256 against the manifest first.
        decode: a level made with multi-formation (``formation=f``) stores slots of ``f^2``
            coarse images; return them decoded, ``f^2`` full-size images a slot (default), or
            the stored slots (False).

    Returns:
        ``(x, y)`` numpy arrays (uint8 images, raw 0..255; int64 labels), or a tf.data.Dataset.
    """
    path = level_dir(export_dir, level)
    if not os.path.isdir(path):
        present = sorted(d for d in os.listdir(export_dir) if d.startswith("level_")) \
            if os.path.isdir(export_dir) else []
        raise FileNotFoundError(f"No level {level} in {export_dir} (present: {present}).")
    if verify and verify_level(path) is None:
        raise ValueError(f"{path} is incomplete or its files do not match their sha256 in "
                         f"{MANIFEST}.")
    x, y = read_training_images(path, decode)
    return as_tf_dataset(x, y) if as_dataset else (x, y)


def write_summary(export_dir: str, levels, settings, context: dict):
    """``summary.json`` (similarity table per level) and ``similarity.png``."""
    from tn_keras.distill.plot import plot_similarity

    table = {str(lv.level): lv.similarity for lv in levels}
    atomic_write_json(os.path.join(export_dir, "summary.json"), _json_safe(dict(
        levels=[lv.level for lv in levels],
        images_per_class={str(lv.level): lv.images_per_class for lv in levels},
        similarity=table,
        algorithm=settings.as_dict(),
        **context,
    )))
    plot_similarity({lv.level: lv.similarity for lv in levels},
                    os.path.join(export_dir, "similarity.png"))
