"""A model saved as a torch.export program (`runner.py export`): a service loads it with
`torch.export.load(path).module()` and calls it with torch alone, without this project's code."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

LARGEST_BATCH = 1024


def save_program(module: nn.Module, example: torch.Tensor, path: Path) -> int:
    """Export `module` (in eval mode, on the CPU) for batches of 1 to LARGEST_BATCH inputs shaped
    like the rows of `example` (a batch of two or more: a batch of one would be taken as fixed),
    save it at `path`, and return its size in bytes."""
    batch = torch.export.Dim("batch", min=1, max=LARGEST_BATCH)
    with torch.no_grad():
        program = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    with warnings.catch_warnings():  # torch's note on weights off the CPU: these are on it
        warnings.filterwarnings("ignore", message="No complete tensor found")
        torch.export.save(program, path)
    return path.stat().st_size
