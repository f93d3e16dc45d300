"""DataLoaders: full shuffled training batches, shards per process, an epoch resumed mid-way;
the split's leakage count."""

from __future__ import annotations

from config import Config
from data import TaskData, split_contents
from loading import build_loader, count_shared


def test_training_loader_gives_full_batches_of_inputs_and_targets(config: Config, data: TaskData) -> None:
    loader = build_loader(data.train, config, train=True)
    inputs, targets = next(iter(loader))
    assert targets.shape[0] == config.batch_size
    # One tensor of inputs, or several (a chart's pixels and its question's words).
    batched = inputs if isinstance(inputs, list) else [inputs]
    one = data.train[0][0]
    for part, example in zip(batched, one if isinstance(one, tuple) else (one,), strict=True):
        assert part.shape == (config.batch_size, *example.shape)
    assert len(loader) == len(data.train) // config.batch_size


def test_training_order_changes_with_the_epoch_but_not_between_runs(config: Config, data: TaskData) -> None:
    orders = []
    for epoch in (0, 1, 0):
        sampler = build_loader(data.train, config, train=True).sampler
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
    assert orders[0] != orders[1] and orders[0] == orders[2]


def test_processes_share_the_training_split_and_see_validation_once(config: Config, data: TaskData) -> None:
    shards = [
        list(build_loader(data.train, config, train=True, rank=r, world_size=2).sampler) for r in (0, 1)
    ]
    # Equal shares that together cover the split (DistributedSampler repeats an example to even them).
    assert len(shards[0]) == len(shards[1])
    assert set(shards[0]) | set(shards[1]) == set(range(len(data.train)))
    assert len(set(shards[0]) & set(shards[1])) <= 1
    val_shards = [build_loader(data.val, config, train=False, rank=r, world_size=2).dataset for r in (0, 1)]
    assert sorted([*val_shards[0].indices, *val_shards[1].indices]) == list(range(len(data.val)))


def test_a_resumed_epoch_continues_in_the_same_order(config: Config, data: TaskData) -> None:
    sampler = build_loader(data.train, config, train=True).sampler
    sampler.set_epoch(3)
    whole = list(sampler)
    sampler.start = 5 * config.batch_size
    assert list(sampler) == whole[5 * config.batch_size :]


def test_count_shared_counts_validation_examples_copied_from_training() -> None:
    train = ["def f():\n    pass\n", b"\x00\x01", "", "shared text"]
    val = ["  shared text\n", b"\x00\x01", "", "\n", "only here"]
    # Surrounding whitespace does not hide a copy; blank examples copy nothing.
    assert count_shared(train, val) == 2
    assert count_shared([], val) == 0


def test_the_data_has_no_validation_example_copied_from_training(config: Config) -> None:
    train, val = (list(split) for split in split_contents(config))
    assert train and val
    assert count_shared(train, val) == 0
    # The same count sees copies when there are some.
    assert count_shared(train, [*train[:3], *val]) == 3
