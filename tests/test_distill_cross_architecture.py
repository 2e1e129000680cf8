"""`tn-keras distill-eval --architectures`: distilled levels trained into several networks."""
import json

import numpy as np
import pytest

from tn_keras.distill import config
from tn_keras.distill import cross_architecture as xa


@pytest.fixture(scope="module")
def digits_levels(tmp_path_factory):
    from tn_keras import datasets
    from tn_keras.distill import distill

    out = tmp_path_factory.mktemp("xa") / "levels"
    x, y = datasets.load("digits", "train")
    distill(None, x, y, levels=2, per_class=4, method="dm", steps=2, real_batch=8,
            embedding_network="small", export_dir=str(out))
    return str(out)


def _command_table(levels, tmp_path, capsys, architectures, seeds):
    from tn_keras.cli import main

    out = tmp_path / "xa.json"
    assert main(["distill-eval", "digits_taylornet", "--levels", levels, "--level", "2",
                 "--architectures", ",".join(architectures),
                 "--seeds", ",".join(map(str, seeds)), "--steps", "2", "--test-images", "60",
                 "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| level | images / class | architecture | distilled | random real |" in table
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert [r["architecture"] for r in rows] == list(architectures)
    assert all(r["level"] == 2 and r["per_class"] == 1 and r["images"] == 10 for r in rows)
    for r in rows:
        for result in (r["distilled"], r["random_real"]):
            assert len(result["accuracies"]) == len(seeds)
            assert all(0.0 <= a <= 1.0 for a in result["accuracies"])
            assert result["mean"] == pytest.approx(np.mean(result["accuracies"]))
        assert f"| 2 | 1 | {r['architecture']} |" in table
    assert report["test_images"] == 60 and report["seeds"] == list(seeds)


@pytest.mark.backend_neutral
def test_one_command_one_table(digits_levels, tmp_path, capsys):
    _command_table(digits_levels, tmp_path, capsys, ("resnet18",), (0,))


@pytest.mark.slow
def test_every_architecture_in_one_table(digits_levels, tmp_path, capsys):
    _command_table(digits_levels, tmp_path, capsys, config.ARCHITECTURES, (0, 1))


def test_bad_arguments_name_the_flag(digits_levels, capsys):
    from tn_keras.cli import main

    assert main(["distill-eval", "digits_taylornet", "--levels", digits_levels,
                 "--architectures", "convnet3,vgg"]) == 2
    assert "unknown architecture(s) vgg" in capsys.readouterr().err
    assert main(["distill-eval", "digits_taylornet", "--levels", digits_levels, "--level", "7",
                 "--architectures", "convnet3"]) == 2
    assert "--level 7: not in" in capsys.readouterr().err


@pytest.mark.backend_neutral
def test_networks_are_fresh_and_give_logits():
    resnet = xa.resnet18_style((8, 8, 1), 10)
    assert resnet.output_shape == (None, 10)
    assert sum(1 for layer in resnet.layers if layer.__class__.__name__ == "Add") == 8
    assert xa.zoo_architecture("taylornet", "cifar10") == "cifar_taylornet"
    assert xa.zoo_architecture("relu", "fashion_mnist") == "mnist_convnet_relu"
    build = xa.builder("taylornet", "digits")
    a, b = build((8, 8, 1), 10, 0), build((8, 8, 1), 10, 0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)  # seeded: the same fresh weights
    assert a.layers[-1].get_config().get("activation") in ("linear", None)
    with pytest.raises(ValueError, match="architecture must be one of 'convnet3'"):
        xa.builder("vgg", "mnist")
    with pytest.raises(ValueError, match="no zoo model for dataset 'svhn'"):
        xa.zoo_architecture("relu", "svhn")


def test_zoo_partners_come_from_the_registrations():
    """The "taylornet" / "relu" rows are the registrations' ``cross_architecture_role``: each
    the zoo model of its dataset (or one it is registered to stand in for), of that family,
    and the old table's choices still hold."""
    from tn_keras import zoo
    from tn_keras.distill.config import ZOO_ARCHITECTURES
    from tn_keras.zoo.registry import get_spec

    assert set(ZOO_ARCHITECTURES) == {"taylornet", "relu"}
    for role, names in ZOO_ARCHITECTURES.items():
        for dataset, name in names.items():
            spec = get_spec(name)
            assert name in zoo.list() and spec.cross_architecture_role == role
            assert dataset in (spec.dataset,) + spec.cross_architecture_datasets
            assert spec.family == ("taylornet" if role == "taylornet" else "baseline")
            assert xa.zoo_architecture(role, dataset) == name
    assert ZOO_ARCHITECTURES["taylornet"]["digits"] == "digits_taylornet"
    assert ZOO_ARCHITECTURES["relu"]["digits"] == "mnist_convnet_relu"
    assert sorted(ZOO_ARCHITECTURES["relu"]) == ["cifar10", "digits", "fashion_mnist", "mnist"]
