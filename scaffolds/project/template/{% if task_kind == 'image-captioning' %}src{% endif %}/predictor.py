"""A trained run's captioner describing one photo at a time (for `runner.py predict`, the server,
and the latency that `runner.py check` measures)."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image

from config import ProjectError
from data import build_data
from folding import fold_batch_norms
from image_files import open_image, refuse_too_many_pixels
from trainer import TrainedModel


class Predictor(TrainedModel):
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        super().__init__(run_dir, device)
        self.model = fold_batch_norms(self.model)

    @torch.no_grad()
    def predict(self, image: Image.Image, beams: int = 0) -> dict[str, object]:
        """The best caption, one sentence of at most max_words words, and the other captions beam
        search kept, each with its log-probability: what the server answers and `predict --json`
        prints."""
        if beams < 0:
            default = self.config.beam_size
            raise ProjectError(f"beams must be 1 or more (0: the run's beam_size, {default}), not {beams}")
        refuse_too_many_pixels(image, "the photo")
        pixels = self.preprocessor.pixels(image)[None].to(self.device)
        captions, scores = self.model.beam_search(self.model.encode(pixels), beams)
        ranked = [
            {"caption": self.preprocessor.text(ids), "log_probability": round(score, 4)}
            for ids, score in zip(captions[0].tolist(), scores[0].tolist(), strict=True)
            if score > float("-inf")
        ]
        best = ranked[0]
        return {
            "caption": best["caption"],
            "words": len(best["caption"].split()),
            "log_probability": best["log_probability"],
            "alternatives": ranked[1:],
        }

    def read_input(self, argument: str) -> Image.Image:
        """A command-line argument (an image file's path) as an image."""
        return open_image(argument)

    def sample_inputs(self, count: int) -> list[Image.Image]:
        """Validation photos, for timing predictions and the playground's examples."""
        val = build_data(self.config, self.run_dir).val
        return [val.image(i % len(val)) for i in range(count)]
