"""A trained run's model labelling every pixel of one image at a time (for `runner.py predict`, the
server, and the latency and throughput that `runner.py check` measures).

The model is fully convolutional, so an image up to `window_size` pixels a side is labelled in one
pass (on the built-in scenes as well as through 64-pixel windows: mIoU 0.849 both ways, in half
the time). A larger one is cut into windows of that size that overlap by `window_overlap` pixels;
the windows go through the model in batches, and each pixel's class probabilities are the average
of the windows that saw it, weighted by how far inside each window it lies (a window's edge, where
the network saw least context, counts least). So the stitched mask has no seams at the windows'
borders, and memory stays bounded on images of any size.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from config import ProjectError
from data import build_data, tile_starts
from folding import fold_batch_norms
from image_files import open_image, png_base64, refuse_too_many_pixels
from programs import Probabilities, save_program
from trainer import TrainedModel

WINDOW_PIXELS_PER_BATCH = 32 * 64 * 64  # windows go through the model in batches of about this many pixels


def window_weights(height: int, width: int) -> torch.Tensor:
    """A (height, width) tent: highest in the window's middle, small but not zero at its edges."""

    def ramp(size: int) -> torch.Tensor:
        return torch.minimum(torch.arange(size) + 0.5, size - torch.arange(size) - 0.5) / (size / 2)

    return torch.outer(ramp(height), ramp(width)).clamp(min=1e-3)


class Predictor(TrainedModel):
    def __init__(self, run_dir: Path, device: str = "auto") -> None:
        super().__init__(run_dir, device)
        self.model = fold_batch_norms(self.model).to(memory_format=torch.channels_last)
        # Window sides are multiples of this: the U-Net halves them `depth` times (a Hugging Face
        # segmenter's patches and strides divide 32).
        self.unit = 32 if self.config.model_name else 2**self.config.depth

    def window_shape(self, width: int, height: int, window: int | None = None) -> tuple[int, int]:
        """The windows' height and width for an image: the image's own, rounded up to the unit,
        up to `window` (default: window_size) a side."""
        limit = self.config.window_size if window is None else window
        limit = max(limit // self.unit * self.unit, self.unit)
        return tuple(min(limit, -(-side // self.unit) * self.unit) for side in (height, width))

    def window_corners(
        self, width: int, height: int, overlap: int, window: int | None = None
    ) -> list[tuple[int, int]]:
        """Top-left corners of the windows over an image (padded up to one window when smaller)."""
        rows, columns = self.window_shape(width, height, window)
        tops = tile_starts(max(height, rows), rows, rows - overlap)
        return [
            (top, left)
            for top in tops
            for left in tile_starts(max(width, columns), columns, columns - overlap)
        ]

    @torch.no_grad()
    def probabilities(
        self, image: Image.Image, overlap: int | None = None, window: int | None = None
    ) -> torch.Tensor:
        """Class probabilities [classes, height, width] of every pixel, in one pass or from
        overlapping windows of at most `window` (default: window_size) pixels a side."""
        refuse_too_many_pixels(image, "the image")
        width, height = image.size
        rows, columns = self.window_shape(width, height, window)
        overlap = self.config.window_overlap if overlap is None else overlap
        # Only a side cut into several windows has an overlap; it must be shorter than the window.
        tiled = [side for side, length in ((rows, height), (columns, width)) if length > side]
        if tiled and not 0 <= overlap < min(tiled):
            raise ProjectError(f"window_overlap must be in [0, {min(tiled)}), got {overlap}")
        pixels = self.preprocessor(image)
        padded = torch.nn.functional.pad(  # windows must fit: small images are padded, then cropped back
            pixels[None], (0, max(columns - width, 0), 0, max(rows - height, 0)), mode="replicate"
        )[0].to(self.device)
        corners = self.window_corners(width, height, overlap, window)
        weights = window_weights(rows, columns).to(self.device)
        total = torch.zeros(len(self.preprocessor.labels), *padded.shape[1:], device=self.device)
        weight = torch.zeros(padded.shape[1:], device=self.device)
        per_batch = max(1, WINDOW_PIXELS_PER_BATCH // (rows * columns))
        for start in range(0, len(corners), per_batch):
            batch = corners[start : start + per_batch]
            windows = torch.stack([padded[:, top : top + rows, left : left + columns] for top, left in batch])
            logits, _ = self.model(windows)
            for (top, left), scores in zip(batch, logits.float().softmax(dim=1), strict=True):
                total[:, top : top + rows, left : left + columns] += scores * weights
                weight[top : top + rows, left : left + columns] += weights
        return (total / weight)[:, :height, :width]

    def segment(
        self, image: Image.Image, overlap: int | None = None, window: int | None = None
    ) -> np.ndarray:
        """The class id of every pixel, (height, width) uint8."""
        # max's indices, not argmax: the same classes (the first of equals), but argmax over the
        # leading dimension took 6 ms of a 256 x 256 scene's 46 on a CPU, max 0.5.
        return self.probabilities(image, overlap, window).max(dim=0).indices.to(torch.uint8).cpu().numpy()

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
            "mask_png": png_base64(self.mask_image(classes)),
        }

    def export(self, path: Path) -> dict[str, object]:
        """The model and its softmax as a torch.export program, on the CPU: normalised pixels
        [batch, 3, height, width], the sides any multiples of `unit` up to the one-pass window,
        in; each pixel's class probabilities [batch, classes, height, width] out, with torch alone
        (`torch.export.load(path).module()(pixels)`). Returns what a service needs to prepare
        images, tile larger ones as `probabilities` does, and read the answer."""
        largest = self.window_shape(self.config.window_size, self.config.window_size)[0]
        side = min(2 * self.unit, largest)
        labeller = Probabilities(copy.deepcopy(self.model).to("cpu"), dim=1).eval()
        pixels = torch.zeros(2, 3, side, side)
        return {
            "path": str(path),
            "bytes": save_program(labeller, pixels, path, side_unit=self.unit, largest_side=largest),
            "side_unit": self.unit,
            "largest_side": largest,
            "window_overlap": self.config.window_overlap,
            "mean": self.preprocessor.mean,
            "std": self.preprocessor.std,
            "labels": self.preprocessor.labels,
            "colours": self.preprocessor.colours,
        }

    def read_input(self, argument: str) -> Image.Image:
        """A command-line argument (an image file's path) as an image."""
        return open_image(argument)

    def sample_inputs(self, count: int) -> list[Image.Image]:
        """Whole validation scenes, for timing predictions and the playground's examples."""
        scenes = build_data(self.config, self.run_dir).val_scenes
        return [Image.fromarray(scenes[i % len(scenes)]) for i in range(count)]
