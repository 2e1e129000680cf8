"""``method="distribution"``: distribution matching with random ConvNets (synthetic data)."""
import json
import os

import numpy as np
import pytest

from tn_keras import distill as D
from tn_keras.distill.distribution_matching import match

from test_distill import FAST
from test_distill import SHAPE
from test_distill import synthetic_data
from test_distill import tiny_model

pytestmark = pytest.mark.backend_neutral

DM = dict(method="distribution", steps=5)


def test_matching_moves_the_synthetic_images_towards_the_real_class():
    # Real images of one class are bright, the synthetic start is dark: matching the mean
    # random-ConvNet embedding must brighten them (the loss has no other way down).
    rng = np.random.default_rng(0)
    real = np.clip(rng.normal(190, 20, size=(40,) + SHAPE), 0, 255).astype(np.float32)
    start = np.full((4,) + SHAPE, 30.0, np.float32)
    out = match(start, np.zeros(4, np.int64), real, np.zeros(40, np.int64),
                        iterations=60, learning_rate=5.0, rng=np.random.default_rng(1))
    assert out.shape == start.shape
    assert out.min() >= 0 and out.max() <= 255
    assert out.mean() > 30.0 + 100  # most of the way from 30 to ~190


def test_zero_iterations_keep_the_start():
    start = np.random.default_rng(0).uniform(0, 255, (3,) + SHAPE).astype(np.float32)
    out = match(start, np.array([0, 1, 1]), start, np.array([0, 1, 1]), 0, 1.0,
                np.random.default_rng(0))
    np.testing.assert_array_equal(out, start)


def test_levels_counts_and_first_member_start(tmp_path):
    x, y = synthetic_data()
    levels = D.distill(tiny_model(), x, y, levels=3, seed=2, **DM)
    assert [min(lv.images_per_class.values()) for lv in levels] == [16, 8, 4, 2]
    assert all(lv.x.dtype == np.uint8 and lv.x.shape[1:] == SHAPE for lv in levels)
    # steps=0: every level-1 image is exactly its group's first member (a real image).
    plain = D.distill(tiny_model(), x, y, levels=1, seed=2, method="distribution", steps=0)
    level0 = {im.tobytes() for im in plain[0].x}
    assert all(im.tobytes() in level0 for im in plain[1].x)


def test_is_deterministic_given_the_seed():
    x, y = synthetic_data()
    a = D.distill(tiny_model(), x, y, levels=2, seed=3, **DM)
    b = D.distill(tiny_model(), x, y, levels=2, seed=3, **DM)
    for la, lb in zip(a, b):
        np.testing.assert_array_equal(la.x, lb.x)
        np.testing.assert_array_equal(la.y, lb.y)


def test_manifest_records_the_method_and_its_defaults(tmp_path):
    x, y = synthetic_data()
    out = str(tmp_path / "dm")
    D.distill(tiny_model(), x, y, levels=1, export_dir=out, method="distribution", steps=2)
    with open(os.path.join(out, "level_1", "manifest.json")) as f:
        algorithm = json.load(f)["algorithm"]
    assert algorithm["method"] == "distribution"
    assert algorithm["algorithm"] == "distribution-matching/v1"
    assert algorithm["init"] == "first" and algorithm["learning_rate"] == 2.55
    # A resume with the other method is refused rather than mixing levels.
    with pytest.raises(ValueError, match="different settings"):
        D.distill(tiny_model(), x, y, levels=1, export_dir=out, resume=True, **FAST)


def test_unknown_method_is_refused_before_any_work(tmp_path):
    x, y = synthetic_data()
    with pytest.raises(ValueError, match="method must be one of 'embedding', 'distribution', 'dm'"):
        D.distill(tiny_model(), x, y, levels=1, method="gradient",
                  export_dir=str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_match_against_level0_is_recorded_and_differs_from_the_cascade(tmp_path):
    x, y = synthetic_data()
    out = str(tmp_path / "l0")
    level0 = D.distill(tiny_model(), x, y, levels=2, seed=4, export_dir=out,
                       match_against="level0", **DM)
    cascade = D.distill(tiny_model(), x, y, levels=2, seed=4, **DM)
    # Level 1 matches level 0 either way; level 2 matches level 0 or level 1.
    np.testing.assert_array_equal(level0[1].x, cascade[1].x)
    assert not np.array_equal(level0[2].x, cascade[2].x)
    with open(os.path.join(out, "level_2", "manifest.json")) as f:
        assert json.load(f)["algorithm"]["match_against"] == "level0"
    with pytest.raises(ValueError,
                       match="match_against must be one of 'previous', 'level0', 'class'; "
                             "got 'real'"):
        D.distill(tiny_model(), x, y, levels=1, match_against="real", **DM)


def test_cli_passes_the_method_through():
    from tn_keras.cli import build_parser

    args = build_parser().parse_args(["distill", "mnist_taylornet", "--levels", "2", "--out", "o",
                                      "--method", "distribution", "--match-against", "level0"])
    assert (args.method, args.match_against, args.steps, args.learning_rate) == (
        "distribution", "level0", None, None)
    default = build_parser().parse_args(["distill", "mnist_taylornet", "--levels", "2", "--out",
                                         "o"])
    assert (default.method, default.match_against) == ("embedding", None)  # the method's
