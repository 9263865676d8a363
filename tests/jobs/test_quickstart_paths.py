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
