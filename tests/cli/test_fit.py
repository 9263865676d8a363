"""`scalinglab fit`: scaling laws for measurements made anywhere (CSV / JSON tables), one or many runs per point."""

import csv
import json

import numpy as np
import pytest

from scalinglab.cli import main
from scalinglab.stats.compute_optimal import FlopModel, _optimum
from scalinglab.stats.synthetic import JointTruth, joint_single_run


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """A published-style ladder: one run per (N, D), known (E, A, B, alpha, beta)."""
    path = tmp_path_factory.mktemp("fit") / "ladder.csv"
    nm, nd, loss = joint_single_run(np.random.default_rng(0), JointTruth())
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["arch", "params", "tokens", "loss"])
        for n, d, v in zip(nm, nd, loss, strict=True):
            w.writerow(["toy", f"{n:.8g}", int(round(d)), f"{v:.8f}"])
    return path


def test_fit_joint_ladder_with_compute_optimum(ladder, tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["fit", str(ladder), "--loss", "loss", "--x", "params", "--x2", "tokens", "--group", "arch",
                 "--compute", "1e19", "--out", str(out), "--bootstrap", "200", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    joint = next(r for r in doc["fits"] if r["law"] == "joint")
    truth = JointTruth()
    assert joint["resampling"] == "points"
    assert joint["exponent_model_lo"] < truth.alpha < joint["exponent_model_hi"]
    assert joint["exponent_lo"] < truth.beta < joint["exponent_hi"]
    opt = next(r for r in doc["fits"] if r["law"] == "joint optimum")
    n_true = float(_optimum(truth.params(), np.asarray(1e19), FlopModel())[0])
    assert opt["n_model_opt_lo"] < n_true < opt["n_model_opt_hi"]
    assert (out / "index.html").is_file() and (out / "compute_frontier.png").is_file()
    assert (out / "fit_residuals.png").is_file()


def test_fit_one_curve_from_json_with_replicates(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = [{"n": int(n), "mse": float(3 * n**-0.8 * np.exp(0.2 * rng.standard_normal())), "seed": s}
            for n in 100 * 2 ** np.arange(7) for s in range(5)]
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(rows))
    assert main(["fit", str(path), "--loss", "mse", "--x", "n", "--runs", "seed", "--out", str(tmp_path / "o"),
                 "--bootstrap", "200", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "auto" in out and "report:" in out
    doc = json.loads((tmp_path / "o" / "fits.json").read_text())
    auto = next(r for r in doc["fits"] if r["law"] == "auto")
    assert auto["resampling"] == "realizations" and auto["exponent_lo"] < 0.8 < auto["exponent_hi"]
    assert auto["realizations"] == 5


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ("n,loss\n1,0.5\n2,0.4\n", ["--loss", "mse", "--x", "n"], "column(s) 'mse' not in the table"),
        ("n,loss\n1,0.5\n2,-0.4\n", ["--loss", "loss", "--x", "n"], "row 2: column 'loss' must be finite and > 0"),
        ("n,loss\n1,abc\n", ["--loss", "loss", "--x", "n"], "row 1: column 'loss' is not a number"),
        ("n,loss,r\n1,0.5,0\n1,0.4,0\n", ["--loss", "loss", "--x", "n", "--runs", "r"], "run '0' appears twice"),
        ("n,loss\n1,0.5\n", ["--loss", "loss", "--x", "n", "--compute", "1e9"], "--compute needs --x2"),
    ],
)
def test_bad_tables_fail_with_one_line(tmp_path, capsys, content, args, message):
    path = tmp_path / "t.csv"
    path.write_text(content)
    assert main(["fit", str(path), *args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_missing_file_and_unknown_format(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "none.csv"), "--loss", "l", "--x", "n", "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "t.xlsx").write_text("x")
    assert main(["fit", str(tmp_path / "t.xlsx"), "--loss", "l", "--x", "n", "--out", str(tmp_path)]) == 2
    assert "unknown table format" in capsys.readouterr().err


def test_fit_reads_parquet_like_csv(ladder, tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    with open(ladder, newline="") as fh:
        rows = list(csv.DictReader(fh))
    table = pa.table({"arch": [r["arch"] for r in rows], "params": [float(r["params"]) for r in rows],
                      "tokens": [int(r["tokens"]) for r in rows], "loss": [float(r["loss"]) for r in rows]})
    pq.write_table(table, tmp_path / "ladder.parquet")
    fits = {}
    for src in (ladder, tmp_path / "ladder.parquet"):
        assert main(["fit", str(src), "--loss", "loss", "--x", "params", "--x2", "tokens", "--out",
                     str(tmp_path / src.suffix[1:]), "--bootstrap", "50", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        fits[src.suffix] = next(r for r in doc["fits"] if r["law"] == "joint")
    assert fits[".parquet"]["exponent"] == pytest.approx(fits[".csv"]["exponent"], rel=1e-9)
    assert fits[".parquet"]["exponent_model"] == pytest.approx(fits[".csv"]["exponent_model"], rel=1e-9)


def test_status_column_leaves_flagged_runs_out_with_a_count(tmp_path, capsys):
    rng = np.random.default_rng(3)
    path = tmp_path / "curve.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["n", "mse", "seed", "status"])
        for n in (256, 512, 1024, 2048, 4096):
            for seed in range(4):
                status, loss = "ok", f"{5.0 * n ** -1.0 * np.exp(0.2 * rng.standard_normal()):.6g}"
                if (n, seed) == (512, 0):
                    status, loss = "diverged", "nan"  # a diverged run's loss need not be a number
                if (n, seed) == (1024, 1):
                    status, loss = "not_better_than_mean", "1.4"
                w.writerow([n, loss, seed, status])
    out = tmp_path / "rep"
    assert main(["fit", str(path), "--loss", "mse", "--x", "n", "--runs", "seed", "--out", str(out),
                 "--bootstrap", "100", "--quiet"]) == 0
    page = (out / "index.html").read_text()
    assert "2 of 20 realizations excluded from the fits by their status: 1 diverged" in page
    points = list(csv.DictReader(open(out / "points.csv", newline="")))
    assert {int(p["num_train"]): int(p["realizations"]) for p in points} == {256: 4, 512: 3, 1024: 3, 2048: 4,
                                                                            4096: 4}
    assert main(["fit", str(path), "--loss", "mse", "--x", "n", "--runs", "seed", "--out", str(tmp_path / "all"),
                 "--bootstrap", "100", "--quiet", "--include-flagged"]) == 0
    points = list(csv.DictReader(open(tmp_path / "all" / "points.csv", newline="")))
    assert {int(p["num_train"]): int(p["realizations"]) for p in points}[1024] == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("n,mse,status\n256,0.1,fine\n512,0.05,ok\n1024,0.02,ok\n2048,0.01,ok\n")
    capsys.readouterr()
    assert main(["fit", str(bad), "--loss", "mse", "--x", "n", "--out", str(tmp_path / "b")]) == 2
    assert "row 1: column 'status' is 'fine'" in capsys.readouterr().err
