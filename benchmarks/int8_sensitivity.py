"""Where int8 loses: top-1 agreement with Keras when one layer's ops stay in float.

For each model: the export's graph rewrites (`tn_keras.export.api.export_graph`), calibration
on the export's default 500 training images and the activation quantile the export chooses
(`quantise_int8`). Then one file per layer, in which the ops whose TFLite tensors carry that
Keras layer's name are left in float by the MLIR quantiser's denylist and everything else is
int8 (float input and output, so that every file has the same interface), compared with the
Keras model on a fixed random sample of the test split. A layer whose float copy gains much is
where int8 loses. The denylist is by op name, and ops the converter renames (the SPLIT of a
fused polynomial convolution) stay int8: gains are lower bounds.

    TN_KERAS_DATA=/path/to/data python benchmarks/int8_sensitivity.py \\
        --models cifar_convnet_relu --no-fold-normalization --test-images 3000 --json out.json
"""
import json
import os
import re
import tempfile
import time

import numpy as np

import _common  # benchmarks/_common.py: the --json option and report writer


def main(argv=None):
    p = _common.parser(__doc__, json_required=True)
    p.add_argument("--models", required=True, help="comma-separated zoo names")
    p.add_argument("--test-images", type=int, default=2000)
    p.add_argument("--no-fold-normalization", dest="fold_normalization", action="store_false",
                   help="study the graph without the input Normalization fold")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    import keras
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize
    from tensorflow.lite.tools import flatbuffer_utils

    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.export import ExportConfig
    from tn_keras.export import TFLiteModel
    from tn_keras.export import calibration
    from tn_keras.export import saved_model as saved_model_lib
    from tn_keras.export import tflite as tflite_lib
    from tn_keras.export.api import export_graph
    from tn_keras.export.api import quantise_int8

    results = {}
    for name in args.models.split(","):
        t0 = time.perf_counter()
        model = zoo.load(name, compile=False)
        images, _ = calibration.calibration_images(model.input_shape[1:], model_name=name,
                                                   data_dir=args.data_dir)
        x, _ = datasets.load(zoo.info(name).dataset, "test", args.data_dir)
        n = min(args.test_images, len(x))
        index = np.sort(np.random.default_rng(0).choice(len(x), n, replace=False))
        x = x[index].astype(np.float32).reshape((n,) + tuple(model.input_shape[1:]))
        keras_top1 = model.predict(x, batch_size=256, verbose=0).argmax(-1)

        config = ExportConfig(format="tflite_int8", fold_normalization=args.fold_normalization)
        graph_model, _, pixel_tensors = export_graph(model, config)
        with tempfile.TemporaryDirectory() as tmp:
            saved_model_lib.write_saved_model(graph_model, tmp + "/sm", batch_size=1)
            ranges = tflite_lib.calibrate_int8(tmp + "/sm", images, pixel_tensors=pixel_tensors)
        _, record = quantise_int8(model, None, images, config.activation_quantile,
                                  ranges=ranges)
        quantile = record["quantile"]
        # The calibrated float model with the chosen ranges written in.
        content = ranges.calibrated_at(quantile)
        names = [t.name.decode() for t in flatbuffer_utils.read_model_from_bytearray(
            bytearray(content)).subgraphs[0].tensors]

        def agreement(float_layers=()):
            pattern = re.compile("|".join(rf"/{re.escape(layer)}_\d+/" for layer in float_layers))
            nodes = [t for t in names if float_layers and pattern.search(t)]
            flatbuffer = mlir_quantize(content, False, input_data_type=tf.float32,
                                       output_data_type=tf.float32, denylisted_nodes=nodes)
            top1 = TFLiteModel(bytes(flatbuffer)).predict(x).argmax(-1)
            return float(np.mean(top1 == keras_top1)), len(nodes)

        layers = [layer.name for layer in graph_model.layers
                  if not isinstance(layer, (keras.layers.InputLayer,
                                            keras.layers.BatchNormalization,
                                            keras.layers.Flatten))]
        row = {"test_images": int(n), "quantile": quantile,
               "fold_normalization": args.fold_normalization}
        row["all_int8"], _ = agreement()
        row["one_layer_float"] = {}
        for layer in layers:
            value, count = agreement((layer,))
            row["one_layer_float"][layer] = {"agreement": value, "float_tensors": count}
            print(f"{name}: {layer} in float ({count} tensors): {value:.4f} "
                  f"(all int8: {row['all_int8']:.4f})", flush=True)
        row["all_listed_float"], _ = agreement(layers)
        row["seconds"] = time.perf_counter() - t0
        results[name] = row
        print(name, json.dumps({k: row[k] for k in ("quantile", "all_int8", "all_listed_float")}),
              flush=True)
    _common.write_report(args.json, results)


if __name__ == "__main__":
    main()
