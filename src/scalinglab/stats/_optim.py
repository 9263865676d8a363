"""Batched Levenberg-Marquardt with Huber IRLS weights, for refitting many bootstrap replicates at once.

scipy's ``least_squares(loss="huber")`` fits one curve per call (milliseconds each); a bootstrap needs
hundreds of refits of the same small model. This solver advances all of them together with numpy batched
3x3 (or 5x5) solves. It minimizes the same objective as scipy with ``loss="huber"``:
``sum_p rho(r_p)``, ``rho(r) = r^2 / 2`` for ``|r| <= c`` else ``c |r| - c^2 / 2`` (up to scipy's constant
factor, which does not move the minimum).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Huber threshold in units of the standardized residual: 95 % efficiency for Gaussian residuals.
HUBER_SCALE = 1.345


def huber(r: np.ndarray, threshold: float | np.ndarray = HUBER_SCALE) -> np.ndarray:
    """Huber loss of standardized residuals (elementwise; ``threshold`` broadcasts against ``r``)."""
    a = np.abs(r)
    thr = np.asarray(threshold, dtype=np.float64)
    if np.all(np.isinf(thr)):
        return 0.5 * r**2
    finite = np.where(np.isfinite(thr), thr, 0.0)  # an infinite threshold is least squares, never linear
    return np.where(a <= thr, 0.5 * r**2, finite * a - 0.5 * finite**2)


def batched_huber_lm(
    phi0: np.ndarray,
    evaluate: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
    lower: np.ndarray,
    upper: np.ndarray,
    *,
    max_iter: int = 200,
    gtol: float = 1e-6,
    xtol: float = 1e-10,
    weights: np.ndarray | None = None,
    threshold: float | np.ndarray = HUBER_SCALE,
) -> tuple[np.ndarray, np.ndarray]:
    """Minimize ``sum_p w_bp huber(r_p(phi_b))`` independently for every row ``b``.

    Args:
        phi0: starting parameters ``[B, n]``.
        evaluate: ``(phi [b, n], rows [b]) -> (residuals [b, P], d residuals / d phi [b, P, n])`` for the
            subset ``rows`` of the ``B`` problems (only unfinished rows are evaluated).
        lower, upper: box bounds ``[n]`` (may be infinite); steps are clipped into the box.
        max_iter: iterations (each one trial step per unfinished row).
        gtol: converged when the bound-projected gradient's largest component falls below this.
        xtol: converged when an accepted step is shorter than ``xtol * (xtol + |phi|)`` (scipy's rule).
        weights: optional ``[B, P]`` point weights (user weights, or the multiplicities of a case
            bootstrap: resampling points with replacement is weighting each by how often it was drawn).
        threshold: Huber threshold in standardized units, a scalar or ``[B, P]`` (``inf``: least squares).

    Returns:
        ``(phi [B, n], converged [B])``; also converged when the cost changes by less than a relative 1e-12.
    """
    phi = np.array(phi0, dtype=np.float64)
    num, npar = phi.shape
    lam = np.full(num, 1e-3)
    converged = np.zeros(num, dtype=bool)
    r, jr = evaluate(phi, np.arange(num))
    wts = np.ones_like(r) if weights is None else np.broadcast_to(np.asarray(weights, dtype=np.float64), r.shape)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), r.shape)
    cost = (wts * huber(r, thr)).sum(1)
    eye = np.eye(npar)[None]
    for _ in range(max_iter):
        act = np.flatnonzero(~converged)
        if act.size == 0:
            break
        ph, ra, ja, la, ca = phi[act], r[act], jr[act], lam[act], cost[act]
        wa, ta = wts[act], thr[act]
        omega = wa * np.minimum(1.0, ta / np.maximum(np.abs(ra), 1e-300))  # IRLS weights (b, P)
        grad = np.einsum("bpi,bp->bi", ja, omega * ra)
        hess = np.einsum("bpi,bp,bpj->bij", ja, omega, ja)
        # components that push out of an active bound cannot be reduced further
        blocked = ((ph <= lower + 1e-12) & (grad > 0)) | ((ph >= upper - 1e-12) & (grad < 0))
        done = np.abs(np.where(blocked, 0.0, grad)).max(1) < gtol
        diag = np.einsum("bii->bi", hess)
        damped = hess + (la[:, None] * np.maximum(diag, 1e-12))[:, :, None] * eye
        try:
            step = -np.linalg.solve(damped, grad[..., None])[..., 0]
        except np.linalg.LinAlgError:  # an exactly singular row: fall back to the pseudo-inverse for all
            step = -(np.linalg.pinv(damped) @ grad[..., None])[..., 0]
        trial = np.clip(ph + step, lower, upper)
        r_t, jr_t = evaluate(trial, act)
        cost_t = (wa * huber(r_t, ta)).sum(1)
        cost_t = np.where(np.isfinite(cost_t), cost_t, np.inf)
        accept = cost_t < ca
        moved = np.linalg.norm(trial - ph, axis=1)
        done |= np.abs(ca - cost_t) <= 1e-12 * (1.0 + ca)
        done |= accept & (moved < xtol * (xtol + np.linalg.norm(ph, axis=1)))
        phi[act] = np.where(accept[:, None], trial, ph)
        r[act] = np.where(accept[:, None], r_t, ra)
        jr[act] = np.where(accept[:, None, None], jr_t, ja)
        cost[act] = np.where(accept, cost_t, ca)
        lam[act] = np.where(accept, np.maximum(la * 0.3, 1e-12), np.minimum(la * 10.0, 1e12))
        converged[act] = done
    return phi, converged & np.all(np.isfinite(phi), axis=1)
