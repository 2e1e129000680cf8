"""``tn-keras list [PATTERN] [--pretrained] [--table] [--recipes]``: the registered models,
or the registered training recipes."""


def add_parser(subparsers):
    p = subparsers.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern (default: all)")
    p.add_argument("--pretrained", action="store_true", help="only models with a checkpoint")
    p.add_argument("--table", action="store_true",
                   help="a Markdown table of every figure the checkpoints' manifests record")
    p.add_argument("--recipes", action="store_true",
                   help="the registered training recipes (for tn-keras train --recipe) and "
                        "what each sets")
    p.set_defaults(run=run)


def recipe_lines(pattern="*"):
    """One line per registered recipe matching ``pattern``: its name and its fields."""
    import dataclasses
    import fnmatch

    from tn_keras import zoo

    lines = []
    for name in zoo.recipe_names():
        if fnmatch.fnmatchcase(name, pattern):
            fields = ", ".join(f"{k}={v!r}" for k, v in dataclasses.asdict(
                zoo.get_recipe(name)).items())
            lines.append(f"{name}: {fields}")
    return lines


def _percent(value):
    return "—" if value is None else f"{100 * value:.2f} %"


def markdown_table(names):
    """The README's zoo table, every figure read from the architecture or its manifest."""
    from tn_keras import zoo

    rows = ["| name | dataset | parameters | MACs / image | test accuracy | lossless test "
            "(CIFAR) | training time | command |", "|" + " --- |" * 8]
    for name in names:
        record = zoo.info(name)
        minutes = ("not trained yet" if record.training_time_seconds is None
                   else f"{record.training_time_seconds / 60:.1f} min")
        command = f"`{record.command}`" if record.command else f"`tn-keras train {name}`"
        rows.append(
            f"| `{name}` | {record.dataset} | {record.parameters:,} | "
            f"{record.macs_per_image:,} | {_percent(record.test_accuracy)} | "
            f"{_percent(record.metrics.get('test_lossless_accuracy'))} | {minutes} | "
            f"{command} |"
        )
    return "\n".join(rows)


def run(args):
    import sys

    if args.recipes:
        print("\n".join(recipe_lines(args.pattern)))
        return
    pretrained = True if args.pretrained else None
    zoo_module = sys.modules.get("tn_keras.zoo")
    if args.table or hasattr(zoo_module, "list_models"):
        from tn_keras import zoo

        names = zoo.list(args.pattern, pretrained=pretrained)  # with the user's registrations
    else:
        # The zoo is not loaded, so only its own architectures exist: read them from its
        # source, without importing Keras (the console script runs this under light imports).
        from tn_keras.zoo import api

        names = api.list_builtin(args.pattern, pretrained=pretrained)
    if args.table:
        print(markdown_table(names))
    else:
        for name in names:
            print(name)
