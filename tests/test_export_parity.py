"""tn_keras.export.parity: the parity checks' distance, against plain NumPy."""
import numpy as np
import pytest

from tn_keras.export.parity import max_abs_difference

pytestmark = pytest.mark.backend_neutral


def test_finite_outputs_are_the_plain_max_abs_difference():
    rng = np.random.default_rng(0)
    got, want = rng.normal(size=(4, 10)), rng.normal(size=(4, 10))
    assert max_abs_difference(got, want) == np.max(np.abs(got - want))
    assert max_abs_difference(want, want) == 0.0


def test_equal_non_finite_outputs_agree_and_unequal_ones_do_not():
    want = np.array([[0.5, np.nan, np.inf], [0.25, 0.25, 0.5]])
    assert max_abs_difference(want.copy(), want) == 0.0  # NaN with NaN, inf with inf
    got = want.copy()
    got[1, 0] = 0.3
    assert max_abs_difference(got, want) == pytest.approx(0.05)
    for bad in (np.nan, np.inf, -np.inf):
        other = want.copy()
        other[1, 1] = bad  # a non-finite value against a finite one
        assert max_abs_difference(other, want) == np.inf
    swapped = want.copy()
    swapped[0, 1], swapped[0, 2] = np.inf, np.nan
    assert max_abs_difference(swapped, want) == np.inf
