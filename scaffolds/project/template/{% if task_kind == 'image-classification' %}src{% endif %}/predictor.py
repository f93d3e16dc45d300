"""A trained run's model answering one image at a time (for `runner.py predict`, the server, and
the latency that `runner.py check` measures)."""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from PIL import Image

from data import build_data
from image_files import open_image
from programs import Probabilities, save_program
from trainer import TrainedModel


class Predictor(TrainedModel):
    @torch.no_grad()
    def predict(self, image: Image.Image, top_k: int = 5) -> dict[str, object]:
        """The most likely label and the top-k labels with their probabilities."""
        pixels = self.preprocessor(image).unsqueeze(0).to(self.device)
        logits, _ = self.model(pixels)
        probabilities = logits.float().softmax(dim=-1)[0]
        top = probabilities.topk(min(top_k, len(self.preprocessor.labels)))
        ranked = [
            {"label": self.preprocessor.labels[i], "probability": round(p, 6)}
            for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)
        ]
        return {"label": ranked[0]["label"], "top": ranked}

    def export(self, path: Path) -> dict[str, object]:
        """The classifier as a torch.export program, on the CPU, any batch size:
        `torch.export.load(path).module()(pixels)` gives each image's class probabilities with
        torch alone. Returns what a service needs to prepare images and read the answer."""
        prepare = self.preprocessor
        classifier = Probabilities(copy.deepcopy(self.model).to("cpu"), dim=-1).eval()
        pixels = torch.zeros(2, prepare.channels, prepare.image_size, prepare.image_size)
        return {
            "path": str(path),
            "bytes": save_program(classifier, pixels, path),
            "input": [prepare.channels, prepare.image_size, prepare.image_size],
            "mean": prepare.mean,
            "std": prepare.std,
            "inverted_when_light": prepare.dark_background and prepare.channels == 1,
            "labels": prepare.labels,
        }

    def read_input(self, argument: str) -> Image.Image:
        """A command-line argument (an image file's path) as an image."""
        return open_image(argument)

    def sample_inputs(self, count: int) -> list[Image.Image]:
        """Validation images, for timing predictions."""
        val = build_data(self.config, self.run_dir).val
        return [val.image(i % len(val)) for i in range(count)]
