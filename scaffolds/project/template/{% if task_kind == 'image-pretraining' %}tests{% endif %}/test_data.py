"""The images: the built-in shapes, the split, a folder of the user's own images (labelled by
sub-folder or not at all), and the preprocessing saved with a run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from config import Config, ProjectError
from data import (
    MAX_TILT,
    SHAPES,
    UNLABELLED,
    ImagePreprocessor,
    TaskData,
    build_data,
    builtin_shapes,
    load_preprocessor,
    shape_image,
    shape_outline,
    split_contents,
)
from loading import count_shared


def test_the_builtin_shapes_are_the_same_on_every_call_and_every_shape_is_common() -> None:
    first, labels = builtin_shapes(200)
    again, same_labels = builtin_shapes(200)
    assert first.shape == (200, 32, 32, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and np.array_equal(labels, same_labels)
    counts = np.bincount(labels, minlength=len(SHAPES))
    assert counts.min() >= 25  # about 40 of each of the 5


def test_shapes_stand_upright_within_the_tilt() -> None:
    outline = np.array(shape_outline("square", np.array([0.0, 0.0]), 10.0, 0.0))
    assert np.allclose(np.abs(outline), 10 / np.sqrt(2))  # corners on the diagonals: axis-aligned
    tilted = np.array(shape_outline("triangle", np.array([0.0, 0.0]), 10.0, MAX_TILT))
    apex = tilted[np.argmin(tilted[:, 1])]  # y grows downwards: the apex has the smallest y
    assert np.degrees(np.arctan2(apex[0], -apex[1])) == pytest.approx(15, abs=1e-6)


def test_the_split_is_seeded_and_shares_no_image(config: Config, data: TaskData) -> None:
    assert len(data.train) == 4800 and len(data.val) == 1200
    assert data.preprocessor.labels == list(SHAPES)
    again = build_data(config)
    assert [again.val.source.label(i) for i in range(50)] == [data.val.source.label(i) for i in range(50)]
    assert count_shared(*split_contents(config)) == 0
    other = build_data(replace(config, seed=config.seed + 1))
    assert [other.val.source.label(i) for i in range(50)] != [data.val.source.label(i) for i in range(50)]


def test_examples_are_normalised_pixels_and_labels(data: TaskData) -> None:
    pixels, label = data.val[0]
    assert pixels.shape == (3, 32, 32) and pixels.dtype == torch.float32
    assert 0 <= label < len(SHAPES)
    stacked = torch.stack([data.val[i][0] for i in range(200)])
    assert -0.5 < float(stacked.mean()) < 0.5 and 0.5 < float(stacked.std()) < 2.0


def test_training_images_are_flipped_half_the_time_and_validation_ones_never(data: TaskData) -> None:
    original = data.preprocessor(data.train.image(0))
    torch.manual_seed(0)
    flips = [torch.equal(data.train[0][0], original.flip(-1)) for _ in range(40)]
    assert 8 < sum(flips) < 32
    assert all(torch.equal(data.val[0][0], data.preprocessor(data.val.image(0))) for _ in range(5))


def test_the_preprocessor_round_trips_an_image_and_is_saved_with_a_run(
    data: TaskData, tmp_path: Path
) -> None:
    image = data.val.image(0)
    back = data.preprocessor.to_image(data.preprocessor(image))
    assert np.abs(np.asarray(back, dtype=int) - np.asarray(image, dtype=int)).max() <= 1
    data.preprocessor.save(tmp_path)
    assert load_preprocessor(tmp_path) == data.preprocessor
    grey = ImagePreprocessor(image_size=16, channels=1, labels=[])
    assert grey(Image.new("RGB", (40, 20), (255, 255, 255))).shape == (1, 16, 16)


def write_folder(root: Path, labelled: bool) -> None:
    rng = np.random.default_rng(0)
    for index in range(30):
        pixels, label = shape_image(rng, size=24)
        folder = root / SHAPES[label] if labelled else root
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(folder / f"{index}.png")


def test_a_folder_with_class_sub_folders_gives_labels(config: Config, tmp_path: Path) -> None:
    write_folder(tmp_path / "shapes", labelled=True)
    data = build_data(replace(config, dataset=str(tmp_path / "shapes"), val_fraction=0.3))
    assert len(data.train) + len(data.val) == 30
    assert set(data.preprocessor.labels) <= set(SHAPES) and data.preprocessor.image_size == 24
    assert all(0 <= data.val[i][1] < len(data.preprocessor.labels) for i in range(len(data.val)))


def test_a_folder_of_unlabelled_images_trains_without_labels(config: Config, tmp_path: Path) -> None:
    write_folder(tmp_path / "plain", labelled=False)
    data = build_data(replace(config, dataset=str(tmp_path / "plain"), val_fraction=0.3, image_size=16))
    assert data.preprocessor.labels == [] and data.preprocessor.image_size == 16
    assert {data.train[i][1] for i in range(len(data.train))} == {UNLABELLED}


def test_a_patch_size_that_does_not_divide_the_image_is_refused(config: Config) -> None:
    with pytest.raises(ProjectError, match="image_size=32 is not a multiple of patch_size=5"):
        build_data(replace(config, patch_size=5))
