"""Reading datasets and batching them: the parts of the data pipeline every task shares.

read_dataset      a local data file or folder, a `save_to_disk` folder, or a Hugging Face hub name
find_column       which column holds the inputs or the labels: the one set, or one found by name
train_val_split   the source's own validation split, or a seeded (stratified) one
count_shared      how many validation examples are copies of training ones (leakage)
build_loader      DataLoaders: shuffled and sharded across torchrun's processes for training, in
                  order and each example exactly once across them for evaluation; worker
                  processes and pinned memory as the settings and the device ask
What the examples are and how they become tensors is task-specific: see data.py.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, DistributedSampler, Subset

from config import Config, ProjectError

if TYPE_CHECKING:  # `datasets` is imported where it is used: a run on built-in data never needs it
    from datasets import Dataset, DatasetDict

DATA_FILE_BUILDERS = {".txt": "text", ".csv": "csv", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
VALIDATION_SPLITS = ("validation", "valid", "val", "test")


def read_dataset(name: str) -> Dataset | DatasetDict:
    """A local data file or folder, a `save_to_disk` folder, or a Hugging Face hub dataset.

    A .txt file holds one example per line; a folder is read by the builder its files call for
    (images in class sub-folders: imagefolder; .csv files: csv ...)."""
    from datasets import load_dataset, load_from_disk

    path = Path(name).expanduser()
    if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
        return load_from_disk(str(path))
    if path.is_file():
        builder = DATA_FILE_BUILDERS.get(path.suffix)
        if builder is None:
            raise ProjectError(f"cannot read {path}: use a {', '.join(DATA_FILE_BUILDERS)} file or a folder")
        return load_dataset(builder, data_files=str(path))
    return load_dataset(str(path) if path.exists() else name)


def find_column(
    dataset: Dataset | DatasetDict,
    wanted: str,
    names: tuple[str, ...],
    setting: str,
    feature_type: type | None = None,
) -> str:
    """The column `wanted` (the value of the setting `setting`), else the first column whose
    feature is a `feature_type`, else the first of `names` the dataset has. An error names the
    columns there are and the setting that picks one."""
    from datasets import DatasetDict

    features = (dataset["train"] if isinstance(dataset, DatasetDict) else dataset).features
    have = ", ".join(features)
    if wanted:
        if wanted not in features:
            raise ProjectError(f"the dataset has no column {wanted!r} ({setting}); it has {have}")
        return wanted
    typed = [name for name, feature in features.items() if feature_type and isinstance(feature, feature_type)]
    found = typed or [name for name in names if name in features]
    if not found:
        raise ProjectError(f"no {names[0]} column among {have}; choose one with --set {setting}=NAME")
    return found[0]


def train_val_split(
    source: Dataset | DatasetDict, config: Config, label_column: str | None = None
) -> tuple[Dataset, Dataset]:
    """The source's own validation split if it has one, else a seeded split of val_fraction,
    stratified by `label_column` when given. Labels that are not class labels yet (strings,
    plain ints) become class ids with names, the same in both splits."""
    from datasets import ClassLabel, DatasetDict

    val = None
    if isinstance(source, DatasetDict):
        val = next((source[name] for name in VALIDATION_SPLITS if name in source and name != "train"), None)
        source = source["train"]
    if label_column and not isinstance(source.features[label_column], ClassLabel):
        source = source.class_encode_column(label_column)
        if val is not None:
            val = val.cast_column(label_column, source.features[label_column])
    if val is not None:
        return source, val
    parts = source.train_test_split(
        test_size=config.val_fraction, seed=config.seed, stratify_by_column=label_column
    )
    return parts["train"], parts["test"]


def count_shared(train: Iterable[str | bytes], val: Iterable[str | bytes]) -> int:
    """How many validation examples are exact copies of a training example: each one scores the
    model on something it was trained on. Text is compared without its surrounding whitespace;
    blank examples are left out (an empty file copies nothing)."""
    seen = {digest for digest in map(_content_digest, train) if digest}
    return sum(1 for digest in map(_content_digest, val) if digest in seen)


def _content_digest(content: str | bytes) -> bytes | None:
    data = content.strip().encode() if isinstance(content, str) else content
    return hashlib.blake2b(data, digest_size=16).digest() if data else None


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start part-way into an epoch, so a resumed run sees the same
    batches an uninterrupted one would have. Works in a single process too (one replica)."""

    def __init__(self, dataset: torch.utils.data.Dataset, num_replicas: int, rank: int, seed: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.start = 0  # indices of this epoch already used

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return super().__len__() - self.start


def build_loader(
    dataset: torch.utils.data.Dataset,
    config: Config,
    *,
    train: bool,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> DataLoader:
    """Training: shuffled, sharded across processes, full batches only. Evaluation: in order, each
    process taking every world_size-th example, so together they see each example exactly once."""
    sampler = None
    if train:
        sampler = ResumableSampler(dataset, num_replicas=world_size, rank=rank, seed=config.seed)
    else:
        dataset = Subset(dataset, range(rank, len(dataset), world_size))
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=train,
        num_workers=config.num_workers,
        pin_memory=pin_memory,
        persistent_workers=config.num_workers > 0,
        # Its own generator, so creating a loader does not draw from the global RNG (exact resume).
        generator=torch.Generator().manual_seed(config.seed),
    )
