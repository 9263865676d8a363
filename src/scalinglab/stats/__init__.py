"""Statistics of scaling studies (numpy/scipy only; never imports torch).

Array-level functions: a scaling curve is ``x`` values ``[P]`` plus, per design point, the test losses of its
independent realizations (``P`` arrays ``[R_p]``).

* :mod:`~scalinglab.stats.aggregate`: arithmetic mean, geometric mean, median per point with standard errors,
  bootstrap intervals and MAD; the geometric mean versus the number of realizations (paper 1 Fig. 3e).
* :mod:`~scalinglab.stats.power_law`: ``L = A x^-alpha`` on geometric means (WLS on logs), bootstrap over
  realizations, stated fit-range rule with float32-resolution flags, and a curvature/floor test.
* :mod:`~scalinglab.stats.saturating`: ``L = (X_c/X)^alpha + K`` (log-sum-exp, Huber, alpha scan).
* :mod:`~scalinglab.stats.exponent_trend`: ``alpha = a log10(N/N0) + b`` with propagated errors.
* :mod:`~scalinglab.stats.joint`: ``L = (A/N_M)^a_M + (B/N_D)^a_D + K``, one or many runs per point.
* :mod:`~scalinglab.stats.model_choice`: power law or floored law, chosen on the data and inside every
  bootstrap replicate; the exponent to quote.
* :mod:`~scalinglab.stats.goodness`: chi2 / dof (or its Huber analogue) and the flags of every fit.
* :mod:`~scalinglab.stats.compute_optimal`: N_opt(C), D_opt(C) and the loss frontier of a joint fit.
* :mod:`~scalinglab.stats.planning`: invert fitted laws for a target loss; paper 3's 4/d recipe.
* :mod:`~scalinglab.stats.synthetic`: sweeps with known truth and the coverage studies run on them.
"""

from scalinglab.stats._design import FLOAT32_LOSS_RESOLUTION
from scalinglab.stats.aggregate import (
    GeometricMeanCurve,
    PointSummary,
    geometric_mean_vs_realizations,
    summarize_point,
    summarize_points,
)
from scalinglab.stats.compute_optimal import ComputeOptimum, FlopModel, compute_frontier, compute_optimal
from scalinglab.stats.exponent_trend import ExponentTrendFit, fit_exponent_trend
from scalinglab.stats.goodness import GoodnessOfFit, goodness_of_fit
from scalinglab.stats.joint import JointFit, fit_joint, joint_loss
from scalinglab.stats.model_choice import ScalingCurveFit, fit_scaling_curve
from scalinglab.stats.planning import (
    ConservativePlan,
    ResourcePlan,
    conservative_plan,
    exponent_lower_bound,
    intrinsic_dimension,
    plan,
    plan_joint,
    plan_power_law,
    plan_saturating,
    plan_scaling_curve,
)
from scalinglab.stats.power_law import CurvatureTestResult, PowerLawFit, curvature_test, fit_power_law
from scalinglab.stats.saturating import SaturatingFit, fit_saturating, saturating_loss

__all__ = [
    "FLOAT32_LOSS_RESOLUTION",
    "ComputeOptimum",
    "FlopModel",
    "GoodnessOfFit",
    "ScalingCurveFit",
    "compute_frontier",
    "compute_optimal",
    "fit_scaling_curve",
    "goodness_of_fit",
    "ConservativePlan",
    "CurvatureTestResult",
    "ExponentTrendFit",
    "GeometricMeanCurve",
    "JointFit",
    "PointSummary",
    "PowerLawFit",
    "ResourcePlan",
    "SaturatingFit",
    "conservative_plan",
    "curvature_test",
    "exponent_lower_bound",
    "fit_exponent_trend",
    "fit_joint",
    "fit_power_law",
    "fit_saturating",
    "geometric_mean_vs_realizations",
    "intrinsic_dimension",
    "joint_loss",
    "plan",
    "plan_joint",
    "plan_power_law",
    "plan_saturating",
    "plan_scaling_curve",
    "saturating_loss",
    "summarize_point",
    "summarize_points",
]
