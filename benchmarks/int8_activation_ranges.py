"""int8 top-1 agreement with Keras on real test images, per activation-range quantile.

For each shipped checkpoint: the export's graph rewrites (BatchNormalization and input
Normalization folded, as `tn_keras.export.export` does), one calibration on the export's default
500 training images, then one int8 file per quantile ``q`` of
`tn_keras.export.activation_ranges.CANDIDATE_QUANTILES` (``q = 1``: TFLite's own min/max), each
compared with the Keras model on a fixed random sample of the test split. Also reports the ``q``
the export's automatic search picks (on the calibration images, not the test images) and, for
comparison, plain int8 without the rewrites.

    TN_KERAS_DATA=/path/to/data python benchmarks/int8_activation_ranges.py \
        --models cifar_taylornet,fashion_taylornet --test-images 2000 --json out.json
"""
import json
import os
import tempfile
import time

import numpy as np

import _common  # benchmarks/_common.py: the --json option and report writer


def main(argv=None):
    p = _common.parser(__doc__, json_required=True)
    p.add_argument("--models", help="comma-separated zoo names (default: every checkpoint)")
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import tensorflow as tf

    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.export import ExportConfig
    from tn_keras.export import TFLiteModel
    from tn_keras.export import calibration
    from tn_keras.export import saved_model as saved_model_lib
    from tn_keras.export import tflite as tflite_lib
    from tn_keras.export.api import export_graph
    from tn_keras.export.api import quantise_int8

    names = args.models.split(",") if args.models else zoo.list(pretrained=True)
    results = {}
    for name in names:
        t0 = time.perf_counter()
        model = zoo.load(name, compile=False)
        dataset = zoo.info(name).dataset
        images, _ = calibration.calibration_images(model.input_shape[1:], model_name=name,
                                                   data_dir=args.data_dir)
        x, y = datasets.load(dataset, "test", args.data_dir)
        n = min(args.test_images, len(x))
        index = np.sort(np.random.default_rng(0).choice(len(x), n, replace=False))
        x, y = x[index].astype(np.float32), np.asarray(y[index])
        if x.ndim == 3:
            x = x[..., None]
        keras_top1 = model.predict(x, batch_size=256, verbose=0).argmax(-1)

        def on_test(flatbuffer):
            top1 = TFLiteModel(flatbuffer).predict(x).argmax(-1)
            return {"agreement": float(np.mean(top1 == keras_top1)),
                    "accuracy": float(np.mean(top1 == y))}

        row = {"test_images": int(n), "keras_accuracy": float(np.mean(keras_top1 == y))}
        with tempfile.TemporaryDirectory() as tmp:
            plain = os.path.join(tmp, "plain")
            saved_model_lib.write_saved_model(model, plain, batch_size=1)
            row["min_max_without_folding"] = on_test(
                tflite_lib.convert_saved_model(plain, "int8", images))
            rewritten = os.path.join(tmp, "rewritten")
            config = ExportConfig(format="tflite_int8")  # the export's defaults
            graph_model, _, pixel_tensors = export_graph(model, config)
            saved_model_lib.write_saved_model(graph_model, rewritten, batch_size=1)
            ranges = tflite_lib.calibrate_int8(rewritten, images, pixel_tensors=pixel_tensors)
            row["per_quantile"] = {str(q): on_test(ranges.quantise(q, tf.int8, tf.int8))
                                   for q in ranges.quantiles}
            _, record = quantise_int8(model, None, images, config.activation_quantile,
                                      ranges=ranges)
        chosen = record["quantile"]
        row["auto"] = {"quantile": chosen, "on_calibration_images": record["candidates"],
                       **row["per_quantile"][str(chosen)]}
        row["seconds"] = time.perf_counter() - t0
        results[name] = row
        print(name, json.dumps({k: row[k] for k in ("keras_accuracy", "min_max_without_folding",
                                                     "auto")}), flush=True)
    _common.write_report(args.json, results)


if __name__ == "__main__":
    main()
