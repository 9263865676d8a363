"""Analyses of trained models and data: intrinsic dimension, parameter maps, ..."""

from scalinglab.analysis.intrinsic_dimension import intrinsic_dimension

__all__ = ["intrinsic_dimension"]
