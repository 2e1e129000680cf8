"""The TensorFlow-private names tn_keras relies on exist in the installed TensorFlow, and no
module but `tn_keras.utils.tensorflow_internals` reaches for them."""
import importlib
import os

import pytest

from _imports import ROOT
from _imports import imported_modules
from _imports import python_files
from tn_keras.utils import tensorflow_internals

tf = pytest.importorskip("tensorflow")

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
                       match=r"has no tensorflow\.python\.framework\.config\."
                             r"no_such_name, .*tested with"):
        tensorflow_internals._attribute("tensorflow.python.framework.config", "no_such_name",
                                        "a test")


def test_no_other_module_imports_tensorflow_internals():
    shim = "tn_keras/utils/tensorflow_internals.py"
    offenders = []
    for path, module, is_init in python_files():
        if path == shim:
            continue
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            source = f.read()
        offenders += [f"{path}:{line}: {name}"
                      for line, name in imported_modules(source, module, is_init)
                      if name.startswith(PRIVATE_PREFIXES)]
    assert not offenders, offenders
