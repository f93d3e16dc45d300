"""Which of a model's weights a run saves (model.pt, checkpoint.pt), and loading them back.

Usually all of them. A model that says its frozen weights come back from their source whenever it
is built (`frozen_weights_from_source`, which LoRA sets: they are init_from's run or model_name's
pretrained weights) saves only the weights that train, beside a fingerprint of the frozen ones.
A LoRA run of a 7B model then writes its adapters, megabytes, at each evaluation instead of 14 GB,
and loading it builds the base again and checks that it is still the one the adapters learned on.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from config import ProjectError

FINGERPRINT = "frozen_fingerprint"  # the key of saved files that hold trained weights alone


def trained_only(model: nn.Module) -> bool:
    return bool(getattr(model, "frozen_weights_from_source", False))


def weights_to_save(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state, or for a model that rebuilds its frozen weights, its trained ones."""
    state = model.state_dict()
    if not trained_only(model):
        return state
    trained = {name for name, weight in model.named_parameters() if weight.requires_grad}
    return {name: value for name, value in state.items() if name in trained}


@torch.no_grad()
def frozen_fingerprint(model: nn.Module) -> list[float]:
    """The float64 sum and sum of squares of every frozen weight: weights trained any further, or
    another model, give others (a hash would need every weight's bytes on the CPU)."""
    total = squares = 0.0
    for weight in model.parameters():
        if not weight.requires_grad:  # one float64 copy at a time: a 7B model's all at once is 56 GB
            wide = weight.double()
            total, squares = total + float(wide.sum()), squares + float(wide.square().sum())
    return [total, squares]


def extra_fields(model: nn.Module) -> dict[str, list[float]]:
    """What a saved file holds besides the weights: the frozen weights' fingerprint, if only
    the trained ones are saved."""
    return {FINGERPRINT: frozen_fingerprint(model)} if trained_only(model) else {}


def restore(model: nn.Module, saved: dict, path: Path) -> None:
    """Load `saved["model"]` (written with weights_to_save, read from `path`) into `model`. Trained
    weights alone must be every trained weight of `model`, and its frozen ones must be those they
    were trained beside; `load_state_dict`'s RuntimeError for weights that do not fit."""
    weights = saved["model"]
    if FINGERPRINT not in saved:
        model.load_state_dict(weights)
        return
    trained = {name for name, weight in model.named_parameters() if weight.requires_grad}
    if weights.keys() != trained:
        odd = sorted(trained ^ weights.keys())
        raise RuntimeError(f"Error(s) in loading state_dict:\n{len(odd)} weights differ, {odd[0]} first")
    now, then = frozen_fingerprint(model), saved[FINGERPRINT]
    if not all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6) for a, b in zip(now, then, strict=True)):
        raise ProjectError(
            f"{path} holds weights trained beside frozen ones (LoRA's adapters), and the frozen weights"
            " are not those any more: init_from's run trained further, or model_name is another model"
            " now; train this run again from the base as it is"
        )
    model.load_state_dict(weights, strict=False)
