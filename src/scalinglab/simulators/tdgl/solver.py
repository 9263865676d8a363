"""Batched explicit solver of the thin-film TDGL hysteresis model (paper 4, Eq. 1).

``dm/dt = (1 - m^2) (h(t) + A0 (1 + D eta(r)) m - gamma sum_r' K(r - r') m(r')) + J lap(m)``

on a periodic grid with the 5-point Laplacian, forward Euler with dt = 0.1, ``gamma = 0.095 J``, frozen standard
normal disorder ``eta`` and the dipolar kernel of ``kernel.py`` applied by FFT. Many simulations (different D, J,
seed; also spatially varying D maps) advance together along a leading batch dimension. The time loop never waits
on the device: zero crossings of the mean magnetization are detected and the pattern captured per batch member
with tensor operations; divergence is checked every ``check_every`` steps (the only host synchronisation, which
also allows an early exit once every member is captured or diverged).

Stability: the explicit 5-point Laplacian needs ``dt <= 1 / (4 J)`` (von Neumann: ``|1 - 8 J dt| <= 1``); larger
steps are refused with that limit named. The local term is stiff near m = +-1 with rate ``2 |A0 (1 + D eta) + h|``;
for the paper's range (D <= 2, |eta| <~ 4.5) this stays below 2 / dt, and anything that escapes is caught by the
divergence check (``|m| > divergence_threshold`` or non-finite) and reported, never stored.

Reference: Mamada et al., arXiv:2305.14764 (paper 4), Eq. 1-2 and Sec. II B; Jagla, PRB 72, 094406 (2005).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from scalinglab.seeding import rng
from scalinglab.simulators.tdgl import protocol
from scalinglab.simulators.tdgl.kernel import DEFAULT_K0, dipolar_kernel_fourier, parse_convention

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# Grid points per CPU slice of the batch (see ``TDGLSimulator.step``): one 256 x 256 member.
_CPU_SLICE_ELEMENTS = 1 << 16


@dataclass(frozen=True)
class TDGLConfig:
    """Numerical and physical settings shared by every member of a batch.

    Attributes:
        size: grid (H, W) in lattice units (paper: 256 x 256 uniform data, 512 x 512 non-uniform data).
        dt: Euler time step (paper: 0.1); must satisfy dt <= 1 / (4 J).
        A0: anisotropy coefficient (paper: 1.0).
        gamma_over_J: dipolar strength per unit exchange, gamma = gamma_over_J * J (paper: 0.095).
        H: field amplitude of Eq. 2 (paper: 0.3).
        ramp_time: T of Eq. 2, the time from h = 0 to h = H (paper: 1e5; quick profiles use less).
        m0_amplitude: initial m uniform in [-a, a] (paper: 0.05).
        k0: dipolar convention, see ``kernel.py`` ("absorbed_x1.5+demag2", default; "absorbed_x2.5" (the default
            before 2026-12-01), "absorbed", "lattice" (the default before that), "zero", "absorbed_x<s>[+demag<c>]").
            Stored with every campaign, so stores written with another convention keep theirs.
        capture_crossing: which zero crossing of the mean magnetization, counted from the start of the
            descending branch (t >= T), is captured: 1 = descending branch, 2 = ascending branch (paper: "second").
            A crossing counts only in the direction the field moves and opposite to the last counted one, so
            jitter of the mean around zero never counts twice.
        record_every: steps between two points of the recorded hysteresis loop (mean m vs h).
        check_every: steps between divergence checks (one host synchronisation each).
        divergence_threshold: |m| beyond which a member counts as diverged (physical |m| <= 1).
        full_loop: keep integrating to the end of the protocol even after every member is captured.
        dtype: "float32" (fast) or "float64" (tests).
        device: torch device string.
        root_seed: root of the seed derivation for eta and m0 (``scalinglab.seeding``).
    """

    size: tuple[int, int] = (256, 256)
    dt: float = 0.1
    A0: float = 1.0
    gamma_over_J: float = 0.095
    H: float = 0.3
    ramp_time: float = 1e5
    m0_amplitude: float = 0.05
    k0: str = DEFAULT_K0
    capture_crossing: int = 2
    record_every: int = 100
    check_every: int = 1000
    divergence_threshold: float = 10.0
    full_loop: bool = False
    dtype: str = "float32"
    device: str = "cpu"
    root_seed: int = 0

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 2:
            raise ValueError(f"size must be two integers >= 2, got {self.size}")
        object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        if not self.dt > 0:
            raise ValueError(f"dt must be positive, got {self.dt}")
        parse_convention(self.k0)  # ValueError naming the accepted forms
        if self.dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {self.dtype!r}")
        if self.capture_crossing < 1:
            raise ValueError(f"capture_crossing must be >= 1, got {self.capture_crossing}")
        for name in ("record_every", "check_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.ramp_time <= 0 or self.H <= 0:
            raise ValueError(f"ramp_time and H must be positive, got {self.ramp_time}, {self.H}")

    @property
    def num_steps(self) -> int:
        """Steps of one full protocol, 5 T / dt."""
        return int(round(protocol.protocol_duration(self.ramp_time) / self.dt))

    def to_dict(self) -> dict:
        return asdict(self)


def stability_limit(J: float) -> float:
    """Largest stable explicit-Euler step for the 5-point Laplacian with coefficient J: ``1 / (4 J)``."""
    return math.inf if J <= 0 else 1.0 / (4.0 * J)


def check_time_step(dt: float, J: np.ndarray | float) -> None:
    """Refuse ``dt`` beyond the explicit stability limit ``1 / (4 J)`` of the largest J (ValueError)."""
    j_max = float(np.max(J))
    limit = stability_limit(j_max)
    if dt > limit * (1 + 1e-12):
        raise ValueError(
            f"dt={dt} exceeds the explicit-Euler stability limit dt <= 1/(4 J) = {limit:.6g} for J={j_max:g}"
        )


def initial_state(seed: int, shape: tuple[int, int], amplitude: float = 0.05, root_seed: int = 0) -> np.ndarray:
    """Initial magnetization m0 ~ U[-a, a] for simulation seed ``seed`` (paper: s in 1..12). ``[H, W]`` float64."""
    return rng(root_seed, "tdgl", "m0", int(seed)).uniform(-amplitude, amplitude, size=shape)


def disorder(seed: int, shape: tuple[int, int], root_seed: int = 0) -> np.ndarray:
    """Frozen disorder eta ~ N(0, 1) for simulation seed ``seed``, independent of D and J. ``[H, W]`` float64."""
    return rng(root_seed, "tdgl", "eta", int(seed)).standard_normal(size=shape)


@dataclass
class TDGLResult:
    """Outcome of one batched hysteresis run (numpy arrays on the host).

    Attributes:
        patterns: ``[B, H, W]`` int8, the binarized (+-1) pattern at the captured crossing (0 where not captured).
        captured: ``[B]`` bool, the requested zero crossing happened (and the member did not diverge before).
        diverged: ``[B]`` bool, the member blew up (non-finite or |m| > threshold); never use its pattern.
        capture_time: ``[B]`` time of capture (NaN where not captured).
        capture_field: ``[B]`` field h at capture (NaN where not captured).
        loop_h: ``[n]`` field at the recorded points of the hysteresis loop.
        loop_m: ``[B, n]`` mean magnetization at those points (NaN after a member stopped or diverged).
        final_m: ``[B, H, W]`` float32 state at the end of the run.
        capture_m: ``[B, H, W]`` float32 continuous (unbinarized) state at the captured crossing (0 where not
            captured); ``patterns`` is its sign.
        steps_run: steps integrated.
    """

    patterns: np.ndarray
    captured: np.ndarray
    diverged: np.ndarray
    capture_time: np.ndarray
    capture_field: np.ndarray
    loop_h: np.ndarray
    loop_m: np.ndarray
    final_m: np.ndarray
    steps_run: int
    capture_m: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


class TDGLSimulator:
    """Batched forward-Euler integrator of Eq. 1 for one grid and one set of shared settings.

    Args:
        config: ``TDGLConfig``.
    """

    def __init__(self, config: TDGLConfig) -> None:
        self.config = config
        self.dtype = _DTYPES[config.dtype]
        self.device = torch.device(config.device)
        khat = dipolar_kernel_fourier(config.size, k0=config.k0)
        self.khat = torch.as_tensor(khat, dtype=self.dtype, device=self.device)  # [H, W//2+1]

    # ----------------------------------------------------------------------------------------------- physics
    def _coefficients(self, D, J, eta):
        """Per-member tensors: local anisotropy a = A0 (1 + D eta) [B,H,W], -gamma K_hat [B,H,W//2+1], J [B,1,1]."""
        cfg = self.config
        h, w = cfg.size
        J = torch.as_tensor(np.asarray(J, dtype=np.float64).reshape(-1), dtype=self.dtype, device=self.device)
        b = J.shape[0]
        D = torch.as_tensor(np.array(D, dtype=np.float64), dtype=self.dtype, device=self.device)
        if D.ndim == 1:
            D = D[:, None, None]
        if D.shape[0] != b or D.ndim != 3 or (D.shape[1:] != (1, 1) and tuple(D.shape[1:]) != (h, w)):
            raise ValueError(f"D must have shape [B] or [B, H, W] with B={b}, (H, W)={cfg.size}; got {tuple(D.shape)}")
        eta = torch.as_tensor(np.asarray(eta), dtype=self.dtype, device=self.device)
        if tuple(eta.shape) != (b, h, w):
            raise ValueError(f"eta must have shape {(b, h, w)}, got {tuple(eta.shape)}")
        a = cfg.A0 * (1 + D * eta)
        neg_gamma_khat = -(cfg.gamma_over_J * J)[:, None, None] * self.khat
        return a, neg_gamma_khat, J[:, None, None]

    def rhs(self, m: torch.Tensor, h: float, a: torch.Tensor, neg_gamma_khat: torch.Tensor,
            J: torch.Tensor) -> torch.Tensor:
        """Right-hand side dm/dt of Eq. 1 for a batch ``m`` [B, H, W] at field ``h``."""
        size = self.config.size
        dip = torch.fft.irfft2(torch.fft.rfft2(m) * neg_gamma_khat, s=size)  # -gamma (K * m), [B,H,W]
        bracket = dip.addcmul_(a, m).add_(h)
        lap = (torch.roll(m, 1, -1) + torch.roll(m, -1, -1) + torch.roll(m, 1, -2) + torch.roll(m, -1, -2)
               ).sub_(m, alpha=4.0)
        return (1 - m * m).mul_(bracket).addcmul_(J, lap)

    def step(self, m: torch.Tensor, h: float, a: torch.Tensor, neg_gamma_khat: torch.Tensor,
             J: torch.Tensor) -> torch.Tensor:
        """One forward-Euler step, in place: ``m += dt * rhs``.

        On CPU the batch is processed in cache-sized slices: a whole 16 x 256 x 256 batch and its ~10 temporaries
        spill out of the caches and run ~2x slower per member than one member at a time.
        """
        b = m.shape[0]
        per = self._cpu_slice(m)
        if per >= b:
            return m.add_(self.rhs(m, h, a, neg_gamma_khat, J), alpha=self.config.dt)
        for i in range(0, b, per):
            sl = slice(i, i + per)
            m[sl].add_(self.rhs(m[sl], h, a[sl], neg_gamma_khat[sl], J[sl]), alpha=self.config.dt)
        return m

    def _cpu_slice(self, m: torch.Tensor) -> int:
        if m.device.type != "cpu":
            return m.shape[0]
        return max(1, _CPU_SLICE_ELEMENTS // (m.shape[1] * m.shape[2]))

    # ------------------------------------------------------------------------------------------- the protocol
    def run(
        self,
        D: np.ndarray,
        J: np.ndarray,
        seeds: list[int] | None = None,
        *,
        eta: np.ndarray | None = None,
        m0: np.ndarray | None = None,
        field_fn: Callable[[float], float] | None = None,
        num_steps: int | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> TDGLResult:
        """Integrate the hysteresis protocol for a batch and capture the pattern at the requested zero crossing.

        Args:
            D: ``[B]`` disorder strengths, or ``[B, H, W]`` spatially varying maps.
            J: ``[B]`` exchange coefficients (gamma = gamma_over_J * J).
            seeds: ``[B]`` simulation seeds giving eta and m0 (paper: 1..12); or pass ``eta`` and ``m0``.
            eta: ``[B, H, W]`` frozen disorder (overrides the seeds).
            m0: ``[B, H, W]`` initial state (overrides the seeds).
            field_fn: h(t) (default: Eq. 2 with the config's H and ramp_time).
            num_steps: steps to integrate (default: the full protocol, 5 T / dt).
            on_chunk: called with the number of steps done after every ``check_every`` steps (progress).

        Returns:
            ``TDGLResult``.
        """
        cfg = self.config
        J_arr = np.asarray(J, dtype=np.float64).reshape(-1)
        b = J_arr.shape[0]
        check_time_step(cfg.dt, J_arr)
        shape = cfg.size
        if eta is None or m0 is None:
            if seeds is None or len(seeds) != b:
                raise ValueError(f"need one seed per batch member (B={b}) or explicit eta and m0")
            if eta is None:
                eta = np.stack([disorder(s, shape, cfg.root_seed) for s in seeds])
            if m0 is None:
                m0 = np.stack([initial_state(s, shape, cfg.m0_amplitude, cfg.root_seed) for s in seeds])
        a, neg_gamma_khat, Jt = self._coefficients(D, J_arr, eta)
        m = torch.as_tensor(np.asarray(m0), dtype=self.dtype, device=self.device).clone()
        if tuple(m.shape) != (b, *shape):
            raise ValueError(f"m0 must have shape {(b, *shape)}, got {tuple(m.shape)}")

        if field_fn is None:
            field_fn = lambda t: protocol.field(t, cfg.H, cfg.ramp_time)  # noqa: E731
        total = cfg.num_steps if num_steps is None else int(num_steps)
        arm_step = int(math.ceil(protocol.descending_start(cfg.ramp_time) / cfg.dt))
        num_rec = total // cfg.record_every + 1
        dev, dt = self.device, cfg.dt

        # Device-side bookkeeping: nothing here is read on the host inside the loop.
        loop_m = torch.full((b, num_rec), float("nan"), dtype=self.dtype, device=dev)
        loop_h = np.full(num_rec, np.nan)
        crossings = torch.zeros(b, dtype=torch.int32, device=dev)
        last_dir = torch.zeros(b, dtype=torch.int32, device=dev)  # direction of the last counted crossing
        diverged = torch.zeros(b, dtype=torch.bool, device=dev)
        cap_step = torch.full((b,), -1, dtype=torch.int64, device=dev)
        cap_state = torch.zeros_like(m)
        target = cfg.capture_crossing
        zero = torch.zeros((), dtype=m.dtype, device=dev)
        on_host = m.device.type == "cpu"
        prev_mean = None

        steps_run = 0
        h_prev = float("nan")  # set at the end of every step; read only once armed (n > arm_step)
        for n in range(total):
            t = n * dt
            h_now = field_fn(t)  # one host evaluation per step, reused below
            record = n % cfg.record_every == 0
            armed = n >= arm_step
            if record or armed:
                mean = m.mean(dim=(1, 2))  # [B]
            if record:
                loop_h[n // cfg.record_every] = h_now
                loop_m[:, n // cfg.record_every] = mean
            if armed:
                if prev_mean is not None:
                    # A strict sign change of the mean (a diverged member, zeroed below, never crosses) counts
                    # only when it goes the way the field goes and not the way of the last counted one: near
                    # m = 0 the mean can jitter (+ - + on the descending branch), and the paper's second zero
                    # is the one on the ascending branch (Fig. 2), not a jitter of the first.
                    dh = h_now - h_prev
                    field_dir = 0 if dh == 0 else (1 if dh > 0 else -1)
                    direction = torch.where(mean > prev_mean, 1, -1).to(torch.int32)
                    crossed = ((mean * prev_mean) < 0) & (direction == field_dir) & (direction != last_dir)
                    last_dir = torch.where(crossed, direction, last_dir)
                    crossings += crossed.to(torch.int32)
                    newly = crossed & (crossings == target)
                    if on_host:
                        # A host check costs nothing on the CPU, and a capture happens once per member: a
                        # full-size torch.where every armed step was ~10% of a 256 x 256 step.
                        if bool(newly.any()):
                            cap_state[newly] = m[newly]
                            cap_step[newly] = n
                    else:  # on an accelerator: no host sync per step
                        cap_state = torch.where(newly[:, None, None], m, cap_state)
                        cap_step = torch.where(newly, n, cap_step)
                prev_mean = mean
            if (n + 1) % cfg.check_every == 0 or n + 1 == total:
                # Divergence: |m| beyond threshold or NaN (NaN fails the <= comparison).
                diverged |= ~(m.abs().amax(dim=(1, 2)) <= cfg.divergence_threshold)
                # Zero diverged members so NaN/inf never leaks into later arithmetic or crossings.
                m = torch.where(diverged[:, None, None], zero, m)
            self.step(m, h_now, a, neg_gamma_khat, Jt)
            h_prev = h_now
            steps_run = n + 1
            if (n + 1) % cfg.check_every == 0:
                if on_chunk is not None:
                    on_chunk(steps_run)
                if not cfg.full_loop and bool(((crossings >= target) | diverged).all()):  # one sync per chunk
                    break
        # Final check on the last state (a blow-up in the last chunk must not go unnoticed).
        diverged |= ~(m.abs().amax(dim=(1, 2)) <= cfg.divergence_threshold)
        if steps_run % cfg.record_every == 0 and steps_run // cfg.record_every < num_rec:
            loop_h[steps_run // cfg.record_every] = field_fn(steps_run * dt)
            loop_m[:, steps_run // cfg.record_every] = m.mean(dim=(1, 2))
        loop_m[diverged] = float("nan")
        captured = crossings >= target

        captured_np = (captured & ~diverged).cpu().numpy()
        diverged_np = diverged.cpu().numpy()
        cap_step_np = cap_step.cpu().numpy()
        patterns = torch.where(cap_state > 0, 1, -1).to(torch.int8).cpu().numpy()
        patterns[~captured_np] = 0
        capture_m = cap_state.cpu().numpy().astype(np.float32)
        capture_m[~captured_np] = 0.0
        cap_time = np.where(captured_np, cap_step_np * dt, np.nan)
        cap_field = np.array([field_fn(t) if np.isfinite(t) else np.nan for t in cap_time])
        num_done = steps_run // cfg.record_every + 1
        return TDGLResult(
            patterns=patterns,
            captured=captured_np,
            diverged=diverged_np,
            capture_time=cap_time,
            capture_field=cap_field,
            loop_h=loop_h[:num_done],
            loop_m=loop_m[:, :num_done].cpu().numpy().astype(np.float64),
            final_m=m.cpu().numpy().astype(np.float32),
            steps_run=steps_run,
            capture_m=capture_m,
        )
