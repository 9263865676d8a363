import pytest

from scalinglab.sweeps.spec import SpecError, expand_tasks, load_spec, parse_spec

BASE = """
[sweep]
name = "t"
dataset = "data"
targets = ["a", "b"]
realizations = 3
data_sizes = [32, 64]

[[models]]
family = "fcn_l2"
model = "fcn"
config = {num_layers = 2}
size_key = "width"
sizes = [4, 8]

[train]
epochs = 3
"""


def write(tmp_path, text):
    p = tmp_path / "spec.toml"
    p.write_text(text)
    return p


def test_expand_counts_and_seeds(tmp_path):
    spec = load_spec(write(tmp_path, BASE))
    tasks = expand_tasks(spec, pool_size=100)
    assert len(tasks) == 2 * 2 * 2  # sizes x N_D x targets
    assert len({t.task_id for t in tasks}) == len(tasks)
    # the same realization uses the same seeds for every target, different ones across N_D and sizes
    by_key = {(t.size_value, t.num_train, t.target): t.seeds for t in tasks}
    assert by_key[(4, 32, "a")] == by_key[(4, 32, "b")]
    assert by_key[(4, 32, "a")] != by_key[(4, 64, "a")]
    assert by_key[(4, 32, "a")] != by_key[(8, 32, "a")]
    assert len(set(by_key[(4, 32, "a")])) == 3
    # expansion is deterministic
    assert [t.task_id for t in expand_tasks(load_spec(write(tmp_path, BASE)), 100)] == [t.task_id for t in tasks]
    assert spec.dataset == str((tmp_path / "data").resolve())


def test_doubling_data_sizes_to_pool(tmp_path):
    spec = load_spec(write(tmp_path, BASE.replace("data_sizes = [32, 64]", 'data_sizes = {start = 16, max = "pool"}')))
    assert spec.resolved_data_sizes(100) == [16, 32, 64]


def test_compute_axis(tmp_path):
    spec = load_spec(write(tmp_path, BASE + '\n[compute]\nkey = "epochs"\nvalues = [1, 2, 4]\n'))
    tasks = expand_tasks(spec, 100)
    assert len(tasks) == 2 * 2 * 2 * 3
    assert {t.train["epochs"] for t in tasks} == {1, 2, 4}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[sweep\nname=1", "malformed TOML"),
        (BASE.replace("realizations = 3", "realisations = 3"), "unknown key(s) realisations in [sweep]"),
        (BASE.replace('sizes = [4, 8]', 'sizes = [4, 8]\nwidht = 3'), "unknown key(s) widht"),
        (BASE.replace("data_sizes = [32, 64]", "data_sizes = []"), "data_sizes is empty"),
        (BASE.replace('targets = ["a", "b"]', "targets = []"), "targets is empty"),
        ("[sweep]\ndataset='d'\ntargets=['a']\ndata_sizes=[32]\n", "no [[models]]"),
        (BASE + "\n[extra]\nx=1\n", "unknown key(s) extra"),
    ],
)
def test_bad_specs_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(SpecError) as err:
        load_spec(write(tmp_path, text))
    assert message in str(err.value)
    assert "\n" not in str(err.value).strip() or "malformed" in message


def test_data_sizes_larger_than_pool(tmp_path):
    spec = load_spec(write(tmp_path, BASE))
    with pytest.raises(SpecError, match="exceed the pool of 40"):
        expand_tasks(spec, pool_size=40)


def test_missing_spec_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_spec(tmp_path / "nope.toml")


def test_parse_spec_requires_sweep_table():
    with pytest.raises(SpecError, match=r"missing \[sweep\]"):
        parse_spec({"models": []})
