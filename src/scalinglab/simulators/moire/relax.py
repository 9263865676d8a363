"""Batched energy minimization of unit-spin states: monotone Barzilai-Borwein steepest descent on the sphere.

Every replica b follows

    g_i   = H_i - (S_i.H_i) S_i                      (tangent field = minus the projected gradient; |g_i| = |S_i x H_i|)
    S_i' = (S_i + tau_b g_i) / |S_i + tau_b g_i|      (retraction onto the sphere)

with a per-replica step tau_b from the Barzilai-Borwein formulas, alternating BB1 = s.s / s.y and BB2 = s.y / y.y
(s = S' - S, y = grad' - grad), as in mumax3's minimizer (Exl et al., JAP 115, 17D118 (2014)). Unlike plain BB we
accept a step only if the energy does not increase (monotone safeguard): a rejected step is retried from the same
state with tau / 4. The energy change of a step is computed from the exact identity for a quadratic energy
E = -1/2 S.A S, H = A S:

    E(S') - E(S) = -1/2 sum_i (S'_i - S_i).(H_i + H'_i),

which needs no extra field evaluation and is a sum of small differences (the difference of two total energies
would lose the change in rounding near convergence).

Convergence is judged per replica by the maximum torque max_i |S_i x H_i| (meV) < ``tol``; converged replicas are
frozen (their step is zero) and removed from the batch once a quarter of it has converged. Replicas that reach
``max_iter`` are returned with ``converged = False``.

Layout and speed: the relaxer works in the site-major layout [N, 3, B] (see ``MoireHamiltonian.field_site_major``).
For large batches (>= ``COMPILE_MIN_SPINS`` spins) the whole step (trial, field, energy change, BB products,
acceptance) is fused by ``torch.compile`` (3-6x faster than eager on CPU; falls back to eager if compilation
fails); small batches run eagerly on one thread.

Precision: float64 is the default and what campaigns use. In float32 the rounding of the renormalization changes
the energy by ~ |H| * 6e-8 per spin, which near convergence is as large as the descent gain of a step; the monotone
safeguard then rejects steps and the torque stalls around 1e-2 meV (measured at m = 8), so float32 is only useful
for loose tolerances. Final energies are always recomputed from the returned states.

Reference:
    Barzilai & Borwein, IMA J. Numer. Anal. 8, 141 (1988); Exl et al., J. Appl. Phys. 115, 17D118 (2014);
    DESIGN.md "Twisted bilayer CrI3" (ground state).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import torch

from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian


@dataclass
class RelaxResult:
    """Outcome of a batched relaxation.

    Attributes:
        spins: [B, N, 3] relaxed unit spins.
        energy: [B] float64 energies (meV), recomputed from ``spins``.
        max_torque: [B] max_i |S_i x H_i| (meV) at the returned state.
        iterations: [B] iterations (field evaluations) used.
        converged: [B] bool, max torque < tol.
        energy_trace: [T, B] energies after every iteration (tracked with the exact step identity), only when
            requested; entries after a replica froze repeat its final energy.
    """

    spins: torch.Tensor
    energy: torch.Tensor
    max_torque: torch.Tensor
    iterations: torch.Tensor
    converged: torch.Tensor
    energy_trace: torch.Tensor | None = None


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-replica inner product of site-major tensors [N, 3, B] -> [B] float64."""
    return (a * b).sum(dim=(0, 1)).to(torch.float64)


def _step(x, h, g, tau, J, D, nbr, inter_idx, inter_c):
    """One trial step for every replica (the hot loop; fused into a few kernels when compiled).

    Args:
        x, h, g: [N, 3, B] spins, their field and tangent field.
        tau: [1, 1, B] step sizes (0 for frozen replicas).
        J: [1, 1, B], D: [1, B] per-replica parameters.
        nbr: [N, 3] intralayer neighbours; inter_idx: [N, K] interlayer partners; inter_c: [N, K] couplings (-Jperp).

    Returns:
        x, h, g ([N, 3, B] the new state: the trial where accepted, else the old), accept ([B] bool: energy did not
        increase and tau > 0), de, sy, ss, yy, torque2 ([B]: energy change, BB inner products, squared max torque
        at the trial state).
    """
    xn = x + g * tau
    xn = xn * torch.rsqrt((xn * xn).sum(1, keepdim=True))
    hn = (xn[nbr[:, 0]] + xn[nbr[:, 1]] + xn[nbr[:, 2]]) * J
    for k in range(inter_idx.shape[1]):
        hn = hn + xn[inter_idx[:, k]] * inter_c[:, k].view(-1, 1, 1)
    zero = torch.zeros_like(xn[:, 2])
    hn = hn + torch.stack([zero, zero, 2.0 * D * xn[:, 2]], 1)
    s = xn - x
    de = -0.5 * (s * (h + hn)).sum((0, 1))
    gn = hn - (xn * hn).sum(1, keepdim=True) * xn
    y = g - gn  # difference of gradients (gradient = -g)
    torque2 = (gn * gn).sum(1).amax(0)
    accept = (de <= 0) & (tau.view(-1) > 0)
    a = accept.view(1, 1, -1)
    return (torch.where(a, xn, x), torch.where(a, hn, h), torch.where(a, gn, g), accept, de,
            (s * y).sum((0, 1)), (s * s).sum((0, 1)), (y * y).sum((0, 1)), torque2)


_COMPILED: dict[str, object] = {}
#: Batches with at least this many spins (replicas x sites) are "large": under ``compile="auto"`` they use the
#: compiled step and torch's thread count; smaller batches run eagerly on one thread, because the per-op
#: threading overhead dominates there (measured 5-20x slower with 2 threads on a busy 2-core machine).
COMPILE_MIN_SPINS = 100_000


def _get_step(use_compile: bool):
    """The step function: eager, or compiled with a permanent fall-back to eager if compilation fails."""
    if not use_compile or _COMPILED.get("failed"):
        return _step
    if "step" not in _COMPILED:
        # Inductor's C++ toolchain probe logs a CUDA_HOME warning on CPU-only machines; it is not actionable here.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        _COMPILED["step"] = torch.compile(_step, dynamic=True)
    compiled = _COMPILED["step"]

    def run(*args):
        if _COMPILED.get("failed"):
            return _step(*args)
        try:
            return compiled(*args)
        except Exception as exc:  # e.g. no C++ compiler for inductor: correctness does not depend on it
            warnings.warn(f"torch.compile of the relaxation step failed ({type(exc).__name__}: {exc}); "
                          "using the eager step", RuntimeWarning, stacklevel=2)
            _COMPILED["failed"] = True
            return _step(*args)

    return run


def relax(
    ham: MoireHamiltonian,
    spins: torch.Tensor,
    J=None,
    D=None,
    *,
    tol: float = 1e-4,
    max_iter: int = 10000,
    check_every: int = 4,
    record_trace: bool = False,
    compile: bool | str = "auto",
) -> RelaxResult:
    """Relax a batch of spin states to local energy minima.

    Args:
        ham: the Hamiltonian (lattice, interlayer couplings; its J, D are used unless given here).
        spins: [B, N, 3] initial states (normalized here).
        J: optional [B] or scalar intralayer exchange per replica (meV).
        D: optional [B] or scalar anisotropy per replica (meV).
        tol: convergence threshold on the max torque (meV), > 0.
        max_iter: iteration cap per replica, >= 1.
        check_every: test convergence (a host synchronization and possibly a batch compaction) every this many
            iterations; a replica may run up to check_every - 1 iterations past convergence.
        record_trace: also return the energy after every iteration ([T, B]).
        compile: fuse the step with ``torch.compile`` (True/False, or "auto": when the batch has at least
            ``COMPILE_MIN_SPINS`` spins). The first compilation takes seconds to a minute; if it fails (no C++
            compiler), the eager step is used. Results agree with the eager step to rounding.

    Returns:
        RelaxResult.
    """
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if int(max_iter) < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    if int(check_every) < 1:
        raise ValueError(f"check_every must be >= 1, got {check_every}")
    if spins.ndim != 3 or spins.shape[1] != ham.num_sites or spins.shape[2] != 3:
        raise ValueError(f"spins must have shape [B, {ham.num_sites}, 3], got {tuple(spins.shape)}")
    nb = spins.shape[0]
    dtype, dev = ham.dtype, ham.device
    J = ham.J if J is None else torch.as_tensor(J, dtype=dtype, device=dev).reshape(-1)
    D = ham.D if D is None else torch.as_tensor(D, dtype=dtype, device=dev).reshape(-1)
    J = J.to(dtype).expand(nb).contiguous() if J.numel() == 1 else J.to(dtype)
    D = D.to(dtype).expand(nb).contiguous() if D.numel() == 1 else D.to(dtype)
    if J.numel() != nb or D.numel() != nb:
        raise ValueError(f"J and D need 1 or {nb} values, got {J.numel()} and {D.numel()}")
    if not torch.all(torch.isfinite(spins)):
        raise ValueError("initial spins contain NaN or inf")
    large = nb * ham.num_sites >= COMPILE_MIN_SPINS
    use_compile = large if compile == "auto" else bool(compile)
    threads = torch.get_num_threads()
    if not large and threads > 1:
        torch.set_num_threads(1)
    try:
        return _relax(ham, spins, J, D, tol, int(max_iter), int(check_every), record_trace, _get_step(use_compile))
    finally:
        torch.set_num_threads(threads)


def _relax(ham, spins, J, D, tol, max_iter, check_every, record_trace, step_fn) -> RelaxResult:
    nb = spins.shape[0]
    dtype, dev = ham.dtype, ham.device
    f64 = torch.float64
    tables = (ham.nbr, ham.inter_idx, ham.inter_c)

    x = torch.nn.functional.normalize(spins.to(dtype=dtype, device=dev), dim=-1).permute(1, 2, 0).contiguous()
    h = ham.field_site_major(x, J, D)  # [N, 3, B]
    g = h - (x * h).sum(1, keepdim=True) * x  # tangent field
    energy = -0.5 * _dot(x, h)  # [B], tracked with the step identity
    torque = (g * g).sum(1).amax(0).sqrt().to(f64)
    # Initial step: a fraction of the inverse largest field curvature (3 J + sum |c_inter| + 2 D), 1/meV.
    cmax = ham.inter_c.abs().sum(1).max().to(f64) if ham.inter_c.numel() else torch.zeros((), dtype=f64)
    tau = 0.5 / (3.0 * J.abs().to(f64) + cmax + 2.0 * D.abs().to(f64) + 1e-12)

    j_all, d_all = J, D  # compaction below re-binds J, D to the active subset
    out_x = torch.empty_like(x)
    out_torque = torch.empty(nb, dtype=f64)
    out_iters = torch.zeros(nb, dtype=torch.long)
    out_conv = torch.zeros(nb, dtype=torch.bool)
    active = torch.arange(nb)  # global index of each replica column of x
    frozen = torch.zeros(nb, dtype=torch.bool)
    iters = torch.zeros(nb, dtype=torch.long)
    trace: list[torch.Tensor] = []
    full_energy = energy.clone()

    def finish(cols: torch.Tensor, conv: bool) -> None:
        gi = active[cols]
        out_x[:, :, gi] = x[:, :, cols]
        out_torque[gi] = torque[cols]
        out_iters[gi] = iters[cols]
        out_conv[gi] = conv

    it = 0
    while True:
        if it % check_every == 0 or it >= max_iter:
            frozen |= torque < tol
            if it >= max_iter or bool(frozen.all()):
                break
            nfrozen = int(frozen.sum())
            if nfrozen and nfrozen * 4 >= len(active):
                # Compact: write frozen replicas out and keep working on the rest only.
                finish(torch.nonzero(frozen).squeeze(1), True)
                keep = torch.nonzero(~frozen).squeeze(1)
                x, h, g = (t[:, :, keep].contiguous() for t in (x, h, g))
                J, D, tau, energy, torque, iters = J[keep], D[keep], tau[keep], energy[keep], torque[keep], iters[keep]
                active, frozen = active[keep], frozen[keep]
                if len(active) < 2:
                    step_fn = _step  # a batch of 1 would trigger a recompilation (size-1 specialization)
            jv, dv = J.reshape(1, 1, -1), D.reshape(1, -1)
        step = torch.where(frozen, torch.zeros_like(tau), tau).to(dtype).reshape(1, 1, -1)
        x, h, g, accept, de, sy, ss, yy, t2 = step_fn(x, h, g, step, jv, dv, *tables)
        de, sy, ss, yy = de.to(f64), sy.to(f64), ss.to(f64), yy.to(f64)
        bb = ss / sy if it % 2 == 0 else sy / yy.clamp_min(1e-300)  # BB1 / BB2 alternating
        bb = torch.where((sy > 0) & torch.isfinite(bb), bb, 2.0 * tau)
        tau = torch.where(frozen, tau, torch.where(accept, bb.clamp(max=1e6), tau * 0.25))
        energy = torch.where(accept, energy + de, energy)
        torque = torch.where(accept, t2.to(f64).sqrt(), torque)
        iters += (~frozen).long()
        it += 1
        if record_trace:
            full_energy[active] = energy
            trace.append(full_energy.clone())
    finish(torch.arange(len(active)), False)
    out_conv[active] = torque < tol
    # Final energies and torques recomputed directly from the returned states (float64 accumulation).
    hf = ham.field_site_major(out_x, j_all, d_all)
    e = -0.5 * _dot(out_x, hf)
    gf = hf - (out_x * hf).sum(1, keepdim=True) * out_x
    out_torque = (gf * gf).sum(1).amax(0).sqrt().to(f64)
    out_conv = out_torque < tol
    result_spins = out_x.permute(2, 0, 1).contiguous()
    return RelaxResult(result_spins, e, out_torque, out_iters, out_conv,
                       torch.stack(trace) if record_trace and trace else None)
