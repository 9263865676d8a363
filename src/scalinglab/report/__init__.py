"""The scaling-study report: figures, fit tables and one self-contained HTML page from a results directory.

Reads records only (never trains, never imports torch); statistics come from ``scalinglab.stats``.
"""

from scalinglab.report.analysis import Analysis, ReportOptions, analyze
from scalinglab.report.build import build_report
from scalinglab.report.loader import SweepResults, load_results

__all__ = ["Analysis", "ReportOptions", "SweepResults", "analyze", "build_report", "load_results"]
