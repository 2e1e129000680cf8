"""The TensorFlow-private names tn_keras relies on exist in the installed TensorFlow, and no
module but `tn_keras.utils.tensorflow_internals` reaches for them."""
import ast
import importlib
import pathlib

import pytest

from tn_keras.utils import tensorflow_internals

tf = pytest.importorskip("tensorflow")

ROOT = pathlib.Path(__file__).resolve().parents[1]
PRIVATE_PREFIXES = ("tensorflow.python", "tensorflow.lite.python", "tensorflow.lite.tools")


@pytest.mark.parametrize("module,name", tensorflow_internals.PRIVATE_NAMES,
                         ids=[f"{m}.{n}" for m, n in tensorflow_internals.PRIVATE_NAMES])
def test_each_private_name_resolves(module, name):
    assert callable(getattr(importlib.import_module(module), name))


def test_the_converter_still_has_calibrate_only():
    converter = tf.lite.TFLiteConverter.from_concrete_functions([])
    tensorflow_internals.set_calibrate_only(converter)
    assert converter._experimental_calibrate_only is True


def test_determinism_switch_reads_and_restores():
    before = tensorflow_internals.op_determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    assert tensorflow_internals.op_determinism_enabled()
    if not before:
        tensorflow_internals.disable_op_determinism()
    assert tensorflow_internals.op_determinism_enabled() == before


def test_freezing_turns_variables_into_constants():
    v = tf.Variable(3.0)
    function = tf.function(lambda x: x * v).get_concrete_function(tf.TensorSpec((), tf.float32))
    frozen = tensorflow_internals.convert_variables_to_constants_v2(function)
    assert not frozen.graph.variables
    assert float(frozen(tf.constant(2.0))[0]) == pytest.approx(6.0)


def test_schema_names_the_builtin_ops():
    assert tensorflow_internals.tflite_schema().BuiltinOperator.CONV_2D == 3


def test_a_missing_name_is_one_clear_error():
    with pytest.raises(tensorflow_internals.TensorFlowInternalMissing,
                       match=r"has no tensorflow\.python\.framework\.config\.no_such_name, .*tested with"):
        tensorflow_internals._attribute("tensorflow.python.framework.config", "no_such_name",
                                        "a test")


def _imported_modules(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_no_other_module_imports_tensorflow_internals():
    shim = ROOT / "tn_keras" / "utils" / "tensorflow_internals.py"
    offenders = sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for folder in ("tn_keras", "zoo") for path in (ROOT / folder).rglob("*.py")
        if path != shim
        for name in _imported_modules(path) if name.startswith(PRIVATE_PREFIXES))
    assert not offenders, offenders
