"""Geometry of a batch of unit spins in the relaxer's site-major layout [N, 3, B] (shared by the minimizers).

Rotation-vector ("orthogonal spin optimization", OSO) coordinates: a step rotates every spin S_i about its own axis
w_i by the angle |w_i|. For E = -1/2 S.A S with field H = A S (meV),

    E(R(w) S) = E(S) - sum_i w_i.(S_i x H_i) + O(w^2),

so the gradient in these coordinates is minus the torque t_i = S_i x H_i (|t_i| is the torque the convergence test
uses) and the coordinates live in one global frame (no vector transport between iterations). Only the part of w_i
perpendicular to S_i moves S_i; the displacement u_i = w_i x S_i is tangent and the rotation is the geodesic
(exponential map) S_i' = cos|u_i| S_i + sin|u_i| u_i / |u_i|.

Reference:
    Ivanov, Uzdin, Jonsson, Comput. Phys. Commun. 260, 107749 (2021) (OSO, L-BFGS in these coordinates).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable

import torch


def dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-replica inner product of site-major tensors [N, 3, B] -> [B]."""
    return (a * b).sum(dim=(0, 1))


def cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Site-wise cross product a_i x b_i of [N, 3, B] tensors."""
    return torch.linalg.cross(a, b, dim=1)


def tangent(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """v minus its component along the unit spins x: [N, 3, B]."""
    return v - (v * x).sum(1, keepdim=True) * x


def max_angle2(u: torch.Tensor) -> torch.Tensor:
    """[B] largest squared per-spin norm of a displacement [N, 3, B] (the largest rotation angle, squared)."""
    return (u * u).sum(1).amax(0)


def exp_map(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Move unit spins x [N, 3, B] along tangent displacements u [N, 3, B] on great circles (exact rotation).

    The result is renormalized so that rounding does not accumulate over thousands of iterations.
    """
    th = (u * u).sum(1, keepdim=True).sqrt()  # [N, 1, B] rotation angles
    small = th < 1e-8
    # sin(th) / th, with its Taylor series where th is tiny (avoids 0/0 and keeps full precision).
    sinc = torch.where(small, 1.0 - th * th / 6.0, torch.sin(th) / torch.where(small, torch.ones_like(th), th))
    cos = torch.where(small, 1.0 - th * th / 2.0, torch.cos(th))
    xn = x * cos + u * sinc
    return xn * torch.rsqrt((xn * xn).sum(1, keepdim=True))


def energy_change(x: torch.Tensor, h: torch.Tensor, xn: torch.Tensor, hn: torch.Tensor) -> torch.Tensor:
    """[B] exact E(xn) - E(x) = -1/2 sum_i (xn_i - x_i).(h_i + hn_i) for a quadratic energy E = -1/2 S.A S.

    A sum of small differences: it keeps the change of a step that the difference of two total energies would lose
    to rounding near convergence.
    """
    return -0.5 * dot(xn - x, h + hn)


def curvature_bound(ham, J: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """[B] an upper bound on the field curvature, 3 |J| + max_i sum_k |c_ik| + 2 |D| (meV), per replica.

    Its inverse sets the first step of every minimizer (a step that cannot overshoot in the stiffest direction).
    """
    cmax = ham.inter_c.abs().sum(1).max() if ham.inter_c.numel() else torch.zeros((), dtype=J.dtype, device=J.device)
    return 3.0 * J.abs() + cmax.to(J.dtype) + 2.0 * D.abs() + 1e-12


def tabulated_field(x: torch.Tensor, J: torch.Tensor, D: torch.Tensor, nbr: torch.Tensor, inter_idx: torch.Tensor,
                    inter_c: torch.Tensor) -> torch.Tensor:
    """Effective field [N, 3, B] of site-major spins from the neighbour tables, written without in-place updates
    so that ``torch.compile`` fuses it into the steps (``MoireHamiltonian.field_site_major`` is the eager twin).

    Args:
        x: [N, 3, B] unit spins.
        J: intralayer exchange, broadcastable to [N, 3, B] (meV).
        D: anisotropy, broadcastable to [N, B] (meV).
        nbr: [N, 3] intralayer neighbours; inter_idx, inter_c: [N, K] interlayer partners and couplings.
    """
    h = (x[nbr[:, 0]] + x[nbr[:, 1]] + x[nbr[:, 2]]) * J
    for k in range(inter_idx.shape[1]):
        h = h + x[inter_idx[:, k]] * inter_c[:, k].view(-1, 1, 1)
    zero = torch.zeros_like(x[:, 2])
    return h + torch.stack([zero, zero, 2.0 * D * x[:, 2]], 1)


def compile_with_fallback(eager: Callable, make_compiled: Callable[[], Callable], state: dict, what: str) -> Callable:
    """``run(*args)``: the compiled step, with a permanent fall-back to ``eager`` if compilation fails.

    Args:
        eager: the uncompiled step.
        make_compiled: builds the compiled step (called once; ``state["compiled"]`` caches it).
        state: the caller's module-level cache; ``state["failed"]`` records a failed compilation for good.
        what: the step's name for the warning.
    """
    if state.get("failed"):
        return eager
    if "compiled" not in state:
        # Inductor's C++ toolchain probe logs a CUDA_HOME warning on CPU-only machines; it is not actionable here.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        state["compiled"] = make_compiled()
    compiled = state["compiled"]

    def run(*args):
        if state.get("failed"):
            return eager(*args)
        try:
            return compiled(*args)
        except Exception as exc:  # e.g. no C++ compiler for inductor: correctness does not depend on it
            warnings.warn(f"torch.compile of the {what} step failed ({type(exc).__name__}: {exc}); "
                          "using the eager step", RuntimeWarning, stacklevel=2)
            state["failed"] = True
            return eager(*args)

    return run
