"""The original encoder, when no Hugging Face model is named: network.py's encoder pre-trained
here on the general corpus (data.general_split's training paragraphs) with the same masking, for
config.original_steps steps. Adaptation starts from it, and its scores are the "before" of every
comparison a run reports.

It is trained the first time a run needs it and kept in .cache/encoders/, keyed by everything
that shapes it (the settings below, the tokenizer, the general texts and this file's and
network.py's code), so later runs start from the same weights at once.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import shutil
import tempfile
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

import network
from config import ROOT, Config, ProjectError
from data import GENERAL, UNLABELLED, MaskedTexts, MaskingTokenizer, general_split

CACHE_DIR = ROOT / ".cache" / "encoders"
SHAPING_SETTINGS = (
    "n_embd",
    "n_layer",
    "n_head",
    "dropout",
    "max_length",
    "mask_ratio",
    "vocab_size",
    "seed",
    "original_steps",
    "original_lr",
    "batch_size",
    "weight_decay",
    "adam_beta2",
)


def cache_key(config: Config, preprocessor: MaskingTokenizer, texts: list[str]) -> str:
    key = hashlib.sha256()
    parts = [inspect.getsource(inspect.getmodule(cache_key)), inspect.getsource(network)]
    parts += [f"{name}={getattr(config, name)}" for name in SHAPING_SETTINGS]
    parts += [str(sorted(preprocessor.tokenizer.get_vocab().items())), *texts]
    for part in parts:
        key.update(part.encode() + b"\0")
    return key.hexdigest()[:16]


def original_weights(
    config: Config, preprocessor: MaskingTokenizer, model: nn.Module
) -> dict[str, torch.Tensor]:
    """The original encoder's weights for `model`'s shape: from the cache, else trained now."""
    texts, _ = general_split(config.seed)
    folder = CACHE_DIR / f"general-{cache_key(config, preprocessor, texts)}"
    if (folder / "model.pt").is_file():
        return torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    weights = pretrain(
        model,
        MaskedTexts(
            texts,
            [UNLABELLED] * len(texts),
            [GENERAL] * len(texts),
            preprocessor,
            config.mask_ratio,
            train=True,
        ),
        config,
    )
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=CACHE_DIR))
    except OSError:  # a read-only project: train every time
        return weights
    torch.save(weights, staging / "model.pt")
    try:
        staging.rename(folder)  # whole or not at all
    except OSError:  # another process (a torchrun rank) cached the same encoder meanwhile
        shutil.rmtree(staging, ignore_errors=True)
    return weights


def pretrain(model: nn.Module, texts: MaskedTexts, config: Config) -> dict[str, torch.Tensor]:
    """Masked-LM training of `model` on `texts`: AdamW, linear warm-up then cosine decay, on this
    process's GPU if it has one. Returns the weights, on the CPU."""
    device = (
        torch.device("cuda", torch.cuda.current_device())
        if torch.cuda.is_available()
        else torch.device("cpu")
    )
    model = model.to(device).train()
    generator = torch.Generator().manual_seed(config.seed)
    loader = torch.utils.data.DataLoader(
        texts, config.batch_size, shuffle=True, drop_last=True, generator=generator
    )
    optimizer = torch.optim.AdamW(
        model.parameters(),
        lr=config.original_lr,
        weight_decay=config.weight_decay,
        betas=(0.9, config.adam_beta2),
    )
    steps, warmup = config.original_steps, max(1, config.original_steps // 20)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
    )
    step = 0
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("original encoder, general text (once; cached)", total=steps, status="")
        while step < steps:
            for masked, targets in loader:
                progress_in_decay = max(0, step - warmup) / max(1, steps - warmup)
                scale = min(1, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * progress_in_decay))
                for group in optimizer.param_groups:
                    group["lr"] = config.original_lr * scale
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                    loss = model(masked.to(device), targets.to(device))[1]
                if not torch.isfinite(loss):
                    raise ProjectError(
                        f"the original encoder's training loss became {loss.item()} at step {step + 1};"
                        " lower --set original_lr",
                        every_process=True,  # every torchrun process trains the same encoder
                    )
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                shown = {"status": f"loss {loss.item():.3f}"} if step % 20 == 0 else {}
                progress.update(task, completed=step, **shown)
                if step == steps:
                    break
    return {name: value.detach().cpu() for name, value in model.state_dict().items()}
