"""A trained run's model continuing one prompt at a time (for `runner.py predict`, the server, and
what `runner.py check` measures on generated text: time per token and to the first token,
tokens per second, repeated n-grams; for a fine-tuned run, how it compares with its base; and for
a run on the instruction data, how well it answers the held-out instructions).

A run trained on the instruction data answers: its prompt is taken as an instruction, put in the
chat template, and the answer ends where the model writes the end marker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from config import base_run
from data import (
    ANSWER_ROOM,
    Examples,
    examples_of,
    prompt_room,
    prompt_targets,
    prompt_tokens,
    split_contents,
)
from instructions import ASSISTANT, END, USER, chat_parts, read_response, rouge_l, user_turn
from network import generate, merge_lora
from trainer import TrainedModel

COMPARED_WINDOWS = 64  # validation windows a fine-tuned run and its base are compared on
ANSWERED = 64  # held-out instructions answered for ROUGE-L and the format-error rate


class Predictor(TrainedModel):
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        super().__init__(run_dir, device)
        self.model = merge_lora(self.model)  # a LoRA run's adapters cost nothing at inference
        self.tokenizer = self.preprocessor  # a language model's preprocessing is its tokenizer
        self.chat = self.config.dataset == "instructions"  # it answers instructions in the chat template
        # An instruction's answer is wanted at its likeliest; plain text reads better sampled.
        self.default_temperature = 0.0 if self.chat else 0.8
        self._val_documents: list[str] | None = None  # the validation split, read on first use
        self._val: Examples | None = None

    def sample(
        self, prompt: str, max_new_tokens: int, temperature: float | None, top_k: int
    ) -> Iterator[int]:
        """New tokens after the prompt's context, one at a time; in the chat template, up to and
        including the end of the answer. Temperature None: the run's default."""
        tokens = generate(
            self.model,
            self.context(prompt),
            max_new_tokens=max_new_tokens,
            block_size=self.config.block_size,
            vocab_size=self.tokenizer.vocab_size,
            temperature=self.default_temperature if temperature is None else temperature,
            top_k=top_k,
        )
        return self.until_end(tokens) if self.chat else tokens

    def context(self, prompt: str) -> list[int]:
        """The tokens the model reads before its first new one: the prompt (an empty one, a new
        line), or the instruction in the chat template, cut to leave room for an answer."""
        if self.chat:
            return prompt_tokens(self.tokenizer, user_turn(prompt), prompt_room(self.config.block_size))
        return self.tokenizer.encode(prompt) or self.tokenizer.encode("\n")

    def until_end(self, tokens: Iterator[int]) -> Iterator[int]:
        made: list[int] = []
        for token in tokens:
            made.append(token)
            yield token
            if self.tokenizer.decode(made).endswith(END):
                return

    def shown(self, text: str) -> str:
        """What a reader sees of generated text: in the chat template, the answer without its end
        marker (nor the start of one, while it is being written)."""
        if not self.chat:
            return text
        text = text.partition(END)[0]
        held = next((size for size in range(len(END) - 1, 0, -1) if text.endswith(END[:size])), 0)
        return text[: len(text) - held]

    def predict(
        self, prompt: str, max_new_tokens: int = 32, temperature: float | None = None, top_k: int = 50
    ) -> dict[str, Any]:
        """The prompt's continuation (an instruction's answer), and how many tokens were sampled."""
        tokens = list(self.sample(prompt, max_new_tokens, temperature, top_k))
        text = self.tokenizer.decode(tokens)
        made = {"prompt": prompt, "completion": self.shown(text), "tokens": len(tokens)}
        return made | ({"well_formed": read_response(text)[1]} if self.chat else {})

    def stream(
        self, prompt: str, max_new_tokens: int = 32, temperature: float | None = None, top_k: int = 50
    ) -> Iterator[str]:
        """The continuation piece by piece as it is sampled. A piece is yielded once it decodes
        cleanly (one character can span several byte tokens)."""
        tokens: list[int] = []
        shown = ""
        for token in self.sample(prompt, max_new_tokens, temperature, top_k):
            tokens.append(token)
            text = self.shown(self.tokenizer.decode(tokens))
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

    def validation_documents(self) -> list[str]:
        if self._val_documents is None:
            self._val_documents = split_contents(self.config)[1]
        return self._val_documents

    def validation_windows(self) -> Examples:
        """The run's validation split as the model is scored on it: windows of tokens, or
        conversations (read and tokenized once per predictor)."""
        if self._val is None:
            self._val = examples_of(self.config, self.tokenizer, self.validation_documents())
        return self._val

    def sample_inputs(self, count: int) -> list[str]:
        """Prompts from the validation split, for timing predictions: its instructions, or the
        starts of its windows."""
        if self.chat:
            return [instruction for instruction, _ in held_out_requests(self.validation_documents(), count)]
        val = self.validation_windows()
        step = max(1, len(val) // count)
        return [self.tokenizer.decode(val[(i * step) % len(val)][0][:32].tolist()) for i in range(count)]

    def answer_scores(self) -> dict[str, float]:
        """For a run on the instruction data, ANSWERED held-out instructions answered greedily:
          rouge_l            the answers' mean ROUGE-L F1 against the references
          format_error_rate  the share of answers not closed by the end marker, or empty
        Nothing for a run on plain text."""
        if not self.chat:
            return {}
        scores, errors = [], 0
        for instruction, reference in held_out_requests(self.validation_documents(), ANSWERED):
            tokens = list(self.sample(instruction, ANSWER_ROOM, temperature=0, top_k=0))
            response, well_formed = read_response(self.tokenizer.decode(tokens))
            scores.append(rouge_l(response, reference))
            errors += not well_formed
        answered = max(len(scores), 1)
        return {"rouge_l": sum(scores) / answered, "format_error_rate": errors / answered}

    def prompt_loss_tokens(self) -> dict[str, float]:
        """For a run on the instruction data, the targets of its training conversations that the
        loss took in the instructions (prompt_loss_tokens: none, when it learns the answers
        alone). Nothing for a run on plain text, which has no prompts."""
        if not self.chat:
            return {}
        training = examples_of(self.config, self.tokenizer, split_contents(self.config)[0])
        return {"prompt_loss_tokens": prompt_targets(training, self.tokenizer.encode(ASSISTANT))}

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
        general = spread(examples_of(base.config, self.tokenizer, split_contents(base.config)[1]))
        tuned_loss, _ = scored_windows(self.model, own, self.device)
        base_loss, _ = scored_windows(base.model, own, self.device)
        wins = (tuned_loss < base_loss).float() + 0.5 * (tuned_loss == base_loss).float()
        _, tuned_right = scored_windows(self.model, general, self.device)
        _, base_right = scored_windows(base.model, general, self.device)
        return {"win_rate": wins.mean().item(), "accuracy_drop": (base_right - tuned_right).mean().item()}


def held_out_requests(conversations: list[str], count: int) -> list[tuple[str, str]]:
    """(instruction, reference answer) of `count` conversations spread evenly over them."""
    step = max(1, len(conversations) // count)
    pairs = []
    for conversation in conversations[::step][:count]:
        prompt, response = chat_parts(conversation)
        pairs.append((prompt.removeprefix(USER).removesuffix(ASSISTANT), response.removesuffix(END)))
    return pairs


def spread(windows: Examples) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """COMPARED_WINDOWS of `windows`, spread evenly over them."""
    step = max(1, len(windows) // COMPARED_WINDOWS)
    return [windows[index] for index in range(0, len(windows), step)][:COMPARED_WINDOWS]


@torch.no_grad()
def scored_windows(
    model: nn.Module, windows: list[tuple[torch.Tensor, torch.Tensor]], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each window's mean next-token loss, and each of its next tokens predicted right (0 or 1),
    over the positions its targets count (in a conversation, the answer's)."""
    inputs = torch.stack([window[0] for window in windows]).to(device)
    targets = torch.stack([window[1] for window in windows]).to(device)
    losses, right = [], []
    for batch_inputs, batch_targets in zip(inputs.split(16), targets.split(16), strict=True):
        logits = model(batch_inputs)[0].float()
        per_token = F.cross_entropy(logits.transpose(1, 2), batch_targets, reduction="none")  # 0 if skipped
        counted = batch_targets >= 0
        losses.append(per_token.sum(dim=1) / counted.sum(dim=1).clamp(min=1))
        right.append((logits.argmax(dim=-1) == batch_targets)[counted].float())
    return torch.cat(losses), torch.cat(right)
