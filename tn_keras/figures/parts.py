"""One image's logit as the sum of its orders about a point, the low orders drawn as images.

About ``x0`` (default: the training mean image of the predicted class), with ``d = x - x0``
and ``c`` the class,

    f_c(x) = f_0 + f_1 + f_2 + r,    f_0 = f_c(x0),
    f_1 = sum_i g_i d_i              = sum_i l_i,   l_i = g_i d_i,          g = grad f_c(x0),
    f_2 = 1/2 sum_ij d_i H_ij d_j    = sum_i q_i,   q_i = 1/2 d_i (H d)_i,  H = Hessian at x0,
    r   = sum_{k>=3} f_k             (the orders a pixel map cannot show),

so the linear part is the image ``l`` and the quadratic part the image ``q``, each summing to
its order's contribution; ``f_0`` is the logit of the point itself (drawn as the point).
``g`` and ``H d`` come from automatic differentiation (`taylor_expansion`,
`hessian_vector_product`), the ``f_k`` from `order_decomposition`: the figure's numbers check
one against the other (``sum_i l_i = f_1``, ``sum_i q_i = f_2``).

    python -m tn_keras.figures.parts --out docs/images/mnist_parts.png
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from tn_keras.figures import style


@dataclasses.dataclass(frozen=True)
class Parts:
    """The decomposition of one image's logit ``f_c(x)``; images have the input's shape."""

    image: np.ndarray       # x
    point: np.ndarray       # x0
    class_: int             # c
    orders: np.ndarray      # f_k, k = 0..degree
    linear: np.ndarray      # l_i = g_i d_i
    quadratic: np.ndarray   # q_i = 1/2 d_i (H d)_i

    @property
    def value(self):
        """``f_c(x) = sum_k f_k``."""
        return float(self.orders.sum())

    @property
    def rest(self):
        """``sum_{k>=3} f_k``."""
        return float(self.orders[3:].sum())


def low_order_parts(model, image, about="class_mean", class_=None, data=None):
    """`Parts` of ``image`` for output ``class_`` (default: the predicted one) about ``about``
    (``"class_mean"``: the training mean image of ``class_``; see `tn_keras.interpret.points`)."""
    from tn_keras import interpret

    x = np.asarray(image, np.float64)
    if class_ is None:
        class_ = int(np.argmax(interpret.order_decomposition(model, x).sum(axis=1)[0]))
    labels = [class_] if about == "class_mean" else None
    orders = interpret.order_decomposition(model, x, about=about, data=data, labels=labels)
    expansion = interpret.taylor_expansion(model, about=about, data=data, label=class_,
                                           classes=[class_], order=1)
    point = expansion.center
    d = x.reshape(point.shape) - point
    h_d = interpret.hessian_vector_product(model, d, class_, about=point)
    return Parts(image=x.reshape(point.shape), point=point, class_=class_,
                 orders=orders[0, :, class_], linear=expansion.gradient[0] * d,
                 quadratic=0.5 * d * h_d)


def draw(rows, path, dpi=80):
    """One row per ``(label, Parts)``: x, x0, the linear and quadratic images, the sums."""
    plt = style.pyplot()
    fig, axes = plt.subplots(len(rows), 5, figsize=(11.5, 2.5 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 1.6]})
    for (label, parts), ax in zip(rows, axes):
        _grey(ax[0], parts.image, f"{label}\nx: f = {parts.value:.3g}")
        _grey(ax[1], parts.point, f"x0, class {parts.class_} mean\nf_0 = {parts.orders[0]:.3g}")
        _signed(ax[2], parts.linear, f"linear g_i d_i\nsum f_1 = {parts.linear.sum():.3g}")
        _signed(ax[3], parts.quadratic,
                f"quadratic d_i (Hd)_i / 2\nsum f_2 = {parts.quadratic.sum():.3g}")
        names = ["f_0", "f_1", "f_2", "orders >= 3", "f(x)"]
        values = [parts.orders[0], parts.orders[1], parts.orders[2], parts.rest, parts.value]
        colours = ["0.5", "tab:red", "tab:purple", "0.75", "black"]
        ax[4].barh(range(5)[::-1], values, color=colours)
        ax[4].set_yticks(range(5)[::-1], names)
        ax[4].axvline(0, color="0.3", linewidth=0.5)
        ax[4].set_title("f(x) = f_0 + f_1 + f_2 + orders >= 3", fontsize=8)
        for y, v in zip(range(5)[::-1], values):
            ax[4].text(v, y, f" {v:.3g} ", va="center", ha="left" if v >= 0 else "right",
                       fontsize=7)
        ax[4].margins(x=0.35)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)


def _grey(ax, image, title):
    ax.imshow(image[..., 0], cmap="gray", vmin=0, vmax=255)
    ax.set_title(title, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def _signed(ax, image, title):
    bound = float(np.abs(image).max()) or 1.0
    ax.imshow(image[..., 0], cmap="RdBu_r", vmin=-bound, vmax=bound)
    ax.set_title(title + f"\n(colour +-{bound:.2g})", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])


def main(argv=None):
    from tn_keras import datasets
    from tn_keras import zoo

    parser = argparse.ArgumentParser(prog="python -m tn_keras.figures.parts",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["mnist7_taylor", "mnist_taylornet"])
    parser.add_argument("--index", type=int, default=0, help="the test image (default 0)")
    parser.add_argument("--out", required=True, help="the PNG to write")
    args = parser.parse_args(argv)
    rows = []
    for name in args.models:
        model = zoo.load(name, compile=False)
        x, y = datasets.load(zoo.info(name).dataset, "test")
        parts = low_order_parts(model, x[args.index])
        rows.append((f"{name}, test image {args.index} (label {int(y[args.index])})", parts))
        print(f"{name}: class {parts.class_}, f(x) = {parts.value:.6g} = f_0 "
              f"{parts.orders[0]:.6g} + f_1 {parts.orders[1]:.6g} + f_2 {parts.orders[2]:.6g} "
              f"+ orders>=3 {parts.rest:.6g}; sum l = {parts.linear.sum():.6g}, "
              f"sum q = {parts.quadratic.sum():.6g}; sum_k |f_k| = "
              f"{np.abs(parts.orders).sum():.6g}")
    draw(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
