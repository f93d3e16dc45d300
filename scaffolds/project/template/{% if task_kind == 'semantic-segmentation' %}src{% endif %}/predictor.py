"""A trained run's model labelling every pixel of one image at a time (for `runner.py predict`, the
server, and the latency and throughput that `runner.py check` measures).

An image of any size is cut into windows of the training tile size that overlap by
`window_overlap` pixels; the windows go through the model in batches, and each pixel's class
probabilities are the average of the windows that saw it, weighted by how far inside each window
it lies (a window's edge, where the network saw least context, counts least). So the stitched
mask has no seams at the windows' borders.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from config import ProjectError
from data import build_data, tile_corners
from folding import fold_batch_norms
from trainer import load_trained_model

WINDOWS_PER_BATCH = 32
MAX_PIXELS = 4096 * 4096  # larger images are refused: their probabilities alone would take GBs


def window_weights(size: int) -> torch.Tensor:
    """A (size, size) tent: highest in the window's middle, small but not zero at its edges."""
    ramp = torch.minimum(torch.arange(size) + 0.5, size - torch.arange(size) - 0.5) / (size / 2)
    return torch.outer(ramp, ramp).clamp(min=1e-3)


class Predictor:
    def __init__(self, run_dir: Path, device: str = "auto"):
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.run_dir = run_dir
        self.device = torch.device(device)
        self.config, self.preprocessor, model, self.step = load_trained_model(run_dir, self.device)
        self.model = fold_batch_norms(model).to(memory_format=torch.channels_last)
        self.tile = self.preprocessor.tile_size
        self.weights = window_weights(self.tile).to(self.device)

    @torch.no_grad()
    def probabilities(self, image: Image.Image, overlap: int | None = None) -> torch.Tensor:
        """Class probabilities [classes, height, width] of every pixel, from overlapping windows."""
        overlap = self.config.window_overlap if overlap is None else overlap
        if not 0 <= overlap < self.tile:
            raise ProjectError(f"window_overlap must be in [0, {self.tile}), got {overlap}")
        width, height = image.size
        if width * height > MAX_PIXELS:
            raise ProjectError(
                f"the image is {width}x{height}; at most {MAX_PIXELS:,} pixels are labelled at once"
            )
        pixels = self.preprocessor(image)
        padded = torch.nn.functional.pad(  # windows must fit: small images are padded, then cropped back
            pixels[None], (0, max(self.tile - width, 0), 0, max(self.tile - height, 0)), mode="replicate"
        )[0].to(self.device)
        corners = self.window_corners(width, height, overlap)
        total = torch.zeros(len(self.preprocessor.labels), *padded.shape[1:], device=self.device)
        weight = torch.zeros(padded.shape[1:], device=self.device)
        for start in range(0, len(corners), WINDOWS_PER_BATCH):
            batch = corners[start : start + WINDOWS_PER_BATCH]
            windows = torch.stack(
                [padded[:, top : top + self.tile, left : left + self.tile] for top, left in batch]
            )
            logits, _ = self.model(windows)
            for (top, left), scores in zip(batch, logits.float().softmax(dim=1), strict=True):
                total[:, top : top + self.tile, left : left + self.tile] += scores * self.weights
                weight[top : top + self.tile, left : left + self.tile] += self.weights
        return (total / weight)[:, :height, :width]

    def window_corners(self, width: int, height: int, overlap: int) -> list[tuple[int, int]]:
        """Top-left corners of the windows over an image (padded up to one window when smaller)."""
        return tile_corners(max(height, self.tile), max(width, self.tile), self.tile, self.tile - overlap)

    def segment(self, image: Image.Image, overlap: int | None = None) -> np.ndarray:
        """The class id of every pixel, (height, width) uint8."""
        # max's indices, not argmax: the same classes (the first of equals), but argmax over the
        # leading dimension took 6 ms of a 256 x 256 scene's 46 on a CPU, max 0.5.
        return self.probabilities(image, overlap).max(dim=0).indices.to(torch.uint8).cpu().numpy()

    def mask_image(self, classes: np.ndarray) -> Image.Image:
        """The class map as a palette PNG image in the classes' colours."""
        mask = Image.fromarray(classes, mode="P")
        palette = [int(colour[i : i + 2], 16) for colour in self.preprocessor.colours for i in (1, 3, 5)]
        mask.putpalette(palette + [0] * (768 - len(palette)))
        return mask

    def predict(self, image: Image.Image) -> dict[str, object]:
        """Each class's share of the image and colour, and the mask as a PNG (base64): what the
        server answers and `predict --json` prints."""
        classes = self.segment(image)
        counts = np.bincount(classes.ravel(), minlength=len(self.preprocessor.labels))
        buffer = io.BytesIO()
        self.mask_image(classes).save(buffer, format="PNG")
        return {
            "width": int(classes.shape[1]),
            "height": int(classes.shape[0]),
            "windows": len(self.window_corners(image.width, image.height, self.config.window_overlap)),
            "classes": [
                {"label": label, "colour": colour, "fraction": round(float(count) / classes.size, 6)}
                for label, colour, count in zip(
                    self.preprocessor.labels, self.preprocessor.colours, counts.tolist(), strict=True
                )
            ],
            "mask_png": base64.b64encode(buffer.getvalue()).decode("ascii"),
        }

    def read_input(self, argument: str) -> Image.Image:
        """A command-line argument (an image file's path) as an image."""
        try:
            image = Image.open(argument)
            image.load()
        except OSError as error:  # a missing file, or one PIL cannot decode
            raise ProjectError(f"cannot read an image from {argument}: {error}") from None
        return image

    def sample_inputs(self, count: int) -> list[Image.Image]:
        """Whole validation scenes, for timing predictions and the playground's examples."""
        scenes = build_data(self.config, self.run_dir).val_scenes
        return [Image.fromarray(scenes[i % len(scenes)]) for i in range(count)]
