"""Map study (paper 4 Sec. III B): region medians and AUC on synthetic maps with a known answer; empty-region
refusal; the batched per-window path equals literal per-window evaluation for padded torchvision backbones."""

import numpy as np
import pytest
import torch
from torch import nn

from scalinglab.analysis.param_map import (
    auc,
    check_regions,
    dense_map,
    inner_mask,
    map_method,
    map_study,
    naive_map,
    parameter_map,
    per_window_map,
    roc_curve,
)

SIZE, BORDER, WINDOW, BAND = 48, 18, 8, 4  # inner 12 x 12: R1 is its 4 x 4 core


class MeanModel(nn.Module):
    """Window -> (mean pixel value, 2.0): no dense form (not a features/head layout), so maps go the naive way."""

    def __init__(self):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3)) + self.dummy
        return torch.stack([m, torch.full_like(m, 2.0)], dim=1)


def _mean_sequential() -> nn.Module:
    """The same window mean as an exact dense-able layout: AdaptiveAvgPool2d(1), Flatten, Linear(1, 2)."""
    lin = nn.Linear(1, 2).double()
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0], [0.0]]))
        lin.bias.copy_(torch.tensor([0.0, 2.0]))
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), lin).eval()


def _window_means(image: np.ndarray, window: int) -> np.ndarray:
    """Independent reference: mean of the periodic window image[i-w/2 : i+w/2, j-w/2 : j+w/2] at every pixel."""
    h, w = image.shape
    tiled = np.pad(image, window, mode="wrap")
    c = np.pad(tiled.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    r0 = np.arange(h)[:, None] - window // 2 + window
    c0 = np.arange(w)[None, :] - window // 2 + window
    s = c[r0 + window, c0 + window] - c[r0, c0 + window] - c[r0 + window, c0] + c[r0, c0]
    return s / window**2


def _pairwise_auc(pos, neg) -> float:
    pos, neg = np.ravel(pos)[:, None], np.ravel(neg)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


def _d_map(d_in: float, d_out: float = 1.0) -> np.ndarray:
    d = np.full((SIZE, SIZE), d_out)
    d[BORDER:-BORDER, BORDER:-BORDER] = d_in
    return d


def test_study_of_a_brightness_model_recovers_region_medians_and_auc():
    # "Patterns" whose pixel value is the true D: a window-mean model reads D exactly inside R1 and R4.
    d_ins = [0.4, 1.0, 1.9, 1.9]
    seeds = [1, 1, 1, 2]
    gen = np.random.default_rng(0)
    images = [_d_map(d) + (0.05 * gen.standard_normal((SIZE, SIZE)) if s == 2 else 0) for d, s in zip(d_ins, seeds)]
    model = MeanModel()
    assert map_method(model)[0] == "naive"
    # Rounded so that windows with equal inner fractions tie exactly in both computations.
    ests = [np.round(parameter_map(model, img, window=WINDOW, batch_size=97), 9) for img in images]
    inner = inner_mask((SIZE, SIZE), BORDER)
    study = map_study(ests, [_d_map(d) for d in d_ins], d_ins, ["D", "J"], BAND, window=WINDOW, inner=inner,
                      seeds=seeds, J_true=2.0)
    rows = {r["D_in"]: r for r in study["rows"]}
    assert list(rows) == [0.4, 1.0, 1.9] and rows[1.9]["num_patterns"] == 2 and rows[1.9]["seeds"] == [1, 2]
    r = rows[0.4]
    assert r["regions"]["R1"]["median"] == pytest.approx(0.4) and r["regions"]["R4"]["median"] == pytest.approx(1.0)
    assert r["regions"]["R1"]["true_D"] == pytest.approx(0.4) and r["regions"]["R3"]["true_D"] == 1.0
    assert 0.4 < r["regions"]["R2"]["median"] < r["regions"]["R3"]["median"] < 1.0  # boundary blur
    # AUC against an independent computation (window means by cumulative sums, pairwise comparison); with
    # D_in < D_out the outer region is the positive class.
    ref = np.round(_window_means(images[0], WINDOW), 9)
    assert r["positive"] == "outer"
    assert r["auc"] == pytest.approx(_pairwise_auc(ref[~inner], ref[inner]), abs=1e-12)
    assert 0.8 < r["auc"] < 1.0  # not trivially separable: boundary windows overlap
    means = [np.round(_window_means(images[k], WINDOW), 9) for k in (2, 3)]
    pooled, pooled_out = np.concatenate([m[inner] for m in means]), np.concatenate([m[~inner] for m in means])
    assert rows[1.9]["positive"] == "inner"
    assert rows[1.9]["auc"] == pytest.approx(_pairwise_auc(pooled, pooled_out), abs=1e-12)
    assert rows[1.0]["auc"] is None and rows[1.0]["roc"] is None  # D_in = D_out: no positive class
    assert rows[1.0]["regions"]["R1"]["median"] == pytest.approx(1.0)
    fpr, tpr = rows[1.9]["roc"]["fpr"], rows[1.9]["roc"]["tpr"]
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert rows[1.9]["J_regions"]["all"]["median"] == 2.0 and study["J_true"] == 2.0
    # A model that inverts the brightness (estimates 2 - D) must get AUC = 1 - AUC.
    flipped = [np.stack([2.0 - e[0], e[1]]) for e in ests]
    inv = map_study(flipped, [_d_map(d) for d in d_ins], d_ins, ["D", "J"], BAND, inner=inner)
    assert inv["rows"][0]["auc"] == pytest.approx(1 - r["auc"], abs=1e-12)


def test_dense_and_batched_naive_agree_for_the_mean_model():
    img = _d_map(1.9) + np.random.default_rng(1).standard_normal((SIZE, SIZE))
    seq = _mean_sequential()
    assert map_method(seq) == ("dense", None)
    dense = parameter_map(seq, img, window=WINDOW)
    np.testing.assert_allclose(dense[0], _window_means(img, WINDOW), atol=1e-12)
    np.testing.assert_allclose(parameter_map(MeanModel(), img, window=WINDOW, batch_size=50), dense, atol=1e-12)


def test_roc_endpoints_and_auc_for_identical_and_separated_scores():
    x = np.random.default_rng(2).normal(size=500)
    fpr, tpr = roc_curve(x, x)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    np.testing.assert_allclose(fpr, tpr)  # identical distributions: the diagonal
    assert auc(x, x) == 0.5
    assert auc(x + 100, x) == 1.0 and auc(x, x + 100) == 0.0
    fpr, tpr = roc_curve(x + 100, x)
    assert np.trapezoid(tpr, fpr) == 1.0


@pytest.mark.parametrize("size,border,band,empty", [(48, 18, 6, "R1"), (48, 23, 4, "R1"), (40, 4, 4, "R4")])
def test_regions_empty_for_the_band_are_refused_naming_the_sizes(size, border, band, empty):
    d = np.full((size, size), 1.0)
    d[border:-border, border:-border] = 1.9
    with pytest.raises(ValueError, match=rf"{empty}.* empty: the {size}x{size} map has a {size - 2 * border}x"
                                         rf"{size - 2 * border} inner region and a {border}-px outer frame"):
        check_regions(d, band, window=2 * band)
    with pytest.raises(ValueError, match="empty"):
        map_study([np.stack([d, d])], [d], [1.9], ["D", "J"], band)
    uniform = np.ones((size, size))
    with pytest.raises(ValueError, match="uniform"):
        check_regions(uniform, 2)
    masks = check_regions(uniform, 2, inner=inner_mask((size, size), 12))  # geometry from the border
    assert all(m.any() for m in masks.values())


@pytest.mark.parametrize("arch,config", [("resnet18", {"in_channels": 1, "out_features": 2})])
def test_batched_naive_equals_per_window_for_a_padded_torchvision_backbone(arch, config):
    from scalinglab.models import get_model

    torch.manual_seed(0)
    model = get_model(arch, **config).double().eval()  # float64: batching changes no rounding that matters
    for m in model.modules():  # non-trivial eval statistics and a head that does not squash the features
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=1.0)
    method, reason = map_method(model)
    assert method == "naive" and reason
    with pytest.raises(ValueError, match="batched per-window"):
        dense_map(model, np.zeros((40, 40)), window=32)
    image = np.where(np.random.default_rng(3).random((38, 41)) < 0.5, -1.0, 1.0)
    kw = {"window": 32, "stride": 5, "input_scale": 0.7, "input_shift": 0.2}
    calls = []
    batched = naive_map(model, image, batch_size=7, progress=lambda n, t: calls.append((n, t)), **kw)
    reference = per_window_map(model, image, **kw)
    assert batched.shape == reference.shape == (2, 8, 9)
    np.testing.assert_allclose(batched, reference, atol=1e-9, rtol=1e-9)
    assert np.std(batched[0]) > 1e-3 * np.abs(batched[0]).mean()  # windows differ: not constants
    assert calls[-1] == (72, 72) and len(calls) == 11  # ceil(72 / 7) chunks
    np.testing.assert_allclose(parameter_map(model, image, batch_size=64, **kw), batched, atol=1e-5)
