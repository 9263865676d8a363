"""Parameter maps: dense == naive for cnn_small (random weights, random images, with/without wrap); ROC/AUC."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from scalinglab.analysis.param_map import (
    auc,
    build_window_model,
    check_dense_compatible,
    dense_map,
    naive_map,
    region_analysis,
    region_masks,
    roc_curve,
)


def _random_cnn_small(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    model = build_window_model("cnn_small", conv_padding=0).double()
    for m in model.modules():  # non-trivial batch-norm statistics, so the affine eval map matters
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)
    return model.eval()


@pytest.mark.parametrize("wrap,stride,shape", [(False, 1, (71, 75)), (True, 7, (70, 68)), (True, 3, (64, 64))])
def test_dense_map_equals_naive_map_for_cnn_small(wrap, stride, shape):
    model = _random_cnn_small(1)
    gen = np.random.default_rng(2)
    image = np.where(gen.random(shape) < 0.5, -1.0, 1.0)  # binarized like the TDGL patterns
    dense = dense_map(model, image, window=64, stride=stride, wrap=wrap, input_scale=1.3, input_shift=0.1)
    naive = naive_map(model, image, window=64, stride=stride, wrap=wrap, input_scale=1.3, input_shift=0.1)
    assert dense.shape == naive.shape == (2, *[math.ceil(n / stride) for n in
                                               ((shape[0], shape[1]) if wrap else (shape[0] - 63, shape[1] - 63))])
    np.testing.assert_allclose(dense, naive, atol=1e-5, rtol=0)
    assert np.std(naive[0]) > 1e-3  # the map varies across windows: equality is not between constants


def test_dense_map_matches_naive_on_a_gaussian_image_in_float32():
    model = _random_cnn_small(3).float()
    image = np.random.default_rng(4).standard_normal((80, 80))
    pos = np.array([[0, 0], [5, 79], [40, 13], [79, 79]])  # corners exercise the periodic wrap
    dense = dense_map(model, image, window=64, wrap=True)
    naive = naive_map(model, image, window=64, wrap=True, positions=pos)
    np.testing.assert_allclose(dense[:, pos[:, 0], pos[:, 1]].T, naive, atol=1e-5)


def test_wrap_follows_algorithm_1_window_placement():
    # The map at pixel (i, j) is the model on A[i-32 : i+32, j-32 : j+32] with periodic indices.
    model = _random_cnn_small(5)
    image = np.random.default_rng(6).standard_normal((66, 70))
    i, j = 3, 60
    rows = np.arange(i - 32, i + 32) % 66
    cols = np.arange(j - 32, j + 32) % 70
    patch = torch.as_tensor(image[np.ix_(rows, cols)])[None, None]
    expected = model(patch).detach().numpy()[0]
    np.testing.assert_allclose(dense_map(model, image, window=64)[:, i, j], expected, atol=1e-10)


def test_padded_networks_are_refused_by_the_dense_map():
    model = build_window_model("cnn_small").eval()  # padding=1: window borders see zeros
    with pytest.raises(ValueError, match="zero-pads the window"):
        check_dense_compatible(model)
    train_mode = build_window_model("cnn_small", conv_padding=0)
    with pytest.raises(ValueError, match="training mode"):
        check_dense_compatible(train_mode.train())


def test_auc_matches_the_gaussian_closed_form_and_roc_endpoints():
    gen = np.random.default_rng(7)
    delta = 0.8
    pos = gen.normal(delta, 1.0, 20000)
    neg = gen.normal(0.0, 1.0, 20000)
    from scipy.stats import norm

    assert auc(pos, neg) == pytest.approx(norm.cdf(delta / math.sqrt(2)), abs=0.01)
    fpr, tpr = roc_curve(pos, neg)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc(pos, neg), abs=1e-9)
    assert auc([1, 2], [1, 2]) == 0.5  # ties count one half


def test_region_analysis_on_a_synthetic_map():
    d_map = np.full((64, 64), 1.0)
    d_map[24:40, 24:40] = 1.9
    masks = region_masks(d_map, band=4)
    assert sum(m.sum() for m in masks.values()) == 64 * 64
    assert masks["R1"].sum() == 8 * 8 and masks["R2"].sum() == 16 * 16 - 64
    perfect = region_analysis(d_map, d_map, band=4)
    assert perfect["auc"] == 1.0 and perfect["regions"]["R1"]["median"] == 1.9
    noise = region_analysis(np.random.default_rng(0).normal(1.0, 0.1, (64, 64)), d_map, band=4)
    assert abs(noise["auc"] - 0.5) < 0.1


def test_map_cli_dense_equals_naive_and_refuses_bad_input(tmp_path, capsys):
    from scalinglab.cli import main

    model = _random_cnn_small(8).float()
    ckpt = {"model": "cnn_small", "config": {}, "conv_padding": 0, "state_dict": model.state_dict(),
            "input_scale": 1.0, "input_shift": 0.0, "target_names": ["D", "J"], "target_scale": [0.5, 0.4],
            "target_shift": [1.0, 1.1]}
    torch.save(ckpt, tmp_path / "m.pt")
    image = np.where(np.random.default_rng(9).random((66, 66)) < 0.5, -1.0, 1.0)
    np.save(tmp_path / "img.npy", image)
    for flag, sub in (([], "dense"), (["--naive"], "naive")):
        assert main(["map", str(tmp_path / "m.pt"), str(tmp_path / "img.npy"), "--stride", "11",
                     "--out", str(tmp_path / sub), *flag]) == 0
    dense, naive = np.load(tmp_path / "dense" / "map.npy"), np.load(tmp_path / "naive" / "map.npy")
    assert dense.shape == (2, 6, 6)
    np.testing.assert_allclose(dense, naive, atol=1e-5)
    expected = naive_map(model, image, stride=11)[0] * 0.5 + 1.0  # de-standardised with the checkpoint's scale
    np.testing.assert_allclose(dense[0], expected, atol=1e-5)
    assert (tmp_path / "dense" / "map_D.png").is_file()
    assert main(["map", str(tmp_path / "missing.pt"), str(tmp_path / "img.npy"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
