"""The moire cell as three nearly independent domain regions, and recombination of relaxed states across them.

Where the interlayer coupling is antiferromagnetic (Jperp > 0, the monoclinic stacking regions), the bilayer forms
its domains (MD) or noncollinear textures (NCD); elsewhere both layers stay ferromagnetic. Every commensurate cell
m = 8..32 holds three such regions of equal size, which the 120-degree rotation about the origin (a Cr site of both
layers) maps onto each other; the rotation is an exact symmetry of Eq. 1 (it permutes the sites within each layer,
keeps the intralayer bonds, and the local-stacking table depends on the stacking shift through C3 orbits), and the
Heisenberg and easy-axis terms do not rotate spin components, so S'(C3 i) = S(i) maps a state onto one of equal
energy.

The regions interact only through the ferromagnetic background between them, so the energy of a state is, to a very
good approximation, a sum over the regions of a local energy that depends on the region's own texture. A multi-start
search then has a combinatorial problem: each region picks one of a handful of local textures (domain in the top
layer, in the bottom layer, in both, a tilted texture, domain variants of several sizes), and measured at m = 20 the
levels of 28 relaxed random starts step by ~0.7e-3 meV/site, one step per region in a worse texture. A handful of
starts rarely puts the best texture into all three regions at once, so two seeds of a search disagree.
Recombination removes this: the sites are split into three parts (every site joins the region nearest to it along
bonds), each part of each relaxed replica gets its local energy sum_i -1/2 S_i.H_i (these sum to E exactly), and

- ``best_parts``: each part takes the texture of the replica with the lowest energy in that part;
- ``transplant``: the single best part of all replicas is copied into all three parts with the C3 permutation.

Replicas are first brought to a common background (time reversal S -> -S is a symmetry). The composite states start
close to a minimum and relax in a few hundred iterations; the ground-state search adds them as extra replicas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph

from scalinglab.simulators.moire.interlayer import InterlayerPairs
from scalinglab.simulators.moire.lattice import Bilayer
from scalinglab.simulators.moire.phases import REVERSED_Z, background_sign, layer_magnetizations
from scalinglab.simulators.moire.starts import afm_sites
from scalinglab.simulators.moire.symmetry import image_permutation

#: Number of domain regions of every commensurate cell (checked in ``domain_regions``).
NUM_REGIONS = 3


def c3_permutation(lat: Bilayer) -> np.ndarray:
    """The site permutation of the 120-degree rotation about the origin.

    Args:
        lat: the bilayer.

    Returns:
        [N] int64: site i maps to site P[i] (same layer).

    Raises:
        ValueError: if the image of some site is not a site of its layer.
    """
    c, s = np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3)
    perm = image_permutation(lat, lat.positions[:, :2] @ np.array([[c, -s], [s, c]]).T, swap_layers=False)
    if perm is None:
        raise ValueError(f"m={lat.m}: the C3 rotation about the origin is not a symmetry of this lattice")
    return perm


@dataclass(frozen=True)
class DomainRegions:
    """The three domain regions of a cell and the partition of all sites among them.

    Attributes:
        part: [N] int64 region (0..2) of every site (the nearest region along bonds).
        core: [N] bool, site in an AFM region.
        c3: [N] C3 site permutation; part[c3[i]] == (part[i] + shift) % 3 for every site with one shift.
        shift: the region step of one C3 rotation (1 or 2).
    """

    part: np.ndarray
    core: np.ndarray
    c3: np.ndarray
    shift: int


def _bond_graph(lat: Bilayer, pairs: InterlayerPairs) -> sp.csr_matrix:
    n = lat.num_sites
    i = np.concatenate([np.repeat(np.arange(n), lat.intralayer.shape[1]), pairs.top])
    j = np.concatenate([lat.intralayer.ravel(), pairs.bottom])
    g = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)).tocsr()
    return ((g + g.T) > 0).astype(float)


def _find_regions(lat: Bilayer, pairs: InterlayerPairs) -> DomainRegions:
    core = afm_sites(lat, pairs)
    g = _bond_graph(lat, pairs)
    sub = g[core][:, core]
    num, lab = csgraph.connected_components(sub, directed=False)
    sizes = np.bincount(lab)
    big = np.argsort(sizes)[::-1][:NUM_REGIONS]
    if num < NUM_REGIONS or sizes[big].min() < 0.2 * sizes.sum() / NUM_REGIONS:
        raise ValueError(f"m={lat.m}: expected {NUM_REGIONS} AFM stacking regions, found sizes {sorted(sizes)[::-1]}")
    core_idx = np.nonzero(core)[0]
    seeds = [core_idx[lab == b] for b in big]
    # Distance of every site to each region along bonds; each site joins the nearest (ties: lowest index).
    dist = np.stack([csgraph.dijkstra(g, indices=s, min_only=True, unweighted=True) for s in seeds])
    part = np.argmin(dist, axis=0).astype(np.int64)
    perm = c3_permutation(lat)
    shifts = (part[perm] - part) % NUM_REGIONS
    core_shift = np.bincount(shifts[core], minlength=NUM_REGIONS)
    shift = int(np.argmax(core_shift))
    if shift == 0 or core_shift[shift] != core.sum():
        raise ValueError(f"m={lat.m}: the C3 rotation does not permute the AFM regions")
    # Sites equidistant from two regions may break the rotation; give them the rotated label of their orbit.
    part = _c3_consistent(part, perm, shift)
    return DomainRegions(part, core, perm, shift)


def _c3_consistent(part: np.ndarray, perm: np.ndarray, shift: int) -> np.ndarray:
    """Relabel each C3 orbit from its lowest site so that part[perm[i]] == part[i] + shift (mod 3)."""
    out = np.full(len(part), -1, dtype=np.int64)
    for i in range(len(part)):
        if out[i] >= 0:
            continue
        j, lab = i, part[i]
        while out[j] < 0:
            out[j] = lab
            j, lab = perm[j], (lab + shift) % NUM_REGIONS
    return out


#: Regions per (lattice, table) object pair; the objects are immutable and live as long as their Hamiltonian.
_CACHE: dict[tuple[int, int], tuple[Bilayer, InterlayerPairs, DomainRegions]] = {}


def domain_regions(lat: Bilayer, pairs: InterlayerPairs) -> DomainRegions:
    """The three AFM regions of the cell and the partition of all sites (cached per lattice and table)."""
    key = (id(lat), id(pairs))
    hit = _CACHE.get(key)
    if hit is None or hit[0] is not lat or hit[1] is not pairs:
        if len(_CACHE) >= 32:
            _CACHE.clear()
        hit = _CACHE[key] = (lat, pairs, _find_regions(lat, pairs))
    return hit[2]


def common_background(spins: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """[R, N, 3] states time-reversed where needed so that the more saturated layer points up."""
    mt, mb = layer_magnetizations(spins, layer)
    return spins * background_sign(mt, mb).reshape(-1, 1, 1)


def part_energies(site_energy: np.ndarray, regions: DomainRegions) -> np.ndarray:
    """[R, 3] local energies: site energies [R, N] summed over each part."""
    out = np.zeros((site_energy.shape[0], NUM_REGIONS))
    for k in range(NUM_REGIONS):
        out[:, k] = site_energy[:, regions.part == k].sum(1)
    return out


#: Texture of a part: which layers of its AFM core hold reversed sites.
TEXTURES = ("unreversed", "top", "bottom", "both")
#: A layer of a part holds a reversed domain when more than this fraction of its core sites is reversed.
PART_REVERSED_FRAC = 0.05
#: Names of the composite states of ``recombine``, in order.
COMPOSITES = ("best_parts",) + tuple(f"transplant_{t}" for t in TEXTURES)


def part_textures(spins: np.ndarray, regions: DomainRegions, layer: np.ndarray) -> np.ndarray:
    """[R, 3] texture code (index into ``TEXTURES``) of every part of background-aligned states [R, N, 3]."""
    rev = spins[..., 2] < -REVERSED_Z
    out = np.zeros((spins.shape[0], NUM_REGIONS), dtype=np.int64)
    for k in range(NUM_REGIONS):
        top = regions.core & (regions.part == k) & (layer == 1)
        bot = regions.core & (regions.part == k) & (layer == 0)
        t = rev[:, top].mean(1) > PART_REVERSED_FRAC
        b = rev[:, bot].mean(1) > PART_REVERSED_FRAC
        out[:, k] = np.where(t & b, 3, np.where(t, 1, np.where(b, 2, 0)))
    return out


def _transplant(src: np.ndarray, k: int, regions: DomainRegions) -> np.ndarray:
    """Part k of the state ``src`` copied into every part by powers of the C3 permutation (the rotation centres,
    which the permutation fixes, keep their own spins)."""
    out = src.copy()
    sel = np.nonzero(regions.part == k)[0]
    img = sel
    out[sel] = src[sel]
    for _ in range(NUM_REGIONS - 1):
        img = regions.c3[img]
        out[img] = src[sel]
    return out


def recombine(spins: np.ndarray, site_energy: np.ndarray, reference: np.ndarray, regions: DomainRegions,
              layer: np.ndarray) -> np.ndarray:
    """Composite states of one parameter set's relaxed replicas.

    Parts are compared by their energy relative to the uniform state (the parts differ by the few rotation centres
    that belong to one of them, which would otherwise bias the choice towards the smaller parts).

    Args:
        spins: [R, N, 3] relaxed states.
        site_energy: [R, N] site energies -1/2 S_i.H_i (meV).
        reference: [N] site energies of the uniform (FM) state at the same parameters.
        regions: the cell's regions.
        layer: [N] layer of every site.

    Returns:
        [5, N, 3] in ``COMPOSITES`` order: ``best_parts`` (each part from its lowest replica), then for every part
        texture the lowest part of that texture over all replicas copied into every part by C3 (a texture no
        replica shows gives a copy of ``best_parts``, which relaxes to the same state).
    """
    s = common_background(np.asarray(spins, dtype=float), layer)
    e = part_energies(np.asarray(site_energy, dtype=float) - np.asarray(reference, dtype=float), regions)
    tex = part_textures(s, regions, layer)
    best = np.empty_like(s[0])
    for k in range(NUM_REGIONS):
        sel = regions.part == k
        best[sel] = s[int(np.argmin(e[:, k])), sel]
    out = [best]
    for t in range(len(TEXTURES)):
        masked = np.where(tex == t, e, np.inf)
        if not np.isfinite(masked).any():
            out.append(best)
            continue
        r, k = np.unravel_index(int(np.argmin(masked)), e.shape)
        out.append(_transplant(s[r], int(k), regions))
    return np.stack(out)
