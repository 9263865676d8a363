"""Goodness of fit: the chi2 statistic, its Huber analogue, and the poor-fit, bound and range flags."""

import numpy as np
import pytest
from scipy import stats as sps

from scalinglab.stats.goodness import bound_flags, goodness_of_fit, range_flag


def test_chi2_and_its_p_value():
    res = np.array([0.1, -0.2, 0.3, 0.0, 0.1])
    se = np.full(5, 0.1)
    g = goodness_of_fit(res, se, 2)
    assert g.statistic == pytest.approx(15.0) and g.dof == 3 and g.reduced == pytest.approx(5.0)
    assert g.p_value == pytest.approx(sps.chi2.sf(15.0, 3)) and not g.poor
    bad = goodness_of_fit(res * 4, se, 2)
    assert bad.poor and bad.flag().startswith("poor fit")
    # inside the threshold the Huber analogue equals chi2; outside it grows linearly
    assert goodness_of_fit(res, se, 2, threshold=10.0).statistic == pytest.approx(15.0)
    assert goodness_of_fit(res, se, 2, threshold=1.0).statistic < 15.0
    single = goodness_of_fit(res, None, 2)
    assert single.kind == "residual" and np.isnan(single.p_value) and not single.poor
    assert single.rms_log_residual == pytest.approx(np.sqrt(np.mean(res**2)))


def test_bound_and_range_flags():
    flags = bound_flags(np.array([20.0, 1.0, -5.0]), np.array([0.0, 0.0, -5.0]), np.array([20.0, 2.0, 0.0]),
                        ["alpha", "x", "ln K"], skip=("ln K",))
    assert flags == ["at bound: alpha = 20 sits on its upper bound 20"]
    assert range_flag(np.array([1.0, 1.007]), "N_M").startswith("unconstrained: N_M varies by only x1.007")
    assert range_flag(np.array([1.0, 4.0]), "N_M") is None
