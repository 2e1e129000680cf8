"""Every shipped checkpoint still reaches its manifest's accuracy on the real test split(s)."""
import pytest

from tn_keras import zoo
from tn_keras.training import evaluate
from tn_keras.zoo import checkpoints

SHIPPED = [n for n in zoo.list() if checkpoints.read_manifest(checkpoints.shipped_dir(n))]
TOLERANCE = 0.002  # 0.2 accuracy points


@pytest.mark.real_data
@pytest.mark.parametrize("name", SHIPPED or [pytest.param(
    None, marks=pytest.mark.skip(reason="no checkpoint ships in saved_models/"))])
def test_shipped_checkpoint_reaches_its_manifest_accuracy(name, real_data_dir):
    _, manifest = checkpoints.find_checkpoint(name)
    model = zoo.load(name, compile=False)
    results = evaluate(model, manifest["dataset"], data_dir=real_data_dir)
    for split, result in results.items():
        recorded = manifest["metrics"][f"{split}_accuracy"]
        assert result["examples"] == manifest["metrics"][f"{split}_examples"]
        assert result["accuracy"] >= recorded - TOLERANCE, (split, result, recorded)
