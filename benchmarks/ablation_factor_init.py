"""Ablation: the scale of PolyCG's factor initialiser in the CIFAR-10 Fig. S3 TaylorNet.

For each scale ``s`` the factors ``U`` start as a truncated normal of variance ``s / fan_in``
(``s = 1`` is LeCun normal, ``s = 0.1`` the library default). Reported per scale:

* the kurtosis (3 for a Gaussian) of the activations after each BatchNorm that follows a
  coarse-graining layer, at initialisation, on 256 training images: how heavy-tailed repeated
  products make the signal;
* train / held-out accuracy after a short training run (``--epochs`` on the first
  ``--train-examples`` training images, AdamW 1e-3, weight decay 0.05, global clip 1.0, batch
  128, no augmentation), held-out = the last 1,000 training images.

    TN_KERAS_DATA=/path/to/data python benchmarks/ablation_factor_init.py --scales 1.0 0.1
"""

import numpy as np

import _common  # benchmarks/_common.py: the --json option and report writer


def kurtosis(values):
    values = np.asarray(values, np.float64).ravel()
    centred = values - values.mean()
    return float(np.mean(centred**4) / np.mean(centred**2) ** 2)


def run(scale, x, y, epochs, train_examples, seed):
    import keras

    from tn_keras import zoo
    from tn_keras.layers import PolyCG

    keras.utils.set_random_seed(seed)
    model = zoo.build("cifar_taylornet")
    # Re-initialise every factor kernel at the asked scale (the same seed for all scales).
    for layer in model.layers:
        if isinstance(layer, PolyCG):
            init = keras.initializers.VarianceScaling(scale, "fan_in", "truncated_normal",
                                                      seed=seed)
            layer.factor_kernel.assign(init(layer.factor_kernel.shape))
    names = [layer.name for layer in model.layers
             if layer.name.endswith("_bn") and "cg" in layer.name] + ["logits"]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    outputs = probe(x[:256].astype("float32"), training=True)
    result = {"scale": scale, "kurtosis": {n: kurtosis(o) for n, o in zip(names, outputs)}}
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05, global_clipnorm=1.0),
        loss="sparse_categorical_crossentropy", metrics=["accuracy"],
    )
    history = model.fit(
        x[:train_examples].astype("float32"), y[:train_examples], batch_size=128,
        epochs=epochs, verbose=2,
        validation_data=(x[-1000:].astype("float32"), y[-1000:]),
    )
    result["train_accuracy"] = [float(a) for a in history.history["accuracy"]]
    result["heldout_accuracy"] = [float(a) for a in history.history["val_accuracy"]]
    return result


def main():
    parser = _common.parser(__doc__)
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir")
    args = parser.parse_args()

    from tn_keras import datasets

    x, y = datasets.load("cifar10", "train", data_dir=args.data_dir)
    results = [run(s, x, y, args.epochs, args.train_examples, args.seed) for s in args.scales]
    print("\n| factor scale | kurtosis after each CG (init) | train acc | held-out acc |")
    print("| --- | --- | --- | --- |")
    for r in results:
        kurt = ", ".join(f"{v:.1f}" for v in r["kurtosis"].values())
        print(f"| {r['scale']:g} | {kurt} | {r['train_accuracy'][-1]:.3f} | "
              f"{r['heldout_accuracy'][-1]:.3f} |")
    _common.write_report(args.json, results)


if __name__ == "__main__":
    main()
