"""Analyses of trained models and data: intrinsic dimension, parameter maps, paper 2's error statistics, ...

The error statistics (normalization, regression_errors, error_pca, phase_boundary, uncertainty,
generator_errors) are numpy/scipy only; ``param_map`` needs torch and is imported from its module.
"""

from scalinglab.analysis.error_pca import ErrorPCA, error_pca
from scalinglab.analysis.generator_errors import image_mae, layer_magnetization, magnetization_errors
from scalinglab.analysis.intrinsic_dimension import intrinsic_dimension
from scalinglab.analysis.normalization import CRI3_RANGES, denormalize_parameters, normalize_parameters
from scalinglab.analysis.phase_boundary import boundary_points, distance_to_boundary
from scalinglab.analysis.regression_errors import (
    BinnedMAE,
    BinnedMean,
    binned_mae,
    binned_mean,
    percentage_errors,
    regression_summary,
)
from scalinglab.analysis.uncertainty import ensemble_spread, interval_coverage, pulls

__all__ = [
    "CRI3_RANGES",
    "BinnedMAE",
    "BinnedMean",
    "ErrorPCA",
    "binned_mae",
    "binned_mean",
    "boundary_points",
    "denormalize_parameters",
    "distance_to_boundary",
    "ensemble_spread",
    "error_pca",
    "image_mae",
    "interval_coverage",
    "intrinsic_dimension",
    "layer_magnetization",
    "magnetization_errors",
    "normalize_parameters",
    "percentage_errors",
    "pulls",
    "regression_summary",
]
