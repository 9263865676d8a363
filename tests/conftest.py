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


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread (tiny models; intra-op threads only add synchronization), then restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def running_texts(monkeypatch):
    """``record(module)``: replace ``module.progress_bar`` by a bar that records every ``set_running`` text."""
    import contextlib

    texts: list[str] = []

    class Recorder:
        live = True

        def advance(self, n=1):
            pass

        def set_description(self, text):
            pass

        def set_completed(self, n):
            pass

        def set_running(self, text):
            texts.append(text)

        def set_work(self, done, total):
            pass

    @contextlib.contextmanager
    def fake_bar(*args, **kwargs):
        yield Recorder()

    def record(module):
        monkeypatch.setattr(module, "progress_bar", fake_bar)
        return texts

    return record


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
