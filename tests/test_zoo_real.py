"""Every shipped checkpoint still reaches its manifest's accuracy on the real test split(s)."""
import pytest

from tn_keras import zoo
from tn_keras.training import evaluate

SHIPPED = zoo.list(pretrained=True)
TOLERANCE = 0.002  # 0.2 accuracy points


@pytest.mark.real_data
@pytest.mark.parametrize("name", SHIPPED or [pytest.param(
    None, marks=pytest.mark.skip(reason="no checkpoint ships in saved_models/"))])
def test_shipped_checkpoint_reaches_its_manifest_accuracy(name, real_data_dir):
    manifest = zoo.find(name).manifest
    model = zoo.load(name, compile=False)
    results = evaluate(model, manifest["dataset"], data_dir=real_data_dir)
    for split, result in results.items():
        recorded = manifest["metrics"][f"{split}_accuracy"]
        assert result["examples"] == manifest["metrics"][f"{split}_examples"]
        assert result["accuracy"] >= recorded - TOLERANCE, (split, result, recorded)
