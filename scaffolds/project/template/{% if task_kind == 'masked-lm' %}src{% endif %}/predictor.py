"""A trained run's encoder on one text at a time (for `runner.py predict`, the server, and the
latency that `runner.py check` measures): it fills in each [MASK] of the text with the tokens it
finds likeliest, and says what kind of clause a linear probe reads from the text's features.

The probe is fitted on the labelled validation texts' features the first time a run's model is
asked, and kept beside it as probe.pt for the next time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from config import ProjectError
from data import DOMAIN, UNLABELLED, build_data
from probe import LinearProbe, fit_probe, load_or_fit
from trainer import TrainedModel

MASK = "[MASK]"  # how a text marks a token to fill in, whatever the tokenizer calls its mask
PROBE_TEXTS = 10_000  # the probe is fitted on at most this many labelled validation texts


class Predictor(TrainedModel):
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        super().__init__(run_dir, device)
        path = run_dir / "probe.pt"
        self.probe = load_or_fit(path, self.step, self.fit_probe) if self.preprocessor.labels else None

    @torch.no_grad()
    def fit_probe(self) -> LinearProbe | None:
        """A probe fitted on the features of the labelled validation clauses (None without two)."""
        val = build_data(self.config, self.run_dir).val
        labelled = [i for i in range(len(val)) if val.corpus[i] == DOMAIN and val.labels[i] != UNLABELLED][
            :PROBE_TEXTS
        ]
        if len(labelled) < 2:
            return None
        features = [
            self.model.features(val.input_ids[labelled[start : start + 256]].to(self.device)).float().cpu()
            for start in range(0, len(labelled), 256)
        ]
        labels = torch.tensor([val.labels[i] for i in labelled])
        return fit_probe(torch.cat(features), labels, len(self.preprocessor.labels))

    @torch.no_grad()
    def predict(self, text: str, top_k: int = 5) -> dict[str, object]:
        """Each [MASK]'s top-k tokens with their probabilities, the text as written with the likeliest
        ones in place of the masks, and (when the run has clause labels) the probe's top-k labels for
        it (read from the features of the text the tokenizer gave, the likeliest tokens filled in)."""
        if not text.strip():
            raise ProjectError("the text is empty; give a text with [MASK] where a word is to be filled in")
        if top_k < 1:
            raise ProjectError(f"top_k must be 1 or more, got {top_k}")
        tokenizer = self.preprocessor.tokenizer
        input_ids = self.preprocessor.encode([text.replace(MASK, tokenizer.mask_token)])
        input_ids = input_ids[:, : int((input_ids != self.preprocessor.pad_id).sum())].to(self.device)
        logits, _ = self.model(input_ids)
        places = (input_ids[0] == self.preprocessor.mask_id).nonzero().flatten()
        filled = input_ids[0].clone()
        masks = []
        for place in places.tolist():
            probabilities = logits[0, place].float().softmax(dim=-1)
            top = probabilities.topk(min(top_k, len(probabilities)))
            ids = top.indices.tolist()
            filled[place] = ids[0]
            masks.append(
                {
                    "position": place,
                    "top": [
                        {"token": tokenizer.decode([i]).strip(), "probability": round(p, 6)}
                        for i, p in zip(ids, top.values.tolist(), strict=True)
                    ],
                }
            )
        result: dict[str, object] = {
            "text": text,
            "filled": fill_in(text, [mask["top"][0]["token"] for mask in masks]),
            "masks": masks,
            "unfilled": text.count(MASK) - len(masks),  # masks past max_length tokens
        }
        if self.probe is not None:
            probabilities = (
                self.probe.logits(self.model.features(filled.unsqueeze(0))).softmax(dim=-1)[0].cpu()
            )
            top = probabilities.topk(min(top_k, len(self.preprocessor.labels)))
            result["top"] = [
                {"label": self.preprocessor.labels[i], "probability": round(p, 6)}
                for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
            ]
            result["label"] = result["top"][0]["label"]
        return result

    def read_input(self, argument: str) -> str:
        """A command-line argument is the text itself."""
        return argument

    def sample_inputs(self, count: int) -> list[str]:
        """Validation domain texts, a word of each masked, for timing predictions and for the
        playground's examples."""
        val = build_data(self.config, self.run_dir).val
        texts = [
            text for text, corpus in zip(val.texts, val.corpus, strict=True) if corpus == DOMAIN
        ] or val.texts
        most = self.preprocessor.max_length - 2  # room for a [CLS] and a [SEP], if the tokenizer adds them
        return [mask_a_word(texts[i % len(texts)], i, self.token_count, most) for i in range(count)]

    def token_count(self, word: str) -> int:
        return len(self.preprocessor.tokenizer.tokenize(word))


def fill_in(text: str, tokens: list[str]) -> str:
    """`text` as written, its [MASK]s replaced by `tokens` in order (a word piece's "##", which says
    it continues the word before, dropped); [MASK]s past the tokens given stay."""
    pieces = text.split(MASK)
    parts = [pieces[0]]
    for index, after in enumerate(pieces[1:]):
        parts += [tokens[index].removeprefix("##") if index < len(tokens) else MASK, after]
    return "".join(parts)


def mask_a_word(text: str, index: int, token_count: Callable[[str], int], max_tokens: int = 60) -> str:
    """`text` with one of its words of five letters or more (chosen by `index`) replaced by [MASK]:
    one among the first `max_tokens` tokens (the model reads no further), and one the tokenizer
    keeps whole where there is one, so that one token fills it."""
    words = text.split()
    read, tokens = [], 0
    for place, word in enumerate(words):
        tokens += token_count(word)
        if tokens > max_tokens:
            break
        read.append(place)
    read = read or [0]
    longer = [i for i in read if len(words[i].strip(".,;:()")) >= 5] or read
    whole = [i for i in longer if token_count(words[i].strip(".,;:()")) == 1] or longer
    place = whole[(index * 7) % len(whole)]
    word = words[place]
    stripped = word.strip(".,;:()")
    words[place] = word.replace(stripped, MASK, 1) if stripped else MASK
    return " ".join(words)
