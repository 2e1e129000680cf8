"""``tn-keras predict NAME image.png ...``: the top-k classes of image files."""
import sys

import numpy as np


def add_parser(subparsers):
    p = subparsers.add_parser("predict", help="classify image files with a zoo checkpoint")
    p.add_argument("name", help="NAME or NAME.TAG")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--weights", default="pretrained")
    p.set_defaults(run=run)


def read_image(path, input_shape):
    """An image file as raw 0..255 float32 pixels of the model's input shape.

    Converted to grayscale or RGB by the model's channel count and resized to its input size
    (digits models expect white strokes on black, as in MNIST).
    """
    from PIL import Image

    rows, cols, channels = input_shape
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((cols, rows), Image.BILINEAR)
            pixels = np.asarray(image, dtype="float32")
    except (OSError, ValueError) as e:
        raise ValueError(f"Cannot read image {path!r}: {e}") from e
    return pixels.reshape(rows, cols, channels)


def run(args):
    from tn_keras import zoo

    record = zoo.info(args.name)
    checkpoint = zoo.find(args.name, args.weights)
    print(f"tn-keras predict: using {checkpoint.describe()}", file=sys.stderr)
    model = zoo.load(args.name, weights=args.weights, compile=False)
    batch = np.stack([read_image(p, record.input_shape) for p in args.images])
    scores = model.predict(batch, verbose=0)
    for path, row in zip(args.images, scores):
        best = np.argsort(row)[::-1][: args.top_k]
        ranked = ", ".join(f"{record.class_names[i]} {row[i]:.3f}" for i in best)
        print(f"{path}: {ranked}")
