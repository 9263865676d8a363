"""Sweep specification: a TOML file expanded into tasks (model configuration x N_D x target [x compute]).

A sweep file looks like::

    [sweep]
    name = "fcn-data-scaling"
    dataset = "cache/cri3_quick"     # a dataset store (relative paths: relative to the TOML file)
    targets = ["theta", "J", "D"]
    realizations = 5                 # R independent realizations per design point
    root_seed = 0                    # every per-realization seed is derived from it
    test_size = 512                  # fixed test set (count or fraction), chosen by split_seed
    split_seed = 0
    input_norm = "per_feature"       # or "global"
    data_sizes = [64, 128, 256, 512, 1024, 2048]   # or: data_sizes = {start = 256, factor = 2, max = "pool"}

    [[models]]
    family = "fcn_l3"                # label used in tables and figures
    model = "fcn"                    # registry name
    config = {num_layers = 3, activation = "gelu"}
    size_key = "width"               # the config key varied along the model-size axis
    sizes = [16, 64]

    [train]                          # TrainConfig fields (scalinglab.training.config)
    epochs = 60

    [compute]                        # optional: a compute axis (fixed model and data, varying length)
    key = "epochs"                   # a TrainConfig field
    values = [5, 10, 20, 40]

Optional keys: ``[sweep] mode = "generate"`` trains generators (the ``targets`` are the network's inputs, the
images its outputs; one task per model x N_D); ``[sweep] save = ["models", "predictions"]`` keeps every
realization's checkpoint and test predictions under ``<results>/artifacts/<task_id>/`` (off by default: a
checkpoint costs 4 bytes per parameter per realization); ``train = {...}`` inside a ``[[models]]`` entry
overrides ``[train]`` for that family (e.g. a noise-augmented copy of a model, ``noise_snr_db = [-10, 20]``).

``[sweep] mode = "patches"`` is paper 4's patch study (Experiment I, ``scalinglab.training.patch_regression``):
``dataset`` is a TDGL store (targets D, J and aux ``seed``), ``data_sizes`` the numbers of training seeds N_data
(integers >= 1), ``realizations`` the repeats, ``[train]`` the ``PatchConfig`` keys (an unknown one is an error),
and each ``[[models]]`` entry one model (``model``, ``config``, optional ``pretrained = "NAME|FILE"`` for the
torchvision backbones, optional ``family`` = its label in tables, default ``model`` or ``model_pret``); there is
no size axis, no ``[compute]`` and no ``test_size`` / ``split_seed`` / ``input_norm`` / ``target_transform`` /
``loss_key`` (the test and validation images are those of ``[train] test_seed`` / ``val_seed``). One task per
(model, N_data) holds its repeats; see ``scalinglab.sweeps.patches``.

Reference: paper 1 Methods B (N_D = 256, 512, ...; ~20 realizations; 7/8 train, 1/8 validation);
paper 3 Sec. 3 (compute axis at fixed N and D).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from scalinglab.seeding import derive_seed
from scalinglab.training.metrics import METRICS


class SpecError(ValueError):
    """A sweep specification that cannot be run; the message names the offending key."""


_SWEEP_KEYS = {
    "name", "dataset", "targets", "realizations", "root_seed", "test_size", "split_seed",
    "input_norm", "data_sizes", "device", "loss_key", "target_transform", "mode", "save",
}
_MODEL_KEYS = {"family", "model", "config", "size_key", "sizes", "train", "pretrained"}
MODES = ("regress", "generate", "patches")
# [sweep] keys of the regression / generator sweeps that a patch study has no use for (refused, not dropped)
_NOT_PATCH_KEYS = ("test_size", "split_seed", "input_norm", "target_transform", "loss_key")
SAVE_KINDS = ("models", "predictions")
_COMPUTE_KEYS = {"key", "values"}
_TOP_KEYS = {"sweep", "models", "train", "compute"}


@dataclass(frozen=True)
class ModelFamily:
    """One architecture family with a model-size axis (``size_key`` varied over ``sizes``)."""

    family: str
    model: str
    config: dict[str, Any] = field(default_factory=dict)
    size_key: str | None = None
    sizes: tuple[Any, ...] = (None,)
    train: dict[str, Any] = field(default_factory=dict)  # overrides of the sweep's [train] for this family
    # mode "patches" only: ImageNet weights of a torchvision backbone (a weights name or a local file)
    pretrained: str | None = None

    def configs(self) -> list[tuple[Any, dict[str, Any]]]:
        """(size value, full model config) for every size on the axis."""
        out = []
        for size in self.sizes:
            cfg = dict(self.config)
            if self.size_key is not None:
                cfg[self.size_key] = size
            out.append((size, cfg))
        return out


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep specification (see the module docstring for the TOML layout)."""

    name: str
    dataset: str
    targets: tuple[str, ...]
    models: tuple[ModelFamily, ...]
    data_sizes: Any  # list of ints, or {"start", "factor", "max"} resolved against the pool size
    realizations: int = 5
    root_seed: int = 0
    test_size: float = 0.1
    split_seed: int = 0
    input_norm: str = "per_feature"
    # "log": targets learned as log(y), standardized (paper 3); "none" keeps them as stored
    target_transform: str = "none"
    device: str = "cpu"
    loss_key: str = "mse"  # the test metric (normalized units) used for the scaling fits
    train: dict[str, Any] = field(default_factory=dict)
    compute: dict[str, Any] | None = None
    mode: str = "regress"
    save: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["models"] = [asdict(m) for m in self.models]
        return d

    def resolved_data_sizes(self, pool_size: int) -> list[int]:
        """The N_D axis as integers, checked against the pool size."""
        ds = self.data_sizes
        if isinstance(ds, dict):
            start, factor = int(ds.get("start", 256)), float(ds.get("factor", 2))
            top = pool_size if ds.get("max", "pool") == "pool" else int(ds["max"])
            if top > pool_size:
                raise SpecError(f"data_sizes.max = {top} is larger than the pool ({pool_size} samples)")
            sizes, n = [], start
            while n <= top:
                sizes.append(int(n))
                n = int(round(n * factor))
            if not sizes:
                raise SpecError(f"data_sizes start = {start} exceeds the pool ({pool_size} samples): empty grid")
            return sizes
        too_big = [n for n in ds if n > pool_size]
        if too_big:
            raise SpecError(
                f"data_sizes {too_big} exceed the pool of {pool_size} samples (dataset minus test set)"
            )
        return [int(n) for n in ds]


LOSS_KEYS = METRICS  # the test metrics every record holds; loss_key must name one of them


def _integer(table: dict[str, Any], key: str, default: int, where: str, minimum: int | None = None) -> int:
    """``table[key]`` as an int; a string, float or bool is a one-line error naming the key."""
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"[{where}] {key} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise SpecError(f"[{where}] {key} must be >= {minimum}, got {value}")
    return value


def _duplicates(values: list[Any]) -> list[Any]:
    seen, dup = set(), []
    for v in values:
        key = json.dumps(v, sort_keys=True, default=str)
        if key in seen and v not in dup:
            dup.append(v)
        seen.add(key)
    return dup


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise SpecError(f"unknown key(s) {', '.join(unknown)} in [{where}] (allowed: {', '.join(sorted(allowed))})")


def parse_spec(raw: dict[str, Any], base_dir: Path | None = None) -> SweepSpec:
    """Validate a parsed TOML document into a ``SweepSpec``."""
    _check_keys(raw, _TOP_KEYS, "top level")
    if "sweep" not in raw:
        raise SpecError("missing [sweep] table")
    sw = dict(raw["sweep"])
    _check_keys(sw, _SWEEP_KEYS, "sweep")
    mode = sw.get("mode", "regress")
    if mode not in MODES:
        raise SpecError(f"[sweep] mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "patches":
        return _parse_patch_spec(raw, sw, base_dir)
    for key in ("dataset", "targets", "data_sizes"):
        if key not in sw:
            raise SpecError(f"missing key '{key}' in [sweep]")
    targets = sw["targets"]
    if isinstance(targets, str):
        targets = [targets]
    if not targets:
        raise SpecError("[sweep] targets is empty: nothing to regress")
    ds = sw["data_sizes"]
    if isinstance(ds, list):
        if not ds:
            raise SpecError("[sweep] data_sizes is empty: the grid has no points")
        if any((not isinstance(n, int)) or isinstance(n, bool) or n < 8 for n in ds):
            raise SpecError(f"[sweep] data_sizes must be integers >= 8, got {ds}")
        if _duplicates(ds):
            raise SpecError(f"[sweep] data_sizes lists {_duplicates(ds)} more than once (each N_D would train twice)")
    elif isinstance(ds, dict):
        _check_keys(ds, {"start", "factor", "max"}, "sweep.data_sizes")
        _integer(ds, "start", 256, "sweep.data_sizes", minimum=8)
        factor = ds.get("factor", 2)
        if isinstance(factor, bool) or not isinstance(factor, int | float) or factor <= 1:
            raise SpecError(f"[sweep] data_sizes.factor must be a number > 1, got {factor!r}")
        if ds.get("max", "pool") != "pool":
            _integer(ds, "max", 0, "sweep.data_sizes", minimum=8)
    else:
        raise SpecError("[sweep] data_sizes must be a list of integers or {start, factor, max}")
    realizations = _integer(sw, "realizations", 5, "sweep", minimum=1)
    _integer(sw, "root_seed", 0, "sweep")
    _integer(sw, "split_seed", 0, "sweep")
    test_size = sw.get("test_size", 0.1)
    if isinstance(test_size, bool) or not isinstance(test_size, int | float):
        raise SpecError(f"[sweep] test_size must be a sample count or a fraction in (0, 1), got {test_size!r}")
    if isinstance(test_size, float) and not 0 < test_size < 1:
        raise SpecError(
            f"[sweep] test_size = {test_size}: a fraction must lie in (0, 1) (write an integer for a sample count)"
        )
    if isinstance(test_size, int) and test_size < 1:
        raise SpecError(f"[sweep] test_size must be >= 1 sample, got {test_size}")
    if sw.get("loss_key", "mse") not in LOSS_KEYS:
        raise SpecError(f"[sweep] loss_key must be one of {', '.join(LOSS_KEYS)}, got {sw['loss_key']!r}")
    if sw.get("input_norm", "per_feature") not in ("per_feature", "global", "none"):
        raise SpecError(
            f"[sweep] input_norm must be 'per_feature', 'global' or 'none', got {sw['input_norm']!r}"
        )
    if sw.get("target_transform", "none") not in ("none", "log"):
        raise SpecError(f"[sweep] target_transform must be 'none' or 'log', got {sw['target_transform']!r}")
    save = sw.get("save", [])
    if isinstance(save, str):
        save = [save]
    if not isinstance(save, list) or any(k not in SAVE_KINDS for k in save):
        raise SpecError(f"[sweep] save must be a list drawn from {list(SAVE_KINDS)}, got {sw.get('save')!r}")

    models_raw = raw.get("models", [])
    if not models_raw:
        raise SpecError("no [[models]] entries: the grid has no models")
    families = []
    for i, m in enumerate(models_raw):
        _check_keys(m, _MODEL_KEYS - {"pretrained"}, f"models[{i}]")
        if "model" not in m:
            raise SpecError(f"missing key 'model' in [[models]] entry {i}")
        sizes = m.get("sizes")
        size_key = m.get("size_key")
        if (sizes is None) != (size_key is None):
            raise SpecError(f"[[models]] entry {i}: give both size_key and sizes, or neither")
        if sizes is not None and not sizes:
            raise SpecError(f"[[models]] entry {i}: sizes is empty")
        if sizes is not None and not isinstance(sizes, list):
            raise SpecError(f"[[models]] entry {i}: sizes must be a list, got {sizes!r}")
        if sizes is not None and _duplicates(sizes):
            raise SpecError(f"[[models]] entry {i}: sizes lists {_duplicates(sizes)} more than once")
        if not isinstance(m.get("config", {}), dict):
            raise SpecError(f"[[models]] entry {i}: config must be a table of model options")
        if not isinstance(m.get("train", {}), dict):
            raise SpecError(f"[[models]] entry {i}: train must be a table of training settings")
        families.append(
            ModelFamily(
                family=str(m.get("family", m["model"])),
                model=str(m["model"]),
                config=dict(m.get("config", {})),
                size_key=size_key,
                sizes=tuple(sizes) if sizes is not None else (None,),
                train=dict(m.get("train", {})),
            )
        )
    labels = [f.family for f in families]
    if len(set(labels)) != len(labels):
        raise SpecError(f"[[models]] family labels must be unique, got {labels}")

    compute = raw.get("compute")
    if compute is not None:
        _check_keys(compute, _COMPUTE_KEYS, "compute")
        if not compute.get("values"):
            raise SpecError("[compute] values is empty")
        if not isinstance(compute["values"], list) or _duplicates(compute["values"]):
            raise SpecError(f"[compute] values must be a list without repeats, got {compute['values']!r}")
        compute = {"key": str(compute.get("key", "epochs")), "values": list(compute["values"])}

    dataset = str(sw["dataset"])
    if base_dir is not None and not Path(dataset).is_absolute():
        dataset = str((base_dir / dataset).resolve())
    return SweepSpec(
        name=str(sw.get("name", "sweep")),
        dataset=dataset,
        targets=tuple(str(t) for t in targets),
        models=tuple(families),
        data_sizes=ds,
        realizations=realizations,
        root_seed=int(sw.get("root_seed", 0)),
        test_size=sw.get("test_size", 0.1),
        split_seed=int(sw.get("split_seed", 0)),
        input_norm=str(sw.get("input_norm", "per_feature")),
        target_transform=str(sw.get("target_transform", "none")),
        device=str(sw.get("device", "cpu")),
        loss_key=str(sw.get("loss_key", "mse")),
        train=dict(raw.get("train", {})),
        compute=compute,
        mode=str(mode),
        save=tuple(save),
    )


def _parse_patch_spec(raw: dict[str, Any], sw: dict[str, Any], base_dir: Path | None) -> SweepSpec:
    """``parse_spec`` for ``mode = "patches"`` (module docstring): PatchConfig recipe, models without a size axis."""
    from scalinglab.training.patch_regression import PatchConfig, model_label

    _check_keys(raw, _TOP_KEYS - {"compute"}, "top level (mode patches)")
    for key in _NOT_PATCH_KEYS:
        if key in sw:
            raise SpecError(f"[sweep] {key} has no meaning in mode 'patches' (the test and validation images are "
                            "those of [train] test_seed and val_seed): remove it")
    for key in ("dataset", "data_sizes"):
        if key not in sw:
            raise SpecError(f"missing key '{key}' in [sweep]")
    ds = sw["data_sizes"]
    if (not isinstance(ds, list) or not ds
            or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in ds)):
        raise SpecError(f"[sweep] data_sizes of a patch study are numbers of training seeds N_data (a list of "
                        f"integers >= 1), got {ds!r}")
    if _duplicates(ds):
        raise SpecError(f"[sweep] data_sizes lists {_duplicates(ds)} more than once")
    realizations = _integer(sw, "realizations", 5, "sweep", minimum=1)
    root_seed = _integer(sw, "root_seed", 0, "sweep")
    save = sw.get("save", [])
    save = [save] if isinstance(save, str) else save
    if not isinstance(save, list) or any(k != "models" for k in save):
        raise SpecError(f"[sweep] save of a patch study may only hold 'models' (every record already keeps its "
                        f"test predictions), got {sw.get('save')!r}")
    device = str(sw.get("device", "cpu"))
    train = dict(raw.get("train", {}))
    if "device" in train:
        raise SpecError("[train] device: set the device with [sweep] device")
    targets = sw.get("targets", train.get("targets", list(PatchConfig.targets)))
    targets = [targets] if isinstance(targets, str) else list(targets)
    if "targets" in sw and "targets" in train and list(train["targets"]) != targets:
        raise SpecError(f"[sweep] targets {targets} and [train] targets {list(train['targets'])} differ: give one")
    train.pop("targets", None)

    def recipe(extra: dict[str, Any], where: str) -> None:
        try:
            PatchConfig.from_dict({**train, **extra, "targets": targets, "device": device})
        except (TypeError, ValueError) as exc:
            raise SpecError(f"{where}: {str(exc).splitlines()[0]}") from None

    recipe({}, "[train]")
    models_raw = raw.get("models", [])
    if not models_raw:
        raise SpecError("no [[models]] entries: the study has no models")
    families = []
    for i, m in enumerate(models_raw):
        _check_keys(m, _MODEL_KEYS - {"size_key", "sizes"}, f"models[{i}] (mode patches: no size axis)")
        if "model" not in m:
            raise SpecError(f"missing key 'model' in [[models]] entry {i}")
        if not isinstance(m.get("config", {}), dict):
            raise SpecError(f"[[models]] entry {i}: config must be a table of model options")
        if not isinstance(m.get("train", {}), dict):
            raise SpecError(f"[[models]] entry {i}: train must be a table of PatchConfig settings")
        if "device" in m.get("train", {}) or "targets" in m.get("train", {}):
            raise SpecError(f"[[models]] entry {i}: train may not set device or targets (set them for the study)")
        recipe(dict(m.get("train", {})), f"[[models]] entry {i} train")
        pretrained = m.get("pretrained")
        if pretrained is not None:
            if not isinstance(pretrained, str) or not pretrained:
                raise SpecError(f"[[models]] entry {i}: pretrained must be a weights name or a file, "
                                f"got {pretrained!r}")
            pretrained = _resolve_weights_path(pretrained, base_dir)
        families.append(ModelFamily(family=str(m.get("family", model_label(str(m["model"]), pretrained))),
                                    model=str(m["model"]), config=dict(m.get("config", {})),
                                    train=dict(m.get("train", {})), pretrained=pretrained))
    labels = [f.family for f in families]
    if len(set(labels)) != len(labels):
        raise SpecError(f"[[models]] labels must be unique, got {labels} (give each variant a family = ...)")
    dataset = str(sw["dataset"])
    if base_dir is not None and not Path(dataset).is_absolute():
        dataset = str((base_dir / dataset).resolve())
    return SweepSpec(name=str(sw.get("name", "patches")), dataset=dataset, targets=tuple(targets),
                     models=tuple(families), data_sizes=[int(n) for n in ds], realizations=realizations,
                     root_seed=root_seed, device=device, train=train, mode="patches", save=tuple(save))


def _resolve_weights_path(pretrained: str, base_dir: Path | None) -> str:
    """A ``pretrained`` that names a file relative to the TOML file becomes absolute; a weights name stays."""
    if base_dir is None or Path(pretrained).expanduser().is_absolute():
        return pretrained
    looks_like_path = "/" in pretrained or pretrained.lower().endswith((".pt", ".pth", ".bin", ".safetensors"))
    candidate = base_dir / pretrained
    return str(candidate.resolve()) if candidate.is_file() or looks_like_path else pretrained


def load_spec(path: str | Path) -> SweepSpec:
    """Read and validate a sweep TOML file (malformed TOML and unknown keys are one-line errors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sweep spec {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"malformed TOML in {path}: {exc}") from None
    return parse_spec(raw, base_dir=path.parent)


@dataclass(frozen=True)
class Task:
    """One unit of work: R realizations of one (model configuration, N_D, target[, compute]) trained together."""

    family: str
    model: str
    model_config: dict[str, Any]
    size_key: str | None
    size_value: Any
    num_train: int
    target: str
    seeds: tuple[int, ...]
    train: dict[str, Any]
    compute_key: str | None = None
    compute_value: Any = None
    target_transform: str = "none"
    mode: str = "regress"  # "generate": ``target`` is a comma-joined list of the generator's input parameters
    # realization index of seeds[0]: > 0 for the realizations added when a finished sweep is extended
    first_realization: int = 0
    # mode "patches": pretrained weights of the model (a torchvision weights name or a local file)
    pretrained: str | None = None

    @property
    def targets(self) -> list[str]:
        """The task's target names (a generator or patch task has all of them here)."""
        return self.target.split(",") if self.mode in ("generate", "patches") else [self.target]

    @property
    def point_key(self) -> str:
        """Hash of the design point without its seeds: the same for every realization batch of one point."""
        return point_key(asdict(self))

    @property
    def task_id(self) -> str:
        """Hash of the resolved task configuration (includes the seeds, hence the realizations)."""
        d = asdict(self)
        for key, default in (("target_transform", "none"), ("mode", "regress"), ("first_realization", 0),
                             ("pretrained", None)):
            if d[key] == default:  # defaults leave ids of older sweeps unchanged
                del d[key]
        blob = json.dumps(d, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]


def point_key(task: dict[str, Any]) -> str:
    """:attr:`Task.point_key` of a task dict as stored in a record file (older files lack later keys)."""
    d = {k: v for k, v in task.items() if k not in ("seeds", "first_realization")}
    if d.get("pretrained", None) is None:  # a later key: absent from older record files
        d.pop("pretrained", None)
    d.setdefault("target_transform", "none")
    d.setdefault("mode", "regress")
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:20]


def expand_tasks(spec: SweepSpec, pool_size: int) -> list[Task]:
    """All tasks of a sweep, in a deterministic order (small models and small N_D first).

    Seeds are derived per (family, size, N_D, realization) from ``root_seed`` with SeedSequence, so any point
    can be rerun alone; the same realization uses the same training subset for every target.
    """
    if spec.mode == "patches":
        return _expand_patch_tasks(spec, pool_size)
    sizes = spec.resolved_data_sizes(pool_size)
    compute_values = spec.compute["values"] if spec.compute else [None]
    # a generator takes all parameters at once: one task per (model, N_D), its "target" the joined names
    task_targets = [",".join(spec.targets)] if spec.mode == "generate" else list(spec.targets)
    tasks = []
    for fam in spec.models:
        for size_value, cfg in fam.configs():
            for n in sizes:
                seeds = tuple(
                    derive_seed(spec.root_seed, fam.family, str(size_value), n, r) for r in range(spec.realizations)
                )
                for cv in compute_values:
                    train = {**spec.train, **fam.train}
                    if cv is not None:
                        train[spec.compute["key"]] = cv
                    for target in task_targets:
                        tasks.append(
                            Task(
                                family=fam.family, model=fam.model, model_config=cfg, size_key=fam.size_key,
                                size_value=size_value, num_train=n, target=target, seeds=seeds, train=train,
                                compute_key=spec.compute["key"] if spec.compute else None, compute_value=cv,
                                target_transform=spec.target_transform, mode=spec.mode,
                            )
                        )
    if not tasks:
        raise SpecError("the sweep grid is empty")
    return tasks


def _expand_patch_tasks(spec: SweepSpec, num_training_seeds: int) -> list[Task]:
    """One task per (model, N_data) holding its repeats; the run seed of repeat r is the one
    ``run_patch_study`` uses (``patch_regression.run_seed``), the same for every model (paired comparison)."""
    from scalinglab.training.patch_regression import run_seed

    too_big = [n for n in spec.data_sizes if n > num_training_seeds]
    if too_big:
        raise SpecError(f"data_sizes {too_big} exceed the {num_training_seeds} training seeds of the store "
                        "(all seeds but [train] test_seed and val_seed); simulate more seeds")
    tasks = []
    for fam in spec.models:
        for n in spec.data_sizes:
            seeds = tuple(run_seed(n, spec.root_seed, r) for r in range(spec.realizations))
            train = {**spec.train, **fam.train, "targets": list(spec.targets), "device": spec.device}
            tasks.append(Task(family=fam.family, model=fam.model, model_config=dict(fam.config), size_key=None,
                              size_value=None, num_train=int(n), target=",".join(spec.targets), seeds=seeds,
                              train=train, mode="patches", pretrained=fam.pretrained))
    return tasks
