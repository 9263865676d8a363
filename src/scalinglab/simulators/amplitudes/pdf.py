"""Parton distribution functions shipped with the project: the Duke-Owens set 1 parametrization.

Nothing is downloaded at run time, so the PDFs are an analytic leading-order parametrization with its Q^2
dependence written into the coefficients: D. W. Duke and J. F. Owens, Phys. Rev. D 30 (1984) 49, set 1
(Lambda_QCD = 0.2 GeV, Q_0^2 = 4 GeV^2). Every distribution is

    x f(x, Q^2) = A x^a (1 - x)^b (1 + c x + d x^2 + e x^3),

with each of A, a, b, c, d, e a quadratic polynomial in ``s = ln[ln(Q^2 / Lambda^2) / ln(Q_0^2 / Lambda^2)]``.
The valence combinations ``u_v + d_v`` and ``d_v`` are normalised to 3 and 1 quarks (their A follows from the
other coefficients through Euler's beta function); the sea ``S = 2 (ubar + dbar + sbar)`` is SU(3) symmetric
(``ubar = dbar = s = sbar = S / 6``), charm ``c = cbar`` has its own form.

It is a 1984 fit (pre-HERA: its small-x gluon is too soft by modern standards), adequate for what the project
needs it for: a physical, smoothly varying partonic centre-of-mass energy sqrt(s_hat), so that |M|^2 samples
span the 3 n_f - 4 dimensional phase space of a hadron-collider process. Tests check the quark-number and
momentum sum rules.
"""

from __future__ import annotations

import numpy as np
from scipy.special import beta

LAMBDA2 = 0.2**2  # GeV^2, Lambda_QCD of set 1
Q02 = 4.0  # GeV^2, reference scale of the parametrization
Q2_RANGE = (Q02, 1.0e8)  # evaluation scale clipped to this range (GeV^2): the fit's range, extended mildly

# rows: A (or None where it is fixed by a sum rule), a, b, c, d, e; columns: coefficients of 1, s, s^2
_UV_PLUS_DV = ((0.419, 0.004, -0.007), (3.460, 0.724, -0.066), (4.400, -4.860, 1.330))  # a, b, c
_DV = ((0.763, -0.237, 0.026), (4.000, 0.627, -0.019), (0.000, -0.421, 0.033))  # a, b, c
_SEA = ((1.265, -1.132, 0.293), (0.000, -0.372, -0.029), (8.050, 1.590, -0.153),
        (0.000, 6.310, -0.273), (0.000, -10.50, -3.170), (0.000, 14.70, 9.800))
_CHARM = ((0.000, 0.135, -0.075), (-0.036, -0.222, -0.058), (6.350, 3.260, -0.909),
          (0.000, -3.030, 1.500), (0.000, 17.40, -11.30), (0.000, -17.90, 15.60))
_GLUON = ((1.560, -1.710, 0.638), (0.000, -0.949, 0.325), (6.000, 1.440, -1.050),
          (9.000, -7.190, 0.255), (0.000, -16.50, 10.90), (0.000, 15.30, -10.10))

FLAVOURS = ("g", "u", "d", "s", "c", "u~", "d~", "s~", "c~")


def _evolution_variable(q2: np.ndarray) -> np.ndarray:
    q2 = np.clip(np.asarray(q2, dtype=np.float64), *Q2_RANGE)
    return np.log(np.log(q2 / LAMBDA2) / np.log(Q02 / LAMBDA2))


def _poly(rows, s: np.ndarray) -> list[np.ndarray]:
    return [c0 + c1 * s + c2 * s * s for c0, c1, c2 in rows]


def _form(x: np.ndarray, amp, a, b, c=0.0, d=0.0, e=0.0) -> np.ndarray:
    return amp * x**a * (1.0 - x) ** b * (1.0 + c * x + d * x * x + e * x**3)


def _valence(x: np.ndarray, s: np.ndarray, rows, number: float) -> np.ndarray:
    """x q_v with the normalisation fixed by the quark-number sum rule int q_v dx = number."""
    a, b, c = _poly(rows, s)
    # int_0^1 x^(a-1) (1-x)^b (1 + c x) dx = B(a, b+1) (1 + c a / (a + b + 1))
    amp = number / (beta(a, b + 1.0) * (1.0 + c * a / (a + b + 1.0)))
    return _form(x, amp, a, b, c)


class DukeOwens1:
    """Duke-Owens (1984) set 1 proton PDFs: ``xf(flavour, x, q2)`` returns x f(x, Q^2).

    Flavours: ``g, u, d, s, c`` and antiquarks ``u~, d~, s~, c~``; the scale Q^2 is clipped to
    ``Q2_RANGE`` and x must lie in (0, 1).
    """

    name = "duke-owens-1"
    reference = "D. W. Duke, J. F. Owens, Phys. Rev. D 30 (1984) 49, set 1"

    def xf(self, flavour: str, x: np.ndarray, q2: np.ndarray | float) -> np.ndarray:
        if flavour not in FLAVOURS:
            raise ValueError(f"unknown parton flavour '{flavour}' (known: {', '.join(FLAVOURS)})")
        x = np.asarray(x, dtype=np.float64)
        if np.any((x <= 0) | (x >= 1)):
            raise ValueError("momentum fractions x must lie strictly between 0 and 1")
        s = _evolution_variable(q2)
        if flavour == "g":
            return _form(x, *_poly(_GLUON, s))
        if flavour in ("c", "c~"):
            return _form(x, *_poly(_CHARM, s))
        sea = _form(x, *_poly(_SEA, s)) / 6.0  # each of ubar, dbar, s, sbar
        if flavour in ("u~", "d~", "s", "s~"):
            return sea
        dv = _valence(x, s, _DV, 1.0)
        if flavour == "d":
            return dv + sea
        return _valence(x, s, _UV_PLUS_DV, 3.0) - dv + sea  # u = u_v + ubar


PDF_SETS = {DukeOwens1.name: DukeOwens1}


def get_pdf(name: str):
    """A PDF set by name (``duke-owens-1``)."""
    if name not in PDF_SETS:
        raise ValueError(f"unknown PDF set '{name}' (known: {', '.join(PDF_SETS)})")
    return PDF_SETS[name]()
