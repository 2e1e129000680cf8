"""How an export's outputs are compared with the Keras model's: the parity checks' distance.

A deep polynomial network can overflow float32 on images far from its data (the uniform
random images the checks fall back on when no real test images are at hand): its
probabilities are then NaN, in Keras as in every runtime that computes the same graph. A
plain ``max |got - want|`` is NaN there, and a NaN refused the export of a file that computes
exactly what Keras computes. So a non-finite output agrees with the same value in the other
(NaN with NaN, +inf with +inf) and with nothing else; finite outputs are compared as usual.
"""
import numpy as np


def max_abs_difference(got, want) -> float:
    """``max |got - want|`` over the outputs, where equal non-finite values (NaN included)
    count as agreeing and a non-finite value against any other counts as ``inf``."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        difference = np.where(same, 0.0, np.abs(got - want))
    return float(np.max(np.where(np.isnan(difference), np.inf, difference), initial=0.0))
