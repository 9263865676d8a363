"""L-BFGS in rotation-vector (OSO) coordinates on the sphere (``relax(..., method="lbfgs")``, the default).

Coordinates and gradient as in ``_sphere``: a step rotates every spin about an axis w_i (3 numbers per spin, one
global frame), the gradient is -t with t_i = S_i x H_i the torque. Per replica b the search direction is the
L-BFGS two-loop recursion applied to t with the last ``memory`` pairs

    s_k = w_k (the rotation taken),   y_k = t_k - t_{k+1} (difference of gradients),   rho_k = 1 / s_k.y_k,

initial inverse Hessian gamma = s.y / y.y of the newest pair (1 / (2 x curvature bound) before the first), and pairs
with s.y <= 0 skipped (rho = 0). The direction is projected on the tangent plane and the step is capped so that no
spin turns by more than ``max_angle`` rad (a trust region; the unit quasi-Newton step is usually accepted, no line
search, one field evaluation per iteration). Monotone safeguard: a step that increases the energy (exact identity of
``_sphere``) is rejected and the cap of that replica is quartered; the curvature pair of a rejected step is still
stored (both ends are known exactly, so it is true information about the energy around the current state). The cap
doubles back towards ``max_angle`` after accepted steps. If the direction is not a descent direction the memory of
that replica is cleared and it takes a steepest-descent step.

Batched: all replicas advance in lockstep with their own memory, gamma, cap and parameters (J, D); frozen replicas
take zero steps; everything stays on the Hamiltonian's device without host synchronization. The memory is a list of
``memory`` tensors, newest first, so that the step has one fixed structure: for large batches it is fused by
``torch.compile`` (falls back to eager if compilation fails).

Reference:
    Ivanov, Uzdin, Jonsson, Comput. Phys. Commun. 260, 107749 (2021); Nocedal & Wright, Numerical Optimization,
    2nd ed. (2006), Alg. 7.4 (two-loop recursion).
"""

from __future__ import annotations

import logging
import warnings

import torch

from scalinglab.simulators.moire._sphere import curvature_bound


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a_i x b_i for [N, 3, B] tensors (explicit components: fuses under compile, faster than linalg.cross here)."""
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], 1)


def _step(x, h, t, gamma, gamma0, cap, moving, rho, S, Y, J, D, nbr, inter_idx, inter_c, max_angle: float):
    """One L-BFGS-OSO iteration of every replica (direction, capped rotation, field, safeguard, curvature pair).

    Args:
        x, h, t: [N, 3, B] spins, field, torque x cross h.
        gamma, gamma0, cap: [B] initial inverse Hessian scale, its fall-back, step cap (rad).
        moving: [B] bool (False: frozen, zero step).
        rho: [M, B] 1 / s.y of the stored pairs (0: empty or invalid), newest first.
        S, Y: M-tuples of [N, 3, B] stored rotations and gradient differences, newest first.
        J: [1, 1, B], D: [1, B] per-replica parameters; nbr, inter_idx, inter_c: neighbour tables.

    Returns:
        x, h, t (new state), torque2, de ([B] energy change, 0 if rejected), s, y (the new pair), rho_new ([B]),
        keep ([B] float, 0 where the memory must be cleared), gamma, cap.
    """
    # Two-loop recursion on the torque (= minus the gradient) gives the descent direction H t.
    q = t
    alpha = []
    for j in range(len(S)):
        a = rho[j] * (S[j] * q).sum((0, 1))
        alpha.append(a)
        q = q - Y[j] * a
    r = q * gamma
    for j in range(len(S) - 1, -1, -1):
        b = rho[j] * (Y[j] * r).sum((0, 1))
        r = r + S[j] * (alpha[j] - b)
    w = r - (r * x).sum(1, keepdim=True) * x  # tangent rotation vectors
    slope = (w * t).sum((0, 1))
    bad = ~(slope > 0)
    w = torch.where(bad.view(1, 1, -1), t * gamma0, w)
    gamma = torch.where(bad, gamma0, gamma)
    # Capped geodesic step: displacement u = w x S, no spin turns by more than cap.
    u = _cross(w, x)
    th2 = (u * u).sum(1, keepdim=True)  # [N, 1, B]
    sigma = torch.clamp(cap * torch.rsqrt(th2.amax(0).clamp_min(1e-300)), max=1.0)  # [1, B]
    sigma = torch.where(moving, sigma.view(-1), torch.zeros_like(cap))
    sv = sigma.view(1, 1, -1)
    th = (th2.sqrt() * sv).clamp_min(1e-30)
    xn = x * torch.cos(th) + u * (sv * torch.sin(th) / th)
    xn = xn * torch.rsqrt((xn * xn).sum(1, keepdim=True))
    hn = (xn[nbr[:, 0]] + xn[nbr[:, 1]] + xn[nbr[:, 2]]) * J
    for k in range(inter_idx.shape[1]):
        hn = hn + xn[inter_idx[:, k]] * inter_c[:, k].view(-1, 1, 1)
    zero = torch.zeros_like(xn[:, 2])
    hn = hn + torch.stack([zero, zero, 2.0 * D * xn[:, 2]], 1)
    tn = _cross(xn, hn)
    de = -0.5 * ((xn - x) * (h + hn)).sum((0, 1))  # exact for a quadratic energy
    accept = (de <= 0) & moving
    # Curvature pair, stored whether or not the step is accepted.
    s = w * sv
    y = t - tn
    sy, yy, ss = (s * y).sum((0, 1)), (y * y).sum((0, 1)), (s * s).sum((0, 1))
    valid = moving & (sy > 1e-12 * torch.sqrt(ss * yy))
    rho_new = torch.where(valid, 1.0 / torch.where(valid, sy, torch.ones_like(sy)), torch.zeros_like(sy))
    gamma = torch.where(valid, sy / yy.clamp_min(1e-300), gamma)
    cap = torch.where(moving, torch.where(accept, torch.clamp(2.0 * cap, max=max_angle), 0.25 * cap), cap)
    a3 = accept.view(1, 1, -1)
    t2 = (tn * tn).sum(1).amax(0)
    return (torch.where(a3, xn, x), torch.where(a3, hn, h), torch.where(a3, tn, t), t2, accept,
            torch.where(accept, de, torch.zeros_like(de)), s, y, rho_new, (~bad).to(x.dtype), gamma, cap)


_COMPILED: dict[str, object] = {}


def _get_step(use_compile: bool):
    """The step function: eager, or compiled with a permanent fall-back to eager if compilation fails."""
    if not use_compile or _COMPILED.get("failed"):
        return _step
    if "step" not in _COMPILED:
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        _COMPILED["step"] = torch.compile(_step, dynamic=True)
    compiled = _COMPILED["step"]

    def run(*args):
        if _COMPILED.get("failed"):
            return _step(*args)
        try:
            return compiled(*args)
        except Exception as exc:  # e.g. no C++ compiler for inductor: correctness does not depend on it
            warnings.warn(f"torch.compile of the L-BFGS step failed ({type(exc).__name__}: {exc}); "
                          "using the eager step", RuntimeWarning, stacklevel=2)
            _COMPILED["failed"] = True
            return _step(*args)

    return run


class LBFGS:
    """Batched L-BFGS-OSO stepper for the driver in ``relax.py``.

    Args:
        ham: the Hamiltonian.
        use_compile: fuse the step with ``torch.compile``.
        memory: number of stored (s, y) pairs (memory cost: 2 * memory copies of the state).
        max_angle: largest rotation of any spin in one step (rad).
    """

    evaluations_per_iteration = 1

    def __init__(self, ham, use_compile: bool = False, memory: int = 5, max_angle: float = 0.3) -> None:
        if int(memory) < 1 or not max_angle > 0:
            raise ValueError(f"need memory >= 1 and max_angle > 0, got {memory}, {max_angle}")
        self.ham = ham
        self.tables = (ham.nbr, ham.inter_idx, ham.inter_c)
        self.memory = int(memory)
        self.max_angle = float(max_angle)
        self.step_fn = _get_step(use_compile)

    def init(self, x: torch.Tensor, h: torch.Tensor, J: torch.Tensor, D: torch.Tensor) -> dict:
        t = _cross(x, h)
        gamma0 = 0.5 / curvature_bound(self.ham, J, D)
        return {"x": x, "h": h, "t": t, "torque2": (t * t).sum(1).amax(0),
                "S": [torch.zeros_like(x) for _ in range(self.memory)],
                "Y": [torch.zeros_like(x) for _ in range(self.memory)],
                "rho": x.new_zeros((self.memory, x.shape[-1])),
                "gamma": gamma0.clone(), "gamma0": gamma0, "cap": torch.full_like(gamma0, self.max_angle)}

    def step(self, st: dict, moving: torch.Tensor, it: int) -> torch.Tensor:
        """Advance the moving replicas by one iteration in place; returns the [B] energy change (0 if rejected)."""
        fn = self.step_fn if st["x"].shape[-1] > 1 else _step  # size-1 batches would recompile
        jv, dv = st["J"].reshape(1, 1, -1), st["D"].reshape(1, -1)
        (x, h, t, t2, accept, de, s, y, rho_new, keep, gamma, cap) = fn(
            st["x"], st["h"], st["t"], st["gamma"], st["gamma0"], st["cap"], moving, st["rho"], tuple(st["S"]),
            tuple(st["Y"]), jv, dv, *self.tables, self.max_angle)
        st["x"], st["h"], st["t"], st["gamma"], st["cap"] = x, h, t, gamma, cap
        st["torque2"] = torch.where(accept, t2, st["torque2"])
        # Newest pair first; the oldest drops out. Replicas without a descent direction forget the old pairs.
        st["S"] = [s] + st["S"][:-1]
        st["Y"] = [y] + st["Y"][:-1]
        st["rho"] = torch.cat([rho_new[None], st["rho"][:-1] * keep], 0)
        return de
