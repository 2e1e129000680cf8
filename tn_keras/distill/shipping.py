"""Turn a distillation export into a shipped, versioned cascade folder (maintainers' tool).

    python -m tn_keras.distill.shipping --export distilled/cifar10_dm640 --dataset cifar10 \
        --first-level 4 --final-levels 6,9 --evaluation cdm640_eval.json \
        --command "tn-keras distill ..." --evaluation-command "python benchmarks/..." \
        --out saved_datasets

writes ``saved_datasets/cifar10.dm.from640/``:

    level_<a>/images.npz      copied byte for byte from the export (uint8 x, int64 y)
    level_<a>/manifest.json   the export's level manifest (kind "distilled_level"), rewritten
                              without the contact sheets, which are not shipped
    manifest.json             kind "distilled_dataset", schema 2: sha256 of every file above,
                              provenance (model, command, data, seed), the settings, the levels
                              and ``sets``: {"<dataset>.<method>.ipc<N>": final level, levels,
                              measured accuracies with their protocol and command}
    DATACARD.md               generated from manifest.json (`tn_keras.distill.datacard`)

Levels above ``first_level`` are not shipped (they are large and close to the real images they
start from), nor is level 0 (a random subset of the real training set). The folder is built
under a temporary name and renamed into place.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
from typing import Optional

from tn_keras import artifacts
from tn_keras.datasets import distilled_levels
from tn_keras.distill import catalogue
from tn_keras.distill import config
from tn_keras.distill import datacard
from tn_keras.utils.files import atomic_directory


@dataclasses.dataclass(frozen=True)
class CascadeSpec:
    """What to ship from one export.

    Attributes:
        export_dir: the distillation's export folder (``level_<a>/`` with manifests).
        dataset: its ``tn_keras.datasets`` name (the set names start with it).
        first_level: the first level shipped (>= 1).
        final_levels: the levels that name a set (``ipc<N>`` = their images per class).
        command: the command that made the export.
        evaluation: path of a `benchmarks/eval_distilled_sets.py` JSON, or None.
        evaluation_command: the command that made it.
        note: why these levels, how it was made (goes into the manifest and the card).
    """

    export_dir: str
    dataset: str
    first_level: int
    final_levels: tuple
    command: str
    evaluation: Optional[str] = None
    evaluation_command: Optional[str] = None
    note: str = ""


def _source_levels(spec: CascadeSpec) -> dict:
    """``{level: manifest dict}`` of the exported levels to ship, each verified."""
    if spec.first_level < 1:
        raise ValueError(f"first_level={spec.first_level}: level 0 is real images and is "
                         "never shipped.")
    out = {}
    for a in range(spec.first_level, max(spec.final_levels) + 1):
        path = distilled_levels.level_dir(spec.export_dir, a)
        manifest = distilled_levels.verify_level(path)
        if manifest is None:
            raise ValueError(f"{path} is missing, incomplete or does not verify.")
        out[a] = manifest
    return out


def _evaluations(spec: CascadeSpec) -> dict:
    """``{level: evaluation row}`` from the evaluation JSON, with its command."""
    if not spec.evaluation:
        return {}
    with open(spec.evaluation) as f:
        rows = json.load(f)["rows"]
    return {int(r["level"]): dict(r, command=spec.evaluation_command) for r in rows}


def _copy_level(source: dict, src_dir: str, dst_dir: str):
    """The level's images byte for byte, and its manifest as it was (versions, time, record)
    but for ``files``: the contact sheets are not shipped."""
    os.makedirs(dst_dir)
    shutil.copyfile(os.path.join(src_dir, distilled_levels.LEVEL_FILE),
                    os.path.join(dst_dir, distilled_levels.LEVEL_FILE))
    path = os.path.join(dst_dir, artifacts.MANIFEST_NAME)
    manifest = artifacts.from_dict(source, path, kind="distilled_level")
    _, files = artifacts.sha256_tree(dst_dir)
    artifacts.write(path, dataclasses.replace(manifest, files=files))


def name_part(method: str, factor: int) -> str:
    """The middle of a set's name: the method's short name, and ``-mf<f>`` for sets stored
    with multi-formation (``cifar10.dmfull-mf2.ipc10``: ten slots per class, four images each)."""
    return method if factor == 1 else f"{method}-mf{factor}"


def _set_entries(spec, part, levels: dict, evaluations: dict) -> dict:
    """``{set name: entry}``; ``levels`` is the record's ``{"a": {"images_per_class"}}`` (stored
    images, slots with multi-formation: ``ipc<N>`` counts what is stored, as in the literature)."""
    sets = {}
    for final in sorted(spec.final_levels):
        ipc = levels[str(final)]["images_per_class"]
        sets[f"{spec.dataset}.{part}.ipc{ipc}"] = dict(
            final_level=final, images_per_class=ipc,
            levels=list(range(spec.first_level, final + 1)),
            evaluation=evaluations.get(final, {}))
    return sets


def _short_name(method, export_dir) -> str:
    """The set names' part for the export's ``method`` (`tn_keras.distill.config.METHODS`)."""
    if method not in config.METHODS:
        raise ValueError(f"{export_dir}: its levels were made with method={method!r}, which "
                         f"tn_keras does not know; known: {', '.join(config.METHODS)}.")
    return config.METHODS[method].short


def _record(spec: CascadeSpec, sources: dict) -> dict:
    first = sources[min(sources)]
    method = _short_name(first["algorithm"].get("method"), spec.export_dir)
    per_class = first["algorithm"]["per_class"]
    factor = int(first["algorithm"].get("formation") or 1)
    levels = {str(a): dict(images_per_class=min(m["images_per_class"].values()),
                           num_images=m["num_images"],
                           seconds=m.get("wall_time_seconds"))
              for a, m in sources.items()}
    if factor > 1:
        for entry in levels.values():
            entry["decoded_images_per_class"] = entry["images_per_class"] * factor ** 2
    part = name_part(method, factor)
    return dict(
        dataset=spec.dataset, method=method, name_part=part, formation=factor,
        start_images_per_class=per_class,
        image_shape=first["image_shape"], num_classes=len(first["images_per_class"]),
        dtype="uint8", preprocessing=first["preprocessing"], algorithm=first["algorithm"],
        levels=levels, first_shipped_level=spec.first_level, note=spec.note,
        sets=_set_entries(spec, part, levels, _evaluations(spec)))


def ship(spec: CascadeSpec, root: str, overwrite: bool = False) -> str:
    """Write the cascade folder of ``spec`` under ``root``; return its path."""
    sources = _source_levels(spec)
    record = _record(spec, sources)
    folder = os.path.join(root, f"{spec.dataset}.{record['name_part']}.from"
                                f"{record['start_images_per_class']}")
    first = sources[min(sources)]
    with atomic_directory(folder, overwrite=overwrite) as tmp:
        for a, manifest in sources.items():
            _copy_level(manifest, distilled_levels.level_dir(spec.export_dir, a),
                        distilled_levels.level_dir(tmp, a))
        digest, files = artifacts.sha256_tree(tmp, exclude=(artifacts.MANIFEST_NAME,
                                                            catalogue.CARD_NAME))
        model = first.get("model") or {}
        manifest = artifacts.Manifest(
            kind=catalogue.KIND, name=os.path.basename(folder), file=artifacts.TREE,
            sha256=digest, size_bytes=sum(os.path.getsize(os.path.join(tmp, r)) for r in files),
            files=files,
            provenance=artifacts.Provenance(
                model=model.get("name"), weights_sha256=model.get("sha256"),
                command=spec.command, seed=first.get("seed"),
                data=dict(first.get("source") or {}, per_class=record["start_images_per_class"])),
            versions=artifacts.software_versions(), created=artifacts.now(), record=record)
        artifacts.write(os.path.join(tmp, artifacts.MANIFEST_NAME), manifest)
        # The card from the manifest as read back, as the tests regenerate it.
        datacard.write_card(tmp, artifacts.read(os.path.join(tmp, artifacts.MANIFEST_NAME)))
        _readable(tmp)
    return folder


def _readable(folder):
    """Folders as an ordinary ``mkdir`` makes them (the temporary one is private, 0700)."""
    umask = os.umask(0)
    os.umask(umask)
    for dirpath, _, _ in os.walk(folder):
        os.chmod(dirpath, 0o777 & ~umask)


def _parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--export", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--first-level", type=int, required=True)
    p.add_argument("--final-levels", required=True, help="comma-separated")
    p.add_argument("--command", required=True, help="the command that made the export")
    p.add_argument("--evaluation", help="benchmarks/eval_distilled_sets.py JSON")
    p.add_argument("--evaluation-command")
    p.add_argument("--note", default="")
    p.add_argument("--out", required=True, help="the folder of cascades (saved_datasets)")
    p.add_argument("--overwrite", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = _parse(argv)
    spec = CascadeSpec(export_dir=args.export, dataset=args.dataset,
                       first_level=args.first_level,
                       final_levels=tuple(int(a) for a in args.final_levels.split(",")),
                       command=args.command, evaluation=args.evaluation,
                       evaluation_command=args.evaluation_command, note=args.note)
    print(ship(spec, args.out, overwrite=args.overwrite))


if __name__ == "__main__":
    main()
