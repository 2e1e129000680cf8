"""A checkpoint's readability (share of the low orders, cancellation) on its card, reproduced."""
import numpy as np
import pytest

from tn_keras import zoo
from tn_keras.zoo import cards
from tn_keras.zoo import readability


def test_recorded_readability_is_reproduced():
    """digits ships with tn_keras: re-measure what its manifest records."""
    recorded = zoo.find("digits_taylornet").manifest[readability.KEY]
    measured = readability.measure("digits_taylornet", images=recorded["images"])
    for key, value in recorded.items():
        if key == "seconds":
            continue
        if isinstance(value, float):
            assert measured[key] == pytest.approx(value, rel=1e-9), key
        else:
            assert measured[key] == value, key
    shares = [measured[f"share_orders_le_{k}"] for k in range(3)]
    assert 0 <= shares[0] <= shares[1] <= shares[2] <= 1
    assert measured["median_cancellation"] >= 1


def test_card_states_readability_when_the_manifest_records_it():
    manifest = zoo.find("digits_taylornet").manifest
    card = cards.render(manifest)
    result = manifest[readability.KEY]
    assert "## Readability" in card and result["command"] in card
    assert f"{100 * result['share_orders_le_2']:.1f} %" in card
    assert card.index("## Metrics") < card.index("## Readability") < card.index("## Training")


def test_describe_formats_small_shares_and_degree_two():
    result = {"about": "mean", "images": 10, "split": "test", "degree": 2,
              "share_orders_le_0": 0.163,
              "share_orders_le_1": 0.000741, "share_orders_le_2": 1.0,
              "median_cancellation": 1.28, "command": "cmd"}
    text = readability.describe(result)
    assert "16.3 %, 0.074 %, 100.0 %" in text and "degree 2: these are all" in text
    assert np.isfinite(result["median_cancellation"])
