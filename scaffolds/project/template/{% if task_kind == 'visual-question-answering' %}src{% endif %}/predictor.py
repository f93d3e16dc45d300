"""A trained run's chart reader answering one question about one chart at a time (for
`runner.py predict`, the server, and the latency that `runner.py check` measures)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from PIL import Image

from config import ProjectError
from data import build_data
from image_files import open_image, refuse_too_many_pixels
from trainer import TrainedModel

MAX_QUESTION_CHARACTERS = 2_000


class ChartQuestion(NamedTuple):
    image: Image.Image
    question: str


class Predictor(TrainedModel):
    @torch.no_grad()
    def predict(self, asked: ChartQuestion, top: int = 5) -> dict[str, object]:
        """The answer the reader is surest of, with its probability, and the next `top - 1`
        answers: what the server answers and `predict --json` prints."""
        image, question = asked
        if not question.strip():
            raise ProjectError("the question is empty; ask something about the chart")
        if len(question) > MAX_QUESTION_CHARACTERS:
            raise ProjectError(
                f"the question has {len(question):,} characters; at most {MAX_QUESTION_CHARACTERS:,}"
            )
        refuse_too_many_pixels(image, "the chart")
        pixels = self.preprocessor.pixels(image)[None].to(self.device)
        words = self.preprocessor.encode_question(question)[None].to(self.device)
        probabilities = self.model((pixels, words))[0].float().softmax(-1)[0]
        chances, ids = probabilities.topk(min(top, len(self.preprocessor.answers)))
        ranked = [
            {"answer": self.preprocessor.answers[i], "probability": round(p, 4)}
            for i, p in zip(ids.tolist(), chances.tolist(), strict=True)
        ]
        return {"question": question, **ranked[0], "alternatives": ranked[1:]}

    def read_input(self, argument: str) -> Image.Image:
        """A command-line argument (an image file's path) as an image."""
        return open_image(argument)

    def sample_inputs(self, count: int) -> list[ChartQuestion]:
        """Validation charts with one of their questions each, for timing predictions and the
        playground's examples."""
        val = build_data(self.config, self.run_dir).val
        # Spread over the split, one place further each time: the questions are listed chart by
        # chart, so the picks go through the kinds of question as well as the charts and their types.
        step = max(1, len(val) // max(count, 1)) + 1
        picks = [i * step % len(val) for i in range(count)]
        return [ChartQuestion(val.image(i), val.question(i).text) for i in picks]
