"""Closed-form tree-level squared matrix elements, summed over all helicities and colours, couplings = 1.

Every function takes momenta [B, n, 4] (E, px, py, pz in GeV; incoming first, process-string order) and returns
[B] float64. Invariants: ``s_ij = (p_i + p_j)^2`` with incoming momenta counted as outgoing with a minus sign,
so ``s, t, u`` are the usual Mandelstam variables.
"""

from __future__ import annotations

import itertools

import numpy as np

from scalinglab.simulators.amplitudes.kinematics import pairwise_dots

N_C = 3  # number of colours
C_F = (N_C**2 - 1) / (2 * N_C)


def _all_outgoing_invariants(momenta: np.ndarray) -> np.ndarray:
    """``s_ij = 2 P_i.P_j`` [B, n, n] for all-outgoing momenta P (incoming sign-flipped); massless legs only."""
    p = momenta.copy()
    p[:, :2] *= -1.0
    return 2.0 * pairwise_dots(p)


def ee_mumu(momenta: np.ndarray) -> np.ndarray:
    """``e+ e- > mu+ mu-`` via a photon, massless fermions: ``8 (t^2 + u^2) / s^2``.

    Reference: M. E. Peskin, D. V. Schroeder, "An Introduction to QFT", Eq. (5.70) (times 4 for the spin sum).
    """
    s = _all_outgoing_invariants(momenta)
    ss, t, u = s[:, 0, 1], s[:, 0, 2], s[:, 0, 3]
    return 8.0 * (t**2 + u**2) / ss**2


def ee_qqg(momenta: np.ndarray) -> np.ndarray:
    """``e+ e- > q q~ g`` via a photon (charges and couplings 1), summed over spins and colours.

    ``16 N C_F (s13^2 + s14^2 + s23^2 + s24^2) / (s12 s35 s45)`` with ``s_ij = 2 p_i.p_j`` (1 = e+, 2 = e-,
    3 = q, 4 = q~, 5 = g). The normalisation follows from the soft-gluon limit of ``e+ e- > q q~``
    (``N`` times ``ee_mumu``) and is checked against the Berends-Giele computation in the tests.

    Reference: R. K. Ellis, D. A. Ross, A. E. Terrano, Nucl. Phys. B178 (1981) 421; R. K. Ellis, W. J. Stirling,
    B. R. Webber, "QCD and Collider Physics", Eq. (3.12).
    """
    s = 2.0 * pairwise_dots(momenta)
    num = s[:, 0, 2] ** 2 + s[:, 0, 3] ** 2 + s[:, 1, 2] ** 2 + s[:, 1, 3] ** 2
    return 16.0 * N_C * C_F * num / (s[:, 0, 1] * s[:, 2, 4] * s[:, 3, 4])


def qq_vg(momenta: np.ndarray, mass: float) -> np.ndarray:
    """``q q~ > V g`` for a massive vector V with unit vector coupling (gamma^mu), summed over everything.

    ``8 N C_F (t^2 + u^2 + 2 s M^2) / (t u) = 32 (...)`` with ``t = (p_q - p_g)^2``, ``u = (p_q~ - p_g)^2``
    (N C_F = 4 is the colour sum). For the Standard-Model Z with massless quarks multiply by
    ``g_V^2 + g_A^2`` (times the coupling constants).

    Reference: R. K. Ellis, W. J. Stirling, B. R. Webber, "QCD and Collider Physics", Eq. (9.31) and Table 7.1.
    """
    s = _all_outgoing_invariants(momenta)
    ss, t, u = s[:, 0, 1], s[:, 0, 3], s[:, 1, 3]
    return 8.0 * N_C * C_F * (t**2 + u**2 + 2.0 * ss * mass**2) / (t * u)


def gg_gg(momenta: np.ndarray) -> np.ndarray:
    """``g g > g g``: ``4 * 64 * (9/2) (3 - t u / s^2 - s u / t^2 - s t / u^2)``.

    Reference: R. K. Ellis, W. J. Stirling, B. R. Webber, "QCD and Collider Physics", Table 7.1 (averaged over
    4 helicity and 64 colour states; multiplied back here).
    """
    s = _all_outgoing_invariants(momenta)
    ss, t, u = s[:, 0, 1], s[:, 0, 2], s[:, 0, 3]
    return 1152.0 * (3.0 - t * u / ss**2 - ss * u / t**2 - ss * t / u**2)


def _mhv_sum(momenta: np.ndarray) -> np.ndarray:
    """``2 N^(n-2) (N^2 - 1) sum_{i<j} s_ij^4 sum_{sigma in S_(n-1)} 1 / |s_{1 s2} s_{s2 s3} ... s_{sn 1}|``."""
    s = np.abs(_all_outgoing_invariants(momenta))
    n = momenta.shape[1]
    iu, ju = np.triu_indices(n, k=1)
    num = np.sum(s[:, iu, ju] ** 4, axis=1)
    den = np.zeros(momenta.shape[0])
    # orderings up to reflection: each appears twice in S_(n-1), so take sigma_2 < sigma_n and double
    for perm in itertools.permutations(range(1, n)):
        if perm[0] > perm[-1]:
            continue
        order = (0, *perm)
        prod = np.ones(momenta.shape[0])
        for a, b in zip(order, order[1:] + order[:1]):
            prod = prod * s[:, a, b]
        den += 2.0 / prod
    return 2.0 * N_C ** (n - 2) * (N_C**2 - 1) * num * den


def gg_ggg(momenta: np.ndarray) -> np.ndarray:
    """``g g > g g g``: every non-zero five-gluon helicity amplitude is (anti-)MHV, so Parke-Taylor is exact.

    ``sum |M|^2 = 2 N^3 (N^2 - 1) sum_{i<j} s_ij^4 sum_{sigma in S_4} 1 / |s_{1 s2} s_{s2 s3} s_{s3 s4} s_{s4 s5}
    s_{s5 1}|`` (the subleading colour terms vanish for five gluons).

    Reference: S. J. Parke, T. R. Taylor, Phys. Rev. Lett. 56 (1986) 2459; F. A. Berends, W. T. Giele,
    Nucl. Phys. B294 (1987) 700; M. L. Mangano, S. J. Parke, Phys. Rept. 200 (1991) 301, Eq. (3.26).
    """
    return _mhv_sum(momenta)
