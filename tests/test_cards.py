"""Model cards are generated, never hand-edited: regenerating them gives what ships."""
import os

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
    assert "| test_lossless | 80.60 % | 1,000 |" in card
    assert manifest.provenance.command in card and manifest.sha256 in card


def test_card_says_how_to_load_the_file_and_points_at_its_citation():
    card = cards.render(zoo.find("digits_taylornet").manifest)
    assert "`import tn_keras` first" in card and "keras.saving.load_model" in card
    assert "citation above" in card
    assert card.index("## Citation") < card.index("## Licence")  # "above" is true
    assert "compiled and ready for `fit`" in card
