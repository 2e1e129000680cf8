"""Model cards: ``README.md`` beside every checkpoint, generated from its manifest and the
registry, never edited by hand (tests/test_cards.py regenerates them and compares).

A card is a Hugging Face Hub model card: YAML front matter (`metadata`: licence, library,
tags, datasets and a ``model-index`` holding the manifest's accuracies) between ``---`` lines,
then Markdown. `check` validates a card on disk against its manifest.

    tn-keras card NAME[.TAG]          prints it;  write_card(folder, manifest) writes it
    tn-keras card NAME[.TAG] --check  validates the card beside the checkpoint
"""
import os

from tn_keras import artifacts
from tn_keras.utils.files import atomic_write_bytes

CARD_NAME = "README.md"
LICENCE = ("Apache-2.0, as tn_keras (code and weights). The training data keeps its own terms; "
           "see the dataset's citation above.")
#: The Hub's identifiers for the licence above and for the library that reads the files.
HUB_LICENSE = "apache-2.0"
HUB_LIBRARY = "keras"
FRONT_MATTER_FENCE = "---"
#: Keys every card's metadata must hold (`check`).
REQUIRED_METADATA = ("license", "library_name", "pipeline_tag", "tags", "model-index")


def metadata(manifest: artifacts.Manifest) -> dict:
    """The card's front matter as data: what the Hub indexes a model card by. The
    ``model-index`` holds one result per test split the manifest measured, with the
    manifest's accuracy as it is (a fraction)."""
    from tn_keras.zoo.registry import get_spec

    spec = get_spec(manifest.name)
    data = _dataset(manifest)
    dataset_id = data.hub_dataset or data.name
    metrics = manifest.get("metrics", {})
    splits = sorted(k[:-len("_accuracy")] for k in metrics if k.endswith("_accuracy"))
    results = [{"task": {"type": "image-classification", "name": "Image Classification"},
                "dataset": {"type": dataset_id, "name": data.name, "split": split},
                "metrics": [{"type": "accuracy", "value": metrics[split + "_accuracy"],
                             "name": f"top-1 accuracy ({split})"}]} for split in splits]
    meta = {"license": HUB_LICENSE, "library_name": HUB_LIBRARY,
            "pipeline_tag": "image-classification",
            "tags": ["tn_keras", spec.family, "image-classification", data.name]}
    if data.hub_dataset:
        meta["datasets"] = [data.hub_dataset]
    meta["model-index"] = [{"name": f"{manifest.name}.{manifest['tag']}", "results": results}]
    return meta


def front_matter(manifest: artifacts.Manifest) -> str:
    """`metadata` as the YAML block that opens the card."""
    import yaml

    return (f"{FRONT_MATTER_FENCE}\n"
            + yaml.safe_dump(metadata(manifest), sort_keys=False, allow_unicode=True)
            + f"{FRONT_MATTER_FENCE}\n")


def split_front_matter(text: str):
    """``(metadata dict, Markdown body)`` of a card's text; ValueError when it does not open
    with a YAML mapping between ``---`` lines."""
    import yaml

    lines = text.split("\n")
    if not lines or lines[0] != FRONT_MATTER_FENCE or FRONT_MATTER_FENCE not in lines[1:]:
        raise ValueError("the card does not open with YAML front matter between '---' lines")
    end = lines.index(FRONT_MATTER_FENCE, 1)
    try:
        meta = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as error:
        raise ValueError(f"the card's front matter is not YAML: {error}".replace("\n", " ")) \
            from None
    if not isinstance(meta, dict):
        raise ValueError("the card's front matter is not a YAML mapping")
    return meta, "\n".join(lines[end + 1:])


def check(folder, manifest: artifacts.Manifest) -> list:
    """Problems of the card in ``folder`` (one line each; empty: valid): front matter that
    parses, holds `REQUIRED_METADATA` and the manifest's accuracies, and a card equal to the
    one generated from the manifest (not hand-edited, not stale)."""
    path = os.path.join(folder, CARD_NAME)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as error:
        return [f"{path}: cannot read the card ({error.strerror or error})"]
    try:
        meta, _ = split_front_matter(text)
    except ValueError as error:
        return [f"{path}: {error}"]
    problems = [f"{path}: the front matter has no {key!r}" for key in REQUIRED_METADATA
                if key not in meta]
    expected = metadata(manifest)
    for key in ("license", "library_name", "model-index"):
        if key in meta and meta[key] != expected[key]:
            problems.append(f"{path}: front matter {key!r} is {meta[key]!r}; the manifest "
                            f"gives {expected[key]!r}")
    if not problems and text != render(manifest):
        problems.append(f"{path}: differs from the card generated from manifest.json "
                        f"(regenerate it: tn-keras card {manifest.name}.{manifest['tag']} "
                        f"--weights FOLDER > {path})")
    return problems


def render(manifest: artifacts.Manifest) -> str:
    """The card of a checkpoint manifest: YAML front matter, then Markdown."""
    from tn_keras.zoo.registry import get_spec

    spec = get_spec(manifest.name)
    full = f"{manifest.name}.{manifest['tag']}"
    sections = [
        f"{front_matter(manifest)}\n# {full}\n\n<!-- Generated by `tn-keras card {full}` from manifest.json and the "
        "tn_keras zoo registry. Do not edit: regenerate. -->\n\n"
        f"{spec.description}. Family: {_family(spec.family)}. Load it with "
        f"`tn_keras.zoo.load(\"{full}\")`; it takes raw pixels 0..255 of shape "
        f"{tuple(manifest['input_shape'])} and returns {_output(manifest)}. To read the "
        "`.keras` file with `keras.saving.load_model` instead, `import tn_keras` first: that "
        "registers its layers (`PolyCG` & co.) with Keras, which otherwise cannot find them.",
        _architecture(manifest, spec),
        _weights(manifest),
        _data(manifest),
        _metrics(manifest),
        *_readability(manifest),
        _training(manifest),
        "## Intended use\n\nResearch on coarse-grained polynomial networks (TaylorNet) and "
        "multi-level dataset distillation: a reproducible baseline, a starting point for "
        f"fine-tuning (`zoo.load(\"{full}\", num_classes=N)` returns it with a new head, "
        "compiled and ready for `fit`; add `freeze_body=True` to train the head only), and "
        "features from the `embedding` layer (`include_top=False`).",
        _limitations(manifest, spec),
        f"## Citation\n\n{spec.reference}\n\nData: {_dataset(manifest).citation}",
        f"## Licence\n\n{LICENCE}",
    ]
    return "\n\n".join(sections) + "\n"


def write_card(folder, manifest):
    """Write ``folder/README.md`` atomically."""
    atomic_write_bytes(os.path.join(folder, CARD_NAME), render(manifest).encode("utf-8"))


def _dataset(manifest):
    from tn_keras import datasets

    return datasets.info(manifest["dataset"])


def _family(family):
    return {"taylornet": "TaylorNet (polynomial layers, no activation function)",
            "baseline": "baseline (ReLU convolutions), for comparison"}.get(family, family)


def _output(manifest):
    n = manifest["num_classes"]
    return f"{n} class probabilities (softmax)" if n else "class scores"


def _architecture(manifest, spec):
    from tn_keras.zoo.registry import builder_default

    kwargs = manifest.get("training", {}).get("model_kwargs") or {}
    model = spec.builder(**kwargs)
    rows = ["| layer | type | output shape | parameters |", "| --- | --- | --- | --- |"]
    for layer in model.layers:
        shape = tuple(layer.output.shape[1:])
        rows.append(f"| `{layer.name}` | {type(layer).__name__} | {shape} | "
                    f"{layer.count_params():,} |")
    width = kwargs.get("width", builder_default(spec, "width"))
    return (f"## Architecture\n\nBuilt by `tn_keras.zoo.build(\"{spec.name}\""
            + "".join(f", {k}={v!r}" for k, v in sorted(kwargs.items()))
            + f")` (width {width}). {manifest['parameters']:,} parameters "
            f"({manifest['trainable_parameters']:,} trainable), "
            f"{manifest['macs_per_image']:,} multiply-accumulates per image.\n\n"
            + "\n".join(rows))


def _weights(manifest):
    rows = ["| file | sha256 |", "| --- | --- |"]
    rows += [f"| `{rel}` | `{sha}` |" for rel, sha in sorted(manifest.files.items())]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(manifest.versions.items()))
    return (f"## Weights\n\nTag `{manifest['tag']}`, {manifest.size_bytes:,} bytes, created "
            f"{manifest.created}. Loading checks every sha256 below first.\n\n"
            + "\n".join(rows) + f"\n\nSoftware: {versions}.")


def _data(manifest):
    data = manifest.provenance.data or {}
    info = _dataset(manifest)
    text = (f"## Data\n\nTrained on `{data.get('dataset', manifest['dataset'])}` "
            f"{data.get('split', 'train')} split ({_count(data.get('examples'))} images). "
            f"{info.description}")
    metrics = manifest.get("metrics", {})
    lossless, total = metrics.get("test_lossless_examples"), metrics.get("test_examples")
    if lossless is not None and total is not None and lossless < total:
        text += (f"\n\n**Caveat:** only {lossless:,} of the {total:,} test images this "
                 "checkpoint was evaluated on are byte-exact; the other "
                 f"{total - lossless:,} are JPEG-compressed copies in the data file used. "
                 "`test_lossless` is measured on the byte-exact rows only.")
    return text


def _count(value):
    return "?" if value is None else f"{value:,}"


def _metrics(manifest):
    metrics = manifest.get("metrics", {})
    splits = sorted(k[:-len("_accuracy")] for k in metrics if k.endswith("_accuracy"))
    rows = ["| split | top-1 accuracy | images |", "| --- | --- | --- |"]
    rows += [f"| {s} | {100 * metrics[s + '_accuracy']:.2f} % | "
             f"{_count(_examples(metrics, s))} |" for s in splits]
    return (f"## Metrics\n\nMeasured when the checkpoint was written; re-measure with "
            f"`{manifest.get('evaluation_command')}`.\n\n" + "\n".join(rows))


def _examples(metrics, split):
    """The images a split's accuracy was measured on; a test-time-augmented split
    (``<split>_tta``) was measured on the images of the split it augments."""
    if split + "_examples" in metrics or not split.endswith("_tta"):
        return metrics.get(split + "_examples")
    return metrics.get(split[:-len("_tta")] + "_examples")


def _readability(manifest):
    """The "Readability" section, when the manifest records it (`tn_keras.zoo.readability`)."""
    from tn_keras.zoo import readability

    result = manifest.get(readability.KEY)
    return [f"## Readability\n\n{readability.describe(result)}"] if result else []


def _training(manifest):
    training = manifest.get("training", {})
    recipe = ", ".join(f"{k} {v}" for k, v in sorted(training.get("recipe", {}).items()))
    seconds = training.get("wall_time_seconds")
    start = manifest.provenance.model
    origin = (f" Started from `{start}` (sha256 `{manifest.provenance.weights_sha256}`)."
              if start else "")
    return (f"## Training\n\n```bash\n{manifest.provenance.command}\n```\n\n"
            f"{training.get('epochs')} epochs, batch {training.get('batch_size')}, seed "
            f"{manifest.provenance.seed}, on {training.get('machine')}"
            + (f", {seconds / 60:.1f} min" if seconds else "") + f".{origin} "
            f"Recipe: {recipe}. Final training loss "
            f"{training.get('final_train_loss', float('nan')):.4f}, accuracy "
            f"{100 * training.get('final_train_accuracy', float('nan')):.2f} %.")


def _limitations(manifest, spec):
    shape = tuple(manifest["input_shape"])
    items = [f"Trained on {manifest['dataset']} only: other images (other sizes, colours, "
             f"centring) are out of distribution; inputs must be {shape} raw pixels 0..255.",
             "Accuracy figures are single runs with one seed; no error bars.",
             "Not evaluated for robustness, calibration or fairness; not for decisions "
             "about people."]
    if spec.family == "taylornet":
        items.append("A polynomial network: outputs grow polynomially far from the training "
                     "data, so out-of-range inputs can give extreme scores.")
    return "## Limitations\n\n" + "\n".join(f"- {item}" for item in items)
