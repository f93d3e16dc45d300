"""A trained run's model answering one text at a time (for `runner.py predict`, the server, and
the latency that `runner.py check` measures)."""

from __future__ import annotations

import torch

from data import build_data
from trainer import TrainedModel


class Predictor(TrainedModel):
    @torch.no_grad()
    def predict(self, text: str, top_k: int = 5) -> dict[str, object]:
        """The most likely label and the top-k labels with their probabilities."""
        input_ids = self.preprocessor.encode([text]).to(self.device)
        logits, _ = self.model(input_ids)
        probabilities = logits.float().softmax(dim=-1)[0]
        top = probabilities.topk(min(top_k, len(self.preprocessor.labels)))
        ranked = [
            {"label": self.preprocessor.labels[i], "probability": round(p, 6)}
            for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]
        return {"label": ranked[0]["label"], "top": ranked}

    def read_input(self, argument: str) -> str:
        """A command-line argument is the text itself."""
        return argument

    def sample_inputs(self, count: int) -> list[str]:
        """Validation texts, for timing predictions."""
        val = build_data(self.config, self.run_dir).val
        return [val.texts[i % len(val)] for i in range(count)]
