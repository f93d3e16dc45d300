"""Camera frames in, (pixels, box targets) pairs out: the sources, the split and the targets.

Where the frames come from (config.dataset):
  builtin      warehouse frames generated here from a fixed seed (nothing is downloaded): 40 camera
               sessions, each its own floor, racking, light and camera height, 12 frames each with
               people and forklifts among pallets, cones and boxes; 320 x 180 pixels (a camera's
               sub-stream), every person and forklift boxed
  a folder     a dataset saved with `save_to_disk`
  a file       .json / .jsonl / .parquet with an image column and an objects column
  a hub name   any Hugging Face object-detection dataset in the usual layout (needs the network
               once): an image column and an "objects" column of {"bbox": [[x, y, w, h], ...],
               "category": [class id, ...]} (COCO boxes; `--set box_format=xyxy` for corners)

The split is by camera session: every frame of a session is on one side, so validation never
scores the model on a near-copy of a frame it trained on (the spec's penalty). Other sources keep
their own validation split, else each image is its own session.

Targets are dense, as a CenterNet-style detector predicts them: at stride `STRIDE`, one heatmap
per class with a Gaussian bump at each object's centre, and at the centre cell the box's log size
and the centre's offset within the cell. So a batch is two tensors, as in every other task kind,
and the boxes can be read back from the targets exactly (data.boxes_from_targets).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from config import Config, ProjectError
from loading import find_column, read_dataset, train_val_split

STRIDE = 4  # input pixels per heatmap cell
BUILTIN_CLASSES = ("person", "forklift")
PERSON, FORKLIFT = range(len(BUILTIN_CLASSES))
BUILTIN_COLOURS = ("#e4572e", "#1e88e5")
MORE_COLOURS = ("#2e9e44", "#8e44ad", "#f2c14e", "#00acc1", "#6d4c41", "#c0ca33", "#d81b60", "#3949ab")
SESSIONS, FRAMES_PER_SESSION, FRAME_WIDTH, FRAME_HEIGHT, FRAME_SEED = 40, 12, 320, 180, 2024

# One box of a frame: its class id and its corners (x0, y0, x1, y1) in the frame's pixels.
Box = tuple[int, float, float, float, float]


# --- The built-in frames --------------------------------------------------------------------


@dataclass
class Session:
    """What stays the same across one camera's frames: the floor, the racking along the back,
    the horizon (how high the camera hangs) and the light."""

    floor: tuple[int, int, int]
    wall: tuple[int, int, int]
    horizon: float  # the y where the floor meets the racking, as a share of the height
    racks: list[tuple[float, float]]  # x extents of the shelving bays
    goods: list[tuple[float, float, float, float, tuple[int, int, int]]]  # boxes on the shelves
    lanes: list[float]  # x of the yellow lane lines at the bottom edge
    light: float


def new_session(rng: np.random.Generator) -> Session:
    width = FRAME_WIDTH
    racks, x = [], rng.uniform(-20, 10)
    while x < width:
        bay = rng.uniform(40, 80)
        racks.append((x, x + bay))
        x += bay + rng.uniform(2, 30)
    horizon = rng.uniform(0.3, 0.45)
    goods = []
    for left, right in racks:
        for shelf in range(3):
            for _ in range(rng.integers(1, 4)):
                x0 = rng.uniform(left, right - 8)
                goods.append(
                    (
                        x0,
                        shelf,
                        x0 + rng.uniform(6, 16),
                        rng.uniform(0.4, 0.9),
                        tuple(int(c) for c in rng.integers(60, 200, 3)),
                    )
                )
    return Session(
        floor=tuple(int(c) for c in rng.integers(90, 170, 3)),
        wall=tuple(int(c) for c in rng.integers(50, 120, 3)),
        horizon=horizon,
        racks=racks,
        goods=goods,
        lanes=sorted(rng.uniform(0, width, rng.integers(1, 3)).tolist()),
        light=float(rng.uniform(0.75, 1.2)),
    )


def draw_background(draw: ImageDraw.ImageDraw, session: Session) -> int:
    """The racking, the floor and its lane lines; returns the horizon's y."""
    width, height = FRAME_WIDTH, FRAME_HEIGHT
    horizon = int(session.horizon * height)
    draw.rectangle((0, 0, width, horizon), fill=session.wall)
    draw.rectangle((0, horizon, width, height), fill=session.floor)
    shelf_height = horizon / 3
    for left, right in session.racks:
        draw.rectangle((left, 0, right, horizon), outline=(30, 60, 140), width=2)
        for shelf in range(1, 3):
            y = shelf * shelf_height
            draw.line((left, y, right, y), fill=(230, 120, 30), width=2)
    for x0, shelf, x1, fill, colour in session.goods:
        bottom = (shelf + 1) * shelf_height - 1
        draw.rectangle((x0, bottom - fill * shelf_height, x1, bottom), fill=colour)
    for lane in session.lanes:  # lines converging towards the horizon
        draw.line((lane, height, width / 2 + (lane - width / 2) * 0.4, horizon), fill=(225, 200, 40), width=3)
    return horizon


def depth_scale(y: float, horizon: int) -> float:
    """How large things standing at floor height y look: nearer the camera (lower) is larger."""
    return 0.35 + 0.95 * (y - horizon) / (FRAME_HEIGHT - horizon)


def draw_person(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, foot_x: float, foot_y: float, scale: float
):
    """A worker standing with feet at (foot_x, foot_y): legs, a vest, arms and a head (sometimes
    a hard hat). Returns the box around everything drawn."""
    tall = 58 * scale * rng.uniform(0.85, 1.1)
    wide = tall * rng.uniform(0.3, 0.4)
    top = foot_y - tall
    head = tall * 0.14
    vest = [(250, 220, 30), (255, 120, 20), (120, 230, 60), (40, 80, 200), (90, 90, 90)][rng.integers(5)]
    trousers = tuple(int(c) for c in rng.integers(20, 90, 3))
    skin = [(224, 172, 135), (160, 110, 80), (95, 65, 45), (240, 200, 170)][rng.integers(4)]
    hip = top + tall * 0.52
    stride = wide * rng.uniform(0.05, 0.3)
    draw.rectangle((foot_x - wide * 0.3 - stride, hip, foot_x - wide * 0.05, foot_y), fill=trousers)
    draw.rectangle((foot_x + wide * 0.05, hip, foot_x + wide * 0.3 + stride, foot_y), fill=trousers)
    draw.rectangle((foot_x - wide * 0.5, top + head * 1.1, foot_x + wide * 0.5, hip + tall * 0.04), fill=vest)
    draw.line(
        (foot_x - wide * 0.5, top + head * 1.3, foot_x - wide * 0.5, hip),
        fill=skin,
        width=max(1, int(wide * 0.12)),
    )
    draw.line(
        (foot_x + wide * 0.5, top + head * 1.3, foot_x + wide * 0.5, hip),
        fill=skin,
        width=max(1, int(wide * 0.12)),
    )
    draw.ellipse((foot_x - head * 0.5, top, foot_x + head * 0.5, top + head * 1.1), fill=skin)
    if rng.random() < 0.6:
        hat = [(250, 250, 250), (250, 220, 30), (255, 120, 20)][rng.integers(3)]
        draw.chord(
            (foot_x - head * 0.6, top - head * 0.15, foot_x + head * 0.6, top + head * 0.7),
            180,
            360,
            fill=hat,
        )
    reach = max(stride, wide * 0.06)
    return (foot_x - wide * 0.5 - reach, top - head * 0.15, foot_x + wide * 0.5 + reach, foot_y)


def draw_forklift(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, base_x: float, base_y: float, scale: float
):
    """A forklift seen side-on, its wheels on the floor at base_y: body, counterweight, overhead
    guard, mast and forks at the front (left or right), sometimes a pallet on them."""
    long = 70 * scale * rng.uniform(0.9, 1.15)
    tall = long * rng.uniform(0.95, 1.15)
    facing = 1 if rng.random() < 0.5 else -1  # +1: the forks point right
    paint = [(245, 190, 20), (230, 90, 30), (200, 40, 40), (40, 110, 200), (60, 150, 70)][rng.integers(5)]
    left, right = base_x - long / 2, base_x + long / 2
    wheel = long * 0.17
    body_top = base_y - tall * 0.5
    draw.rectangle((left, body_top, right, base_y - wheel * 0.6), fill=paint)
    back = left if facing == 1 else right - long * 0.25
    draw.rectangle(
        (back, body_top - tall * 0.08, back + long * 0.25, base_y - wheel * 0.6), fill=(50, 50, 55)
    )
    guard_x0, guard_x1 = base_x - long * 0.3, base_x + long * 0.2
    top = base_y - tall
    for x in (guard_x0, guard_x1):
        draw.line((x, top, x, body_top), fill=(35, 35, 35), width=max(1, int(long * 0.04)))
    draw.line((guard_x0, top, guard_x1, top), fill=(35, 35, 35), width=max(1, int(long * 0.05)))
    front = right if facing == 1 else left
    mast_top = base_y - tall * rng.uniform(0.9, 1.05)
    draw.rectangle((front - long * 0.04, mast_top, front + long * 0.04, base_y), fill=(70, 70, 75))
    fork_end = front + facing * long * 0.45
    fork_y = base_y - rng.uniform(0.02, 0.35) * tall
    draw.line((front, fork_y, fork_end, fork_y), fill=(90, 90, 95), width=max(1, int(long * 0.035)))
    extent = (min(left, fork_end), mast_top, max(right, fork_end), base_y)
    if rng.random() < 0.4:  # a pallet with a load on the forks
        px0, px1 = sorted((front + facing * long * 0.05, fork_end))
        load_top = fork_y - tall * rng.uniform(0.15, 0.4)
        draw.rectangle((px0, fork_y - tall * 0.06, px1, fork_y), fill=(150, 105, 60))
        draw.rectangle(
            (px0 + 1, load_top, px1 - 1, fork_y - tall * 0.06),
            fill=tuple(int(c) for c in rng.integers(60, 220, 3)),
        )
        extent = (min(extent[0], px0), min(extent[1], load_top), max(extent[2], px1), base_y)
    for x in (left + long * 0.2, right - long * 0.2):
        draw.ellipse((x - wheel / 2, base_y - wheel, x + wheel / 2, base_y), fill=(20, 20, 20))
    return extent


def draw_clutter(
    draw: ImageDraw.ImageDraw, rng: np.random.Generator, x: float, y: float, scale: float
) -> None:
    """Something that is neither a person nor a forklift: a pallet stack, a cone or a bin."""
    kind = rng.integers(3)
    if kind == 0:
        wide, tall = 40 * scale * rng.uniform(0.8, 1.3), 30 * scale * rng.uniform(0.5, 1.4)
        draw.rectangle((x - wide / 2, y - tall, x + wide / 2, y), fill=(150, 105, 60))
        draw.rectangle(
            (x - wide / 2 + 1, y - tall, x + wide / 2 - 1, y - tall * 0.25),
            fill=tuple(int(c) for c in rng.integers(60, 220, 3)),
        )
    elif kind == 1:
        tall = 16 * scale
        draw.polygon(((x, y - tall), (x - tall * 0.35, y), (x + tall * 0.35, y)), fill=(255, 110, 20))
        draw.line(
            (x - tall * 0.2, y - tall * 0.45, x + tall * 0.2, y - tall * 0.45), fill=(245, 245, 245), width=2
        )
    else:
        wide, tall = 22 * scale, 28 * scale
        draw.rectangle(
            (x - wide / 2, y - tall, x + wide / 2, y), fill=tuple(int(c) for c in rng.integers(30, 200, 3))
        )


def warehouse_frame(rng: np.random.Generator, session: Session) -> tuple[np.ndarray, list[Box]]:
    """One frame of a session: (height, width, 3) uint8 pixels and the boxes of every person and
    forklift in it. Things are drawn far to near, so nearer ones hide parts of farther ones;
    a thing more than half hidden is still boxed (a detector must find a person behind a pallet)."""
    image = Image.new("RGB", (FRAME_WIDTH, FRAME_HEIGHT))
    draw = ImageDraw.Draw(image)
    horizon = draw_background(draw, session)
    kinds = (
        ["person"] * rng.integers(0, 6) + ["forklift"] * rng.integers(0, 3) + ["clutter"] * rng.integers(1, 6)
    )
    # Where each stands: anywhere across, its feet on the floor (a little below the frame's edge too).
    placed = [
        (kind, rng.uniform(0, FRAME_WIDTH), rng.uniform(horizon + 8, FRAME_HEIGHT + 6)) for kind in kinds
    ]
    boxes: list[Box] = []
    for kind, x, y in sorted(placed, key=lambda thing: thing[2]):  # far (high in the frame) first
        scale = depth_scale(y, horizon)
        if kind == "person":
            extent, label = draw_person(draw, rng, x, y, scale), PERSON
        elif kind == "forklift":
            extent, label = draw_forklift(draw, rng, x, y, scale), FORKLIFT
        else:
            draw_clutter(draw, rng, x, y, scale)
            continue
        clipped = clip_box(extent, FRAME_WIDTH, FRAME_HEIGHT)
        if clipped is not None:
            boxes.append((label, *clipped))
    pixels = np.asarray(image, dtype=np.float32) * session.light
    pixels += rng.normal(0, 5, pixels.shape)  # sensor noise
    return np.clip(pixels, 0, 255).astype(np.uint8), boxes


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, ...] | None:
    """The part of a box inside the frame; None when less than a third of it is (a thing mostly
    out of view is not labelled, as annotators do)."""
    x0, y0, x1, y1 = box
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(width)), min(y1, float(height))
    if cx1 - cx0 < 2 or cy1 - cy0 < 2:
        return None
    if (cx1 - cx0) * (cy1 - cy0) < (x1 - x0) * (y1 - y0) / 3:
        return None
    return (round(cx0, 2), round(cy0, 2), round(cx1, 2), round(cy1, 2))


def builtin_frames(
    sessions: int = SESSIONS, frames: int = FRAMES_PER_SESSION, seed: int = FRAME_SEED
) -> list[list[tuple[np.ndarray, list[Box]]]]:
    """The same frames on every machine, grouped by session: each session drawn from its own
    seeded generator."""
    result = []
    for index in range(sessions):
        rng = np.random.default_rng([seed, index])
        session = new_session(rng)
        result.append([warehouse_frame(rng, session) for _ in range(frames)])
    return result


# --- Other sources ---------------------------------------------------------------------------


def dataset_frames(split, config: Config) -> list[tuple[np.ndarray, list[Box]]]:
    """A Hugging Face split's images and boxes: RGB pixels and (class id, x0, y0, x1, y1)."""
    image_column = find_column(split, config.image_column, ("image", "img", "pixel_values"), "image_column")
    objects_column = find_column(split, config.objects_column, ("objects", "annotations"), "objects_column")
    if config.box_format not in ("xywh", "xyxy"):
        raise ProjectError(
            f"box_format must be xywh (x, y, width, height) or xyxy, not {config.box_format!r}"
        )
    frames = []
    for example in split:
        image = example[image_column].convert("RGB")
        labels, corners = object_lists(example[objects_column], objects_column)
        boxes = []
        for label, box in zip(labels, corners, strict=True):
            x0, y0, a, b = (float(v) for v in box)
            x1, y1 = (x0 + a, y0 + b) if config.box_format == "xywh" else (a, b)
            clipped = clip_box((x0, y0, x1, y1), image.width, image.height)
            if clipped is not None:
                boxes.append((int(label), *clipped))
        frames.append((np.asarray(image), boxes))
    return frames


def object_lists(objects: object, column: str) -> tuple[list, list]:
    """An image's class ids and boxes from its objects: a mapping of lists ({"bbox": [...],
    "category": [...]}, the hub's usual layout) or a list of mappings, one per object."""
    if isinstance(objects, list) and all(isinstance(item, dict) for item in objects):
        objects = {
            "bbox": [item.get("bbox") for item in objects],
            "category": [item.get("category", item.get("label")) for item in objects],
        }
    if not isinstance(objects, dict) or "bbox" not in objects:
        raise ProjectError(f"column {column!r} must hold each image's objects: 'bbox' and 'category' lists")
    labels = objects.get("category", objects.get("label"))
    if labels is None or len(labels) != len(objects["bbox"]) or None in labels or None in objects["bbox"]:
        raise ProjectError(f"column {column!r} needs a 'category' for each 'bbox'")
    return list(labels), list(objects["bbox"])


def class_names(config: Config, frames: list[tuple[np.ndarray, list[Box]]]) -> list[str]:
    """`class_names` as set, else class_0 ... up to the highest class id among the boxes."""
    highest = max((box[0] for _, boxes in frames for box in boxes), default=0)
    if not config.class_names:
        return [f"class_{index}" for index in range(highest + 1)]
    names = [name.strip() for name in config.class_names.split(",") if name.strip()]
    if highest >= len(names):
        raise ProjectError(
            f"a box has class id {highest}, but there are {len(names)} class names; name them all"
            " with --set class_names=..."
        )
    return names


# --- Preprocessing and targets ---------------------------------------------------------------


@dataclass
class DetectionPreprocessor:
    """A frame -> a normalised float tensor [3, input_height, input_width]: resized to fit (the
    aspect ratio kept) and padded at the right and bottom. Also knows the classes and colours.

    Saved with each run (preprocessor.json), so serving applies exactly the training transform.
    """

    input_width: int
    input_height: int
    labels: list[str]
    colours: list[str]
    score_threshold: float = 0.25  # boxes scoring less are not reported (recall_* counts from here)
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])

    def fit(self, width: int, height: int) -> float:
        """The factor that scales a width x height frame to fit the input."""
        return min(self.input_width / width, self.input_height / height)

    def pixels(self, image: Image.Image) -> tuple[torch.Tensor, float]:
        """The frame as the model's input, and the scale it was resized by."""
        scale = self.fit(image.width, image.height)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resized = image.convert("RGB")
        if size != resized.size:
            # reducing_gap: a box filter first, then bilinear; a 720p frame in 2.4 ms instead of
            # 3.9 on a CPU core, pixels 0.4 of 255 apart on average.
            resized = resized.resize(size, Image.BILINEAR, reducing_gap=2.0)
        values = torch.from_numpy(np.asarray(resized, dtype=np.float32)).permute(2, 0, 1) / 255.0
        values = (values - torch.tensor(self.mean)[:, None, None]) / torch.tensor(self.std)[:, None, None]
        padded = torch.zeros(3, self.input_height, self.input_width)
        padded[:, : size[1], : size[0]] = values
        return padded, scale

    def save(self, run_dir: Path) -> None:
        (run_dir / "preprocessor.json").write_text(json.dumps(vars(self), indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> DetectionPreprocessor:
        return cls(**json.loads((run_dir / "preprocessor.json").read_text()))


def gaussian_radius(width: float, height: float) -> float:
    """The heatmap bump's radius in cells for a box of this size (in cells): a third of the
    smaller side, so a centre a cell or two off still scores high, never under half a cell."""
    return max(0.5, min(width, height) / 3)


def encode_targets(boxes: list[Box], classes: int, width: int, height: int) -> torch.Tensor:
    """Dense targets [classes + 5, height / STRIDE, width / STRIDE] for boxes in input pixels:
    class heatmaps, then log width, log height (in cells), the centre's x and y offset within its
    cell, and a 1 at each centre cell. Two centres in one cell keep the larger box's size."""
    cells_x, cells_y = width // STRIDE, height // STRIDE
    targets = torch.zeros(classes + 5, cells_y, cells_x)
    ys, xs = (
        torch.arange(cells_y, dtype=torch.float32)[:, None],
        torch.arange(cells_x, dtype=torch.float32)[None],
    )
    for label, x0, y0, x1, y1 in sorted(boxes, key=lambda b: (b[3] - b[1]) * (b[4] - b[2])):
        w, h = (x1 - x0) / STRIDE, (y1 - y0) / STRIDE
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        column, row = min(int(cx), cells_x - 1), min(int(cy), cells_y - 1)
        sigma = gaussian_radius(w, h) / 2
        bump = torch.exp(-((xs - column) ** 2 + (ys - row) ** 2) / (2 * sigma**2))
        targets[label] = torch.maximum(targets[label], bump)
        targets[classes:, row, column] = torch.tensor([math.log(w), math.log(h), cx - column, cy - row, 1.0])
    return targets


def boxes_from_targets(targets: torch.Tensor, classes: int) -> list[list[Box]]:
    """The boxes (in input pixels) a batch of dense targets [batch, classes + 5, h, w] holds."""
    result = []
    for frame in targets:
        rows, columns = torch.nonzero(frame[classes + 4] > 0.5, as_tuple=True)
        boxes = []
        for row, column in zip(rows.tolist(), columns.tolist(), strict=True):
            log_w, log_h, dx, dy = frame[classes : classes + 4, row, column].tolist()
            label = int(frame[:classes, row, column].argmax())
            cx, cy, w, h = (
                (column + dx) * STRIDE,
                (row + dy) * STRIDE,
                math.exp(log_w) * STRIDE,
                math.exp(log_h) * STRIDE,
            )
            boxes.append((label, cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2))
        result.append(boxes)
    return result


class FrameDataset(torch.utils.data.Dataset):
    """Frames as (pixels [3, H, W], dense targets) pairs. Training frames are mirrored at random
    and their light varied (a camera may face either way down an aisle, at any hour)."""

    def __init__(
        self,
        frames: list[tuple[np.ndarray, list[Box]]],
        preprocessor: DetectionPreprocessor,
        augment: bool = False,
        session_ids: list[str] | None = None,
    ):
        self.frames = frames
        self.preprocessor = preprocessor
        self.augment = augment
        self.session_ids = session_ids or [str(index) for index in range(len(frames))]

    def __len__(self) -> int:
        return len(self.frames)

    def example(self, index: int, mirror: bool = False) -> tuple[torch.Tensor, list[Box]]:
        """One frame's input pixels and its boxes in input pixels."""
        image, boxes = self.frames[index]
        pixels, scale = self.preprocessor.pixels(Image.fromarray(image))
        scaled = [(label, x0 * scale, y0 * scale, x1 * scale, y1 * scale) for label, x0, y0, x1, y1 in boxes]
        if mirror:  # about the resized frame's own width, not the padded input's
            width = image.shape[1] * scale
            content = round(width)
            pixels[:, :, :content] = pixels[:, :, :content].flip(2)
            scaled = [(label, width - x1, y0, width - x0, y1) for label, x0, y0, x1, y1 in scaled]
        return pixels, scaled

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        mirror = self.augment and bool(torch.randint(2, ()).item())
        pixels, boxes = self.example(index, mirror)
        if self.augment:  # the whole frame brighter or darker, each channel a little apart
            pixels = pixels * (0.85 + 0.3 * torch.rand(())) + 0.2 * (torch.rand(3, 1, 1) - 0.5)
        p = self.preprocessor
        return pixels, encode_targets(boxes, len(p.labels), p.input_width, p.input_height)


@dataclass
class TaskData:
    train: FrameDataset
    val: FrameDataset
    preprocessor: DetectionPreprocessor
    val_frames: list[np.ndarray] = field(default_factory=list)  # whole frames, for timing and examples


def read_frames(config: Config) -> tuple[list, list, list[str], list[str], list[str]]:
    """Training frames, validation frames, their session ids and the class names."""
    if config.dataset == "builtin":
        sessions = builtin_frames()
        order = np.random.default_rng(config.seed).permutation(len(sessions))
        held_out = max(1, round(config.val_fraction * len(sessions)))
        val_ids, train_ids = sorted(order[:held_out].tolist()), sorted(order[held_out:].tolist())

        def frames_of(ids: list[int]) -> tuple[list, list[str]]:
            pairs = [(frame, f"session-{i}") for i in ids for frame in sessions[i]]
            return [frame for frame, _ in pairs], [session for _, session in pairs]

        (train, train_sessions), (val, val_sessions) = frames_of(train_ids), frames_of(val_ids)
        return train, val, train_sessions, val_sessions, list(BUILTIN_CLASSES)
    train_split, val_split = train_val_split(read_dataset(config.dataset), config)
    train, val = dataset_frames(train_split, config), dataset_frames(val_split, config)
    labels = class_names(config, train + val)
    return (
        train,
        val,
        [f"train-{i}" for i in range(len(train))],
        [f"val-{i}" for i in range(len(val))],
        labels,
    )


def split_contents(config: Config) -> tuple[Iterator[bytes], Iterator[bytes]]:
    """What identifies each training and validation frame, for counting validation frames from
    a session also in training: the session for the built-in frames, the pixels for others."""
    train, val, train_sessions, val_sessions, _ = read_frames(config)
    if config.dataset == "builtin":
        return (s.encode() for s in train_sessions), (s.encode() for s in val_sessions)
    return (image.tobytes() for image, _ in train), (image.tobytes() for image, _ in val)


def input_size(config: Config) -> tuple[int, int]:
    """The model's input width and height: input_width wide, input_height (0: 9/16 of the width,
    a 16:9 camera's frame) high, each rounded up to a multiple of 16 (the backbone halves it
    four times)."""
    width = config.input_width
    height = config.input_height or round(width * 9 / 16)
    return math.ceil(width / 16) * 16, math.ceil(height / 16) * 16


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it by session, and pair each frame with its targets (the
    preprocessing saved in `run_dir` when continuing a run)."""
    train, val, train_sessions, val_sessions, labels = read_frames(config)
    if not any(boxes for _, boxes in train):
        raise ProjectError("the training split has no boxes: a detector cannot learn from it")
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        colours = list(BUILTIN_COLOURS) if config.dataset == "builtin" else []
        colours += [MORE_COLOURS[i % len(MORE_COLOURS)] for i in range(len(labels) - len(colours))]
        width, height = input_size(config)
        preprocessor = DetectionPreprocessor(
            width, height, labels, colours[: len(labels)], config.score_threshold
        )
    return TaskData(
        train=FrameDataset(train, preprocessor, augment=True, session_ids=train_sessions),
        val=FrameDataset(val, preprocessor, session_ids=val_sessions),
        preprocessor=preprocessor,
        val_frames=[image for image, _ in val],
    )


def load_preprocessor(run_dir: Path) -> DetectionPreprocessor:
    return DetectionPreprocessor.load(run_dir)
