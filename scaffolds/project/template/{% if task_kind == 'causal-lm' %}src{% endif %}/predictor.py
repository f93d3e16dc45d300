"""A trained run's model continuing one prompt at a time (for `runner.py predict`, the server, and
what `runner.py check` measures on generated text: time per token and to the first token,
tokens per second, repeated n-grams; and for a fine-tuned run, how it compares with its base)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from config import base_run
from data import TokenWindows, split_contents
from network import generate
from trainer import TrainedModel

COMPARED_WINDOWS = 64  # validation windows a fine-tuned run and its base are compared on


class Predictor(TrainedModel):
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        super().__init__(run_dir, device)
        self.tokenizer = self.preprocessor  # a language model's preprocessing is its tokenizer
        self._val: TokenWindows | None = None  # the validation text as tokens, read on first use

    def sample(self, prompt: str, max_new_tokens: int, temperature: float, top_k: int) -> Iterator[int]:
        """New tokens after the prompt, one at a time (an empty prompt starts from a new line)."""
        context = self.tokenizer.encode(prompt) or self.tokenizer.encode("\n")
        return generate(
            self.model,
            context,
            max_new_tokens=max_new_tokens,
            block_size=self.config.block_size,
            vocab_size=self.tokenizer.vocab_size,
            temperature=temperature,
            top_k=top_k,
        )

    def predict(
        self, prompt: str, max_new_tokens: int = 32, temperature: float = 0.8, top_k: int = 50
    ) -> dict[str, Any]:
        """The prompt's continuation, and how many tokens were sampled."""
        tokens = list(self.sample(prompt, max_new_tokens, temperature, top_k))
        return {"prompt": prompt, "completion": self.tokenizer.decode(tokens), "tokens": len(tokens)}

    def stream(
        self, prompt: str, max_new_tokens: int = 32, temperature: float = 0.8, top_k: int = 50
    ) -> Iterator[str]:
        """The continuation piece by piece as it is sampled. A piece is yielded once it decodes
        cleanly (one character can span several byte tokens)."""
        tokens: list[int] = []
        shown = ""
        for token in self.sample(prompt, max_new_tokens, temperature, top_k):
            tokens.append(token)
            text = self.tokenizer.decode(tokens)
            if not text.endswith("\ufffd") and len(text) > len(shown):
                yield text[len(shown) :]
                shown = text

    def continuations(self, count: int, max_new_tokens: int, seed: int = 0) -> list[dict[str, Any]]:
        """`predict` on `count` prompts cut from the validation text, sampled as the server samples
        and the same on every call (for the repetition and speed gates of `runner.py check`)."""
        prompts = self.sample_inputs(count)
        # A seed of their own: the random state of the process (say, the server's) is put back after.
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            return [self.predict(prompt, max_new_tokens) for prompt in prompts]

    def read_input(self, argument: str) -> str:
        """A command-line argument is the prompt itself."""
        return argument

    def validation_windows(self) -> TokenWindows:
        """The run's validation text as windows of tokens (read and tokenized once per predictor)."""
        if self._val is None:
            self._val = self.windows(split_contents(self.config)[1])
        return self._val

    def windows(self, documents: list[str]) -> TokenWindows:
        return TokenWindows(self.tokenizer.encode_corpus(documents), self.config.block_size)

    def sample_inputs(self, count: int) -> list[str]:
        """Prompts cut from the validation text, for timing predictions."""
        val = self.validation_windows()
        step = max(1, len(val) // count)
        return [self.tokenizer.decode(val[(i * step) % len(val)][0][:32].tolist()) for i in range(count)]

    def against_base(self) -> dict[str, float]:
        """For a run fine-tuned from another (`init_from`), against the model it started from:
          win_rate       the share of this run's validation windows whose next tokens it predicts
                         better (lower loss) than the base does; a tie counts half
          accuracy_drop  the next-token accuracy it lost on the base run's own validation text,
                         that is, how much of what the base knew it forgot
        Nothing for a run trained from scratch."""
        if not self.config.init_from:
            return {}
        base = TrainedModel(base_run(self.config), str(self.device))
        own = spread(self.validation_windows())
        general = spread(self.windows(split_contents(base.config)[1]))  # the base's tokenizer is this one
        tuned_loss, _ = scored_windows(self.model, own, self.device)
        base_loss, _ = scored_windows(base.model, own, self.device)
        wins = (tuned_loss < base_loss).float() + 0.5 * (tuned_loss == base_loss).float()
        _, tuned_right = scored_windows(self.model, general, self.device)
        _, base_right = scored_windows(base.model, general, self.device)
        return {"win_rate": wins.mean().item(), "accuracy_drop": (base_right - tuned_right).mean().item()}


def spread(windows: TokenWindows) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """COMPARED_WINDOWS of `windows`, spread evenly over them."""
    step = max(1, len(windows) // COMPARED_WINDOWS)
    return [windows[index] for index in range(0, len(windows), step)][:COMPARED_WINDOWS]


@torch.no_grad()
def scored_windows(
    model: nn.Module, windows: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each window's mean next-token loss, and each of its next tokens predicted right (0 or 1)."""
    inputs = torch.stack([window[0] for window in windows]).to(device)
    targets = torch.stack([window[1] for window in windows]).to(device)
    losses, right = [], []
    for batch_inputs, batch_targets in zip(inputs.split(16), targets.split(16), strict=True):
        logits = model(batch_inputs)[0].float()
        per_token = F.cross_entropy(logits.transpose(1, 2), batch_targets, reduction="none")
        losses.append(per_token.mean(dim=1))
        right.append((logits.argmax(dim=-1) == batch_targets).float().flatten())
    return torch.cat(losses), torch.cat(right)
