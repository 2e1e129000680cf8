"""Writing a distillation's export folder: one atomically written, self-verifying folder per level.

    export_dir/
      level_<a>/            images.npz, class_<c>.png, manifest.json (written last): the layout
                            `tn_keras.datasets.distilled_levels` documents and reads back
      summary.json          similarity per level and class, settings (rewritten each run)
      similarity.png        s and d against level, one line per class

Each ``level_<a>`` is built in a temporary folder beside it and renamed into place
(`tn_keras.utils.files.atomic_directory`), so an interrupted run leaves only complete levels.
This module also holds the rules of the export folder as a whole (`prepare_export_dir`) and
which levels a resumed run may reuse (`reusable_level`). Reading a level lives one package
down, in `tn_keras.datasets.distilled_levels`, so that `tn_keras.export` can read one too
without depending on `tn_keras.distill`.
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
from tn_keras.datasets.distilled_levels import LEVEL_FILE
from tn_keras.datasets.distilled_levels import MANIFEST
from tn_keras.datasets.distilled_levels import level_dir
from tn_keras.datasets.distilled_levels import read_images
from tn_keras.datasets.distilled_levels import verify_level
from tn_keras.utils.faults import fault_point
from tn_keras.utils.files import atomic_directory
from tn_keras.utils.files import atomic_path
from tn_keras.utils.files import atomic_write_json

PREPROCESSING = ("raw pixels 0..255 stored as uint8; feed them as float32 without scaling: "
                 "the model carries its own normalisation (tn_keras zoo convention)")
MAX_SHEET_IMAGES = 400  # larger classes: the first 400 on the contact sheet


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
