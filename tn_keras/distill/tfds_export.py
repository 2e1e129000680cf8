"""A shipped distilled set as a prepared ``tensorflow_datasets`` dataset.

    >>> path = distill.to_tfds("cifar10.dm.ipc10", "tfds_data")
    >>> import tensorflow_datasets as tfds
    >>> builder = tfds.builder_from_directory(path)       # no download, no registration
    >>> ds = builder.as_dataset(split="level_6")          # {"image": uint8, "label": int64}

The folder is what TFDS itself reads as a prepared dataset: one TFRecord shard per level
(split ``level_<a>``) of examples serialised by the TFDS features (``image``: PNG-encoded
uint8, ``label``: ClassLabel), plus ``dataset_info.json`` and ``features.json`` written by
``tfds.folder_dataset.write_metadata``, which also counts every split from the shards. A single
shard per split keeps the shipped order, so a split read without ``shuffle_files`` holds exactly
`load_dataset`'s images and labels. (TFDS's ad-hoc builder, ``store_as_tfds_dataset``, would do
the same but needs the ``importlib_resources`` back-port, which TFDS 4.9 does not declare on
Python >= 3.9.)
The set is verified against its sha256 first. Needs TensorFlow and tensorflow_datasets.
"""
from __future__ import annotations

import contextlib
import io
import os

from tn_keras.distill import catalogue
from tn_keras.distill import datacard
from tn_keras.utils.files import atomic_directory

VERSION = "1.0.0"


def tfds_name(name: str) -> str:
    """The TFDS builder name of a set: ``cifar10.dm.ipc10`` -> ``cifar10_dm_ipc10``."""
    return name.replace(".", "_").replace("-", "_").lower()


FILENAME_TEMPLATE = "{DATASET}-{SPLIT}.{FILEFORMAT}-{SHARD_X_OF_Y}"


def _features(info):
    import tensorflow_datasets as tfds

    return tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=tuple(info.image_shape)),
        "label": tfds.features.ClassLabel(num_classes=info.num_classes),
    })


def _write_split(folder, dataset, split, features, x, y):
    """One TFRecord shard of serialised ``{"image", "label"}`` examples, in the set's order."""
    import tensorflow as tf

    path = os.path.join(folder, f"{dataset}-{split}.tfrecord-00000-of-00001")
    with tf.io.TFRecordWriter(path) as writer:
        for image, label in zip(x, y):
            writer.write(features.serialize_example({"image": image, "label": int(label)}))


def _builder_description(info) -> str:
    ev = info.evaluation
    measured = "" if not ev else (
        f" Measured ({ev.get('evaluator')}, seeds {ev.get('seeds')}): "
        + "; ".join(f"{split} {100 * v['mean']:.1f} %" for split, v in ev["distilled"].items()))
    return (f"tn_keras distilled set {info.name}: {info.images_per_class} images per class of "
            f"{info.dataset} at level {info.final_level} (split level_{info.final_level}); "
            f"method {info.method}.{measured} See its DATACARD.md.")


def to_tfds(name: str, directory: str, overwrite: bool = False, root=None) -> str:
    """Write the set ``name`` as a prepared TFDS dataset under ``directory``.

    Args:
        name: a shipped set (`list_datasets`).
        directory: the TFDS data folder to create (refused if it exists, unless
            ``overwrite``); the dataset goes to ``directory/<tfds_name>/<VERSION>``.
        overwrite: replace an existing ``directory``.
        root: a folder of cascades (default: the shipped sets).

    Returns:
        The folder to pass to ``tfds.builder_from_directory``.
    """
    import tensorflow_datasets as tfds

    info = catalogue.verify_dataset(name, root)  # the sha256 first
    features = _features(info)
    with atomic_directory(directory, overwrite=overwrite) as tmp:
        folder = os.path.join(tmp, tfds_name(name), VERSION)
        os.makedirs(folder)
        for level in sorted(info.levels):
            x, y = catalogue.load_dataset(name, level=level, root=root)
            _write_split(folder, tfds_name(name), f"level_{level}", features, x, y)
        # dataset_info.json and features.json; the split sizes are counted from the shards
        # (TFDS prints the splits it found and a progress bar: not this function's output).
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            tfds.folder_dataset.write_metadata(
                data_dir=folder, features=features, split_infos=None,
                filename_template=FILENAME_TEMPLATE, description=_builder_description(info),
                citation=datacard.citation(info.dataset, info.method, info.formation), check_data=True,
                supervised_keys=("image", "label"))  # as_supervised=True gives (x, y) pairs
    return os.path.join(directory, tfds_name(name), VERSION)
