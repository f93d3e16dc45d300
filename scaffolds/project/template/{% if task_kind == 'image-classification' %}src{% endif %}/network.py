"""The image classifier: a small convolutional network, or a Hugging Face model.

Both take (pixels, labels) and return (logits, loss), the one interface the trainer, the
predictor and the server rely on. `loss` is None when no labels are given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from config import Config
from data import ImagePreprocessor


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    )


class ConvNet(nn.Module):
    """3x3 conv blocks, halving the resolution (and doubling the width) until it is 4x4, then
    global average pooling and a linear head. About 60k parameters for 8x8 digits."""

    def __init__(
        self, channels: int, num_classes: int, image_size: int, width: int = 32, dropout: float = 0.1
    ):
        super().__init__()
        layers: list[nn.Module] = [conv_block(channels, width), conv_block(width, width)]
        size = image_size
        while size > 4:
            layers += [nn.MaxPool2d(2), conv_block(width, min(2 * width, 512))]
            width, size = min(2 * width, 512), size // 2
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, pixels: torch.Tensor, labels: torch.Tensor | None = None):
        logits = self.head(self.features(pixels))
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return logits, loss


class HFImageClassifier(nn.Module):
    """A Hugging Face image model (ViT, ResNet, ConvNeXt ...) behind the same interface."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor, labels: torch.Tensor | None = None):
        logits = self.model(pixel_values=pixels).logits
        loss = F.cross_entropy(logits.float(), labels) if labels is not None else None
        return logits, loss


def build_model(config: Config, preprocessor: ImagePreprocessor, load_weights: bool = True) -> nn.Module:
    """The model for these labels. `load_weights=False` builds the architecture only (for loading a
    trained checkpoint over it)."""
    labels = preprocessor.labels
    if not config.model_name:
        return ConvNet(
            preprocessor.channels, len(labels), preprocessor.image_size, config.width, config.dropout
        )

    from transformers import AutoConfig, AutoModelForImageClassification

    label_maps = {"id2label": dict(enumerate(labels)), "label2id": {name: i for i, name in enumerate(labels)}}
    if load_weights and config.pretrained:
        model = AutoModelForImageClassification.from_pretrained(
            config.model_name, num_labels=len(labels), ignore_mismatched_sizes=True, **label_maps
        )
    else:
        model_config = AutoConfig.from_pretrained(config.model_name, num_labels=len(labels), **label_maps)
        model = AutoModelForImageClassification.from_config(model_config)
    return HFImageClassifier(model)


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
