"""Fig. S1: the monomials of the two-level x-then-y coarse-graining tree, from real layers.

The tree maps ``(x1, x2) -> y1``, ``(x3, x4) -> y2`` and ``(y1, y2) -> z``, each map a
second-order Taylor expansion: PolyCG with a (1, 2) kernel and stride, then PolyCG with a (2, 1)
kernel and stride, on a 2x2 image. ``z`` is composed exactly from the two layers'
``taylor_coefficients()`` (polynomials as ``{exponents: coefficient}``), with generic random
weights, so every monomial the structure allows has a non-zero coefficient: 54 of the 70
monomials of degree <= 4 in four variables. The paper boxes in red the terms that a convolution
keeps; here they are computed too, as the monomials of the same tree with order-1 (linear) maps:
1, x1, x2, x3, x4.
"""
from __future__ import annotations

import itertools

import numpy as np

from tn_keras.figures import style

# Exponents of (x1, x2) in the paper's order (1, x, x^2, x^3, x^4, y, ..., mixed terms).
PAIR_MONOMIALS = [(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (0, 1), (0, 2), (0, 3), (0, 4),
                  (1, 1), (1, 2), (2, 1), (2, 2), (1, 3), (3, 1)]


def _mul(p, q):
    out = {}
    for (e, c), (f, d) in itertools.product(p.items(), q.items()):
        key = tuple(i + j for i, j in zip(e, f))
        out[key] = out.get(key, 0.0) + c * d
    return out


def _apply(coefficients, inputs, variables=4):
    """The one-filter patch polynomial with the polynomials ``inputs`` substituted for p."""
    result = {(0,) * variables: float(coefficients["bias"][0])}
    terms = [(coefficients["linear"][0, i], p) for i, p in enumerate(inputs)]
    quadratic = coefficients.get("order_2")
    if quadratic is not None:
        terms += [(quadratic[0, i, j], _mul(inputs[i], inputs[j]))
                  for i, j in itertools.product(range(len(inputs)), repeat=2)]
    for weight, poly in terms:
        for e, c in poly.items():
            result[e] = result.get(e, 0.0) + weight * c
    return result


def tree_polynomial(seed=0, order=2):
    """``{(e1, e2, e3, e4): coefficient}`` of the tree with random PolyCG weights; ``order=1``
    is the tree of linear maps, a convolution."""
    from tn_keras.layers import PolyCG

    rng = np.random.default_rng(seed)
    first = PolyCG(1, kernel_size=(1, 2), strides=(1, 2), order=order, dtype="float64")
    second = PolyCG(1, kernel_size=(2, 1), strides=(2, 1), order=order, dtype="float64")
    first.build((None, 2, 2, 1))
    second.build((None, 2, 1, 1))
    for variable in first.weights + second.weights:
        shape = tuple(variable.shape)
        variable.assign(rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape))
    x = [{tuple(int(v == i) for v in range(4)): 1.0} for i in range(4)]
    coefficients = first.taylor_coefficients()
    y1, y2 = _apply(coefficients, x[:2]), _apply(coefficients, x[2:])
    return _apply(second.taylor_coefficients(), [y1, y2])


def nonzero_grid(poly):
    """``(15, 15)`` booleans: row ``b`` (monomial of x3, x4), column ``a`` (of x1, x2), True
    where the monomial ``a b`` has a non-zero coefficient in ``poly``."""
    scale = max(abs(c) for c in poly.values())
    grid = np.zeros((15, 15), bool)
    for row, b in enumerate(PAIR_MONOMIALS):
        for col, a in enumerate(PAIR_MONOMIALS):
            grid[row, col] = abs(poly.get(a + b, 0.0)) > 1e-9 * scale
    return grid


def make(folder, record_cls=style.Figure):
    """Writes ``fig_s1.png/svg`` and ``fig_s1.csv``; returns the figure's record."""
    poly = tree_polynomial()
    scale = max(abs(c) for c in poly.values())
    grid = nonzero_grid(poly)
    convolution = nonzero_grid(tree_polynomial(order=1))
    count, kept = int(grid.sum()), int(convolution.sum())
    record = record_cls(
        "fig_s1", "Fig. S1: monomials of the x-then-y coarse-graining tree",
        f"Paper: the two-level tree (x1, x2) -> y1, (x3, x4) -> y2, (y1, y2) -> z of order-2 "
        f"maps has 54 non-zero monomials; a red box marks the terms that show up in a "
        f"convolution. Measured: composing the taylor_coefficients() of two real PolyCG "
        f"layers (random non-zero weights) gives {count} non-zero monomials of the 225 "
        f"products a(x1, x2) b(x3, x4) shown (filled: non-zero); red outlines: the {kept} "
        "monomials of the same tree with order-1 (linear) maps, i.e. a convolution: 1, x1, "
        "x2, x3, x4.")
    plt = style.pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 6.0))
    ax.imshow(grid.astype(float), cmap="Greys", vmin=0, vmax=1.4)
    labels = [_label(e, ("x1", "x2")) for e in PAIR_MONOMIALS]
    ax.set_xticks(range(15), labels, rotation=90)
    ax.set_yticks(range(15), [_label(e, ("x3", "x4")) for e in PAIR_MONOMIALS])
    ax.set_xlabel("a: monomial of (x1, x2)")
    ax.set_ylabel("b: monomial of (x3, x4)")
    ax.set_title(f"z = sum c_ab a b: {count} non-zero monomials (paper: 54)")
    ax.set_xticks(np.arange(-0.5, 15), minor=True)
    ax.set_yticks(np.arange(-0.5, 15), minor=True)
    ax.grid(which="minor", color="0.8", linewidth=0.5)
    for row, col in zip(*np.nonzero(convolution)):
        ax.add_patch(plt.Rectangle((col - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red",
                                   linewidth=2.0, zorder=3))
    ax.plot([], [], "s", markerfacecolor="none", markeredgecolor="red", markersize=9,
            markeredgewidth=2, label="terms of a convolution (1, x1, x2, x3, x4)")
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, -0.24), frameon=False)
    style.save(fig, folder, "fig_s1", record)
    rows = [(*e, _label(e, ("x1", "x2", "x3", "x4")), c) for e, c in sorted(poly.items())
            if abs(c) > 1e-9 * scale]
    style.write_csv(folder, "fig_s1.csv", ["e1", "e2", "e3", "e4", "monomial", "coefficient"],
                    rows, record)
    return record


def _label(exponents, names):
    parts = [n if e == 1 else f"{n}^{e}" for n, e in zip(names, exponents) if e]
    return " ".join(parts) or "1"
