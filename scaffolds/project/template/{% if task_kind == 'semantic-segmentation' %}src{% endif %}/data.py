"""Aerial scenes in, (pixels, class per pixel) tiles out: the sources, the split and the tiling.

Where the scenes come from (config.dataset):
  builtin      aerial scenes generated here from a fixed seed (nothing is downloaded): bare ground,
               vegetation, water (rivers and lakes), roads and buildings with their shadows, each
               scene under its own light, 256 x 256 pixels, every pixel labelled
  a folder     a dataset saved with `save_to_disk`, or images beside masks
  a file       .csv / .json / .jsonl / .parquet with an image column and a mask column
  a hub name   any Hugging Face semantic-segmentation dataset (needs the network once)
A mask is an image whose pixel values are class ids (255: not labelled, left out of the loss and
the scores).

The split is by scene: every tile of a scene is on one side, so validation never scores the model
on a neighbour of a tile it trained on. Training takes overlapping tiles (`tile_stride` apart),
validation non-overlapping ones, so each validation pixel is scored once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from config import Config, ProjectError
from loading import find_column, read_dataset, train_val_split

IGNORE = 255  # a mask value for pixels nobody labelled
BUILTIN_CLASSES = ("other", "building", "road", "vegetation", "water")
OTHER, BUILDING, ROAD, VEGETATION, WATER = range(len(BUILTIN_CLASSES))
# Colours the masks are drawn in (the playground's legend, `predict`'s mask images).
BUILTIN_COLOURS = ("#9e9e9e", "#e4572e", "#f2c14e", "#2e9e44", "#1e88e5")
MORE_COLOURS = ("#8e44ad", "#00acc1", "#6d4c41", "#c0ca33", "#d81b60", "#3949ab", "#00897b", "#f4511e")
SCENES, SCENE_SIZE, SCENE_SEED = 60, 256, 2024


# --- The built-in scenes -------------------------------------------------------------------


def smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Value noise in [0, 1): a (cells + 1)^2 grid of random values, smoothly interpolated."""
    grid = rng.random((cells + 1, cells + 1))
    position = np.linspace(0, cells, size, endpoint=False)
    index = position.astype(int)
    fraction = position - index
    fraction = fraction * fraction * (3 - 2 * fraction)  # smoothstep: no creases at grid lines
    rows = grid[index] * (1 - fraction)[:, None] + grid[index + 1] * fraction[:, None]
    return rows[:, index] * (1 - fraction)[None, :] + rows[:, index + 1] * fraction[None, :]


def aerial_scene(rng: np.random.Generator, size: int = SCENE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """One generated scene: an RGB image (size, size, 3) uint8 and its class mask (size, size).

    Vegetation and lakes are thresholded noise, rivers bands along a sine, roads straight bands
    (a road over water is a bridge), buildings rectangles on free ground with a shadow to one side.
    Colours overlap on purpose: grey roofs look like roads, dark water like shaded trees, so the
    model must use texture and shape, not colour alone.
    """
    rows, columns = np.mgrid[0:size, 0:size].astype(np.float32)
    mask = np.full((size, size), OTHER, dtype=np.uint8)
    greenery = 0.7 * smooth_noise(rng, size, 4) + 0.3 * smooth_noise(rng, size, 10)
    mask[greenery > rng.uniform(0.5, 0.62)] = VEGETATION
    if rng.random() < 0.6:  # a river: a band along a sine through a point of the scene
        angle = rng.uniform(0, np.pi)
        top, left = rng.uniform(0.3, 0.7, size=2) * size
        along = (columns - left) * np.cos(angle) + (rows - top) * np.sin(angle)
        across = (rows - top) * np.cos(angle) - (columns - left) * np.sin(angle)
        bend = rng.uniform(8, 24) * np.sin(along / rng.uniform(20, 45))
        water = np.abs(across - bend) < rng.uniform(5, 12)
    else:  # a lake
        water = smooth_noise(rng, size, 3) > rng.uniform(0.7, 0.78)
    mask[water] = WATER
    for _ in range(rng.integers(1, 4)):  # roads: straight bands through a point of the scene
        angle = rng.uniform(0, np.pi)
        top, left = rng.uniform(0.1, 0.9, size=2) * size
        distance = (columns - left) * np.cos(angle) + (rows - top) * np.sin(angle)
        mask[np.abs(distance) < rng.uniform(2.0, 4.0)] = ROAD
    buildings, shadows = [], np.zeros((size, size), dtype=bool)
    for _ in range(rng.integers(10, 36)):
        height, width = rng.integers(5, 17, size=2)
        top, left = rng.integers(0, size - height), rng.integers(0, size - width)
        if np.isin(mask[top : top + height + 2, left : left + width + 2], (ROAD, WATER, BUILDING)).any():
            continue  # on free ground only, a little apart from the others
        mask[top : top + height, left : left + width] = BUILDING
        buildings.append((slice(top, top + height), slice(left, left + width)))
        shadows[top + height : top + height + 2, left + 2 : left + width + 2] = True
    shadows &= mask != BUILDING
    return paint(rng, mask, buildings, shadows), mask


def paint(
    rng: np.random.Generator, mask: np.ndarray, buildings: list[tuple[slice, slice]], shadows: np.ndarray
) -> np.ndarray:
    """The scene's pixels: each class its own colour range and texture, each roof one colour, the
    shadows darker, then the scene's own light and sensor noise."""
    size = mask.shape[0]
    image = np.zeros((size, size, 3), dtype=np.float32)
    fine = rng.normal(size=(size, size, 1)).astype(np.float32)
    mottle = smooth_noise(rng, size, 16)[..., None].astype(np.float32) - 0.5
    looks = {  # base colour, its spread between scenes, fine texture, mottling
        OTHER: ((150, 132, 104), 18, 6, 40),
        VEGETATION: ((66, 112, 58), 14, 16, 30),
        WATER: ((40, 78, 118), 16, 2, 12),
        ROAD: ((118, 118, 116), 10, 3, 6),
    }
    for label, (colour, spread, texture, mottling) in looks.items():
        tint = np.array(colour, dtype=np.float32) + rng.normal(0, spread, 3)
        where = mask == label
        image[where] = (tint + texture * fine + mottling * mottle)[where]
    roofs = np.array([(158, 72, 60), (140, 140, 146), (96, 98, 104), (196, 190, 178), (120, 84, 62)])
    for rectangle in buildings:
        roof = roofs[rng.integers(len(roofs))] + rng.normal(0, 8, 3)
        image[rectangle] = roof + 3 * fine[rectangle]
    image[shadows] *= 0.55
    light = rng.uniform(0.8, 1.15) * rng.uniform(0.92, 1.08, 3)
    image = image * light + rng.normal(0, 4, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def builtin_scenes(count: int = SCENES, seed: int = SCENE_SEED) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same `count` scenes on every machine: each drawn from its own seeded generator."""
    return [aerial_scene(np.random.default_rng([seed, index])) for index in range(count)]


# --- Other sources -------------------------------------------------------------------------


def dataset_scenes(split, config: Config) -> list[tuple[np.ndarray, np.ndarray]]:
    """A Hugging Face split's (image, mask) pairs as arrays: RGB pixels and class ids."""
    image_column = find_column(split, config.image_column, ("image", "pixel_values", "img"), "image_column")
    mask_column = find_column(
        split,
        config.mask_column,
        ("annotation", "mask", "label", "segmentation_mask", "semantic"),
        "mask_column",
    )
    scenes = []
    for example in split:
        image, mask = example[image_column], example[mask_column]
        if image.size != mask.size:
            raise ProjectError(f"an image of {image.size} has a mask of {mask.size}: they must match")
        scenes.append((np.asarray(image.convert("RGB")), class_ids(mask)))
    return scenes


def class_ids(mask: Image.Image) -> np.ndarray:
    """A mask's pixels as class ids: a palette image's indices (not the colours they show), a grey
    image's values. A colour (RGB) mask needs a table from colours to classes: refused."""
    if mask.mode not in ("P", "L", "I", "I;16", "1"):
        raise ProjectError(
            f"a mask in mode {mask.mode} holds colours, not class ids; save masks as grey or palette"
            " images whose pixel values are the class ids"
        )
    ids = np.asarray(mask).astype(np.int64)
    if ids.max(initial=0) > IGNORE:
        raise ProjectError(
            f"a mask holds class id {ids.max()}; ids go up to {IGNORE - 1} ({IGNORE}: unlabelled)"
        )
    return ids.astype(np.uint8)


def class_names(config: Config, scenes: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """`class_names` as set, else class_0 ... up to the highest class id in the masks. Names
    that leave a class id in the masks unnamed are refused."""
    highest = max(int(np.max(np.where(mask == IGNORE, 0, mask))) for _, mask in scenes)
    if not config.class_names:
        return [f"class_{index}" for index in range(highest + 1)]
    names = [name.strip() for name in config.class_names.split(",") if name.strip()]
    if highest >= len(names):
        raise ProjectError(
            f"a mask holds class id {highest}, but there are {len(names)} class names; name them all"
            " with --set class_names=..."
        )
    return names


# --- Preprocessing -------------------------------------------------------------------------


@dataclass
class SegmentationPreprocessor:
    """RGB pixels -> a normalised float tensor [3, height, width]; also knows the classes, their
    colours, the loss's class weights and the tile size the model was trained on.

    Saved with each run (preprocessor.json), so serving applies exactly the training transform.
    """

    tile_size: int
    labels: list[str]
    colours: list[str]
    class_weights: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])

    def pixels(self, image: np.ndarray) -> torch.Tensor:
        """(height, width, 3) uint8 -> [3, height, width] normalised float32."""
        values = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
        return (values - torch.tensor(self.mean)[:, None, None]) / torch.tensor(self.std)[:, None, None]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        return self.pixels(np.asarray(image.convert("RGB")))

    def save(self, run_dir: Path) -> None:
        (run_dir / "preprocessor.json").write_text(json.dumps(vars(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> SegmentationPreprocessor:
        return cls(**json.loads((run_dir / "preprocessor.json").read_text()))


def balanced_weights(scenes: list[tuple[np.ndarray, np.ndarray]], classes: int) -> list[float]:
    """Class weights for the loss, 1 / sqrt(share of the labelled pixels), scaled so that an
    average pixel weighs 1: buildings (2% of the built-in pixels) count about 4x more than
    ground (50%), so the rare classes are not drowned out, without the instability of 1 / share."""
    counts = np.zeros(classes, dtype=np.float64)
    for _, mask in scenes:
        counts += np.bincount(mask[mask != IGNORE].ravel(), minlength=classes)[:classes]
    share = counts / max(counts.sum(), 1)
    weights = np.where(share > 0, 1 / np.sqrt(np.maximum(share, 1e-12)), 0.0)
    return (weights / max((share * weights).sum(), 1e-12)).round(6).tolist()


def tile_starts(length: int, tile: int, stride: int) -> list[int]:
    """Where tiles `stride` apart start along a side of `length` pixels so that they cover it (the
    last one flush with its end)."""
    if length <= tile:
        return [0]
    return sorted({*range(0, length - tile, stride), length - tile})


def tile_corners(height: int, width: int, tile: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of square tiles `stride` apart that cover the whole image."""
    return [
        (top, left) for top in tile_starts(height, tile, stride) for left in tile_starts(width, tile, stride)
    ]


class TileDataset(torch.utils.data.Dataset):
    """Tiles of a set of scenes as (pixels [3, tile, tile], classes [tile, tile]) pairs. Scenes
    smaller than a tile are padded (the padding is IGNORE in the mask). Training tiles are
    flipped and turned at random (the eight symmetries of a square: an aerial view has no up)."""

    def __init__(
        self,
        scenes: list[tuple[np.ndarray, np.ndarray]],
        preprocessor: SegmentationPreprocessor,
        stride: int,
        augment: bool = False,
        scene_ids: list[str] | None = None,
    ):
        self.scenes = [pad_to(image, mask, preprocessor.tile_size) for image, mask in scenes]
        self.preprocessor = preprocessor
        self.augment = augment
        self.scene_ids = scene_ids or [str(index) for index in range(len(scenes))]
        size = preprocessor.tile_size
        self.tiles = [
            (index, top, left)
            for index, (image, _) in enumerate(self.scenes)
            for top, left in tile_corners(image.shape[0], image.shape[1], size, stride)
        ]

    def __len__(self) -> int:
        return len(self.tiles)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        scene, top, left = self.tiles[index]
        image, mask = self.scenes[scene]
        size = self.preprocessor.tile_size
        pixels = self.preprocessor.pixels(image[top : top + size, left : left + size])
        classes = torch.from_numpy(mask[top : top + size, left : left + size].astype(np.int64))
        if self.augment:
            turns, flip = torch.randint(4, ()).item(), torch.randint(2, ()).item()
            pixels, classes = pixels.rot90(turns, (1, 2)), classes.rot90(turns, (0, 1))
            if flip:
                pixels, classes = pixels.flip(2), classes.flip(1)
        return pixels.contiguous(), classes.contiguous()

    def image(self, scene: int) -> Image.Image:
        return Image.fromarray(self.scenes[scene][0])


def pad_to(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A scene at least `size` pixels high and wide: padded by reflection, the padding unlabelled."""
    rows, columns = max(size - image.shape[0], 0), max(size - image.shape[1], 0)
    if not rows and not columns:
        return image, mask
    mode = "reflect" if min(image.shape[:2]) > 1 else "edge"  # reflecting needs two pixels
    image = np.pad(image, ((0, rows), (0, columns), (0, 0)), mode=mode)
    return image, np.pad(mask, ((0, rows), (0, columns)), constant_values=IGNORE)


@dataclass
class TaskData:
    train: TileDataset
    val: TileDataset
    preprocessor: SegmentationPreprocessor
    val_scenes: list[np.ndarray] = field(default_factory=list)  # whole images, for timing and examples


def read_scenes(config: Config) -> tuple[list, list, list[str], list[str], list[str]]:
    """Training scenes, validation scenes, their ids and the class names, from the source."""
    if config.dataset == "builtin":
        scenes = builtin_scenes()
        order = np.random.default_rng(config.seed).permutation(len(scenes))
        held_out = max(1, round(config.val_fraction * len(scenes)))
        val_ids, train_ids = sorted(order[:held_out].tolist()), sorted(order[held_out:].tolist())
        return (
            [scenes[i] for i in train_ids],
            [scenes[i] for i in val_ids],
            [f"scene-{i}" for i in train_ids],
            [f"scene-{i}" for i in val_ids],
            list(BUILTIN_CLASSES),
        )
    train_split, val_split = train_val_split(read_dataset(config.dataset), config)
    train, val = dataset_scenes(train_split, config), dataset_scenes(val_split, config)
    # An image is its own scene: its tiles all go to its side of the split.
    train_ids = [f"train-{index}" for index in range(len(train))]
    labels = class_names(config, train + val)
    return train, val, train_ids, [f"val-{index}" for index in range(len(val))], labels


def split_contents(config: Config) -> tuple[Iterator[bytes], Iterator[bytes]]:
    """What identifies each training and validation tile, for counting validation tiles whose
    scene is also in training: the scene's id for the built-in scenes (ids are unique), the
    scene's pixels for other sources (a copy of a training image on the validation side)."""
    train, val, train_ids, val_ids, _ = read_scenes(config)
    size, builtin = config.tile_size, config.dataset == "builtin"

    def keys(scenes: list, ids: list[str], stride: int) -> Iterator[bytes]:
        for (image, _), scene in zip(scenes, ids, strict=True):
            key = scene.removeprefix("scene-").encode() if builtin else image.tobytes()
            for _ in tile_corners(max(image.shape[0], size), max(image.shape[1], size), size, stride):
                yield key

    return keys(train, train_ids, config.tile_stride), keys(val, val_ids, size)


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it by scene, and tile both sides with the preprocessing (the one
    saved in `run_dir` when continuing a run)."""
    train, val, train_ids, val_ids, labels = read_scenes(config)
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        colours = list(BUILTIN_COLOURS) if config.dataset == "builtin" else []
        colours += [MORE_COLOURS[i % len(MORE_COLOURS)] for i in range(len(labels) - len(colours))]
        preprocessor = SegmentationPreprocessor(
            tile_size=config.tile_size,
            labels=labels,
            colours=colours[: len(labels)],
            class_weights=balanced_weights(train, len(labels)) if config.balanced_loss else [],
        )
    return TaskData(
        train=TileDataset(train, preprocessor, config.tile_stride, augment=True, scene_ids=train_ids),
        val=TileDataset(val, preprocessor, preprocessor.tile_size, scene_ids=val_ids),
        preprocessor=preprocessor,
        val_scenes=[image for image, _ in val],
    )


def load_preprocessor(run_dir: Path) -> SegmentationPreprocessor:
    return SegmentationPreprocessor.load(run_dir)
