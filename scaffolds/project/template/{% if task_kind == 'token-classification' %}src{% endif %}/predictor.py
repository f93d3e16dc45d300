"""A trained run's model tagging one text at a time (for `runner.py predict`, the server, and the
latency that `runner.py check` measures)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch

from data import IGNORE, WORD, build_data, join_words, split_words
from metrics import spans
from programs import Probabilities, save_program
from text_encoding import TOKENIZER_FILE
from trainer import TrainedModel

TAGGING_FILE = "tagging.json"  # inside an exported program: the tag names and how words are split


def entity_words(chosen: set[tuple[str, int, int]], words: list[str]) -> list[dict[str, str]]:
    """Entities given as (type, first word, last word), in reading order, with their words."""
    return [
        {"type": kind, "text": join_words(words[first : last + 1])}
        for kind, first, last in sorted(chosen, key=lambda span: span[1])
    ]


class Predictor(TrainedModel):
    @torch.no_grad()
    def tag_words(self, words: list[str]) -> tuple[list[str], list[float]]:
        """Each word's tag and its probability. A text longer than max_length tokens is tagged in
        consecutive windows of whole words, so every word gets a tag."""
        tags: list[str] = []
        confidence: list[float] = []
        while len(tags) < len(words):
            window = words[len(tags) :]
            input_ids, firsts = self.preprocessor.encode([window])
            logits, _ = self.model(input_ids.to(self.device))
            probabilities = logits.float().softmax(dim=-1)[0].cpu()
            firsts = firsts[0, : probabilities.shape[0]]
            positions = (firsts != IGNORE).nonzero().flatten()
            if len(positions) == 0:  # one word longer than the whole window: leave it untagged
                tags.append("O")
                confidence.append(1.0)
                continue
            best = probabilities[positions].max(dim=-1)
            tags += [self.preprocessor.labels[i] for i in best.indices.tolist()]
            confidence += best.values.tolist()
        return tags, confidence

    def predict(self, text: str) -> dict[str, object]:
        """The entities in `text`: type, the text itself, character offsets and the mean
        probability of its words' tags; and every word with its tag."""
        matches = split_words(text)
        tags, confidence = self.tag_words([match.group() for match in matches])
        entities = []
        for kind, first, last in sorted(spans(tags), key=lambda span: span[1]):
            start, end = matches[first].start(), matches[last].end()
            score = sum(confidence[first : last + 1]) / (last - first + 1)
            entities.append(
                {"type": kind, "text": text[start:end], "start": start, "end": end, "score": round(score, 6)}
            )
        words = [{"word": m.group(), "tag": tag} for m, tag in zip(matches, tags, strict=True)]
        return {"entities": entities, "words": words}

    def export(self, path: Path) -> dict[str, object]:
        """The tagger and its softmax as a torch.export program, on the CPU, any batch size, with
        the run's tokenizer (TOKENIZER_FILE, padding and truncating by itself) and how to read its
        answer (TAGGING_FILE: the tag names, the pattern that splits a text into words) inside:
        torch, `tokenizers` and `re` turn texts into words, those into ids [batch, tokens] (at most
        max_length) and those into tag probabilities [batch, tokens, tags], without this project;
        each word takes its first token's tag. Returns what a service needs."""
        prepare = self.preprocessor
        tagger = Probabilities(copy.deepcopy(self.model).to("cpu"), dim=-1).eval()
        ids, _ = prepare.encode([["an", "example", "note"], ["another", "one"]])
        tagging = {"tags": prepare.labels, "word_pattern": WORD.pattern}
        inside = {TOKENIZER_FILE: prepare.standalone_json(), TAGGING_FILE: json.dumps(tagging)}
        size = save_program(tagger, ids[:, :8], path, longest_text=prepare.max_length, extra_files=inside)
        return {
            "path": str(path),
            "bytes": size,
            "longest_text": prepare.max_length,
            "pad_id": prepare.pad_id,
            "tokenizer": TOKENIZER_FILE,
            "tagging": TAGGING_FILE,
            "labels": prepare.labels,
            "word_pattern": WORD.pattern,
        }

    def errors(self, notes: list[list[str]], tags: list[list[int]], limit: int) -> tuple[int, list[dict]]:
        """The notes (as words, with their labelled tag ids) whose predicted entities differ from
        the labelled ones: how many, and the first `limit` of them with the entities missed (or
        found with another type or extent) and those found that are not there."""
        labels = self.preprocessor.labels
        count, examples = 0, []
        for words, tag_ids in zip(notes, tags, strict=True):
            labelled, found = spans([labels[i] for i in tag_ids]), spans(self.tag_words(words)[0])
            if labelled == found:
                continue
            count += 1
            if len(examples) < limit:
                missed, spurious = labelled - found, found - labelled
                examples.append(
                    {
                        "text": join_words(words),
                        "missed": entity_words(missed, words),
                        "spurious": entity_words(spurious, words),
                    }
                )
        return count, examples

    def read_input(self, argument: str) -> str:
        """A command-line argument is the text itself."""
        return argument

    def sample_inputs(self, count: int) -> list[str]:
        """Validation notes, for timing predictions."""
        texts = build_data(self.config, self.run_dir).val.texts
        return [texts[i % len(texts)] for i in range(count)]
