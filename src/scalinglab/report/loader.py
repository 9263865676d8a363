"""Read a sweep results directory without importing the sweep machinery (no torch).

Layout (docs/architecture.md, "Sweep results")::

    spec.toml               the sweep file as given
    resolved_spec.json      the validated specification (``{"spec": {...}, "data_sizes": [...], ...}``)
    environment.json        versions, machine, executor and the timings of every run
    records/<task_id>.json  one file per finished task: ``{"task_id", "task", "records": [...]}``

The report only reads; a file whose name starts with a dot is a temporary file of a killed writer and is
never a finished record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SweepResults:
    """Everything the report needs from one results directory.

    Attributes:
        root: the results directory.
        records: one dict per trained realization (flat, deterministic order).
        resolved_spec: contents of ``resolved_spec.json`` ({} when absent).
        environment: contents of ``environment.json`` ({} when absent).
        spec_text: ``spec.toml`` as given ("" when absent).
        loss_key: the normalized test metric used for the scaling fits (spec ``loss_key``, default "mse").
        sources: the results directories the records came from (one, or several merged by ``load_many``).
    """

    root: Path
    records: list[dict[str, Any]]
    resolved_spec: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    spec_text: str = ""
    loss_key: str = "mse"

    sources: tuple[Path, ...] = ()

    @property
    def name(self) -> str:
        """The sweep name from the resolved spec (the directory name when there is none)."""
        spec = self.resolved_spec.get("spec", {})
        return str(spec.get("name") or self.root.name)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _task_records(obj: Any, path: Path) -> list[dict[str, Any]]:
    """The realization records of one task file (the runner's layout, or a bare list of records)."""
    if isinstance(obj, dict) and isinstance(obj.get("records"), list):
        recs = obj["records"]
    elif isinstance(obj, list):
        recs = obj
    else:
        raise ValueError(f"{path} is not a task record file (expected an object with a 'records' list)")
    for i, rec in enumerate(recs):
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: record {i} is not an object")
        missing = [k for k in ("family", "target", "num_train", "realization") if k not in rec]
        if missing:
            raise ValueError(f"{path}: record {i} lacks the key(s) {', '.join(missing)}")
    return recs


def load_results(results_dir: str | Path) -> SweepResults:
    """Load every finished record and the metadata of a sweep results directory.

    Args:
        results_dir: the directory written by ``scalinglab sweep``.

    Returns:
        The :class:`SweepResults` (``records`` may be empty when no task has finished yet).

    Raises:
        FileNotFoundError: the directory does not exist.
        ValueError: it is not a results directory, or a record file is corrupt.
    """
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {root} does not exist")
    rec_dir = root / "records"
    spec_path = root / "resolved_spec.json"
    if not rec_dir.is_dir() and not spec_path.is_file():
        raise ValueError(f"{root} is not a sweep results directory (no records/ and no resolved_spec.json)")
    resolved = _read_json(spec_path) if spec_path.is_file() else {}
    env_path = root / "environment.json"
    environment = _read_json(env_path) if env_path.is_file() else {}
    toml_path = root / "spec.toml"
    spec_text = toml_path.read_text() if toml_path.is_file() else ""
    records: list[dict[str, Any]] = []
    if rec_dir.is_dir():
        for path in sorted(rec_dir.glob("*.json")):
            if path.name.startswith("."):
                continue  # temporary file of a killed writer
            records.extend(_task_records(_read_json(path), path))
    records.sort(
        key=lambda r: (str(r["family"]), str(r.get("size_value")), str(r["target"]), int(r["num_train"]),
                       str(r.get("compute_value")), int(r["realization"]))
    )
    loss_key = str((resolved.get("spec") or {}).get("loss_key") or "mse")
    return SweepResults(root=root, records=records, resolved_spec=resolved, environment=environment,
                        spec_text=spec_text, loss_key=loss_key, sources=(root,))


def load_many(results_dirs: list[str | Path] | tuple[str | Path, ...]) -> SweepResults:
    """Several results directories as one: their records in the same figures and tables.

    Every record gets ``source`` (its directory's name). A family found in more than one directory is
    renamed ``<directory>/<family>`` there (and its model label likewise), so two sweeps of the same
    architecture stay two curves. The directories must use the same loss.

    Raises:
        ValueError: fewer than two directories, a repeated directory, or different losses.
    """
    if len(results_dirs) < 2:
        raise ValueError("load_many needs at least two results directories")
    roots = [Path(d).resolve() for d in results_dirs]
    if len(set(roots)) != len(roots):
        raise ValueError("the same results directory is given twice")
    loaded = [load_results(d) for d in results_dirs]
    keys = {r.loss_key for r in loaded}
    if len(keys) > 1:
        raise ValueError(f"the results directories use different losses ({', '.join(sorted(keys))}); "
                         "one report compares one loss")
    names = [r.root.name if list(x.root.name for x in loaded).count(r.root.name) == 1 else str(r.root)
             for r in loaded]
    seen: dict[str, int] = {}
    for r in loaded:
        for fam in {str(rec["family"]) for rec in r.records}:
            seen[fam] = seen.get(fam, 0) + 1
    records: list[dict[str, Any]] = []
    targets: list[str] = []
    for r, name in zip(loaded, names, strict=True):
        for rec in r.records:
            rec = dict(rec, source=name)
            if seen[str(rec["family"])] > 1:
                rec["family"] = f"{name}/{rec['family']}"
                if rec.get("model_label"):
                    rec["model_label"] = f"{name}/{rec['model_label']}"
            records.append(rec)
        targets += [t for t in (r.resolved_spec.get("spec") or {}).get("targets") or [] if t not in targets]
    first = loaded[0].resolved_spec
    units: dict[str, str] = {}
    for r in loaded:
        units.update(r.resolved_spec.get("target_units") or {})
    resolved = {"spec": {"name": " + ".join(r.name for r in loaded), "targets": targets,
                         "loss_key": loaded[0].loss_key, "sources": names},
                "target_units": units, "data_sizes": first.get("data_sizes")}
    spec_text = "\n".join(f"# --- {name} ---\n{r.spec_text}" for r, name in zip(loaded, names, strict=True))
    environment = {"sources": {name: r.environment for r, name in zip(loaded, names, strict=True)}}
    return SweepResults(root=loaded[0].root, records=records, resolved_spec=resolved, environment=environment,
                        spec_text=spec_text, loss_key=loaded[0].loss_key, sources=tuple(r.root for r in loaded))
