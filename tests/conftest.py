import os
import random

import numpy as np
import pytest

os.environ.setdefault("SCALINGLAB_QUIET", "1")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same global seeds (library code itself uses explicit seeds)."""
    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:
        pass
    yield


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs CUDA")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
