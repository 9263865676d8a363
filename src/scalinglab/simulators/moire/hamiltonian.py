"""The classical Heisenberg Hamiltonian of twisted bilayer CrI3 (papers 1-2, Eq. 1) on a batch of spin states.

    H = -J sum_<ij> S_i.S_j - D sum_i (S_i.z)^2 + sum_(t,b) Jperp_tb S_t.S_b          (meV, unit spins)

Intralayer nearest-neighbour exchange J > 0 is ferromagnetic, D > 0 an easy-axis single-ion anisotropy,
Jperp > 0 antiferromagnetic interlayer exchange. As a bond list this is

    E = - sum_bonds c_ij S_i.S_j - D sum_i (S_i.z)^2,   c = J (intralayer), c = -Jperp (interlayer),

(``pairs()`` returns exactly these bonds). The effective field is H_i = -dE/dS_i
= sum_j c_ij S_j + 2 D (S_i.z) z (meV), so that E = -1/2 sum_i S_i.H_i (the energy is a quadratic form).

Implementation: the intralayer bonds are a dense neighbour table [N, 3] (honeycomb), the interlayer bonds a padded
partner table [N, K] (K = 1 or 2 for the local-stacking model; padding couples a site to itself with 0), so a
field evaluation is 3 + K ``index_select`` gathers over the batch; this is several times faster on CPU than a
sparse matrix product. J and D may differ per batch entry (parameter sets that share a lattice are relaxed
together); the interlayer couplings are the same for all entries (they are fixed by theta).

Reference:
    Kim et al., scaling laws for deep regression (Methods A, Eq. 1); Lee, Song, Kim, Mach. Learn.: Sci. Technol. 5,
    025073 (2024), Eq. 1.
"""

from __future__ import annotations

import numpy as np
import torch

from scalinglab.simulators.moire.interlayer import InterlayerPairs
from scalinglab.simulators.moire.lattice import Bilayer


def _as_batch(x, name: str, dtype, device) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=dtype, device=device).reshape(-1)
    if t.numel() == 0:
        raise ValueError(f"{name} is empty")
    if not torch.all(torch.isfinite(t)):
        raise ValueError(f"{name} contains NaN or inf")
    return t


class MoireHamiltonian:
    """Batched energy and effective field of the twisted-bilayer spin model.

    Args:
        lat: the bilayer (sites, intralayer neighbour table).
        interlayer: interlayer pair table (Jperp in meV, positive = antiferromagnetic).
        J: intralayer exchange (meV), a scalar or [B] (one value per batch entry).
        D: single-ion anisotropy (meV), a scalar or [B].
        dtype: torch dtype of spins and fields (float64 or float32).
        device: torch device.
    """

    def __init__(self, lat: Bilayer, interlayer: InterlayerPairs, J=1.0, D=0.1, *,
                 dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu") -> None:
        self.lat = lat
        self.interlayer = interlayer
        self.dtype = dtype
        self.device = torch.device(device)
        self.num_sites = lat.num_sites
        self.J = _as_batch(J, "J", dtype, self.device)
        self.D = _as_batch(D, "D", dtype, self.device)
        self.nbr = torch.as_tensor(lat.intralayer, dtype=torch.long, device=self.device)  # [N, 3]
        idx, cpl = _padded_partner_table(lat.num_sites, interlayer)
        self.inter_idx = torch.as_tensor(idx, dtype=torch.long, device=self.device)  # [N, K]
        # Stored as the bond coupling c = -Jperp so that H_i = sum_k c S_partner.
        self.inter_c = torch.as_tensor(-cpl, dtype=dtype, device=self.device)  # [N, K]
        # [N, 1, 1] columns broadcast over the batch in the site-major layout.
        self._inter_cols = [self.inter_c[:, k].reshape(-1, 1, 1) for k in range(self.inter_c.shape[1])]

    def with_parameters(self, J, D) -> MoireHamiltonian:
        """A copy sharing the lattice tables with new J, D (scalars or [B])."""
        new = object.__new__(MoireHamiltonian)
        new.__dict__.update(self.__dict__)
        new.J = _as_batch(J, "J", self.dtype, self.device)
        new.D = _as_batch(D, "D", self.dtype, self.device)
        return new

    def _check(self, spins: torch.Tensor) -> None:
        if spins.ndim != 3 or spins.shape[1] != self.num_sites or spins.shape[2] != 3:
            raise ValueError(f"spins must have shape [B, {self.num_sites}, 3], got {tuple(spins.shape)}")
        nb = spins.shape[0]
        for name, v in (("J", self.J), ("D", self.D)):
            if v.numel() not in (1, nb):
                raise ValueError(f"{name} has {v.numel()} values but the batch has {nb} states")

    def field(self, spins: torch.Tensor, J: torch.Tensor | None = None, D: torch.Tensor | None = None) -> torch.Tensor:
        """Effective field H_i = -dE/dS_i (meV).

        Args:
            spins: [B, N, 3] unit spins.
            J, D: optional per-entry overrides, [B].

        Returns:
            [B, N, 3] effective field.
        """
        self._check(spins)
        x = spins.permute(1, 2, 0).contiguous()  # [N, 3, B]
        nb = spins.shape[0]
        J = self.J if J is None else J
        D = self.D if D is None else D
        h = self.field_site_major(x, J.expand(nb) if J.numel() == 1 else J, D.expand(nb) if D.numel() == 1 else D)
        return h.permute(2, 0, 1)

    def field_site_major(self, x: torch.Tensor, J: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
        """Effective field in the site-major layout used by the relaxer (the fast path).

        Gathering whole rows of a [N, 3, B] tensor copies 3*B contiguous numbers per neighbour, several times
        faster than gathering 3-vectors from a [B, N, 3] tensor, and per-replica reductions run along the
        contiguous last axis.

        Args:
            x: [N, 3, B] unit spins (contiguous).
            J: [B] intralayer exchange (meV).
            D: [B] anisotropy (meV).

        Returns:
            [N, 3, B] effective field (meV).
        """
        nb = self.nbr
        h = x.index_select(0, nb[:, 0])
        h += x.index_select(0, nb[:, 1])
        h += x.index_select(0, nb[:, 2])
        h *= J.reshape(1, 1, -1)
        for k, c in enumerate(self._inter_cols):
            h.addcmul_(x.index_select(0, self.inter_idx[:, k]), c)
        h[:, 2].addcmul_(x[:, 2], (2.0 * D).reshape(1, -1))
        return h

    def energy(self, spins: torch.Tensor) -> torch.Tensor:
        """Total energy (meV) per state, E = -1/2 sum_i S_i.H_i.

        Args:
            spins: [B, N, 3] unit spins.

        Returns:
            [B] energies, accumulated in float64.
        """
        h = self.field(spins)
        return -0.5 * (spins * h).sum(dim=(1, 2), dtype=torch.float64)

    def energy_per_site(self, spins: torch.Tensor) -> torch.Tensor:
        """[B] energy divided by the number of sites (meV)."""
        return self.energy(spins) / self.num_sites

    def torque(self, spins: torch.Tensor) -> torch.Tensor:
        """[B, N] torque magnitudes |S_i x H_i| (meV)."""
        return torch.linalg.cross(spins, self.field(spins), dim=-1).norm(dim=-1)

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every unique bond (i, j, c) with i < j, under E = -sum c S_i.S_j - D sum (S_i.z)^2.

        Intralayer bonds have c = J, interlayer bonds c = -Jperp (meV). Needs a single (scalar) J.

        Returns:
            (i [M], j [M], c [M]) numpy arrays.
        """
        if self.J.numel() != 1:
            raise ValueError("pairs() needs a single J; use with_parameters(J, D) with scalars")
        n = self.num_sites
        nbr = self.lat.intralayer
        src = np.repeat(np.arange(n), nbr.shape[1])
        dst = nbr.reshape(-1)
        keep = src < dst
        i_intra, j_intra = src[keep], dst[keep]
        c_intra = np.full(len(i_intra), float(self.J.item()))
        it, ib, jp = self.interlayer.top, self.interlayer.bottom, self.interlayer.jperp
        i_inter, j_inter = np.minimum(it, ib), np.maximum(it, ib)
        return (np.concatenate([i_intra, i_inter]), np.concatenate([j_intra, j_inter]),
                np.concatenate([c_intra, -np.asarray(jp, dtype=float)]))

    def uniform_energy(self, direction) -> np.ndarray:
        """Closed-form energy (meV) of the uniform state S_i = u for every site (reference for tests).

        E = -J (3N/2) - sum_pairs(-Jperp) - D N u_z^2 with u a unit vector; [B] over the J, D batch.
        """
        u = np.asarray(direction, dtype=float)
        u = u / np.linalg.norm(u)
        n = self.num_sites
        j = self.J.detach().cpu().numpy().astype(float)
        d = self.D.detach().cpu().numpy().astype(float)
        return -j * 1.5 * n + float(np.sum(self.interlayer.jperp)) - d * n * u[2] ** 2


def _padded_partner_table(num_sites: int, pairs: InterlayerPairs) -> tuple[np.ndarray, np.ndarray]:
    """Per-site partner lists [N, K] (indices, Jperp) padded with (self, 0); K = max interlayer degree."""
    i = np.concatenate([pairs.top, pairs.bottom])
    j = np.concatenate([pairs.bottom, pairs.top])
    c = np.concatenate([pairs.jperp, pairs.jperp]).astype(float)
    order = np.argsort(i, kind="stable")
    i, j, c = i[order], j[order], c[order]
    deg = np.bincount(i, minlength=num_sites)
    k = max(int(deg.max()) if len(deg) else 0, 1)
    idx = np.tile(np.arange(num_sites)[:, None], (1, k))
    cpl = np.zeros((num_sites, k))
    start = np.concatenate([[0], np.cumsum(deg)[:-1]])
    slot = np.arange(len(i)) - start[i]
    idx[i, slot] = j
    cpl[i, slot] = c
    return idx, cpl
