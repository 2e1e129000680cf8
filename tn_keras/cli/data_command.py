"""``tn-keras data pack NAME --out DIR``: a dataset as compressed, checksummed shards.

``tn-keras data verify DIR/NAME.shards`` reads every shard back and checks it. Copy the shard
folder to a machine without the datasets (or without TensorFlow) and point ``TN_KERAS_DATA`` at
the folder that holds it. The format is `tn_keras.datasets.shards`.
"""
import os

from tn_keras.cli import arguments
from tn_keras.datasets.codecs import CODECS
from tn_keras.datasets.codecs import DEFAULT_CODEC


def add_parser(subparsers):
    p = subparsers.add_parser("data", help="pack a dataset into shards for another machine")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    pack = actions.add_parser("pack", help="write NAME (all splits) as shards into OUT")
    pack.add_argument("name")
    pack.add_argument("--out", required=True, type=arguments.output_path,
                      help="folder that receives NAME.shards/ (then TN_KERAS_DATA=OUT)")
    pack.add_argument("--max-shard-mb", type=float, default=100.0,
                      help="largest shard file, in MB of 10^6 bytes (default 100)")
    pack.add_argument("--codec", choices=sorted(CODECS), default=DEFAULT_CODEC,
                      help="zlib (default, fast) or image-lzma (images at about 55 %% of their "
                           "size, about twice as small as zlib: for transfers)")
    pack.add_argument("--data-dir", help="where the dataset is now (default: $TN_KERAS_DATA)")
    pack.add_argument("--overwrite", action="store_true", help="replace OUT/NAME.shards")
    pack.set_defaults(run=run_pack)
    verify = actions.add_parser("verify", help="check every shard of a shard folder")
    verify.add_argument("folder", help="a NAME.shards folder")
    verify.set_defaults(run=run_verify)


def run_pack(args):
    from tn_keras.datasets import packing
    from tn_keras.datasets import shards

    index = packing.pack(args.name, args.out, args.max_shard_mb, data_dir=args.data_dir,
                         overwrite=args.overwrite, codec=args.codec)
    folder = os.path.dirname(index)
    files = sorted(f for f in os.listdir(folder) if f != shards.INDEX_NAME)
    total = sum(os.path.getsize(os.path.join(folder, f)) for f in files)
    print(f"{folder}: {len(files)} shards, {total / shards.MEGABYTE:.1f} MB; use it with "
          f"TN_KERAS_DATA={os.path.abspath(args.out)}")


def run_verify(args):
    from tn_keras.datasets import shards

    index = os.path.join(args.folder, shards.INDEX_NAME)
    if not os.path.isfile(index):
        raise FileNotFoundError(f"{args.folder}: no {shards.INDEX_NAME}; not a shard folder.")
    arrays = shards.read(index)
    print(", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in arrays.items()) + ": all "
          "shards verified")
