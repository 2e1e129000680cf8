"""The export format registry (`tn_keras.export.formats`): a format registered at run time is
exported, staged, given a manifest, listed by the CLI and evaluated like a built-in one, with no
other change; an unregistered or unknown one is refused in one line."""
import json
import os

import keras
import numpy as np
import pytest

import tn_keras.export
from tn_keras import zoo
from tn_keras.export import ExportFormat
from tn_keras.export import config
from tn_keras.export import export
from tn_keras.export import formats
from tn_keras.export import get_format
from tn_keras.export import read_manifest
from tn_keras.export import register_format
from tn_keras.export import unregister_format
from tn_keras.export.manifest import ExportedFile
from tn_keras.export.manifest import sha256_tree
from tn_keras.utils.files import sha256_file

BUILTIN = ("saved_model", "tflite", "tflite_int8", "tflite_int16x8", "onnx")


# ------------------------------------------------------------------ a toy format, as a user
def write_toy(model, stage, image_shape, config, file_name):
    """The toy formats' writer: the model's weights as a ``.npz`` (a file, or ``weights.npz``
    in a folder)."""
    folder = config.writes_folder
    if folder:
        os.makedirs(stage.result)
    target = os.path.join(stage.result, "weights.npz") if folder else stage.result
    with open(target, "wb") as f:  # a handle: np.savez would append ".npz" to a name
        np.savez(f, *model.get_weights())
    specs = dict(input_spec={"shape": [None, *image_shape], "dtype": "float32"},
                 output_spec={"shape": [None, model.output_shape[-1]], "dtype": "float32"})
    if folder:
        digest, files = sha256_tree(stage.result)
        return ExportedFile(file=".", sha256=digest, files=files,
                            size_bytes=os.path.getsize(target), **specs)
    return ExportedFile(file=file_name, sha256=sha256_file(target),
                        size_bytes=os.path.getsize(target), **specs)


class ToyRuntime:
    """Runs a toy export: the zoo architecture its manifest names, with the saved weights."""

    def __init__(self, path):
        manifest = read_manifest(os.fspath(path))
        model = zoo.build(manifest["provenance"]["model"])
        weights = os.path.join(path, "weights.npz") if os.path.isdir(path) else path
        with np.load(weights) as data:
            model.set_weights([data[f"arr_{i}"] for i in range(len(data.files))])
        self.model = model

    def predict(self, x, batch_size=256, verbose=None):
        return self.model.predict(np.asarray(x, np.float32), batch_size=batch_size, verbose=0)


TOYS = {
    "toy": dict(writes="file", suffix=".npz"),
    "toy_folder": dict(writes="folder", suffix=None),
}


@pytest.fixture(params=sorted(TOYS))
def toy(request):
    """A toy format registered for one test (by "module:attribute" strings, as a package
    would), then removed."""
    record = register_format(ExportFormat(
        name=request.param, description="the weights as NumPy arrays (a test format)",
        writer=f"{__name__}:write_toy", runtime=f"{__name__}:ToyRuntime",
        needs_tensorflow=False, **TOYS[request.param]))
    yield record
    unregister_format(record.name)


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return zoo.build("mnist7_taylor")


def _out(tmp_path, record):
    return str(tmp_path / ("m" if record.writes_folder else "m.npz"))


# ------------------------------------------------------------------------------ the tests
def test_a_registered_format_is_listed_everywhere(toy):
    assert config.FORMATS == BUILTIN + (toy.name,)
    assert tn_keras.export.FORMATS is config.FORMATS  # one list, never a stale copy
    assert (toy.name in config.FOLDER_FORMATS) is toy.writes_folder
    assert toy.name not in config.QUANTISED_FORMATS
    assert get_format(toy.name) is toy and toy.load_writer() is write_toy
    from tn_keras.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if a.dest == "command"]
    (fmt,) = [a for a in sub.choices["export"]._actions if a.dest == "format"]
    assert toy.name in fmt.choices and "the weights as NumPy arrays" in fmt.help


def test_a_registered_format_exports_with_a_manifest(toy, tiny_model, tmp_path):
    path = _out(tmp_path, toy)
    manifest = export(tiny_model, path, format=toy.name)
    assert manifest["format"] == toy.name
    on_disk = read_manifest(path)
    assert (on_disk["format"], on_disk["sha256"]) == (toy.name, manifest["sha256"])
    # The manifest's place and the staging (built beside, then renamed) follow `writes`.
    expected = ["m"] if toy.writes_folder else ["m.npz", "m.npz.json"]
    assert sorted(os.listdir(tmp_path)) == expected
    weights = os.path.join(path, "weights.npz") if toy.writes_folder else path
    digest = sha256_tree(path)[0] if toy.writes_folder else sha256_file(weights)
    assert manifest["sha256"] == digest
    with np.load(weights) as data:
        for i, w in enumerate(tiny_model.get_weights()):
            np.testing.assert_array_equal(data[f"arr_{i}"], w)
    # The folder-or-file check reads the registry too.
    other = tmp_path / ("x.npz" if toy.writes_folder else "x")
    if toy.writes_folder:
        other.write_bytes(b"")
    else:
        other.mkdir()
    with pytest.raises(ValueError, match=f"format={toy.name!r} writes a"):
        export(tiny_model, str(other), format=toy.name, overwrite=True)


def test_the_cli_exports_and_evaluates_a_registered_format(toy, tmp_path, capsys):
    from tn_keras.cli import main

    out = _out(tmp_path, toy)
    assert main(["export", "digits_taylornet", "--format", toy.name, "--out", out]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == toy.name
    assert main(["evaluate", "digits_taylornet", "--export", out,
                 "--max-examples", "40"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["test"]["examples"] == 40
    assert results["test"]["top1_agreement"] == 1.0  # the same weights, run by Keras


def test_an_unregistered_format_is_refused(tiny_model, tmp_path, capsys):
    record = register_format(ExportFormat(name="toy", writes="file", suffix=".npz",
                                          description="a test format", writer=write_toy))
    assert "toy" in config.FORMATS
    assert unregister_format("toy") is record
    assert config.FORMATS == BUILTIN
    with pytest.raises(ValueError, match="Unknown export format 'toy'; valid formats: "):
        export(tiny_model, str(tmp_path / "m.npz"), format="toy")
    assert os.listdir(tmp_path) == []
    from tn_keras.cli import main

    assert main(["export", "digits_taylornet", "--format", "toy", "--out", "m.npz"]) == 2
    assert "invalid choice: 'toy'" in capsys.readouterr().err


def test_an_unknown_format_lists_the_valid_ones_closest_first():
    with pytest.raises(ValueError) as info:
        get_format("tflite8")
    message = str(info.value)
    assert "\n" not in message
    assert message == ("Unknown export format 'tflite8'; valid formats: tflite, tflite_int8, "
                       "tflite_int16x8, saved_model, onnx.")
    with pytest.raises(ValueError, match=r"'coreml'; valid formats: saved_model, tflite, "
                                         r"tflite_int8, tflite_int16x8, onnx\.$"):
        config.ExportConfig(format="coreml")


def test_the_builtin_formats_are_records():
    assert tuple(f.name for f in formats.registered_formats()) == BUILTIN == config.FORMATS
    assert config.FOLDER_FORMATS == ("saved_model",)
    assert config.QUANTISED_FORMATS == ("tflite_int8", "tflite_int16x8")
    assert {get_format(n).quantisation for n in BUILTIN} == {None, "int8", "int16x8"}
    assert get_format("onnx").input_dtypes == config.ONNX_INPUT_DTYPES
    assert all(isinstance(get_format(n).writer, str) for n in BUILTIN)  # resolved on use


@pytest.mark.parametrize("fields, match", [
    (dict(name="saved_model"), "already registered"),
    (dict(name="two words"), "must be an identifier"),
    (dict(writes="dir"), "writes must be one of file, folder"),
    (dict(suffix="npz"), "suffix must start with '.'"),
    (dict(writer="no_colon"), "writer must be 'module:attribute'"),
])
def test_bad_registrations_are_refused(fields, match):
    base = dict(name="toy", writes="file", suffix=".npz", description="a test format",
                writer=write_toy)
    with pytest.raises(ValueError, match=match):
        register_format(ExportFormat(**dict(base, **fields)))
    assert config.FORMATS == BUILTIN


@pytest.mark.parametrize("format, out", [("tflite", "d.tflite"), ("saved_model", "d")])
def test_evaluate_runs_a_builtin_export_with_its_registered_runtime(format, out, tmp_path,
                                                                     capsys):
    from tn_keras.cli import main

    out = str(tmp_path / out)
    assert main(["export", "digits_taylornet", "--format", format, "--out", out]) == 0
    capsys.readouterr()
    assert main(["evaluate", "digits_taylornet", "--export", out, "--max-examples", "40"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["test"]["examples"] == 40 and results["test"]["top1_agreement"] == 1.0
    # A changed export is refused against its manifest, in one line naming it.
    changed = os.path.join(out, "extra") if os.path.isdir(out) else out
    with open(changed, "ab") as f:
        f.write(b"x")
    assert main(["evaluate", "digits_taylornet", "--export", out]) == 2
    err = capsys.readouterr().err
    assert f"--export {out} does not match the sha256 in its manifest" in err
