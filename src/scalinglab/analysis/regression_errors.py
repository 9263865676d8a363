"""Regression error statistics of paper 2: MAE, MAPE, R^2 per parameter, and errors binned along a parameter.

- ``regression_summary``: per-parameter MAE, MAPE (percent, as paper 2 quotes 1.22 / 2.23 for J / D), R^2, RMSE.
- ``binned_mean``: mean and standard error of any per-sample quantity in bins of another (Fig. 3 d-f, Figs. 6, 9).
- ``binned_mae``: Fig. 4, the MAE of every normalized parameter in bins of every normalized true parameter, next to
  the number of training samples in each bin (is the error high where training data are scarce?).

Reference: twisted-magnets-regression-and-generation (paper 2), Sec. II.3 (Eq. 4), Sec. III.1, Figs. 3-4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BinnedMAE", "BinnedMean", "binned_mae", "binned_mean", "percentage_errors", "regression_summary"]

_ZERO = 1e-12  # |true| below this has no defined percentage error


def _pair(pred, true, what: str = "pred/true") -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"{what} shapes differ: {list(p.shape)} vs {list(t.shape)}")
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"{what} must be [n, P] with n >= 1, got shape {list(p.shape)}")
    return p, t


def percentage_errors(pred, true) -> np.ndarray:
    """Absolute percentage errors 100 |pred - true| / |true|, [n, P]; NaN where |true| < 1e-12."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    if p.shape != t.shape:
        raise ValueError(f"pred/true shapes differ: {list(p.shape)} vs {list(t.shape)}")
    with np.errstate(divide="ignore", invalid="ignore"):
        ape = 100.0 * np.abs(p - t) / np.abs(t)
    return np.where(np.abs(t) < _ZERO, np.nan, ape)


def regression_summary(pred, true, names: list[str]) -> dict[str, dict[str, float]]:
    """MAE, MAPE, R^2 and RMSE of each parameter.

        MAE = <|pred - true|>,  MAPE = 100 <|pred - true| / |true|>  (percent),
        R^2 = 1 - sum (pred - true)^2 / sum (true - <true>)^2,  RMSE = sqrt(<(pred - true)^2>)

    Args:
        pred: [n, P] predictions, in the units of ``true`` (physical or normalized).
        true: [n, P] true values.
        names: P parameter names (dictionary keys).

    Returns:
        {name: {"mae", "mape", "r2", "rmse", "num"}}; MAE/RMSE in the units of ``true``, MAPE in percent over
        the samples with |true| >= 1e-12 (NaN if none), R^2 NaN for a constant ``true`` column, ``num`` = n.

    Reference: paper 2, Sec. II.3 (Eq. 4) and Sec. III.1.1 (Fig. 3 a-c).
    """
    p, t = _pair(pred, true)
    if len(names) != p.shape[1]:
        raise ValueError(f"{len(names)} names for {p.shape[1]} parameters")
    err = p - t
    ape = percentage_errors(p, t)
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        ss_res = float(np.sum(err[:, j] ** 2))
        ss_tot = float(np.sum((t[:, j] - t[:, j].mean()) ** 2))
        finite = ape[:, j][np.isfinite(ape[:, j])]
        out[name] = {
            "mae": float(np.mean(np.abs(err[:, j]))),
            "mape": float(finite.mean()) if finite.size else float("nan"),
            "r2": 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan"),
            "rmse": float(np.sqrt(ss_res / len(err))),
            "num": int(len(err)),
        }
    return out


@dataclass(frozen=True)
class BinnedMean:
    """Per-bin mean of a quantity: ``edges`` [B + 1], ``centers`` [B], ``mean`` [B], ``sem`` [B], ``count`` [B].

    ``mean`` is NaN in empty bins, ``sem`` (std with ddof=1 / sqrt(count)) NaN in bins with fewer than 2 values.
    """

    edges: np.ndarray
    centers: np.ndarray
    mean: np.ndarray
    sem: np.ndarray
    count: np.ndarray


def _bin_index(along: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value, [n] int; -1 outside [edges[0], edges[-1]] or NaN. Bins are [e_b, e_{b+1}), last closed."""
    idx = np.searchsorted(edges, along, side="right") - 1
    idx = np.where(along == edges[-1], len(edges) - 2, idx)
    inside = (along >= edges[0]) & (along <= edges[-1])  # False for NaN
    return np.where(inside, idx, -1)


def _check_edges(edges) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.size < 2 or not np.all(np.diff(e) > 0):
        raise ValueError(f"edges must be a strictly increasing 1-D array of >= 2 values, got {e.tolist()[:6]}")
    return e


def binned_mean(values, along, edges) -> BinnedMean:
    """Mean and standard error of ``values`` in bins of ``along``.

    Bins are [e_b, e_{b+1}) except the last, which includes its right edge; samples outside [e_0, e_B] and
    NaN values are left out (``count`` counts only the samples used).

    Args:
        values: [n] per-sample quantity (e.g. absolute error, percentage error).
        along: [n] quantity to bin along (e.g. true normalized parameter, distance to a boundary).
        edges: [B + 1] strictly increasing bin edges.

    Returns:
        :class:`BinnedMean`.
    """
    v = np.asarray(values, dtype=np.float64)
    a = np.asarray(along, dtype=np.float64)
    if v.ndim != 1 or v.shape != a.shape:
        raise ValueError(f"values and along must both be [n], got {list(v.shape)} and {list(a.shape)}")
    e = _check_edges(edges)
    num_bins = len(e) - 1
    idx = _bin_index(a, e)
    keep = (idx >= 0) & np.isfinite(v)
    idx, v = idx[keep], v[keep]
    count = np.bincount(idx, minlength=num_bins)
    s1 = np.bincount(idx, weights=v, minlength=num_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(count > 0, s1 / count, np.nan)
        dev2 = np.bincount(idx, weights=(v - mean[idx]) ** 2, minlength=num_bins)  # two-pass: no cancellation
        sem = np.where(count > 1, np.sqrt(dev2 / np.maximum(count - 1, 1)) / np.sqrt(count), np.nan)
    return BinnedMean(edges=e, centers=0.5 * (e[:-1] + e[1:]), mean=mean, sem=sem, count=count.astype(np.int64))


@dataclass(frozen=True)
class BinnedMAE:
    """Fig. 4 statistics.

    Attributes:
        edges: [B + 1] bin edges along the normalized parameters.
        centers: [B] bin centres.
        mae: [P, Q, B] MAE of error column p in bin b of ``along`` column q (NaN in empty bins).
        sem: [P, Q, B] its standard error (NaN with fewer than 2 samples).
        count_test: [Q, B] number of test samples per bin of column q.
        count_train: [Q, B] number of training samples per bin of column q (N_train in Fig. 4).
    """

    edges: np.ndarray
    centers: np.ndarray
    mae: np.ndarray
    sem: np.ndarray
    count_test: np.ndarray
    count_train: np.ndarray


def binned_mae(abs_err, along, train_along, num_bins: int = 10, lo: float = 0.0, hi: float = 1.0) -> BinnedMAE:
    """MAE of each normalized parameter binned along each normalized true parameter, with training counts.

    Args:
        abs_err: [n, P] absolute errors |pred - true| of the test set, normalized parameters (Eq. 4).
        along: [n, Q] normalized true parameters of the test set (the bin axis).
        train_along: [m, Q] normalized true parameters of the training set (counted per bin).
        num_bins: B equal-width bins on [lo, hi].
        lo, hi: bin range (samples outside are left out).

    Returns:
        :class:`BinnedMAE`.

    Reference: paper 2, Sec. III.1.2, Fig. 4.
    """
    e_abs = np.asarray(abs_err, dtype=np.float64)
    a = np.asarray(along, dtype=np.float64)
    tr = np.asarray(train_along, dtype=np.float64)
    if e_abs.ndim != 2 or a.ndim != 2 or tr.ndim != 2:
        raise ValueError(f"abs_err [n, P], along [n, Q], train_along [m, Q] must be 2-D, got {list(e_abs.shape)}, "
                         f"{list(a.shape)}, {list(tr.shape)}")
    if a.shape[0] != e_abs.shape[0]:
        raise ValueError(f"abs_err has {e_abs.shape[0]} samples but along has {a.shape[0]}")
    if tr.shape[1] != a.shape[1]:
        raise ValueError(f"train_along has {tr.shape[1]} columns, along has {a.shape[1]}")
    if int(num_bins) < 1 or not hi > lo:
        raise ValueError(f"need num_bins >= 1 and hi > lo, got {num_bins}, [{lo}, {hi}]")
    edges = np.linspace(lo, hi, int(num_bins) + 1)
    num_p, num_q = e_abs.shape[1], a.shape[1]
    mae = np.empty((num_p, num_q, num_bins))
    sem = np.empty_like(mae)
    count_test = np.zeros((num_q, num_bins), dtype=np.int64)
    count_train = np.zeros((num_q, num_bins), dtype=np.int64)
    for q in range(num_q):
        idx = _bin_index(tr[:, q], edges)
        count_train[q] = np.bincount(idx[idx >= 0], minlength=num_bins)
        idx = _bin_index(a[:, q], edges)
        count_test[q] = np.bincount(idx[idx >= 0], minlength=num_bins)
        for p in range(num_p):
            b = binned_mean(e_abs[:, p], a[:, q], edges)
            mae[p, q], sem[p, q] = b.mean, b.sem
    return BinnedMAE(edges=edges, centers=0.5 * (edges[:-1] + edges[1:]), mae=mae, sem=sem,
                     count_test=count_test, count_train=count_train)
