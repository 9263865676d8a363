"""Batched energy minimization of unit-spin states on the sphere: one driver, several minimizers.

``relax(ham, spins, J, D, method=...)`` relaxes a batch of B replicas (starts x parameter sets of one lattice, J and
D per replica) to local minima of the Hamiltonian. The minimizers, one file each:

- ``"bb"`` (default): monotone Barzilai-Borwein steepest descent (``relax_bb``; optionally nonmonotone);
- ``"lbfgs"``: L-BFGS in rotation-vector (OSO) coordinates, capped step, monotone (``relax_lbfgs``);
- ``"cg"``: Polak-Ribiere+ nonlinear CG with a Newton line search, 2 field evaluations per iteration (``relax_cg``);
- ``"vp"``: velocity projection in OSO coordinates (``relax_vp``).

Measured (issue 10, ``benchmarks/moire_spirit.py``; 50 random starts, tol 1e-4 meV, J = 5, D = 0.1 meV, one
thread): L-BFGS needs 2.4x fewer iterations than BB at m = 12 (median 406 vs 964 per start) but its fused step costs
~3x a BB step on CPU (memory traffic of the 5 stored pairs), so BB is faster per sample (15 s vs 19 s at m = 12) and
stays the default. Where BB crawls (domain states of small m, e.g. MD seeds at m = 8, (J, D) = (1.0, 0.3) meV:
11,700 BB iterations vs 870 for L-BFGS) choose ``method="lbfgs"``. VP needs ~1e4 iterations and is not for
production.

Streaming window (``chunk_spins``, default ``CHUNK_SPINS`` on CPU, at least ``WINDOW_MIN_REPLICAS`` replicas): at
most that many spins are relaxed together; each converged replica is replaced by the next waiting one (the batched
step is cheaper per spin at ~8-16 replicas than at 50 on CPU).

Driver (shared): convergence is judged per replica by the maximum torque max_i |S_i x H_i| (meV) < ``tol`` every
``check_every`` iterations (the only host synchronization of the loop); converged replicas are frozen (zero step)
and removed from the batch once a quarter of it has converged. Replicas that reach ``max_iter`` are returned with
``converged = False``. The energy of each replica is tracked with the exact step identity of a quadratic energy
(``_sphere.energy_change``); final energies and torques are recomputed from the returned states.

Layout: the site-major layout [N, 3, B] (see ``MoireHamiltonian.field_site_major``); every state tensor of a
minimizer carries the batch on its last axis, so the driver compacts them all alike. Everything stays on the
Hamiltonian's device. Small windows (< ``THREADS_MIN_SPINS`` spins) run on one thread: the per-op threading
overhead dominates there (measured 5-20x slower with 2 threads on a busy 2-core machine).

Precision: float64 is the default and what campaigns use (see ``relax_bb`` for why float32 stalls near 1e-2 meV).

Reference:
    DESIGN.md "Twisted bilayer CrI3" (ground state); Ivanov, Uzdin, Jonsson, Comput. Phys. Commun. 260, 107749
    (2021); Barzilai & Borwein, IMA J. Numer. Anal. 8, 141 (1988).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scalinglab.simulators.moire.hamiltonian import MoireHamiltonian
from scalinglab.simulators.moire.relax_bb import BarzilaiBorwein
from scalinglab.simulators.moire.relax_cg import ConjugateGradient
from scalinglab.simulators.moire.relax_lbfgs import LBFGS
from scalinglab.simulators.moire.relax_vp import VelocityProjection

#: Minimizers by name; the value builds the stepper from (ham, use_compile, **options).
METHODS = {
    "bb": lambda ham, use_compile, **kw: BarzilaiBorwein(ham, use_compile, **kw),
    "lbfgs": lambda ham, use_compile, **kw: LBFGS(ham, use_compile, **kw),
    "cg": lambda ham, use_compile, **kw: ConjugateGradient(ham, **kw),
    "vp": lambda ham, use_compile, **kw: VelocityProjection(ham, **kw),
}
DEFAULT_METHOD = "bb"
#: Under ``compile="auto"`` the BB and L-BFGS steps are compiled for batches of at least this many spins (replicas x
#: sites). Measured (one thread, BB from 1e-2 to 1e-4 meV, 3 replicas): compiled 1.0 vs eager 2.0 s at m = 12 (5.6k
#: spins), 9.7-11.3 vs 20.5 s at m = 32 (38k spins); the ground-state search refines a few replicas at a time.
COMPILE_MIN_SPINS = 5_000
#: Windows of at least this many spins use torch's thread count; smaller ones run on one thread (the per-iteration
#: synchronisation costs more than a second thread gains).
THREADS_MIN_SPINS = 100_000
#: Default of ``relax(chunk_spins="auto")`` on CPU: at most this many spins (replicas x sites) in the working batch,
#: converged replicas replaced by waiting ones (streaming window). Measured (``benchmarks/moire_spirit.py``, 50
#: random starts, one thread): the step costs less per spin at 8-16 replicas than at 50 (BB 45-55 vs 86-105 ns per
#: spin-iteration, L-BFGS 140-180 vs 295-320); 40k spins gave BB 6.0 vs 7.4 s per sample at m = 12 and 27 vs 33 s at
#: m = 20. Windows of 1-2 replicas are slower (per-iteration overhead ~1 ms); relaxing the batch as consecutive
#: chunks instead was slower (each chunk pays its slowest replica's tail). On other devices "auto" is the whole batch.
CHUNK_SPINS = 40_000
#: ... but never fewer than this many replicas in the window. The compiled step (dynamic batch size) costs about the
#: same per iteration for 1 to 8 replicas (its innermost loop runs over the batch; below 8 it is not vectorized):
#: measured at m = 32 (12,676 spins, one thread, busy machine) 50 random starts to 1e-2 meV took 103.6 s with the
#: 3 replicas that 40k spins allow and 50.1 s with 8 (56.8 s with 16), the same iterations.
WINDOW_MIN_REPLICAS = 8


@dataclass
class RelaxResult:
    """Outcome of a batched relaxation.

    Attributes:
        spins: [B, N, 3] relaxed unit spins.
        energy: [B] float64 energies (meV), recomputed from ``spins``.
        max_torque: [B] max_i |S_i x H_i| (meV) at the returned state.
        iterations: [B] iterations used (field evaluations for "bb", "lbfgs", "vp"; "cg" evaluates the field
            twice per iteration).
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
    method: str = DEFAULT_METHOD,
    options: dict | None = None,
    chunk_spins: int | str | None = "auto",
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
        compile: for ``method="bb"`` and ``"lbfgs"``, fuse the step with ``torch.compile`` (True/False, or "auto":
            when the batch has at least ``COMPILE_MIN_SPINS`` spins); falls back to eager if compilation fails.
        method: minimizer, one of ``METHODS`` ("bb", "lbfgs", "cg", "vp").
        options: keyword options of the minimizer (e.g. ``{"memory": 10}`` for "lbfgs", ``{"dt_scale": 1.5}``
            for "vp", ``{"max_angle": 0.5}``); see the minimizer classes.
        chunk_spins: keep at most this many spins (replicas x sites, at least one replica) in the working batch:
            the first replicas start, and each one that converges (or reaches max_iter) is replaced by the next
            waiting one at the following convergence check (a streaming window; results in the original order,
            per replica the same minimization). None or 0: the whole batch at once. "auto": ``CHUNK_SPINS`` on
            CPU (but at least ``WINDOW_MIN_REPLICAS`` replicas), the whole batch elsewhere. The compile decision
            is taken for the whole batch, the thread count for the window.

    Returns:
        RelaxResult.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method '{method}'; choose from {list(METHODS)}")
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
    auto_window = chunk_spins == "auto"
    if auto_window:
        chunk_spins = CHUNK_SPINS if dev.type == "cpu" else None
    elif isinstance(chunk_spins, str) or (chunk_spins is not None and int(chunk_spins) < 0):
        raise ValueError(f"chunk_spins must be 'auto', None or an int >= 0, got {chunk_spins!r}")
    per = nb if not chunk_spins else max(1, int(chunk_spins) // ham.num_sites)
    if chunk_spins and auto_window:
        per = max(per, WINDOW_MIN_REPLICAS)
    use_compile = nb * ham.num_sites >= COMPILE_MIN_SPINS if compile == "auto" else bool(compile)
    stepper = METHODS[method](ham, use_compile, **(options or {}))
    threads = torch.get_num_threads()
    if min(per, nb) * ham.num_sites < THREADS_MIN_SPINS and threads > 1 and dev.type == "cpu":
        torch.set_num_threads(1)
    try:
        return _relax(ham, spins, J, D, tol, int(max_iter), int(check_every), record_trace, stepper, per)
    finally:
        torch.set_num_threads(threads)


def _cat(a, b):
    """State tensors (batch on the last axis), or lists of them, of two batches side by side."""
    if isinstance(a, list):
        return [_cat(u, v) for u, v in zip(a, b, strict=True)]
    return torch.cat([a, b], a.ndim - 1)


def _select(v, keep: torch.Tensor):
    """Columns ``keep`` of a state tensor (batch on the last axis) or of each tensor of a list."""
    if isinstance(v, list):
        return [_select(t, keep) for t in v]
    return v.index_select(v.ndim - 1, keep).contiguous()


def _relax(ham, spins, J, D, tol, max_iter, check_every, record_trace, stepper, window) -> RelaxResult:
    nb = spins.shape[0]
    dtype, dev = ham.dtype, ham.device
    f64 = torch.float64

    x_all = torch.nn.functional.normalize(spins.to(dtype=dtype, device=dev), dim=-1).permute(1, 2, 0).contiguous()
    h_all = ham.field_site_major(x_all, J, D)  # [N, 3, B]
    e_all = -0.5 * (x_all * h_all).sum(dim=(0, 1), dtype=f64)  # [B]
    j_all, d_all = J, D

    def start(idx: torch.Tensor) -> dict:
        """Fresh state of the replicas ``idx`` (global indices)."""
        xs, hs = _select(x_all, idx), _select(h_all, idx)
        s = stepper.init(xs, hs, j_all[idx], d_all[idx])  # state tensors, batch on the last axis
        s["J"], s["D"] = j_all[idx], d_all[idx]
        s["energy"] = e_all[idx].clone()  # tracked with the step identity
        s["iters"] = torch.zeros(idx.numel(), dtype=torch.long, device=dev)
        s["active"] = idx  # global index of each replica column
        s["frozen"] = torch.zeros(idx.numel(), dtype=torch.bool, device=dev)
        return s

    # Streaming window: at most ``window`` replicas in the batch; a converged replica's column is refilled with the
    # next waiting one at the following convergence check, so the batch stays small (in cache) without relaxing
    # chunks one after the other (which would pay the slowest replica's tail once per chunk). Each replica is
    # capped at max_iter iterations of its own.
    window = min(nb, max(1, int(window)))
    streaming = window < nb
    pending = window  # next global index to start
    st = start(torch.arange(window, device=dev))
    out_x = torch.empty_like(x_all)
    out_iters = torch.zeros(nb, dtype=torch.long, device=dev)
    trace: list[torch.Tensor] = []
    full_energy = e_all.clone()
    tol2 = tol * tol

    def finish(cols: torch.Tensor) -> None:
        gi = st["active"][cols]
        out_x[:, :, gi] = st["x"][:, :, cols]
        out_iters[gi] = st["iters"][cols]

    it = 0
    moving = ~st["frozen"]
    while True:
        if it % check_every == 0 or (not streaming and it >= max_iter):
            st["frozen"] = st["frozen"] | (st["torque2"] < tol2)
            if streaming:
                st["frozen"] = st["frozen"] | (st["iters"] >= max_iter)
            frozen = st["frozen"]
            if (not streaming and it >= max_iter) or (bool(frozen.all()) and pending >= nb):
                break
            nfrozen = int(frozen.sum())
            refill = nfrozen > 0 and pending < nb
            if refill or (nfrozen and nfrozen * 4 >= frozen.numel()):
                # Compact: write frozen replicas out and keep working on the rest only (and refill the window).
                finish(torch.nonzero(frozen).squeeze(1))
                keep = torch.nonzero(~frozen).squeeze(1)
                st = {k: _select(v, keep) for k, v in st.items()}
                if refill:
                    new = torch.arange(pending, min(nb, pending + nfrozen), device=dev)
                    pending += new.numel()
                    fresh = start(new)
                    st = {k: _cat(v, fresh[k]) for k, v in st.items()}
            moving = ~st["frozen"]
        if streaming:
            moving = ~st["frozen"] & (st["iters"] < max_iter)
        de = stepper.step(st, moving, it)
        st["energy"] = st["energy"] + de.to(f64)
        st["iters"] = st["iters"] + moving.long()
        it += 1
        if record_trace:
            full_energy[st["active"]] = st["energy"]
            trace.append(full_energy.clone())
    finish(torch.arange(st["x"].shape[-1], device=dev))
    # Final energies and torques recomputed directly from the returned states (float64 accumulation).
    hf = ham.field_site_major(out_x, j_all, d_all)
    e = -0.5 * (out_x * hf).sum(dim=(0, 1), dtype=f64)
    gf = hf - (out_x * hf).sum(1, keepdim=True) * out_x
    out_torque = (gf * gf).sum(1).amax(0).sqrt().to(f64)
    result_spins = out_x.permute(2, 0, 1).contiguous()
    return RelaxResult(result_spins, e, out_torque, out_iters, out_torque < tol,
                       torch.stack(trace) if record_trace and trace else None)
