"""Status flags of training records: which trained realizations are results, and which enter the fits.

Every realization record (sweep records, ``scalinglab train``'s metrics.json) carries ``status``, one of:

- ``ok``: trained normally (stopped by its early-stopping rule, or by a step budget it was given).
- ``diverged``: a validation loss was NaN or infinite (training stops there; a NaN training loss makes the
  parameters, hence the next validation loss, NaN), no epoch reached a finite validation loss
  (``best_val_loss`` inf, ``best_epoch`` 0), or a test metric is not finite. Its metrics are those of a broken
  or untrained network.
- ``not_better_than_mean``: its test MSE (standardized units) is not below the test MSE of predicting the
  training-set mean of the targets, ``mean_predictor_mse``: ``mse >= mean_predictor_mse``. Standardization makes
  that baseline ``1 + (test mean - train mean)^2 / train variance`` per target, close to 1; where a record does
  not store it (older records, measurements from elsewhere) the baseline is 1.
- ``at_epoch_cap``: an early-stopping rule was configured but had not fired when the epoch budget ran out
  (the network may still be improving: its loss overstates what the model reaches).

Precedence when several apply: diverged, not_better_than_mean, at_epoch_cap.

What enters the fits (report, ``plan``, ``scalinglab fit`` with a status column): diverged and
not_better_than_mean realizations are left out by default (they are not a measurement of what the model can
learn) and counted on the report page; ``--include-flagged`` fits them anyway. at_epoch_cap realizations are
kept, with a warning: leaving out the members that were still improving would select the ones that stopped
early, a biased subset of the point, while keeping them biases the loss upwards by a visible, bounded amount;
``--exclude-at-cap`` leaves them out too. Records without ``status`` (written before the flags existed) load
as ``unknown`` and are kept.

Pure Python (no numpy, no torch): imported by the trainer that writes records and the report that reads them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

STATUSES = ("ok", "diverged", "at_epoch_cap", "not_better_than_mean")
#: What an old record without a ``status`` key reads as.
UNKNOWN = "unknown"
#: Left out of the fits unless the user includes flagged realizations.
EXCLUDED_BY_DEFAULT = frozenset({"diverged", "not_better_than_mean"})


def classify(*, stop_reason: str | None, best_val_loss: float | None, best_epoch: int | None,
             test_mse: float | None, mean_predictor_mse: float | None = None,
             early_stopping: bool = True, other_metrics: Iterable[float | None] = ()) -> str:
    """The status of one trained realization (the rules of the module docstring).

    Args:
        stop_reason: why training stopped (``scalinglab.training.trainer.STOP_REASONS``), None if unknown.
        best_val_loss: lowest validation loss (standardized units); inf when no epoch had a finite one.
        best_epoch: 1-based epoch of ``best_val_loss`` (0: no finite validation loss).
        test_mse: test MSE in standardized units (None for records without it).
        mean_predictor_mse: test MSE of predicting the training mean, same units (None: 1).
        early_stopping: whether a stopping rule was configured (without one, the epoch budget is the
            recipe, so ending there is no flag).
        other_metrics: further test metrics that must be finite (MAE, R^2, ...).

    Returns:
        One of :data:`STATUSES`.
    """
    def bad(v: float | None) -> bool:
        return v is not None and not math.isfinite(float(v))

    if (stop_reason == "diverged" or best_epoch == 0 or bad(best_val_loss) or bad(test_mse)
            or any(bad(v) for v in other_metrics)):
        return "diverged"
    baseline = 1.0 if mean_predictor_mse is None or not math.isfinite(mean_predictor_mse) else mean_predictor_mse
    if test_mse is not None and float(test_mse) >= baseline:
        return "not_better_than_mean"
    if early_stopping and stop_reason == "epoch_cap":
        return "at_epoch_cap"
    return "ok"


def record_status(record: Mapping[str, Any]) -> str:
    """The stored status of a record; ``unknown`` for records written before status flags."""
    value = record.get("status")
    return str(value) if value in STATUSES else UNKNOWN


def excluded_statuses(*, include_flagged: bool = False, exclude_at_cap: bool = False) -> frozenset[str]:
    """The statuses left out of the fits under the user's options (see the module docstring)."""
    out = set() if include_flagged else set(EXCLUDED_BY_DEFAULT)
    if exclude_at_cap:
        out.add("at_epoch_cap")
    return frozenset(out)
