"""``method="dm"``: distribution matching at the published scale (tiny synthetic data)."""
import json
import os

import numpy as np
import pytest

from tn_keras import distill as D
from tn_keras.distill import class_matching as cm
from tn_keras.distill import siamese_augmentation as dsa

from test_distill import SHAPE
from test_distill import synthetic_data

pytestmark = pytest.mark.backend_neutral

#: A few iterations, small real batches: the code paths of the published settings. DSA is off
#: where a test does not need it: under JAX its affine resampling makes each level's one
#: compilation several times slower (tests with it are few and small).
TINY = dict(method="dm", steps=4, real_batch=8, embedding_network="small", dsa=False)


def _settings(**change):
    return D.DistillConfig(**dict(TINY, **change)).resolved()


@pytest.mark.parametrize("network, dsa_on, learning_rate, ratio", [
    pytest.param("small", True, 1.0, 0.5, marks=pytest.mark.slow),
    ("small", False, 1.0, 0.5),
    # ConvNet-3's instance norm ignores brightness and contrast: a smaller drop in 40 steps,
    # down to the noise floor of 8 real images against 4.
    ("convnet3", False, 10.0, 0.8),
])
def test_lowers_its_own_matching_loss(network, dsa_on, learning_rate, ratio):
    x, y = synthetic_data()
    start = x[y == 0][:4].astype(np.float32) * 0.3 + 20  # far from class 0's distribution
    labels = np.zeros(4, np.int64)
    settings = _settings(steps=40, learning_rate=learning_rate, embedding_network=network,
                         dsa=dsa_on)
    stats = cm.pixel_statistics(x)
    # The same 8 random draws (networks, batches, augmentations) before and after.
    before = cm.mean_matching_loss(start, labels, x, y, settings, seed=99, stats=stats)
    out, losses = cm.match_classes(start, labels, x, y, settings, np.random.default_rng(1),
                                   stats)
    after = cm.mean_matching_loss(out, labels, x, y, settings, seed=99, stats=stats)
    assert after < ratio * before, (before, after)
    assert losses.shape == (40,) and np.mean(losses[-10:]) < np.mean(losses[:10])
    assert out.shape == start.shape and out.min() >= -1e-3 and out.max() <= 255 + 1e-3


def test_levels_halve_keep_labels_and_start_from_the_previous_level():
    x, y = synthetic_data()
    levels = D.distill(None, x, y, levels=3, per_class=8, seed=1, **TINY)
    assert [sorted(set(lv.images_per_class.values())) for lv in levels] == [[8], [4], [2], [1]]
    for lv in levels:
        assert lv.x.dtype == np.uint8 and lv.x.shape[1:] == SHAPE
        assert sorted(np.unique(lv.y)) == sorted(np.unique(y))
    # No iteration: every level-a image is one of level a-1's (the hierarchy, init="first").
    plain = D.distill(None, x, y, levels=2, per_class=8, seed=1, **dict(TINY, steps=0))
    for a in (1, 2):
        previous = {(im.tobytes(), int(c)) for im, c in zip(plain[a - 1].x, plain[a - 1].y)}
        assert all((im.tobytes(), int(c)) in previous for im, c in zip(plain[a].x, plain[a].y))


@pytest.mark.parametrize("dsa_on, levels", [
    (False, 2),
    pytest.param(True, 1, marks=pytest.mark.slow),
])
def test_is_deterministic_given_the_seed_and_differs_across_seeds(dsa_on, levels):
    x, y = synthetic_data()
    settings = dict(TINY, dsa=dsa_on, per_class=4, levels=levels)
    a = D.distill(None, x, y, seed=3, **settings)
    b = D.distill(None, x, y, seed=3, **settings)
    c = D.distill(None, x, y, seed=4, **settings)
    for la, lb in zip(a, b):
        np.testing.assert_array_equal(la.x, lb.x)
        np.testing.assert_array_equal(la.y, lb.y)
    assert not np.array_equal(a[-1].x, c[-1].x)


def test_matches_the_whole_class_not_only_level0():
    # Level 0 holds 2 images per class; "class" draws from all 16, "level0" from those 2.
    x, y = synthetic_data()
    whole = D.distill(None, x, y, levels=1, per_class=2, seed=5, match_against="class", **TINY)
    sub = D.distill(None, x, y, levels=1, per_class=2, seed=5, match_against="level0", **TINY)
    np.testing.assert_array_equal(whole[0].x, sub[0].x)
    assert not np.array_equal(whole[1].x, sub[1].x)
    pool = cm.ClassPool(x, y, np.unique(y))
    drawn, classes = pool.draw(np.random.default_rng(0), 16)
    assert drawn.dtype == np.uint8 and len(drawn) == len(x)  # the whole class, as stored
    assert sorted(map(bytes, drawn)) == sorted(map(bytes, x))
    np.testing.assert_array_equal(np.bincount(classes), np.bincount(y))


def test_manifest_records_the_published_settings(tmp_path):
    x, y = synthetic_data()
    out = str(tmp_path / "dm")
    D.distill(None, x, y, levels=1, per_class=4, export_dir=out, **TINY)
    with open(os.path.join(out, "level_1", "manifest.json")) as f:
        algorithm = json.load(f)["algorithm"]
    assert algorithm["algorithm"] == "distribution-matching-full/v1"
    assert (algorithm["match_against"], algorithm["embedding_network"], algorithm["real_batch"],
            algorithm["dsa"], algorithm["learning_rate"]) == ("class", "small", 8, False, 1.0)
    # A resumed run with one more level reuses level 1 and adds level 2.
    levels = D.distill(None, x, y, levels=2, per_class=4, export_dir=out, resume=True, **TINY)
    assert [lv.reused for lv in levels] == [True, True, False]
    with pytest.raises(ValueError, match="different settings"):
        D.distill(None, x, y, levels=1, per_class=4, export_dir=out, resume=True,
                  **dict(TINY, real_batch=4))


def test_model_none_is_refused_for_the_embedding_method():
    x, y = synthetic_data()
    with pytest.raises(ValueError, match="model is None: method 'embedding'"):
        D.distill(None, x, y, levels=1)


def _numpy_embedding(z, kernels, network):
    """Independent NumPy reference: same-padded 3x3 convolutions, instance norm / ReLU / pool."""
    h = z.astype(np.float64)
    for k in kernels:
        n, height, width, _ = h.shape
        padded = np.pad(h, [(0, 0), (1, 1), (1, 1), (0, 0)])
        h = sum(padded[:, i:i + height, j:j + width, :] @ k[i, j]
                for i in range(3) for j in range(3))
        if network == "convnet3":
            h = (h - h.mean(axis=(1, 2), keepdims=True)) / np.sqrt(
                h.var(axis=(1, 2), keepdims=True) + cm.INSTANCE_NORM_EPSILON)
        h = np.maximum(h, 0)
        h = h[:, :height // 2 * 2, :width // 2 * 2]
        blocks = h.reshape(n, height // 2, 2, width // 2, 2, -1)
        h = blocks.mean(axis=(2, 4)) if network == "convnet3" else blocks.max(axis=(2, 4))
    return h.reshape(len(h), -1)


@pytest.mark.parametrize("network", ["convnet3", "small"])
def test_embedding_against_numpy(network):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 8, 8, 2)).astype(np.float32)
    kernels = cm.draw_network(rng, network, 2)
    if network == "convnet3":
        kernels = [k[..., :8] if i == 0 else k[:, :, :8, :8] for i, k in enumerate(kernels)]
    got = np.asarray(cm.embed(z, kernels, network))
    np.testing.assert_allclose(got, _numpy_embedding(z, kernels, network), rtol=2e-4,
                               atol=2e-4)


def test_siamese_augmentation_kinds_against_numpy():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    classes = np.array([0, 1, 2, 3])
    names = dsa.kinds_for(3)
    kinds = np.array([names.index("crop"), names.index("flip"), names.index("colour"),
                      names.index("cutout")])
    params = dsa.draw_parameters(np.random.default_rng(1), kinds, classes, 8, 8, 3)
    out = np.asarray(dsa.augment(images, **params))
    # crop: an integer shift with zeros shifted in.
    dy, dx = int(params["transform"][0, 5]), int(params["transform"][0, 2])
    expected = np.zeros_like(images[0])
    src = images[0][max(dy, 0):8 + min(dy, 0), max(dx, 0):8 + min(dx, 0)]
    expected[max(-dy, 0):max(-dy, 0) + src.shape[0], max(-dx, 0):max(-dx, 0) + src.shape[1]] = src
    np.testing.assert_allclose(out[0], expected, atol=1e-5)
    # flip: the mirror image or the image itself.
    flipped = params["transform"][1, 0] < 0
    np.testing.assert_allclose(out[1], images[1][:, ::-1] if flipped else images[1], atol=1e-5)
    # colour: brightness, saturation, contrast.
    b, s, c = params["colour"][2]
    x = images[2] + (b - 0.5)
    x = x.mean(-1, keepdims=True) + (x - x.mean(-1, keepdims=True)) * 2 * s
    x = x.mean() + (x - x.mean()) * (c + 0.5)
    np.testing.assert_allclose(out[2], x, rtol=1e-4, atol=1e-4)
    # cutout: a 4x4 square (half the side) of zeros, the rest untouched.
    zeroed = np.all(out[3] == 0, axis=-1)
    assert 1 <= zeroed.sum() <= 16
    np.testing.assert_allclose(out[3][~zeroed], images[3][~zeroed], atol=1e-6)
    # Kinds not drawn are the identity.
    identity = dsa.draw_parameters(np.random.default_rng(2), np.array([0]), np.zeros(1, int),
                                   8, 8, 3)
    identity["colour"][:] = 0.5
    np.testing.assert_allclose(np.asarray(dsa.augment(images[:1], **identity)), images[:1],
                               atol=1e-5)


def test_the_cli_shows_dm_progress_lines(monkeypatch, capsys):
    """``tn-keras distill --method dm`` prints the loss and seconds per iteration as it goes
    (an hour-long level is not silent)."""
    import logging

    from tn_keras.cli.distill_command import show_progress

    from tn_keras.cli.distill_command import _StderrHandler

    logger = logging.getLogger("tn_keras.distill")
    before = list(logger.handlers)
    # A CLI command run earlier in this process installed it already; start without it.
    logger.handlers[:] = [h for h in before if not isinstance(h, _StderrHandler)]
    try:
        show_progress()
        show_progress()  # once only
        assert sum(isinstance(h, _StderrHandler) for h in logger.handlers) == 1
        monkeypatch.setattr(cm, "LOG_EVERY", 2)
        x, y = synthetic_data()
        cm.match_classes(x[:2].astype(np.float32), y[:2], x, y, _settings(steps=4),
                         np.random.default_rng(0))
    finally:
        logger.handlers[:] = before
    lines = [l for l in capsys.readouterr().err.splitlines() if "dm iteration" in l]
    assert [l.split(":")[1].strip() for l in lines] == ["dm iteration 2/4", "dm iteration 4/4"]
    assert all(l.startswith("tn-keras distill: ") and "s/iteration" in l for l in lines)
