"""L-BFGS in rotation-vector (OSO) coordinates on the sphere (``relax(..., method="lbfgs")``).

Coordinates and gradient as in ``_sphere``: a step rotates every spin about an axis w_i (3 numbers per spin, one
global frame), the gradient is -t with t_i = S_i x H_i the torque. Per replica b the search direction is the
L-BFGS two-loop recursion applied to t with the last ``memory`` pairs

    s_k = w_k (the rotation taken),   y_k = t_k - t_{k+1} (difference of gradients),   rho_k = 1 / s_k.y_k,

initial inverse Hessian gamma = s.y / y.y of the newest pair (1 / (2 x curvature bound) before the first), and pairs
with s.y <= 0 skipped (rho = 0). The direction is computed from the compact representation (``_direction``; equal to
the two-loop recursion, tested). The direction is projected on the tangent plane and the step is capped so that no
spin turns by more than ``max_angle`` rad (a trust region; the unit quasi-Newton step is usually accepted, no line
search, one field evaluation per iteration). Monotone safeguard: a step that increases the energy (exact identity of
``_sphere``) is rejected and the cap of that replica is quartered; the curvature pair of a rejected step is still
stored (both ends are known exactly, so it is true information about the energy around the current state). The cap
doubles back towards ``max_angle`` after accepted steps. If the direction is not a descent direction the memory of
that replica is cleared and it takes a steepest-descent step.

Batched: all replicas advance in lockstep with their own memory, gamma, cap and parameters (J, D); frozen replicas
take zero steps; everything stays on the Hamiltonian's device without host synchronization. The memory is a list of
``memory`` tensors, newest first, so that the step has one fixed structure: for large batches it is fused by
``torch.compile`` (falls back to eager if compilation fails). Cost: ~3x a BB iteration on CPU (39 ms vs 12 ms per
iteration at 50 x 1876 spins, one thread, compiled), for 2.4x fewer iterations from random starts at m = 12.

Reference:
    Ivanov, Uzdin, Jonsson, Comput. Phys. Commun. 260, 107749 (2021); Nocedal & Wright, Numerical Optimization,
    2nd ed. (2006), Alg. 7.4 (two-loop recursion).
"""

from __future__ import annotations

import torch

from scalinglab.simulators.moire._sphere import compile_with_fallback, curvature_bound, tabulated_field


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a_i x b_i for [N, 3, B] tensors (explicit components: fuses under compile, faster than linalg.cross here)."""
    a0, a1, a2 = a[:, 0], a[:, 1], a[:, 2]
    b0, b1, b2 = b[:, 0], b[:, 1], b[:, 2]
    return torch.stack([a1 * b2 - a2 * b1, a2 * b0 - a0 * b2, a0 * b1 - a1 * b0], 1)


def _direction(t, gamma, rho, S, Y, sty, yty):
    """Quasi-Newton direction H t from the compact representation of the L-BFGS inverse Hessian.

    H = gamma I + [S  gamma Y] W [S^T; gamma Y^T],  W = [[R^-T (Dg + gamma Y^T Y) R^-1, -R^-T], [-R^-1, 0]]
    (Byrd, Nocedal, Schnabel, Math. Program. 63, 129 (1994), Eq. 3.13; the same matrix as the two-loop
    recursion). R holds s_a.y_b for a older than or equal to b, Dg = diag(s_a.y_a). Indices here run newest first,
    so R is lower triangular. All big-array work is one fused reduction pass (S^T t, Y^T t and the new row of
    S^T Y, Y^T Y) and one combination pass, instead of 2 M dependent passes of the two-loop recursion.

    Args:
        t: [N, 3, B] torque (minus the gradient).
        gamma: [B]; rho: [M, B] 1 / s.y (0: invalid pair, masked out).
        S, Y: M-tuples of [N, 3, B], newest first (entry 0 is the pair added by the previous step).
        sty, yty: [M, M, B] S^T Y and Y^T Y of the previous step's memory (newest first).

    Returns:
        (direction [N, 3, B], sty, yty updated for the current memory).
    """
    m = len(S)
    s0, y0 = S[0], Y[0]
    p1 = torch.stack([(S[j] * t).sum((0, 1)) for j in range(m)])  # [M, B]
    p2 = torch.stack([(Y[j] * t).sum((0, 1)) for j in range(m)])
    col = torch.stack([(S[j] * y0).sum((0, 1)) for j in range(m)])  # s_j.y_0
    row = torch.stack([(s0 * Y[j]).sum((0, 1)) for j in range(m)])  # s_0.y_j
    yy0 = torch.stack([(Y[j] * y0).sum((0, 1)) for j in range(m)])  # y_j.y_0
    # Shift the old matrices by one (the oldest pair dropped out) and insert the newest row and column.
    sty = torch.cat([row[None], torch.cat([col[1:, None], sty[:-1, :-1]], 1)], 0)
    yty = torch.cat([yy0[None], torch.cat([yy0[1:, None], yty[:-1, :-1]], 1)], 0)
    mask = (rho > 0).to(t.dtype)  # [M, B]
    mm = mask[:, None] * mask[None, :]  # [M, M, B]
    eye = torch.eye(m, dtype=t.dtype, device=t.device)[:, :, None]
    lower = torch.tril(torch.ones(m, m, dtype=t.dtype, device=t.device))[:, :, None]
    # R[a, c] = s_a.y_c for a >= c (a older); masked pairs get a unit diagonal and no coupling.
    r_mat = (sty * mm * lower + eye * (1.0 - mask)[None, :]).permute(2, 0, 1)  # [B, M, M], lower triangular
    dg = torch.diagonal(sty, dim1=0, dim2=1).transpose(0, 1) * mask  # [M, B]
    yty_b = (yty * mm).permute(2, 0, 1)  # [B, M, M]
    p1m = (p1 * mask).transpose(0, 1)[:, :, None]  # [B, M, 1]
    p2m = (p2 * mask * gamma).transpose(0, 1)[:, :, None]
    v = torch.linalg.solve_triangular(r_mat, p1m, upper=False)  # R^-1 S^T t
    rhs = dg.transpose(0, 1)[:, :, None] * v + gamma.view(-1, 1, 1) * (yty_b @ v) - p2m
    top = torch.linalg.solve_triangular(r_mat.transpose(1, 2), rhs, upper=True)  # R^-T (...)
    top, v = top[:, :, 0].transpose(0, 1), v[:, :, 0].transpose(0, 1)  # [M, B]
    d = t * gamma
    for j in range(m):
        d = d + S[j] * top[j] - Y[j] * (gamma * v[j])
    return d, sty, yty


def _step(x, h, t, gamma, gamma0, cap, moving, rho, S, Y, sty, yty, J, D, nbr, inter_idx, inter_c,
          max_angle: float):
    """One L-BFGS-OSO iteration of every replica (direction, capped rotation, field, safeguard, curvature pair).

    Args:
        x, h, t: [N, 3, B] spins, field, torque x cross h.
        gamma, gamma0, cap: [B] initial inverse Hessian scale, its fall-back, step cap (rad).
        moving: [B] bool (False: frozen, zero step).
        rho: [M, B] 1 / s.y of the stored pairs (0: empty or invalid), newest first.
        S, Y: M-tuples of [N, 3, B] stored rotations and gradient differences, newest first.
        sty, yty: [M, M, B] inner products of the memory (see ``_direction``).
        J: [1, 1, B], D: [1, B] per-replica parameters; nbr, inter_idx, inter_c: neighbour tables.

    Returns:
        x, h, t (new state), torque2, accept, de ([B] energy change, 0 if rejected), s, y (the new pair),
        rho_new ([B]), keep ([B] float, 0 where the memory must be cleared), gamma, cap, sty, yty.
    """
    r, sty, yty = _DIRECTION["fn"](t, gamma, rho, S, Y, sty, yty)
    return _TRIAL["fn"](x, h, t, r, gamma, gamma0, cap, moving, J, D, nbr, inter_idx, inter_c, max_angle) + (sty, yty)


def _trial(x, h, t, r, gamma, gamma0, cap, moving, J, D, nbr, inter_idx, inter_c, max_angle: float):
    """Capped rotation along the direction r, new field, safeguard and curvature pair (see ``_step``)."""
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
    hn = tabulated_field(xn, J, D, nbr, inter_idx, inter_c)
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


# The step runs as two fused pieces (direction; trial step): one graph for both was 3x slower under inductor on
# CPU (measured 42 ms vs 12 ms for BB per iteration at 50 x 1876 spins), the split materializes the direction once.
_DIRECTION = {"fn": _direction}
_TRIAL = {"fn": _trial}
_COMPILED: dict[str, object] = {}


def _get_step(use_compile: bool):
    """The step function: eager, or with both pieces compiled (permanent fall-back to eager if compilation fails)."""
    if not use_compile:
        return _eager_step

    def make_compiled():
        direction, trial = torch.compile(_direction, dynamic=True), torch.compile(_trial, dynamic=True)

        def compiled_step(*args):
            _DIRECTION["fn"], _TRIAL["fn"] = direction, trial
            return _step(*args)

        return compiled_step

    return compile_with_fallback(_eager_step, make_compiled, _COMPILED, "L-BFGS")


def _eager_step(*args):
    _DIRECTION["fn"], _TRIAL["fn"] = _direction, _trial
    return _step(*args)


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
                "sty": x.new_zeros((self.memory, self.memory, x.shape[-1])),
                "yty": x.new_zeros((self.memory, self.memory, x.shape[-1])),
                "gamma": gamma0.clone(), "gamma0": gamma0, "cap": torch.full_like(gamma0, self.max_angle)}

    def step(self, st: dict, moving: torch.Tensor, it: int) -> torch.Tensor:
        """Advance the moving replicas by one iteration in place; returns the [B] energy change (0 if rejected)."""
        fn = self.step_fn if st["x"].shape[-1] > 1 else _eager_step  # size-1 batches would recompile
        jv, dv = st["J"].reshape(1, 1, -1), st["D"].reshape(1, -1)
        (x, h, t, t2, accept, de, s, y, rho_new, keep, gamma, cap, sty, yty) = fn(
            st["x"], st["h"], st["t"], st["gamma"], st["gamma0"], st["cap"], moving, st["rho"], tuple(st["S"]),
            tuple(st["Y"]), st["sty"], st["yty"], jv, dv, *self.tables, self.max_angle)
        st["x"], st["h"], st["t"], st["gamma"], st["cap"], st["sty"], st["yty"] = x, h, t, gamma, cap, sty, yty
        st["torque2"] = torch.where(accept, t2, st["torque2"])
        # Newest pair first; the oldest drops out. Replicas without a descent direction forget the old pairs.
        st["S"] = [s] + st["S"][:-1]
        st["Y"] = [y] + st["Y"][:-1]
        st["rho"] = torch.cat([rho_new[None], st["rho"][:-1] * keep], 0)
        return de
