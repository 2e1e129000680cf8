"""Fine-tuning recipes compared: a zoo body with a new head, trained on a few hundred images.

Each recipe starts from the same checkpoint (`zoo.load(NAME, num_classes=K, ...)`), trains on
the first ``--train`` images of the chosen classes of ``--dataset``'s training split (labels
renumbered 0..K-1) and is evaluated on ``--test`` images of the same classes of its test split:

    head         freeze_body=True: only the new Dense head trains; BatchNorm in inference mode
    body         the whole model trains; BatchNorm in training mode (batch statistics, moving
                 statistics updated)
    body_bn_frozen  the whole model trains except the BatchNorm layers, which stay in inference
                 mode with the pretrained statistics

    TN_KERAS_DATA=<data> python benchmarks/fine_tune.py --dataset mnist --classes 5,6,7,8,9
"""
import time

import numpy as np

import _common

RECIPES = ("head", "body", "body_bn_frozen")


def _subset(x, y, classes, limit):
    keep = np.isin(y, classes)
    x, y = x[keep][:limit], y[keep][:limit]
    return x.astype("float32"), np.searchsorted(classes, y)


def run_recipe(name, recipe, learning_rate, data, epochs, batch_size, seed):
    import keras

    from tn_keras import zoo
    from tn_keras.zoo import api

    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(seed)
    num_classes = int(y_train.max()) + 1
    model = zoo.load(name, num_classes=num_classes, freeze_body=recipe == "head")
    if recipe == "body_bn_frozen":
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.trainable = False
    if learning_rate is not None or recipe == "body_bn_frozen":
        api.compile_for_fine_tuning(model, learning_rate)
    start = time.perf_counter()
    history = model.fit(x_train, y_train, epochs=epochs, batch_size=batch_size, verbose=0,
                        shuffle=True)
    seconds = time.perf_counter() - start
    _, accuracy = model.evaluate(x_test, y_test, batch_size=500, verbose=0)
    return dict(recipe=recipe, learning_rate=float(model.optimizer.learning_rate.numpy()),
                steps=int(epochs * np.ceil(len(x_train) / batch_size)),
                final_train_accuracy=float(history.history["accuracy"][-1]),
                test_accuracy=float(accuracy), fit_seconds=round(seconds, 1))


def main():
    p = _common.parser(__doc__)
    p.add_argument("--model", default="mnist_taylornet")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--classes", default="5,6,7,8,9", help="comma-separated original labels")
    p.add_argument("--train", type=int, default=300, help="training images")
    p.add_argument("--test", type=int, default=2000, help="test images")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rates", default="default",
                   help="comma-separated; 'default' is compile_for_fine_tuning's choice")
    p.add_argument("--recipes", default=",".join(RECIPES))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    from tn_keras import datasets

    classes = np.array(sorted(int(c) for c in args.classes.split(",")))
    data = (_subset(*datasets.load(args.dataset, "train"), classes, args.train),
            _subset(*datasets.load(args.dataset, "test"), classes, args.test))
    rates = [None if r == "default" else float(r) for r in args.learning_rates.split(",")]
    rows = []
    for recipe in args.recipes.split(","):
        for rate in rates:
            row = run_recipe(args.model, recipe, rate, data, args.epochs, args.batch_size,
                             args.seed)
            rows.append(row)
            print(f"{recipe:15s} lr {row['learning_rate']:.0e}  {row['steps']} steps  train "
                  f"{100 * row['final_train_accuracy']:.1f} %  test "
                  f"{100 * row['test_accuracy']:.2f} %  ({row['fit_seconds']} s)", flush=True)
    _common.write_report(args.json, dict(vars(args), results=rows))


if __name__ == "__main__":
    main()
