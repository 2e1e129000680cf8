"""Model cards are generated, never hand-edited: regenerating them gives what ships."""
import os
import subprocess
import sys
import textwrap

import pytest

from tn_keras import zoo
from tn_keras.zoo import cards


@pytest.mark.parametrize("name", zoo.list(pretrained=True))
def test_shipped_card_equals_the_regenerated_one(name):
    checkpoint = zoo.find(name)
    path = os.path.join(checkpoint.folder, cards.CARD_NAME)
    with open(path, encoding="utf-8") as f:
        shipped = f.read()
    assert shipped == cards.render(checkpoint.manifest), (
        f"{path} differs from its generated card: regenerate it with "
        f"`tn-keras card {name} > {path}`")


def test_card_holds_what_a_card_must(capsys):
    from tn_keras.cli import main

    assert main(["card", "cifar_taylornet"]) == 0
    card = capsys.readouterr().out
    manifest = zoo.find("cifar_taylornet").manifest
    for heading in ("## Architecture", "## Data", "## Metrics", "## Training",
                    "## Intended use", "## Limitations", "## Citation", "## Licence"):
        assert heading in card, heading
    assert "| `cg1` | PolyCG | (16, 16, 64) |" in card
    assert "JPEG-compressed" in card  # CIFAR-10's test-split caveat
    # The default tag's figures, from its manifest.
    lossless = manifest["metrics"]["test_lossless_accuracy"]
    assert f"| test_lossless | {100 * lossless:.2f} % | 1,000 |" in card
    assert manifest.provenance.command in card and manifest.sha256 in card


def test_card_says_how_to_load_the_file_and_points_at_its_citation():
    card = cards.render(zoo.find("digits_taylornet").manifest)
    assert "`import tn_keras` first" in card and "keras.saving.load_model" in card
    assert "citation above" in card
    assert card.index("## Citation") < card.index("## Licence")  # "above" is true
    assert "compiled and ready for `fit`" in card


@pytest.mark.parametrize("name", zoo.list(pretrained=True))
def test_shipped_cards_carry_hub_metadata_equal_to_their_manifests(name):
    checkpoint = zoo.find(name)
    with open(os.path.join(checkpoint.folder, cards.CARD_NAME), encoding="utf-8") as f:
        meta, body = cards.split_front_matter(f.read())
    assert body.startswith(f"\n# {name}\n")
    assert (meta["license"], meta["library_name"]) == ("apache-2.0", "keras")
    assert set(cards.REQUIRED_METADATA) <= set(meta) and "tn_keras" in meta["tags"]
    metrics = checkpoint.manifest["metrics"]
    (entry,) = meta["model-index"]
    assert entry["name"] == name
    reported = {r["dataset"]["split"]: r["metrics"][0]["value"] for r in entry["results"]}
    assert reported == {k[:-len("_accuracy")]: v for k, v in metrics.items()
                        if k.endswith("_accuracy")}
    assert cards.check(checkpoint.folder, checkpoint.manifest) == []
    # The command that made it names no folder of the machine it was trained on.
    assert " --out /" not in checkpoint.manifest.provenance.command


def test_check_names_each_problem_of_a_card(tmp_path):
    import shutil

    from tn_keras.cli import main

    source = zoo.find("digits_taylornet")
    folder = tmp_path / "repo"
    shutil.copytree(source.folder, folder)
    card = folder / cards.CARD_NAME
    text = card.read_text(encoding="utf-8")
    assert main(["card", "digits_taylornet", "--weights", str(folder), "--check"]) == 0
    card.write_text(text.replace("value: 0.9888888888888889", "value: 0.99"), encoding="utf-8")
    (problem,) = cards.check(str(folder), source.manifest)
    assert "front matter 'model-index'" in problem
    card.write_text(text.replace("Research on", "Research about"), encoding="utf-8")
    (problem,) = cards.check(str(folder), source.manifest)
    assert "differs from the card generated from manifest.json" in problem
    card.write_text(text.split("---\n", 2)[2], encoding="utf-8")
    assert cards.check(str(folder), source.manifest) == [
        f"{card}: the card does not open with YAML front matter between '---' lines"]
    card.write_text("---\nlicense: [unclosed\n---\n", encoding="utf-8")
    (problem,) = cards.check(str(folder), source.manifest)
    assert "front matter is not YAML" in problem and "\n" not in problem
    assert main(["card", "digits_taylornet", "--weights", str(folder), "--check"]) == 1


def test_a_folder_laid_out_as_a_hub_repository_loads_by_its_path(tmp_path, monkeypatch):
    import shutil

    import numpy as np

    source = zoo.find("digits_taylornet")
    repo = tmp_path / "someone" / "digits-repo"
    shutil.copytree(source.folder, repo)
    x = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1)).astype("float32")
    expected = zoo.load("digits_taylornet").predict(x, verbose=0)
    np.testing.assert_array_equal(zoo.load(str(repo)).predict(x, verbose=0), expected)
    assert zoo.find(repo).arch == "digits_taylornet"  # a PathLike too
    # The same verification as a shipped checkpoint: a changed byte is refused.
    keras_file = repo / source.manifest.file
    data = bytearray(keras_file.read_bytes())
    data[-1] ^= 1
    keras_file.write_bytes(bytes(data))
    with pytest.raises(zoo.ChecksumError):
        zoo.load(str(repo))
    # A registered name wins over a folder of that name in the working directory.
    monkeypatch.chdir(tmp_path / "someone")
    shutil.copytree(repo, tmp_path / "someone" / "digits_taylornet")
    assert zoo.find("digits_taylornet").shipped


def test_every_shipped_checkpoint_loads_as_its_card_says_in_a_fresh_process():
    """The card's recipe, `import tn_keras` then `keras.saving.load_model`, loads every shipped
    file with its compile config (a checkpoint of the fast recipe names tn_keras's ScaledSGD,
    TriangularSchedule and smoothed loss, which `import tn_keras` must register)."""
    paths = [zoo.find(name).path for name in zoo.list(pretrained=True)]
    script = textwrap.dedent(f"""
        import keras
        import tn_keras
        for path in {paths!r}:
            keras.saving.load_model(path)
        print("loaded", len({paths!r}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"loaded {len(paths)}" in result.stdout


def test_a_test_time_augmented_split_counts_the_images_of_the_split_it_augments():
    metrics = {"test_accuracy": 0.8, "test_examples": 10000, "test_tta_accuracy": 0.81,
               "test_lossless_accuracy": 0.82, "test_lossless_examples": 1000,
               "test_lossless_tta_accuracy": 0.83}
    table = cards._metrics({"metrics": metrics, "evaluation_command": "tn-keras evaluate x"})
    assert "| test_tta | 81.00 % | 10,000 |" in table
    assert "| test_lossless_tta | 83.00 % | 1,000 |" in table
