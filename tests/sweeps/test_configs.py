"""The shipped sweep configs parse, name real models and config keys, and a valid training recipe."""

from pathlib import Path

import pytest

from scalinglab.models._registry import MODELS
from scalinglab.sweeps.spec import load_spec
from scalinglab.training.config import TrainConfig

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("*.toml"))


def test_configs_exist():
    assert any(p.name.startswith("paper1_") for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_is_valid(path):
    import scalinglab.models  # noqa: F401  (registers the builders)

    spec = load_spec(path)
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
