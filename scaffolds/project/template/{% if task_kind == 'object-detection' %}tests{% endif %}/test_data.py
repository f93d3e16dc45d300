"""The data: generated frames, the split by camera session, the dense targets and other sources."""

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
    FRAME_HEIGHT,
    FRAME_WIDTH,
    STRIDE,
    DetectionPreprocessor,
    TaskData,
    boxes_from_targets,
    build_data,
    builtin_frames,
    encode_targets,
    input_size,
    split_contents,
)
from loading import count_shared


def flat(boxes: list[tuple]) -> list[float]:
    """Boxes in one flat list, in order of class then corners (pytest.approx takes no nesting)."""
    return [value for box in sorted(boxes) for value in box]


def test_the_builtin_frames_are_the_same_on_every_call() -> None:
    first, again = builtin_frames(2, 3), builtin_frames(2, 3)
    for session, session_again in zip(first, again, strict=True):
        for (image, boxes), (image_again, boxes_again) in zip(session, session_again, strict=True):
            assert np.array_equal(image, image_again) and boxes == boxes_again
    assert not np.array_equal(first[0][0][0], first[1][0][0])  # but each session is its own


def test_builtin_boxes_lie_in_their_frames_and_both_classes_are_common(data: TaskData) -> None:
    boxes = [box for _, frame_boxes in data.train.frames for box in frame_boxes]
    for label, x0, y0, x1, y1 in boxes:
        assert 0 <= x0 < x1 <= FRAME_WIDTH and 0 <= y0 < y1 <= FRAME_HEIGHT and label in (0, 1)
    counts = np.bincount([box[0] for box in boxes], minlength=len(BUILTIN_CLASSES))
    assert counts.min() > 0.15 * counts.sum()  # forklifts are fewer than people, not rare
    assert any(not frame_boxes for _, frame_boxes in data.train.frames)  # some frames are empty


def test_the_split_is_by_session_and_the_leak_check_sees_a_shared_session(
    config: Config, data: TaskData
) -> None:
    assert not set(data.train.session_ids) & set(data.val.session_ids)
    assert count_shared(*split_contents(config)) == 0
    train, val = split_contents(config)
    train_keys, val_keys = list(train), list(val)
    assert count_shared(train_keys, [*val_keys, train_keys[0]]) == 1  # a frame of a training session


def test_a_frame_is_resized_to_fit_the_input_keeping_its_shape() -> None:
    preprocessor = DetectionPreprocessor(320, 192, ["person"], ["#000000"])
    pixels, scale = preprocessor.pixels(Image.new("RGB", (1280, 720), (255, 255, 255)))
    assert pixels.shape == (3, 192, 320) and scale == 0.25
    assert (pixels[:, :180] > 1).all() and (pixels[:, 180:] == 0).all()  # white frame, zero padding
    tall, tall_scale = preprocessor.pixels(Image.new("RGB", (100, 400)))
    assert tall.shape == (3, 192, 320) and tall_scale == pytest.approx(0.48)


def test_input_sizes_are_multiples_of_sixteen_with_a_16_to_9_default(config: Config) -> None:
    assert input_size(replace(config, input_width=320, input_height=0)) == (320, 192)
    assert input_size(replace(config, input_width=100, input_height=50)) == (112, 64)


def test_targets_give_back_the_boxes_they_were_made_from() -> None:
    boxes = [(0, 10.0, 20.0, 30.5, 70.0), (1, 100.0, 40.0, 180.0, 110.0), (0, 150.0, 5.0, 158.0, 30.0)]
    targets = encode_targets(boxes, 2, 320, 192)
    assert targets.shape == (7, 192 // STRIDE, 320 // STRIDE)
    (decoded,) = boxes_from_targets(targets[None], 2)
    assert flat(decoded) == pytest.approx(flat(boxes), abs=1e-4)
    assert targets[:2].max() == 1 and int(targets[6].sum()) == 3
    # The bump is highest at the centre and falls off around it.
    row, column = int(45 / STRIDE), int(20.25 / STRIDE)
    assert targets[0, row, column] == 1 and 0 < targets[0, row, column + 2] < 1


def test_mirrored_training_frames_mirror_their_boxes(data: TaskData) -> None:
    index = next(i for i, (_, boxes) in enumerate(data.train.frames) if len(boxes) >= 2)
    plain, boxes = data.train.example(index)
    mirrored, mirrored_boxes = data.train.example(index, mirror=True)
    width = data.train.frames[index][0].shape[1] * data.preprocessor.fit(FRAME_WIDTH, FRAME_HEIGHT)
    content = round(width)
    assert torch.equal(mirrored[:, :, :content], plain[:, :, :content].flip(2))
    expected = [(label, width - x1, y0, width - x0, y1) for label, x0, y0, x1, y1 in boxes]
    assert flat(mirrored_boxes) == pytest.approx(flat(expected))


def test_validation_frames_are_not_augmented(data: TaskData) -> None:
    first, again = data.val[3], data.val[3]
    assert torch.equal(first[0], again[0]) and torch.equal(first[1], again[1])


def save_frames(path: Path, boxes: list[dict], size: tuple[int, int] = (80, 60)) -> Path:
    """A local dataset (save_to_disk) of random images with an objects column per image."""
    from datasets import Dataset
    from datasets import Image as ImageFeature

    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in boxes]
    dataset = Dataset.from_dict({"image": images, "objects": boxes}).cast_column("image", ImageFeature())
    dataset.save_to_disk(str(path))
    return path


def test_a_saved_dataset_of_coco_boxes_is_read_and_scaled(config: Config, tmp_path: Path) -> None:
    objects = [{"bbox": [[8.0, 6.0, 20.0, 30.0], [40.0, 10.0, 16.0, 16.0]], "category": [0, 2]}] * 10
    source = save_frames(tmp_path / "frames", objects)
    local = replace(config, dataset=str(source), val_fraction=0.2, class_names="helmet, vest ,glove")
    data = build_data(local)
    assert data.preprocessor.labels == ["helmet", "vest", "glove"] and len(data.preprocessor.colours) == 3
    assert len(data.train) == 8 and len(data.val) == 2
    assert data.train.frames[0][1] == [(0, 8.0, 6.0, 28.0, 36.0), (2, 40.0, 10.0, 56.0, 26.0)]
    _, scaled = data.val.example(0)
    scale = data.preprocessor.fit(80, 60)
    assert scaled[0] == pytest.approx((0, 8 * scale, 6 * scale, 28 * scale, 36 * scale))
    assert count_shared(*split_contents(local)) == 0
    corners = build_data(replace(local, box_format="xyxy"))
    assert corners.train.frames[0][1][0] == (0, 8.0, 6.0, 20.0, 30.0)
    assert build_data(replace(local, class_names="")).preprocessor.labels == ["class_0", "class_1", "class_2"]


def test_more_classes_than_names_and_unknown_box_formats_are_refused(config: Config, tmp_path: Path) -> None:
    source = save_frames(tmp_path / "frames", [{"bbox": [[1.0, 1.0, 9.0, 9.0]], "category": [2]}] * 4)
    with pytest.raises(ProjectError, match="class id 2, but there are 2 class names"):
        build_data(replace(config, dataset=str(source), class_names="a,b"))
    with pytest.raises(ProjectError, match="box_format must be xywh"):
        build_data(replace(config, dataset=str(source), box_format="cxcywh"))


def test_a_missing_objects_column_is_named_with_the_setting_to_use(config: Config, tmp_path: Path) -> None:
    source = save_frames(tmp_path / "frames", [{"bbox": [[1.0, 1.0, 9.0, 9.0]], "category": [0]}] * 4)
    with pytest.raises(ProjectError, match="objects_column"):
        build_data(replace(config, dataset=str(source), objects_column="boxes"))


def test_objects_as_one_mapping_per_object_are_read_too(config: Config, tmp_path: Path) -> None:
    per_object = [
        [{"bbox": [8.0, 6.0, 20.0, 30.0], "category": 1}, {"bbox": [1.0, 1.0, 5.0, 5.0], "category": 0}]
    ]
    source = save_frames(tmp_path / "frames", per_object * 5)
    data = build_data(replace(config, dataset=str(source), val_fraction=0.2))
    assert data.train.frames[0][1] == [(1, 8.0, 6.0, 28.0, 36.0), (0, 1.0, 1.0, 6.0, 6.0)]
    missing = save_frames(tmp_path / "no-labels", [[{"bbox": [1.0, 1.0, 5.0, 5.0]}]] * 5)
    with pytest.raises(ProjectError, match="needs a 'category' for each 'bbox'"):
        build_data(replace(config, dataset=str(missing)))


def test_a_dataset_without_boxes_is_refused(config: Config, tmp_path: Path) -> None:
    source = save_frames(tmp_path / "frames", [{"bbox": [], "category": []}] * 5)
    with pytest.raises(ProjectError, match="no boxes"):
        build_data(replace(config, dataset=str(source)))
