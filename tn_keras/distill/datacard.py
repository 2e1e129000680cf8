"""Data cards: ``DATACARD.md`` beside every shipped distilled cascade, generated from its
manifest, never edited by hand (tests/test_distilled_sets.py regenerates them and compares).

    tn-keras distill-data info NAME --card      prints it;  write_card(folder, manifest) writes it
"""
from __future__ import annotations

import os

from tn_keras import artifacts
from tn_keras.distill import config
from tn_keras.utils.files import atomic_write_bytes

CARD_NAME = "DATACARD.md"
LICENCE = ("Apache-2.0, as tn_keras. Every distilled image starts from a real training image "
           "of the source dataset and stays close to it: the source dataset's terms apply too.")


def render(manifest: artifacts.Manifest) -> str:
    """The card of a ``distilled_dataset`` manifest, as Markdown."""
    names = sorted(manifest["sets"])
    sections = [
        f"# {manifest.name}: {', '.join(names)}\n\n<!-- Generated from manifest.json by "
        "tn_keras.distill.datacard. Do not edit: regenerate. -->\n\n"
        f"Distilled training sets of {manifest['dataset']}, made by "
        f"{_method(manifest['method'], 'card')} in one cascade that starts from "
        f"{manifest['start_images_per_class']} real images per class and halves them level by "
        f"level. Images are uint8 {tuple(manifest['image_shape'])}, raw 0..255; labels "
        f"int64, {manifest['num_classes']} classes.{_formation(manifest)}",
        _use(names),
        _contents(manifest),
        _making(manifest),
        _accuracy(manifest),
        "## Limitations\n\n" + (manifest.get("note") or "None recorded."),
        f"## Citation\n\n{citation(manifest['dataset'], manifest['method'], _factor(manifest))}",
        f"## Licence\n\n{LICENCE}",
    ]
    return "\n\n".join(sections) + "\n"


def write_card(folder: str, manifest: artifacts.Manifest):
    """Write ``folder/DATACARD.md`` atomically."""
    atomic_write_bytes(os.path.join(folder, CARD_NAME), render(manifest).encode("utf-8"))


#: Multi-formation's source (`tn_keras.datasets.multi_formation`).
IDC_CITATION = ("J.-H. Kim et al., \"Dataset Condensation via Efficient Synthetic-Data "
                "Parameterization\", ICML 2022 (multi-formation)")


def _factor(manifest) -> int:
    return int(manifest.get("formation") or 1)


def _formation(manifest) -> str:
    f = _factor(manifest)
    if f == 1:
        return ""
    return (f"\n\nMulti-formation (factor {f}): each stored image is a slot of {f * f} images "
            f"at 1/{f} of the size, {f}x{f} tiles; `load_dataset` decodes them by bilinear "
            f"upsampling into {f * f} full-size images a slot (`decode=False` returns the "
            f"slots). A set's `ipc<N>` counts stored slots per class, as the literature counts "
            f"storage; it trains on {f * f}N images per class.")


def _use(names):
    name = names[-1]
    return ("## Use\n\n```python\nfrom tn_keras import distill\n"
            f"x, y = distill.load_dataset(\"{name}\")           # final level, NumPy\n"
            f"ds = distill.load_dataset(\"{name}\", as_dataset=True)   # tf.data\n"
            f"distill.to_tfds(\"{name}\", \"tfds_dir\")   # a prepared tensorflow_datasets "
            "folder\n```\n\nEvery file's sha256 is checked against manifest.json before "
            "loading; `tn-keras distill-data verify NAME` checks them from the shell.")


def _contents(manifest):
    decoded = _factor(manifest) > 1
    rows = ["| level | images per class | images | seconds to make | in sets |",
            "| --- | --- | --- | --- | --- |"]
    if decoded:
        rows[0] = rows[0].replace("| images per class |",
                                  "| stored per class | decoded per class |")
        rows[1] += " --- |"
    for a, lv in sorted(manifest["levels"].items(), key=lambda kv: int(kv[0])):
        sets = [n for n, e in sorted(manifest["sets"].items()) if int(a) in e["levels"]]
        final = [n for n in sets if manifest["sets"][n]["final_level"] == int(a)]
        mark = ", ".join(f"**{n}**" if n in final else n for n in sets)
        seconds = lv.get("seconds")
        per_class = (f"{lv['images_per_class']} | {lv['decoded_images_per_class']}" if decoded
                     else f"{lv['images_per_class']}")
        rows.append(f"| {a} | {per_class} | {lv['num_images']} | "
                    f"{'' if seconds is None else f'{seconds:.1f}'} | {mark} |")
    first = manifest["first_shipped_level"]
    skipped = ("Level 0 (real images) is" if first <= 1
               else f"Levels 0 (real images) to {first - 1} are")
    return ("## Contents\n\nA set's default level (bold) is its final one; its other levels "
            f"load with `level=`. {skipped} not shipped.\n\n" + "\n".join(rows))


def _making(manifest):
    prov = manifest.provenance
    settings = ", ".join(f"{k}={v}" for k, v in sorted(manifest["algorithm"].items()))
    data = ", ".join(f"{k} {v}" for k, v in sorted((prov.data or {}).items()))
    unused = (" (distribution matching does not use it: it matches embeddings under random "
              "ConvNets)") if _method(manifest["method"], "needs_model") is False else ""
    return (f"## How it was made\n\nSource: {data}; seed {prov.seed}. Model recorded with the "
            f"run: {prov.model}, weights sha256 {prov.weights_sha256}{unused}.\n\nSettings: "
            f"{settings}.\n\nSoftware: {_versions(manifest.versions)}; created "
            f"{manifest.created}.\n\n```bash\n{prov.command}\n```")


def _versions(versions):
    return ", ".join(f"{k} {v}" for k, v in sorted(versions.items()) if v)


def _accuracy(manifest):
    parts = ["## Measured accuracy"]
    for name, entry in sorted(manifest["sets"].items()):
        ev = entry.get("evaluation") or {}
        if not ev:
            parts.append(f"**{name}**: not measured.")
            continue
        rows = ["| test split (images) | distilled | random real, same size |",
                "| --- | --- | --- |"]
        for split, n in ev["test_examples"].items():
            d, r = ev["distilled"][split], ev["random_real"][split]
            rows.append(f"| {split} ({n}) | {_mean_std(d)} | {_mean_std(r)} |")
        parts.append(
            f"**{name}** (level {entry['final_level']}, {ev['images']} images): a fresh "
            f"{ev['evaluator']} trained {ev['steps']} steps on the set, seeds {ev['seeds']} "
            f"(mean ± std); random real: "
            f"{ev.get('baseline', 'as many random training images per class, a fresh draw per seed')}"
            f", trained the same way. Protocol: {ev['protocol']}.\n\n"
            + "\n".join(rows) + f"\n\n```bash\n{ev.get('command')}\n```")
    return "\n\n".join(parts)


def _mean_std(result):
    """``mean ± std %`` over seeds; one seed has no spread to show."""
    if len(result.get("accuracies", ())) == 1:
        return f"{100 * result['mean']:.1f} % (one seed)"
    return f"{100 * result['mean']:.1f} ± {100 * result['std']:.1f} %"


def _method(short: str, field: str):
    """``field`` of the registry's method (`tn_keras.distill.config.METHODS`) that a manifest's
    short method name ``short`` names; ``short`` itself for a method tn_keras does not know."""
    try:
        return getattr(config.method_named(short), field)
    except ValueError:
        return short


def citation(dataset: str, method: str, formation: int = 1) -> str:
    """What to cite for a set: its method (and multi-formation's source when it is stored
    that way), and the dataset it was distilled from."""
    from tn_keras import datasets

    try:
        data = datasets.info(dataset).citation
    except ValueError:  # a dataset tn_keras does not know
        data = dataset
    cite = _method(method, "citation")
    if formation > 1:
        cite = f"{cite}; {IDC_CITATION}"
    return f"Method: {cite}.\n\nData: {data}"
