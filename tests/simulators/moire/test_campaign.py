"""Campaigns: exact sample counts, kill (SIGKILL) + resume, FM side table, configuration errors, CLI."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from scalinglab.data.store import DatasetStore
from scalinglab.simulators.moire.campaign import (
    CampaignConfig,
    draw_parameters,
    fm_store_path,
    run_campaign,
)
from scalinglab.simulators.moire.phases import FM

# Small, fast settings: the largest angle, four structured starts, a loose tolerance.
FAST = dict(m_values=(8,), tol=5e-2, max_iter=150, chunk_size=2)


def _check_consistent(path, config: CampaignConfig, num: int) -> None:
    """Exactly ``num`` samples, unique increasing draws, targets equal to the draws, FM rows complementary."""
    st = DatasetStore.open(path)
    fm = DatasetStore.open(fm_store_path(path))
    assert st.num_samples == num
    draws = st.aux("draw")
    assert np.all(np.diff(draws) > 0)
    done = st.state["draws_done"]
    assert draws[-1] == done - 1
    params = draw_parameters(config, 0, done)
    assert np.allclose(st.targets(), np.stack([params["theta"], params["J"], params["D"]], 1)[draws])
    assert np.all(st.aux("phase") != FM)
    fm_draws = fm.aux("draw")
    assert np.all(fm.aux("phase") == FM)
    assert len(np.intersect1d(draws, fm_draws)) == 0
    assert sorted(np.concatenate([draws, fm_draws[fm_draws < done]]).tolist()) == list(range(done))
    assert np.all(np.isfinite(st.inputs())) and st.inputs().shape == (num, 2, 100, 100)
    assert st.metadata["profile"] == config.profile and "profile_description" in st.metadata


def test_campaign_counts_resume_and_extension(tmp_path):
    out = tmp_path / "cri3.zarr"
    store = run_campaign(out, 3, profile="quick", seed=5, quiet=True, **FAST)
    store.close()
    config = CampaignConfig.from_profile("quick", 5, **FAST)
    _check_consistent(out, config, 3)
    st = DatasetStore.open(out)
    assert st.aux("converged").dtype == bool
    before = st.inputs().copy()
    # Re-running with the same request does nothing; a larger request extends deterministically (the chunking
    # is a storage detail and may change between runs).
    run_campaign(out, 3, profile="quick", seed=5, quiet=True, **FAST).close()
    run_campaign(out, 5, profile="quick", seed=5, quiet=True, **{**FAST, "chunk_size": 3}).close()
    _check_consistent(out, config, 5)
    assert np.array_equal(DatasetStore.open(out).inputs(indices=np.arange(3)), before)
    # A different configuration on the same path is refused.
    with pytest.raises(ValueError, match="configuration"):
        run_campaign(out, 6, profile="quick", seed=5, quiet=True, **{**FAST, "tol": 1e-2})


def test_kill_and_resume_gives_exactly_n_samples(tmp_path):
    out = tmp_path / "killed.zarr"
    num = 8
    code = (
        "from scalinglab.simulators.moire.campaign import run_campaign\n"
        f"run_campaign({str(out)!r}, {num}, profile='quick', seed=3, quiet=True, J_range=(1.0, 2.5), **{FAST!r})\n"
    )
    env = dict(os.environ, SCALINGLAB_QUIET="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    killed_at = None
    deadline = time.time() + 120
    try:
        while time.time() < deadline and proc.poll() is None:
            if (out / "commit.json").exists():
                n = DatasetStore.open(out).num_samples
                if 2 <= n < num:
                    proc.send_signal(signal.SIGKILL)
                    killed_at = n
                    break
            time.sleep(0.02)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait()
    assert killed_at is not None and proc.returncode == -signal.SIGKILL, "campaign was not killed mid-run"
    config = CampaignConfig.from_profile("quick", 3, J_range=(1.0, 2.5), **FAST)
    run_campaign(out, num, profile="quick", seed=3, quiet=True, J_range=(1.0, 2.5), **FAST).close()
    _check_consistent(out, config, num)


@pytest.mark.parametrize("overrides,match", [
    (dict(m_values=(7,)), "outside"),
    (dict(m_values=(40,)), "outside"),
    (dict(J_range=(-1.0, 2.0)), "J_range"),
    (dict(J_range=(3.0, 2.0)), "J_range"),
    (dict(D_range=(-0.1, 0.3)), "D_range"),
    (dict(interlayer="wet"), "interlayer"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(tol=0.0), "tol"),
    (dict(bogus=1), "unknown"),
])
def test_bad_configuration(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        run_campaign(tmp_path / "x.zarr", 2, quiet=True, **overrides)
    assert not (tmp_path / "x.zarr").exists()


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_samples"):
        run_campaign(tmp_path / "x.zarr", 0)
    with pytest.raises(ValueError, match="profile"):
        run_campaign(tmp_path / "x.zarr", 2, profile="huge")
    with pytest.raises(ValueError, match="executor"):
        run_campaign(tmp_path / "x.zarr", 2, executor="slurm")


def test_cli_errors_are_one_line(capsys, tmp_path):
    from scalinglab.cli import main

    assert main(["simulate", "cri3", "--num-samples", "2", "--out", str(tmp_path / "c.zarr"), "--angles", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "outside" in err[0]


@pytest.mark.slow
def test_ray_executor_matches_local(tmp_path):
    pytest.importorskip("ray")
    a, b = tmp_path / "local.zarr", tmp_path / "ray.zarr"
    run_campaign(a, 4, seed=1, quiet=True, **FAST).close()
    run_campaign(b, 4, seed=1, quiet=True, executor="ray", **FAST).close()
    sa, sb = DatasetStore.open(a), DatasetStore.open(b)
    assert np.array_equal(sa.aux("draw"), sb.aux("draw"))
    assert np.allclose(sa.inputs(), sb.inputs(), atol=1e-5)


def _write_csv(path, text):
    path.write_text(text)
    return path


def test_params_csv_rows_become_samples_and_resume(tmp_path):
    from scalinglab.simulators.moire.campaign import read_params_csv
    from scalinglab.simulators.moire.lattice import twist_angle

    csv = _write_csv(tmp_path / "p.csv", f"theta,J,D\n{twist_angle(8):.5f},9.5,0.25\n{twist_angle(8):.5f},1.2,0.1\n"
                                         "3.8902,2.0,0.2\n")
    params = read_params_csv(csv)
    assert [p[0] for p in params] == [8, 8, 8] and params[1][1:] == (1.2, 0.1)
    out = tmp_path / "p.zarr"
    run_campaign(out, None, quiet=True, params=params, **{**FAST, "m_values": None}).close()
    st = DatasetStore.open(out)
    assert st.num_samples == 3 and np.array_equal(st.aux("draw"), [0, 1, 2])  # FM rows included
    assert np.allclose(st.targets()[:, 1:], [[9.5, 0.25], [1.2, 0.1], [2.0, 0.2]])
    for key in ("runner_up_phase", "energy_gap", "gap_uncertainty", "resolved", "partner_gap", "rev_top"):
        assert len(st.aux(key)) == 3
    assert st.aux("phase")[0] == FM and len(DatasetStore.open(fm_store_path(out)).aux("draw")) >= 1
    # Resume: the same request adds nothing.
    run_campaign(out, None, quiet=True, params=params, **{**FAST, "m_values": None}).close()
    assert DatasetStore.open(out).num_samples == 3


@pytest.mark.parametrize("text,match", [
    ("theta,J,D,K\n3.89,1,0.1,2\n", "unknown column 'K'"),
    ("theta,J,D\n3.0,1,0.1\n", r"row 1: theta=3.0 deg is not a commensurate angle.*nearest: 2.8\d+ \(m=11\), 3.1\d+"),
    ("m,J,D\n7,1,0.1\n", "row 1: m=7"),
    ("J,D\n1,0.1\n", "exactly one of theta, m"),
    ("m,J,D\n8,-1,0.1\n", "J > 0"),
])
def test_params_csv_errors_are_one_line(tmp_path, text, match):
    from scalinglab.simulators.moire.campaign import read_params_csv

    with pytest.raises(ValueError, match=match) as err:
        read_params_csv(_write_csv(tmp_path / "bad.csv", text))
    assert "\n" not in str(err.value)


def test_cli_params_and_device_errors(capsys, tmp_path):
    import torch

    from scalinglab.cli import main

    bad = _write_csv(tmp_path / "bad.csv", "theta,J,D,X\n3.89,1,0.1,0\n")
    assert main(["simulate", "cri3", "--out", str(tmp_path / "c.zarr"), "--params", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown column 'X'" in err[0]
    assert main(["simulate", "cri3", "--out", str(tmp_path / "c.zarr")]) == 2
    assert "--num-samples is required" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["simulate", "cri3", "--num-samples", "2", "--out", str(tmp_path / "d.zarr"),
                     "--device", "cuda"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "CUDA is not available" in err[0]
        assert not (tmp_path / "d.zarr").exists()


def test_j_and_d_ranges_reach_the_draws():
    cfg = CampaignConfig.from_profile("quick", 0, J_range=(2.0, 3.0), D_range=(0.1, 0.2))
    p = draw_parameters(cfg, 0, 50)
    assert p["J"].min() >= 2 and p["J"].max() <= 3 and p["D"].min() >= 0.1 and p["D"].max() <= 0.2
    assert set(CampaignConfig.from_profile("standard", 0).m_values) == set(range(8, 33))


def test_saddle_uncertainty_is_stored_as_a_finite_marker(tmp_path, monkeypatch):
    """A candidate at a saddle has an infinite energy uncertainty; the store holds finite values only, so the
    campaign writes NO_ESTIMATE (such samples stay unresolved) instead of failing the append."""
    import scalinglab.simulators.moire.campaign as campaign

    real = campaign.search_ground_states

    def with_saddle(*args, **kwargs):
        gs = real(*args, **kwargs)
        gs.energy_uncertainty[0] = np.inf
        gs.gap_uncertainty[0] = np.inf
        return gs

    monkeypatch.setattr(campaign, "search_ground_states", with_saddle)
    store = run_campaign(tmp_path / "s.zarr", 3, profile="quick", seed=0, quiet=True, grid=8, m_values=(8,),
                         include_fm=True)
    unc = store.aux("energy_uncertainty")
    assert np.isfinite(unc).all() and (unc == campaign.NO_ESTIMATE).any()
    assert (store.aux("gap_uncertainty") == campaign.NO_ESTIMATE).any()


def test_recombine_is_part_of_the_stored_configuration():
    from scalinglab.simulators.moire.campaign import CampaignConfig

    on = CampaignConfig.from_profile("standard")
    off = CampaignConfig.from_profile("standard", recombine=False)
    assert on.search().recombine and not off.search().recombine
    assert on.to_dict()["recombine"] is True and off.to_dict()["recombine"] is False


def test_cli_no_recombine_is_recorded_and_a_resume_with_recombination_is_refused(tmp_path, capsys):
    from scalinglab.cli import main
    from scalinglab.data.store import DatasetStore
    from scalinglab.simulators.moire.regions import COMPOSITES

    out = tmp_path / "c.zarr"
    args = ["simulate", "cri3", "--num-samples", "2", "--out", str(out), "--angles", "8", "--include-fm",
            "--max-iter", "50", "--quiet"]
    assert main(args + ["--no-recombine"]) == 0
    st = DatasetStore.open(out)
    assert st.metadata["config"]["recombine"] is False and "best_parts" not in st.metadata["start_names"]
    assert np.all(st.aux("start") < len(st.metadata["start_names"]))
    assert main(args[:5] + [str(tmp_path / "r.zarr")] + args[6:]) == 0  # recombination on (the default)
    st = DatasetStore.open(tmp_path / "r.zarr")
    assert st.metadata["start_names"][-len(COMPOSITES):] == list(COMPOSITES)
    assert np.all(st.aux("start") < len(st.metadata["start_names"]))
    capsys.readouterr()
    assert main(args) == 2  # the default (recombination on) is another configuration: refused, store untouched
    assert "different configuration" in capsys.readouterr().err
    assert DatasetStore.open(out).num_samples == 2


def test_progress_within_a_chunk_names_the_draws_and_the_angle(tmp_path, running_texts):
    """A chunk at the small angles takes minutes: the bar hears which draws are being relaxed, per angle."""
    import scalinglab.simulators.moire.campaign as campaign

    running = running_texts(campaign)
    run_campaign(tmp_path / "p.zarr", 2, seed=1, **{**FAST, "m_values": (8, 9), "chunk_size": 4, "grid": 8}).close()
    assert running, "no progress within chunks"
    first = running[0]
    assert first.startswith("draws 0..") and ": 0/" in first and "relaxed, m = " in first
    ends = [t for t in running if "m = " not in t]
    assert ends and all(t.split(": ")[1].split("/")[0] == t.split("/")[1].split(" ")[0] for t in ends)


def test_non_tty_campaign_writes_periodic_progress_lines(tmp_path, monkeypatch, capsys):
    """Batch jobs (nohup, Slurm): plain lines at the interval, naming the draws being relaxed."""
    monkeypatch.setenv("SCALINGLAB_PROGRESS_INTERVAL", "0.05")
    monkeypatch.delenv("SCALINGLAB_QUIET", raising=False)
    run_campaign(tmp_path / "p.zarr", 3, seed=2, **{**FAST, "grid": 8}).close()
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "cri3 quick:" in ln]
    assert len(lines) >= 2  # periodic lines while chunks relax, and the final one
    assert "3/3 samples (100.0%)" in lines[-1]
    assert any("running: draws " in ln for ln in lines[:-1])
