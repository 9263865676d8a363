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
