"""A trained run's model continuing one prompt at a time (for `runner.py predict`, the server, and
the per-token latency that `runner.py check` measures)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from data import build_data
from network import generate
from trainer import load_trained_model


class Predictor:
    def __init__(self, run_dir: Path, device: str = "auto"):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.run_dir = run_dir
        self.device = torch.device(device)
        self.config, self.tokenizer, self.model, self.step = load_trained_model(run_dir, self.device)

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
    ) -> dict[str, object]:
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

    def continuations(self, count: int, max_new_tokens: int, seed: int = 0) -> list[str]:
        """Continuations of `count` prompts cut from the validation text, sampled as the server
        samples them and the same on every call (for the repetition gates of `runner.py check`)."""
        prompts = self.sample_inputs(count)
        # A seed of their own: the random state of the process (say, the server's) is put back after.
        cuda = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            return [str(self.predict(prompt, max_new_tokens)["completion"]) for prompt in prompts]

    def read_input(self, argument: str) -> str:
        """A command-line argument is the prompt itself."""
        return argument

    def sample_inputs(self, count: int) -> list[str]:
        """Prompts cut from the validation text, for timing predictions."""
        val = build_data(self.config, self.run_dir).val
        step = max(1, len(val) // count)
        return [self.tokenizer.decode(val[(i * step) % len(val)][0][:32].tolist()) for i in range(count)]
