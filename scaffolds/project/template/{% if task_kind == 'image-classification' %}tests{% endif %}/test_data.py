"""Image data: the built-in digits, local image folders and files, preprocessing, sharded loaders."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from config import Config, ProjectError
from data import ImagePreprocessor, TaskData, build_data, load_preprocessor


def test_builtin_digits_split_into_stratified_train_and_validation(data: TaskData) -> None:
    assert len(data.train) + len(data.val) == 1797
    assert len(data.val) == pytest.approx(0.2 * 1797, abs=1)
    assert data.preprocessor.labels == [str(d) for d in range(10)]
    val_labels = {data.val[i][1] for i in range(len(data.val))}
    assert val_labels == set(range(10))


def test_images_become_normalised_single_channel_tensors(data: TaskData) -> None:
    pixels, label = data.train[0]
    assert pixels.shape == (1, 8, 8) and pixels.dtype == torch.float32
    assert pixels.min() >= -1.0 and pixels.max() <= 1.0 and pixels.std() > 0
    assert 0 <= label < 10


def test_a_digit_in_dark_ink_on_paper_is_inverted_to_the_training_images_polarity(data: TaskData) -> None:
    assert data.preprocessor.dark_background  # the built-in digits: light strokes on black
    digit = data.train.image(0)
    on_paper = Image.fromarray(255 - np.asarray(digit))
    assert torch.equal(data.preprocessor(on_paper), data.preprocessor(digit))
    other = ImagePreprocessor(image_size=8, channels=1, labels=["a"])  # any other image source
    assert not torch.equal(other(on_paper), other(digit))


def write_image_folder(root: Path, size: int, mode: str) -> Path:
    """Two classes of small images in class folders, as people keep image datasets on disk."""
    rng = np.random.default_rng(0)
    for label in ("cat", "dog"):
        (root / label).mkdir(parents=True)
        for i in range(10):
            shape = (size, size) if mode == "L" else (size, size, 3)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8)).save(root / label / f"{i}.png")
    return root


def test_a_local_image_folder_is_read_with_its_class_names(config: Config, tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "pets", size=12, mode="RGB")
    data = build_data(replace(config, dataset=str(folder), val_fraction=0.25))
    assert data.preprocessor.labels == ["cat", "dog"]
    assert (data.preprocessor.channels, data.preprocessor.image_size) == (3, 12)
    assert len(data.train) == 15 and len(data.val) == 5
    assert data.train[0][0].shape == (3, 12, 12)


def test_a_saved_dataset_folder_is_read_back(config: Config, data: TaskData, tmp_path: Path) -> None:
    data.train.split.select(range(50)).save_to_disk(str(tmp_path / "saved"))
    loaded = build_data(replace(config, dataset=str(tmp_path / "saved")))
    assert len(loaded.train) + len(loaded.val) == 50


def test_images_are_resized_to_the_configured_size(config: Config, tmp_path: Path) -> None:
    folder = write_image_folder(tmp_path / "pets", size=20, mode="L")
    data = build_data(replace(config, dataset=str(folder), image_size=16))
    assert data.train[0][0].shape == (1, 16, 16)


def test_preprocessing_is_saved_with_a_run_and_loaded_back(data: TaskData, tmp_path: Path) -> None:
    data.preprocessor.save(tmp_path)
    loaded = load_preprocessor(tmp_path)
    assert loaded == data.preprocessor and isinstance(loaded, ImagePreprocessor)


def test_a_missing_column_is_named_in_the_error(config: Config) -> None:
    with pytest.raises(ProjectError, match="no column 'photo'"):
        build_data(replace(config, image_column="photo"))
