"""The data: generated product photos and their captions, the vocabulary, and other sources."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from config import Config, ProjectError
from data import (
    COLOURS,
    END,
    MAX_REFERENCES,
    PAD,
    PRODUCTS,
    START,
    UNKNOWN,
    CaptionPreprocessor,
    Product,
    TaskData,
    build_data,
    build_vocabulary,
    product_photo,
    reference_captions,
    words_of,
)


def test_the_builtin_photos_are_the_same_on_every_machine() -> None:
    (image, captions), product = product_photo(np.random.default_rng([7, 3]))
    (again, captions_again), product_again = product_photo(np.random.default_rng([7, 3]))
    assert np.array_equal(image, again) and captions == captions_again and product == product_again
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8


def test_captions_name_what_is_in_the_photo_in_one_short_sentence() -> None:
    captions = reference_captions(Product("t-shirt", "orange", "striped", "wood"))
    assert captions[0] == "an orange striped t-shirt on a wooden table"
    assert "an orange t-shirt with white stripes on a wooden table" in captions
    for caption in captions:
        assert "orange" in caption and "t-shirt" in caption and len(caption.split()) <= 20
    plain = reference_captions(Product("mug", "red", "plain", "white"))
    assert len(plain) == len(set(plain)) == 3  # the same sentence twice is kept once


def test_each_product_colour_and_pattern_is_common_in_the_builtin_data(data: TaskData) -> None:
    words = Counter(word for _, captions in data.train.photos for word in words_of(captions[0]))
    for name in (*PRODUCTS, *COLOURS, "striped", "polka"):
        assert words[name] >= 20, name


def test_the_product_is_drawn_in_its_colour() -> None:
    for seed in range(12):
        (image, _), product = product_photo(np.random.default_rng([11, seed]))
        distance = np.abs(image.astype(int) - np.array(COLOURS[product.colour])).sum(axis=2)
        assert (distance < 60).mean() > 0.05, product  # a good share of the pixels are the product's


def test_words_keep_hyphens_and_split_punctuation() -> None:
    assert words_of("A T-shirt, on a table.") == ["a", "t-shirt", ",", "on", "a", "table", "."]


def test_the_vocabulary_is_the_most_frequent_words_after_the_special_tokens() -> None:
    vocabulary = build_vocabulary(["a red mug", "a blue mug", "a mug"], size=6)
    assert vocabulary == ["<pad>", "<s>", "</s>", "<unk>", "a", "mug"]


def test_captions_become_ids_and_back() -> None:
    preprocessor = CaptionPreprocessor(32, build_vocabulary(["a red mug on a table."], 100), max_words=4)
    ids = preprocessor.encode("A red lamp on a table.")
    assert ids[0] == START and ids[-1] == END and len(ids) == 4 + 2  # cut at max_words
    assert ids[3] == UNKNOWN  # "lamp" was never seen
    assert preprocessor.words([*ids, PAD, PAD]) == ["a", "red", "<unk>", "on"]
    full = CaptionPreprocessor(32, preprocessor.vocabulary, max_words=20)
    assert full.text(full.encode("a red mug on a table.")) == "a red mug on a table."


def test_an_example_is_pixels_and_padded_references(data: TaskData, config: Config) -> None:
    pixels, references = data.val[0]
    assert pixels.shape == (3, config.image_size, config.image_size)
    assert references.shape == (MAX_REFERENCES, config.max_words + 2)
    present = references[:, 0] == START
    assert present.sum() == len(data.val.photos[0][1])
    for row, caption in zip(references[present], data.val.photos[0][1], strict=False):
        assert data.preprocessor.text(row.tolist()) == caption
    assert (references[~present] == PAD).all()


def test_training_photos_are_varied_and_validation_photos_are_not(data: TaskData) -> None:
    assert torch.equal(data.val[3][0], data.val[3][0])
    assert not torch.equal(data.train[3][0], data.train[3][0])  # the light differs each time


def test_the_preprocessor_saved_with_a_run_reads_photos_the_same_way(data: TaskData, tmp_path: Path) -> None:
    data.preprocessor.save(tmp_path)
    loaded = CaptionPreprocessor.load(tmp_path)
    assert (
        loaded.vocabulary == data.preprocessor.vocabulary and loaded.max_words == data.preprocessor.max_words
    )
    image = data.val.image(0)
    assert torch.equal(loaded.pixels(image), data.preprocessor.pixels(image))


def saved_dataset(path: Path, captions: list[object], column: str = "caption") -> Path:
    from datasets import Dataset, Features, Sequence, Value
    from datasets import Image as ImageFeature

    images = [Image.new("RGB", (40, 30), (40 * i, 20, 90)) for i in range(len(captions))]
    kind = Sequence(Value("string")) if isinstance(captions[0], list) else Value("string")
    Dataset.from_dict(
        {"image": images, column: captions}, features=Features({"image": ImageFeature(), column: kind})
    ).save_to_disk(str(path))
    return path


def test_a_saved_dataset_with_one_or_several_captions_per_image_is_read(
    config: Config, tmp_path: Path
) -> None:
    single = saved_dataset(tmp_path / "single", [f"a photo number {i}." for i in range(10)])
    data = build_data(replace(config, dataset=str(single), val_fraction=0.2))
    assert len(data.train) + len(data.val) == 10
    assert data.train.photos[0][1][0].startswith("a photo number")
    several = saved_dataset(tmp_path / "several", [[f"one {i}", f"two {i}"] for i in range(10)], "captions")
    data = build_data(replace(config, dataset=str(several)))
    assert all(len(captions) == 2 for _, captions in data.train.photos)


def test_a_caption_column_without_captions_is_refused(config: Config, tmp_path: Path) -> None:
    from datasets import Dataset, Features, Value
    from datasets import Image as ImageFeature

    images = [Image.new("RGB", (8, 8)) for _ in range(6)]
    Dataset.from_dict(
        {"image": images, "caption": [3, 1, 4, 1, 5, 9]},
        features=Features({"image": ImageFeature(), "caption": Value("int64")}),
    ).save_to_disk(str(tmp_path / "numbers"))
    with pytest.raises(ProjectError, match="a caption or a list of captions"):
        build_data(replace(config, dataset=str(tmp_path / "numbers")))
