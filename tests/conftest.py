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


def _torch_threads(n: int):
    """Set torch's intra-op threads to ``n`` until the generator is closed, then restore the count."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread (tiny models; intra-op threads only add synchronization), then restore."""
    yield from _torch_threads(1)


@pytest.fixture(scope="module")
def one_torch_thread_for_module():
    """The same for a whole module: request it from module-scoped fixtures that train or simulate, so that they
    too run single-threaded (a function-scoped fixture is not yet in force when they run)."""
    yield from _torch_threads(1)


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


def _stripes(D: float, J: float, seed: int, size: int) -> np.ndarray:
    """+-1 stripes: period 4 + 4 J pixels, up fraction set by D, random orientation/phase. ``[size, size]``."""
    g = np.random.default_rng([seed, int(round(D * 1000)), int(round(J * 1000))])
    period = 4.0 + 4.0 * J
    theta, phi = g.uniform(0, np.pi), g.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:size, 0:size]
    img = np.sign(np.sin(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period + phi) + (D - 1.0))
    return np.where(img == 0, 1.0, img).astype(np.float32)


@pytest.fixture(scope="session")
def stripes_store():
    """``make(path, size, seeds, d_values, j_values, targets=("D", "J"), with_seed=True)``: a dataset store of
    synthetic TDGL-like patterns, binarized stripes whose period grows with J and whose up fraction grows with D,
    one per (seed, D, J), with an aux ``seed`` (paper 4's patch studies split by simulation seed)."""
    from scalinglab.data.store import DatasetStore

    def make(path, size, seeds, d_values, j_values, targets=("D", "J"), with_seed=True):
        rows = [(d, j, s) for s in seeds for d in d_values for j in j_values]
        images = np.stack([_stripes(d, j, s, size)[None] for d, j, s in rows])
        values = {"D": [r[0] for r in rows], "J": [r[1] for r in rows]}
        store = DatasetStore.create(path, input_shape=(1, size, size), target_names=list(targets),
                                    aux_specs={"seed": ("int32", ())} if with_seed else None,
                                    metadata={"producer": "test-stripes", "config": {}})
        tgt = np.stack([values.get(t, np.ones(len(rows))) for t in targets], axis=1)
        store.append(images, tgt, aux={"seed": np.array([r[2] for r in rows], np.int32)} if with_seed else None)
        store.close()
        return path

    return make
