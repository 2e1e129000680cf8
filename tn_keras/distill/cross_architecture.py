"""Cross-architecture evaluation of distilled levels, as DC-BENCH does it.

Each level is trained from scratch into several architectures (`ARCHITECTURES` in
`tn_keras.distill.config`), each against as many random real images per class (a fresh draw
per seed), and tested on the real test split; mean and std over seeds:

- ``"convnet3"``: the literature's ConvNet-3 (`tn_keras.distill.evaluation`);
- ``"taylornet"``: the zoo's TaylorNet for the dataset, built fresh from the zoo registry
  (does a polynomial network learn from distilled data?);
- ``"relu"``: the zoo's ReLU ConvNet baseline for the dataset;
- ``"resnet18"``: a ResNet-18-style network (`resnet18_style`): four stages of two basic
  residual blocks, written with public Keras layers.

Every architecture is trained with the same protocol, ConvNet-3's (SGD 0.01, momentum 0.9,
weight decay 5e-4, the rate divided by 10 halfway, 300 epochs of batch 256, one DSA-style
augmentation per batch), as DC-BENCH trains every architecture with one protocol: a gap
between rows is then the architecture's, not its training recipe's.
"""
from __future__ import annotations

from typing import Optional, Sequence

import keras
import numpy as np
from keras import layers

from tn_keras.distill.config import ARCHITECTURES
from tn_keras.distill.config import zoo_architectures
from tn_keras.distill.evaluation import accuracy_summary
from tn_keras.distill.evaluation import build_evaluator
from tn_keras.distill.evaluation import random_real_subset
from tn_keras.distill.evaluation import train_from_scratch

#: Channels of the ResNet-18-style network's first stage (ResNet-18 has 64; 16 keeps it
#: trainable on a CPU: about 0.7 M parameters instead of 11 M).
RESNET_WIDTH = 16


def _basic_block(x, width: int, stride: int):
    """``relu(BN(conv(relu(BN(conv(x))))) + shortcut(x))``, He et al. 2016's basic block."""
    shortcut = x
    if stride != 1 or x.shape[-1] != width:
        shortcut = layers.Conv2D(width, 1, strides=stride, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    h = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False)(x)
    h = layers.ReLU()(layers.BatchNormalization()(h))
    h = layers.Conv2D(width, 3, padding="same", use_bias=False)(h)
    h = layers.BatchNormalization()(h)
    return layers.ReLU()(layers.Add()([h, shortcut]))


def resnet18_style(input_shape, num_classes: int, width: int = RESNET_WIDTH) -> keras.Model:
    """ResNet-18's layout for small images: a 3x3 stem (no max pool), stages of ``width``,
    ``2 width``, ``4 width``, ``8 width`` channels with two basic blocks each (strides 1, 2, 2,
    2), global average pooling and a linear classifier (logits). Takes raw 0..255 pixels."""
    inputs = keras.Input(input_shape)
    x = layers.Rescaling(1.0 / 255.0)(inputs)
    x = layers.Conv2D(width, 3, padding="same", use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    for stage, stride in enumerate((1, 2, 2, 2)):
        for block in range(2):
            x = _basic_block(x, width * 2 ** stage, stride if block == 0 else 1)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(num_classes)(x), name="resnet18_style")


def zoo_architecture(architecture: str, dataset: str) -> str:
    """The zoo name of ``"taylornet"`` / ``"relu"`` for ``dataset``, as the zoo registry's
    ``cross_architecture_role`` registrations give it; ValueError if none."""
    names = zoo_architectures()[architecture]
    if dataset not in names:
        raise ValueError(f"architecture {architecture!r}: no zoo model for dataset "
                         f"{dataset!r} (known: {', '.join(sorted(names))}).")
    return names[dataset]


def builder(architecture: str, dataset: str):
    """``(input_shape, num_classes, seed) -> freshly initialised logits model``."""
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {', '.join(map(repr, ARCHITECTURES))}; "
                         f"got {architecture!r}.")

    def build(input_shape, num_classes, seed):
        keras.utils.set_random_seed(seed)
        if architecture == "convnet3":
            return build_evaluator(input_shape, num_classes, seed, "convnet3")
        if architecture == "resnet18":
            return resnet18_style(input_shape, num_classes)
        from tn_keras import zoo

        return zoo.build(zoo_architecture(architecture, dataset), input_shape=input_shape,
                         num_classes=num_classes, classifier_activation=None)

    return build


def _merge(results: list) -> dict:
    """One result from per-seed results (accuracies concatenated, subsets too)."""
    out = accuracy_summary([a for r in results for a in r["accuracies"]])
    if "subsets" in results[0]:
        out["subsets"] = {
            name: accuracy_summary([a for r in results for a in r["subsets"][name]["accuracies"]])
            for name in results[0]["subsets"]}
    return out


def _random_real(train, per_class, test, seeds, **protocol):
    """The same protocol on ``per_class`` random real images, a fresh draw per seed."""
    results = []
    for seed in seeds:
        rx, ry = random_real_subset(train[0], train[1], per_class, seed=seed)
        results.append(train_from_scratch(rx, ry, *test, seeds=(seed,), **protocol))
    return _merge(results)


def evaluate(levels: dict, train, test, dataset: str,
             architectures: Sequence[str] = ARCHITECTURES, seeds: Sequence[int] = (0, 1, 2),
             steps: Optional[int] = None, num_classes: Optional[int] = None,
             test_subsets: Optional[dict] = None, progress=None) -> list[dict]:
    """One row per (level, architecture): the level's and random real images' accuracy.

    Args:
        levels: ``{level: (x, y)}``.
        train, test: ``(x, y)`` of the real training split (random real baselines) and of
            the test split.
        dataset: the data's name (which zoo models "taylornet" and "relu" are).
        steps: training steps per run (default: the protocol's 300 epochs).
        test_subsets: ``{name: mask over the test images}`` also reported (e.g. CIFAR-10's
            lossless test images), from the same trained networks.
    """
    builders = {a: builder(a, dataset) for a in architectures}  # bad names fail first
    num_classes = int(num_classes or int(np.max(train[1])) + 1)
    rows = []
    for level, (x, y) in sorted(levels.items()):
        per_class = int(np.min(np.bincount(np.asarray(y).astype(np.int64))[np.unique(y)]))
        for name, build in builders.items():
            protocol = dict(num_classes=num_classes, steps=steps, evaluator="convnet3",
                            builder=build, test_subsets=test_subsets)
            distilled = train_from_scratch(x, y, *test, seeds=seeds, **protocol)
            real = _random_real(train, per_class, test, seeds, **protocol)
            row = dict(level=int(level), per_class=per_class, images=int(len(y)),
                       architecture=name, steps=distilled["steps"],
                       distilled=_merge([distilled]), random_real=real)
            rows.append(row)
            if progress is not None:
                progress(row)
    return rows


def markdown_table(rows: Sequence[dict], test_images: Optional[int] = None) -> str:
    """The rows as one markdown table (accuracy in %, mean ± std over seeds)."""
    def cell(result):
        return f"{100 * result['mean']:.1f} ± {100 * result['std']:.1f}"

    lines = ["| level | images / class | architecture | distilled | random real |",
             "|---:|---:|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['level']} | {r['per_class']} | {r['architecture']} | "
                     f"{cell(r['distilled'])} | {cell(r['random_real'])} |")
    if test_images is not None:
        lines.append("")
        lines.append(f"Accuracy (%) on {test_images} test images, mean ± std over "
                     f"{len(rows[0]['distilled']['accuracies']) if rows else 0} seeds.")
    return "\n".join(lines)
