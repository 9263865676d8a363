"""Magnetic phases of twisted bilayer CrI3: FM, noncollinear domains (NCD), magnetic domains (MD), and MD2.

Paper 2 (Appendix A) classifies ground states from the layer-averaged out-of-plane magnetizations

    m_t = (1/N_t) sum_{i in top} S_i.z,     m_b = (1/N_b) sum_{i in bottom} S_i.z        (Eq. 13)

through two order parameters (Eqs. 12a-b) and a case rule (Eq. 14). In our copy of the paper Eqs. 12 and 14 are
illegible (only their numbers survive; Fig. 11(a-b) plots the two order parameters and 11(c) the classes, and the
text does not describe the figure), so we state our own rule, built on the phase descriptions of Sec. II.1:

- FM: "a perpendicular, uniform spin configuration";
- NCD: "magnetic domains form in both layers, with spins tilted horizontally in opposite directions": both layers
  lose out-of-plane magnetization by similar amounts, but no spin is reversed;
- MD: "domains form in one layer with opposite out-of-plane polarization compared to the background FM region";
  the other layer "largely maintains an FM order" (slight tilting near the walls).

States with *reversed* domains in both layers fit none of the three descriptions (the previous rule, based on the
magnetizations alone, called them NCD, which contradicts Sec. II.1); they get their own label MD2 (code 3). Telling
them apart needs more than the layer averages, so the rule also uses the fraction of reversed sites per layer.

With the global sign s chosen so that the more saturated layer points up (time reversal is a symmetry of Eq. 1),
deficits d_l = 1 - s m_l and reversed fractions rho_l = (1/N_l) #{i in l : s S_i.z < -REVERSED_Z}:

    FM   if d_top < FM_TOL and d_bottom < FM_TOL                             (FM_TOL = 1e-3)
    MD2  else if rho_top > REVERSED_FRAC and rho_bottom > REVERSED_FRAC      (REVERSED_FRAC = 0.005)
    MD   else if exactly one layer has rho_l > REVERSED_FRAC                 (reversed domains in one layer)
    MD   else if min(d) < MD_RATIO * max(d)                                  (MD_RATIO = 0.4: one layer saturated)
    NCD  otherwise                                                           (tilted, unreversed, both layers)

REVERSED_Z = 0.5: a site counts as reversed when it points more than 120 degrees away from the background; spins
of an NCD state tilt towards the plane (s S.z >= 0 at the extreme of a tilt of 90 degrees), so they never count.
The fall-back to the magnetization ratio (the previous rule) keeps MD for one-layer domains whose core is not fully
reversed (small D, broad walls). Without reversed fractions (``classify(m_top, m_bottom)``) only the ratio rule
applies and MD2 cannot be detected; campaigns always pass them (``classify_spins``).

Codes: FM = 0, NCD = 1, MD = 2, MD2 = 3 (``PHASE_NAMES``); every threshold is a parameter of ``classify``.
In a 3000-sample quick campaign (seed 0) the ratio min(d)/max(d) is strongly bimodal: 94% of samples above 0.9,
3.3% below 0.1 and 0.5% between 0.2 and 0.6, so MD_RATIO within 0.2..0.6 relabels at most 0.5% of the samples.
"""

from __future__ import annotations

import numpy as np

FM, NCD, MD, MD2 = 0, 1, 2, 3
PHASE_NAMES = {FM: "FM", NCD: "NCD", MD: "MD", MD2: "MD2"}
#: One-line meaning of each code (stored in dataset metadata, used in legends).
PHASE_DESCRIPTIONS = {
    FM: "uniform, perpendicular",
    NCD: "domains in both layers, spins tilted in-plane in opposite directions, none reversed",
    MD: "reversed domains in one layer, the other layer nearly saturated",
    MD2: "reversed domains in both layers",
}
NUM_PHASES = len(PHASE_NAMES)
FM_TOL = 1e-3
MD_RATIO = 0.4
REVERSED_Z = 0.5
REVERSED_FRAC = 0.005


def _numpy_sz(spins) -> np.ndarray:
    z = spins[..., 2]
    return np.asarray(z.detach().cpu() if hasattr(z, "detach") else z, dtype=float)


def layer_magnetizations(spins, layer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Layer-averaged out-of-plane magnetizations (paper 2, Eq. 13).

    Args:
        spins: [B, N, 3] unit spins (numpy or torch).
        layer: [N] 0 bottom, 1 top.

    Returns:
        (m_top [B], m_bottom [B]) in [-1, 1].
    """
    sz = _numpy_sz(spins)
    layer = np.asarray(layer)
    return sz[:, layer == 1].mean(1), sz[:, layer == 0].mean(1)


def background_sign(m_top, m_bottom) -> np.ndarray:
    """[B] +-1: the sign of the more saturated layer (the FM background; time reversal fixes it to +1)."""
    mt, mb = np.atleast_1d(np.asarray(m_top, dtype=float)), np.atleast_1d(np.asarray(m_bottom, dtype=float))
    sign = np.where(np.abs(mt) >= np.abs(mb), np.sign(mt), np.sign(mb))
    sign[sign == 0] = 1.0
    return sign


def reversed_fractions(spins, layer: np.ndarray, sign, reversed_z: float = REVERSED_Z) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of sites per layer that point against the background: s S_i.z < -reversed_z.

    Args:
        spins: [B, N, 3] unit spins (numpy or torch).
        layer: [N] 0 bottom, 1 top.
        sign: [B] background sign (``background_sign``).
        reversed_z: threshold on -s S.z (0.5: more than 120 degrees from the background).

    Returns:
        (rho_top [B], rho_bottom [B]) in [0, 1].
    """
    sz = _numpy_sz(spins) * np.asarray(sign, dtype=float).reshape(-1, 1)
    layer = np.asarray(layer)
    rev = sz < -reversed_z
    return rev[:, layer == 1].mean(1), rev[:, layer == 0].mean(1)


def classify(m_top, m_bottom, rev_top=None, rev_bottom=None, fm_tol: float = FM_TOL, md_ratio: float = MD_RATIO,
             reversed_frac: float = REVERSED_FRAC) -> np.ndarray:
    """Phase codes (FM = 0, NCD = 1, MD = 2, MD2 = 3) from layer magnetizations and reversed fractions.

    Args:
        m_top: [B] top-layer magnetization.
        m_bottom: [B] bottom-layer magnetization.
        rev_top, rev_bottom: optional [B] reversed-site fractions (``reversed_fractions``); without them only the
            magnetization-ratio rule applies (no MD2).
        fm_tol: saturation deficit below which a layer counts as uniform.
        md_ratio: MD when the smaller deficit is below this fraction of the larger one.
        reversed_frac: a layer has reversed domains when more than this fraction of its sites is reversed.

    Returns:
        [B] int8 phase codes.
    """
    mt, mb = np.atleast_1d(np.asarray(m_top, dtype=float)), np.atleast_1d(np.asarray(m_bottom, dtype=float))
    if mt.shape != mb.shape:
        raise ValueError(f"m_top and m_bottom shapes differ: {mt.shape} vs {mb.shape}")
    if not (np.all(np.isfinite(mt)) and np.all(np.isfinite(mb))):
        raise ValueError("layer magnetizations contain NaN or inf")
    if (rev_top is None) != (rev_bottom is None):
        raise ValueError("give both rev_top and rev_bottom, or neither")
    sign = background_sign(mt, mb)
    dt, db = 1.0 - sign * mt, 1.0 - sign * mb
    lo, hi = np.minimum(dt, db), np.maximum(dt, db)
    phase = np.full(mt.shape, NCD, dtype=np.int8)
    phase[lo < md_ratio * hi] = MD
    if rev_top is not None:
        rt, rb = np.atleast_1d(np.asarray(rev_top, dtype=float)), np.atleast_1d(np.asarray(rev_bottom, dtype=float))
        if rt.shape != mt.shape or rb.shape != mt.shape:
            raise ValueError(f"reversed fractions must have shape {mt.shape}, got {rt.shape} and {rb.shape}")
        has_t, has_b = rt > reversed_frac, rb > reversed_frac
        phase[has_t ^ has_b] = MD
        phase[has_t & has_b] = MD2
    phase[(dt < fm_tol) & (db < fm_tol)] = FM
    return phase


def domain_layer(m_top, m_bottom) -> np.ndarray:
    """[B] int8: the layer that holds the domains of an MD state (1 top, 0 bottom): the less saturated one."""
    mt, mb = np.atleast_1d(np.asarray(m_top, dtype=float)), np.atleast_1d(np.asarray(m_bottom, dtype=float))
    sign = background_sign(mt, mb)
    return (1.0 - sign * mt > 1.0 - sign * mb).astype(np.int8)


def classify_spins(spins, layer: np.ndarray, **thresholds) -> dict[str, np.ndarray]:
    """Classify spin states directly.

    Args:
        spins: [B, N, 3] unit spins (numpy or torch).
        layer: [N] 0 bottom, 1 top.
        **thresholds: ``classify`` thresholds and ``reversed_z``.

    Returns:
        dict with "phase" [B] int8, "m_top", "m_bottom", "rev_top", "rev_bottom" [B] float64.
    """
    reversed_z = thresholds.pop("reversed_z", REVERSED_Z)
    mt, mb = layer_magnetizations(spins, layer)
    rt, rb = reversed_fractions(spins, layer, background_sign(mt, mb), reversed_z)
    return {"phase": classify(mt, mb, rt, rb, **thresholds), "m_top": mt, "m_bottom": mb, "rev_top": rt,
            "rev_bottom": rb}
