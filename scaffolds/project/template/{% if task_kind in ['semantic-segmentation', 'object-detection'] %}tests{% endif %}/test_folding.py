"""Folding batch norms into convolutions for inference keeps what the trained model computes."""

from __future__ import annotations

from pathlib import Path

import torch

from folding import fold_batch_norms
from trainer import load_trained_model


def test_folding_batch_norms_into_convolutions_keeps_the_outputs(trained_run: Path) -> None:
    _, _, model, _ = load_trained_model(trained_run, torch.device("cpu"))
    pixels = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        before = model(pixels)[0]
        after = fold_batch_norms(model)(pixels)[0]
    assert torch.allclose(before, after, atol=1e-4)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())
    assert any(isinstance(module, torch.nn.Conv2d) for module in model.modules())
