"""Shipped distilled datasets: list them, read their cards' data, load them verified.

    >>> from tn_keras import distill
    >>> distill.list_datasets("cifar10*")
    ['cifar10.dm.ipc1', 'cifar10.dm.ipc10']
    >>> x, y = distill.load_dataset("cifar10.dm.ipc10")          # level 6: 10 images per class
    >>> x4, y4 = distill.load_dataset("cifar10.dm.ipc10", level=4)  # 40 per class
    >>> distill.dataset_info("cifar10.dm.ipc10").evaluation       # measured accuracies

A *set* is named ``<dataset>.<method>.ipc<N>``: N images per class at its final level. Sets are
made by one distillation *cascade* (level a halves level a-1), and one cascade gives several
sets (640 per class: ipc10 at level 6, ipc1 at level 9). On disk, one folder per cascade
(layout in `tn_keras.distill.shipping`):

    saved_datasets/<dataset>.<method>.from<P>/
        level_<a>/images.npz, level_<a>/manifest.json   as `tn_keras.distill.level_files` writes
        manifest.json        kind "distilled_dataset": sha256 of every file, provenance, and
                             ``sets``: {name: final level, levels, measured accuracies}
        DATACARD.md          generated from manifest.json (`tn_keras.distill.datacard`)

Metadata is data: the catalogue is what the manifests say; nothing here lists names in code.
Every file's sha256 is checked against the manifest before any pixel is read. NumPy only: no
TensorFlow unless ``as_dataset=True`` asks for a ``tf.data.Dataset``.

Where a level's images are read (`image_candidates`), first found first: the package (beside
the cascade's manifest), then ``$TN_KERAS_DATA/distilled/<cascade>/``, then
``<data_dir>/distilled/<cascade>/``. The shipped sets carry their images, so they load on a
fresh install with no data folder; the data folders serve cascades whose folder holds only
manifests (a ``root=`` of them, or a package whose images were stripped).
"""
from __future__ import annotations

import dataclasses
import fnmatch
import importlib.resources
import os
import re
import shlex
from typing import Optional

from tn_keras import artifacts
from tn_keras.datasets import distilled_levels
from tn_keras.datasets import multi_formation
from tn_keras.distill.datacard import CARD_NAME

KIND = "distilled_dataset"
#: A level's pixels, ``level_<a>/images.npz``. The package ships them beside their manifests
#: (they are the project's products, like checkpoints); where they are absent they are looked
#: for in the data folders (`image_candidates`), and checked against the shipped sha256 wherever
#: they are found.
IMAGES = distilled_levels.LEVEL_FILE
DATA_SUBFOLDER = "distilled"


@dataclasses.dataclass(frozen=True)
class DistilledSetInfo:
    """What a shipped set's card says, without its pixels (timm ``PretrainedCfg`` style).

    Attributes:
        name: ``<dataset>.<method>.ipc<N>``.
        dataset: the real dataset it was distilled from (``tn_keras.datasets`` name).
        method: short method name (`tn_keras.distill.config.Method.short`; ``"dm"``:
            ``method="distribution"``).
        images_per_class: N, at ``final_level``.
        final_level: the level `load_dataset` returns by default.
        levels: ``{level: {"images_per_class", "num_images"}}`` of every level it ships, the
            final one included (levels of the cascade above the first shipped one are not
            shipped; level 0 is real images and never is).
        image_shape, num_classes: of every level's images (uint8, raw 0..255).
        evaluation: the measured accuracies (``{}`` when not measured), with their protocol.
        settings: the distillation settings every level was made with (`DistillConfig`).
        provenance: source model, command, data and seed of the cascade.
        folder: the cascade folder; ``card``: its ``DATACARD.md``.
    """

    name: str
    dataset: str
    method: str
    images_per_class: int
    final_level: int
    levels: dict
    image_shape: tuple
    num_classes: int
    evaluation: dict
    settings: dict
    provenance: dict
    folder: str
    card: str

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def formation(self) -> int:
        """The multi-formation factor ``f`` of its stored images (1: one image a slot);
        `load_dataset` returns ``f^2`` decoded images a slot."""
        return int(self.settings.get("formation") or multi_formation.NO_FORMATION)


def default_root() -> str:
    """The package's shipped sets (``tn_keras.saved_datasets``, the repository's
    ``saved_datasets/``)."""
    try:
        return str(importlib.resources.files("tn_keras.saved_datasets"))
    except ModuleNotFoundError:
        # An editable install made before this package existed maps only the older packages:
        # fall back to the checkout's folder beside tn_keras/.
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return os.path.join(here, "saved_datasets")


def cascades(root: Optional[str] = None) -> dict:
    """``{folder name: Manifest}`` of every cascade folder under ``root`` (default: shipped)."""
    root = os.fspath(root or default_root())
    found = {}
    for entry in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        path = os.path.join(root, entry, artifacts.MANIFEST_NAME)
        if os.path.isfile(path):
            found[entry] = artifacts.read(path, kind=KIND)
    return found


def _sets(root) -> dict:
    """``{set name: (cascade folder, manifest)}``."""
    root = os.fspath(root or default_root())
    out = {}
    for entry, manifest in cascades(root).items():
        for name in manifest.get("sets", {}):
            if name in out:
                raise artifacts.ManifestError(
                    f"{name} is defined twice, in {out[name][0]} and {os.path.join(root, entry)}.")
            out[name] = (os.path.join(root, entry), manifest)
    return out


def list_datasets(pattern: Optional[str] = None, root: Optional[str] = None) -> list:
    """Sorted names of the shipped sets, those matching the fnmatch ``pattern`` if given
    (``list_datasets("cifar10*")``)."""
    names = sorted(_sets(root))
    return [n for n in names if pattern is None or fnmatch.fnmatchcase(n, pattern)]


def _lookup(name: str, root) -> tuple:
    sets = _sets(root)
    if name not in sets:
        known = ", ".join(sorted(sets)) or "none"
        raise ValueError(f"Unknown distilled dataset {name!r}; known: {known}.")
    return sets[name]


def dataset_info(name: str, root: Optional[str] = None) -> DistilledSetInfo:
    """The card's data of the set ``name`` (reads its manifest only, no pixels)."""
    folder, manifest = _lookup(name, root)
    entry = manifest["sets"][name]
    levels = {int(a): dict(manifest["levels"][str(a)]) for a in entry["levels"]}
    return DistilledSetInfo(
        name=name, dataset=manifest["dataset"], method=manifest["method"],
        images_per_class=int(entry["images_per_class"]), final_level=int(entry["final_level"]),
        levels=levels, image_shape=tuple(manifest["image_shape"]),
        num_classes=int(manifest["num_classes"]), evaluation=dict(entry.get("evaluation") or {}),
        settings=dict(manifest["algorithm"]), provenance=manifest["provenance"],
        folder=folder, card=os.path.join(folder, CARD_NAME))


def image_candidates(folder: str, rel: str, data_dir: Optional[str] = None) -> list:
    """Where the cascade file ``rel`` (``level_<a>/images.npz``, ...) of ``folder`` may be, in
    the order they are tried: beside the manifest (the package), then, for images (`IMAGES`)
    only, ``$TN_KERAS_DATA/distilled/<cascade>/`` and ``<data_dir>/distilled/<cascade>/``."""
    found = [os.path.join(folder, rel)]
    if os.path.basename(rel) == IMAGES:
        for base in (os.environ.get("TN_KERAS_DATA"), data_dir):
            if base:
                found.append(os.path.join(base, DATA_SUBFOLDER, os.path.basename(folder), rel))
    return found


def image_path(folder: str, rel: str, data_dir: Optional[str] = None) -> str:
    """The first of `image_candidates` that exists (the one beside the manifest if none)."""
    candidates = image_candidates(folder, rel, data_dir)
    return next((c for c in candidates if os.path.isfile(c)), candidates[0])


def _rebuild_command(command: Optional[str], out: str) -> str:
    """The cascade's recorded command with its ``--out`` set to ``out``: the distillation
    writes ``<out>/level_<a>/images.npz``, the layout the loader reads (the recorded ``--out``
    is wherever the maintainer's run wrote, not a folder the loader looks in)."""
    if not command:
        return "(no command recorded)"
    changed, n = re.subn(r"--out(=|\s+)\S+", lambda _: f"--out {out}", command, count=1)
    return changed if n else f"{command} --out {out}"


def _check_images_present(name, folder, manifest, data_dir):
    """One line naming the first missing image file, every place it was looked for, and the
    command that makes it in the data folder the loader reads (`image_candidates`)."""
    missing = [rel for rel in sorted(manifest.files) if os.path.basename(rel) == IMAGES
               and not os.path.isfile(image_path(folder, rel, data_dir))]
    if not missing:
        return
    base = data_dir or os.environ.get("TN_KERAS_DATA")
    where = os.path.join(base or "$TN_KERAS_DATA", DATA_SUBFOLDER, os.path.basename(folder))
    looked = ", ".join(image_candidates(folder, missing[0], data_dir))
    # A real folder is quoted for the shell; the placeholder is left for the shell to expand.
    command = _rebuild_command(manifest["provenance"].get("command"),
                               shlex.quote(where) if base else where)
    raise FileNotFoundError(
        f"{name}: {missing[0]} is missing: looked in {looked}"
        f"{'' if base else ' (TN_KERAS_DATA is not set)'}. The package ships the images of "
        f"its sets (reinstall tn_keras); otherwise put the cascade's level_<a>/{IMAGES} files "
        f"in {where}, as made by: {command}")


def verify_dataset(name: str, root: Optional[str] = None,
                   data_dir: Optional[str] = None) -> DistilledSetInfo:
    """Check every file of the set's cascade, its images included (`image_path`), against its
    manifest's sha256 (raises `tn_keras.artifacts.ChecksumError`, one line naming the file, or
    FileNotFoundError saying where the images belong); return its info."""
    folder, manifest = _lookup(name, root)
    _check_images_present(name, folder, manifest, data_dir)
    artifacts.verify(os.path.join(folder, artifacts.MANIFEST_NAME), manifest,
                     locate=lambda rel, _: image_path(folder, rel, data_dir))
    return dataset_info(name, root)


def load_dataset(name: str, level: Optional[int] = None, as_dataset: bool = False,
                 root: Optional[str] = None, data_dir: Optional[str] = None,
                 decode: bool = True):
    """A shipped distilled set's images and labels, verified first.

    Args:
        name: a name from `list_datasets`, e.g. ``"cifar10.dm.ipc10"``.
        level: one of the set's levels (`dataset_info(name).levels`); default its final level,
            the one with ``ipc<N>`` images per class.
        as_dataset: return an unbatched ``tf.data.Dataset`` of ``(image uint8, label int64)``
            (needs TensorFlow) instead of NumPy arrays.
        root: a folder of cascades laid out as the shipped one (default: the package's).
        data_dir: a data folder holding ``distilled/<cascade>/``, read for images that are
            neither in the package nor under ``$TN_KERAS_DATA/distilled/`` (`image_candidates`).
        decode: a set made with multi-formation (its settings' ``formation`` f > 1) stores
            ``ipc<N>`` slots per class, each holding ``f^2`` images at ``1/f`` of the size:
            return them decoded, ``f^2 N`` full-size images per class (default), or the
            stored slots (False).

    Returns:
        ``(x, y)``: uint8 images ``(N, H, W, C)``, raw 0..255, and int64 labels ``(N,)``
        (``N`` = ``f^2`` times the stored slots for a multi-formation set); or the
        ``tf.data.Dataset``.

    Raises:
        ValueError: an unknown name (the message lists the known ones) or level.
        tn_keras.artifacts.ChecksumError: a file that does not match its sha256.
        FileNotFoundError: an image file is in none of the folders read (the message names
            them, and the command that makes the images).
    """
    info = dataset_info(name, root)
    level = info.final_level if level is None else level
    if level not in info.levels:
        raise ValueError(f"{name} has no level {level!r}; its levels are "
                         f"{', '.join(map(str, sorted(info.levels)))}.")
    verify_dataset(name, root, data_dir)
    rel = f"{os.path.basename(distilled_levels.level_dir(info.folder, level))}/{IMAGES}"
    x, y = distilled_levels.read_images(os.path.dirname(image_path(info.folder, rel, data_dir)))
    factor = info.formation if decode else multi_formation.NO_FORMATION
    if factor > multi_formation.NO_FORMATION:
        x, y = multi_formation.decode_to_uint8(x, y, factor)
    return distilled_levels.as_tf_dataset(x, y) if as_dataset else (x, y)
