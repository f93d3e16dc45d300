"""Folding batch norms into convolutions for inference keeps what the trained model computes."""

from __future__ import annotations

from pathlib import Path

import torch

from folding import fold_batch_norms
from trainer import load_trained_model


def test_folding_batch_norms_into_convolutions_keeps_the_outputs(trained_run: Path) -> None:
    config, _, model, _ = load_trained_model(trained_run, torch.device("cpu"))
    # A captioner reads photos at its one image_size; the fully convolutional models, any size.
    size = getattr(config, "image_size", None)
    pixels = torch.randn(2, 3, size or 64, size or 96)
    # What the convolutions compute: the outputs, or for a captioner the image features (its
    # outputs are the words it picks from them).
    computed = getattr(model, "encode", lambda inputs: model(inputs)[0])
    with torch.no_grad():
        before = computed(pixels)
        fold_batch_norms(model)
        after = computed(pixels)
    assert torch.allclose(before, after, atol=1e-4)
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in model.modules())
    assert any(isinstance(module, torch.nn.Conv2d) for module in model.modules())
