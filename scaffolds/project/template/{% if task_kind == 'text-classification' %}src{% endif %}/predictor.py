"""A trained run's model answering one text at a time (for `runner.py predict`, the server, and
the latency that `runner.py check` measures)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from data import build_data
from programs import Probabilities, save_program
from text_encoding import TOKENIZER_FILE
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

    def export(self, path: Path) -> dict[str, object]:
        """The classifier and its softmax as a torch.export program, on the CPU, any batch size,
        with the run's tokenizer inside (TOKENIZER_FILE, padding and truncating by itself): torch
        and the `tokenizers` library turn texts into ids [batch, tokens] (tokens: the batch's
        longest text, at most max_length) and those into class probabilities [batch, classes],
        without this project. Returns what a service needs."""
        prepare = self.preprocessor
        classifier = Probabilities(copy.deepcopy(self.model).to("cpu"), dim=-1).eval()
        ids = prepare.encode(["an example text", "another one"])[:, :8]
        inside = {TOKENIZER_FILE: prepare.standalone_json()}
        return {
            "path": str(path),
            "bytes": save_program(classifier, ids, path, longest_text=prepare.max_length, extra_files=inside),
            "longest_text": prepare.max_length,
            "pad_id": prepare.pad_id,
            "tokenizer": TOKENIZER_FILE,
            "labels": prepare.labels,
        }

    @torch.no_grad()
    def errors(self, texts: list[str], labels: list[int], limit: int) -> tuple[int, list[dict]]:
        """The texts (with their labelled class ids) the model labels wrong: how many, and the
        first `limit` of them with the label, the predicted one and its probability."""
        names, count, examples = self.preprocessor.labels, 0, []
        for start in range(0, len(texts), 256):
            batch = texts[start : start + 256]
            logits, _ = self.model(self.preprocessor.encode(batch).to(self.device))
            best = logits.float().softmax(dim=-1).max(dim=-1)
            for text, label, chosen, probability in zip(
                batch, labels[start : start + 256], best.indices.tolist(), best.values.tolist(), strict=True
            ):
                if chosen == label:
                    continue
                count += 1
                if len(examples) < limit:
                    examples.append(
                        {
                            "text": text,
                            "label": names[label],
                            "predicted": names[chosen],
                            "probability": round(probability, 6),
                        }
                    )
        return count, examples

    def read_input(self, argument: str) -> str:
        """A command-line argument is the text itself."""
        return argument

    def sample_inputs(self, count: int) -> list[str]:
        """Validation texts, for timing predictions."""
        val = build_data(self.config, self.run_dir).val
        return [val.texts[i % len(val)] for i in range(count)]
