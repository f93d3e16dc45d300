"""The detector: a small CenterNet-style network (objects as points), anchor-free, no NMS.

It takes (pixels [batch, 3, H, W], targets [batch, classes + 5, H / 4, W / 4] or None) and
returns (outputs [batch, classes + 4, H / 4, W / 4], loss): per cell, a score for "an object of
this class is centred here" for each class (logits), the box's log width and height in cells,
and the centre's offset within the cell; the one interface the trainer, the metrics and the
predictor rely on. Boxes are read off the outputs by `decode`: the cells whose score is the
highest of their 3 x 3 neighbourhood, so one object gives one box without non-maximum
suppression.

The loss is CenterNet's: a focal loss on the heatmaps (the cells near a centre, inside its
Gaussian bump, are penalised less for firing), plus L1 on size and offset at the centre cells.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from config import Config, ProjectError
from data import STRIDE, DetectionPreprocessor

SIZE_WEIGHT, OFFSET_WEIGHT = 1.0, 1.0
PRIOR = 0.01  # the heatmaps start by saying "no object" with this probability everywhere


def focal_loss(logits: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), averaged over the objects."""
    probability = logits.float().sigmoid().clamp(1e-4, 1 - 1e-4)
    centres = heatmaps.eq(1).float()
    positive = -((1 - probability) ** 2) * probability.log() * centres
    negative = -((1 - heatmaps) ** 4) * probability**2 * (1 - probability).log() * (1 - centres)
    return (positive.sum() + negative.sum()) / centres.sum().clamp(min=1)


def detection_loss(outputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    if targets is None:
        return None
    classes = outputs.shape[1] - 4
    mask = targets[:, classes + 4 : classes + 5]
    objects = mask.sum().clamp(min=1)
    regression = (outputs[:, classes:].float() - targets[:, classes : classes + 4]).abs() * mask
    size = regression[:, :2].sum() / objects
    offset = regression[:, 2:].sum() / objects
    return (
        focal_loss(outputs[:, :classes], targets[:, :classes]) + SIZE_WEIGHT * size + OFFSET_WEIGHT * offset
    )


def conv(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """A 3x3 convolution, batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Stage(nn.Module):
    """Halve the resolution, then a residual block: the backbone's unit."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.down = conv(in_channels, out_channels, stride=2)
        self.block = nn.Sequential(conv(out_channels, out_channels), conv(out_channels, out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return x + self.block(x)


class CenterNet(nn.Module):
    """Three stages down to stride 16, then up to stride 4 with the stride-8 and stride-4 features
    added in (a small feature pyramid: the small far-away people need the fine scales, telling a
    person from a pallet stack needs the coarse one's context), one 3x3 convolution over the
    result, and a 1x1 convolution giving every cell its class scores, size and offset at once.
    (Three heads of their own, CenterNet's layout, took two thirds of the network's work at
    stride 4 for no better a detector on the built-in frames.)"""

    def __init__(self, num_classes: int, width: int = 16, head_width: int = 64):
        super().__init__()
        widths = [width, width * 2, width * 4, width * 8]
        self.stem = conv(3, widths[0], stride=2)  # stride 2
        self.stages = nn.ModuleList(Stage(widths[i], widths[i + 1]) for i in range(3))  # strides 4, 8, 16
        self.lateral = nn.ModuleList(nn.Conv2d(widths[i], head_width, 1) for i in (1, 2, 3))
        self.neck = conv(head_width, head_width)
        self.head = nn.Conv2d(head_width, num_classes + 4, 1)
        # Start from "nothing anywhere": with a zero bias the focal loss of the many empty cells
        # swamps the first steps (CenterNet's and RetinaNet's initialisation).
        with torch.no_grad():
            self.head.bias[:num_classes] = -math.log((1 - PRIOR) / PRIOR)

    def forward(self, pixels: torch.Tensor, targets: torch.Tensor | None = None):
        # Channels-last activations: oneDNN's and cuDNN's faster convolutions.
        x = self.stem(pixels.contiguous(memory_format=torch.channels_last))
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        merged = self.lateral[2](features[2])
        for level in (1, 0):
            upsampled = F.interpolate(merged, scale_factor=2, mode="nearest")
            merged = upsampled + self.lateral[level](features[level])
        outputs = self.head(self.neck(merged))
        return outputs, detection_loss(outputs, targets)


def top_boxes(outputs: torch.Tensor, top_k: int = 100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The `top_k` best heatmap peaks (cells the highest of their 3 x 3 neighbourhood) of each
    frame of a batch of outputs, best first: their scores [batch, k], class ids [batch, k] and
    boxes [batch, k, 4] (x0, y0, x1, y1 in input pixels). Tensors only, so it exports with the
    model (see Detector)."""
    classes = outputs.shape[1] - 4
    scores = outputs[:, :classes].float().sigmoid()
    peaks = scores * (F.max_pool2d(scores, 3, stride=1, padding=1) == scores)
    batch, _, height, width = scores.shape
    best, where = peaks.reshape(batch, -1).topk(min(top_k, classes * height * width))
    labels, cells = where // (height * width), where % (height * width)
    rows, columns = cells // width, cells % width
    regression = outputs[:, classes:].float().reshape(batch, 4, -1)  # [batch, 4, cells]
    picked = regression.gather(2, cells[:, None].expand(-1, 4, -1))
    w, h = picked[:, 0].exp() * STRIDE, picked[:, 1].exp() * STRIDE
    cx, cy = (columns + picked[:, 2]) * STRIDE, (rows + picked[:, 3]) * STRIDE
    return best, labels, torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


@torch.no_grad()
def decode(outputs: torch.Tensor, top_k: int = 100, min_score: float = 0.01) -> list[list[tuple]]:
    """Boxes from a batch of outputs: for each frame up to `top_k` (class, score, x0, y0, x1, y1)
    in input pixels, best first, scoring at least `min_score`."""
    return [
        [
            (int(label), float(score), *box)
            for score, label, box in zip(scores.tolist(), labels.tolist(), corners.tolist(), strict=True)
            if score >= min_score
        ]
        for scores, labels, corners in zip(*top_boxes(outputs, top_k), strict=True)
    ]


class Detector(nn.Module):
    """A detector and its decoding as one module, pixels [batch, 3, H, W] in and the top boxes out
    (scores, class ids, boxes; see top_boxes): what `runner.py export` saves, so that a service
    needs only torch and the preprocessing, not this project's code."""

    def __init__(self, model: nn.Module, top_k: int = 100):
        super().__init__()
        self.model = model
        self.top_k = top_k

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        outputs, _ = self.model(pixels)
        return top_boxes(outputs, self.top_k)


def build_model(config: Config, preprocessor: DetectionPreprocessor, load_weights: bool = True) -> nn.Module:
    """The detector for these classes. `load_weights` is there for the interface every task
    shares (a pretrained checkpoint to start from); this detector is trained from scratch."""
    del load_weights
    if config.model_name:
        raise ProjectError(
            "model_name is not used by the object-detection project yet: its detector is network.CenterNet,"
            " trained from scratch; leave model_name empty"
        )
    model = CenterNet(len(preprocessor.labels), config.width, config.head_width)
    return model.to(memory_format=torch.channels_last)  # the weights to match the activations


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
