"""Survey of a TDGL campaign: Table III bookkeeping, trends, stored saturation summaries, CLI."""

import json

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.simulators.tdgl.campaign import run_campaign
from scalinglab.simulators.tdgl.survey import Cell, _trends, summary_lines, survey, write_survey


def test_trends_are_spearman_correlations_per_row():
    # Known answer: chord falls with J at D = 0.1 (rho = -1), rises with J at D = 1 (rho = +1); fewer than three
    # points give no trend.
    cells = [Cell(D=0.1, J=j, num_run=1, num_stored=1, in_table_iii=True, chord=c)
             for j, c in [(1.0, 30.0), (1.5, 20.0), (2.0, 10.0)]]
    cells += [Cell(D=1.0, J=j, num_run=1, num_stored=1, in_table_iii=True, chord=c)
              for j, c in [(1.0, 5.0), (1.5, 6.0), (2.0, 9.0)]]
    cells += [Cell(D=2.0, J=j, num_run=1, num_stored=1, in_table_iii=True, chord=c)
              for j, c in [(1.0, 5.0), (2.0, 4.0)]]
    trend = _trends(cells, "J")
    assert trend == pytest.approx({"D=0.1": -1.0, "D=1": 1.0})
    assert Cell(D=0, J=1, num_run=3, num_stored=2, in_table_iii=True).reversed
    assert not Cell(D=0, J=1, num_run=2, num_stored=1, in_table_iii=True).reversed


def test_survey_of_a_small_campaign(tmp_path, capsys, one_torch_thread):
    store = tmp_path / "store"
    grid = [(0.1, 2.0), (2.0, 2.0), (0.1, 0.3)]
    run_campaign(str(store), profile="quick", grid=grid, seeds=[1], quiet=True,
                 solver_overrides={"size": (32, 32), "ramp_time": 100.0})
    result = survey(store)
    by = {(c.D, c.J): c for c in result.cells}
    clean, dirty, weak = by[(0.1, 2.0)], by[(2.0, 2.0)], by[(0.1, 0.3)]
    assert clean.reversed and dirty.reversed and not weak.reversed  # (0.1, 0.3): a saturated film, no reversal
    assert not weak.in_table_iii and clean.in_table_iii
    assert result.table_iii["reversed_and_kept"] == 2 and result.table_iii["not_reversed_and_excluded"] == 1
    assert result.table_iii["agreement"] == 1.0
    assert result.table_iii["not_reversed_cells_with_diverged_runs"] == 0 and weak.num_diverged == 0
    # Stored per-pattern summaries of the unbinarized capture; disorder gives finer domains and fewer saturated
    # pixels.
    assert clean.chord > dirty.chord
    assert clean.saturated_fraction > dirty.saturated_fraction
    assert 0.5 < clean.median_abs_m <= 1.0
    assert clean.coercive_field > 0
    paths = write_survey(result, tmp_path / "survey")
    data = json.loads(paths["json"].read_text())
    assert data["convention"] == "absorbed_x1.5+demag2" and len(data["cells"]) == 3
    assert paths["png"].stat().st_size > 0 and "chord" in paths["csv"].read_text().splitlines()[0]
    assert any("Table III" in line for line in summary_lines(result))
    # The CLI on the finished store: nothing new to simulate, the survey is written.
    assert main(["simulate", "tdgl", "--out", str(store), "--profile", "quick", "--size", "32", "--ramp-time",
                 "100", "--seeds", "1", "--grid", "0.1,2.0", "2.0,2.0", "0.1,0.3", "--quiet",
                 "--survey", str(tmp_path / "s2"), "--patterns-figure", str(tmp_path / "patterns.png")]) == 0
    out = capsys.readouterr().out
    assert "agreement 1.00" in out and (tmp_path / "s2" / "survey.png").exists()
    assert "0 of the cells that did not reverse have diverged runs" in out
    assert (tmp_path / "patterns.png").stat().st_size > 0
    assert main(["simulate", "tdgl", "--out", str(tmp_path / "m"), "--maps", "--survey", str(tmp_path / "s3")]) == 2
    assert "drop --maps" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_store_without_capture_summaries_resumes_and_surveys(tmp_path, monkeypatch, one_torch_thread):
    # A store written before the summaries existed and interrupted keeps its schema when resumed by this version;
    # its survey has NaN there.
    from scalinglab.data.store import DatasetStore
    from scalinglab.simulators.tdgl import campaign

    store = tmp_path / "old"
    kwargs = dict(profile="quick", grid=[(1.0, 2.0), (2.0, 2.0)], seeds=[1], batch_size=1, quiet=True,
                  solver_overrides={"size": (16, 16), "ramp_time": 50.0})
    real = campaign.simulate_batch
    calls = []

    def interrupted(*args, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed after the first batch
        return real(*args, **kw)

    monkeypatch.setattr(campaign, "CAPTURE_SUMMARIES", ())  # write like the earlier version
    monkeypatch.setattr(campaign, "simulate_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_campaign(str(store), **kwargs)
    monkeypatch.undo()
    report = run_campaign(str(store), **kwargs)
    assert report.skipped_done == 1
    with DatasetStore.open(store) as s:
        assert s.num_samples == 2 and "saturated_fraction" not in s.aux_names
    cells = survey(store).cells
    assert all(c.reversed and np.isnan(c.saturated_fraction) and np.isfinite(c.chord) for c in cells)


def test_survey_refuses_other_stores(tmp_path):
    with pytest.raises(FileNotFoundError):
        survey(tmp_path / "missing")


def test_survey_refuses_a_map_campaign(tmp_path):
    from scalinglab.data.store import DatasetStore

    path = tmp_path / "maps"
    DatasetStore.create(path, input_shape=(1, 4, 4), target_names=["D_in", "D_out", "J"],
                        metadata={"producer": "tdgl", "config": {"kind": "map"}}).close()
    with pytest.raises(ValueError, match="not a uniform TDGL campaign"):
        survey(path)


def test_diverged_runs_are_counted_per_cell(tmp_path, one_torch_thread):
    # D = 60 makes A0 (1 + D eta) hugely negative on many sites: the explicit step blows up (as in
    # tests/simulators/tdgl/test_campaign.py), the paper's reason for excluding a cell.
    store = tmp_path / "div"
    run_campaign(str(store), profile="quick", grid=[(60.0, 1.5), (1.0, 1.5)], seeds=[1], quiet=True,
                 solver_overrides={"size": (16, 16), "ramp_time": 60.0})
    by = {(c.D, c.J): c for c in survey(store).cells}
    assert by[(60.0, 1.5)].num_diverged == 1 and not by[(60.0, 1.5)].reversed
    assert by[(1.0, 1.5)].num_diverged == 0
    assert survey(store).table_iii["not_reversed_cells_with_diverged_runs"] == 1
