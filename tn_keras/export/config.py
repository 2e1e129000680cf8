"""Every choice and default of `tn_keras.export.export`, in one place.

`ExportConfig` is what an export does; the library, the CLI (``tn-keras export``) and the
benchmarks build it instead of spelling its fields out again. This module imports neither Keras
nor TensorFlow, so the CLI can show ``tn-keras export --help`` (and its format choices) without
loading them.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Union

from tn_keras.export import formats as formats_lib
from tn_keras.utils.options import with_keywords

#: ``input_dtype`` choices of the ONNX graph: raw pixels as float32 (any value), or as uint8
#: (what image files decode to; the graph casts them to float32 first).
ONNX_INPUT_DTYPES = ("float32", "uint8")
DEFAULT_FORMAT = formats_lib.names()[0]  # "saved_model"
# ``FORMATS`` (the deployment formats, in the order the CLI lists them; the first is the
# default), ``FOLDER_FORMATS`` (written as a folder; every other one is a single file) and
# ``QUANTISED_FORMATS`` (activations quantised, so calibration images are needed) are tuples
# derived from the registry (`tn_keras.export.formats`) on each look-up: see `__getattr__`.
_DERIVED_NAMES = {"FORMATS": "all", "FOLDER_FORMATS": "folder", "QUANTISED_FORMATS": "quantised"}
#: ``tflite_int8``'s activation ranges: "auto" searches `activation_ranges.CANDIDATE_QUANTILES`.
DEFAULT_ACTIVATION_QUANTILE = "auto"

#: Old keyword names of `export` that map to a renamed field.
LEGACY_KEYWORDS = {"source": "model_name"}


def __getattr__(name):
    """``FORMATS``, ``FOLDER_FORMATS``, ``QUANTISED_FORMATS``: the registry's names now (the same
    tuple object until a format is registered or removed)."""
    if name in _DERIVED_NAMES:
        return formats_lib.names(_DERIVED_NAMES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """How to export a model, and what to record about where it came from.

    Checked when made (a bad field is a ValueError naming it; an unknown ``model_name`` fails
    with the zoo's suggestions), so an `ExportConfig` that exists is valid. No `resolved`: no
    default depends on the call.

    Attributes:
        format: one of `FORMATS` (the registered `tn_keras.export.formats.ExportFormat` names):
            ``"saved_model"``: a TensorFlow SavedModel folder (endpoint ``serve``, signature
            ``serving_default``), dynamic batch; ``manifest.json`` inside the folder.
            ``"tflite"``: a float32 LiteRT/TFLite flatbuffer, dynamic batch, builtin ops only;
            manifest ``<path>.json`` (so for every format but saved_model).
            ``"tflite_int8"``: full-integer quantised flatbuffer (int8 weights, activations,
            input and output), calibrated on raw training images.
            ``"tflite_int16x8"``: int16 activations, int8 weights, float input and output
            (TFLite's experimental 16x8 mode), calibrated like int8: for deep polynomial
            networks where int8 activations lose too much (docs/deployment.md); about the
            int8 size, but LiteRT runs it on reference kernels (no XNNPACK), so it is slower.
            ``"onnx"``: a standard-op ONNX graph (`tn_keras.export.onnx`), dynamic batch,
            checked with ONNX Runtime.
        representative_data: calibration images for the quantised formats: raw images
            ``(N, H, W, C)``, or the path of a distilled level folder
            (``<export_dir>/level_<a>``). None: 500 training images of ``model_name``'s dataset.
        overwrite: replace an existing output; otherwise an existing path is refused.
        model_name: the zoo ``NAME`` or ``NAME.TAG`` the model is (provenance): recorded in the
            manifest, gives the class names and the default calibration dataset.
        checkpoint: the ``.keras`` file the weights were loaded from (provenance): its sha256
            is recorded.
        data_dir: dataset folder for the default calibration images.
        verify: compare the export with the Keras model right after writing it (saved_model,
            tflite, onnx: raise `ParityError` beyond the tolerance; quantised: record the top-1
            agreement on the calibration images, and warn below 95 %).
        activation_quantile: ``tflite_int8`` only: the int8 range of every activation is
            ``[quantile(1 - q), quantile(q)]`` of its values on the calibration images
            (`tn_keras.export.activation_ranges`). "auto" tries
            ``activation_ranges.CANDIDATE_QUANTILES`` and keeps the one whose outputs are
            closest to the Keras model's on the calibration images (least mean squared
            difference); ``1.0`` is TFLite's min/max.
        fold_batch_norm: TFLite formats: merge each BatchNormalization into the polynomial
            layer before it (`tn_keras.export.folding`; same function, fewer ops, and no
            un-normalised tensor to quantise).
        fold_normalization: TFLite formats: fold the input's Normalization into the Conv2D
            after it (`tn_keras.export.input_folding`; the first convolution then reads the
            raw pixels, which int8 holds exactly, instead of twice-rounded normalised ones).
        input_dtype: ``onnx`` only, one of `ONNX_INPUT_DTYPES`: the graph's input type. An ONNX
            input has one type, and ONNX Runtime refuses any other: ``"uint8"`` takes decoded
            image files as they are, ``"float32"`` (default) takes float arrays.
    """

    format: str = DEFAULT_FORMAT
    representative_data: object = None
    overwrite: bool = False
    model_name: Optional[str] = None
    checkpoint: Optional[Union[str, os.PathLike]] = None
    data_dir: Optional[str] = None
    verify: bool = True
    activation_quantile: Union[str, float] = DEFAULT_ACTIVATION_QUANTILE
    fold_batch_norm: bool = True
    fold_normalization: bool = True
    input_dtype: str = "float32"

    @property
    def export_format(self) -> formats_lib.ExportFormat:
        """The registry's record of ``format`` (ValueError for an unknown one)."""
        return formats_lib.get_format(self.format)

    @property
    def writes_folder(self) -> bool:
        return self.export_format.writes_folder

    @property
    def quantised(self) -> bool:
        return self.export_format.quantised

    def __post_init__(self):
        """The checks that need no model or file; ValueError naming the field."""
        record = self.export_format  # an unknown format: ValueError listing the valid ones
        q = self.activation_quantile
        if not (q == "auto" or (isinstance(q, (int, float)) and not isinstance(q, bool)
                                and 0.5 < q <= 1)):
            raise ValueError(f"activation_quantile must be 'auto' or a number in (0.5, 1]; "
                             f"received {q!r}.")
        known = dict.fromkeys(d for f in formats_lib.registered_formats() for d in f.input_dtypes)
        if self.input_dtype not in known:
            raise ValueError(f"input_dtype must be one of {', '.join(known)}; "
                             f"received {self.input_dtype!r}.")
        if self.input_dtype not in record.input_dtypes:
            takers = [f"format={f.name!r}" for f in formats_lib.registered_formats()
                      if self.input_dtype in f.input_dtypes]
            raise ValueError(f"input_dtype={self.input_dtype!r} applies to {' or '.join(takers)} "
                             f"only; format={self.format!r} takes "
                             f"{' or '.join(record.input_dtypes)} input.")
        if self.model_name is not None:
            from tn_keras.zoo.registry import get_spec

            get_spec(self.model_name)

    def checked(self) -> "ExportConfig":
        """Deprecated: an `ExportConfig` is checked when made; returns ``self``."""
        return self


def config_from(config=None, keywords: Optional[dict] = None,
                caller: str = "export") -> ExportConfig:
    """``config`` (an `ExportConfig`, a format name, or None) with ``keywords`` applied on top,
    by `tn_keras.utils.options.with_keywords`; what it adds is the old positional format name.

    Unknown keywords are a TypeError listing the known ones; ``source=`` (the old name of
    ``model_name``) still works, with a DeprecationWarning.
    """
    keywords = dict(keywords or {})
    if isinstance(config, str):  # export(model, path, "tflite"): the old positional format
        if "format" in keywords:
            raise TypeError(f"{caller}() got the format twice (positionally and as format=).")
        keywords["format"] = config
        config = None
    if config is not None and not isinstance(config, ExportConfig):
        raise TypeError(f"{caller}() config must be an ExportConfig or a format name; "
                        f"received {type(config).__name__}.")
    return with_keywords(config, ExportConfig, keywords, caller, renamed=LEGACY_KEYWORDS,
                         stacklevel=4)
