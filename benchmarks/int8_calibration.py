"""int8 agreement with Keras when calibrating on distilled levels instead of real images.

For one zoo model: the int8 export (`tn_keras.export.export`, everything at its defaults but the
calibration images) calibrated on (a) the default 500 real training images, and for each
requested level of a distilled export (`tn-keras distill NAME --out DIR`), (b) that level's
images and (c) as many random real training images (seed 0), the control: a level is worth
shipping as a calibration set if it does better than real images of the same count. Each file
is compared with the Keras model on a fixed random sample of the test split.

    tn-keras distill fashion_taylornet --per-class 320 --levels 6 --out /tmp/fashion_levels
    TN_KERAS_DATA=/path/to/data python benchmarks/int8_calibration.py --model fashion_taylornet \\
        --distilled /tmp/fashion_levels --levels 3,5,6 --test-images 10000 --json out.json
"""
import json
import os
import tempfile

import numpy as np

import _common  # benchmarks/_common.py: the --json option and report writer


def main(argv=None):
    p = _common.parser(__doc__, json_required=True)
    p.add_argument("--model", required=True, help="zoo name")
    p.add_argument("--distilled", required=True, help="a distilled export folder")
    p.add_argument("--levels", required=True, help="comma-separated level numbers")
    p.add_argument("--test-images", type=int, default=10000)
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.export import TFLiteModel
    from tn_keras.export import ExportConfig
    from tn_keras.export import export

    model = zoo.load(args.model, compile=False)
    dataset = zoo.info(args.model).dataset
    shape = tuple(model.input_shape[1:])
    x, y = datasets.load(dataset, "test", args.data_dir)
    n = min(args.test_images, len(x))
    index = np.sort(np.random.default_rng(0).choice(len(x), n, replace=False))
    x, y = x[index].astype(np.float32).reshape((n,) + shape), np.asarray(y[index])
    keras_top1 = model.predict(x, batch_size=256, verbose=0).argmax(-1)
    x_train, _ = datasets.load(dataset, "train", args.data_dir)

    def measure(label, representative_data):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.tflite")
            manifest = export(model, path, ExportConfig(
                format="tflite_int8", model_name=args.model, data_dir=args.data_dir,
                representative_data=representative_data))
            top1 = TFLiteModel(path).predict(x).argmax(-1)
        calibration = manifest["quantization"]["calibration"]
        row = {"calibration": calibration["images_from"], "images": calibration["num_images"],
               "quantile": calibration["activation_ranges"]["quantile"],
               "agreement": float(np.mean(top1 == keras_top1)),
               "accuracy": float(np.mean(top1 == y))}
        print(f"{label}: {json.dumps(row)}", flush=True)
        return row

    results = {"model": args.model, "test_images": int(n),
               "keras_accuracy": float(np.mean(keras_top1 == y)),
               "default": measure("default", None), "levels": {}}
    for level in (int(a) for a in args.levels.split(",")):
        level_dir = os.path.join(args.distilled, f"level_{level}")
        distilled = measure(f"level {level}", level_dir)
        count = distilled["images"]
        pick = np.sort(np.random.default_rng(0).choice(len(x_train), count, replace=False))
        real = measure(f"{count} random real", x_train[pick].reshape((count,) + shape))
        results["levels"][str(level)] = {"distilled": distilled, "random_real": real}
    _common.write_report(args.json, results)


if __name__ == "__main__":
    main()
