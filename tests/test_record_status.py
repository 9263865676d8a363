"""Status flags of training records (scalinglab.record_status) on constructed records."""

from __future__ import annotations

import math

import pytest

from scalinglab.record_status import EXCLUDED_BY_DEFAULT, STATUSES, classify, excluded_statuses, record_status

OK = dict(stop_reason="early_stopping", best_val_loss=0.05, best_epoch=30, test_mse=0.06, mean_predictor_mse=1.02)


def test_ok():
    assert classify(**OK) == "ok"
    assert classify(**{**OK, "stop_reason": "step_cap"}) == "ok"  # a step budget is the recipe
    assert classify(**{**OK, "stop_reason": "epoch_cap"}, early_stopping=False) == "ok"  # no rule configured


@pytest.mark.parametrize("change", [
    {"stop_reason": "diverged"}, {"best_val_loss": math.inf}, {"best_epoch": 0}, {"test_mse": math.nan},
    {"best_val_loss": math.nan, "test_mse": 3.0},
])
def test_diverged(change):
    assert classify(**{**OK, **change}) == "diverged"
    assert classify(**OK, other_metrics=[0.1, math.inf]) == "diverged"


def test_not_better_than_mean_against_the_recorded_baseline_or_one():
    assert classify(**{**OK, "test_mse": 1.02}) == "not_better_than_mean"  # equal to the baseline: no skill
    assert classify(**{**OK, "test_mse": 1.01}) == "ok"  # below the recorded baseline 1.02
    assert classify(**{**OK, "test_mse": 1.01, "mean_predictor_mse": None}) == "not_better_than_mean"  # baseline 1
    assert classify(**{**OK, "test_mse": 0.99, "mean_predictor_mse": None}) == "ok"
    # no skill outranks the epoch cap; divergence outranks both
    assert classify(**{**OK, "test_mse": 2.0, "stop_reason": "epoch_cap"}) == "not_better_than_mean"
    assert classify(**{**OK, "test_mse": 2.0, "best_epoch": 0}) == "diverged"


def test_at_epoch_cap():
    assert classify(**{**OK, "stop_reason": "epoch_cap"}) == "at_epoch_cap"


def test_old_records_read_as_unknown_and_the_default_exclusions():
    assert record_status({"family": "fcn"}) == "unknown"
    assert record_status({"status": "bogus"}) == "unknown"
    assert all(record_status({"status": s}) == s for s in STATUSES)
    assert excluded_statuses() == EXCLUDED_BY_DEFAULT == {"diverged", "not_better_than_mean"}
    assert excluded_statuses(include_flagged=True) == set()
    assert excluded_statuses(exclude_at_cap=True) == {"diverged", "not_better_than_mean", "at_epoch_cap"}
