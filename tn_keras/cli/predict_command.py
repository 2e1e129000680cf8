"""``tn-keras predict NAME image.png ...``: the top-k classes of image files."""
import sys

import numpy as np

from tn_keras.cli import arguments


def add_parser(subparsers):
    p = subparsers.add_parser("predict", help="classify image files with a zoo checkpoint")
    p.add_argument("name", help="NAME or NAME.TAG")
    p.add_argument("images", nargs="+", help="image files (PNG, JPEG, ...)")
    p.add_argument("--top-k", type=arguments.positive_int, default=3)
    p.add_argument("--weights", default="pretrained")
    p.set_defaults(run=run)


def read_image(path, input_shape):
    """An image file as raw 0..255 float32 pixels of the model's input shape.

    Converted to grayscale or RGB by the model's channel count and resized to its input size
    (digits models expect white strokes on black, as in MNIST). Nothing is clipped silently:
    16-bit images are scaled to 8 bits and a note says so; float or 32-bit images and images
    with transparent pixels are refused (their meaning on a 0..255 scale is not defined).
    """
    from PIL import Image

    from tn_keras.utils.files import check_regular_file

    rows, cols, channels = input_shape
    try:
        check_regular_file(path, "image file")  # a FIFO would block Image.open forever
        with Image.open(path) as image:
            image = _eight_bit(image, path)
            image = image.convert("L" if channels == 1 else "RGB")
            image = image.resize((cols, rows), Image.BILINEAR)
            pixels = np.asarray(image, dtype="float32")
    except Image.DecompressionBombError as e:
        raise MemoryError(f"image {path}: too large to decode safely ({e})") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise ValueError(f"Cannot read image {path!r}: {e}") from e
    return pixels.reshape(rows, cols, channels)


def _note(message):
    print(f"tn-keras predict: note: {message}", file=sys.stderr)


def _eight_bit(image, path):
    """``image`` as an 8-bit PIL image, refusing what cannot be converted without guessing."""
    from PIL import Image

    rawmode = image.tile[0][3] if image.tile and isinstance(image.tile[0][3], str) else ""
    if image.mode.startswith("I;16"):
        wide = np.asarray(image, dtype=np.float64)
        _note(f"{path}: 16-bit image scaled to 8 bits (value * 255 / 65535).")
        image = Image.fromarray(np.round(wide * 255.0 / 65535.0).astype(np.uint8))
    elif image.mode in ("I", "F"):
        kind = "floating-point" if image.mode == "F" else "32-bit integer"
        raise ValueError(f"{kind} pixels (mode {image.mode}) have no defined 0..255 scale; "
                         "convert the image to 8 bits per channel first.")
    elif "16" in rawmode:
        _note(f"{path}: 16 bits per channel reduced to 8 (the high byte of each value).")
    if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")
        alpha = np.asarray(image.getchannel("A"))
        if alpha.min() < 255:
            raise ValueError(f"{int(np.sum(alpha < 255))} pixels are transparent (alpha < "
                             "255); flatten the image onto a background first.")
        image = image.convert("RGB")  # fully opaque: the alpha channel carries nothing
    return image


def run(args):
    from tn_keras import zoo
    from tn_keras.zoo import api

    record = zoo.info(args.name)
    if args.top_k > len(record.class_names):
        raise ValueError(f"--top-k {args.top_k}: {args.name} has only "
                         f"{len(record.class_names)} classes.")
    batch = np.stack([read_image(p, record.input_shape) for p in args.images])  # before loading
    checkpoint = zoo.find(args.name, args.weights)
    model = arguments.load_checkpoint(args.name, args.weights)
    print(f"tn-keras predict: using {checkpoint.describe()}", file=sys.stderr)
    scores = api.predict(model, batch)  # the library's door: the pixel scale is checked
    for path, row in zip(args.images, scores):
        best = np.argsort(row)[::-1][: args.top_k]
        ranked = ", ".join(f"{record.class_names[i]} {row[i]:.3f}" for i in best)
        print(f"{path}: {ranked}")
