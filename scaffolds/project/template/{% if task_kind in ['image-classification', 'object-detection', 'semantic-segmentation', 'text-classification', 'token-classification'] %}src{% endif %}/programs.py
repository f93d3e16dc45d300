"""A model saved as a torch.export program (`runner.py export`): a service loads it with
`torch.export.load(path).module()` and calls it with torch alone, without this project's code."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

LARGEST_BATCH = 1024


class Probabilities(nn.Module):
    """A model with its softmax over the classes' dimension (`dim`): its inputs (normalised pixels,
    token ids) in, class probabilities out (each image's or text's for a classifier, each pixel's
    for a segmenter, each token's for a tagger)."""

    def __init__(self, model: nn.Module, dim: int):
        super().__init__()
        self.model = model
        self.dim = dim

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        logits, _ = self.model(inputs)
        return logits.float().softmax(dim=self.dim)


def save_program(
    module: nn.Module,
    example: torch.Tensor,
    path: Path,
    side_unit: int = 0,
    largest_side: int = 0,
    longest_text: int = 0,
    extra_files: dict[str, str] | None = None,
) -> int:
    """Export `module` (in eval mode, on the CPU) for batches of 1 to LARGEST_BATCH inputs shaped
    like the rows of `example` (a batch of two or more: a batch of one would be taken as fixed),
    save it at `path` with `extra_files` inside (`torch.export.load(path, extra_files=...)` reads
    them back), and return its size in bytes. With `side_unit`, the inputs' height and width
    (`example`'s last two dimensions) may be any multiples of it up to `largest_side` (when that
    allows one size only, the example's sides are the one size). With `longest_text`, the token
    ids' second dimension may be any length from 1 to it, so a short text costs what its own
    tokens do rather than a full row of padding."""
    shapes: dict[int, object] = {0: torch.export.Dim("batch", min=1, max=LARGEST_BATCH)}
    most = largest_side // side_unit if side_unit else 0
    if most >= 2:
        shapes[2] = side_unit * torch.export.Dim("rows", min=1, max=most)
        shapes[3] = side_unit * torch.export.Dim("columns", min=1, max=most)
    if longest_text:
        shapes[1] = torch.export.Dim("tokens", min=1, max=longest_text)
    # A view would carry its base's strides into the program, as if they were part of its shape.
    example = example.contiguous()
    with torch.no_grad():
        program = torch.export.export(module, (example,), dynamic_shapes=(shapes,))
    with warnings.catch_warnings():  # torch's note on weights off the CPU: these are on it
        warnings.filterwarnings("ignore", message="No complete tensor found")
        torch.export.save(program, path, extra_files=extra_files)
    return path.stat().st_size
