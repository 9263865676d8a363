"""Phase classification (paper 2, Sec. II.1 / Appendix A) on constructed states of every kind."""

import numpy as np
import pytest

from scalinglab.simulators.moire.interlayer import local_stacking_pairs
from scalinglab.simulators.moire.lattice import bilayer
from scalinglab.simulators.moire.phases import (
    FM,
    MD,
    MD2,
    NCD,
    NUM_PHASES,
    PHASE_NAMES,
    classify,
    classify_spins,
    domain_layer,
)
from scalinglab.simulators.moire.starts import afm_sites


@pytest.fixture(scope="module")
def lat_afm():
    lat = bilayer(8)
    return lat, afm_sites(lat, local_stacking_pairs(lat, "relaxed"))


def _state(lat, afm, kind: str, sign: float = 1.0) -> np.ndarray:
    """Constructed states: uniform, tilted (NCD-like), reversed domains in one or both layers."""
    s = np.zeros((lat.num_sites, 3))
    s[:, 2] = 1.0
    top, bot = lat.layer == 1, lat.layer == 0
    if kind == "ncd":  # both layers tilt 70 deg towards opposite in-plane directions, nothing reversed
        a = np.radians(70.0)
        s[afm, 0] = np.where(top[afm], 1.0, -1.0) * np.sin(a)
        s[afm, 2] = np.cos(a)
    elif kind == "md_top":
        s[afm & top, 2] = -1.0
    elif kind == "md_bottom":
        s[afm & bot, 2] = -1.0
    elif kind == "md_top_tilted_bottom":  # reversed in top; the bottom tilts a little near the walls
        s[afm & top, 2] = -1.0
        a = np.radians(20.0)
        s[afm & bot, 0], s[afm & bot, 2] = np.sin(a), np.cos(a)
    elif kind == "md2":  # reversed domains in both layers
        s[afm, 2] = -1.0
    return sign * s


@pytest.mark.parametrize("kind,expected", [
    ("fm", FM), ("ncd", NCD), ("md_top", MD), ("md_bottom", MD), ("md_top_tilted_bottom", MD), ("md2", MD2),
])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_constructed_states(lat_afm, kind, expected, sign):
    lat, afm = lat_afm
    c = classify_spins(_state(lat, afm, kind, sign)[None], lat.layer)
    assert c["phase"][0] == expected, (kind, c)


def test_md_domain_layer(lat_afm):
    lat, afm = lat_afm
    for kind, layer in (("md_top", 1), ("md_bottom", 0)):
        c = classify_spins(_state(lat, afm, kind)[None], lat.layer)
        assert domain_layer(c["m_top"], c["m_bottom"])[0] == layer


def test_md2_was_ncd_under_the_magnetization_rule(lat_afm):
    """Without reversed fractions the magnetizations of a two-layer-reversed state look like NCD (the old bug)."""
    lat, afm = lat_afm
    c = classify_spins(_state(lat, afm, "md2")[None], lat.layer)
    assert classify(c["m_top"], c["m_bottom"])[0] == NCD
    assert classify(c["m_top"], c["m_bottom"], c["rev_top"], c["rev_bottom"])[0] == MD2


def test_codes_and_bad_input():
    assert (FM, NCD, MD, MD2) == (0, 1, 2, 3) and NUM_PHASES == 4 and PHASE_NAMES[MD2] == "MD2"
    assert classify([0.9], [0.91])[0] == NCD and classify([0.5], [0.99])[0] == MD
    with pytest.raises(ValueError, match="both"):
        classify([0.5], [0.5], rev_top=[0.1])
    with pytest.raises(ValueError, match="shape"):
        classify([0.5], [0.5], [0.1, 0.2], [0.1, 0.2])
