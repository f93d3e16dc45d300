"""Photos in, (pixels, reference captions) pairs out: the sources, the split and the vocabulary.

Where the photos come from (config.dataset):
  builtin      product photos generated here from a fixed seed (nothing is downloaded): mugs,
               bottles, T-shirts, sneakers, backpacks and lamps in eight colours, plain, striped
               or dotted, on a white background, a wooden table or a grey backdrop, each placed,
               sized and lit its own way; 96 x 96 pixels, each with three or four reference captions
               written from what is in the photo
  a folder     a dataset saved with `save_to_disk`
  a file       .json / .jsonl / .parquet with an image column and a caption column
  a hub name   any Hugging Face captioning dataset (needs the network once): an image column and
               a caption column holding one caption or a list of them per image

The vocabulary is the training captions' words (lower-cased, punctuation apart), the most frequent
`vocab_size` of them; it is saved with each run, so serving writes the words training saw. A batch
is two tensors, as in every other task kind: pixels [batch, 3, size, size] and the references'
word ids [batch, references, length], each `<s> words </s>` and padded.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from config import Config, ProjectError
from loading import find_column, read_dataset, train_val_split

PAD, START, END, UNKNOWN = 0, 1, 2, 3
SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>"]
PHOTOS = 2400  # built-in photos
PHOTO_SIZE = 96
PHOTO_SEED = 2026
MAX_REFERENCES = 5  # references kept per photo: as many as COCO gives each image (built-in photos: 3 or 4)

PRODUCTS = ("mug", "bottle", "t-shirt", "sneaker", "backpack", "lamp")
COLOURS = {
    "red": (200, 40, 45),
    "orange": (235, 130, 30),
    "yellow": (240, 205, 40),
    "green": (50, 150, 70),
    "blue": (40, 90, 200),
    "purple": (120, 60, 160),
    "pink": (235, 130, 175),
    "black": (35, 35, 40),
}
PATTERNS = ("plain", "striped", "dotted")
SETTINGS = {  # background: how captions name it
    "white": "a white background",
    "wood": "a wooden table",
    "grey": "a grey backdrop",
}

Photo = tuple[np.ndarray, list[str]]  # pixels [height, width, 3] and reference captions


# --- The built-in product photos -------------------------------------------------------------


@dataclass(frozen=True)
class Product:
    kind: str
    colour: str
    pattern: str
    setting: str


def draw_setting(size: int, setting: str, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """The empty scene and the height of the surface the product stands on."""
    light = rng.uniform(0.9, 1.08)
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    floor = int(size * rng.uniform(0.72, 0.82))
    if setting == "white":
        for y in range(size):  # a studio sweep: white, a touch darker towards the bottom
            tone = int(min(255, (250 - 18 * y / size) * light))
            draw.line([(0, y), (size, y)], fill=(tone, tone, tone))
    elif setting == "grey":
        for y in range(size):
            tone = int(min(255, (150 - 30 * y / size) * light))
            draw.line([(0, y), (size, y)], fill=(tone, tone, tone + 4))
    else:  # a wooden table top below a pale wall
        wall = tuple(int(min(255, c * light)) for c in (225, 215, 195))
        draw.rectangle([0, 0, size, floor], fill=wall)
        wood = np.array([150, 100, 60]) * light
        for y in range(floor, size):
            grain = wood * (0.85 + 0.15 * np.sin(y * 1.7 + rng.uniform(0, 0.3)))
            draw.line([(0, y), (size, y)], fill=tuple(int(min(255, c)) for c in grain))
    return image, floor


def product_shapes(kind: str, box: tuple[float, float, float, float]) -> tuple[list, list]:
    """The product's body (what takes the colour and pattern) and its details (drawn on top), as
    (method, coordinates) pairs for ImageDraw inside box = (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0

    def at(fx: float, fy: float) -> tuple[float, float]:
        return (x0 + fx * w, y0 + fy * h)

    if kind == "mug":
        body = [("rounded", [*at(0.1, 0.15), *at(0.72, 1.0)])]
        details = [("handle", [*at(0.6, 0.32), *at(0.98, 0.78)])]
    elif kind == "bottle":
        body = [
            ("rounded", [*at(0.3, 0.35), *at(0.7, 1.0)]),
            ("polygon", [at(0.3, 0.4), at(0.42, 0.2), at(0.58, 0.2), at(0.7, 0.4)]),
        ]
        details = [("cap", [*at(0.41, 0.02), *at(0.59, 0.2)])]
    elif kind == "t-shirt":
        outline = [(0.3, 0.05), (0.42, 0.12), (0.58, 0.12), (0.7, 0.05), (1.0, 0.28), (0.86, 0.45),
                   (0.76, 0.38), (0.76, 1), (0.24, 1), (0.24, 0.38), (0.14, 0.45), (0, 0.28)]  # fmt: skip
        body = [("polygon", [at(fx, fy) for fx, fy in outline])]
        details = [("neck", [*at(0.4, 0.0), *at(0.6, 0.2)])]
    elif kind == "sneaker":
        upper = [(0.02, 0.62), (0.1, 0.42), (0.42, 0.4), (0.55, 0.15), (0.78, 0.12), (0.82, 0.62)]
        body = [("polygon", [at(fx, fy) for fx, fy in upper]), ("rounded", [*at(0.0, 0.55), *at(1.0, 0.8)])]
        details = [("sole", [*at(0.0, 0.78), *at(1.0, 0.95)]), ("laces", [*at(0.45, 0.3), *at(0.65, 0.45)])]
    elif kind == "backpack":
        body = [("rounded", [*at(0.15, 0.15), *at(0.85, 1.0)])]
        details = [("strap", [*at(0.38, 0.0), *at(0.62, 0.2)]), ("pocket", [*at(0.28, 0.6), *at(0.72, 0.92)])]
    else:  # lamp
        body = [("polygon", [at(0.25, 0.0), at(0.75, 0.0), at(0.95, 0.42), at(0.05, 0.42)])]
        details = [("stem", [*at(0.47, 0.42), *at(0.53, 0.92)]), ("base", [*at(0.25, 0.88), *at(0.75, 1.0)])]
    return body, details


def pattern_layer(size: int, colour: tuple[int, ...], pattern: str, rng: np.random.Generator) -> Image.Image:
    """The body's surface: its colour, with white stripes or dots on it."""
    layer = Image.new("RGB", (size, size), colour)
    draw = ImageDraw.Draw(layer)
    accent = (245, 245, 240)
    spacing = int(rng.integers(7, 10))
    offset = int(rng.integers(0, spacing))
    if pattern == "striped":
        for y in range(offset, size, spacing):
            draw.rectangle([0, y, size, y + spacing // 3], fill=accent)
    elif pattern == "dotted":
        for row, y in enumerate(range(offset, size, spacing)):
            for x in range(offset + (row % 2) * spacing // 2, size, spacing):
                draw.ellipse([x - 1.6, y - 1.6, x + 1.6, y + 1.6], fill=accent)
    return layer


def draw_product(
    image: Image.Image, product: Product, box: tuple[float, ...], rng: np.random.Generator
) -> None:
    """The product in its colour and pattern inside `box`, with a soft shadow under it."""
    size = image.width
    light = rng.uniform(0.85, 1.1)
    colour = tuple(int(np.clip(c * light + rng.normal(0, 6), 0, 255)) for c in COLOURS[product.colour])
    shade = tuple(int(c * 0.6) for c in colour)
    x0, _, x1, y1 = box
    ImageDraw.Draw(image).ellipse(
        [x0, y1 - 3, x1, y1 + 3], fill=tuple(int(c * 0.8) for c in image.getpixel((1, size - 2)))
    )
    mask = Image.new("L", (size, size), 0)
    outline = ImageDraw.Draw(mask)
    body, details = product_shapes(product.kind, box)
    for method, points in body:
        if method == "rounded":
            outline.rounded_rectangle(points, radius=max(1, (points[2] - points[0]) / 6), fill=255)
        else:
            outline.polygon(points, fill=255)
    image.paste(pattern_layer(size, colour, product.pattern, rng), (0, 0), mask)
    draw = ImageDraw.Draw(image)
    for name, points in details:
        if name == "handle":
            draw.ellipse(points, outline=colour, width=max(2, int((points[2] - points[0]) / 5)))
        elif name in ("cap", "laces", "neck"):
            draw.rectangle(points, fill=(60, 60, 60) if name == "cap" else shade)
        elif name == "sole":
            draw.rectangle(points, fill=(240, 240, 235))
        else:  # strap, pocket, stem, base: in a darker shade of the product's colour
            draw.rectangle(points, fill=shade)


def with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def reference_captions(product: Product) -> list[str]:
    """Up to four ways of saying what is in the photo, as people writing alt text would."""
    name = product.kind
    setting = SETTINGS[product.setting]
    adjective = {"plain": "", "striped": "striped ", "dotted": "polka dot "}[product.pattern]
    feature = {"plain": "", "striped": " with white stripes", "dotted": " with white dots"}[product.pattern]
    captions = [
        f"{with_article(f'{product.colour} {adjective}{name}')} on {setting}",
        f"{with_article(f'{product.colour} {name}')}{feature} on {setting}",
        f"a photo of {with_article(f'{adjective}{product.colour} {name}')}",
        f"{with_article(f'{product.colour} {name}')}{feature} photographed on {setting}",
    ]
    return list(dict.fromkeys(captions))  # a plain product's first two are the same sentence


def product_photo(rng: np.random.Generator, size: int = PHOTO_SIZE) -> tuple[Photo, Product]:
    product = Product(
        kind=str(rng.choice(PRODUCTS)),
        colour=str(rng.choice(list(COLOURS))),
        pattern=str(rng.choice(PATTERNS)),
        setting=str(rng.choice(list(SETTINGS))),
    )
    image, floor = draw_setting(size, product.setting, rng)
    scale = rng.uniform(0.5, 0.72) * size
    centre = size / 2 + rng.uniform(-0.12, 0.12) * size
    width = scale * (1.0 if product.kind in ("sneaker", "t-shirt") else 0.8)
    box = (centre - width / 2, floor - scale, centre + width / 2, floor)
    draw_product(image, product, box, rng)
    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return (np.asarray(image), reference_captions(product)), product


@functools.cache  # drawn once per process (about 3 s): training, `check` and the server each read them
def builtin_photos(count: int = PHOTOS, seed: int = PHOTO_SEED) -> list[Photo]:
    """The same photos on every machine: each drawn from its own seeded generator."""
    return [product_photo(np.random.default_rng([seed, index]))[0] for index in range(count)]


# --- Other sources ---------------------------------------------------------------------------


def dataset_photos(split, config: Config) -> list[Photo]:
    """A Hugging Face split's images (RGB) and captions (one or a list per image)."""
    image_column = find_column(split, config.image_column, ("image", "img", "pixel_values"), "image_column")
    caption_column = find_column(
        split, config.caption_column, ("caption", "captions", "text", "sentences"), "caption_column"
    )
    photos = []
    for example in split:
        captions = example[caption_column]
        if isinstance(captions, str) or not isinstance(captions, list):
            captions = [captions]
        captions = [c["raw"] if isinstance(c, dict) and "raw" in c else c for c in captions]
        if not captions or not all(isinstance(c, str) for c in captions):
            raise ProjectError(
                f"column {caption_column!r} must hold a caption or a list of captions per image"
            )
        photos.append((np.asarray(example[image_column].convert("RGB")), captions))
    return photos


# --- Words and pixels ------------------------------------------------------------------------


def words_of(caption: str) -> list[str]:
    """A caption's words, lower-cased, with punctuation marks as words of their own."""
    return re.findall(r"[a-z0-9]+(?:[-'][a-z0-9]+)*|[^\sa-z0-9]", caption.lower())


@dataclass
class CaptionPreprocessor:
    """A photo -> a normalised float tensor [3, image_size, image_size]; captions <-> word ids.

    Saved with each run (preprocessor.json), so serving reads photos and writes words exactly as
    training did.
    """

    image_size: int
    vocabulary: list[str]  # SPECIAL_TOKENS first
    max_words: int  # a caption is cut after this many words
    mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    std: list[float] = field(default_factory=lambda: [0.25, 0.25, 0.25])

    def __post_init__(self) -> None:
        self.ids = {word: index for index, word in enumerate(self.vocabulary)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def pixels(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        if image.size != (self.image_size, self.image_size):
            image = image.resize((self.image_size, self.image_size), Image.BILINEAR, reducing_gap=2.0)
        values = torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 255.0
        return (values - torch.tensor(self.mean)[:, None, None]) / torch.tensor(self.std)[:, None, None]

    def encode(self, caption: str) -> list[int]:
        """<s> word ids </s>, the words cut at max_words."""
        ids = [self.ids.get(word, UNKNOWN) for word in words_of(caption)[: self.max_words]]
        return [START, *ids, END]

    def words(self, ids: list[int]) -> list[str]:
        """The words of generated or reference ids, up to the end token."""
        words = []
        for index in ids:
            if index == END:
                break
            if index not in (PAD, START):
                words.append(self.vocabulary[index])
        return words

    def text(self, ids: list[int]) -> str:
        """Words as a sentence: punctuation joined to the word before it."""
        return re.sub(r" ([^\w\s])", r"\1", " ".join(self.words(ids)))

    def save(self, run_dir: Path) -> None:
        meta = {k: v for k, v in vars(self).items() if k != "ids"}
        (run_dir / "preprocessor.json").write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, run_dir: Path) -> CaptionPreprocessor:
        return cls(**json.loads((run_dir / "preprocessor.json").read_text()))


def build_vocabulary(captions: list[str], size: int) -> list[str]:
    """The special tokens, then the `size` most frequent words (ties in alphabetical order, so
    the vocabulary is the same on every machine)."""
    counts = Counter(word for caption in captions for word in words_of(caption))
    ranked = sorted(counts, key=lambda word: (-counts[word], word))
    return SPECIAL_TOKENS + ranked[: max(0, size - len(SPECIAL_TOKENS))]


class PhotoDataset(torch.utils.data.Dataset):
    """Photos as (pixels [3, size, size], references [MAX_REFERENCES, max_words + 2]) pairs.
    Training photos are mirrored at random and their light varied."""

    def __init__(self, photos: list[Photo], preprocessor: CaptionPreprocessor, augment: bool = False):
        self.photos = photos
        self.preprocessor = preprocessor
        self.augment = augment

    def __len__(self) -> int:
        return len(self.photos)

    def image(self, index: int) -> Image.Image:
        return Image.fromarray(self.photos[index][0])

    def references(self, index: int) -> torch.Tensor:
        length = self.preprocessor.max_words + 2
        targets = torch.full((MAX_REFERENCES, length), PAD, dtype=torch.long)
        for row, caption in enumerate(self.photos[index][1][:MAX_REFERENCES]):
            ids = self.preprocessor.encode(caption)
            targets[row, : len(ids)] = torch.tensor(ids)
        return targets

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = self.preprocessor.pixels(self.image(index))
        if self.augment:
            if torch.rand(()) < 0.5:
                pixels = pixels.flip(2)
            pixels = pixels * (0.9 + 0.2 * torch.rand(())) + 0.1 * (torch.rand(3, 1, 1) - 0.5)
        return pixels, self.references(index)


@dataclass
class TaskData:
    train: PhotoDataset
    val: PhotoDataset
    preprocessor: CaptionPreprocessor


def read_photos(config: Config) -> tuple[list[Photo], list[Photo]]:
    """Training and validation photos with their captions."""
    if config.dataset == "builtin":
        photos = builtin_photos()
        order = np.random.default_rng(config.seed).permutation(len(photos))
        held_out = max(1, round(config.val_fraction * len(photos)))
        return [photos[i] for i in sorted(order[held_out:])], [photos[i] for i in sorted(order[:held_out])]
    train_split, val_split = train_val_split(read_dataset(config.dataset), config)
    return dataset_photos(train_split, config), dataset_photos(val_split, config)


def split_contents(config: Config) -> tuple[Iterator[bytes], Iterator[bytes]]:
    """What identifies each training and validation photo (its pixels), for counting validation
    photos that are copies of training ones."""
    train, val = read_photos(config)
    return (image.tobytes() for image, _ in train), (image.tobytes() for image, _ in val)


def build_data(config: Config, run_dir: Path | None = None) -> TaskData:
    """Read the source, split it, and build (or load) the vocabulary and the preprocessing."""
    train, val = read_photos(config)
    if not train:
        raise ProjectError("the training split has no photos")
    if run_dir is not None:
        preprocessor = load_preprocessor(run_dir)
    else:
        vocabulary = build_vocabulary(
            [caption for _, captions in train for caption in captions], config.vocab_size
        )
        preprocessor = CaptionPreprocessor(config.image_size, vocabulary, config.max_words)
    return TaskData(
        train=PhotoDataset(train, preprocessor, augment=True),
        val=PhotoDataset(val, preprocessor),
        preprocessor=preprocessor,
    )


def load_preprocessor(run_dir: Path) -> CaptionPreprocessor:
    return CaptionPreprocessor.load(run_dir)
