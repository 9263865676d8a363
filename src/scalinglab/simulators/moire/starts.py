"""Initial spin states for the ground-state search: structured seeds and random states.

Structured starts (DESIGN.md, "Ground state"): the uniform FM state, domains seeded on the antiferromagnetically
coupled (Jperp > 0) regions of either layer (the MD candidates), and a noncollinear seed in which spins of both
layers in the AFM regions tilt 60 degrees from z towards opposite in-plane directions (the NCD candidate). Random
starts are uniform on the sphere (paper 2: 50 random starts). All arrays are [N, 3] unit vectors per start.

The MD seeds tilt every spin by ``MD_SEED_TILT_DEG`` towards +x. Without it, the in-plane direction of the domain
wall is set by the seed noise and the wall may wind around the domain (winding +-1, +-2): measured at m = 32,
(J, D) = (6.14, 0.134) meV, the wall winding is what separates the local energy levels of one region (winding 0:
-127.7 meV relative to FM, +-1: -119.6, +-2: -103), and an untilted seed landed on winding +-1 in one of the two
layers. A uniform tilt makes the wall's in-plane component point along +x all around (winding 0, the lowest: no
in-plane gradient in the wall).
"""

from __future__ import annotations

import numpy as np

from scalinglab.simulators.moire.interlayer import InterlayerPairs
from scalinglab.simulators.moire.lattice import Bilayer

#: Structured start kinds, in the order they are generated.
STRUCTURED_STARTS = ("fm_up", "md_top", "md_bottom", "ncd")
#: Tilt of the noncollinear seed from the z axis (deg).
NCD_TILT_DEG = 60.0
#: Uniform tilt of the MD seeds towards +x (deg): fixes the wall's in-plane direction (no winding).
MD_SEED_TILT_DEG = 10.0
#: Amplitude of the seeded noise added to structured starts other than fm_up (breaks exact symmetries whose
#: stationary points are saddles).
SEED_NOISE = 0.02


def afm_sites(lat: Bilayer, pairs: InterlayerPairs) -> np.ndarray:
    """[N] bool: sites whose summed interlayer coupling is antiferromagnetic (Jperp > 0)."""
    total = np.zeros(lat.num_sites)
    np.add.at(total, pairs.top, pairs.jperp)
    np.add.at(total, pairs.bottom, pairs.jperp)
    return total > 0


def structured_start(kind: str, lat: Bilayer, pairs: InterlayerPairs) -> np.ndarray:
    """One structured initial state.

    Args:
        kind: one of ``STRUCTURED_STARTS``.
        lat: the bilayer.
        pairs: interlayer couplings (to locate the AFM regions).

    Returns:
        [N, 3] unit spins (noise-free).
    """
    n = lat.num_sites
    s = np.zeros((n, 3))
    s[:, 2] = 1.0
    afm = afm_sites(lat, pairs)
    if kind == "fm_up":
        pass
    elif kind in ("md_top", "md_bottom"):
        a = np.radians(MD_SEED_TILT_DEG)
        s[:, 0], s[:, 2] = np.sin(a), np.cos(a)
        s[afm & (lat.layer == (1 if kind == "md_top" else 0)), 2] = -np.cos(a)
    elif kind == "ncd":
        a = np.radians(NCD_TILT_DEG)
        sign = np.where(lat.layer == 1, 1.0, -1.0)
        s[afm, 0] = sign[afm] * np.sin(a)
        s[afm, 2] = np.cos(a)
    else:
        raise ValueError(f"unknown start kind '{kind}'; choose from {list(STRUCTURED_STARTS)} or 'random'")
    return s


def random_states(num: int, num_sites: int, rng: np.random.Generator) -> np.ndarray:
    """[num, N, 3] spins uniform on the unit sphere (normalized Gaussian vectors)."""
    v = rng.standard_normal((num, num_sites, 3))
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def initial_states(lat: Bilayer, pairs: InterlayerPairs, structured=STRUCTURED_STARTS, num_random: int = 0,
                   seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """All initial states of one parameter set.

    Args:
        lat: the bilayer.
        pairs: interlayer couplings.
        structured: structured kinds to include (subset of ``STRUCTURED_STARTS``).
        num_random: number of random starts (>= 0).
        seed: seed of the noise and the random starts.

    Returns:
        (states [R, N, 3], names [R]) with R = len(structured) + num_random; random starts are named
        "random_0", "random_1", ...
    """
    if num_random < 0:
        raise ValueError(f"num_random must be >= 0, got {num_random}")
    if len(structured) + num_random == 0:
        raise ValueError("no initial states requested")
    rng = np.random.default_rng(seed)
    states, names = [], []
    for kind in structured:
        s = structured_start(kind, lat, pairs)
        if kind != "fm_up":
            s = s + SEED_NOISE * rng.standard_normal(s.shape)
            s /= np.linalg.norm(s, axis=-1, keepdims=True)
        states.append(s)
        names.append(kind)
    if num_random:
        states.extend(random_states(num_random, lat.num_sites, rng))
        names.extend(f"random_{k}" for k in range(num_random))
    return np.stack(states), names
