"""Adstock and saturation transforms: steady state, known values, gradients, bad parameters."""

from __future__ import annotations

import numpy as np
import pytest

from core.mmm.adstock import geometric_adstock, geometric_adstock_grad, weibull_adstock
from core.mmm.saturation import hill, hill_derivative, hill_grad


def test_geometric_adstock_recursion_and_steady_state():
    x = np.array([1.0, 0.0, 0.0, 2.0])
    a = geometric_adstock(x, 0.5, normalize=False)
    assert np.allclose(a, [1.0, 0.5, 0.25, 2.125])
    assert np.allclose(geometric_adstock(x, 0.5), 0.5 * a)
    assert geometric_adstock(np.full(300, 7.0), 0.8)[-1] == pytest.approx(7.0)
    assert np.allclose(geometric_adstock(x, 0.0), x)
    two = geometric_adstock(np.column_stack([x, 2 * x]), 0.3)
    assert np.allclose(two[:, 1], 2 * two[:, 0])


def test_adstock_gradient_matches_finite_difference():
    x = np.random.default_rng(0).random(50) * 10
    _, da = geometric_adstock_grad(x, 0.4)
    e = 1e-6
    fd = (geometric_adstock(x, 0.4 + e) - geometric_adstock(x, 0.4 - e)) / (2 * e)
    assert np.allclose(da, fd, atol=1e-6)


def test_weibull_adstock_normalised_and_delayed():
    a = weibull_adstock(np.full(100, 3.0), shape=2.0, scale=5.0)
    assert a[-1] == pytest.approx(3.0)
    pulse = weibull_adstock(np.r_[1.0, np.zeros(30)], shape=3.0, scale=6.0)
    assert 2 <= int(np.argmax(pulse)) <= 8  # delayed peak


def test_hill_values_and_derivatives():
    assert hill(4000.0, 4000.0, 1.2) == pytest.approx(0.5)
    assert hill(0.0, 10.0, 2.0) == 0.0
    x = np.array([100.0, 1000.0, 5000.0])
    e = 1e-4
    assert np.allclose(hill_derivative(x, 1500.0, 1.7), (hill(x + e, 1500.0, 1.7) - hill(x - e, 1500.0, 1.7)) / (2 * e))
    h, dx, dh, ds = hill_grad(x, 1500.0, 1.7)
    assert np.allclose(h, hill(x, 1500.0, 1.7))
    assert np.allclose(dh, (hill(x, 1500.0 + e, 1.7) - hill(x, 1500.0 - e, 1.7)) / (2 * e), atol=1e-8)
    assert np.allclose(ds, (hill(x, 1500.0, 1.7 + e) - hill(x, 1500.0, 1.7 - e)) / (2 * e), atol=1e-7)


@pytest.mark.parametrize("call", [lambda: geometric_adstock(np.ones(3), 1.0), lambda: hill(1.0, 0.0, 1.0),
                                  lambda: hill(1.0, 1.0, -1.0), lambda: weibull_adstock(np.ones(3), 0.0, 1.0)])
def test_bad_parameters_refused(call):
    with pytest.raises(ValueError):
        call()
