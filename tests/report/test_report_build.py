"""The scaling-study report on synthetic sweeps with known power laws."""

from __future__ import annotations

import csv
import json
import struct
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from scalinglab.report import ReportOptions, analyze, build_report, load_results
from scalinglab.report import figures as report_figures
from scalinglab.report.analysis import FLOAT32_LOSS_RESOLUTION, fit_rows
from scalinglab.report.build import report_notes

sys.path.insert(0, str(Path(__file__).parent))
from report_synthetic import CHROMIUM, TRUE_EXPONENTS, render_in_chromium, write_results  # noqa: E402

TARGETS = ("theta", "J", "D")
WIDTHS = (4, 64)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FAST = ReportOptions(num_bootstrap=400, num_saturating_bootstrap=20)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """2 model sizes x 3 targets x 6 N_D x 5 realizations, lognormal noise sigma = 0.3; the built report."""
    root = tmp_path_factory.mktemp("report")
    results = write_results(root / "results", widths=WIDTHS, num_realizations=5, noise=0.3, seed=0)
    index = build_report(results, root / "out", options=FAST, quiet=True)
    return results, index


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _num_colors(img: np.ndarray) -> int:
    """Distinct RGB colors of an image ``[H, W, 3 or 4]`` in [0, 1], quantized to 32 levels per channel."""
    q = (img[..., :3] * 31).round().astype(np.int64)
    return int(np.unique(q[..., 0] * 1024 + q[..., 1] * 32 + q[..., 2]).size)


def test_expected_files_exist(report):
    _, index = report
    out = index.parent
    expected = {"index.html", "fits.csv", "fits.json", "points.csv", "loss_vs_data.png", "gm_vs_realizations.png",
                "exponents_vs_model_size.png", "loss_vs_model_size.png"}
    expected |= {f"loss_distributions_{t}.png" for t in TARGETS}
    present = {p.name for p in out.iterdir()}
    assert expected <= present, expected - present
    # the sweep has 2 model sizes and no compute axis: no alpha_M trend, no FLOPs figure
    assert "exponents_vs_data_size.png" not in present
    assert "loss_vs_compute.png" not in present


def test_fits_recover_true_exponents(report):
    _, index = report
    doc = json.loads((index.parent / "fits.json").read_text())
    rows = [r for r in doc["fits"] if r["axis"] == "data" and r["law"] == "power_law"]
    assert len(rows) == len(TARGETS) * len(WIDTHS)
    for r in rows:
        truth = TRUE_EXPONENTS[r["target"]][WIDTHS.index(r["size_value"])]
        assert r["exponent_lo"] < r["exponent"] < r["exponent_hi"]
        assert abs(r["exponent"] - truth) < 0.2, (r["model"], r["target"], r["exponent"], truth)
        assert 0.0 < r["exponent_stderr"] < 0.3
    summary = {(r["model"], r["target"]): r for r in doc["power_law"]}
    assert len(summary) == len(rows)
    assert summary[("fcn_l3 width=64", "theta")]["fit_range"] == [256, 4096]
    with open(index.parent / "fits.csv") as fh:
        csv_rows = list(csv.DictReader(fh))
    assert len(csv_rows) == len(doc["fits"])
    trends = [r for r in doc["fits"] if r["law"] == "log_trend"]
    assert {r["target"] for r in trends} == set(TARGETS)
    assert all(r["n0"] == 1e6 and r["slope_a"] is not None for r in trends)


def test_points_near_float32_resolution_are_flagged(report):
    """theta at width 64 reaches ~1.1e-6 < 10 x 1.9e-7 at N_D = 8192: flagged and left out of the fit."""
    _, index = report
    doc = json.loads((index.parent / "fits.json").read_text())
    row = next(r for r in doc["fits"] if r["axis"] == "data" and r["target"] == "theta" and r["size_value"] == 64)
    assert row["flagged_precision"] == "8192"
    assert row["fit_max"] == 4096
    flagged = [p for p in doc["points"] if p["near_float32_resolution"]]
    assert [(p["target"], p["size_value"], p["num_train"]) for p in flagged] == [("theta", 64, 8192)]
    assert all(p["geometric_mean"] < 10 * FLOAT32_LOSS_RESOLUTION for p in flagged)


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]


def test_html_is_self_contained(report):
    import base64

    _, index = report
    text = index.read_text()
    parser = _Collector()
    parser.feed(text)
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
    refs = [(t, k, v) for t, k, v in parser.attrs if k in ("src", "href", "srcset", "data")]
    assert refs, "no embedded figures"
    for tag, key, value in refs:
        assert tag == "img" and key == "src" and value.startswith("data:image/png;base64,"), (tag, key, value[:60])
    assert "url(" not in text and "@import" not in text
    pngs = sorted(index.parent.glob("*.png"))
    embedded = [base64.b64decode(v.split(",", 1)[1]) for _, _, v in refs]
    assert len(embedded) == len(pngs)
    assert {bytes(e) for e in embedded} == {p.read_bytes() for p in pngs}
    for needle in ("alpha_D", "Resolved specification", "Environment", "Timings", "fcn_l3 width=64", "spec.toml"):
        assert needle in text


def test_figures_are_valid_non_blank_pngs(report):
    import matplotlib.image as mpimg

    _, index = report
    for path in index.parent.glob("*.png"):
        width, height = _png_size(path.read_bytes())
        assert width > 300 and height > 250, path.name
        img = mpimg.imread(path)  # (H, W, 4) floats in [0, 1]
        assert img.shape[:2] == (height, width)
        # a drawn figure has ink: a sizeable fraction of non-white pixels, in several shades
        ink = (img[..., :3] < 0.9).any(axis=-1).mean()
        assert 0.01 < ink < 0.8, (path.name, ink)
        assert _num_colors(img) > 20, path.name


def test_low_noise_analysis_recovers_exponents_and_trend(tmp_path):
    """sigma = 0.05: alpha_D within 0.05 of the truth and the alpha_D-vs-N_M slope within 0.05 of its value."""
    results = load_results(write_results(tmp_path / "r", noise=0.05, seed=3))
    analysis = analyze(results, FAST)
    for c in analysis.data_curves:
        truth = TRUE_EXPONENTS[c.target][WIDTHS.index(c.size_value)]
        assert abs(c.power_law.exponent_ - truth) < 0.05
    for t in analysis.data_trends:
        lo, hi = TRUE_EXPONENTS[t.target]
        slope = (hi - lo) / np.log10(t.sizes[1] / t.sizes[0])  # exact for 2 sizes
        assert abs(t.line.slope_ - slope) < 0.05, (t.target, t.line.slope_, slope)
        assert abs(t.line.predict(t.sizes)[0] - np.array([lo, hi])).max() < 0.05
        assert t.slope_interval[0] < t.line.slope_ < t.slope_interval[1]


def test_model_and_compute_axes(tmp_path):
    """3 widths and a compute axis: alpha_M fits, their N_D trend, saturating fits in FLOPs, and the figures."""
    results = load_results(write_results(tmp_path / "r", widths=(4, 16, 64), data_sizes=(256, 1024, 4096),
                                         compute_values=(5, 10, 20, 40, 80), exponents={"J": (1.0, 1.2, 1.4)}))
    analysis = analyze(results, FAST)
    assert analysis.has_compute_axis
    assert all(c.power_law is not None for c in analysis.model_curves)
    assert {t.axis for t in analysis.model_trends} == {"alpha_M vs N_D"}
    assert all(t.line is not None for t in analysis.model_trends)
    assert len(analysis.compute_curves) == 9 and all(c.saturating is not None for c in analysis.compute_curves)
    # loss = base * (1 + 20 / epochs): the saturating exponent in FLOPs (proportional to epochs) is near 1
    alphas = np.array([c.saturating.exponent_ for c in analysis.compute_curves])
    assert 0.6 < np.median(alphas) < 1.6
    # joint L(N_M, N_D) per compute value: 3 widths x 3 N_D; data exponents of the synthetic law are 1.0..1.4
    assert len(analysis.joint_fits) == 5 and all(j.fit is not None for j in analysis.joint_fits)
    rows = fit_rows(analysis)
    assert {r["law"] for r in rows} == {"power_law", "saturating", "log_trend", "joint", "auto"}
    for builder in (report_figures.loss_vs_compute, report_figures.exponents_vs_data_size):
        (fig,) = builder(analysis, tmp_path)
        _png_size(fig.path.read_bytes())


def test_diverged_realizations_and_a_family_without_size_axis(tmp_path):
    """NaN losses are left out and counted; a fixed-size family (resnet18) gets its own alpha_D."""
    res = write_results(tmp_path / "r", widths=(4, 64), data_sizes=(256, 512, 1024, 2048), num_realizations=3)
    for n in (256, 512, 1024, 2048):
        recs = []
        for r in range(3):
            loss = 0.5 * n**-1.1 * (1 + 0.2 * r)
            if n == 512 and r == 0:
                loss = float("nan")  # a diverged realization
            recs.append({"family": "resnet18", "model": "resnet18", "model_label": "resnet18", "size_axis": None,
                         "size_value": None, "num_params": 11_000_000, "target": "J", "num_train": n,
                         "realization": r, "test_normalized": {"mse": loss}, "wall_time_s": 1.0})
        (res / "records" / f"res{n}.json").write_text(json.dumps({"task_id": f"res{n}", "task": {}, "records": recs}))
    analysis = analyze(load_results(res), FAST)
    point = next(p for p in analysis.points if p.family == "resnet18" and p.num_train == 512)
    assert point.num_excluded == 1 and point.losses.size == 2
    curve = next(c for c in analysis.data_curves if c.family == "resnet18")
    assert abs(curve.power_law.exponent_ - 1.1) < 0.05
    notes = " ".join(report_notes(analysis))
    assert "1 realization(s) with a NaN" in notes and "resnet18 J N_D=512: 1" in notes
    assert "fcn_l3 (2)" in notes and "resnet18 (1)" not in notes  # a fixed-size family needs no alpha_M
    (fig,) = report_figures.exponents_vs_model_size(analysis, tmp_path)  # resnet18 drawn as a single marker
    _png_size(fig.path.read_bytes())


def test_empty_results_give_a_clear_error(tmp_path):
    (tmp_path / "records").mkdir()
    with pytest.raises(ValueError, match="no finished records"):
        build_report(tmp_path, tmp_path / "out", quiet=True)


def test_bad_inputs(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_report(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "not_results").mkdir()
    with pytest.raises(ValueError, match="not a sweep results directory"):
        load_results(tmp_path / "not_results")
    res = write_results(tmp_path / "r", widths=(4,), data_sizes=(256, 512, 1024), num_realizations=2)
    (res / "records" / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json is not valid JSON"):
        load_results(res)
    with pytest.raises(ValueError, match="confidence"):
        ReportOptions(confidence=1.5)


def test_temporary_files_of_a_killed_writer_are_ignored(tmp_path):
    res = write_results(tmp_path / "r", widths=(4,), data_sizes=(256, 512, 1024), num_realizations=2)
    n = len(load_results(res).records)
    (res / "records" / ".t99999.json.abc.tmp").write_text("{half a rec")
    (res / "records" / ".t99998.json").write_text("{half a rec")
    assert len(load_results(res).records) == n


def test_cli_report(tmp_path, capsys):
    from scalinglab.cli import main

    res = write_results(tmp_path / "r", widths=(8,), data_sizes=(256, 512, 1024, 2048), num_realizations=3,
                        exponents={"J": (1.1,)})
    assert main(["report", str(res), "--out", str(tmp_path / "rep"), "--bootstrap", "50", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "alpha_D" in out and str(tmp_path / "rep" / "index.html") in out
    assert main(["report", str(tmp_path / "nowhere"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install -y chromium)")
def test_index_renders_in_headless_chromium(report, tmp_path):
    """Render index.html in a real browser; the screenshot must show a page with figures, not a blank one."""
    _, index = report
    size, ink, colors, stderr = render_in_chromium(index, tmp_path)
    assert size == (1400, 3000), stderr
    # text, tables and the colored plot markers of the embedded figures
    assert ink > 0.02 and colors > 50, (ink, colors)
