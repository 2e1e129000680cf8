"""The export formats, as data: one `ExportFormat` record per format, in one registry.

Everything that depends on the format reads its record here: `ExportConfig`'s checks, the
dispatch of `tn_keras.export.export` to the format's writer, the manifest's place (beside a
file, inside a folder), the staging folder, ``tn-keras export --format`` (choices and help) and
``tn-keras evaluate --export`` (the runtime that runs the file). Adding a format is one
`register_format` call (docs/deployment.md, "Adding an export format"):

    register_format(ExportFormat(
        name="toy", writes="file", suffix=".npz", description="the weights as NumPy arrays",
        writer="my_package.toy:write_toy"))

Writers and runtimes are named as ``"module:attribute"`` strings and imported on first use,
so this module (and `tn_keras.export.config`, and the CLI's ``--help``) imports neither Keras
nor TensorFlow. A writer is called as ``writer(model, stage, image_shape, config, file_name)``:
it writes the export to ``stage.result`` (a file, or a folder for ``writes="folder"``; scratch
space in ``stage.work``) and returns its `tn_keras.export.manifest.ExportedFile`.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib
from typing import Callable
from typing import Optional
from typing import Union

#: What a format writes: one file (manifest ``<path>.json`` beside it), or a folder (manifest
#: ``manifest.json`` inside it).
WRITES = ("file", "folder")


@dataclasses.dataclass(frozen=True)
class ExportFormat:
    """One deployment format.

    Attributes:
        name: the ``format=`` value and ``--format`` choice.
        writes: one of `WRITES`.
        suffix: the usual file suffix (``".tflite"``); None for a folder.
        description: one line for ``--help`` and the docs.
        writer: ``"module:function"`` (imported on first use) or the function itself, called
            as ``writer(model, stage, image_shape, config, file_name)``; see the module
            docstring.
        runtime: ``"module:Class"`` or the class that runs a written export:
            ``Class(path).predict(images, batch_size=...)``; None when there is none.
        quantisation: the quantisation mode (``"int8"``, ``"int16x8"``), or None for a float
            format. A quantised format needs calibration images (`ExportConfig.quantised`).
        input_dtypes: the ``input_dtype`` values the format takes (the first is the default).
        static_image_shape: the format needs the model's H, W, C known.
        needs_tensorflow: the writer converts through TensorFlow.
    """

    name: str
    writes: str
    suffix: Optional[str]
    description: str
    writer: Union[str, Callable]
    runtime: Union[str, type, None] = None
    quantisation: Optional[str] = None
    input_dtypes: tuple = ("float32",)
    static_image_shape: bool = True
    needs_tensorflow: bool = True

    def __post_init__(self):
        if not (isinstance(self.name, str) and self.name.isidentifier()):
            raise ValueError(f"ExportFormat name must be an identifier (a --format choice); "
                             f"received {self.name!r}.")
        if self.writes not in WRITES:
            raise ValueError(f"ExportFormat {self.name!r}: writes must be one of "
                             f"{', '.join(WRITES)}; received {self.writes!r}.")
        if self.writes == "file" and not (isinstance(self.suffix, str)
                                          and self.suffix.startswith(".")):
            raise ValueError(f"ExportFormat {self.name!r} writes a file: its suffix must start "
                             f"with '.'; received {self.suffix!r}.")
        for field in ("writer", "runtime"):
            value = getattr(self, field)
            if isinstance(value, str) and value.count(":") != 1:
                raise ValueError(f"ExportFormat {self.name!r}: {field} must be "
                                 f"'module:attribute' or the object itself; received {value!r}.")
        if not callable(self.writer) and not isinstance(self.writer, str):
            raise TypeError(f"ExportFormat {self.name!r}: writer must be callable or "
                            f"'module:function'; received {type(self.writer).__name__}.")
        object.__setattr__(self, "input_dtypes", tuple(self.input_dtypes))
        if not self.input_dtypes:
            raise ValueError(f"ExportFormat {self.name!r}: input_dtypes is empty.")

    @property
    def writes_folder(self) -> bool:
        return self.writes == "folder"

    @property
    def quantised(self) -> bool:
        return self.quantisation is not None

    def load_writer(self) -> Callable:
        """The writer function (imported now when named by a string)."""
        return _resolve(self.writer)

    def load_runtime(self) -> Optional[type]:
        """The runtime class (imported now when named by a string), or None."""
        return None if self.runtime is None else _resolve(self.runtime)


def _resolve(reference):
    if not isinstance(reference, str):
        return reference
    module, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module), attribute)


_REGISTRY: dict = {}
_DERIVED: dict = {}  # cached name tuples, cleared by every change of the registry


def register_format(format: ExportFormat, replace: bool = False) -> ExportFormat:
    """Add ``format`` to the registry (after the formats already there); returns it.

    A name already registered is refused unless ``replace`` (which keeps its place).
    """
    if not isinstance(format, ExportFormat):
        raise TypeError(f"register_format() takes an ExportFormat; received "
                        f"{type(format).__name__}.")
    if format.name in _REGISTRY and not replace:
        raise ValueError(f"Export format {format.name!r} is already registered; pass "
                         "replace=True to replace it.")
    _REGISTRY[format.name] = format
    _DERIVED.clear()
    return format


def unregister_format(name: str) -> ExportFormat:
    """Remove a registered format (mainly for tests and notebooks); returns its record."""
    record = get_format(name)
    del _REGISTRY[name]
    _DERIVED.clear()
    return record


def get_format(name: str) -> ExportFormat:
    """The record of ``name``; an unknown name is one ValueError line listing the registered
    formats, the closest to ``name`` first."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown export format {name!r}; valid formats: "
                         f"{', '.join(closest_first(name))}.") from None


def closest_first(name) -> list:
    """The registered names, those close to ``name`` first (closest first), then the others in
    registration order."""
    names = list(_REGISTRY)
    close = difflib.get_close_matches(str(name), names, n=len(names), cutoff=0.6)
    return close + [n for n in names if n not in close]


def registered_formats() -> tuple:
    """Every `ExportFormat`, in registration order (the CLI's order; the first is the
    default)."""
    return tuple(_REGISTRY.values())


def names(which: str = "all") -> tuple:
    """Registered names, in order: ``"all"``, ``"folder"`` (written as a folder) or
    ``"quantised"`` (needing calibration images). Cached until the registry changes."""
    if which not in _DERIVED:
        tests = {"all": lambda f: True, "folder": lambda f: f.writes_folder,
                 "quantised": lambda f: f.quantised}
        _DERIVED[which] = tuple(f.name for f in _REGISTRY.values() if tests[which](f))
    return _DERIVED[which]


def help_text() -> str:
    """``--format``'s help: each format and what it writes."""
    return "; ".join(f"{f.name}: {f.description}" for f in _REGISTRY.values())


# The built-in formats, in the CLI's order (the first is the default).
_API = "tn_keras.export.api"
register_format(ExportFormat(
    name="saved_model", writes="folder", suffix=None,
    description="TensorFlow SavedModel folder (endpoint serve), dynamic batch and image size",
    writer=f"{_API}:write_saved_model_export",
    runtime="tn_keras.export.saved_model:SavedModelRuntime", static_image_shape=False))


def _tflite(name, description, quantisation=None):
    """The TFLite formats differ only in name, description and quantisation mode."""
    return ExportFormat(name=name, writes="file", suffix=".tflite", description=description,
                        writer=f"{_API}:write_tflite_export",
                        runtime="tn_keras.export.runtime:TFLiteModel", quantisation=quantisation)


register_format(_tflite("tflite", "float32 LiteRT/TFLite flatbuffer, builtin ops"))
register_format(_tflite("tflite_int8", "full-integer TFLite (int8 weights, activations, input "
                                       "and output), calibrated", "int8"))
register_format(_tflite("tflite_int16x8", "TFLite with int16 activations and int8 weights, "
                                          "float input and output, calibrated", "int16x8"))
register_format(ExportFormat(
    name="onnx", writes="file", suffix=".onnx",
    description="standard-op ONNX graph, dynamic batch, checked with ONNX Runtime",
    writer=f"{_API}:write_onnx_export", runtime="tn_keras.export.onnx:ONNXModel",
    input_dtypes=("float32", "uint8")))
