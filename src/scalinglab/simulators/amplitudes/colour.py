"""Exact SU(N) colour matrices for colour-ordered tree amplitudes, computed by explicit sums over colours.

Normalisation: generators ``T^a = lambda^a / sqrt(2)`` with ``Tr(T^a T^b) = delta^ab`` (the convention of the
colour-ordered Feynman rules in ``berends_giele``). A full amplitude is ``M = sum_k c_k A_k`` with colour factors
``c_k`` and colour-ordered partial amplitudes ``A_k``; summed over external colours,
``sum |M|^2 = sum_{kl} A_k C_kl A_l^*`` with ``C_kl = sum_colours c_k c_l^*``.

Bases:
- ``gluon_trace``: ``c_sigma = Tr(T^{a_1} T^{a_sigma(2)} ... T^{a_sigma(n)})`` for the (n-1)! orderings with gluon 1
  first (Berends-Giele / Mangano-Parke trace basis).
- ``gluon_ddm``: ``c_sigma = (F^{a_sigma(2)} ... F^{a_sigma(n-1)})_{a_1 a_n}`` with ``(F^b)_{ac} = Tr(T^a [T^b, T^c])``
  for the (n-2)! orderings with 1 first and n last (Del Duca, Dixon, Maltoni, Nucl. Phys. B571 (2000) 51, Eq. 8).
- ``quark_line``: ``c_sigma = (T^{a_sigma(1)} ... T^{a_sigma(m)})_{i j}`` for one quark line with m gluons (any number
  of colour-neutral bosons), the m! orderings.
"""

from __future__ import annotations

import itertools
from functools import cache

import numpy as np


def gell_mann() -> np.ndarray:
    """The eight Gell-Mann matrices [8, 3, 3] (complex128)."""
    lam = np.zeros((8, 3, 3), dtype=np.complex128)
    lam[0][0, 1] = lam[0][1, 0] = 1
    lam[1][0, 1], lam[1][1, 0] = -1j, 1j
    lam[2][0, 0], lam[2][1, 1] = 1, -1
    lam[3][0, 2] = lam[3][2, 0] = 1
    lam[4][0, 2], lam[4][2, 0] = -1j, 1j
    lam[5][1, 2] = lam[5][2, 1] = 1
    lam[6][1, 2], lam[6][2, 1] = -1j, 1j
    lam[7] = np.diag([1, 1, -2]) / np.sqrt(3)
    return lam


def generators() -> np.ndarray:
    """``T^a = lambda^a / sqrt 2`` [8, 3, 3], normalised to ``Tr(T^a T^b) = delta^ab``."""
    return gell_mann() / np.sqrt(2.0)


def _chain(num: int) -> np.ndarray:
    """Matrix products ``(T^{b_1} ... T^{b_num})_{ij}`` for all adjoint indices: [8]*num + [3, 3]."""
    t = generators()
    out = t
    for _ in range(num - 1):
        out = np.einsum("...ij,bjk->...bik", out, t)
    return out


@cache
def gluon_trace_orderings(n: int) -> tuple[tuple[int, ...], ...]:
    """The (n-1)! orderings (0, sigma...) of n gluons, gluon 0 first."""
    return tuple((0, *perm) for perm in itertools.permutations(range(1, n)))


@cache
def gluon_ddm_orderings(n: int) -> tuple[tuple[int, ...], ...]:
    """The (n-2)! orderings (0, sigma..., n-1) of n gluons."""
    return tuple((0, *perm, n - 1) for perm in itertools.permutations(range(1, n - 1)))


@cache
def quark_line_orderings(m: int) -> tuple[tuple[int, ...], ...]:
    """The m! orderings of m gluons along one quark line."""
    return tuple(itertools.permutations(range(m)))


def _gram(factors: np.ndarray) -> np.ndarray:
    """``C_kl = sum_a c_k(a) c_l(a)^*`` from factors [K, ...]; real part (the imaginary part vanishes exactly)."""
    flat = factors.reshape(factors.shape[0], -1)
    c = flat @ flat.conj().T
    if np.max(np.abs(c.imag)) > 1e-9 * max(np.max(np.abs(c.real)), 1.0):
        raise RuntimeError("colour matrix is not real: generator normalisation is inconsistent")
    return np.ascontiguousarray(c.real)


@cache
def gluon_trace_matrix(n: int) -> np.ndarray:
    """Colour matrix [(n-1)!, (n-1)!] of the trace basis for n gluons (n <= 5 keeps the 8^n tensor small)."""
    if n > 5:
        raise ValueError("use the DDM basis for more than 5 gluons (the trace basis tensor would be 8^n x (n-1)!)")
    tr = np.trace(_chain(n), axis1=-2, axis2=-1)  # [8]*n, Tr(T^{b_0} ... T^{b_{n-1}})
    # c_sigma(a) = Tr(T^{a_{sigma_0}} ... ) = tr with axis k holding a_{sigma_k}: transpose by the inverse perm
    factors = np.stack([np.transpose(tr, np.argsort(order)) for order in gluon_trace_orderings(n)])
    return _gram(factors)


@cache
def structure_f() -> np.ndarray:
    """``F[a, b, c] = Tr(T^a [T^b, T^c]) = i sqrt(2) f^{abc}`` [8, 8, 8] (purely imaginary)."""
    t = generators()
    comm = np.einsum("bij,cjk->bcik", t, t) - np.einsum("cij,bjk->bcik", t, t)
    return np.einsum("aij,bcji->abc", t, comm)


@cache
def gluon_ddm_matrix(n: int) -> np.ndarray:
    """Colour matrix [(n-2)!, (n-2)!] of the DDM adjoint basis for n gluons."""
    f = structure_f()  # f[a, b, c] = (F^b)_{ac}
    fb = np.transpose(f, (1, 0, 2))  # [b, a, c] = (F^b)_{ac}
    chain = fb  # [b_1, a, c]
    for _ in range(n - 3):
        chain = np.einsum("...ac,bcd->...bad", chain, fb)
        # move the new b axis before the matrix axes
    # chain axes: [b_1, ..., b_{n-2}, a_first, a_last]
    k = n - 2
    factors = []
    for order in gluon_ddm_orderings(n):
        inner = [o - 1 for o in order[1:-1]]  # positions of gluons 1..n-2 in the chain
        # c_sigma(a): chain axis j carries gluon inner[j]; put gluon g's index on axis g-1
        perm = np.argsort(inner)
        factors.append(np.transpose(chain, (*perm, k, k + 1)))
    # reorder to canonical (a_0, a_1, ..., a_{n-1}) is unnecessary for the Gram matrix: all factors share axes
    return _gram(np.stack(factors))


@cache
def quark_line_matrix(m: int) -> np.ndarray:
    """Colour matrix [m!, m!] for one quark line with m gluons: ``Tr(T^{s_1}..T^{s_m} T^{t_m}..T^{t_1})``."""
    if m == 0:
        return np.array([[3.0]])
    chain = _chain(m)  # [8]*m + [3, 3]
    factors = np.stack(
        [np.transpose(chain, (*np.argsort(order), m, m + 1)) for order in quark_line_orderings(m)]
    )
    return _gram(factors)
