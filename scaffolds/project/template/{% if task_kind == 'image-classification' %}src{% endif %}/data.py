"""Images in, (pixels, label) examples out: the sources, the split and the preprocessing.

Where the images come from (config.dataset):
  builtin      scikit-learn's handwritten digits: 1,797 real 8x8 grey images in 10 classes,
               shipped inside scikit-learn, so nothing is downloaded
  a folder     images in one sub-folder per class (Hugging Face "imagefolder"), or a dataset
               saved with `save_to_disk`
  a file       .csv / .json / .jsonl / .parquet with an image column and a label column
  a hub name   any Hugging Face image-classification dataset (needs the network once)

Every source becomes a Hugging Face `datasets.Dataset` with an image column (PIL images) and a
class-label column, so one preprocessing path serves them all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image, ImageOps

from config import Config
from loading import find_column, read_dataset, train_val_split

if TYPE_CHECKING:  # imported where a dataset is built: `predict` and `serve` start 0.8 s sooner
    from datasets import Dataset

# --- Sources -------------------------------------------------------------------------------


def digits_dataset() -> Dataset:
    """scikit-learn's digits as a dataset of 8x8 grey PIL images (16 grey levels scaled to 0-255)."""
    from datasets import ClassLabel, Dataset, Features
    from datasets import Image as ImageFeature
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = (digits.images * (255 / 16)).round().astype(np.uint8)
    features = Features({"image": ImageFeature(), "label": ClassLabel(names=[str(d) for d in range(10)])})
    images = [Image.fromarray(p) for p in pixels]
    return Dataset.from_dict({"image": images, "label": digits.target.tolist()}, features=features)


# --- Preprocessing -------------------------------------------------------------------------


@dataclass
class ImagePreprocessor:
    """PIL image -> normalised float tensor [channels, size, size]; also knows the label names.

    Saved with each run (preprocessor.json), so serving applies exactly the training transform.
    """

    image_size: int
    channels: int
    labels: list[str]
    mean: float = 0.5
    std: float = 0.5
    # The training images are light strokes on a dark ground (the built-in digits). A grey image
    # that is mostly light (dark ink on paper, as people photograph or draw digits) is inverted
    # first, so the model sees what it was trained on.
    dark_background: bool = False

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("L" if self.channels == 1 else "RGB")
        if self.dark_background and self.channels == 1 and np.asarray(image).mean() > 127:
            image = ImageOps.invert(image)
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        pixels = pixels.unsqueeze(0) if self.channels == 1 else pixels.permute(2, 0, 1)
        return (pixels - self.mean) / self.std

    def save(self, run_dir: Path) -> None:
        (run_dir / "preprocessor.json").write_text(json.dumps(vars(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> ImagePreprocessor:
        return cls(**json.loads((run_dir / "preprocessor.json").read_text()))


def make_preprocessor(config: Config, sample: Image.Image, labels: list[str]) -> ImagePreprocessor:
    """Size and channels from the settings, a pretrained model's config, or the images themselves."""
    size, channels = config.image_size or max(sample.size), 1 if sample.mode in ("L", "1") else 3
    if config.model_name:
        from transformers import AutoConfig

        model_config = AutoConfig.from_pretrained(config.model_name)
        size = config.image_size or getattr(model_config, "image_size", size)
        channels = getattr(model_config, "num_channels", channels)
    return ImagePreprocessor(image_size=int(size), channels=int(channels), labels=labels)


class ImageDataset(torch.utils.data.Dataset):
    """A Hugging Face split seen as (pixels, label) pairs for a DataLoader."""

    def __init__(self, split: Dataset, preprocessor: ImagePreprocessor, image_column: str, label_column: str):
        self.split = split
        self.preprocessor = preprocessor
        self.image_column = image_column
        self.label_column = label_column

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        example = self.split[index]
        return self.preprocessor(example[self.image_column]), int(example[self.label_column])

    def image(self, index: int) -> Image.Image:
        return self.split[index][self.image_column]


@dataclass
class TaskData:
    train: ImageDataset
    val: ImageDataset
    preprocessor: ImagePreprocessor


def read_splits(config: Config) -> tuple[Dataset, Dataset, str, str]:
    """The training and validation splits of the source, and its image and label columns."""
    from datasets import ClassLabel
    from datasets import Image as ImageFeature

    source = digits_dataset() if config.dataset == "builtin" else read_dataset(config.dataset)
    image_column = find_column(
        source, config.image_column, ("image", "img", "pixel_values"), "image_column", ImageFeature
    )
    label_column = find_column(
        source, config.label_column, ("label", "labels", "class"), "label_column", ClassLabel
    )
    train, val = train_val_split(source, config, label_column)
    return train, val, image_column, label_column


def split_contents(config: Config) -> tuple[Iterator[bytes], Iterator[bytes]]:
    """The pixels of every training and validation image (with their mode and size), one at a
    time, for counting validation images that are copies of training ones."""
    train, val, image_column, _ = read_splits(config)

    def pixels(split: Dataset) -> Iterator[bytes]:
        for example in split:
            image = example[image_column]
            yield f"{image.mode} {image.size}".encode() + image.tobytes()

    return pixels(train), pixels(val)


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it, and wrap both splits with the preprocessing (the one saved in
    `run_dir` when continuing a run)."""
    train, val, image_column, label_column = read_splits(config)
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        labels = list(train.features[label_column].names)
        preprocessor = make_preprocessor(config, train[0][image_column], labels)
        preprocessor.dark_background = config.dataset == "builtin"
    return TaskData(
        train=ImageDataset(train, preprocessor, image_column, label_column),
        val=ImageDataset(val, preprocessor, image_column, label_column),
        preprocessor=preprocessor,
    )


def load_preprocessor(run_dir: Path) -> ImagePreprocessor:
    return ImagePreprocessor.load(run_dir)
