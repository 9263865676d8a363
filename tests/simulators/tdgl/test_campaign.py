"""TDGL campaigns: divergent runs are excluded from the store and reported; resume never duplicates."""

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.data.store import DatasetStore
from scalinglab.simulators.tdgl.campaign import in_table_iii, inner_outer_map, run_campaign, table_iii_grid

SMALL = {"size": (16, 16), "ramp_time": 60.0, "check_every": 100}


def test_table_iii_grid():
    grid = table_iii_grid()
    assert (0.1, 2.0) in grid and (0.1, 1.3) in grid and (0.1, 1.2) not in grid and (2.0, 0.1) in grid
    assert (1.7, 0.4) in grid and (1.6, 0.4) not in grid and in_table_iii(0.9, 1.0) and not in_table_iii(0.8, 1.0)
    assert len(grid) == 20 * 8 + sum(len([d for d in range(1, 21) if d / 10 >= m - 1e-9])
                                     for m in (2.0, 1.8, 1.8, 1.7, 1.6, 1.4, 1.4, 1.3, 1.2, 0.9, 0.6, 0.5))


def test_divergent_runs_are_excluded_reported_and_resume_skips_them(tmp_path):
    out = tmp_path / "tdgl"
    grid = [(1.0, 1.5), (60.0, 1.5)]  # D = 60: forward Euler blows up (local stiffness >> 2 / dt)
    rep = run_campaign(str(out), profile="quick", grid=grid, seeds=[1], solver_overrides=SMALL, quiet=True)
    assert rep.stored == 1
    assert [(e["D"], e["reason"]) for e in rep.excluded] == [(60.0, "diverged")]
    store = DatasetStore.open(out)
    assert store.num_samples == 1
    np.testing.assert_array_equal(store.targets(["D", "J"]), [[1.0, 1.5]])
    assert set(np.unique(store.inputs()).tolist()) == {-1.0, 1.0}
    assert store.state["excluded"][0]["D"] == 60.0
    store.close()
    again = run_campaign(str(out), profile="quick", grid=grid, seeds=[1], solver_overrides=SMALL, quiet=True)
    assert again.stored == 0 and again.skipped_done == 2
    assert DatasetStore.open(out).num_samples == 1


def test_cli_runs_and_reports(tmp_path, capsys):
    out = tmp_path / "cli"
    rc = main(["simulate", "tdgl", "--out", str(out), "--grid", "1.0,1.5", "60,1.5", "--seeds", "1",
               "--size", "16", "--ramp-time", "60", "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "stored 1 new patterns" in text and "reason=diverged" in text
    with pytest.raises(SystemExit):  # argparse refuses a malformed D,J pair
        main(["simulate", "tdgl", "--out", str(tmp_path / "x"), "--grid", "1.0", "--quiet"])


def test_bad_grid_is_refused(tmp_path):
    with pytest.raises(ValueError, match="J > 0"):
        run_campaign(str(tmp_path / "bad"), grid=[(1.0, 0.0)], seeds=[1], solver_overrides=SMALL, quiet=True)


def test_inner_outer_map_geometry():
    dmap = inner_outer_map((512, 512), 1.9, 1.0, 192)
    assert dmap[256, 256] == 1.9 and dmap[191, 256] == 1.0 and dmap[192, 192] == 1.9 and dmap[320, 320] == 1.0
    assert (dmap == 1.9).sum() == 128 * 128
