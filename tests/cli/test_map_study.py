"""``scalinglab map-study``: a synthetic map campaign and a "brightness" checkpoint whose D estimate is the window
mean (patterns whose pixel value is the true D), so that the region medians, the J truth and the files are known;
refusals of stores that are not map campaigns and of maps whose regions are empty for the window."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from scalinglab.analysis.param_map import build_window_model, inner_mask, map_study, naive_map
from scalinglab.cli import main
from scalinglab.data.store import DatasetStore

SIZE, BORDER, PATCH = 48, 18, 8  # inner 12 x 12, band 4: R1 is the inner 4 x 4 core
D_IN = (0.4, 1.0, 1.9)


def _make_store(path, size=SIZE, border=BORDER, d_in=D_IN, J=2.0):
    """Same layout as ``run_map_campaign``: targets D_in, D_out, J; aux seed, d_map; border in the metadata."""
    store = DatasetStore.create(
        path, input_shape=(1, size, size), target_names=["D_in", "D_out", "J"],
        aux_specs={"seed": ("int32", ()), "d_map": ("float32", (size, size))},
        metadata={"producer": "tdgl", "config": {"kind": "inner_outer", "J": J, "border": border, "D_out": 1.0},
                  "border": border})
    maps = np.full((len(d_in), size, size), 1.0, dtype=np.float32)
    for k, d in enumerate(d_in):
        maps[k, border:-border, border:-border] = d
    store.append(maps[:, None], np.array([[d, 1.0, J] for d in d_in]),
                 aux={"seed": np.ones(len(d_in), dtype=np.int32), "d_map": maps})
    store.close()
    return maps


def _brightness_checkpoint(path, patch=PATCH):
    """cnn_small with one unpadded 3x3 box-filter stage: D = (weighted) window mean, J = 2 everywhere."""
    model = build_window_model("cnn_small", {"channels": [1], "strides": [1]}, conv_padding=0).eval()
    with torch.no_grad():
        conv, bn = model.features[0], model.features[1]
        conv.weight.fill_(1 / 9)
        bn.running_mean.zero_()
        bn.running_var.fill_(1 - bn.eps)  # exactly the identity in eval mode
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        model.head.weight.copy_(torch.tensor([[1.0], [0.0]]))
        model.head.bias.copy_(torch.tensor([0.0, 2.0]))
    torch.save({"model": "cnn_small", "config": {"channels": [1], "strides": [1]}, "conv_padding": 0,
                "state_dict": model.state_dict(), "input_scale": 1.0, "input_shift": 0.0,
                "target_names": ["D", "J"], "target_scale": [1.0, 1.0], "target_shift": [0.0, 0.0],
                "patch_size": patch}, path)
    return model


def _skip_figures(monkeypatch):
    """Figures are checked once (first test); elsewhere drawing them only costs time."""
    from scalinglab.report import map_study as figs

    for name in ("pattern_grid", "region_boxplots", "roc_figure", "j_boxplots"):
        monkeypatch.setattr(figs, name, lambda *a, **k: None)


def test_map_study_writes_the_paper_4_analysis(tmp_path, capsys, monkeypatch):
    maps = _make_store(tmp_path / "maps")
    model = _brightness_checkpoint(tmp_path / "m.pt")
    out = tmp_path / "study"
    assert main(["map-study", str(tmp_path / "m.pt"), str(tmp_path / "maps"), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "note:" not in printed.err  # cnn_small unpadded: the exact dense map
    for name in ("index.html", "summary.json", "summary.csv", "regions.csv", "maps.npy", "patterns_maps.png",
                 "region_boxplots.png", "roc.png", "J_boxplots.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["method"] == "dense" and summary["settings"]["band"] == PATCH // 2
    rows = {r["D_in"]: r for r in summary["rows"]}
    assert sorted(rows) == list(D_IN)
    for d in D_IN:  # windows wholly inside R1 / R4 read the true D exactly
        assert rows[d]["regions"]["R1"]["median"] == pytest.approx(d, abs=1e-6)
        assert rows[d]["regions"]["R4"]["median"] == pytest.approx(1.0, abs=1e-6)
        assert rows[d]["J_regions"]["all"]["median"] == pytest.approx(2.0, abs=1e-6)
    assert rows[1.0]["auc"] is None and 0.9 < rows[0.4]["auc"] <= 1.0 and 0.9 < rows[1.9]["auc"] <= 1.0
    assert summary["J_true"] == 2.0
    est = np.load(out / "maps.npy")
    assert est.shape == (3, 2, SIZE, SIZE)
    np.testing.assert_allclose(est[0], naive_map(model, maps[0], window=PATCH), atol=1e-5)
    # The same numbers through the batched per-window path, and AUCs equal to the library's on these maps.
    _skip_figures(monkeypatch)
    assert main(["map-study", str(tmp_path / "m.pt"), str(tmp_path / "maps"), "--out", str(tmp_path / "naive"),
                 "--naive", "--batch-size", "100", "--d-in", "1.9", "--quiet"]) == 0
    assert "note:" not in capsys.readouterr().err  # forced, not a fallback
    naive = json.loads((tmp_path / "naive" / "summary.json").read_text())
    assert naive["settings"]["method"] == "naive" and [r["D_in"] for r in naive["rows"]] == [1.9]
    np.testing.assert_allclose(np.load(tmp_path / "naive" / "maps.npy")[0], est[2], atol=1e-5)
    ref = map_study(list(est), list(maps), D_IN, ["D", "J"], PATCH // 2, inner=inner_mask((SIZE, SIZE), BORDER))
    assert [r["auc"] for r in summary["rows"]] == pytest.approx([r["auc"] for r in ref["rows"][:1]] + [None]
                                                                  + [ref["rows"][2]["auc"]])
    csv_rows = (out / "summary.csv").read_text().splitlines()
    assert csv_rows[0].startswith("D_in,D_out,num_patterns,auc,R1_true_D,R1_median_D") and len(csv_rows) == 4
    assert "AUC" in printed.out and "R4 D (true)" in printed.out


def test_map_study_refusals(tmp_path, capsys):
    _make_store(tmp_path / "maps")
    _brightness_checkpoint(tmp_path / "big.pt", patch=16)  # band 8: the 12-px inner region has no R1
    code = main(["map-study", str(tmp_path / "big.pt"), str(tmp_path / "maps"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "R1" in err[0] and "48x48" in err[0] and "12x12 inner region" in err[0] and "window 16" in err[0]
    assert not (tmp_path / "o").exists()  # refused before anything is written
    uniform = DatasetStore.create(tmp_path / "uniform", input_shape=(1, SIZE, SIZE), target_names=["D", "J"])
    uniform.append(np.zeros((1, 1, SIZE, SIZE)), np.array([[1.0, 2.0]]))
    uniform.close()
    _brightness_checkpoint(tmp_path / "m.pt")
    code = main(["map-study", str(tmp_path / "m.pt"), str(tmp_path / "uniform"), "--out", str(tmp_path / "o")])
    assert code == 2 and "is not a map campaign" in capsys.readouterr().err
    code = main(["map-study", str(tmp_path / "m.pt"), str(tmp_path / "maps"), "--d-in", "0.7", "--out",
                 str(tmp_path / "o")])
    assert code == 2 and "no pattern" in capsys.readouterr().err


def test_map_study_notes_the_batched_path_for_a_padded_network(tmp_path, capsys, monkeypatch):
    _skip_figures(monkeypatch)
    _make_store(tmp_path / "maps", d_in=(1.9,))
    model = build_window_model("cnn_small", {"channels": [2], "strides": [1]}).eval()  # padding 1
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_var.fill_(1.0)
    torch.save({"model": "cnn_small", "config": {"channels": [2], "strides": [1]}, "conv_padding": None,
                "state_dict": model.state_dict(), "target_names": ["D", "J"], "patch_size": PATCH}, tmp_path / "p.pt")
    assert main(["map-study", str(tmp_path / "p.pt"), str(tmp_path / "maps"), "--stride", "2", "--quiet",
                 "--out", str(tmp_path / "o")]) == 0
    err = capsys.readouterr().err
    assert "note: no exact dense map" in err and "zero-pads" in err and "batched per-window" in err
    est = np.load(tmp_path / "o" / "maps.npy")
    assert est.shape == (1, 2, SIZE // 2, SIZE // 2)
    image = DatasetStore.open(tmp_path / "maps").inputs()[0, 0]
    np.testing.assert_allclose(est[0], naive_map(model, image, window=PATCH, stride=2), atol=1e-6)


def test_map_study_warns_when_training_and_map_physics_differ(tmp_path, capsys, monkeypatch):
    _skip_figures(monkeypatch)
    solver = {"dt": 0.1, "ramp_time": 400.0, "k0": "absorbed_x2.5", "size": [SIZE, SIZE]}
    maps = DatasetStore.create(tmp_path / "maps", input_shape=(1, SIZE, SIZE), target_names=["D_in", "D_out", "J"],
                               aux_specs={"seed": ("int32", ()), "d_map": ("float32", (SIZE, SIZE))},
                               metadata={"config": {"kind": "inner_outer", "J": 2.0, "solver": solver},
                                         "border": BORDER})
    d = np.ones((1, SIZE, SIZE), dtype=np.float32)
    d[:, BORDER:-BORDER, BORDER:-BORDER] = 1.9
    maps.append(d[:, None], np.array([[1.9, 1.0, 2.0]]), aux={"seed": np.ones(1, dtype=np.int32), "d_map": d})
    maps.close()
    for name, k0 in (("same", "absorbed_x2.5"), ("other", "lattice")):
        train = DatasetStore.create(tmp_path / f"train_{name}", input_shape=(1, 8, 8), target_names=["D", "J"],
                                    metadata={"config": {"solver": {**solver, "k0": k0, "size": [64, 64]}}})
        train.close()
        (tmp_path / name / "checkpoints").mkdir(parents=True)
        (tmp_path / name / "study.json").write_text(json.dumps({"data": str(tmp_path / f"train_{name}")}))
        _brightness_checkpoint(tmp_path / name / "checkpoints" / "m.pt")
        assert main(["map-study", str(tmp_path / name / "checkpoints" / "m.pt"), str(tmp_path / "maps"), "--quiet",
                     "--out", str(tmp_path / f"out_{name}")]) == 0
        err = capsys.readouterr().err
        settings = json.loads((tmp_path / f"out_{name}" / "summary.json").read_text())["settings"]
        if name == "same":  # only the grid size differs: no warning
            assert "warning" not in err and settings["solver_mismatch"] == {}
        else:
            assert "warning: the model was trained on" in err and "k0 'lattice' vs 'absorbed_x2.5'" in err
            assert settings["solver_mismatch"] == {"k0": ["lattice", "absorbed_x2.5"]}
