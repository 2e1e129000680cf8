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
def test_figures_full_set(real_data_dir, tmp_path):
    from tn_keras.figures import FiguresConfig
    from tn_keras.figures import make_figures

    out = str(tmp_path / "full")
    make_figures(FiguresConfig(out=out, full=True, data_dir=real_data_dir))
    pngs = check_folder(out)
    for name in ("mnist_similarity", "cifar10_similarity", "mnist_reference_classification",
                 "cifar10_reference_classification", "mnist_taylornet_order_shares",
                 "cifar_taylornet_examples", "cifar_taylornet_templates"):
        assert f"{name}.png" in pngs
    if shutil.which("chromium") or shutil.which("chromium-browser"):
        assert images_in_browser(out)["broken"] == []
