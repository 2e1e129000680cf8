"""The one artifact format: round trip, every malformed manifest, verification, no TensorFlow."""
import json
import os

import pytest

from _no_tensorflow import run_without_tensorflow
from tn_keras import artifacts


def _artifact(folder, kind="export", **record):
    """A folder with one data file and its manifest; returns the manifest path."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "data.bin"), "wb") as f:
        f.write(b"\x00\x01payload")
    sha, size = artifacts.file_entry(folder, "data.bin")
    manifest = artifacts.Manifest(
        kind=kind, name="digits_taylornet", file="data.bin", sha256=sha, size_bytes=size,
        files={"data.bin": sha},
        provenance=artifacts.Provenance(model="digits_taylornet.e60", seed=3,
                                        data={"dataset": "digits", "split": "train"}),
        versions={"keras_backend": "tensorflow"}, created=artifacts.now(), record=record)
    path = os.path.join(folder, artifacts.MANIFEST_NAME)
    artifacts.write(path, manifest)
    return path


@pytest.mark.backend_neutral
def test_round_trip(tmp_path):
    path = _artifact(str(tmp_path / "a"), format="tflite", metrics={"test_accuracy": 0.5})
    manifest = artifacts.read(path)
    assert manifest.kind == "export" and manifest.schema_version == artifacts.SCHEMA_VERSION
    assert manifest.provenance.model == "digits_taylornet.e60"
    assert manifest.provenance.data == {"dataset": "digits", "split": "train"}
    assert manifest["format"] == "tflite" and manifest["metrics"] == {"test_accuracy": 0.5}
    assert manifest.get("missing", 7) == 7 and "format" in manifest
    # Reading the folder is reading its manifest.json; the JSON is what to_dict gives.
    assert artifacts.read(os.path.dirname(path)) == manifest
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == manifest.to_dict()
    assert artifacts.verify(path) == manifest


@pytest.mark.backend_neutral
def test_tree_digest_is_independent_of_walk_order(tmp_path):
    for name in ("b/x", "a", "b/a"):
        os.makedirs(os.path.dirname(str(tmp_path / name)) or str(tmp_path), exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    digest, files = artifacts.sha256_tree(str(tmp_path))
    assert list(files) == sorted(files) == ["a", "b/a", "b/x"]
    import hashlib

    lines = "".join(f"{rel} {hashlib.sha256(rel.encode()).hexdigest()}\n"
                    for rel in sorted(files))
    assert digest == hashlib.sha256(lines.encode()).hexdigest()


def _write_raw(tmp_path, data: bytes):
    folder = tmp_path / "bad"
    folder.mkdir(exist_ok=True)
    (folder / "data.bin").write_bytes(b"\x00\x01payload")
    path = folder / artifacts.MANIFEST_NAME
    path.write_bytes(data)
    return str(path)


def _valid(tmp_path):
    path = _artifact(str(tmp_path / "good"))
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _with(raw, **changes):
    raw = dict(raw)
    for key, value in changes.items():
        if value is _DROP:
            raw.pop(key)
        else:
            raw[key] = value
    return json.dumps(raw).encode()


_DROP = object()
MALFORMED = {
    "bad JSON": (lambda raw: b'{"kind": "export",', "not valid JSON"),
    "a list": (lambda raw: b"[1, 2]", "a list, not a JSON object"),
    "a string": (lambda raw: b'"manifest"', "a string, not a JSON object"),
    "null": (lambda raw: b"null", "null, not a JSON object"),
    "deep nesting": (lambda raw: b"[" * 100000 + b"]" * 100000, "not a manifest"),
    "nesting past the limit": (lambda raw: _with(raw, extra=json.loads("[" * 40 + "]" * 40)),
                               "nests deeper than"),
    "invalid UTF-8": (lambda raw: b'{"kind": "\xff\xfe"}', "not UTF-8"),
    "NaN": (lambda raw: _with(raw).replace(b'"size_bytes": 9', b'"size_bytes": NaN'),
            "NaN is not valid JSON"),
    "missing sha256": (lambda raw: _with(raw, sha256=_DROP), "no 'sha256' entry"),
    "missing kind": (lambda raw: _with(raw, kind=_DROP), "no 'kind' entry"),
    "older format": (lambda raw: json.dumps({"format_version": 1, "name": "x"}).encode(),
                     "older tn_keras format"),
    "future schema": (lambda raw: _with(raw, schema_version=99), "schema_version 99"),
    "unknown kind": (lambda raw: _with(raw, kind="weights"), "kind 'weights'"),
    "sha256 not hex": (lambda raw: _with(raw, sha256="abc"), "not a sha256 hex digest"),
    "size a string": (lambda raw: _with(raw, size_bytes="9"), "'size_bytes' is a string"),
    "files a list": (lambda raw: _with(raw, files=["data.bin"]), "'files' is a list"),
    "file outside (..)": (lambda raw: _with(raw, file="../data.bin"), "not a path inside"),
    "file absolute": (lambda raw: _with(raw, file="/etc/passwd"), "not a path inside"),
    "files entry outside": (lambda raw: _with(raw, files={"../../x": "0" * 64}),
                            "not a path inside"),
    "unknown provenance": (lambda raw: _with(raw, provenance={"who": 1}),
                           "unknown provenance keys"),
}


@pytest.mark.backend_neutral
@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest_is_one_clear_line_naming_the_file(case, tmp_path):
    make, message = MALFORMED[case]
    path = _write_raw(tmp_path, make(_valid(tmp_path)))
    with pytest.raises(artifacts.ManifestError) as info:
        artifacts.read(path)
    text = str(info.value)
    assert message in text and path in text and "\n" not in text, text


@pytest.mark.backend_neutral
def test_missing_folder_and_wrong_kind(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        artifacts.read(str(tmp_path / "nothing.json"))
    path = _artifact(str(tmp_path / "a"))
    with pytest.raises(artifacts.ManifestError, match="describes a export, not a checkpoint"):
        artifacts.read(path, kind="checkpoint")
    os.makedirs(str(tmp_path / "dir.json"))
    with pytest.raises(artifacts.ManifestError, match="is a folder"):
        artifacts.load_json(str(tmp_path / "dir.json"))


@pytest.mark.backend_neutral
def test_symlink_out_of_the_folder_is_refused(tmp_path):
    path = _artifact(str(tmp_path / "a"))
    outside = tmp_path / "secret"
    outside.write_bytes(b"secret")
    os.symlink(str(outside), str(tmp_path / "a" / "link"))
    raw = json.loads(open(path).read())
    raw["files"]["link"] = artifacts.sha256_file(str(outside))
    with open(path, "w") as f:
        json.dump(raw, f)
    with pytest.raises(artifacts.ManifestError, match="resolves outside its folder"):
        artifacts.read(path)


@pytest.mark.backend_neutral
def test_wrong_sha256_and_missing_file_fail_verify(tmp_path):
    path = _artifact(str(tmp_path / "a"))
    data = tmp_path / "a" / "data.bin"
    data.write_bytes(b"\x00\x01payloaX")
    with pytest.raises(artifacts.ChecksumError, match="corrupt or was replaced") as info:
        artifacts.verify(path)
    assert str(data) in str(info.value)
    data.unlink()
    with pytest.raises(artifacts.ChecksumError, match="is missing"):
        artifacts.verify(path)


@pytest.mark.backend_neutral
def test_write_refuses_what_read_would_refuse(tmp_path):
    bad = artifacts.Manifest(kind="export", name="x", file="../x", sha256="0" * 64,
                             size_bytes=1)
    with pytest.raises(artifacts.ManifestError, match="not a path inside"):
        artifacts.write(str(tmp_path / artifacts.MANIFEST_NAME), bad)
    assert not os.path.exists(str(tmp_path / artifacts.MANIFEST_NAME))


def test_artifacts_read_and_verify_without_tensorflow(tmp_path):
    path = _artifact(str(tmp_path / "a"), format="onnx")
    result = run_without_tensorflow(
        "from tn_keras import artifacts\n"
        f"m = artifacts.verify({path!r})\n"
        "print(m.kind, m['format'], artifacts.software_versions()['keras_backend'])\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-3:] == ["export", "onnx", "jax"]
