"""Images in, labelled or not, (pixels, label) examples out: the sources, the split and the
preprocessing.

Where the images come from (config.dataset):
  builtin      shapes drawn here from a fixed seed (nothing is downloaded): a circle, square,
               triangle, star or cross of any colour, size and place, upright within 15 degrees,
               on a mottled ground, 32 x 32 pixels, 6,000 images
  a folder     images, in one sub-folder per class where there are labels (Hugging Face
               "imagefolder"), or a dataset saved with `save_to_disk`
  a file       .csv / .json / .jsonl / .parquet with an image column (and a label column)
  a hub name   any Hugging Face image dataset (needs the network once)

Pre-training reads pixels only: it never reads a label. Labels serve the linear probe that
measures the features, on the validation split (the labelled subset, held out from pre-training;
see metrics.py). A source without labels trains the same (its labels read UNLABELLED), and its
runs report the reconstruction alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageDraw

from config import Config, ProjectError
from loading import find_column, read_dataset, train_val_split

if TYPE_CHECKING:  # imported only for a source that is not built in
    from datasets import Dataset

UNLABELLED = -1  # the label of an image from a source without labels
SHAPES = ("circle", "square", "triangle", "star", "cross")
BUILTIN_IMAGES, BUILTIN_SIZE, BUILTIN_SEED = 6000, 32, 2026
SUPERSAMPLE = 4  # shapes are drawn this many times larger, then shrunk: smooth edges
# Shapes stand upright within this many degrees, as things in photos mostly do. After 3,000 steps
# (fp32 on an H200), a linear probe fitted on 480 training images named 0.72 of the held-out
# shapes right when they were upright, 0.69 within 15 degrees, 0.64 at any turn.
MAX_TILT = np.radians(15)


# --- The built-in shapes -------------------------------------------------------------------


def shape_outline(shape: str, centre: np.ndarray, radius: float, turn: float) -> list[tuple[float, float]]:
    """The corners of a polygonal shape around `centre`, turned by `turn` radians."""
    if shape == "square":
        angles, radii = np.arange(4) * np.pi / 2 + np.pi / 4, np.full(4, radius)
    elif shape == "triangle":
        angles, radii = np.arange(3) * 2 * np.pi / 3 - np.pi / 2, np.full(3, radius * 1.15)
    elif shape == "star":  # five points, with inner corners at 45% of the radius
        angles = np.arange(10) * np.pi / 5 - np.pi / 2
        radii = np.where(np.arange(10) % 2 == 0, radius * 1.1, radius * 0.45)
    else:  # a cross: twelve corners of two bars a third of its width thick
        third = radius / 3
        corners = [(-third, -radius), (third, -radius), (third, -third), (radius, -third), (radius, third),
                   (third, third), (third, radius), (-third, radius), (-third, third), (-radius, third),
                   (-radius, -third), (-third, -third)]  # fmt: skip
        offsets = np.array(corners)
        angles, radii = np.arctan2(offsets[:, 1], offsets[:, 0]), np.hypot(offsets[:, 0], offsets[:, 1])
    angles = angles + turn
    return [
        (centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)
    ]


def shape_image(rng: np.random.Generator, size: int = BUILTIN_SIZE) -> tuple[np.ndarray, int]:
    """One generated image (size, size, 3) uint8 and its shape's index in SHAPES.

    The ground is a blend of two random colours in blotches, with grain; the shape takes a colour
    at least 120 away from the ground's mean (sum of channel differences), so it always stands out,
    but colour says nothing about which shape it is. The shape is drawn SUPERSAMPLE times larger
    as a coverage mask and shrunk, so its edges blend into the ground.
    """
    label = int(rng.integers(len(SHAPES)))
    blotches = np.kron(rng.random((4, 4)), np.ones((size // 4, size // 4)))
    blend = (0.8 * blotches + 0.2 * rng.random((size, size)))[..., None]
    ground_a, ground_b = rng.integers(0, 256, size=3), rng.integers(0, 256, size=3)
    ground = ground_a * (1 - blend) + ground_b * blend
    colour = rng.integers(0, 256, size=3)
    while np.abs(colour - ground.mean(axis=(0, 1))).sum() < 120:
        colour = rng.integers(0, 256, size=3)
    big = size * SUPERSAMPLE
    coverage = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(coverage)
    radius = rng.uniform(0.22, 0.38) * big
    centre = rng.uniform(radius * 1.15, big - radius * 1.15, size=2)
    if SHAPES[label] == "circle":
        draw.ellipse([*(centre - radius), *(centre + radius)], fill=255)
    else:
        draw.polygon(shape_outline(SHAPES[label], centre, radius, rng.uniform(-MAX_TILT, MAX_TILT)), fill=255)
    alpha = np.asarray(coverage.resize((size, size), Image.Resampling.BOX), dtype=np.float64)[..., None] / 255
    return (ground * (1 - alpha) + colour * alpha).round().astype(np.uint8), label


def builtin_shapes(count: int = BUILTIN_IMAGES, seed: int = BUILTIN_SEED) -> tuple[np.ndarray, np.ndarray]:
    """`count` generated images [count, 32, 32, 3] uint8 and their labels; the same on every call."""
    generators = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(count)]
    drawn = [shape_image(rng) for rng in generators]
    return np.stack([pixels for pixels, _ in drawn]), np.array([label for _, label in drawn])


# --- Sources: each split is a sequence of (PIL image, label) -------------------------------


class ImageSource:
    """One split of a source: images by index with their labels (UNLABELLED where there is none)."""

    def __len__(self) -> int:
        raise NotImplementedError

    def image(self, index: int) -> Image.Image:
        raise NotImplementedError

    def label(self, index: int) -> int:
        raise NotImplementedError


class ArrayImages(ImageSource):
    """Images held as one uint8 array (the built-in shapes)."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray):
        self.pixels, self.labels = pixels, labels

    def __len__(self) -> int:
        return len(self.pixels)

    def image(self, index: int) -> Image.Image:
        return Image.fromarray(self.pixels[index])

    def label(self, index: int) -> int:
        return int(self.labels[index])


class DatasetImages(ImageSource):
    """A Hugging Face split: an image column, and a class-label column if the source has one."""

    def __init__(self, split: Dataset, image_column: str, label_column: str | None):
        self.split, self.image_column, self.label_column = split, image_column, label_column

    def __len__(self) -> int:
        return len(self.split)

    def image(self, index: int) -> Image.Image:
        return self.split[index][self.image_column]

    def label(self, index: int) -> int:
        return int(self.split[index][self.label_column]) if self.label_column else UNLABELLED


def read_splits(config: Config) -> tuple[ImageSource, ImageSource, list[str]]:
    """The training and validation splits of the source, and its class names (none: unlabelled)."""
    if config.dataset == "builtin":
        pixels, labels = builtin_shapes()
        order = np.random.default_rng(config.seed).permutation(len(pixels))
        cut = len(pixels) - round(len(pixels) * config.val_fraction)
        train, val = order[:cut], order[cut:]
        return ArrayImages(pixels[train], labels[train]), ArrayImages(pixels[val], labels[val]), list(SHAPES)

    from datasets import ClassLabel, DatasetDict
    from datasets import Image as ImageFeature

    source = read_dataset(config.dataset)
    features = (source["train"] if isinstance(source, DatasetDict) else source).features
    image_column = find_column(
        source, config.image_column, ("image", "img", "pixel_values"), "image_column", ImageFeature
    )
    label_column: str | None = None
    if (
        config.label_column
        or any(isinstance(f, ClassLabel) for f in features.values())
        or "label" in features
    ):
        label_column = find_column(
            source, config.label_column, ("label", "labels"), "label_column", ClassLabel
        )
    train, val = train_val_split(source, config, label_column)
    names = list(train.features[label_column].names) if label_column else []
    return (
        DatasetImages(train, image_column, label_column),
        DatasetImages(val, image_column, label_column),
        names,
    )


def split_contents(config: Config) -> tuple[Iterator[bytes], Iterator[bytes]]:
    """The pixels of every training and validation image (with their mode and size), one at a
    time, for counting validation images that are copies of training ones."""
    train, val, _ = read_splits(config)

    def pixels(split: ImageSource) -> Iterator[bytes]:
        for index in range(len(split)):
            image = split.image(index)
            yield f"{image.mode} {image.size}".encode() + image.tobytes()

    return pixels(train), pixels(val)


# --- Preprocessing -------------------------------------------------------------------------


@dataclass
class ImagePreprocessor:
    """PIL image -> normalised float tensor [channels, size, size]; also knows the class names.

    Saved with each run (preprocessor.json), so the predictor applies exactly the training transform.
    """

    image_size: int
    channels: int
    labels: list[str]  # the probe's classes; empty for a source without labels
    mean: float = 0.5
    std: float = 0.25

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("L" if self.channels == 1 else "RGB")
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BICUBIC)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        pixels = pixels.unsqueeze(0) if self.channels == 1 else pixels.permute(2, 0, 1)
        return (pixels - self.mean) / self.std

    def to_image(self, pixels: torch.Tensor) -> Image.Image:
        """The inverse: a normalised tensor [channels, size, size] back to a PIL image."""
        values = (pixels.float().cpu() * self.std + self.mean).clamp(0, 1).mul(255).round().to(torch.uint8)
        array = values[0].numpy() if self.channels == 1 else values.permute(1, 2, 0).numpy()
        return Image.fromarray(array)

    def save(self, run_dir: Path) -> None:
        (run_dir / "preprocessor.json").write_text(json.dumps(vars(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> ImagePreprocessor:
        return cls(**json.loads((run_dir / "preprocessor.json").read_text()))


class PretrainingImages(torch.utils.data.Dataset):
    """A split seen as (pixels, label) pairs for a DataLoader; in training an image is flipped left
    to right half the time (pre-training ignores the label)."""

    def __init__(self, source: ImageSource, preprocessor: ImagePreprocessor, flip: bool):
        self.source, self.preprocessor, self.flip = source, preprocessor, flip

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        pixels = self.preprocessor(self.source.image(index))
        if self.flip and torch.rand(()) < 0.5:
            pixels = pixels.flip(-1)
        return pixels, self.source.label(index)

    def image(self, index: int) -> Image.Image:
        return self.source.image(index)


@dataclass
class TaskData:
    train: PretrainingImages
    val: PretrainingImages
    preprocessor: ImagePreprocessor


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it, and wrap both splits with the preprocessing (the one saved in
    `run_dir` when continuing a run)."""
    train, val, labels = read_splits(config)
    if len(train) == 0 or len(val) == 0:
        raise ProjectError(f"{config.dataset}: a split has no images; lower val_fraction or add images")
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        sample = train.image(0)
        size = config.image_size or max(sample.size)
        channels = 1 if sample.mode in ("L", "1") else 3
        preprocessor = ImagePreprocessor(image_size=size, channels=channels, labels=labels)
    if preprocessor.image_size % config.patch_size:
        raise ProjectError(
            f"image_size={preprocessor.image_size} is not a multiple of patch_size={config.patch_size}; "
            "pick a patch_size that divides it"
        )
    return TaskData(
        train=PretrainingImages(train, preprocessor, flip=True),
        val=PretrainingImages(val, preprocessor, flip=False),
        preprocessor=preprocessor,
    )


def load_preprocessor(run_dir: Path) -> ImagePreprocessor:
    return ImagePreprocessor.load(run_dir)
