"""Eq. (S3)'s null curves (`tn_keras.distill.null_curves`) and the Figs. S5/S6 record that draws
them beside the distillation: small synthetic data, NumPy references written independently."""
import json
import os

import numpy as np
import pytest

from tn_keras.distill import null_curves as N
from tn_keras.distill.similarity import similarity

pytestmark = pytest.mark.backend_neutral

SHAPE = (3, 3, 1)


def images(counts, seed=0):
    """Random non-zero uint8 images, ``counts[c]`` of class ``c``, classes interleaved."""
    y = np.concatenate([np.full(n, c) for c, n in enumerate(counts)])
    y = np.random.default_rng(seed + 1).permutation(y)
    x = np.random.default_rng(seed).integers(1, 256, (len(y),) + SHAPE).astype(np.uint8)
    return x, y


def pairwise_s(x):
    """Eq. (S3)'s s by its definition: the mean of <u_m, u_n> over ordered pairs m != n."""
    u = x.reshape(len(x), -1).astype(np.float64)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    gram = u @ u.T
    n = len(u)
    return (gram.sum() - np.trace(gram)) / (n * (n - 1))


def averaged_by_hand(x, y, levels, seed):
    """The averaging null written out: per level and class, in class order, a permutation from
    default_rng([seed, level]) cut into pairs, the leftover image joining the last pair."""
    out = [(x.astype(np.float64), y)]
    for a in range(1, levels + 1):
        x, y = out[-1]
        rng = np.random.default_rng([seed, a])
        new_x, new_y = [], []
        for c in np.unique(y):
            perm = rng.permutation(np.flatnonzero(y == c))
            g = len(perm) // 2
            groups = [perm[2 * i:2 * i + 2] for i in range(g - 1)] + [perm[2 * (g - 1):]]
            new_x += [x[g].mean(axis=0) for g in groups]
            new_y += [c] * len(groups)
        out.append((np.array(new_x), np.array(new_y)))
    return out


def test_averaging_null_against_numpy_by_hand():
    # Class 1 has 7 images: level 1 has a group of three (the leftover joins the last pair).
    x, y = images([8, 7])
    expected = averaged_by_hand(x, y, levels=2, seed=5)
    got = N.averaging_levels(x, y, levels=2, group_size=2, seed=5)
    for (gx, gy), (ex, ey) in zip(got, expected):
        np.testing.assert_array_equal(gy, ey)
        np.testing.assert_allclose(gx, ex, rtol=1e-6)  # float32 means of float64 sums
    curves = N.null_curves(x, y, (x, y), levels=2, group_size=2, seed=5)
    for a, (ex, ey) in enumerate(expected):
        for c in (0, 1):
            row = curves[N.AVERAGING][a][c]
            assert row["n"] == int(np.sum(ey == c))
            if row["n"] > 1:
                assert row["s"] == pytest.approx(pairwise_s(ex[ey == c]), abs=1e-6)
                assert row["d"] == pytest.approx(2 - 2 * row["s"], abs=1e-9)
            else:
                assert np.isnan(row["s"])
    assert [curves[N.AVERAGING][a][1]["n"] for a in range(3)] == [7, 3, 1]


def test_an_averaged_image_is_the_mean_of_distinct_real_images():
    """Level 0 as indicator images (image j lights pixel j alone): an image of level a lights
    the 2^a level-0 images it averages, all of its class, and no two images share one."""
    y = np.repeat([0, 1], 8)
    x = np.eye(16).reshape(16, 4, 4, 1) * 255
    for a, (xa, ya) in enumerate(N.averaging_levels(x, y, levels=3, seed=2)):
        members = [np.flatnonzero(image.reshape(-1)) for image in xa]
        assert all(len(m) == 2 ** a for m in members)
        assert all(set(y[m]) == {c} for m, c in zip(members, ya))
        assert len(np.unique(np.concatenate(members))) == 16
        np.testing.assert_allclose(xa.reshape(len(xa), -1).sum(axis=1), 255)


def test_random_real_null_draws_the_cascades_counts_of_real_images():
    level0 = images([8, 8, 6], seed=3)
    # A pool whose pixel (0, 0) is the image's index: a drawn image says which one it is.
    n_pool = 90
    pool_y = np.arange(n_pool) % 3
    pool_x = np.random.default_rng(4).integers(0, 256, (n_pool,) + SHAPE).astype(np.uint8)
    pool_x[:, 0, 0, 0] = np.arange(n_pool)
    nulls = N.null_levels(*level0, (pool_x, pool_y), levels=2, seed=7)
    averaged, real = nulls[N.AVERAGING], nulls[N.RANDOM_REAL]
    assert real[0][0] is averaged[0][0]  # level 0 is shared, not drawn again
    for a in (1, 2):
        (ax, ay), (rx, ry) = averaged[a], real[a]
        assert np.bincount(ry).tolist() == np.bincount(ay).tolist() == [8 // 2 ** a,
                                                                          8 // 2 ** a,
                                                                          6 // 2 ** a]
        index = rx[:, 0, 0, 0].astype(int)
        assert len(set(index)) == len(index)  # without replacement
        np.testing.assert_array_equal(rx, pool_x[index])  # whole real images
        np.testing.assert_array_equal(ry, pool_y[index])
    again = N.null_levels(*level0, (pool_x, pool_y), levels=2, seed=7)[N.RANDOM_REAL]
    other = N.null_levels(*level0, (pool_x, pool_y), levels=2, seed=8)[N.RANDOM_REAL]
    np.testing.assert_array_equal(again[1][0], real[1][0])
    assert not np.array_equal(other[1][0], real[1][0])


def test_averaging_follows_the_mean_of_k_to_the_a_images_and_random_real_stays_flat():
    """The nulls on data with a known answer: images mu_c + noise. The mean of K = 2^a of them
    has E|x|^2 = |mu|^2 + V/K and two such means E<x, x'> = |mu|^2, so s is close to
    |mu|^2 / (|mu|^2 + V/K); random draws keep the class's own s at every size."""
    rng = np.random.default_rng(0)
    mu = rng.uniform(40, 160, (2, 64))
    y = np.repeat([0, 1], 2000)
    x = np.clip(mu[y] + rng.normal(0, 80, (len(y), 64)), 0, 255).reshape(-1, 8, 8, 1)
    curves = N.null_curves(x[::31], y[::31], (x, y), levels=5, seed=1)  # 65 images per class
    averaged = N.mean_s(curves[N.AVERAGING])
    real = N.mean_s(curves[N.RANDOM_REAL])
    flat = x.reshape(len(x), -1)
    centres = [flat[y == c].mean(axis=0) for c in (0, 1)]
    spreads = [np.mean(np.sum((flat[y == c] - centres[c]) ** 2, axis=1)) for c in (0, 1)]
    for a in range(6):
        predicted = np.mean([m @ m / (m @ m + v / 2 ** a) for m, v in zip(centres, spreads)])
        assert averaged[a] == pytest.approx(predicted, abs=0.01), a
    pool_s = N.mean_s({0: similarity(x, y)})[0]
    # Levels 0-3 keep 8 images per class or more; the smaller draws are noisier.
    assert max(abs(real[a] - pool_s) for a in range(4)) < 0.02
    assert averaged[5] > 0.98 > pool_s + 0.2


@pytest.mark.parametrize("kwargs, name", [
    (dict(group_size=1), "group_size"),
    (dict(levels=9), "levels"),
    (dict(levels=-1), "levels"),
    (dict(seed=-1), "seed"),
    (dict(seed=1.5), "seed"),
    (dict(pool="train"), "pool"),
])
def test_bad_arguments_name_themselves_in_one_line(kwargs, name):
    x, y = images([8, 8])
    args = dict(pool=(x, y), levels=2, group_size=2, seed=0) | kwargs
    with pytest.raises(ValueError, match=name) as error:
        N.null_curves(x, y, **args)
    assert "\n" not in str(error.value)


def test_a_random_draw_larger_than_the_pool_is_refused():
    x, y = images([8, 2])
    with pytest.raises(ValueError, match="counts: class 1 asks for 4") as error:
        N.random_real_draw(x, y, {0: 4, 1: 4}, seed=0, level=1)
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="x0, y0"):
        N.null_curves(x, y[:-1], (x, y), levels=1)


# The figure: Figs. S5/S6's record and plot with the three curves.


def _cascade():
    """A stand-in for `distill`'s levels (the averaging null plus noise, rounded like the
    cascade) and the nulls from its level 0."""
    from tn_keras.distill import Level

    rng = np.random.default_rng(0)
    x0, y0 = images([8, 8, 8], seed=9)
    levels = []
    for a, (x, y) in enumerate(N.averaging_levels(x0, y0, levels=3, seed=0)):
        x = np.clip(np.round(x + (rng.normal(0, 20, x.shape) if a else 0)), 0, 255)
        levels.append(Level(a, x.astype(np.uint8), y, similarity(x, y)))
    pool = images([40, 40, 40], seed=10)
    return levels, N.null_curves(x0, y0, pool, levels=3, seed=0)


def _spec():
    from tn_keras.figures.config import DistillationSpec

    return DistillationSpec("Fig. toy", "toy_model", 8, 40, "test", 10)


def test_similarity_figure_records_the_three_curves(tmp_path):
    from tn_keras.figures.distillation import similarity_figure

    levels, nulls = _cascade()
    record = similarity_figure(str(tmp_path), _spec(), "toy", levels, 1.0, 0, nulls)
    with open(tmp_path / "toy_similarity.json") as f:
        saved = json.load(f)
    assert set(saved["curves"]) == {"distilled", "averaging_only", "random_real"}
    assert saved["levels"] == [0, 1, 2, 3]
    tables = {"distilled": {lv.level: lv.similarity for lv in levels}, **nulls}
    for name, table in tables.items():
        for a in range(3):  # level 3 has one image per class: null in JSON
            for c in range(3):
                assert saved["curves"][name][str(a)][str(c)]["s"] == pytest.approx(
                    table[a][c]["s"], abs=1e-12)
        assert saved["curves"][name]["3"]["0"]["s"] is None
        means = N.mean_s(table)
        assert saved["mean_s_by_curve"][name][:3] == pytest.approx([means[a] for a in range(3)])
        # The caption states every curve's mean s at level 2, the last with pairs.
        assert f"{means[2]:.3f}" in record.caption
    assert saved["mean_s"] == saved["mean_s_by_curve"]["distilled"]
    assert "does not show" in record.caption and "Paper:" in record.caption
    svg = (tmp_path / "toy_similarity.svg").read_text()
    assert all(label.split(" (")[0] in svg for label in N.LABELS.values())
    assert os.path.getsize(tmp_path / "toy_similarity.png") > 10_000


def test_similarity_figure_refuses_nulls_of_another_cascade(tmp_path):
    from tn_keras.figures.distillation import similarity_figure

    levels, nulls = _cascade()
    with pytest.raises(ValueError, match="nulls must be") as error:
        similarity_figure(str(tmp_path), _spec(), "toy", levels, 1.0, 0,
                          {N.AVERAGING: nulls[N.AVERAGING]})
    assert "\n" not in str(error.value)
    shorter = {name: {a: t for a, t in table.items() if a < 3} for name, table in nulls.items()}
    with pytest.raises(ValueError, match="nulls: the 'averaging_only' curve") as error:
        similarity_figure(str(tmp_path), _spec(), "toy", levels, 1.0, 0, shorter)
    assert "\n" not in str(error.value)


def test_plot_similarity_curves_draws_a_panel_per_class_and_refuses_too_many(tmp_path):
    from tn_keras.distill import plot_similarity_curves

    levels, nulls = _cascade()
    curves = {"distilled": {lv.level: lv.similarity for lv in levels}, **nulls}
    plot_similarity_curves(curves, str(tmp_path / "c.svg"), labels=N.LABELS)
    svg = (tmp_path / "c.svg").read_text()
    assert all(f"class {c}" in svg for c in range(3)) and "mean over classes" in svg
    assert "no pairs" in svg
    with pytest.raises(ValueError, match="curves must be") as error:
        plot_similarity_curves({str(i): curves["distilled"] for i in range(4)},
                               str(tmp_path / "d.svg"))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="labels must be"):
        plot_similarity_curves(curves, str(tmp_path / "d.svg"), labels=["distilled"])


@pytest.mark.parametrize("group_size", [1, 0, 2.0, True])
def test_a_figure_spec_refuses_a_group_size_below_two(group_size):
    from tn_keras.figures.config import DistillationSpec

    with pytest.raises(ValueError, match="group_size must be") as error:
        DistillationSpec("Fig. toy", "toy_model", 8, 40, "test", 10, group_size=group_size)
    assert "\n" not in str(error.value)
