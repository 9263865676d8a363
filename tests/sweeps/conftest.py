import numpy as np
import pytest

SPEC = """
[sweep]
name = "tiny"
dataset = "{dataset}"
targets = ["a", "b"]
realizations = 3
root_seed = 7
test_size = 64
data_sizes = [32, 64, 128]

[[models]]
family = "fcn_l2"
model = "fcn"
config = {{num_layers = 2, activation = "gelu"}}
size_key = "width"
sizes = [4, 8]

[train]
epochs = 4
batch_size = 16
"""


def make_tiny_store(path, num_samples=400, seed=0):
    """Features x ~ U(-1, 1)^6; targets a = sum of squares, b = product of the first two (known functions)."""
    from scalinglab.data.store import DatasetStore

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(num_samples, 6)).astype(np.float32)
    y = np.stack([(x**2).sum(1), x[:, 0] * x[:, 1]], axis=1).astype(np.float64)
    store = DatasetStore.create(path, input_shape=(6,), target_names=["a", "b"], target_units=["u", "v"],
                                metadata={"producer": "test", "config": {"seed": seed}})
    store.append(x, y)
    return store


@pytest.fixture
def tiny_sweep(tmp_path):
    """(spec path, dataset path) of a 2-size x 3-N_D x 2-target sweep that trains in seconds."""
    data = tmp_path / "tiny.zarr"
    make_tiny_store(data)
    spec = tmp_path / "sweep.toml"
    spec.write_text(SPEC.format(dataset=data))
    return spec, data
