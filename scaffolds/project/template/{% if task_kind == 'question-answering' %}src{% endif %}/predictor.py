"""A trained run's reader answering one question at a time (for `runner.py predict`, the server,
and the latency that `runner.py check` measures): retrieval, then span extraction.

Given a passage, the reader reads it (in windows if it is long). Given none, a BM25 index over
every passage of the run's data (for the built-in data: each section of every manual; training
saves them with the run) ranks the passages by the question's words, and the reader reads the
first. The answer is the span with the highest start + end score, given with the title of its
passage and its character offsets in it; unless the passage's no-answer score is higher, in
which case the reader abstains: the answer is "". The next passages are listed too, for a
person to look at.

Reading more than the first passage and taking the answer the reader is surest of sounds
better, but on the built-in manuals an earlier reader answered fewer questions right end to end
that way (0.63 of the held-out ones with three passages, 0.69 with one): its scores do not
compare well across passages.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import cached_property
from pathlib import Path

import torch

from data import Question, distinct_passages, load_passages, read_questions, read_splits
from metrics import best_spans
from trainer import TrainedModel

LISTED = 3  # passages retrieval lists; the reader reads the first
WORD = re.compile(r"\w+")
TITLE_WEIGHT = 2
STEM = 5  # letters a word is cut to, so that weigh, weighs and weight are one term


def words(text: str) -> list[str]:
    """Lower-cased words cut to their first STEM letters: a crude stemmer that needs no
    language's rules."""
    return [word[:STEM] for word in WORD.findall(text.lower())]


class PassageIndex:
    """Okapi BM25 over passages: a passage scores for each question word it contains, more for
    rare words, less as it grows long. A title's words count TITLE_WEIGHT times: a manual names
    its device in its titles more than in its text. k1 is low (0.5, against the usual 1.2): a
    word said again adds little, so boilerplate that repeats the device's kind outweighs no fact."""

    def __init__(self, passages: list[tuple[str, str]], k1: float = 0.5, b: float = 0.75):
        self.passages = passages  # (title, text)
        self.counts = [Counter(words(f"{title} " * TITLE_WEIGHT + text)) for title, text in passages]
        self.lengths = [sum(counts.values()) for counts in self.counts]
        average = sum(self.lengths) / max(len(self.lengths), 1)
        self.norms = [k1 * (1 - b + b * length / max(average, 1)) for length in self.lengths]
        documents = Counter(word for counts in self.counts for word in counts)
        total = len(passages)
        self.idf = {word: math.log(1 + (total - n + 0.5) / (n + 0.5)) for word, n in documents.items()}
        self.k1 = k1

    def search(self, question: str, count: int) -> list[tuple[int, float]]:
        """The `count` best passages for `question`: (index, score), best first."""
        query = [word for word in set(words(question)) if word in self.idf]
        scores = []
        for index, (counts, norm) in enumerate(zip(self.counts, self.norms, strict=True)):
            score = sum(
                self.idf[w] * counts[w] * (self.k1 + 1) / (counts[w] + norm) for w in query if w in counts
            )
            scores.append((index, score))
        return sorted((s for s in scores if s[1] > 0), key=lambda s: -s[1])[:count]


class Predictor(TrainedModel):
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        super().__init__(run_dir, device)
        passages = load_passages(run_dir)  # saved by training: no need to read the data to serve
        if passages is None:  # a run from before runs saved their passages: read them from its data
            train, val, columns = read_splits(self.config)
            passages = distinct_passages(train, val, columns)
            self.questions = read_questions(val, columns)  # read now, while the splits are at hand
        self.index = PassageIndex(passages)

    @cached_property
    def questions(self) -> list[Question]:
        """The validation questions, read from the run's data the first time they are asked for:
        answering needs none of them, only `sample_inputs` does."""
        _, val, columns = read_splits(self.config)
        return read_questions(val, columns)

    @torch.no_grad()
    def read(self, question: str, passages: list[tuple[str, str]]) -> dict[str, object]:
        """The best answer to `question` in `passages` ((title, text) pairs), or an abstention."""
        encoded = [self.preprocessor.encode(question, text, title) for title, text in passages]
        windows = [(number, window) for number, passage in enumerate(encoded) for window in passage.windows]
        input_ids = torch.tensor([window.input_ids for _, window in windows], device=self.device)
        logits, _ = self.model(input_ids)
        starts = torch.tensor([window.context_start for _, window in windows], device=self.device)
        lengths = torch.tensor([window.length for _, window in windows], device=self.device)
        scores, firsts, lasts, no_answer = (t.tolist() for t in best_spans(logits, starts, lengths))
        best: dict[int, tuple[float, int, int]] = {}  # per passage: span score, first and last token
        lowest_no_answer: dict[int, float] = {}
        for row, (number, window) in enumerate(windows):
            shift = window.offset - window.context_start
            if scores[row] > best.get(number, (-math.inf,))[0]:
                best[number] = (scores[row], firsts[row] + shift, lasts[row] + shift)
            lowest_no_answer[number] = min(lowest_no_answer.get(number, math.inf), no_answer[row])
        # The passage whose best span beats its own no-answer score by the most.
        number = max(best, key=lambda n: best[n][0] - lowest_no_answer[n])
        score, first, last = best[number]
        margin = score - lowest_no_answer[number]
        title, text = passages[number]
        if margin <= 0 or not math.isfinite(score):
            return {
                "answer": "",
                "abstained": True,
                "margin": round(margin, 4),
                "title": title,
                "context": text,
            }
        spans = encoded[number].char_spans
        start, end = spans[first][0], spans[last][1]
        return {
            "answer": text[start:end],
            "abstained": False,
            "margin": round(margin, 4),
            "title": title,
            "context": text,
            "start": start,
            "end": end,
        }

    def predict(self, question: str, context: str | None = None) -> dict[str, object]:
        """The answer to `question`: from `context` if given, else from the passages retrieval finds
        (listed under "retrieved" with their BM25 scores)."""
        if context is not None:
            return {"question": question, **self.read(question, [("", context)])}
        found = self.index.search(question, LISTED)
        if not found:  # no word of the question occurs in any passage
            nothing = {"answer": "", "abstained": True, "margin": None, "title": "", "context": ""}
            return {"question": question, **nothing, "retrieved": []}
        retrieved = [{"title": self.index.passages[i][0], "score": round(s, 4)} for i, s in found]
        first = self.index.passages[found[0][0]]
        return {"question": question, **self.read(question, [first]), "retrieved": retrieved}

    def read_input(self, argument: str) -> str:
        """A command-line argument is the question itself."""
        return argument

    def sample_inputs(self, count: int) -> list[str]:
        """Validation questions spread over the split (many devices, every kind of fact), for
        timing answers and for the playground's examples."""
        step = max(1, len(self.questions) // count) + 1  # + 1: not always the same phrasing
        return [self.questions[i * step % len(self.questions)].question for i in range(count)]
