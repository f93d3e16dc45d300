"""The encoder: the masked tokens alone are scored, evaluation's counts add up to its loss, the
features are those of the unmasked text, and the original encoder is trained once and cached."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import original
from config import Config
from data import IGNORED, TaskData, build_data, unpack_targets
from network import MaskedLanguageModel, build_model, unmasked


def batch(data: TaskData, start: int = 0, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    items = [data.val[i] for i in range(start, start + size)]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


def fresh_model(config: Config, data: TaskData) -> MaskedLanguageModel:
    torch.manual_seed(0)
    return build_model(replace(config, original_steps=0), data.preprocessor)


def test_training_returns_only_the_loss_and_it_starts_near_chance(config: Config, data: TaskData) -> None:
    model = fresh_model(config, data).train()
    outputs, loss = model(*batch(data))
    assert outputs is None
    assert loss.item() == pytest.approx(
        torch.log(torch.tensor(float(data.preprocessor.vocab_size))).item(), rel=0.1
    )


def test_evaluation_counts_per_text_add_up_to_the_loss(config: Config, data: TaskData) -> None:
    model = fresh_model(config, data).eval()
    inputs, targets = batch(data)
    with torch.no_grad():
        outputs, loss = model(inputs, targets)
    masked = (unpack_targets(targets)[0] != IGNORED).sum(dim=1).float()
    assert torch.equal(outputs["masked"], masked)
    assert (outputs["loss_sum"].sum() / masked.sum()).item() == pytest.approx(loss.item(), rel=1e-5)
    assert (outputs["hits"] <= outputs["masked"]).all()
    # The clause probe reads the whole text, not the masked one.
    with torch.no_grad():
        whole = model.features(unmasked(inputs, unpack_targets(targets)[0]))
    assert torch.allclose(outputs["features"], whole, atol=1e-5)


def test_padding_columns_change_nothing(config: Config, data: TaskData) -> None:
    model = fresh_model(config, data).eval()
    inputs, targets = batch(data, size=4)
    pad = data.preprocessor.pad_id
    wider = torch.cat([inputs, torch.full((4, 16), pad)], dim=1)
    token_targets, labels, corpus = unpack_targets(targets)
    wider_targets = torch.cat(
        [token_targets, torch.full((4, 16), IGNORED), labels[:, None], corpus[:, None]], dim=1
    )
    with torch.no_grad():
        assert model(inputs, targets)[1].item() == pytest.approx(
            model(wider, wider_targets)[1].item(), rel=1e-5
        )


def test_the_loss_reads_only_the_masked_tokens(config: Config, data: TaskData) -> None:
    model = fresh_model(config, data).eval()
    inputs, targets = batch(data, size=4)
    token_targets = unpack_targets(targets)[0]
    changed = targets.clone()
    # A different target where a token was masked changes the loss; nothing else is scored.
    place = (token_targets[0] != IGNORED).nonzero()[0, 0]
    changed[0, place] = (changed[0, place] + 1) % data.preprocessor.vocab_size
    with torch.no_grad():
        assert model(inputs, changed)[1] != model(inputs, targets)[1]


def test_the_original_encoder_is_trained_once_then_read_from_the_cache(
    config: Config, data: TaskData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(original, "CACHE_DIR", tmp_path / "encoders")
    config = replace(config, original_steps=30)
    torch.manual_seed(0)
    first = build_model(config, data.preprocessor)
    assert len(list((tmp_path / "encoders").iterdir())) == 1
    trained = []
    monkeypatch.setattr(original, "pretrain", lambda model, *_: trained.append(model) or model.state_dict())
    torch.manual_seed(1)  # other initial weights: the cached ones replace them
    again = build_model(config, data.preprocessor)
    assert not trained
    for name, value in first.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    # A setting that shapes the encoder names another one.
    build_model(replace(config, original_steps=31), data.preprocessor)
    assert len(trained) == 1


def test_the_original_encoder_knows_the_general_text_better_than_random_weights(
    config: Config, data: TaskData, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(original, "CACHE_DIR", tmp_path / "encoders")
    general = [i for i, corpus in enumerate(data.val.corpus) if corpus == 1][:64]
    inputs = torch.stack([data.val[i][0] for i in general])
    targets = torch.stack([data.val[i][1] for i in general])
    losses = []
    for steps in (0, 60):
        torch.manual_seed(0)
        model = build_model(replace(config, original_steps=steps, original_lr=3e-3), data.preprocessor).eval()
        with torch.no_grad():
            losses.append(model(inputs, targets)[1].item())
    assert losses[1] < losses[0] - 0.5


def test_a_hugging_face_encoder_and_its_own_tokenizer_fit_the_same_interface(
    config: Config, data: TaskData, tmp_path: Path
) -> None:
    from transformers import BertConfig, BertForMaskedLM

    folder = tmp_path / "tiny-bert"
    tokenizer = data.preprocessor.tokenizer
    shape = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForMaskedLM(shape).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    hf_config = replace(config, model_name=str(folder))
    hf_data = build_data(hf_config)
    assert hf_data.preprocessor.vocab_size == len(tokenizer)
    model = build_model(hf_config, hf_data.preprocessor).eval()
    inputs, targets = batch(hf_data, size=4)
    with torch.no_grad():
        outputs, loss = model(inputs, targets)
    assert torch.isfinite(loss) and outputs["features"].shape == (4, 32)
    assert outputs["masked"].sum() == (unpack_targets(targets)[0] != IGNORED).sum()
