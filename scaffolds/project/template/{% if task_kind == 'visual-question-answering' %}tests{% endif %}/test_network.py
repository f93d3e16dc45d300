"""The chart reader: shapes, the loss and the unknown answers it skips, learning, and what it refuses."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from config import Config, ProjectError
from data import PAD, SPECIAL_WORDS, ChartPreprocessor, TaskData, load_preprocessor
from network import ChartReader, build_model, count_parameters
from trainer import load_trained_model, read_saved

WORDS = 12
ANSWERS = 7
SIZE = 16
QUESTION_WORDS = 6


def tiny_reader(**changes: object) -> ChartReader:
    torch.manual_seed(0)
    settings = dict(strip=2, n_embd=32, n_layer=1, n_head=4, dropout=0.0) | changes
    return ChartReader(WORDS, ANSWERS, SIZE, QUESTION_WORDS, **settings)


def batch(
    size: int = 4, answers: list[int] | None = None
) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
    """((pixels, question ids), targets) of `size` random charts and questions; the questions end in
    padding."""
    generator = torch.Generator().manual_seed(1)
    pixels = torch.randn(size, 3, SIZE, SIZE, generator=generator)
    question = torch.randint(2, WORDS, (size, QUESTION_WORDS), generator=generator)
    question[:, 4:] = PAD
    answer = torch.tensor(answers) if answers is not None else torch.arange(size) % ANSWERS
    targets = torch.stack([answer, torch.zeros(size, dtype=torch.long), torch.arange(size) % 4], dim=1)
    return (pixels, question), targets


def test_the_reader_gives_one_logit_per_answer_and_a_scalar_loss() -> None:
    inputs, targets = batch(5)
    logits, loss = tiny_reader()(inputs, targets)
    assert logits.shape == (5, ANSWERS) and loss.ndim == 0 and math.isfinite(loss.item())
    logits_alone, no_loss = tiny_reader().eval()(inputs)
    assert logits_alone.shape == (5, ANSWERS) and no_loss is None  # no targets, no loss


def changed_tokens(model: ChartReader, columns: slice) -> list[bool]:
    """Which of the model's chart tokens change when the pixels of `columns` change."""
    chart = torch.randn(1, 3, SIZE, SIZE)
    marked = chart.clone()
    marked[..., columns] += 1
    with torch.no_grad():
        return ((model.strips(marked) - model.strips(chart)).abs().sum(-1)[0] > 0).tolist()


def test_a_chart_is_read_as_column_strips() -> None:
    """Pixel columns 4 and 5 are the third strip of two: only its token reads them."""
    assert changed_tokens(tiny_reader(strip=2), slice(4, 6)) == [i == 2 for i in range(SIZE // 2)]


def test_with_row_strips_every_row_strip_also_reads_a_column() -> None:
    tokens = changed_tokens(tiny_reader(strip=4, row_strips=True), slice(4, 8))
    assert tokens == [i == 1 for i in range(SIZE // 4)] + [True] * (SIZE // 4)


def test_padding_after_the_question_changes_nothing() -> None:
    model = tiny_reader().eval()
    (pixels, question), _ = batch(2)
    assert (question[:, 4:] == PAD).all() and (question[:, :4] != PAD).all()
    with torch.no_grad():
        padded, unpadded = model((pixels, question))[0], model((pixels, question[:, :4]))[0]
    assert torch.allclose(padded, unpadded, atol=1e-5)


def test_the_loss_is_cross_entropy_over_the_known_answers_only() -> None:
    model = tiny_reader().eval()
    inputs, targets = batch(4, answers=[3, -1, 5, -1])
    logits, loss = model(inputs, targets)
    expected = F.cross_entropy(logits[[0, 2]], torch.tensor([3, 5]))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_batch_of_only_unknown_answers_has_a_loss_of_zero_not_nan() -> None:
    model = tiny_reader()
    inputs, targets = batch(3, answers=[-1, -1, -1])
    _, loss = model(inputs, targets)
    assert loss.item() == 0.0
    loss.backward()  # and a step on it changes nothing and breaks nothing
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_few_steps_on_one_batch_learn_its_answers() -> None:
    model = tiny_reader()
    inputs, targets = batch(8, answers=[0, 1, 2, 3, 4, 5, 6, 0])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    first = None
    for _ in range(60):
        _, loss = model(inputs, targets)
        first = first if first is not None else loss.item()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert loss.item() < 0.1 * first
    logits, _ = model.eval()(inputs)
    assert torch.equal(logits.argmax(-1), targets[:, 0])


def test_an_image_size_that_strips_do_not_divide_is_refused() -> None:
    with pytest.raises(ProjectError, match="image_size=16 is not a multiple of strip=3"):
        tiny_reader(strip=3)


def small_preprocessor(image_size: int = 64) -> ChartPreprocessor:
    words = [*SPECIAL_WORDS, "what", "is", "the", "red", "bar", "?"]
    return ChartPreprocessor(image_size, words, ["5", "10", "yes", "no"], ["bar"], max_question_words=8)


def test_the_built_model_follows_the_settings_and_the_vocabularies(config: Config) -> None:
    model = build_model(config, small_preprocessor(config.image_size))
    assert model.strip == config.strip and model.head.out_features == 4
    assert model.words.num_embeddings == len(SPECIAL_WORDS) + 6
    assert len(model.encoder.layers) == config.n_layer and model.norm.normalized_shape == (config.n_embd,)
    assert count_parameters(model) == count_parameters(model, trainable_only=True) > 0


def test_build_model_refuses_a_strip_that_does_not_divide_the_image_size(config: Config) -> None:
    with pytest.raises(ProjectError, match="not a multiple of strip=3"):
        build_model(replace(config, strip=3), small_preprocessor(64))


def test_a_pretrained_model_name_is_refused_in_one_line(config: Config, data: TaskData) -> None:
    with pytest.raises(ProjectError, match="model_name is not supported") as refused:
        build_model(replace(config, model_name="google/deplot"), data.preprocessor)
    assert "\n" not in str(refused.value)


def test_a_run_saved_before_row_strips_were_a_setting_still_loads(trained_run: Path, tmp_path: Path) -> None:
    """Such a run's config.json has no row_strips and its model.pt has the row strips' weights:
    it loads as the model it was trained as."""
    run_dir = Path(shutil.copytree(trained_run, tmp_path / "older"))
    settings = json.loads((run_dir / "config.json").read_text())
    older = build_model(Config(**settings | {"row_strips": True}), load_preprocessor(run_dir))
    del settings["row_strips"]
    (run_dir / "config.json").write_text(json.dumps(settings))
    torch.save(read_saved(run_dir / "model.pt", "cpu") | {"model": older.state_dict()}, run_dir / "model.pt")
    config, _, model, _ = load_trained_model(run_dir, torch.device("cpu"))
    assert config.row_strips and model.rows is not None
    loaded, trained = model.state_dict(), older.state_dict()
    assert loaded.keys() == trained.keys() and all(torch.equal(loaded[k], trained[k]) for k in loaded)
