"""``tn-keras figures --out DIR``: the supplement's figures, their data and an index.html."""

from tn_keras.cli import arguments


def add_parser(subparsers):
    p = subparsers.add_parser(
        "figures", help="write the paper's figures (PNG, SVG, data) and an index.html")
    p.add_argument("--out", required=True, type=arguments.output_path,
                   help="output folder (must not exist)")
    p.add_argument("--full", action="store_true",
                   help="add MNIST and CIFAR-10 (distillation, whole-model interpretation); "
                        "needs the datasets")
    p.add_argument("--data-dir", help="dataset folder (default: $TN_KERAS_DATA)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    p.set_defaults(run=run)


def run(args):
    from tn_keras.figures import FiguresConfig
    from tn_keras.figures import make_figures

    config = FiguresConfig(out=args.out, full=args.full, data_dir=args.data_dir,
                           overwrite=args.overwrite, seed=args.seed)
    records = make_figures(config)
    print(f"{len(records)} figures in {args.out}; open {args.out}/index.html")
