"""Scaling measurements made anywhere (a CSV / JSON / Parquet table) turned into report records.

One table row is one trained run: a loss and the resource(s) it was trained with, optionally a group
(architecture, dataset, ...), a run id and a weight. Rows that share the group and the resource values are
realizations of the same design point; one row per point is fine (published scaling ladders have one). The
rows become the same records a sweep writes, so ``scalinglab fit`` draws the same report page as
``scalinglab report``: aggregates, automatic power-law / floored-law choice, joint fit and compute optimum.

Mapping (``--x`` only): ``axis="data"`` puts x on the data axis (N_D), ``"model"`` on the model axis (N_M),
``"compute"`` on the compute axis (FLOPs). With ``--x2``: x is the model size N (parameters) and x2 the data
size D (samples or tokens), the two axes of the joint law ``(A/N)^a + (B/D)^b + K``.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from scalinglab.record_status import EXCLUDED_BY_DEFAULT, STATUSES
from scalinglab.report.loader import SweepResults

__all__ = ["measurement_results", "read_table"]

AXES = ("data", "model", "compute")


def _from_columns(columns: dict[str, list[Any]], path: Path) -> list[dict[str, Any]]:
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        raise ValueError(f"{path}: the columns have different lengths ({sorted(lengths)})")
    n = lengths.pop() if lengths else 0
    return [{k: v[i] for k, v in columns.items()} for i in range(n)]


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a ``.csv``, ``.json`` (a list of objects, an object of columns, or ``{"columns", "data"}``)
    or ``.parquet`` (needs pyarrow) file, as dicts of column -> value."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"measurement file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    elif suffix == ".json":
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
            rows = doc
        elif isinstance(doc, dict) and isinstance(doc.get("columns"), list) and isinstance(doc.get("data"), list):
            rows = [dict(zip(doc["columns"], r, strict=True)) for r in doc["data"]]
        elif isinstance(doc, dict) and all(isinstance(v, list) for v in doc.values()):
            rows = _from_columns(doc, path)
        else:
            raise ValueError(f"{path}: expected a list of row objects, an object of columns, or "
                             "{\"columns\": [...], \"data\": [[...], ...]}")
    elif suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ValueError(f"{path}: reading Parquet needs pyarrow (pip install pyarrow); or export the table "
                             "to CSV or JSON") from None
        rows = pq.read_table(path).to_pylist()
    else:
        raise ValueError(f"{path}: unknown table format {suffix!r}; use .csv, .json or .parquet")
    if not rows:
        raise ValueError(f"{path} holds no rows")
    return rows


def _number(row: dict[str, Any], col: str, index: int, *, positive: bool = True) -> float:
    raw = row.get(col)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"row {index + 1}: column {col!r} is not a number ({raw!r})") from None
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"row {index + 1}: column {col!r} must be finite and > 0 (got {raw!r}); "
                         "scaling fits take logarithms")
    return value


def measurement_results(
    rows: list[dict[str, Any]],
    *,
    loss: str,
    x: str,
    x2: str | None = None,
    groups: tuple[str, ...] = (),
    runs: str | None = None,
    weight: str | None = None,
    axis: str = "data",
    name: str = "measurements",
    root: Path | None = None,
    status: str | None = None,
) -> SweepResults:
    """Records of a measurement table in the layout of a sweep's results (see the module docstring).

    Args:
        rows: table rows (``read_table``).
        loss: the loss column (> 0).
        x: the resource column (> 0).
        x2: optional second resource column: then x = model size N, x2 = data size D.
        groups: columns whose values name a curve (architecture, dataset, ...).
        runs: optional run-id column: rows of one point with the same id are an error (duplicated runs).
        weight: optional column of point weights (>= 0; a point's weight is the mean over its runs).
        axis: the axis of x without x2: ``"data"``, ``"model"`` or ``"compute"``.
        name: the study's name (report title).
        root: directory reported as the source.
        status: column of run status flags (``scalinglab.record_status.STATUSES``; default: ``"status"`` when
            the table has that column). A run flagged diverged or not_better_than_mean may have a loss that is
            not a positive number (it is left out of the fits unless flagged runs are included).

    Returns:
        A :class:`~scalinglab.report.loader.SweepResults` whose loss is ``test_normalized.loss``.
    """
    if axis not in AXES:
        raise ValueError(f"--axis must be one of {', '.join(AXES)}, got {axis!r}")
    if status is None and "status" in rows[0]:
        status = "status"
    wanted = ([loss, x] + ([x2] if x2 else []) + ([status] if status else []) + list(groups)
              + ([runs] if runs else []) + ([weight] if weight else []))
    missing = [c for c in dict.fromkeys(wanted) if c not in rows[0]]
    if missing:
        raise ValueError(f"column(s) {', '.join(map(repr, missing))} not in the table; columns: "
                         f"{', '.join(map(str, rows[0]))}")
    records: list[dict[str, Any]] = []
    seen: dict[tuple, set] = {}
    count: dict[tuple, int] = {}
    for i, row in enumerate(rows):
        flag = None
        if status:
            flag = str(row[status]).strip()
            if flag not in STATUSES:
                raise ValueError(f"row {i + 1}: column {status!r} is {row[status]!r}; a status is one of "
                                 f"{', '.join(STATUSES)}")
        if flag in EXCLUDED_BY_DEFAULT:
            try:  # a diverged run's loss may be NaN, inf or missing: it is kept as NaN and left out
                value = _number(row, loss, i)
            except ValueError:
                value = math.nan
        else:
            value = _number(row, loss, i)
        xv = _number(row, x, i)
        x2v = _number(row, x2, i) if x2 else None
        family = "/".join(str(row[g]) for g in groups) if groups else "all"
        key = (family, xv, x2v)
        if runs:
            run_id = str(row[runs])
            if run_id in seen.setdefault(key, set()):
                raise ValueError(f"row {i + 1}: run {run_id!r} appears twice at {x}={xv:g}"
                                 + (f", {x2}={x2v:g}" if x2 else "") + f" ({family})")
            seen[key].add(run_id)
        realization = count.get(key, 0)
        count[key] = realization + 1
        rec: dict[str, Any] = {"task_id": f"row{i + 1}", "family": family, "target": loss, "realization": realization,
                               "test_normalized": {"loss": value}, "source": name}
        if flag is not None:
            rec["status"] = flag
        if weight:
            rec["weight"] = _number(row, weight, i, positive=False)
            if rec["weight"] < 0:
                raise ValueError(f"row {i + 1}: column {weight!r} must be >= 0")
        if x2:
            rec.update(num_params=xv, size_axis="N", size_value=xv, model_label=f"{family} N={xv:g}",
                       num_train=int(round(x2v)))
            if abs(x2v - round(x2v)) > 1e-9 * x2v:
                raise ValueError(f"row {i + 1}: {x2!r} = {x2v!r} is the data size D and must be a whole number")
        elif axis == "data":
            if abs(xv - round(xv)) > 1e-9 * xv:
                raise ValueError(f"row {i + 1}: {x!r} = {xv!r} is a data size and must be a whole number "
                                 "(use --axis compute for a continuous resource)")
            rec.update(num_train=int(round(xv)), model_label=family)
        elif axis == "model":
            rec.update(num_params=xv, size_axis="N", size_value=xv, model_label=family, num_train=1)
        else:
            rec.update(compute_key=x, compute_value=xv, flops=xv, model_label=family, num_train=1)
        records.append(rec)
    labels = {"data": x2 or x if (x2 or axis == "data") else None, "model": x if (x2 or axis == "model") else None,
              "compute": x if axis == "compute" and not x2 else None}
    resolved = {"spec": {"name": name, "targets": [loss], "loss_key": "loss"},
                "axis_labels": {k: v for k, v in labels.items() if v}, "loss_label": loss}
    return SweepResults(root=root or Path("."), records=records, resolved_spec=resolved, environment={},
                        spec_text="", loss_key="loss", sources=())
