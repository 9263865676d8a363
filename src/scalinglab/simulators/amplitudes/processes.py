"""Processes and ``squared_amplitude``: exact tree-level |M|^2 summed over helicities and colours.

Conventions (the same for every process):

- momenta ``[B, n, 4]`` with components (E, px, py, pz) in GeV, the two incoming particles first in the order of
  the process string, then the outgoing ones in that order (``"q q~ > Z g g"``: q, q~, Z, g, g);
- the value is **summed** over the helicities and colours of all external particles; ``average=True`` divides
  by the number of incoming helicity x colour states (quark 2 x 3, gluon 2 x 8, electron 2); no symmetry factor
  for identical final-state particles is included (it belongs to the phase-space integral);
- light quarks, leptons and gluons are massless; the top (``t``), W, Z and Higgs carry the PDG masses below;
  ``e+ e-`` processes go through a photon only.

Couplings (the overall factor to restore for physical values; surrogates learn log |M|^2 standardized, so a
constant factor never matters for them):

- gluon, ``e+ e-`` and ``q q~ > Z + n g`` processes: all couplings 1 (``e = g_s = 1``, unit charges, the Z
  couples like a massive photon: multiply by ``e^4``, ``e^4 g_s^2``, ``g_s^(n-2)``... and by
  ``(g_V^2 + g_A^2)`` for the SM Z);
- ``q q~ > a a + n g`` (module ``diphoton``): unit quark charge, multiply by ``e^4 Q_q^4 g_s^(2n)``;
- ``q q~ > t t~ H`` (module ``top_higgs``): QCD production with ``g_s = 1`` and Yukawa vertex ``-i y``, y = 1:
  multiply by ``g_s^4 m_t^2 / v^2``;
- ``u d~ > W+ Z + n g`` and ``u u~ > W+ W- Z`` (module ``electroweak``): the Standard Model's electroweak
  couplings (on-shell sin^2 theta_W = 1 - M_W^2 / M_Z^2, chiral Z and W couplings, triple and quartic gauge
  vertices, the Higgs) with ``e = g_s = 1``: multiply by ``e^4 g_s^(2n)`` (W Z) or ``e^6`` (W W Z).

Methods: ``"closed"`` (closed forms, where they exist), ``"bg"`` (Berends-Giele recursion with an exact colour
matrix, or the process module's numeric helicity amplitudes), ``"auto"`` (closed form if available, else bg).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from scalinglab.simulators.amplitudes import closed_forms, colour
from scalinglab.simulators.amplitudes.berends_giele import (
    GluonCurrents,
    QuarkLine,
    bar,
    gluon_amplitude,
    gluon_polarizations,
    massive_polarizations,
    u_spinors,
    v_spinors,
    vector_current,
)
from scalinglab.simulators.amplitudes.kinematics import mdot, validate_momenta

MASS_Z = 91.1876  # GeV (PDG)
MASS_W = 80.369  # GeV (PDG 2024)
MASS_H = 125.20  # GeV (PDG 2024)
MASS_T = 172.57  # GeV (PDG 2024, direct measurements)

# incoming helicity x colour states (for ``average=True``); flavoured quarks u, d... count like q
_PARTICLE_STATES = {"g": 16, "q": 6, "q~": 6, "u": 6, "u~": 6, "d": 6, "d~": 6, "e+": 2, "e-": 2}
_PARTICLE_MASS = {"g": 0.0, "q": 0.0, "q~": 0.0, "u": 0.0, "u~": 0.0, "d": 0.0, "d~": 0.0, "e+": 0.0, "e-": 0.0,
                  "mu+": 0.0, "mu-": 0.0, "a": 0.0, "Z": MASS_Z, "W+": MASS_W, "W-": MASS_W, "H": MASS_H,
                  "t": MASS_T, "t~": MASS_T}


@dataclass(frozen=True)
class Process:
    """A 2 -> n scattering process.

    Attributes:
        name: canonical process string, e.g. ``"g g > g g g"``.
        incoming: the two incoming particle names.
        outgoing: outgoing particle names.
        closed_form: callable momenta [B, n, 4] -> [B], or None.
        bg: callable momenta [B, n, 4] -> [B] (Berends-Giele), or None.
    """

    name: str
    incoming: tuple[str, str]
    outgoing: tuple[str, ...]
    closed_form: Callable[[np.ndarray], np.ndarray] | None
    bg: Callable[[np.ndarray], np.ndarray] | None

    @property
    def particles(self) -> tuple[str, ...]:
        return self.incoming + self.outgoing

    @property
    def masses(self) -> np.ndarray:
        """[n] masses (GeV) of all particles, incoming first."""
        return np.array([_PARTICLE_MASS[p] for p in self.particles])

    @property
    def num_final(self) -> int:
        """n_f, the number of final-state particles (intrinsic dimension of phase space: 3 n_f - 4)."""
        return len(self.outgoing)

    @property
    def average_factor(self) -> float:
        """1 / (number of incoming helicity x colour states)."""
        return 1.0 / (_PARTICLE_STATES[self.incoming[0]] * _PARTICLE_STATES[self.incoming[1]])


# ------------------------------------------------------------------------------------------ colour summation


def _colour_sum(amps: list[np.ndarray], cmat: np.ndarray) -> np.ndarray:
    """``sum_{kl} C_kl sum_h A_k(h) A_l(h)^*`` for colour-ordered amplitudes [..., B] -> [B]."""
    a = np.stack([x.reshape(-1, x.shape[-1]) for x in amps])  # [K, H, B]
    ca = np.tensordot(cmat, a, axes=(1, 0))  # [K, H, B]
    return np.einsum("khb,khb->b", a.conj(), ca).real


def _chunked(fn: Callable[[np.ndarray], np.ndarray], momenta: np.ndarray, chunk: int) -> np.ndarray:
    return np.concatenate([fn(momenta[i : i + chunk]) for i in range(0, momenta.shape[0], chunk)])


def bg_gluons(momenta: np.ndarray, overrides: dict | None = None, basis: str = "auto") -> np.ndarray:
    """``g g > (n-2) g`` summed over helicities and colours by Berends-Giele.

    Args:
        momenta: [B, n, 4] physical momenta (2 incoming first).
        overrides: {gluon index: [2, B, 4] wave functions} replacing polarisation vectors (Ward tests).
        basis: ``"trace"`` ((n-1)! orderings), ``"ddm"`` ((n-2)! orderings), ``"auto"`` (trace for n <= 5).

    Returns:
        [B] |M|^2 (couplings 1).

    Reference: F. A. Berends, W. T. Giele, Nucl. Phys. B306 (1988) 759; V. Del Duca, L. Dixon, F. Maltoni,
    Nucl. Phys. B571 (2000) 51.
    """
    n = momenta.shape[1]
    out = momenta.copy()
    out[:, :2] *= -1.0  # all-outgoing momenta
    pols = np.stack([gluon_polarizations(momenta[:, i]) for i in range(n)])  # [n, 2, B, 4]
    cur = GluonCurrents(np.transpose(out, (1, 0, 2)), pols, overrides)
    if basis == "auto":
        basis = "trace" if n <= 5 else "ddm"
    if basis == "trace":
        orders, cmat = colour.gluon_trace_orderings(n), colour.gluon_trace_matrix(n)
    elif basis == "ddm":
        orders, cmat = colour.gluon_ddm_orderings(n), colour.gluon_ddm_matrix(n)
    else:
        raise ValueError(f"unknown colour basis '{basis}' (known: auto, trace, ddm)")
    return _colour_sum([gluon_amplitude(cur, o) for o in orders], cmat)


def bg_qq_vector_gluons(momenta: np.ndarray, mass: float, overrides: dict | None = None,
                        boson_override: np.ndarray | None = None) -> np.ndarray:
    """``q q~ > V + m g`` for a massive vector V with unit vector coupling, by Berends-Giele.

    Args:
        momenta: [B, 3 + m, 4] (q, q~, V, g_1..g_m).
        mass: vector-boson mass (GeV).
        overrides: {gluon index (0-based among the gluons): [h, B, 4]} replacement gluon wave functions.
        boson_override: [h, B, 4] replacement for the V polarisation vectors (Ward tests).

    Returns:
        [B] |M|^2 summed over helicities (3 for V) and colours.
    """
    m = momenta.shape[1] - 3
    pg = np.transpose(momenta[:, 3:], (1, 0, 2))  # [m, B, 4] outgoing
    pols = np.stack([gluon_polarizations(x) for x in pg]) if m else np.zeros((0, 2) + momenta.shape[:1] + (4,))
    cur = GluonCurrents(pg, pols, overrides)
    boson = massive_polarizations(momenta[:, 2], mass) if boson_override is None else boson_override
    line = QuarkLine(cur, u_spinors(momenta[:, 0]), momenta[:, 0], boson, momenta[:, 2])
    end = bar(v_spinors(momenta[:, 1]))
    orders = colour.quark_line_orderings(m)
    return _colour_sum([line.amplitude(o, end) for o in orders], colour.quark_line_matrix(m))


def _lepton_current(momenta: np.ndarray) -> np.ndarray:
    """Photon 'polarisations' ``vbar(e+) gamma^mu u(e-) / s`` for the four lepton spin states: [4, B, 4]."""
    vb = bar(v_spinors(momenta[:, 0]))  # e+
    u = u_spinors(momenta[:, 1])  # e-
    cur = vector_current(vb[:, None], u[None, :])  # [2, 2, B, 4]
    q = momenta[:, 0] + momenta[:, 1]
    return cur.reshape((4,) + cur.shape[2:]) / mdot(q, q)[:, None]


def bg_ee_ffg(momenta: np.ndarray, num_gluons: int, num_colours: int,
              overrides: dict | None = None) -> np.ndarray:
    """``e+ e- > f f~ (+ g)`` through a photon, by the quark-line recursion.

    Args:
        momenta: [B, 4 + num_gluons, 4] (e+, e-, f, f~, g...).
        num_gluons: 0 or more gluons emitted from the final-state quark line.
        num_colours: colour multiplicity of the final fermion line for 0 gluons (1 for muons, 3 for quarks).
        overrides: replacement gluon wave functions (Ward tests).
    """
    pg = np.transpose(momenta[:, 4:], (1, 0, 2))
    b = momenta.shape[0]
    pols = np.stack([gluon_polarizations(x) for x in pg]) if num_gluons else np.zeros((0, 2, b, 4))
    cur = GluonCurrents(pg, pols, overrides)
    boson = _lepton_current(momenta)
    kz = -(momenta[:, 0] + momenta[:, 1])  # the photon flows into the line: outgoing momentum -q
    line = QuarkLine(cur, v_spinors(momenta[:, 3]), -momenta[:, 3], boson, kz)
    end = bar(u_spinors(momenta[:, 2]))
    orders = colour.quark_line_orderings(num_gluons)
    cmat = colour.quark_line_matrix(num_gluons) if num_gluons else np.array([[float(num_colours)]])
    return _colour_sum([line.amplitude(o, end) for o in orders], cmat)


# ------------------------------------------------------------------------------------------------ registry


def _make_processes() -> dict[str, Process]:
    procs = [
        Process("e+ e- > mu+ mu-", ("e+", "e-"), ("mu+", "mu-"), closed_forms.ee_mumu,
                partial(_chunk_call, partial(bg_ee_ffg, num_gluons=0, num_colours=1), 4096)),
        Process("e+ e- > q q~ g", ("e+", "e-"), ("q", "q~", "g"), closed_forms.ee_qqg,
                partial(_chunk_call, partial(bg_ee_ffg, num_gluons=1, num_colours=3), 4096)),
        Process("g g > g g", ("g", "g"), ("g", "g"), closed_forms.gg_gg, partial(_chunk_call, bg_gluons, 4096)),
        Process("g g > g g g", ("g", "g"), ("g", "g", "g"), closed_forms.gg_ggg,
                partial(_chunk_call, bg_gluons, 2048)),
        Process("g g > g g g g", ("g", "g"), ("g",) * 4, None, partial(_chunk_call, bg_gluons, 512)),
    ]
    for m, chunk in zip(range(1, 5), (4096, 2048, 1024, 256)):
        cf = partial(closed_forms.qq_vg, mass=MASS_Z) if m == 1 else None
        procs.append(Process("q q~ > Z" + " g" * m, ("q", "q~"), ("Z",) + ("g",) * m, cf,
                             partial(_chunk_call, partial(bg_qq_vector_gluons, mass=MASS_Z), chunk)))
    # processes implemented in their own modules register here (one extend line per module)
    from scalinglab.simulators.amplitudes import electroweak  # imported here: it uses Process from this module

    procs.extend(electroweak.processes())
    from scalinglab.simulators.amplitudes import diphoton, top_higgs  # imported here: they use Process from this module

    procs.extend(top_higgs.processes())
    procs.extend(diphoton.processes())
    return {p.name: p for p in procs}


def _chunk_call(fn: Callable[[np.ndarray], np.ndarray], chunk: int, momenta: np.ndarray) -> np.ndarray:
    return _chunked(fn, momenta, chunk)


PROCESSES: dict[str, Process] = _make_processes()


def normalize_process_name(name: str) -> str:
    """Canonical spelling: single spaces, ``qbar``/``q~`` and ``>``/``->`` accepted."""
    tokens = name.replace("->", ">").split()
    tokens = ["q~" if t in ("qbar", "q~") else t for t in tokens]
    return " ".join(tokens)


def get_process(name: str) -> Process:
    """Look up a process by its string.

    Raises:
        ValueError: unknown process (the message lists the known ones).
    """
    key = normalize_process_name(name)
    if key not in PROCESSES:
        raise ValueError(f"unknown process '{name}' (known: {', '.join(PROCESSES)})")
    return PROCESSES[key]


def list_processes() -> list[str]:
    """Names of all available processes."""
    return list(PROCESSES)


def squared_amplitude(
    process: str | Process,
    momenta: np.ndarray,
    *,
    method: str = "auto",
    average: bool = False,
    validate: bool = True,
    rtol: float = 1e-6,
) -> np.ndarray:
    """Exact tree-level squared matrix element, summed over helicities and colours, couplings = 1.

    Args:
        process: a process string such as ``"g g > g g g"`` (see ``list_processes()``) or a Process.
        momenta: [B, n, 4] (E, px, py, pz) in GeV, incoming first in process-string order; ``[B, 4n]`` is accepted.
        method: ``"auto"``, ``"closed"`` or ``"bg"`` (see the module docstring).
        average: divide by the number of incoming helicity x colour states (spin- and colour-averaged |M|^2).
        validate: check the particle count, on-shell masses and energy-momentum conservation first.
        rtol: validation tolerance relative to the incoming energy (squared for masses); 1e-6 accepts momenta
            that went through float32.

    Returns:
        [B] float64 |M|^2 (GeV^(8 - 2n) x couplings).

    Raises:
        ValueError: unknown process or method, wrong particle count, off-shell or non-conserving momenta.
    """
    proc = process if isinstance(process, Process) else get_process(process)
    if validate:
        p = validate_momenta(momenta, proc.masses, num_incoming=2, rtol=rtol)
    else:
        p = np.asarray(momenta, dtype=np.float64).reshape(-1, len(proc.particles), 4)
    if method == "auto":
        fn = proc.closed_form or proc.bg
    elif method == "closed":
        if proc.closed_form is None:
            raise ValueError(f"no closed form for '{proc.name}': use method='bg' or 'auto'")
        fn = proc.closed_form
    elif method == "bg":
        if proc.bg is None:
            raise ValueError(f"no Berends-Giele implementation for '{proc.name}'")
        fn = proc.bg
    else:
        raise ValueError(f"unknown method '{method}' (known: auto, closed, bg)")
    out = fn(p)
    return out * proc.average_factor if average else out
