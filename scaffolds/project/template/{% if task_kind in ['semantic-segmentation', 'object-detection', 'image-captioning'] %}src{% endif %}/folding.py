"""Batch norms folded into the convolutions before them, for inference.

In eval mode a batch norm is a fixed affine map per channel, so it can be merged into the weights
and bias of the convolution it follows: the same function, one pass over the activations fewer
(the convolutional kinds' predictors run their models this way).
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """The eval-mode model with each batch norm that directly follows a convolution inside an
    nn.Sequential folded into that convolution (the norm becomes an identity)."""
    for block in model.modules():
        if not isinstance(block, nn.Sequential):
            continue
        for index in range(len(block) - 1):
            conv, norm = block[index], block[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                block[index], block[index + 1] = fuse_conv_bn_eval(conv, norm), nn.Identity()
    return model
