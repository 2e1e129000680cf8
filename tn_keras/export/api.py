"""`export`: one entry point for every deployment format, with a parity check and a manifest."""
import hashlib
import os
import warnings
from typing import Optional, Union

import keras
import numpy as np

from tn_keras.export import activation_ranges
from tn_keras.export import calibration
from tn_keras.export import config as config_lib
from tn_keras.export import formats as formats_lib
from tn_keras.export import manifest as manifest_lib
from tn_keras.export import saved_model as saved_model_lib
from tn_keras.export import staging
from tn_keras.export import tflite as tflite_lib
from tn_keras.export.config import ExportConfig
from tn_keras.export.config import config_from
from tn_keras.export.errors import ParityError
from tn_keras.export.folding import fold_batch_normalization
from tn_keras.export.input_folding import fold_input_normalization
from tn_keras.export.manifest import ExportedFile
from tn_keras.export.parity import max_abs_difference
from tn_keras.export.runtime import TFLiteModel
from tn_keras.export.signature import VALUE_RANGE
from tn_keras.export.signature import image_input_shape
from tn_keras.utils import locks
from tn_keras.utils.files import check_can_write
from tn_keras.utils.write_errors import refused_writes

# Tolerances of the check run right after export, on a few random 0..255 images (real test
# images for a float TFLite export of a zoo model whose dataset is here). The SavedModel
# runs the very same TF graph (only op scheduling may differ); the float TFLite file runs other
# kernels (XNNPACK), so it gets the tolerance the tests assert.
SAVED_MODEL_ATOL = 1e-5
TFLITE_ATOL = 1e-4
PARITY_IMAGES = 4
# A float TFLite export of a zoo model is checked on this many real test images instead, in
# one batch, when its dataset is on this machine: the inputs it will see, and the resized
# dynamic batch dimension with them.
REAL_PARITY_IMAGES = 256
# Quantised outputs differ from float ones by design: record their top-1 agreement on (at most this
# many of) the calibration images instead of failing.
INT8_PARITY_IMAGES = 200
# Below this top-1 agreement on the calibration images a quantised export is almost surely
# broken (not merely noisy): warn, and point to the finer int16x8 mode.
QUANTISED_AGREEMENT_WARNING = 0.95


def __getattr__(name):
    if name == "FORMATS":  # re-exported: the registry's names (`tn_keras.export.formats`)
        return config_lib.FORMATS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def export(model: keras.Model, path: Union[str, os.PathLike],
           config: Union[ExportConfig, str, None] = None, **keywords) -> dict:
    """Export a Keras image classifier for deployment; returns the manifest written beside it.

    ``export(model, "m.tflite", ExportConfig(format="tflite", model_name="digits_taylornet"))``.
    Keywords are `ExportConfig` fields applied over ``config`` (``format="tflite"``); a format
    name in place of ``config`` is the old positional ``format``; ``source=``, the old name of
    ``model_name``, still works with a DeprecationWarning. Every format takes raw pixels 0..255
    (preprocessing is inside the model); run a ``.tflite`` file with `TFLiteModel`.

    Args:
        model: a single-input Keras model, input ``(batch, H, W, C)`` (TFLite: H, W, C known).
        path: the output folder (saved_model) or file, built in a staging folder beside it and
            moved in place when complete (`tn_keras.export.staging`: an export completes, or
            the previous one stays), locked meanwhile (`tn_keras.utils.locks`).
        config: an `ExportConfig` (default ``ExportConfig()``) or a format name.

    Returns:
        The manifest dict, also written to disk (``provenance``: model name, checkpoint, sha256).

    Raises:
        TypeError: a keyword that is no `ExportConfig` field (the message lists them).
        ValueError: a bad field; not a single image input; an unknown input size for TFLite;
            quantisation without calibration data.
        ParityError, UnsupportedOpsError: the export differs from Keras; it needs Flex ops.
        FileExistsError, OutputLockedError: ``path`` exists (and not ``overwrite``), or is not
            an export of tn_keras (refused even with ``overwrite``); another export is
            writing it.
    """
    config = config_from(config, keywords)
    path = os.fspath(path)
    image_shape = _check_target(model, path, config)
    class_names = _class_names(model, config.model_name)
    with locks.locked(path, f"tn_keras.export({config.format!r})"):
        staging.recover(path)  # what a killed export of this path left
        check_can_write(path, config.overwrite)
        staging.check_replaceable(path, config.writes_folder)  # again: now under the lock
        # A write the file system refuses (a full disk: TensorFlow's ResourceExhaustedError,
        # an OSError from the flatbuffer or manifest) is one WriteRefusedError naming ``path``;
        # the staging folder is deleted and the previous export was never touched.
        intact = ("the previous export is intact" if os.path.lexists(path)
                  else "nothing was left behind")
        with refused_writes(path, intact=intact, paths=(path,)):
            with staging.staged(path, folder_export=config.writes_folder) as stage:
                with refused_writes(path, intact=intact, paths=(path, stage.dir)):
                    exported = _write(model, stage, image_shape, config, os.path.basename(path))
                    manifest = manifest_lib.build_manifest(config, exported, model.name,
                                                           class_names)
                    manifest_lib.write_manifest(stage.result_manifest, manifest)
                    stage.commit()
    return manifest


def _check_target(model, path, config) -> tuple:
    """Fail before any slow work: an existing output, the wrong kind of thing at ``path``, or a
    model that is not an image classifier. Returns the per-image input shape."""
    check_can_write(path, config.overwrite)
    if os.path.exists(path) and os.path.isdir(path) != config.writes_folder:
        kind = "folder" if os.path.isdir(path) else "file"
        raise ValueError(f"{path} is an existing {kind}; format={config.format!r} writes a "
                         f"{'folder' if config.writes_folder else 'file'} there.")
    return image_input_shape(model,
                             require_static=config.export_format.static_image_shape)


def _write(model, stage, image_shape, config, file_name) -> ExportedFile:
    """Write the export into the staging folder ``stage`` with the format's registered writer
    (`tn_keras.export.formats`); ``file_name``: its final name."""
    writer = config.export_format.load_writer()
    exported = writer(model, stage, image_shape, config, file_name)
    if not isinstance(exported, ExportedFile):
        raise TypeError(f"The writer of format {config.format!r} returned "
                        f"{type(exported).__name__}, not an ExportedFile.")
    return exported


def write_saved_model_export(model, stage, image_shape, config, file_name) -> ExportedFile:
    """The ``saved_model`` format's writer: the folder ``stage.result``."""
    return _export_saved_model(model, stage.result, image_shape, config.verify)


def write_onnx_export(model, stage, image_shape, config, file_name) -> ExportedFile:
    """The ``onnx`` format's writer: the file ``stage.result``, checked as float TFLite is."""
    from tn_keras.export import onnx as onnx_lib

    record = onnx_lib.export_onnx(
        model, stage.result, image_shape, overwrite=True, atol=TFLITE_ATOL,
        input_dtype=config.input_dtype,
        parity_inputs=_random_images(image_shape, PARITY_IMAGES) if config.verify else None,
        output_spec=_output_spec(model, (None, model.output_shape[-1]), "float32"))
    return ExportedFile(**dict(record, file=file_name))


def _class_names(model, model_name) -> Optional[list]:
    if model_name is None:
        return None
    from tn_keras import datasets
    from tn_keras.zoo.registry import get_spec

    names = list(datasets.info(get_spec(model_name).dataset).class_names)
    # A zoo architecture rebuilt with other num_classes has no dataset class names.
    return names if len(names) == model.output_shape[-1] else None


def _output_spec(model, shape, dtype, quantization=None) -> dict:
    last = model.layers[-1]
    activation = getattr(getattr(last, "activation", None), "__name__", None)
    spec = {
        "shape": list(shape),
        "dtype": str(dtype),
        "values": "softmax class probabilities" if activation == "softmax" else "model outputs",
    }
    if quantization is not None:
        spec["quantization"] = quantization
    return spec


def _random_images(image_shape, n, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n,) + tuple(image_shape)).astype(
        np.float32)


def _keras_outputs(model, x) -> np.ndarray:
    return np.asarray(model(x, training=False))


def _export_saved_model(model, folder, image_shape, verify) -> ExportedFile:
    """Write the SavedModel into the fresh ``folder`` (a staging folder) and check it."""
    parity = None
    saved_model_lib.write_saved_model(model, folder, batch_size=None)
    if verify:
        shape = tuple(32 if d is None else d for d in image_shape)
        x = _random_images(shape, PARITY_IMAGES)
        got = saved_model_lib.saved_model_predict(saved_model_lib.load_saved_model(folder), x)
        diff = max_abs_difference(got, _keras_outputs(model, x))
        if not diff <= SAVED_MODEL_ATOL:
            raise ParityError(f"The SavedModel's outputs differ from the Keras model's by "
                              f"{diff:.3g} (tolerance {SAVED_MODEL_ATOL}); not written.")
        parity = {"images": PARITY_IMAGES, "inputs": "uniform random 0..255, seed 0",
                  "max_abs_diff": diff, "atol": SAVED_MODEL_ATOL}
    digest, files = manifest_lib.sha256_tree(folder)
    size = sum(os.path.getsize(os.path.join(folder, rel)) for rel in files)
    return ExportedFile(
        file=".",
        sha256=digest,
        size_bytes=size,
        files=files,
        input_spec={"name": saved_model_lib.input_name(model),
                    "shape": [None] + list(image_shape), "dtype": "float32", "layout": "NHWC",
                    "value_range": VALUE_RANGE, "endpoint": saved_model_lib.ENDPOINT,
                    "signature": "serving_default"},
        output_spec=_output_spec(model, (None, model.output_shape[-1]), "float32"),
        parity=parity,
    )


def write_tflite_export(model, stage, image_shape, config, file_name) -> ExportedFile:
    """The TFLite formats' writer: the flatbuffer ``stage.result`` (``file_name`` is its final
    name, for the manifest), using ``stage.work`` for the intermediate SavedModel. The
    converter's mode is the format's ``quantisation`` ("float" when None)."""
    mode = _tflite_mode(config.format)
    images, calibration_record = None, None
    if config.quantised:
        images, calibration_record = calibration.calibration_images(
            image_shape, config.representative_data, config.model_name, config.data_dir,
            format=config.format)
    graph_model, transforms, pixel_tensors = export_graph(model, config)
    folder = os.path.join(stage.work, "saved_model")
    # A dynamic batch: the flatbuffer's input signature is (-1, H, W, C), so a runtime may
    # resize it to any batch (a static batch of one cannot be resized: LiteRT's reshapes
    # keep the traced 1).
    saved_model_lib.write_saved_model(graph_model, folder, batch_size=None, static_image=True)
    if mode == "int8":
        flatbuffer, ranges_record = quantise_int8(model, folder, images,
                                                  config.activation_quantile, pixel_tensors)
        calibration_record = dict(calibration_record, activation_ranges=ranges_record)
    else:
        flatbuffer = tflite_lib.convert_saved_model(folder, mode=mode,
                                                    representative_data=images)
    runtime = TFLiteModel(flatbuffer)
    parity = (_tflite_parity(model, runtime, config, image_shape, images)
              if config.verify else None)
    with open(stage.result, "wb") as f:
        f.write(flatbuffer)
        f.flush()
        os.fsync(f.fileno())
    return _tflite_record(model, flatbuffer, runtime, mode, calibration_record,
                          dict(file=file_name, parity=parity, graph_transforms=transforms))


def _tflite_record(model, flatbuffer, runtime, mode, calibration_record, known) -> ExportedFile:
    """The manifest record of a flatbuffer; ``known``: the entries its writer already has."""
    quantization, input_quant, output_quant = _tflite_quantization(runtime, mode,
                                                                   calibration_record)
    input_spec = {"name": saved_model_lib.input_name(model),
                  "shape": list(runtime.input_shape), "dtype": str(runtime.input_dtype),
                  "layout": "NHWC", "value_range": VALUE_RANGE}
    if input_quant is not None:
        input_spec["quantization"] = input_quant
    return ExportedFile(
        # Hash the bytes written, not the path (which another process could replace).
        sha256=hashlib.sha256(flatbuffer).hexdigest(),
        size_bytes=len(flatbuffer),
        input_spec=input_spec,
        output_spec=_output_spec(model, runtime.output_shape, runtime.output_dtype,
                                 output_quant),
        quantization=quantization,
        ops=tflite_lib.op_names(flatbuffer),
        **known,
    )


def _tflite_parity(model, runtime, config, image_shape, images) -> dict:
    """Float: max difference on real test images of a zoo model's dataset when they are on
    this machine, else on random ones (`ParityError` beyond `TFLITE_ATOL`).
    Quantised: top-1 agreement on the calibration images (a warning below 95 %)."""
    format = config.format
    if _tflite_mode(format) == "float":
        real = calibration.real_test_images(config.model_name, image_shape, REAL_PARITY_IMAGES,
                                            config.data_dir)
        x, source = real or (_random_images(image_shape, PARITY_IMAGES),
                             "uniform random 0..255, seed 0")
        diff = max_abs_difference(runtime.predict(x), _keras_outputs(model, x))
        if not diff <= TFLITE_ATOL:
            raise ParityError(f"The TFLite model's outputs differ from the Keras model's by "
                              f"{diff:.3g} on {source} (tolerance {TFLITE_ATOL}); not written.")
        return {"images": int(len(x)), "inputs": source, "max_abs_diff": diff,
                "atol": TFLITE_ATOL}
    x = images[:INT8_PARITY_IMAGES]
    got, want = runtime.predict(x), _keras_outputs(model, x)
    parity = {"images": int(len(x)), "inputs": "the first calibration images",
              "top1_agreement": float(np.mean(got.argmax(-1) == want.argmax(-1))),
              "max_abs_diff": max_abs_difference(got, want)}
    if parity["top1_agreement"] < QUANTISED_AGREEMENT_WARNING:
        hint = (" Try format='tflite_int16x8' (int16 activations)."
                if format == "tflite_int8" else "")
        warnings.warn(
            f"The {format} export of {model.name!r} agrees with the Keras model's top-1 on "
            f"only {parity['top1_agreement']:.1%} of {len(x)} calibration images: "
            f"quantisation loses too much for this model.{hint}", RuntimeWarning,
            stacklevel=4)  # export()'s caller
    return parity


def _tflite_mode(format) -> str:
    """The TFLite converter's mode of ``format``: its quantisation, or "float"."""
    return formats_lib.get_format(format).quantisation or "float"


def _tflite_quantization(runtime, mode, calibration_record):
    """``(quantization record, input (scale, zero_point), output (scale, zero_point))``."""
    quantization = None
    input_quant = output_quant = None
    if mode == "int16x8":
        quantization = {
            "scheme": "16x8 (EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8): int8 "
                      "weights, int16 activations, float32 input and output",
            "calibration": calibration_record,
        }
    if mode == "int8":
        input_quant = dict(zip(("scale", "zero_point"), runtime.input_quantization))
        output_quant = dict(zip(("scale", "zero_point"), runtime.output_quantization))
        quantization = {
            "scheme": "full integer (TFLITE_BUILTINS_INT8): int8 weights and activations, "
                      "int8 input and output",
            "input": input_quant,
            "output": output_quant,
            "calibration": calibration_record,
            "dequantize": "real = scale * (q - zero_point)",
        }
    return quantization, input_quant, output_quant


def export_graph(model: keras.Model, config: Optional[ExportConfig] = None):
    """The model the TFLite converter sees, after the export's exact graph rewrites
    (``config.fold_batch_norm``, ``config.fold_normalization``; default `ExportConfig()`).

    Returns:
        ``(graph_model, transforms, pixel_tensors)``: the rewritten model, a record of each
        rewrite (for the manifest), and the name fragments of tensors that hold raw pixels
        (see `activation_ranges.ActivationRanges`).
    """
    config = config or ExportConfig()
    graph_model, folds = (fold_batch_normalization(model) if config.fold_batch_norm
                          else (model, []))
    transforms = [dict(fold, transform="batch_normalization_folded") for fold in folds]
    if config.fold_normalization:
        graph_model, folds = fold_input_normalization(graph_model)
        transforms += [dict(fold, transform="input_normalization_folded") for fold in folds]
    pixel_tensors = [fold["padding_layer"] for fold in transforms if "padding_layer" in fold]
    return graph_model, transforms, pixel_tensors


def quantise_int8(model, saved_model_dir, images, activation_quantile="auto",
                  pixel_tensors=(), ranges=None):
    """The int8 flatbuffer of ``saved_model_dir`` with quantile activation ranges.

    ``model`` is the Keras model the SavedModel was written from (before or after the graph
    rewrites: they compute the same function); ``"auto"`` compares every candidate quantile
    with its outputs on ``images``. ``ranges``: an `activation_ranges.ActivationRanges`
    already calibrated on ``images`` (then ``saved_model_dir`` and ``pixel_tensors`` are not
    used), for callers that also study each quantile.

    Returns:
        ``(flatbuffer, record)``: the record says how the ranges were chosen (for the manifest).
    """
    import tensorflow as tf

    quantiles = (activation_ranges.CANDIDATE_QUANTILES if activation_quantile == "auto"
                 else (float(activation_quantile),))
    if ranges is None:
        ranges = tflite_lib.calibrate_int8(saved_model_dir, images, quantiles, pixel_tensors)
    record = {"method": "quantiles of each activation on the calibration images, "
                        "[quantile(1 - q), quantile(q)] widened to include 0",
              "quantile": quantiles[0]}
    if activation_quantile == "auto":
        want = _keras_outputs(model, images)

        def evaluate(flatbuffer):
            got = TFLiteModel(flatbuffer).predict(images)
            return {"mean_squared_error": np.mean(np.sum((got - want) ** 2, axis=-1)),
                    "top1_agreement": np.mean(got.argmax(-1) == want.argmax(-1))}

        quantile, flatbuffer, table = activation_ranges.search_quantile(
            ranges, evaluate, tf.int8, tf.int8, criterion="mean_squared_error")
        record.update(quantile=quantile, search="least mean squared difference between the "
                      "int8 and Keras output vectors on the calibration images",
                      candidates=table)
    else:
        flatbuffer = ranges.quantise(quantiles[0], tf.int8, tf.int8)
    return tflite_lib.check_builtin_ops(flatbuffer), record
