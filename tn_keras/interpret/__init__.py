"""Reading a TaylorNet: exact Taylor expansions of whole models.

A network without activations is an exact polynomial of its input; this package reads it as
one, on every Keras backend:

    >>> from tn_keras import interpret, zoo
    >>> model = zoo.load("cifar_taylornet")
    >>> interpret.degree(model)                          # 32
    >>> parts = interpret.order_decomposition(model, x)  # (N, 33, 10): f = sum_k f_k
    >>> parts = interpret.order_decomposition(model, x, about="mean")  # f(x0 + d) = sum_k f_k(d)
    >>> interpret.order_share(model, x, about="mean").pooled[2]  # share of orders <= 2
    >>> e = interpret.taylor_expansion(model, center, order=2, classes=[3], window=(0, 8, 0, 8))
    >>> templates = interpret.class_templates(model)     # order-1 images per class

Modules: `graph` (which layers are polynomial, the degree), `decomposition` (orders along a
ray), `expansion` (value, gradient, Hessian by automatic differentiation), `points` (the
expansion point ``about=``: an image, "zero", "mean", "class_mean"), `share` (how much the low
orders carry, how much the orders cancel), `autodiff` (the per-backend gradients), `precision`
(float64 copies), `validation` (input checks).
"""
from tn_keras.interpret.decomposition import order_decomposition
from tn_keras.interpret.decomposition import reconstruction_error
from tn_keras.interpret.expansion import TaylorExpansion
from tn_keras.interpret.expansion import class_templates
from tn_keras.interpret.expansion import hessian_vector_product
from tn_keras.interpret.expansion import pixel_interactions
from tn_keras.interpret.expansion import taylor_expansion
from tn_keras.interpret.graph import NotAPolynomialError
from tn_keras.interpret.graph import degree
from tn_keras.interpret.share import OrderShare
from tn_keras.interpret.share import order_share

__all__ = [
    "NotAPolynomialError",
    "OrderShare",
    "TaylorExpansion",
    "class_templates",
    "degree",
    "hessian_vector_product",
    "order_decomposition",
    "order_share",
    "pixel_interactions",
    "reconstruction_error",
    "taylor_expansion",
]
