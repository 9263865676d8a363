"""The shipped sweep configs parse, name real models and config keys, and a valid training recipe."""

from pathlib import Path

import pytest

from scalinglab.models._registry import MODELS
from scalinglab.sweeps.spec import load_spec
from scalinglab.training.config import TrainConfig

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))


def test_configs_exist():
    assert any(p.name.startswith("paper1_") for p in CONFIGS)
    assert {"paper4_patches.toml", "paper4_patches_quick.toml"} <= {p.name for p in CONFIGS}


def test_paper4_patch_configs_are_the_papers_study():
    """The full config holds the paper's six architectures (five also pretrained), N_data {1, 4}, 20 repeats on
    CUDA; the quick one the small CNN only."""
    full = load_spec(Path(__file__).parents[2] / "configs" / "paper4_patches.toml")
    assert full.mode == "patches" and full.data_sizes == [1, 4] and full.realizations == 20
    assert full.device == "cuda" and full.targets == ("D", "J")
    assert {f.model for f in full.models} == {"cnn_small", "regnet_x_16gf", "mobilenet_v3_large", "efficientnet_b3",
                                              "mnasnet1_0", "resnext50_32x4d"}
    assert {f.family for f in full.models if f.pretrained} == {"reg_pret", "mob_pret", "eff_pret", "mna_pret",
                                                                "res_pret"}
    quick = load_spec(Path(__file__).parents[2] / "configs" / "paper4_patches_quick.toml")
    assert quick.mode == "patches" and [f.model for f in quick.models] == ["cnn_small"]


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_is_valid(path):
    import scalinglab.models  # noqa: F401  (registers the builders)

    spec = load_spec(path)
    if spec.mode == "patches":  # paper 4's patch study: the recipe is a PatchConfig, one model per entry
        from scalinglab.training.patch_regression import PatchConfig

        assert spec.models and all(f.size_key is None for f in spec.models)
        for fam in spec.models:
            PatchConfig.from_dict({**spec.train, **fam.train, "targets": list(spec.targets), "device": spec.device})
            assert set(fam.config) <= set(MODELS.accepted_keys(fam.model)), fam.family
        return
    TrainConfig.from_dict(spec.train)
    for fam in spec.models:
        TrainConfig.from_dict({**spec.train, **fam.train})
        accepted = set(MODELS.accepted_keys(fam.model))
        for _, cfg in fam.configs():
            assert set(cfg) <= accepted, (fam.family, set(cfg) - accepted)


def test_estimated_flops_count_the_epochs_min_steps_adds():
    """quick_amplitudes_tth: 256 samples train 1500 epochs (min_steps 3000 at 2 steps per epoch), not 60."""
    from scalinglab.sweeps.runner import estimated_flops
    from scalinglab.sweeps.spec import expand_tasks

    spec = load_spec(Path(__file__).parents[2] / "configs" / "quick_amplitudes_tth.toml")
    tasks = {t.num_train: t for t in expand_tasks(spec, 20000)}
    small, large = estimated_flops(tasks[256], 1000), estimated_flops(tasks[8192], 1000)
    # 224 training samples x 1500 epochs vs 7168 x 60: the small point costs about as much as the large one
    assert small == pytest.approx(6.0 * 1000 * 224 * 1500 * 5)
    assert large == pytest.approx(6.0 * 1000 * 7168 * 60 * 5)
