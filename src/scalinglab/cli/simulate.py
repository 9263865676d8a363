"""``scalinglab simulate SIMULATOR ...``: one sub-module per simulator (``simulate_<name>.py``)."""

from __future__ import annotations

import importlib

# Simulator command modules, each with ``register(subparsers)``.
SIMULATOR_MODULES = [
    "simulate_tdgl",
    "simulate_amplitudes",
    "simulate_cri3",
]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "simulate", help="run a simulation campaign into a dataset store",
        description="Run a simulation campaign; results are appended to a Zarr dataset store, resumable.",
    )
    sims = parser.add_subparsers(dest="simulator", metavar="SIMULATOR")
    sims.required = True
    for name in SIMULATOR_MODULES:
        importlib.import_module(f"scalinglab.cli.{name}").register(sims)
