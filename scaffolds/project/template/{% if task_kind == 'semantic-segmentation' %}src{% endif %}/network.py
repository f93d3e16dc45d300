"""The segmenter: a small U-Net, or a Hugging Face semantic-segmentation model.

Both take (pixels [batch, 3, height, width], classes [batch, height, width]) and return (logits
[batch, classes, height, width], loss): one score per class for every pixel, the one interface
the trainer, the predictor and the server rely on. `loss` is None without classes; it is a
class-weighted cross-entropy over the labelled pixels (weights from data.balanced_weights).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from config import Config, ProjectError
from data import IGNORE, SegmentationPreprocessor


def segmentation_loss(logits: torch.Tensor, classes: torch.Tensor | None, weights: torch.Tensor | None):
    if classes is None:
        return None
    return F.cross_entropy(logits.float(), classes, weight=weights, ignore_index=IGNORE)


def conv_block(in_channels: int, out_channels: int, dropout: float = 0.0) -> nn.Sequential:
    """Two 3x3 convolutions, each followed by batch norm and GELU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
        nn.Dropout2d(dropout),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    )


def merge_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 1x1 convolution mixing the upsampled features with the encoder's (concatenated), then a
    3x3 one: a quarter of the work of two 3x3 convolutions at the two finest scales, where a
    U-Net spends most of its time (1.3x the predictions per second, measured on a CPU)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.GELU(),
    )


class UNet(nn.Module):
    """An encoder that halves the resolution and doubles the width `depth` times, and a decoder
    that upsamples back, joining at each scale the encoder's features of that scale (the skip
    connections keep edges sharp). Fully convolutional: it takes any size divisible by 2^depth,
    which is what lets the predictor run it on windows of a large scene."""

    def __init__(self, num_classes: int, width: int = 16, depth: int = 3, dropout: float = 0.1):
        super().__init__()
        widths = [width * 2**level for level in range(depth + 1)]
        self.stem = conv_block(3, widths[0])
        self.down = nn.ModuleList(conv_block(widths[i], widths[i + 1], dropout) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.merge = nn.ModuleList(merge_block(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], num_classes, 1)
        self.register_buffer("class_weights", torch.ones(num_classes), persistent=False)

    def forward(self, pixels: torch.Tensor, classes: torch.Tensor | None = None):
        # Channels-last activations: oneDNN's and cuDNN's faster convolutions (1.7x here on a CPU).
        skips = [self.stem(pixels.contiguous(memory_format=torch.channels_last))]
        for block in self.down:
            skips.append(block(F.max_pool2d(skips[-1], 2)))
        x = skips.pop()
        for upsample, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([upsample(x), skips.pop()], dim=1))
        logits = self.head(x)
        return logits, segmentation_loss(logits, classes, self.class_weights)


class HFSegmenter(nn.Module):
    """A Hugging Face semantic-segmentation model (SegFormer, UPerNet, DPT ...) behind the same
    interface. Such models predict at a fraction of the input's resolution; the logits are
    upsampled to it, as their own post-processing does."""

    def __init__(self, model: nn.Module, num_classes: int):
        super().__init__()
        self.model = model
        self.register_buffer("class_weights", torch.ones(num_classes), persistent=False)

    def forward(self, pixels: torch.Tensor, classes: torch.Tensor | None = None):
        logits = self.model(pixel_values=pixels).logits
        logits = F.interpolate(logits, size=pixels.shape[-2:], mode="bilinear", align_corners=False)
        return logits, segmentation_loss(logits, classes, self.class_weights)


def build_model(
    config: Config, preprocessor: SegmentationPreprocessor, load_weights: bool = True
) -> nn.Module:
    """The model for these classes, its loss weighted as the preprocessor says. `load_weights=False`
    builds the architecture only (for loading a trained checkpoint over it)."""
    labels = preprocessor.labels
    if not config.model_name:
        if preprocessor.tile_size % 2**config.depth:
            raise ProjectError(
                f"tile_size {preprocessor.tile_size} must be divisible by 2^depth = {2**config.depth}:"
                " the U-Net halves it depth times"
            )
        model: nn.Module = UNet(len(labels), config.width, config.depth, config.dropout)
        model = model.to(memory_format=torch.channels_last)  # the weights to match the activations
    else:
        from transformers import AutoConfig, AutoModelForSemanticSegmentation

        label_maps = {
            "id2label": dict(enumerate(labels)),
            "label2id": {name: i for i, name in enumerate(labels)},
        }
        if load_weights and config.pretrained:
            hf_model = AutoModelForSemanticSegmentation.from_pretrained(
                config.model_name, num_labels=len(labels), ignore_mismatched_sizes=True, **label_maps
            )
        else:
            model_config = AutoConfig.from_pretrained(config.model_name, num_labels=len(labels), **label_maps)
            hf_model = AutoModelForSemanticSegmentation.from_config(model_config)
        model = HFSegmenter(hf_model, len(labels))
    if preprocessor.class_weights:
        model.class_weights.copy_(torch.tensor(preprocessor.class_weights))
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
