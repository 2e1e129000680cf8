"""How readable a checkpoint's expansion is, measured once and stated on its model card.

A TaylorNet's logit is exactly ``f(x) = sum_k f_k`` about any point; whether a reader can use
the low orders (a constant, an image of weights, a matrix of pixel pairs) depends on how much of
``sum_k |f_k|`` they carry and how much the orders cancel. For a checkpoint this measures, with
`tn_keras.interpret.order_share` about the training mean image (``about="mean"``), on the first
``images`` test images and each image's predicted class:

* ``share_orders_le_k`` for k = 0, 1, 2: ``S_pool(k) = sum_n sum_{j<=k} |f_nj| /
  sum_n sum_j |f_nj|``, the share of orders ``<= k`` pooled over the images;
* ``median_share_orders_le_k``: the median over images of each image's own share ``S_n(k)``
  (a few images with huge orders can dominate the pooled share);
* ``median_cancellation``: the median over images of ``sum_k |f_k| / |f(x)|``.

Command (``--record`` writes the result into the checkpoint's manifest under ``readability``
and regenerates its ``README.md``; manifest.json is not among the files its sha256 list covers,
and the weights are not touched)::

    python -m tn_keras.zoo.readability NAME[.TAG] [--images N] [--record]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

KEY = "readability"
DEFAULT_IMAGES = 1000


POINTS = {"mean": "the training mean image",
          "class_mean": "the training mean image of each image's predicted class",
          "zero": "the zero image"}


def _command(full_name, images, split, about):
    extra = "" if split == "test" else f" --split {split}"
    extra += "" if about == "mean" else f" --about {about}"
    return f"python -m tn_keras.zoo.readability {full_name} --images {images}{extra} --record"


def measure(name, images=DEFAULT_IMAGES, split="test", data_dir=None, about="mean"):
    """``{about, target, split, images, degree, share_orders_le_0..2, median_cancellation,
    seconds, command}`` for the checkpoint ``name`` (see the module docstring)."""
    from tn_keras import datasets
    from tn_keras import interpret
    from tn_keras import zoo

    checkpoint = zoo.find(name)
    model = zoo.load(checkpoint.full_name, compile=False)
    dataset = checkpoint.manifest["dataset"]
    x, _ = datasets.load(dataset, split, data_dir=data_dir)
    x = x[:int(images)]
    start = time.perf_counter()
    share = interpret.order_share(model, x, about=about, target="predicted")
    return {"about": about, "target": "predicted", "split": split, "images": len(x),
            "degree": int(share.orders.shape[1] - 1), **share.summary(up_to=2),
            "seconds": round(time.perf_counter() - start, 1),
            "command": _command(checkpoint.full_name, len(x), split, about)}


def record(name, result):
    """Write ``result`` into the checkpoint's manifest under `KEY`; regenerate its card."""
    from tn_keras import artifacts
    from tn_keras import zoo
    from tn_keras.zoo import cards

    checkpoint = zoo.find(name)
    path = artifacts.manifest_file(checkpoint.folder)
    manifest = artifacts.read(path)
    manifest = dataclasses.replace(manifest, record={**manifest.record, KEY: result})
    artifacts.write(path, manifest)
    cards.write_card(checkpoint.folder, manifest)
    return os.path.join(checkpoint.folder, cards.CARD_NAME)


def _percent(share):
    """A share as a percentage a reader can compare: 14.2 %, 0.16 %, 0.0032 %."""
    value = 100 * share
    return f"{value:.1f} %" if value >= 1 or value == 0 else f"{value:.2g} %"


def describe(result):
    """One Markdown paragraph stating ``result`` (the card's "Readability" section)."""
    shares = ", ".join(_percent(result[f"share_orders_le_{k}"]) for k in range(3)
                       if f"share_orders_le_{k}" in result)
    medians = ", ".join(_percent(result[f"median_share_orders_le_{k}"]) for k in range(3)
                        if f"median_share_orders_le_{k}" in result)
    median = f" (the median image: {medians})" if medians else ""
    rest = ("The model has degree 2: these are all of its orders."
            if result["degree"] <= 2 else
            "The rest sits in orders 3 and above, which cannot be shown as one image or one "
            "matrix per class.")
    return (f"About {POINTS.get(result['about'], result['about'])}, on the first {result['images']:,} "
            f"{result['split']} images (the predicted class's logit, degree "
            f"{result['degree']}), orders <= 0, <= 1 and <= 2 carry {shares} of "
            f"sum_k |f_k| pooled over the images{median}; the median cancellation ratio "
            f"sum_k |f_k| / |f| is {result['median_cancellation']:.3g}. {rest} Definitions: "
            "`tn_keras.interpret.order_share`; measured with "
            f"`{result['command']}`.")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tn_keras.zoo.readability",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="a zoo checkpoint, NAME or NAME.TAG")
    parser.add_argument("--images", type=int, default=DEFAULT_IMAGES,
                        help=f"the first N test images (default {DEFAULT_IMAGES})")
    parser.add_argument("--split", default="test")
    parser.add_argument("--about", choices=sorted(POINTS), default="mean",
                        help="the expansion point (default mean; cards record mean)")
    parser.add_argument("--record", action="store_true",
                        help="write the result into the manifest and regenerate README.md")
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error(f"--images={args.images}: expected a positive number of images.")
    result = measure(args.name, args.images, args.split, about=args.about)
    print(describe(result))
    print(f"({result['seconds']} s)")
    if args.record:
        print(f"recorded; card: {record(args.name, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
