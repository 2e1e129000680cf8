"""``tn-keras distill-data``: the shipped distilled datasets (`tn_keras.distill.catalogue`).

    tn-keras distill-data list [PATTERN]             names, images per class, measured accuracy
    tn-keras distill-data info NAME [--card|--json]  levels, provenance, accuracy; or the card
    tn-keras distill-data verify [NAME ...]          sha256 of every file (default: all sets)
    tn-keras distill-data export-tfds NAME --out DIR a prepared tensorflow_datasets folder
"""
import json

from tn_keras.cli import arguments


def add_parser(subparsers):
    p = subparsers.add_parser("distill-data", help="list, verify and export the shipped "
                                                   "distilled datasets")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the shipped sets (fnmatch PATTERN, e.g. "
                                              "'cifar10*')")
    listing.add_argument("pattern", nargs="?")
    listing.set_defaults(run=run_list)
    info = actions.add_parser("info", help="a set's levels, provenance and accuracy")
    info.add_argument("name")
    shown = info.add_mutually_exclusive_group()
    shown.add_argument("--card", action="store_true", help="print its DATACARD.md")
    shown.add_argument("--json", action="store_true", help="print dataset_info as JSON")
    info.set_defaults(run=run_info)
    verify = actions.add_parser("verify", help="check every file against its sha256")
    verify.add_argument("names", nargs="*", help="default: every shipped set")
    verify.set_defaults(run=run_verify)
    tfds = actions.add_parser("export-tfds", help="write a set as a prepared TFDS dataset "
                                                  "(one split per level)")
    tfds.add_argument("name")
    tfds.add_argument("--out", required=True, type=arguments.output_path,
                      help="the TFDS data folder to create")
    tfds.add_argument("--overwrite", action="store_true", help="replace OUT")
    tfds.set_defaults(run=run_export_tfds)


def _accuracy(info) -> str:
    if not info.evaluation:
        return "not measured"
    d, r = info.evaluation["distilled"], info.evaluation["random_real"]
    return "; ".join(f"{split} {100 * d[split]['mean']:.1f} % (random real "
                     f"{100 * r[split]['mean']:.1f} %)" for split in d)


def run_list(args):
    from tn_keras import distill

    names = distill.list_datasets(args.pattern)
    if not names:
        print(f"no shipped distilled set matches {args.pattern!r}")
    for name in names:
        info = distill.dataset_info(name)
        print(f"{name:26s} {info.images_per_class:>3d}/class  {_levels(info)}  "
              f"{_accuracy(info)}")


def run_info(args):
    from tn_keras import distill

    info = distill.dataset_info(args.name)
    if args.card:
        with open(info.card, encoding="utf-8") as f:
            print(f.read(), end="")
        return
    if args.json:
        print(json.dumps(info.as_dict(), indent=1))
        return
    levels = ", ".join(f"{a}: {lv['images_per_class']}/class" for a, lv in
                       sorted(info.levels.items()))
    print(f"{info.name}: {info.dataset}, method {info.method}, {info.images_per_class} images "
          f"per class at level {info.final_level}, images {info.image_shape} uint8\n"
          f"levels: {levels}\naccuracy: {_accuracy(info)}\nmade by: "
          f"{info.provenance.get('command')}\ncard: {info.card}")


def run_verify(args):
    from tn_keras import distill

    for name in args.names or distill.list_datasets():
        info = distill.verify_dataset(name)
        print(f"{name}: {_levels(info)}, every file matches its sha256")


def run_export_tfds(args):
    from tn_keras import distill

    path = distill.to_tfds(args.name, args.out, overwrite=args.overwrite)
    print(f"{path}: read it with tfds.builder_from_directory({path!r})"
          f".as_dataset(split='level_{distill.dataset_info(args.name).final_level}')")


def _levels(info) -> str:
    return f"{len(info.levels)} level" + ("" if len(info.levels) == 1 else "s")
