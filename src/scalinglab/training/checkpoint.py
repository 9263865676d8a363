"""Trained-network checkpoints: weights + everything needed to apply them to raw data again.

A checkpoint is one ``torch.save`` dict of plain types and tensors, loadable with ``torch.load(weights_only=True)``:

    {"format": "scalinglab.network/1", "mode": "regress" | "generate", "model": registry name,
     "config": resolved builder config, "state_dict": weights, "loss": training loss,
     "input_names": [...] (generate: the parameters fed in), "input_shape": [...],
     "input_mean", "input_std": tensors or None (the standardization fitted on the training part),
     "target_names": [...], "target_units": [...], "target_mean", "target_std": tensors or None,
     "target_transform": "none" | "log", "meta": {seed, data, split_seed, test_size, num_train, ...}}

``regress``: inputs (images) -> parameters; ``generate``: parameters -> images (paper 2's generator). Writes are
atomic (temp file + rename): a killed run never leaves a truncated checkpoint.

Size on disk is that of the float32 weights: 4 bytes per parameter (``two_branch_fcn`` on 2 x 100 x 100 images
with the default widths: 22.3 M parameters, 89 MB; on 2 x 50 x 50 with widths (512, 256) / (256, 256): 3.0 M,
12 MB; ``generator_fcn`` (256, 512) on 2 x 100 x 100: 10.4 M, 42 MB).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from scalinglab.models import get_model
from scalinglab.training.losses import point_prediction, split_mean_sigma

FORMAT = "scalinglab.network/1"
MODES = ("regress", "generate")
_REQUIRED = ("format", "mode", "model", "config", "state_dict", "input_shape", "target_names")


def _tensor(a) -> torch.Tensor | None:
    return None if a is None else torch.as_tensor(np.asarray(a, dtype=np.float64))


def save_checkpoint(path: str | os.PathLike, *, mode: str, model_name: str, model_config: dict[str, Any],
                    model: torch.nn.Module, input_shape, input_names: list[str] | None,
                    input_mean, input_std, target_names: list[str], target_units: list[str] | None,
                    target_mean, target_std, target_transform: str = "none", loss: str = "mse",
                    meta: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint atomically.

    Args:
        path: output file (``.pt``).
        mode: "regress" (images -> parameters) or "generate" (parameters -> images).
        model_name, model_config: how to rebuild the network (``get_model(name, **config)``).
        model: the trained network (its ``state_dict`` is saved on the CPU).
        input_shape: shape of one input sample.
        input_names: generate mode: names of the input parameters (else None).
        input_mean, input_std: input standardization ([*input_shape] or scalar), or None.
        target_names, target_units: what the network outputs (generate: ["image"]).
        target_mean, target_std: target standardization [P], or None (raw targets).
        target_transform: "none" or "log" (targets learned as log(y)).
        loss: training loss ("gaussian_nll" checkpoints also predict sigma).
        meta: provenance (seed, data path, split, N_D, ...), JSON-like.

    Returns:
        The path written.
    """
    if mode not in MODES:
        raise ValueError(f"checkpoint mode must be one of {MODES}, got {mode!r}")
    path = Path(path)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    blob = {
        "format": FORMAT, "mode": mode, "model": model_name, "config": _plain(model_config),
        "state_dict": state, "loss": loss, "input_shape": [int(s) for s in input_shape],
        "input_names": list(input_names) if input_names is not None else None,
        "input_mean": _tensor(input_mean), "input_std": _tensor(input_std),
        "target_names": list(target_names), "target_units": list(target_units or []),
        "target_mean": _tensor(target_mean), "target_std": _tensor(target_std),
        "target_transform": target_transform, "meta": _plain(meta or {}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


def _plain(obj: Any) -> Any:
    """JSON-like copy (tuples -> lists, numpy scalars -> Python) that ``weights_only`` loading accepts."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


@dataclass
class Network:
    """A loaded checkpoint: the network in eval mode and the transforms around it.

    Attributes:
        model: the network (eval mode, on ``device``).
        info: the checkpoint dict without the weights.
    """

    model: torch.nn.Module
    info: dict[str, Any]
    device: torch.device

    @property
    def mode(self) -> str:
        return self.info["mode"]

    @property
    def target_names(self) -> list[str]:
        return list(self.info["target_names"])

    @property
    def input_names(self) -> list[str]:
        return list(self.info.get("input_names") or [])

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.info["input_shape"])

    def _standardize_inputs(self, x: np.ndarray) -> np.ndarray:
        mean, std = self.info["input_mean"], self.info["input_std"]
        if mean is None:
            return x
        return (x - mean.numpy()) / std.numpy()

    def _destandardize(self, y: np.ndarray) -> np.ndarray:
        mean, std = self.info["target_mean"], self.info["target_std"]
        return y if mean is None else y * std.numpy() + mean.numpy()

    @torch.no_grad()
    def _forward(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        outs = []
        for a in range(0, len(x), batch_size):
            xb = torch.as_tensor(self._standardize_inputs(np.asarray(x[a:a + batch_size], dtype=np.float64)),
                                 dtype=torch.float32, device=self.device)
            outs.append(self.model(xb).double().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, 0))

    def _check_inputs(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.shape[1:] != self.input_shape:
            what = "parameters" if self.mode == "generate" else "images"
            raise ValueError(
                f"checkpoint expects {what} of shape {list(self.input_shape)} per sample, got {list(x.shape[1:])}"
            )
        if not np.isfinite(x).all():
            raise ValueError("inputs contain NaN or inf")
        return x

    def predict(self, x: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray | None]:
        """Regression: raw inputs [n, *input_shape] -> (prediction [n, P], sigma [n, P] or None), physical units.

        sigma is the heteroscedastic head's standard deviation (``gaussian_nll`` checkpoints; for a ``log`` target
        transform it is the sigma of log(y)).
        """
        if self.mode != "regress":
            raise ValueError("this checkpoint is a generator (parameters -> images): use generate()")
        out = torch.as_tensor(self._forward(self._check_inputs(x), batch_size))
        loss = self.info.get("loss", "mse")
        mean = point_prediction(loss, out).numpy()
        pred = self._destandardize(mean)
        sigma = None
        if loss == "gaussian_nll":
            std = self.info["target_std"]
            sigma = split_mean_sigma(out)[1].numpy() * (1.0 if std is None else std.numpy())
        if self.info.get("target_transform") == "log":
            pred = np.exp(pred)
        return pred, sigma

    def generate(self, params: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Generator: parameters [n, P] (physical units, ``input_names`` order) -> images [n, C, H, W]."""
        if self.mode != "generate":
            raise ValueError("this checkpoint is a regressor (images -> parameters): use predict()")
        params = self._check_inputs(np.asarray(params, dtype=np.float64))
        flat = self._destandardize(self._forward(params, batch_size))
        return flat.reshape(len(params), *self.info["config"]["out_shape"]).astype(np.float32)


def load_checkpoint(path: str | os.PathLike, device: str = "cpu") -> Network:
    """Load a checkpoint written by :func:`save_checkpoint` (``torch.load(weights_only=True)``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a scalinglab network checkpoint (one line naming the file).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files that then fail anyway
            warnings.simplefilter("ignore")
            blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean: not a readable checkpoint
        # torch's own message advises weights_only=False (arbitrary code execution): never pass it on
        raise ValueError(f"{path} is not a readable scalinglab checkpoint (not a torch file written by scalinglab, "
                         f"or truncated: {type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise ValueError(f"{path} is not a scalinglab network checkpoint (format {FORMAT!r} expected)")
    missing = [k for k in _REQUIRED if k not in blob]
    if missing:
        raise ValueError(f"checkpoint {path} lacks {', '.join(missing)}")
    dev = torch.device(device)
    model = get_model(blob["model"], **blob["config"])
    model.load_state_dict(blob["state_dict"])
    model.to(dev).eval()
    info = {k: v for k, v in blob.items() if k != "state_dict"}
    return Network(model, info, dev)
