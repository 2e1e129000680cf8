"""``tn-keras quickstart``: the README's main job, offline, in a couple of minutes.

Loads the shipped ``digits_taylornet`` checkpoint (sha256-verified), evaluates it on the real
8x8 digits test split (scikit-learn ships the data, so nothing is downloaded), then trains a
fresh one for a few epochs with the same recipe and evaluates that too.
"""
import tempfile

from tn_keras.cli import arguments


def add_parser(subparsers):
    p = subparsers.add_parser("quickstart", help="load, evaluate and retrain digits_taylornet")
    p.add_argument("--epochs", type=arguments.positive_int, default=15,
                   help="epochs of the fresh run")
    p.add_argument("--seed", type=arguments.non_negative_int, default=0)
    p.set_defaults(run=run)


def run(args):
    from tn_keras import zoo
    from tn_keras.training import evaluate
    from tn_keras.training import train

    name = "digits_taylornet"
    record = zoo.info(name)
    print(f"{name}: {record.description}")
    print(f"  {record.parameters:,} parameters, {record.macs_per_image:,} MACs per image")
    model = zoo.load(name, compile=False)
    shipped = evaluate(model, record.dataset)["test"]
    print(f"shipped checkpoint ({record.checkpoint_sha256[:12]}...): test accuracy "
          f"{shipped['accuracy']:.4f} on {shipped['examples']} real test images "
          f"(manifest: {record.test_accuracy:.4f})")
    with tempfile.TemporaryDirectory() as out:
        _, manifest = train(name, epochs=args.epochs, out=out, seed=args.seed, verbose=0)
    fresh = manifest["metrics"]["test_accuracy"]
    print(f"fresh {args.epochs}-epoch run (seed {args.seed}, "
          f"{manifest['training']['wall_time_seconds']:.1f} s): test accuracy {fresh:.4f} "
          f"(the shipped checkpoint trained {record.recipe['epochs']} epochs)")
