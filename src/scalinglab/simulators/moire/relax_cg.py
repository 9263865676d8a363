"""Nonlinear conjugate gradients with a Newton line search on the sphere (``relax(..., method="cg")``).

Rotation-vector (OSO) coordinates as in ``_sphere``; per replica the Polak-Ribiere+ direction

    d = t + beta d_prev,   beta = max(0, t.(t - t_prev) / t_prev.t_prev)

(restarted with d = t when it is not a descent direction). The step length along the geodesic
S_i(a) = cos(a|u_i|) S_i + sin(a|u_i|) u_i/|u_i|, u_i = d_i x S_i, is the Newton step of the energy along it,
which is exact to second order because the energy is a quadratic form:

    E'(0) = -d.t,    E''(0) = sum_i |u_i|^2 (S_i.H_i) - u.A u,    a = -E'(0) / E''(0)

where A u is one extra field evaluation (the field is linear in the spins): two field evaluations per iteration.
Steps are capped at ``max_angle`` rad per spin and safeguarded as in ``relax_lbfgs`` (rejected if the energy rises,
cap quartered, direction restarted).

Reference:
    Polak & Ribiere (1969); Hager & Zhang, Pacific J. Optim. 2, 35 (2006) (survey);
    Ivanov, Uzdin, Jonsson, Comput. Phys. Commun. 260, 107749 (2021) (OSO coordinates).
"""

from __future__ import annotations

import torch

from scalinglab.simulators.moire._sphere import cross, dot, energy_change, exp_map, max_angle2, tangent


class ConjugateGradient:
    """Batched PR+ nonlinear CG stepper for the driver in ``relax.py``.

    Args:
        ham: the Hamiltonian.
        max_angle: largest rotation of any spin in one step (rad).
    """

    evaluations_per_iteration = 2

    def __init__(self, ham, max_angle: float = 0.3) -> None:
        if not max_angle > 0:
            raise ValueError(f"need max_angle > 0, got {max_angle}")
        self.ham = ham
        self.max_angle = float(max_angle)

    def init(self, x: torch.Tensor, h: torch.Tensor, J: torch.Tensor, D: torch.Tensor) -> dict[str, torch.Tensor]:
        t = cross(x, h)
        return {"x": x, "h": h, "t": t, "t_prev": t.clone(), "d": torch.zeros_like(x),
                "cap": torch.full_like(J, self.max_angle), "torque2": (t * t).sum(1).amax(0)}

    def step(self, st: dict[str, torch.Tensor], moving: torch.Tensor, it: int) -> torch.Tensor:
        x, h, t, tp = st["x"], st["h"], st["t"], st["t_prev"]
        beta = (dot(t, t - tp) / dot(tp, tp).clamp_min(1e-300)).clamp_min(0.0)
        d = tangent(t + st["d"] * beta, x)
        slope = dot(d, t)
        bad = ~(slope > 0)
        d = torch.where(bad.view(1, 1, -1), t, d)
        slope = torch.where(bad, dot(t, t), slope)
        u = cross(d, x)
        au = self.ham.field_site_major(u, st["J"], st["D"])  # A u (the field is linear)
        lam = (x * h).sum(1, keepdim=True)  # [N, 1, B] S_i.H_i
        curv = dot(u * u, lam.expand_as(u)) - dot(u, au)
        alpha_cap = st["cap"] * torch.rsqrt(max_angle2(u).clamp_min(1e-300))
        alpha = torch.where(curv > 0, slope / torch.where(curv > 0, curv, torch.ones_like(curv)), alpha_cap)
        alpha = torch.where(moving, torch.minimum(alpha, alpha_cap), torch.zeros_like(alpha))
        xn = exp_map(x, u * alpha)
        hn = self.ham.field_site_major(xn, st["J"], st["D"])
        tn = cross(xn, hn)
        de = energy_change(x, h, xn, hn)
        accept = (de <= 0) & moving
        cap = st["cap"]
        st["cap"] = torch.where(moving, torch.where(accept, torch.clamp(2.0 * cap, max=self.max_angle), 0.25 * cap),
                                cap)
        a = accept.view(1, 1, -1)
        # Rejected: restart from steepest descent at the same state (d = 0, t_prev = t gives beta = 0).
        st["d"] = torch.where(a, d, torch.zeros_like(d))
        st["t_prev"] = t
        st["x"], st["h"], st["t"] = torch.where(a, xn, x), torch.where(a, hn, h), torch.where(a, tn, t)
        st["torque2"] = torch.where(accept, (tn * tn).sum(1).amax(0), st["torque2"])
        return torch.where(accept, de, torch.zeros_like(de))
