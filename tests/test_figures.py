"""`tn-keras figures` and `tn-keras distill-eval`: the paper's figures, end to end.

The fast set (digits, mnist7_taylor: what ships with tn_keras) runs here; the full set
(MNIST, CIFAR-10) under the real-data marker. index.html is rendered by headless Chromium when
it is installed: every <img> must load (naturalWidth > 0).
"""
import json
import math
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from test_layers_structure import fig_s1_nonzero_monomials

CHECK_SCRIPT = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); })
                   .map(function (i) { return i.getAttribute('src'); });
  var out = document.createElement('pre');
  out.textContent = 'TN_KERAS_CHECK ' + JSON.stringify({total: imgs.length, broken: broken});
  document.body.appendChild(out);
});
</script>"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("Chromium is not installed (Debian: apt-get install chromium): index.html was "
                "not rendered in a browser")


def images_in_browser(folder):
    """``{"total": n, "broken": [...]}`` from headless Chromium rendering ``folder/index.html``."""
    page = open(os.path.join(folder, "index.html"), encoding="utf-8").read()
    probe = os.path.join(folder, "_browser_check.html")
    with open(probe, "w", encoding="utf-8") as f:
        f.write(page.replace("</body>", CHECK_SCRIPT + "</body>"))
    try:
        result = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
             "--virtual-time-budget=10000", "--dump-dom", "file://" + os.path.abspath(probe)],
            capture_output=True, text=True, timeout=120)
    finally:
        os.remove(probe)
    found = re.search(r"TN_KERAS_CHECK (\{.*?\})</pre>", result.stdout)
    assert found, f"no result from Chromium: {result.stderr[-2000:]}"
    return json.loads(found.group(1))


def check_folder(folder):
    """Every figure: a PNG that loads, its SVG, data beside it, and a place in index.html."""
    index = open(os.path.join(folder, "index.html"), encoding="utf-8").read()
    pngs = sorted(f for f in os.listdir(folder) if f.endswith(".png"))
    for png in pngs:
        with Image.open(os.path.join(folder, png)) as image:
            assert min(image.size) > 200, png
        assert os.path.isfile(os.path.join(folder, png[:-4] + ".svg")), png
        assert f'src="{png}"' in index, png
        assert any(os.path.isfile(os.path.join(folder, png[:-4] + ext))
                   for ext in (".csv", ".json", ".npz")), f"no data beside {png}"
    return pngs


@pytest.fixture(scope="module")
def fast_figures(tmp_path_factory):
    from tn_keras.cli import main

    out = str(tmp_path_factory.mktemp("figures") / "out")
    assert main(["figures", "--out", out]) == 0
    return out


def test_fig_s1_is_computed_from_real_layers():
    from tn_keras.figures import fig_s1

    poly = fig_s1.tree_polynomial(seed=3)
    scale = max(abs(c) for c in poly.values())
    nonzero = {e for e, c in poly.items() if abs(c) > 1e-9 * scale}
    assert nonzero == fig_s1_nonzero_monomials() and len(nonzero) == 54
    # The red box: the tree of linear maps (a convolution) keeps 1, x1, x2 (row b = 1) and
    # x3, x4 (column a = 1); indices into PAIR_MONOMIALS, x1 / x3 at 1 and x2 / x4 at 5.
    boxed = fig_s1.nonzero_grid(fig_s1.tree_polynomial(seed=3, order=1))
    assert sorted(map(tuple, np.argwhere(boxed))) == [(0, 0), (0, 1), (0, 5), (1, 0), (5, 0)]


@pytest.mark.backend_neutral
def test_magnitude_levels_and_order_bins():
    from tn_keras.figures.fig_s4 import magnitude_levels
    from tn_keras.figures.whole_model import order_bins

    q = np.array([[[1.0, -0.6], [0.3, 0.06]], [[0.0, 0.02], [-0.005, 0.0]]])
    np.testing.assert_array_equal(magnitude_levels(q), [[[4, 4], [3, 2]], [[0, 4], [3, 0]]])
    assert order_bins(8) == [(k, k) for k in range(9)]
    bins = order_bins(32)
    assert bins[0] == (0, 0) and bins[-1][1] == 32
    assert [k for low, high in bins for k in range(low, high + 1)] == list(range(33))


def test_fig_s4_csv_is_the_layers_per_monomial_weights(tmp_path):
    """The figure's Q_ij against the TaylorDense's own weights, read with NumPy: Q_ij of the
    monomial x_i x_j (i <= j) is quadratic_kernel's row of (i, j) in numpy.triu_indices order,
    divided by std^2 of the Normalization in front (raw pixels in). Counts: a NumPy histogram."""
    import csv

    from tn_keras import zoo
    from tn_keras.figures import fig_s4

    model = zoo.load("mnist7_taylor", compile=False)
    fig_s4.make(str(tmp_path), model)
    kernel = np.asarray(model.get_layer("taylor").quadratic_kernel, np.float64)  # (1225, 10)
    norm = next(layer for layer in model.layers if type(layer).__name__ == "Normalization")
    variance = float(np.asarray(norm.get_config()["variance"], np.float64).reshape(-1)[0])
    expected = kernel / variance  # Q_ij / std^2, rows (i, j) in triu order
    rows = list(csv.DictReader(open(tmp_path / "fig_s4_quadratic.csv")))
    assert len(rows) == 10 * 1225
    got = np.array([float(r["weight"]) for r in rows]).reshape(10, 1225).T
    i = np.array([int(r["i"]) for r in rows[:1225]])
    j = np.array([int(r["j"]) for r in rows[:1225]])
    np.testing.assert_array_equal((i, j), np.triu_indices(49))
    # float32 weights and the float32 variance the layer holds: agreement to float32 rounding.
    np.testing.assert_allclose(got, expected, rtol=2e-5, atol=1e-6 * np.abs(expected).max())
    relative = np.abs(expected) / np.abs(expected).max(axis=0)
    levels = np.array([int(r["level"]) for r in rows]).reshape(10, 1225)
    counts = list(csv.DictReader(open(tmp_path / "fig_s4_counts.csv")))
    for c in range(10):
        histogram, _ = np.histogram(relative[:, c], bins=[0, 0.01, 0.05, 0.2, 0.5, 1.0])
        np.testing.assert_array_equal(np.bincount(levels[c], minlength=5), histogram)
        np.testing.assert_array_equal([int(r["count"]) for r in counts if r["class"] == str(c)],
                                      histogram)
    assert [int(r["count"]) for r in counts if r["class"] == "0"] == [94, 314, 588, 210, 19]


@pytest.mark.backend_neutral
def test_examples_bars_sit_on_their_ticks(tmp_path, monkeypatch):
    """A row with one series (a right prediction) centres its bars on the order ticks; a row
    with two (a wrong one) puts them either side."""
    from tn_keras.figures import style
    from tn_keras.figures import whole_model

    figures = []
    monkeypatch.setattr(style, "save", lambda fig, folder, name, record: figures.append(fig))
    rng = np.random.default_rng(0)
    orders = rng.normal(size=(8, 5, 3))
    logits = orders.sum(axis=1)
    y = np.argmax(logits, axis=1)
    y[5:] = (y[5:] + 1) % 3  # three wrong
    whole_model._examples(str(tmp_path), "toy", rng.uniform(0, 255, (8, 4, 4, 1)), y, orders,
                          logits, ["a", "b", "c"])
    bar_axes = figures[0].axes[1::2]
    assert len(bar_axes) == 6
    k = np.arange(5)
    for row, ax in enumerate(bar_axes):
        centres = np.array([p.get_x() + p.get_width() / 2 for p in ax.patches])
        expected = k if row < 3 else np.concatenate([k - 0.2, k + 0.2])
        np.testing.assert_allclose(centres, expected, atol=1e-12)
        np.testing.assert_array_equal(ax.get_xticks(), k)


@pytest.mark.backend_neutral
def test_similarity_plot_shows_a_level_without_pairs_as_a_gap(tmp_path):
    from tn_keras.distill import plot_similarity

    table = {lv: {c: {"s": 0.5 + 0.1 * lv, "d": 1.0 - 0.2 * lv} for c in range(3)}
             for lv in range(3)}
    table[3] = {c: {"s": math.nan, "d": math.nan} for c in range(3)}
    plot_similarity(table, str(tmp_path / "s.svg"))
    plot_similarity(table, str(tmp_path / "s.png"))
    svg = (tmp_path / "s.svg").read_text()
    assert "no pairs" in svg and "class 2" in svg
    assert Image.open(tmp_path / "s.png").size == (900, 400)


@pytest.mark.slow
def test_figures_fast_set_end_to_end(fast_figures):
    pngs = check_folder(fast_figures)
    assert {"fig_s1.png", "fig_s4_quadratic.png", "fig_s4_linear.png", "digits_similarity.png",
            "digits_reference_classification.png", "digits_taylornet_templates.png",
            "digits_taylornet_order_shares.png", "digits_taylornet_examples.png"} == set(pngs)
    index = open(os.path.join(fast_figures, "index.html"), encoding="utf-8").read()
    assert "Paper:" in index and "Measured:" in index and "54 non-zero monomials" in index
    shares = np.genfromtxt(os.path.join(fast_figures, "digits_taylornet_order_shares.csv"),
                           delimiter=",", names=True)
    for c in range(10):
        assert shares["share"][shares["class"] == c].sum() == pytest.approx(1.0)


@pytest.mark.slow
def test_figures_refuse_an_existing_folder(fast_figures, capsys):
    from tn_keras.cli import main

    assert main(["figures", "--out", fast_figures]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.slow
def test_index_html_images_load_in_chromium(fast_figures):
    result = images_in_browser(fast_figures)
    assert result["total"] == 8 and result["broken"] == []


def test_distill_eval_command(tmp_path, capsys):
    from tn_keras import datasets
    from tn_keras import zoo
    from tn_keras.cli import main
    from tn_keras.distill import distill

    x, y = datasets.load("digits", "train")
    distill(zoo.load("digits_taylornet", compile=False), x, y, levels=2, per_class=4, steps=1,
            export_dir=str(tmp_path / "levels"))
    out = tmp_path / "eval.json"
    assert main(["distill-eval", "digits_taylornet", "--levels", str(tmp_path / "levels"),
                 "--test-images", "100", "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["per_class"] for r in rows] == [4, 2, 1]
    assert all(0.0 <= r["distilled_nearest"] <= 1.0 and r["test_images"] == 100 for r in rows)
    assert "random real" in capsys.readouterr().out
    assert main(["distill-eval", "digits_taylornet", "--levels", str(tmp_path)]) == 2


@pytest.mark.real_data
@pytest.mark.slow
def test_figures_full_set(real_data_dir, tmp_path, monkeypatch):
    """Every figure of the full set, from the real MNIST and CIFAR-10 checkpoints and data, at
    a tenth of the sizes `tn-keras figures --full` uses (its distillations and interpretations
    took four minutes of the suite at full size; what the sizes change is the captions')."""
    import dataclasses

    from tn_keras.figures import FiguresConfig
    from tn_keras.figures import config
    from tn_keras.figures import make_figures

    monkeypatch.setattr(config, "FULL_DISTILLATION", tuple(
        dataclasses.replace(spec, per_class=spec.per_class // 8, steps=spec.steps // 4,
                            test_images=spec.test_images // 10)
        for spec in config.FULL_DISTILLATION))
    monkeypatch.setattr(config, "FULL_INTERPRET", tuple(
        dataclasses.replace(spec, test_images=spec.test_images // 10)
        for spec in config.FULL_INTERPRET))
    out = str(tmp_path / "full")
    make_figures(FiguresConfig(out=out, full=True, data_dir=real_data_dir))
    pngs = check_folder(out)
    for name in ("mnist_similarity", "cifar10_similarity", "mnist_reference_classification",
                 "cifar10_reference_classification", "mnist_taylornet_order_shares",
                 "cifar_taylornet_examples", "cifar_taylornet_templates"):
        assert f"{name}.png" in pngs
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        assert images_in_browser(out)["broken"] == []


@pytest.mark.parametrize("field,value", [("out", ""), ("out", "  "), ("data_dir", ""),
                                         ("full", "yes"), ("overwrite", 1), ("seed", -1),
                                         ("seed", 1.5), ("seed", True)])
def test_figures_config_names_a_bad_field(field, value):
    from tn_keras.figures import FiguresConfig

    settings = {"out": "figures", field: value}
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        FiguresConfig(**settings)
