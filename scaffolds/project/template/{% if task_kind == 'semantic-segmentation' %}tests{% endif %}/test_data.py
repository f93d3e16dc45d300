"""The data: generated scenes, the split by scene, the tiling, the augmentation and other sources."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from config import Config, ProjectError
from data import (
    BUILTIN_CLASSES,
    IGNORE,
    TaskData,
    balanced_weights,
    build_data,
    builtin_scenes,
    pad_to,
    split_contents,
    tile_corners,
)
from loading import count_shared


def test_the_builtin_scenes_are_the_same_on_every_call() -> None:
    first, again = builtin_scenes(3), builtin_scenes(3)
    for (image, mask), (image_again, mask_again) in zip(first, again, strict=True):
        assert np.array_equal(image, image_again) and np.array_equal(mask, mask_again)
    assert not np.array_equal(first[0][0], first[1][0])  # but each scene is its own


def test_every_class_is_in_the_builtin_scenes_and_every_pixel_is_labelled(data: TaskData) -> None:
    masks = np.stack([mask for _, mask in data.train.scenes])
    counts = np.bincount(masks.ravel(), minlength=len(BUILTIN_CLASSES))
    assert len(counts) == len(BUILTIN_CLASSES) and (counts > 0).all()
    assert counts[1] / masks.size > 0.005  # buildings are rare, but not absent


def test_the_split_is_by_scene_and_the_leak_check_sees_a_shared_scene(config: Config, data: TaskData) -> None:
    assert not set(data.train.scene_ids) & set(data.val.scene_ids)
    assert count_shared(*split_contents(config)) == 0
    train, val = split_contents(config)
    train_keys, val_keys = list(train), list(val)
    assert count_shared(train_keys, [*val_keys, train_keys[0]]) == 1  # a training scene's tile


def test_validation_tiles_cover_each_pixel_of_each_scene_once(data: TaskData) -> None:
    size = data.preprocessor.tile_size
    covered = [np.zeros(image.shape[:2], dtype=int) for image, _ in data.val.scenes]
    for scene, top, left in data.val.tiles:
        covered[scene][top : top + size, left : left + size] += 1
    assert all((count == 1).all() for count in covered)


@pytest.mark.parametrize(
    ("height", "width", "tile", "stride"), [(100, 70, 32, 24), (64, 64, 64, 32), (40, 90, 32, 32)]
)
def test_tiles_cover_the_whole_image_and_end_at_its_edges(
    height: int, width: int, tile: int, stride: int
) -> None:
    covered = np.zeros((height, width), dtype=bool)
    corners = tile_corners(height, width, tile, stride)
    for top, left in corners:
        covered[top : top + tile, left : left + tile] = True
    assert covered.all()
    assert (
        max(top for top, _ in corners) == height - tile and max(left for _, left in corners) == width - tile
    )


def test_a_scene_smaller_than_a_tile_is_padded_and_the_padding_is_unlabelled() -> None:
    image, mask = np.zeros((20, 30, 3), dtype=np.uint8), np.ones((20, 30), dtype=np.uint8)
    padded_image, padded_mask = pad_to(image, mask, 32)
    assert padded_image.shape == (32, 32, 3) and padded_mask.shape == (32, 32)
    assert (padded_mask[:20, :30] == 1).all() and (padded_mask[20:] == IGNORE).all()
    assert (padded_mask[:, 30:] == IGNORE).all()


def test_augmented_tiles_keep_pixels_and_classes_aligned(data: TaskData) -> None:
    torch.manual_seed(0)
    size = data.preprocessor.tile_size
    for index in range(0, len(data.train), max(1, len(data.train) // 12)):
        scene, top, left = data.train.tiles[index]
        image, mask = data.train.scenes[scene]
        plain_pixels = data.preprocessor.pixels(image[top : top + size, left : left + size])
        plain_classes = torch.from_numpy(mask[top : top + size, left : left + size].astype(np.int64))
        pixels, classes = data.train[index]
        symmetries = [(turns, flip) for turns in range(4) for flip in (False, True)]

        def transform(
            p: torch.Tensor, c: torch.Tensor, turns: int, flip: bool
        ) -> tuple[torch.Tensor, torch.Tensor]:
            p, c = p.rot90(turns, (1, 2)), c.rot90(turns, (0, 1))
            return (p.flip(2), c.flip(1)) if flip else (p, c)

        matches = [
            s
            for s in symmetries
            if all(map(torch.equal, transform(plain_pixels, plain_classes, *s), (pixels, classes)))
        ]
        assert matches, f"tile {index} is not a rotation or mirror image of its scene's pixels and classes"


def test_validation_tiles_are_not_augmented(data: TaskData) -> None:
    first, again = data.val[3], data.val[3]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def test_rare_classes_weigh_more_and_an_average_pixel_weighs_one() -> None:
    mask = np.zeros((10, 10), dtype=np.uint8)
    mask[:1, :10] = 1  # 10% of the pixels
    mask[9, 9] = IGNORE
    weights = balanced_weights([(np.zeros((10, 10, 3), np.uint8), mask)], 3)
    assert weights[1] > weights[0] and weights[2] == 0.0
    shares = np.array([89, 10, 0]) / 99
    assert float((shares * np.array(weights)).sum()) == pytest.approx(1.0, abs=1e-5)


def save_scenes(
    path: Path, sizes: list[tuple[int, int]], mask_sizes: list[tuple[int, int]] | None = None
) -> Path:
    """A local dataset (save_to_disk) of random images with masks of class ids 0-2."""
    from datasets import Dataset
    from datasets import Image as ImageFeature

    rng = np.random.default_rng(0)
    images, masks = [], []
    for (width, height), (mask_width, mask_height) in zip(sizes, mask_sizes or sizes, strict=True):
        images.append(Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)))
        masks.append(Image.fromarray(rng.integers(0, 3, (mask_height, mask_width), dtype=np.uint8), mode="L"))
    dataset = Dataset.from_dict({"image": images, "annotation": masks})
    dataset = dataset.cast_column("image", ImageFeature()).cast_column("annotation", ImageFeature())
    dataset.save_to_disk(str(path))
    return path


def test_a_saved_dataset_of_images_and_masks_is_tiled_by_image(config: Config, tmp_path: Path) -> None:
    source = save_scenes(tmp_path / "scenes", [(70, 50)] * 8 + [(20, 24)] * 2)
    local = replace(config, dataset=str(source), val_fraction=0.25, class_names="ground, roof ,water")
    data = build_data(local)
    assert data.preprocessor.labels == ["ground", "roof", "water"]
    assert len(data.preprocessor.colours) == 3
    assert len(data.train.scenes) + len(data.val.scenes) == 10
    pixels, classes = data.train[0]
    assert pixels.shape == (3, 32, 32) and classes.shape == (32, 32)
    assert count_shared(*split_contents(local)) == 0
    unnamed = build_data(replace(local, class_names=""))
    assert unnamed.preprocessor.labels == ["class_0", "class_1", "class_2"]


def test_palette_masks_give_their_indices_as_class_ids(config: Config, tmp_path: Path) -> None:
    """A palette mask shows colours but stores indices: the indices are the classes."""
    from datasets import Dataset
    from datasets import Image as ImageFeature

    rng = np.random.default_rng(1)
    images, masks = [], []
    for _ in range(5):
        images.append(Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)))
        mask = Image.fromarray(rng.integers(0, 3, (40, 40), dtype=np.uint8), mode="P")
        mask.putpalette([0, 0, 0, 250, 250, 250, 0, 128, 255] + [0] * 759)  # bright colours
        masks.append(mask)
    dataset = Dataset.from_dict({"image": images, "annotation": masks})
    dataset.cast_column("image", ImageFeature()).cast_column("annotation", ImageFeature()).save_to_disk(
        str(tmp_path / "palette")
    )
    data = build_data(replace(config, dataset=str(tmp_path / "palette"), class_names="a,b,c"))
    seen = np.unique(np.concatenate([mask.ravel() for _, mask in data.train.scenes + data.val.scenes]))
    assert seen.tolist() == [0, 1, 2]


def test_a_mask_with_more_classes_than_names_is_refused(config: Config, tmp_path: Path) -> None:
    source = save_scenes(tmp_path / "scenes", [(40, 40)] * 4)
    with pytest.raises(ProjectError, match="class id 2, but there are 2 class names"):
        build_data(replace(config, dataset=str(source), class_names="ground,roof"))


def test_a_mask_of_another_size_than_its_image_is_refused(config: Config, tmp_path: Path) -> None:
    source = save_scenes(tmp_path / "scenes", [(40, 40)] * 4, [(40, 40)] * 3 + [(20, 40)])
    with pytest.raises(ProjectError, match="must match"):
        build_data(replace(config, dataset=str(source)))


def test_a_missing_mask_column_is_named_with_the_setting_to_use(config: Config, tmp_path: Path) -> None:
    source = save_scenes(tmp_path / "scenes", [(40, 40)] * 4)
    with pytest.raises(ProjectError, match="mask_column"):
        build_data(replace(config, dataset=str(source), mask_column="segmentation"))
