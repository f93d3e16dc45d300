"""A trained run's detector finding people and forklifts in one frame at a time (for
`runner.py predict`, the server, and the latency that `runner.py check` measures).

A frame of any size is resized to fit the model's input (its aspect ratio kept, padded at the
right and bottom), the boxes are read off the heatmap peaks and scaled back to the frame's own
pixels. Latency is timed on 1280 x 720 frames, the size the spec's cameras send, resizing
included.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from data import build_data
from folding import fold_batch_norms
from image_files import open_image, refuse_too_many_pixels
from network import Detector, decode
from programs import save_program
from trainer import TrainedModel

TIMING_SIZE = (1280, 720)  # the frames `sample_inputs` gives: a 720p camera's


class Predictor(TrainedModel):
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        super().__init__(run_dir, device)
        self.model = fold_batch_norms(self.model).to(memory_format=torch.channels_last)

    @torch.no_grad()
    def detect(self, image: Image.Image, min_score: float | None = None) -> list[dict[str, object]]:
        """The boxes in the frame scoring at least `min_score` (default: the run's
        score_threshold), best first, in the frame's own pixels."""
        refuse_too_many_pixels(image, "the frame")
        threshold = self.preprocessor.score_threshold if min_score is None else min_score
        pixels, scale = self.preprocessor.pixels(image)
        outputs, _ = self.model(pixels[None].to(self.device))
        boxes = []
        for label, score, x0, y0, x1, y1 in decode(outputs, min_score=threshold)[0]:
            corners = [x0 / scale, y0 / scale, x1 / scale, y1 / scale]
            limits = [float(image.width), float(image.height)] * 2  # floats: JSON keeps 720.0
            clipped = [
                round(min(max(value, 0.0), limit), 1) for value, limit in zip(corners, limits, strict=True)
            ]
            boxes.append(
                {
                    "label": self.preprocessor.labels[label],
                    "score": round(score, 4),
                    "box": clipped,  # x0, y0, x1, y1
                    "colour": self.preprocessor.colours[label],
                }
            )
        return boxes

    def predict(self, image: Image.Image) -> dict[str, object]:
        """The boxes, and how many of each class: what the server answers and `predict --json`
        prints."""
        boxes = self.detect(image)
        counts = {label: 0 for label in self.preprocessor.labels}
        for box in boxes:
            counts[box["label"]] += 1
        return {
            "width": image.width,
            "height": image.height,
            "threshold": self.preprocessor.score_threshold,
            "boxes": boxes,
            "counts": counts,
        }

    def export(self, path: Path) -> dict[str, object]:
        """The detector and its decoding (network.Detector) as a torch.export program, on the CPU,
        any batch size: `torch.export.load(path).module()(pixels)` gives each frame's 100 best
        (scores, class ids, boxes in input pixels) with torch alone. Returns what a service needs
        to prepare frames and read the boxes (also saved beside it by training: preprocessor.json)."""
        detector = Detector(copy.deepcopy(self.model).to("cpu")).eval()  # its batch norms folded
        pixels = torch.zeros(2, 3, self.preprocessor.input_height, self.preprocessor.input_width)
        return {
            "path": str(path),
            "bytes": save_program(detector, pixels, path),
            "input": [3, self.preprocessor.input_height, self.preprocessor.input_width],
            "mean": self.preprocessor.mean,
            "std": self.preprocessor.std,
            "labels": self.preprocessor.labels,
            "score_threshold": self.preprocessor.score_threshold,
        }

    def read_input(self, argument: str) -> Image.Image:
        """A command-line argument (an image file's path) as an image."""
        return open_image(argument)

    def sample_inputs(self, count: int) -> list[Image.Image]:
        """Validation frames scaled to 1280 x 720, for timing predictions as the cameras would
        send them and for the playground's examples."""
        frames: list[np.ndarray] = build_data(self.config, self.run_dir).val_frames
        return [
            Image.fromarray(frames[i % len(frames)]).resize(TIMING_SIZE, Image.BILINEAR) for i in range(count)
        ]
