"""Fine-tuning an encoder: layer-wise learning rates, and the frozen-encoder baseline that the final
record compares the fine-tuned model with."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import metrics
from config import Config, ProjectError, apply_overrides
from conftest import make_trainer, read_records
from data import TaskData
from network import build_model
from trainer import build_optimizer, learning_rate


def test_layer_depths_number_the_embeddings_each_layer_and_what_sits_above(
    config: Config, data: TaskData
) -> None:
    depths = build_model(replace(config, n_layer=2), data.preprocessor).layer_depths()
    assert depths["tokens.weight"] == depths["positions.weight"] == 0
    assert {depth for name, depth in depths.items() if name.startswith("layers.0.")} == {1}
    assert {depth for name, depth in depths.items() if name.startswith("layers.1.")} == {2}
    assert depths["norm.weight"] == depths["head.weight"] == depths["head.bias"] == 3


def test_layer_lr_decay_gives_each_layer_below_the_top_a_slower_rate(
    config: Config, data: TaskData, tmp_path: Path
) -> None:
    model = build_model(replace(config, n_layer=2), data.preprocessor)
    plain = build_optimizer(model, config, fused=False)
    assert [group["lr_scale"] for group in plain.param_groups] == [1.0, 1.0]  # decayed or not: two groups
    config = replace(config, n_layer=2, layer_lr_decay=0.5, max_steps=2)
    trainer = make_trainer(config, data, tmp_path / "run")
    trainer.fit()
    group_of = {id(weight): group for group in trainer.optimizer.param_groups for weight in group["params"]}
    depths = trainer.raw_model.layer_depths()
    top_rate = learning_rate(1, config, trainer.total_steps)  # the rate of the last step
    for name, weight in trainer.raw_model.named_parameters():
        assert group_of[id(weight)]["lr"] == pytest.approx(top_rate * 0.5 ** (3 - depths[name])), name
    with pytest.raises(ProjectError, match="layer_lr_decay"):
        apply_overrides(config, {"layer_lr_decay": "0"})


def test_the_frozen_baseline_probes_the_starting_encoder_and_leaves_it_as_it_was(
    config: Config, data: TaskData
) -> None:
    model = build_model(config, data.preprocessor).train()
    before = copy.deepcopy(model.state_dict())
    cpu = torch.device("cpu")
    scores = metrics.baseline_scores(model, data, config, cpu)
    assert model.training  # as it was
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())
    assert scores["examples"] == len(data.val)
    assert 1 / len(data.preprocessor.labels) < scores["macro_f1"] <= 1  # the features say something
    assert metrics.baseline_scores(model, data, replace(config, frozen_baseline=False), cpu) == {}


def test_a_run_reports_its_gain_over_the_frozen_encoder_baseline(trained_run: Path) -> None:
    records = read_records(trained_run)
    (baseline,) = [record for record in records if record["kind"] == "eval" and record["step"] == 0]
    final = records[-1]
    assert final["baseline_macro_f1"] == pytest.approx(baseline["macro_f1"])
    assert final["macro_f1_gain"] == pytest.approx(final["macro_f1"] - baseline["macro_f1"])
