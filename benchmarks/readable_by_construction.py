"""Readable by construction: accuracy against the low-order share, fine-tuned with a penalty.

Each row starts from the same checkpoint, freezes its BatchNorm layers and fine-tunes it for
``--steps`` steps on the training split with the loss

    cross-entropy + weight * LowOrderPenalty(logits about the training mean image)

(`tn_keras.training.low_order`; weight 0 is the control: the same fine-tuning without the
penalty). Then it reports the test accuracy on the whole test split and, on the first
``--images`` test images, the share of orders <= 2 about the training mean image
(`tn_keras.interpret.order_share`, the model card's readability figures: pooled and median
over images) and the median cancellation ratio.

    TN_KERAS_DATA=<data> python benchmarks/readable_by_construction.py --model mnist_taylornet.e15 --weights 0,1,10,100
"""
import time

import numpy as np

import _common


def fine_tune(name, weight, data, steps, batch_size, learning_rate, nodes, seed):
    """The fine-tuned network (a fresh load of ``name``) and the fitting seconds."""
    import keras

    from tn_keras import zoo
    from tn_keras.interpret import points
    from tn_keras.training.low_order import with_low_order_penalty

    (x_train, y_train) = data
    keras.utils.set_random_seed(seed)
    model = zoo.load(name, compile=False)
    center = points.training_means(model, None, "mean")[0].astype("float32")
    trainer = with_low_order_penalty(model, center, weight, nodes)
    trainer.compile(optimizer=keras.optimizers.Adam(learning_rate, global_clipnorm=1.0),
                    loss="sparse_categorical_crossentropy")
    order = np.random.default_rng(seed).permutation(len(x_train))
    order = np.resize(order, steps * batch_size)  # whole batches, wrapping past one epoch
    start = time.perf_counter()
    trainer.fit(x_train[order], y_train[order], epochs=1, batch_size=batch_size, shuffle=False,
                verbose=0)
    return model, time.perf_counter() - start


def measure(model, test, images):
    from tn_keras import interpret

    x_test, y_test = test
    predictions = model.predict(x_test, batch_size=500, verbose=0)
    share = interpret.order_share(model, x_test[:images], about="mean", target="predicted")
    summary = share.summary(up_to=2)
    return dict(test_accuracy=float(np.mean(np.argmax(predictions, -1) == y_test)),
                share_orders_le_2=summary["share_orders_le_2"],
                median_share_orders_le_2=summary["median_share_orders_le_2"],
                median_cancellation=summary["median_cancellation"])


def main():
    p = _common.parser(__doc__)
    p.add_argument("--model", default="mnist_taylornet.e15")
    p.add_argument("--weights", default="0,1,10,100", help="comma-separated penalty weights")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=3e-4)
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--images", type=int, default=1000, help="test images for the shares")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--baseline", action="store_true",
                   help="also measure the checkpoint as shipped (no fine-tuning)")
    args = p.parse_args()

    from tn_keras import datasets
    from tn_keras import zoo

    dataset = zoo.find(args.model).manifest["dataset"]
    train, test = ((np.asarray(x, "float32"), np.asarray(y))
                   for x, y in (datasets.load(dataset, split) for split in ("train", "test")))
    rows = []

    def report(row):
        rows.append(row)
        name = "shipped" if row["weight"] is None else f"weight {row['weight']:g}"
        print(f"{name:12s} test {100 * row['test_accuracy']:.2f} %  orders <= 2: pooled "
              f"{100 * row['share_orders_le_2']:.3f} %, median image "
              f"{100 * row['median_share_orders_le_2']:.2f} %  cancellation "
              f"{row['median_cancellation']:.1f}  ({row['fit_seconds']} s)", flush=True)
        _common.write_report(args.json, dict(vars(args), results=rows))

    if args.baseline:
        report(dict(weight=None, fit_seconds=0.0,
                    **measure(zoo.load(args.model, compile=False), test, args.images)))
    for weight in (float(w) for w in args.weights.split(",")):
        model, seconds = fine_tune(args.model, weight, train, args.steps, args.batch_size,
                                   args.learning_rate, args.nodes, args.seed)
        report(dict(weight=weight, fit_seconds=round(seconds, 1),
                    **measure(model, test, args.images)))

if __name__ == "__main__":
    main()
