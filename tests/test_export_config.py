"""One source for every export choice (`ExportConfig`), the public-API graph reader, and the
renamed "source" fields. Nothing here converts a model: the tests are fast and backend-neutral."""
import dataclasses
import json
import os
import subprocess
import sys
import warnings

import keras
import numpy as np
import pytest

from _no_tensorflow import stdout_without_tensorflow
from tn_keras.export import config
from tn_keras.export.config import ExportConfig
from tn_keras.export.config import config_from
from tn_keras.utils.keras_graph import ModelGraph

pytestmark = pytest.mark.backend_neutral


# --------------------------------------------------------------------- the CLI and the library
def _export_parser():
    from tn_keras.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    return sub.choices["export"]


def _choices(parser, dest):
    (action,) = [a for a in parser._actions if a.dest == dest]
    return tuple(action.choices) if action.choices else None, action.default


def test_cli_choices_and_defaults_are_the_librarys():
    p = _export_parser()
    defaults = ExportConfig()
    assert _choices(p, "format") == (config.FORMATS, defaults.format)
    assert _choices(p, "activation_quantile") == (None, defaults.activation_quantile)
    assert _choices(p, "fold_batch_norm")[1] is defaults.fold_batch_norm is True
    assert _choices(p, "fold_normalization")[1] is defaults.fold_normalization is True
    assert _choices(p, "overwrite")[1] is defaults.overwrite is False
    # The command builds the library's object: with no flags, the library's defaults.
    from tn_keras.cli.export_command import config_from_args

    args = p.parse_args(["digits_taylornet", "--out", "o.tflite"])
    assert config_from_args(args) == ExportConfig(model_name="digits_taylornet")
    args = p.parse_args(["digits_taylornet", "--out", "o", "--format", "tflite_int8",
                         "--activation-quantile", "0.999", "--no-fold-batch-norm",
                         "--calibration", "lvl/level_1", "--overwrite"])
    assert config_from_args(args, "w.keras", "digits_taylornet.e60") == ExportConfig(
        format="tflite_int8", activation_quantile=0.999, fold_batch_norm=False,
        representative_data="lvl/level_1", overwrite=True, model_name="digits_taylornet.e60",
        checkpoint="w.keras")


def test_the_package_and_the_api_share_one_format_list():
    import tn_keras.export

    assert tn_keras.export.FORMATS is config.FORMATS
    assert config.DEFAULT_FORMAT == "saved_model" and config.FOLDER_FORMATS == ("saved_model",)
    assert set(config.QUANTISED_FORMATS) < set(config.FORMATS)


# --------------------------------------------------------------------------- config_from
def test_keywords_apply_over_the_config():
    base = ExportConfig(format="tflite", verify=False)
    got = config_from(base, {"overwrite": True, "format": "onnx"})
    assert got == ExportConfig(format="onnx", verify=False, overwrite=True)
    assert base.format == "tflite"  # frozen: the caller's object is not changed
    assert config_from(None, {}) == ExportConfig()
    assert config_from("tflite_int8", {"model_name": "digits_taylornet"}) == ExportConfig(
        format="tflite_int8", model_name="digits_taylornet")


def test_unknown_keyword_lists_the_known_ones():
    with pytest.raises(TypeError) as info:
        config_from(None, {"fromat": "tflite"})
    message = str(info.value)
    assert "'fromat'" in message
    for field in dataclasses.fields(ExportConfig):
        assert field.name in message


@pytest.mark.parametrize("args, match", [
    (("tflite", {"format": "onnx"}), "format twice"),
    ((None, {"source": "a", "model_name": "b"}), "both source= and model_name="),
    (({"format": "tflite"}, {}), "must be an ExportConfig or a format name"),
])
def test_ambiguous_calls_are_refused(args, match):
    with pytest.raises(TypeError, match=match), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        config_from(*args)


def test_source_keyword_still_works_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match=r"source=\.\.\.\) is deprecated; pass "
                                                r"model_name="):
        got = config_from(None, {"source": "digits_taylornet"})
    assert got == ExportConfig(model_name="digits_taylornet")


@pytest.mark.parametrize("change, match", [
    (dict(format="coreml"), "Unknown export format 'coreml'; valid formats: saved_model, "
                            "tflite, tflite_int8, tflite_int16x8, onnx"),
    (dict(activation_quantile=0.5), "activation_quantile must be 'auto' or a number in"),
    (dict(activation_quantile=True), "activation_quantile must be 'auto' or a number in"),
    (dict(activation_quantile="most"), "activation_quantile must be 'auto' or a number in"),
    (dict(model_name="digits_taylr"), "Unknown model name"),
])
def test_a_bad_field_is_refused_when_the_config_is_made(change, match):
    with pytest.raises(ValueError, match=match):
        ExportConfig(**change)
    with pytest.raises(ValueError, match=match):  # keyword overrides are checked the same way
        config_from(ExportConfig(), change)


def test_the_valid_values_are_accepted():
    for q in ("auto", 1, 1.0, 0.9999):
        assert ExportConfig(activation_quantile=q).activation_quantile == q
    made = ExportConfig(model_name="digits_taylornet")
    assert made.model_name == "digits_taylornet"
    assert made.checked() is made  # deprecated: a config is checked when made


# --------------------------------------------------------------- the graph, from get_config
def _shared_layer_models():
    """Two functional models that share layers, as the export's rewrites make them."""
    dense, head = keras.layers.Dense(4, name="dense"), keras.layers.Dense(2, name="head")
    a = keras.Input((3,), name="a")
    h = dense(a)
    first = keras.Model(a, [head(h), keras.layers.Activation("relu", name="relu")(h)])
    b = keras.Input((3,), name="b")
    second = keras.Model(b, head(dense(b)))
    return first, second


def test_calls_and_consumers_are_counted_within_one_model():
    first, second = _shared_layer_models()
    g1, g2 = ModelGraph.of(first), ModelGraph.of(second)
    # "dense" is called once in each model (twice in all): each model sees its own call.
    assert [c.layer for c in g1.calls("dense")] == ["dense"]
    assert len(g2.calls("dense")) == 1
    (call,) = g2.calls("dense")
    assert [(t.layer, t.shape) for t in call.inputs] == [("b", (None, 3))]
    assert sorted(c.layer for c in g1.consumers("dense")) == ["head", "relu"]
    assert [c.layer for c in g2.consumers("dense")] == ["head"]
    assert g1.input_layers == {"a"} and g2.input_layers == {"b"}
    assert g1.is_output("relu") and g1.is_output("head") and not g1.is_output("dense")


def test_a_layer_called_twice_in_one_model_has_two_calls():
    dense = keras.layers.Dense(3, name="twice")
    x = keras.Input((3,), name="x")
    model = keras.Model(x, keras.layers.Add(name="add")([dense(x), dense(dense(x))]))
    g = ModelGraph.of(model)
    assert len(g.calls("twice")) == 3
    (add,) = g.calls("add")
    assert [(t.layer, t.call) for t in add.inputs] == [("twice", 0), ("twice", 2)]
    # Every call that reads an output of "twice": its own second call and the Add.
    assert sorted(c.layer for c in g.consumers("twice")) == ["add", "twice"]


def test_models_without_a_functional_graph_have_none():
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert ModelGraph.of(sequential) is None

    class NoConfig(keras.layers.Layer):
        def __init__(self, table):  # an argument Keras cannot record: no get_config
            super().__init__()
            self.table = table

        def call(self, x):
            return x

    x = keras.Input((3,))
    model = keras.Model(x, NoConfig(np.zeros(3))(x))
    with pytest.raises(NotImplementedError):
        ModelGraph.of(model)  # the reader says why; each user decides what to do without it
    from tn_keras.export.graph import model_graph

    with pytest.warns(RuntimeWarning, match="leaves its layers unfolded"):
        assert model_graph(model) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        from tn_keras.export.folding import fold_batch_normalization

        assert fold_batch_normalization(model) == (model, [])


def test_batch_norm_after_a_layer_whose_output_is_also_a_model_output_is_left_alone():
    from tn_keras.export.folding import fold_batch_normalization
    from tn_keras.layers import TaylorDense

    x = keras.Input((5,))
    t = TaylorDense(4, order=2, rank=2, name="t")(x)
    model = keras.Model(x, [keras.layers.BatchNormalization(name="bn")(t), t])
    assert fold_batch_normalization(model) == (model, [])
    single = keras.Model(x, keras.layers.BatchNormalization(name="bn2")(t))
    assert [r["layer"] for r in fold_batch_normalization(single)[1]] == ["t"]


def test_graph_uses_no_private_keras_api():
    import inspect
    import re

    from tn_keras.export import folding
    from tn_keras.export import graph
    from tn_keras.export import input_folding
    from tn_keras.interpret import graph as interpret_graph
    from tn_keras.utils import keras_graph

    for module in (keras_graph, graph, folding, input_folding, interpret_graph):
        source = inspect.getsource(module)
        assert not re.search(r"keras\.src|make_node_key|\._\w*nodes\b|\.parent_nodes\b",
                             source), module.__name__


# ------------------------------------------------------------------ the renamed "source"s
def _old_export_manifest(folder):
    import hashlib

    path = folder / "m.tflite"
    path.write_bytes(b"TFL3")
    record = {"schema_version": 2, "kind": "export", "name": "digits_taylornet",
              "file": "m.tflite", "sha256": hashlib.sha256(b"TFL3").hexdigest(),
              "size_bytes": 4, "files": {}, "versions": {}, "created": "",
              "provenance": {"model": None, "weights": None, "weights_sha256": None,
                             "command": None, "data": None, "seed": None},
              "format": "tflite",
              "source": {"model": "digits_taylornet.e60", "keras_model_name": "digits",
                         "checkpoint": "digits.keras", "checkpoint_sha256": "ab" * 32}}
    (folder / "m.tflite.json").write_text(json.dumps(record))
    return path


def test_an_older_manifests_source_block_is_read_as_provenance(tmp_path):
    from tn_keras.export.manifest import read_manifest

    manifest = read_manifest(str(_old_export_manifest(tmp_path)))
    assert "source" not in manifest
    assert manifest["provenance"]["model"] == "digits_taylornet.e60"
    assert manifest["provenance"]["weights"] == "digits.keras"
    assert manifest["provenance"]["weights_sha256"] == "ab" * 32
    assert manifest["keras_model_name"] == "digits"


def test_new_manifests_keep_their_origin_in_provenance_only(tmp_path):
    from tn_keras.export.manifest import ExportedFile
    from tn_keras.export.manifest import build_manifest

    checkpoint = tmp_path / "w.keras"
    checkpoint.write_bytes(b"weights")
    exported = ExportedFile(file="m.tflite", sha256="0" * 64, size_bytes=3, input_spec={},
                            output_spec={})
    manifest = build_manifest(ExportConfig(format="tflite", model_name="digits_taylornet.e60",
                                           checkpoint=checkpoint), exported, "digits", None)
    import hashlib

    assert "source" not in manifest
    assert manifest["provenance"]["model"] == "digits_taylornet.e60"
    assert manifest["provenance"]["weights"] == "w.keras"
    assert manifest["provenance"]["weights_sha256"] == hashlib.sha256(b"weights").hexdigest()
    assert (manifest["name"], manifest["keras_model_name"]) == ("digits_taylornet.e60", "digits")
    assert build_manifest(ExportConfig(), exported, "digits", None)["name"] == "digits"


def test_dataset_description_and_its_old_name():
    from tn_keras import datasets

    info = datasets.info("mnist")
    assert info.description.startswith("MNIST")
    with pytest.warns(DeprecationWarning, match="use DatasetInfo.description"):
        assert info.source == info.description


# ----------------------------------------------------------- --help without TensorFlow
_HELP = """
import contextlib, io, sys
{setup}
for argv in (["--help"], ["export", "--help"]):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            code = run(argv)
        except SystemExit as e:
            code = e.code
    assert code in (0, None), (argv, code)
    print(argv[0], "tensorflow" in sys.modules, "tflite_int16x8" in out.getvalue())
"""
# The CLI itself, and the console script (which imports TensorFlow up front, quietly, for every
# run but --help / --version).
_ENTRIES = {
    "tn_keras.cli": "from tn_keras.cli import main as run",
    "tn_keras_cli": "import tn_keras_cli\n\ndef run(argv):\n    sys.argv[1:] = argv\n"
                    "    return tn_keras_cli.main()",
}


@pytest.mark.parametrize("entry", sorted(_ENTRIES))
def test_help_does_not_import_tensorflow(entry):
    # TensorFlow installed but not the backend: --help must not load it.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", _HELP.format(setup=_ENTRIES[entry])],
                            capture_output=True, text=True, timeout=300, cwd=root,
                            env=dict(os.environ, KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:2] == ["--help False False", "export False True"]
    assert result.stderr == ""


# Without TensorFlow the package still imports and gives the choices; what needs TensorFlow
# says so in one line.
_LAZY_PACKAGE = """
import tn_keras.export
print("formats", len(tn_keras.export.FORMATS), tn_keras.export.ExportConfig().format)
try:
    from tn_keras.export import export
except ModuleNotFoundError as e:
    print("needs:", e.name, "|", str(e).split(". ")[0])
"""


def test_export_help_lists_the_formats_without_tensorflow():
    stdout = stdout_without_tensorflow(_HELP.format(setup=_ENTRIES["tn_keras.cli"]) + _LAZY_PACKAGE)
    assert "export False True" in stdout
    assert "formats 5 saved_model" in stdout
    assert ("needs: tensorflow | tn_keras.export.export needs TensorFlow (SavedModel and TFLite "
            "are TensorFlow formats), which is not installed: pip install 'tn_keras[cpu]'"
            in stdout), stdout
