"""The main job's cache and results paths carry a tag of the simulator configuration and store schema."""

from pathlib import Path

from scalinglab.jobs.quickstart import QuickstartConfig, dataset_path


def test_cache_path_is_stable_and_tracks_the_simulator_configuration(monkeypatch):
    cfg = QuickstartConfig(cache_dir=Path("c"))
    a, b = dataset_path(cfg), dataset_path(QuickstartConfig(cache_dir=Path("c")))
    assert a == b and a.parent == Path("c") and a.name.startswith(f"cri3_quick_{cfg.image_size}px_seed{cfg.seed}_")
    assert dataset_path(QuickstartConfig(cache_dir=Path("c"), seed=cfg.seed + 1)) != a
    # a store schema change (another aux array) gives another cache: an old cache is never refused mid-run
    import scalinglab.simulators.moire.campaign as campaign

    monkeypatch.setitem(campaign.AUX_SPECS, "new_quantity", ("float64", ()))
    assert dataset_path(cfg) != a


def test_run_quickstart_uses_the_jobs_epoch_budget_unless_given(monkeypatch):
    """`make demo` runs `scalinglab run quickstart` without --epochs: the job's own budget and stopping rule apply."""
    import scalinglab.jobs.quickstart as quickstart
    from scalinglab.cli import main

    seen = []

    def fake(cfg):
        seen.append(cfg)
        raise KeyboardInterrupt  # stop before any work

    monkeypatch.setattr(quickstart, "run_quickstart", fake)
    for argv in (["run", "quickstart"], ["run", "quickstart", "--epochs", "7"]):
        try:
            main(argv)
        except KeyboardInterrupt:
            pass
    assert seen[0].epochs == QuickstartConfig().epochs and seen[0].min_rel_improvement is not None
    assert seen[1].epochs == 7


def test_quickstart_spec_carries_the_stopping_rule_and_results_are_tagged_by_it(tmp_path):
    import json

    from scalinglab.jobs.quickstart import QUICKSTART_SPEC, results_path
    from scalinglab.sweeps.spec import load_spec
    from scalinglab.training.config import TrainConfig

    cfg = QuickstartConfig(out=tmp_path)
    path = tmp_path / "q.toml"
    path.write_text(QUICKSTART_SPEC.format(
        dataset=tmp_path / "d.zarr", realizations=cfg.realizations, seed=0, test_size=cfg.test_size,
        data_sizes=json.dumps(cfg.data_sizes), widths=json.dumps(cfg.widths), epochs=cfg.epochs,
        patience=cfg.patience, min_rel_improvement=cfg.min_rel_improvement))
    train = TrainConfig.from_dict(load_spec(path).train)
    assert (train.epochs, train.patience, train.min_rel_improvement) == (cfg.epochs, cfg.patience,
                                                                         cfg.min_rel_improvement)
    other = QuickstartConfig(out=tmp_path, min_rel_improvement=0.05)
    assert results_path(cfg) != results_path(other)
    assert results_path(cfg) == results_path(QuickstartConfig(out=tmp_path))
